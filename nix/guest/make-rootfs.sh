#!/usr/bin/env bash
# make-rootfs.sh OUT.ext4 — the NixOS guest's root file system as the
# read-only ext4 base ksbox-agent mounts (guest-image/agent/README.md, "Root
# disk"), from a NixOS system closure. Run by nix/guest/rootfs.nix; runs on
# its own too (tests/nix/rootfs_layout_test.sh feeds it a fake closure).
#
# The guest never runs NixOS's stage 2 or activation script: the agent stays
# PID 1 and only switches to this disk. So what activation would do at boot
# is done here, once:
#   /etc          every entry of the system's etc tree: a link through
#                 /etc/static, or a copy with its mode and owner when NixOS
#                 asks for one (sudoers, ...); passwd/group/shadow from
#                 $PASSWD/$GROUP/$SHADOW; no resolv.conf (the agent writes it)
#   /run/current-system, /run/wrappers/bin/sudo (setuid root copy)
#   /usr/bin -> the system profile's bin, /bin -> usr/bin, so the agent's fixed
#                 PATH (/usr/local/bin:...:/usr/bin:/bin) and /bin/sh work;
#                 /usr/local/bin/sudo -> the setuid copy (first in that PATH)
#   home directories of the users in $PASSWD, owned by them, 0700
# Every file belongs to root (fakeroot), except the homes.
#
# Env: TOPLEVEL (system.build.toplevel), STORE_PATHS (file: its closure, one
#      store path a line), PASSWD, GROUP, SHADOW (files), SUDO (the sudo
#      binary), LABEL (default ksbox-root).
set -euo pipefail

say() { printf 'make-rootfs: %s\n' "$*" >&2; }
die() { printf 'make-rootfs: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUT.ext4" >&2; exit 2; }
out=$1
for v in TOPLEVEL STORE_PATHS PASSWD GROUP SHADOW SUDO; do
  [ -n "${!v:-}" ] || die "$v is not set"
done
for tool in fakeroot mkfs.ext4 debugfs e2fsck; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done
[ -d "$TOPLEVEL/sw/bin" ] || die "$TOPLEVEL/sw/bin is missing (not a NixOS system?)"
[ -d "$TOPLEVEL/etc/" ] || die "$TOPLEVEL/etc is missing (not a NixOS system?)"

work=$(mktemp -d "${TMPDIR:-/tmp}/ksbox-rootfs.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
root=$work/root
owners=$work/owners # "UID:GID PATH" lines applied under fakeroot

mkdir -p "$root"/{nix/store,etc,dev,proc,sys,tmp,mnt,root,home,var/tmp,run/wrappers/bin,usr/local/bin}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 0700 "$root/root"

say "store: copying $(wc -l <"$STORE_PATHS") paths"
while IFS= read -r path; do
  [ -n "$path" ] && cp -a "$path" "$root/nix/store/"
done <"$STORE_PATHS"
# Copies of the read-only store must still be removable by the trap above.
chmod -R u+w "$root/nix/store"

ln -s "$TOPLEVEL" "$root/run/current-system"
ln -s "$TOPLEVEL/sw/bin" "$root/usr/bin"
ln -s usr/bin "$root/bin"
ln -s "$TOPLEVEL/etc" "$root/etc/static"
cp "$SUDO" "$root/run/wrappers/bin/sudo"
ln -s /run/wrappers/bin/sudo "$root/usr/local/bin/sudo"

# An owner as NixOS's etc tree writes it ("+N" or a name) -> a number.
lookup_id() { # lookup_id VALUE FILE
  case $1 in
    +[0-9]*) printf '%s' "${1#+}" ;;
    *) awk -F: -v n="$1" '$1 == n { print $3; found = 1 } END { if (!found) print 0 }' "$2" ;;
  esac
}

say "etc: linking $TOPLEVEL/etc"
n_links=0 n_copies=0
while IFS= read -r rel; do
  rel=${rel#./}
  case $rel in
    passwd | group | shadow | resolv.conf) continue ;;
  esac
  src=$TOPLEVEL/etc/$rel
  dst=$root/etc/$rel
  mkdir -p "$(dirname "$dst")"
  if [ -f "$src.mode" ]; then
    mode=$(cat "$src.mode")
    if [ "$mode" = direct-symlink ]; then
      ln -s "$(readlink "$src")" "$dst"
    else
      cp -L "$src" "$dst"
      chmod "$mode" "$dst"
      echo "$(lookup_id "$(cat "$src.uid")" "$PASSWD"):$(lookup_id "$(cat "$src.gid")" "$GROUP") etc/$rel" >>"$owners"
      n_copies=$((n_copies + 1))
      continue
    fi
  else
    ln -s "/etc/static/$rel" "$dst"
  fi
  n_links=$((n_links + 1))
done < <(cd "$TOPLEVEL/etc/" && find . -type l | sort)
say "etc: $n_links links, $n_copies copies"

install -m 0644 "$PASSWD" "$root/etc/passwd"
install -m 0644 "$GROUP" "$root/etc/group"
install -m 0640 "$SHADOW" "$root/etc/shadow"
ln -s ../proc/self/mounts "$root/etc/mtab"

while IFS=: read -r name _ uid gid _ home _; do
  case $home in
    /home/?* | /root)
      mkdir -p "$root$home"
      chmod 0700 "$root$home"
      echo "$uid:$gid ${home#/}" >>"$owners"
      ;;
  esac
done <"$PASSWD"

# Content + 4 KiB a file (block rounding of small files) + 10% + 64 MiB; the
# base is mounted read-only, so it needs no room to grow.
files=$(find "$root" | wc -l)
used_kib=$(du -s --apparent-size --block-size=1K "$root" | cut -f1)
size_mib=$(((used_kib + files * 4) * 11 / 10 / 1024 + 64))
inodes=$((files + files / 5 + 1024))
say "image: $files files, $((used_kib / 1024)) MiB of content -> ${size_mib} MiB"
rm -f "$out"
touch "$owners"
# Ownership exists only inside this one fakeroot session, which mkfs.ext4
# reads it from.
fakeroot -- bash -euo pipefail -c '
  root=$1 owners=$2
  chown -hR 0:0 "$root"
  while read -r ids path; do chown -h "$ids" "$root/$path"; done <"$owners"
  mkfs.ext4 -q -F -L "$3" -m 0 -N "$4" -O ^has_journal -E root_owner=0:0 -d "$root" "$5" "$6"M
' _ "$root" "$owners" "${LABEL:-ksbox-root}" "$inodes" "$out" "$size_mib"
# A build sandbox may not create setuid files (Nix's does not), so the bit
# is set in the image itself.
debugfs -w -R 'set_inode_field /run/wrappers/bin/sudo mode 0104755' "$out" 2>/dev/null
debugfs -R 'stat /run/wrappers/bin/sudo' "$out" 2>/dev/null | grep -qE 'Mode: +04755' ||
  die "could not make /run/wrappers/bin/sudo setuid in $out"
e2fsck -fn "$out" >/dev/null || die "e2fsck found errors in $out"
say "wrote $out"
