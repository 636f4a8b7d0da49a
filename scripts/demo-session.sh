#!/usr/bin/env bash
# The body of scripts/demo.sh, run where /dev/kvm exists: boots a guest with
# ksbox-vmm, runs commands in it with `ksbox exec` over vsock (no SSH, no
# network), then powers it off with `ksbox stop`.
set -euo pipefail
build=${KSBOX_BUILD_DIR:?}
ksbox=$build/cli/ksbox
state=$(mktemp -d "${TMPDIR:-/tmp}/ksbox-demo-XXXXXX")
sock=$state/vsock.sock
vmm_pid=
cleanup() {
  [ -n "$vmm_pid" ] && kill -9 "$vmm_pid" 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT

say() { printf '\n\033[1mdemo: %s\033[0m\n' "$*" >&2; }

say "booting the guest (2 vCPUs, 512 MiB), console in $state/console.log"
start=$(date +%s%N)
"$build/vmm/ksbox-vmm" --kernel "$build/guest/vmlinux" --initrd "$build/guest/initramfs.cpio.gz" \
  --vcpus 2 --memory 512 --cmdline quiet --vsock "$sock" >"$state/console.log" 2>&1 &
vmm_pid=$!

say "ksbox exec -- uname -sr   (waits for the agent)"
"$ksbox" exec --socket "$sock" -- uname -sr
echo "first exec after $(( ($(date +%s%N) - start) / 1000000 )) ms (nested emulation is slow; see benchmarks/)" >&2

say "guest facts"
"$ksbox" exec --socket "$sock" -- sh -c 'echo "cpus: $(nproc)"; grep MemTotal /proc/meminfo; id'

say "stdin and stdout pass through: echo hello | ksbox exec -- tr a-z A-Z"
echo "hello from the host" | "$ksbox" exec --socket "$sock" -- tr a-z A-Z

say "exit statuses come back: ksbox exec -- sh -c 'exit 42'"
set +e
"$ksbox" exec --socket "$sock" -- sh -c 'exit 42'
echo "status: $?"
set -e

say "ksbox stop"
"$ksbox" stop --socket "$sock"
wait "$vmm_pid" && status=0 || status=$?
vmm_pid=
echo "ksbox-vmm exited with status $status" >&2
exit "$status"
