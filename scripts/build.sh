#!/usr/bin/env bash
# Installs dependencies, then builds ksbox and the guest image into build/
# (KSBOX_BUILD_DIR overrides). The guest kernel is cached outside the clone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KSBOX_BUILD_DIR:-$root/build}

"$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DKSBOX_WERROR="${KSBOX_WERROR:-OFF}" >/dev/null
cmake --build "$build"
cmake --build "$build" --target guest-image
