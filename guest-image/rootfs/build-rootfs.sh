#!/usr/bin/env bash
# build-rootfs.sh OUT_DIR — builds the default guest root file system and puts
#   rootfs.ext4    the read-only base shared by all sandboxes (ext4, no journal)
#   manifest.txt   Debian package versions, node/npm and agent CLI versions
# into OUT_DIR.
#
# Recipe: this directory. `debootstrap --variant=minbase bookworm`, then
# packages.txt (apt, no recommends), node.txt (node + npm from the npm
# registry), agents.txt (npm install -g), a `sandbox` user (uid/gid 1000,
# passwordless sudo); customize.sh does the in-chroot part. Docs, man pages,
# locales and apt caches are left out.
#
# A cold build takes minutes, so results are cached outside the clone in
# $KSBOX_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/ksbox)/rootfs/<key>/,
# key = sha256(every file of this directory, suite). A hit only links (or
# copies). Entries appear by an atomic rename of a finished directory.
#
# Needs root (debootstrap, chroot, mounts): uses sudo when not root.
# Env: KSBOX_CACHE_DIR (cache root), KSBOX_DEBIAN_MIRROR (default
#      http://deb.debian.org/debian), KSBOX_NPM_REGISTRY (default
#      https://registry.npmjs.org), KSBOX_KEEP_BUILD=1 (keep the staging tree).
set -euo pipefail

suite=bookworm

