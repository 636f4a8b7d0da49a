#!/usr/bin/env bash
# The whole test suite: unit tests, then end-to-end tests. Tests that need
# /dev/kvm run inside the nested-KVM harness when this host has none.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KSBOX_BUILD_DIR:-$root/build}

"$root/scripts/build.sh"
cd "$build"
exec ctest --output-on-failure "$@"
