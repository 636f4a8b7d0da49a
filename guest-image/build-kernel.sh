#!/usr/bin/env bash
# build-kernel.sh OUTDIR — builds the ksbox guest kernel and copies
#   vmlinux             ELF, stripped (PVH entry note kept; in-kernel kallsyms
#                       still symbolise oopses; System.map is kept next to it)
#   bzImage             the same kernel for the Linux boot protocol
#   kernel.config.final the resolved .config
#   System.map
# into OUTDIR.
#
# Source: Debian's linux-source-6.1 tarball with kernel-patches/*.patch applied
# in name order; config: `tinyconfig` + kernel.config.
# A cold build takes ~10 min on 2 cores, so results are cached OUTSIDE the clone
# in $KSBOX_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/ksbox)/guest-kernel/<key>/,
# key = sha256(kernel.config, the patches, this script, installed
# linux-source-6.1 version).
# A hit only copies. Entries appear by an atomic rename of a finished directory,
# so an interrupted build never leaves a half entry behind.
#
# Env: KSBOX_CACHE_DIR (cache root), KSBOX_KEEP_BUILD=1 (keep the scratch tree),
#      KSBOX_JOBS (make -j, default nproc).
set -euo pipefail

pkg=linux-source-6.1
src_tar=/usr/src/linux-source-6.1.tar.xz