say() { printf 'build-rootfs: %s\n' "$*" >&2; }
die() { printf 'build-rootfs: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
outdir=$(realpath -m "$1")

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "must run as root (debootstrap, chroot), and sudo is not installed"
  say "not root: re-running under sudo"
  exec sudo --preserve-env=KSBOX_CACHE_DIR,KSBOX_DEBIAN_MIRROR,KSBOX_NPM_REGISTRY,SSL_CERT_FILE,KSBOX_KEEP_BUILD,http_proxy,https_proxy,no_proxy \
    HOME="$HOME" XDG_CACHE_HOME="${XDG_CACHE_HOME:-}" "$self" "$outdir"
fi

# Every recipe file, each hashed separately with its name, so the key changes
# with any edit and their concatenation cannot be ambiguous.
key=$({
  printf 'suite %s\n' "$suite"
  for f in "$here"/*; do
    [ -f "$f" ] && printf '%s %s\n' "$(basename "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)"
  done
} | sha256sum | cut -d' ' -f1)

cache_root=${KSBOX_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:?HOME is not set; set KSBOX_CACHE_DIR}/.cache}/ksbox}
root=$cache_root/rootfs
entry=$root/$key
log=$root/logs/$key.log

install_outputs() {
  mkdir -p "$outdir"
  say "install: $entry -> $outdir"
  # The base is never written, so a hard link is as good as a copy and free;
  # across file systems it is a copy. Link/copy then rename: no partial file.
  cp -f --link "$entry/rootfs.ext4" "$outdir/.rootfs.ext4.tmp.$$" 2>/dev/null ||
    cp -f --sparse=always "$entry/rootfs.ext4" "$outdir/.rootfs.ext4.tmp.$$"
  mv -f "$outdir/.rootfs.ext4.tmp.$$" "$outdir/rootfs.ext4"
  # A hit may be older than the recipe files (a reverted edit): make the
  # output newer than its inputs so make/ninja do not rerun this every time.
  touch "$outdir/rootfs.ext4"
  cp -f "$entry/manifest.txt" "$outdir/.manifest.txt.tmp.$$"
  mv -f "$outdir/.manifest.txt.tmp.$$" "$outdir/manifest.txt"
}

if [ -d "$entry" ]; then
  say "cache hit (key ${key:0:16}…)"
  install_outputs
  exit 0
fi

mkdir -p "$root/logs"
# Serialise concurrent builds of the same key; the loser then finds the entry.
exec 9>"$root/.lock-$key"
flock -n 9 || { say "another build of this root file system is running; waiting for it"; flock 9; }
[ ! -d "$entry" ] || { say "cache hit after waiting (key ${key:0:16}…)"; install_outputs; exit 0; }

for tool in debootstrap chroot mkfs.ext4 e2fsck mount umount flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found; run scripts/setup.sh"
done

# Scratch lives in the cache root (same file system) so the final mv is a rename.
stage_mounts=()
unmount_all() {
  local i
  for ((i = ${#stage_mounts[@]} - 1; i >= 0; i--)); do
    umount "${stage_mounts[i]}" 2>/dev/null || umount -l "${stage_mounts[i]}" || return 1
  done
  stage_mounts=()
}
remove_scratch() {
  local d=$1
  # Never delete through a mount: a bind-mounted /dev must be gone first.
  if findmnt -rn -o TARGET | grep -q "^$d/"; then
    say "not removing $d: something is still mounted below it"
    return 1
  fi
  rm -rf --one-file-system "$d"
}
# Scratch trees of builds that were killed (no trap ran); safe under our lock.
for old in "$root/.build-$key".*; do [ -e "$old" ] && remove_scratch "$old"; done

say "cache miss: building Debian $suite root file system (key ${key:0:16}…); log: $log"
scratch=$(mktemp -d "$root/.build-$key.XXXXXX")
cleanup() {
  unmount_all || true
  if [ "${KSBOX_KEEP_BUILD:-0}" = 1 ]; then say "kept staging tree $scratch"; else remove_scratch "$scratch" || say "could not remove $scratch"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stage=$scratch/stage
out=$scratch/out
mkdir -p "$stage" "$out"
: >"$log"
start=$SECONDS
phase_start=$SECONDS

phase() {
  [ -z "${phase_name:-}" ] || say "$phase_name: done in $((SECONDS - phase_start))s"
  phase_name=$1
  phase_start=$SECONDS
  say "$phase_name: ${2:-…}"
}

# Runs a step with its output in the log; on failure names the phase and
# shows the log's tail (where apt/npm say which package failed).
run() {
  if ! "$@" >>"$log" 2>&1; then
    say "FAILED in phase '$phase_name': $*"
    grep '^customize: error' "$log" | tail -n 5 | sed 's/^/  /' >&2 || true
    say "last 40 lines of $log:"
    tail -n 40 "$log" >&2
    exit 1
  fi
}

mirror=${KSBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
phase debootstrap "minbase $suite from $mirror"
run debootstrap --variant=minbase --components=main "$suite" "$stage" "$mirror"

# The chroot needs /dev (npm, apt's /dev/null), /proc and the host's DNS.
mount_in() { mount "$@"; stage_mounts+=("${@: -1}"); }
mount_in -t proc proc "$stage/proc"
mount_in -t sysfs sysfs "$stage/sys"
mount_in --bind /dev "$stage/dev"
cp -L /etc/resolv.conf "$stage/etc/resolv.conf"
# Fetches during the build trust what this host trusts (a host behind a
# TLS-intercepting proxy has its CA there); the copy is not left in the image.
host_ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$host_ca" ] && install -m 0644 "$host_ca" "$stage/tmp/build-ca.crt"
install -m 0644 "$here/packages.txt" "$here/node.txt" "$here/agents.txt" "$stage/tmp/"
install -m 0755 "$here/customize.sh" "$stage/tmp/customize.sh"

# customize.sh prints "phase: NAME" lines; they become our phases.
in_chroot() {
  chroot "$stage" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
    MIRROR="$mirror" SUITE="$suite" NPM_REGISTRY="${KSBOX_NPM_REGISTRY:-https://registry.npmjs.org}" \
    /tmp/customize.sh "$@"
}
for step in apt node agents user manifest slim; do
  phase "$step" "customize.sh $step"
  run in_chroot "$step"
done

unmount_all || die "could not unmount the staging tree's /proc, /sys, /dev"
cp "$stage/tmp/manifest.txt" "$out/manifest.txt"
rm -rf --one-file-system "$stage/tmp/"* "$stage/tmp/".[!.]* 2>/dev/null || true
# The guest's resolver comes from its own network setup, not the build host's.
rm -f "$stage/etc/resolv.conf"

phase image "mkfs.ext4 -d"
used_kib=$(du -s --apparent-size --block-size=1K -x "$stage" | cut -f1)
files=$(find "$stage" -xdev | wc -l)
# Content + 10% + 64 MiB for metadata and block rounding; the base is mounted
# read-only, so it needs no room to grow (writes go to each sandbox's layer).
size_mib=$(((used_kib * 11 / 10) / 1024 + 64))
inodes=$((files + files / 5 + 1024))
run mkfs.ext4 -q -F -L ksbox-root -m 0 -N "$inodes" -O ^has_journal \
  -d "$stage" "$out/rootfs.ext4" "${size_mib}M"
run e2fsck -fn "$out/rootfs.ext4"
chmod 0444 "$out/rootfs.ext4"
phase publish "cache entry"

printf 'key=%s\nsuite=%s\nmirror=%s\nbuilt=%s\nseconds=%s\nsize_mib=%s\ncontent_kib=%s\n' \
  "$key" "$suite" "$mirror" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - start))" \
  "$size_mib" "$used_kib" >"$out/INFO"
cp "$log" "$out/build.log"
# Publish atomically: the entry either exists complete or not at all.
mv -T "$out" "$entry"
say "cached: $entry ($((SECONDS - start))s; rootfs.ext4 ${size_mib} MiB, $(du -h "$entry/rootfs.ext4" | cut -f1) allocated)"
install_outputs
