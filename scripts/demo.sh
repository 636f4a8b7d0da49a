#!/usr/bin/env bash
# The main job for now: build everything, boot the default guest with
# ksbox-vmm and run commands in it with `ksbox exec` (scripts/demo-session.sh).
# Without /dev/kvm on this host that runs inside the nested-KVM harness
# (tests/nested/run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KSBOX_BUILD_DIR:-$root/build}

"$root/scripts/build.sh"
exec "$root/tests/nested/with-kvm" env KSBOX_BUILD_DIR="$build" "$root/scripts/demo-session.sh"
