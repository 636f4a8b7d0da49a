#!/usr/bin/env bash
# make-initramfs.sh BASE OUT [--tool NAME]... PROBE... — the test guest image:
# BASE (the default initramfs) followed by a second gzip'd cpio archive (the
# kernel unpacks concatenated archives in order) holding the host's git and
# each --tool (e.g. fio for benchmarks/blk), with the shared libraries ldd
# names, and each PROBE (static: fs_probe, blk_probe, net_probe) as /usr/bin/<its name>.
# The end-to-end tests need git in the guest; the default image stays small.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BASE OUT [--tool NAME]... PROBE..." >&2; exit 2; }
base=$1 out=$2
shift 2
tools=(git)
while [ "${1:-}" = --tool ]; do tools+=("$2"); shift 2; done
die() { printf 'make-initramfs: error: %s\n' "$*" >&2; exit 1; }
[ -r "$base" ] || die "missing base image $base"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
add() { # copy a host file to the same path in the image
  mkdir -p "$stage$(dirname "$1")"
  cp -L "$1" "$stage$1"
}
for tool in "${tools[@]}"; do
  path=$(command -v "$tool") || die "$tool not found on the host"
  add "$path"
  # ldd prints "name => /path (addr)" and the loader as "/path (addr)".
  while read -r lib; do add "$lib"; done < <(ldd "$path" | grep -o '/[^ ]*' | sort -u)
done
mkdir -p "$stage/usr/bin"
for probe in "$@"; do install -m 755 "$probe" "$stage/usr/bin/$(basename "$probe")"; done

tmp=$(mktemp "$out.tmp.XXXXXX")
{ cat "$base"; (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9 -n); } >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$out"