say() { printf 'build-kernel: %s\n' "$*" >&2; }
die() { printf 'build-kernel: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
outdir=$1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
fragment=$here/kernel.config
[ -r "$fragment" ] || die "missing config fragment $fragment"
shopt -s nullglob
patches=("$here"/kernel-patches/*.patch)
shopt -u nullglob

version=$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true)
case "$version" in
  "install ok installed "*) version=${version##* } ;;
  *) die "$pkg is not installed; run scripts/setup.sh" ;;
esac
[ -r "$src_tar" ] || die "$src_tar is missing although $pkg $version is installed; reinstall it (scripts/setup.sh)"

# The key covers everything that decides the output: what we ask for, how we
# build it, and which kernel source. Each input is hashed separately so their
# concatenation cannot be ambiguous.
key=$({
  printf 'fragment %s\n' "$(sha256sum <"$fragment" | cut -d' ' -f1)"
  printf 'script %s\n' "$(sha256sum <"$self" | cut -d' ' -f1)"
  for p in "${patches[@]}"; do printf 'patch %s %s\n' "$(basename "$p")" "$(sha256sum <"$p" | cut -d' ' -f1)"; done
  printf 'source %s %s\n' "$pkg" "$version"
} | sha256sum | cut -d' ' -f1)

cache_root=${KSBOX_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:?HOME is not set; set KSBOX_CACHE_DIR}/.cache}/ksbox}
root=$cache_root/guest-kernel
entry=$root/$key
log=$root/logs/$key.log
outputs=(vmlinux bzImage kernel.config.final System.map)

install_outputs() {
  mkdir -p "$outdir"
  say "copy: $entry -> $outdir"
  for f in "${outputs[@]}"; do
    # Copy then rename, so a reader of OUTDIR never sees a partial file.
    cp "$entry/$f" "$outdir/.$f.tmp.$$"
    mv -f "$outdir/.$f.tmp.$$" "$outdir/$f"
  done
}

if [ -d "$entry" ]; then
  say "cache hit ($pkg $version, key ${key:0:16}…)"
  install_outputs
  exit 0
fi

mkdir -p "$root/logs"
# Serialise concurrent builds of the same key; the loser then finds the entry.
exec 9>"$root/.lock-$key"
if ! flock -n 9; then
  say "another build of this kernel is running; waiting for it"
  flock 9
fi
if [ -d "$entry" ]; then
  say "cache hit after waiting (key ${key:0:16}…)"
  install_outputs
  exit 0
fi

for tool in make gcc flex bison bc xz strip readelf patch; do
  command -v "$tool" >/dev/null || die "'$tool' not found; run scripts/setup.sh"
done

say "cache miss: building $pkg $version (key ${key:0:16}…); log: $log"
# Scratch trees of builds that were killed (no trap ran); safe under our lock.
rm -rf "$root/.build-$key".*
# Scratch lives in the cache root (same filesystem) so the final mv is a rename.
scratch=$(mktemp -d "$root/.build-$key.XXXXXX")
cleanup() {
  if [ "${KSBOX_KEEP_BUILD:-0}" = 1 ]; then say "kept scratch tree $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT
src=$scratch/src
out=$scratch/out
mkdir -p "$src" "$out"
: >"$log"
start=$SECONDS

# Runs a phase with its output in the log; on failure shows the log's tail.
run() {
  if ! "$@" >>"$log" 2>&1; then
    say "FAILED: $*"
    say "last 40 lines of $log:"
    tail -n 40 "$log" >&2
    exit 1
  fi
}

say "extract: $src_tar"
run tar -xJf "$src_tar" -C "$src" --strip-components=1
for p in "${patches[@]}"; do
  say "patch: $(basename "$p")"
  run patch -d "$src" -p1 --forward --batch -i "$p"
done

# The cache key does not cover the caller's environment: drop what Kbuild
# would pick up from it and turn into a different kernel.
unset KCFLAGS KCPPFLAGS KAFLAGS KRUSTFLAGS KBUILD_OUTPUT KBUILD_EXTMOD CROSS_COMPILE \
  LLVM CC LD KCONFIG_CONFIG KCONFIG_ALLCONFIG O V W C
kmake=(make -C "$src" ARCH=x86_64
  # Fixed build identity: `uname -v` and the image do not depend on who built it when.
  KBUILD_BUILD_USER=ksbox KBUILD_BUILD_HOST=ksbox KBUILD_BUILD_TIMESTAMP='1970-01-01 00:00:00 UTC')

say "config: tinyconfig + $(basename "$fragment")"
run "${kmake[@]}" tinyconfig
run env -C "$src" ARCH=x86_64 scripts/kconfig/merge_config.sh -m .config "$fragment"
run "${kmake[@]}" olddefconfig

# Kconfig drops options with unmet dependencies without an error: check that
# every line of the fragment holds in the final .config.
bad=()
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*)
      grep -qxF -- "$line" "$src/.config" || {
        sym=${line%%=*}
        got=$(grep -E "^(# )?$sym[= ]" "$src/.config" || echo "absent (dependencies not met)")
        bad+=("$line  -> got: $got")
      } ;;
    "# CONFIG_"*" is not set")
      sym=${line#\# }; sym=${sym%% *}
      if got=$(grep -E "^$sym=" "$src/.config"); then bad+=("$line  -> got: $got"); fi ;;
  esac
done <"$fragment"
if [ ${#bad[@]} -gt 0 ]; then
  say "config: ${#bad[@]} option(s) of $(basename "$fragment") did not end up as requested:"
  printf '  %s\n' "${bad[@]}" >&2
  die "fix kernel.config (usually a missing dependency; see 'make menuconfig' help for the symbol)"
fi
say "config: all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set)' "$fragment") fragment options verified"

jobs=${KSBOX_JOBS:-$(nproc)}
say "build: make -j$jobs vmlinux bzImage (a cold build takes ~10 min on 2 cores)"
"${kmake[@]}" -j"$jobs" vmlinux bzImage >>"$log" 2>&1 &
make_pid=$!
# Heartbeat, so a long build is visibly alive.
while kill -0 "$make_pid" 2>/dev/null; do
  for _ in $(seq 30); do kill -0 "$make_pid" 2>/dev/null && sleep 1; done
  if kill -0 "$make_pid" 2>/dev/null; then
    last=$(grep -E '^  [A-Z]+ ' "$log" | tail -n 1 | sed 's/^ *//' || true)
    say "build: $((SECONDS - start))s elapsed; last: ${last:-…}"
  fi
done
if ! wait "$make_pid"; then
  say "FAILED: make vmlinux bzImage; first errors, then the last 40 lines of $log:"
  # With -j the tail may be other jobs finishing; the first error is what matters.
  grep -E 'error:|\*\*\*' "$log" | head -n 20 >&2 || true
  echo "..." >&2
  tail -n 40 "$log" >&2
  exit 1
fi

say "strip: vmlinux"
# No DEBUG_INFO, so stripping only drops .symtab/.strtab; kallsyms are inside the
# image and System.map is kept for offline lookups.
strip --strip-all -o "$out/vmlinux" "$src/vmlinux"
# PVH boot (QEMU -M microvm, and VMMs that use it) needs the Xen PHYS32_ENTRY note.
readelf -n "$out/vmlinux" | grep -qE 'Xen.*(0x00000012|PHYS32_ENTRY)' ||
  die "stripped vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"
cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
cp "$src/.config" "$out/kernel.config.final"
cp "$src/System.map" "$out/System.map"
cp "$log" "$out/build.log"
printf 'key=%s\nsource=%s %s\nbuilt=%s\nseconds=%s\n' \
  "$key" "$pkg" "$version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - start))" >"$out/INFO"

# Publish atomically: the entry either exists complete or not at all.
mv -T "$out" "$entry"
say "cached: $entry ($((SECONDS - start))s; vmlinux $(du -h "$entry/vmlinux" | cut -f1), bzImage $(du -h "$entry/bzImage" | cut -f1))"
install_outputs
