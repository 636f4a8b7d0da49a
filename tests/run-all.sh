#!/usr/bin/env bash
# The whole test suite: unit tests, then end-to-end tests. Tests that need
# /dev/kvm run inside the nested-KVM harness when this host has none.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KSBOX_BUILD_DIR:-$root/build}

"$root/scripts/build.sh"
cd "$build"
# Two retries of a failed test: nested KVM under QEMU TCG now and then
# stops an L1 CPU (tests/nested/README.md, "The nested-SVM hang"); the
# harness ends such a run within ~30 s. A real failure fails three times;
# ctest prints every attempt.
exec ctest --output-on-failure --repeat until-pass:3 "$@"
