#!/usr/bin/env bash
# The main job: build everything, then `ksbox run` a sandbox for a git
# project, work and commit in it, `ksbox sync` the commits back
# (scripts/demo-session.sh).
# Without /dev/kvm on this host that runs inside the nested-KVM harness
# (tests/nested/run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KSBOX_BUILD_DIR:-$root/build}

"$root/scripts/build.sh"
exec "$root/tests/nested/with-kvm" env KSBOX_BUILD_DIR="$build" "$root/scripts/demo-session.sh"
