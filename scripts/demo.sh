#!/usr/bin/env bash
# The main job for now: build everything, then boot the default guest with
# ksbox-vmm and show it came up. Without /dev/kvm on this host the VMM runs
# inside the nested-KVM harness (tests/nested/run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KSBOX_BUILD_DIR:-$root/build}

"$root/scripts/build.sh"
echo "demo: booting build/guest/vmlinux with 2 vCPUs and 512 MiB" >&2
exec "$root/tests/nested/with-kvm" "$build/vmm/ksbox-vmm" \
  --kernel "$build/guest/vmlinux" --initrd "$build/guest/initramfs.cpio.gz" \
  --vcpus 2 --memory 512 \
  --cmdline 'quiet ksbox_cmd="uname -sr; echo cpus: $(nproc); grep MemTotal /proc/meminfo"'
