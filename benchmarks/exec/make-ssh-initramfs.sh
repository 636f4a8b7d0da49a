#!/usr/bin/env bash
# make-ssh-initramfs.sh BASE_INITRAMFS OUTDIR
# The exec benchmark's peer: the ksbox test initramfs plus dropbear (Debian's
# dropbear-bin, with the shared libraries it needs), a host key, and a client
# key authorised for root. The extra files are a second gzip'd cpio appended
# to the base one (Linux unpacks concatenated archives in order).
# Writes OUTDIR/initramfs-ssh.cpio.gz and OUTDIR/client_key (dbclient format).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BASE_INITRAMFS OUTDIR" >&2; exit 2; }
base=$1 out=$2
die() { echo "make-ssh-initramfs: error: $*" >&2; exit 1; }
for t in /usr/sbin/dropbear /usr/bin/dropbearkey /usr/bin/dbclient; do
  [ -x "$t" ] || die "$t missing: run scripts/setup.sh (dropbear-bin)"
done
[ -r "$base" ] || die "no base initramfs at $base"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{usr/sbin,etc/dropbear,root/.ssh,lib64,lib/x86_64-linux-gnu}
cp /usr/sbin/dropbear "$stage/usr/sbin/"
# Every shared object the server loads (glibc >= 2.34 has NSS files built in).
ldd /usr/sbin/dropbear | awk '/=>/ { print $3 } /ld-linux/ { print $1 }' | while read -r lib; do
  [ -f "$lib" ] || continue
  case $lib in
    */ld-linux*) cp -L "$lib" "$stage/lib64/" ;;
    *) cp -L "$lib" "$stage/lib/x86_64-linux-gnu/" ;;
  esac
done
dropbearkey -t ed25519 -f "$stage/etc/dropbear/host_key" >/dev/null 2>&1
rm -f "$out/client_key"
dropbearkey -t ed25519 -f "$out/client_key" >/dev/null 2>&1
dropbearkey -y -f "$out/client_key" 2>/dev/null | grep '^ssh-' > "$stage/root/.ssh/authorized_keys"
chmod 700 "$stage/root" "$stage/root/.ssh"
chmod 600 "$stage/root/.ssh/authorized_keys"

cp "$base" "$out/initramfs-ssh.cpio.gz"
(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) \
  >> "$out/initramfs-ssh.cpio.gz"
