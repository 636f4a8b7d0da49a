#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/*_fuzz.cc) with clang and runs each
# for KSBOX_FUZZ_SECONDS (default 20) from its seed corpus in
# tests/fuzz/corpus/<name>/. Any crash, leak or sanitizer report fails the run;
# the reproducer is kept and its path printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${KSBOX_FUZZ_BUILD_DIR:-$root/build/fuzz-clang}
secs=${KSBOX_FUZZ_SECONDS:-20}

command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing: run scripts/setup.sh" >&2; exit 1; }
targets=()
for src in "$root"/tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$src" .cc)"); done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets found" >&2; exit 1; }

CXX=clang++ cmake -S "$root" -B "$out" -G Ninja -DKSBOX_WERROR=ON >/dev/null
cmake --build "$out" --target "${targets[@]}" >/dev/null

# Leaks inside system libraries that we cannot fix are listed, with why, here.
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  seeds=$root/tests/fuzz/corpus/${t%_fuzz}
  [ -d "$seeds" ] || { echo "fuzz: $t has no seed corpus at $seeds" >&2; exit 1; }
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp -r "$seeds"/. "$work/$t/corpus/"
  if ! "$out/tests/fuzz/$t" -max_total_time="$secs" -max_len=16384 -print_final_stats=1 \
      -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1; then
    keep=$root/build/fuzz-crash-$t
    rm -rf "$keep" && cp -r "$work/$t/artifacts" "$keep"
    tail -n 40 "$work/$t/log" >&2
    echo "fuzz: $t FAILED; reproducer(s) in $keep" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log")
  echo "fuzz: $t ok: ${runs:-?} inputs in ${secs}s, no crash"
done
