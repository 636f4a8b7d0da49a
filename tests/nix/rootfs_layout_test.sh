#!/usr/bin/env bash
# rootfs_layout_test.sh [MAKE_ROOTFS] — runs nix/guest/make-rootfs.sh on a
# small fake NixOS closure (no Nix needed) and checks the image with debugfs:
# what ksbox-agent and the tools in the guest rely on, since the guest never
# runs NixOS's activation script. Needs fakeroot and e2fsprogs (setup.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
make_rootfs=${1:-$here/../../nix/guest/make-rootfs.sh}
for tool in fakeroot mkfs.ext4 debugfs; do
  command -v "$tool" >/dev/null || { echo "FAIL: '$tool' not found; run scripts/setup.sh" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ksbox-rootfs-test.XXXXXX")
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
store=$tmp/store
top=$store/aaaa-nixos-system
etc=$store/bbbb-etc
sudo_pkg=$store/cccc-sudo
files=$store/dddd-files

# A system toplevel: sw/bin and an etc tree as NixOS's etc.nix lays it out
# (links into the store; ".mode/.uid/.gid" next to entries that are copied).
mkdir -p "$top/sw/bin" "$etc/etc/ssl/certs" "$etc/etc/pam.d" "$sudo_pkg/bin" "$files"
for cmd in bash env; do printf '#!/bin/false\n' >"$top/sw/bin/$cmd"; chmod 755 "$top/sw/bin/$cmd"; done
ln -s bash "$top/sw/bin/sh"
ln -s "$etc/etc" "$top/etc"
printf 'sudo binary\n' >"$sudo_pkg/bin/sudo"
printf '127.0.0.1 localhost\n' >"$files/hosts"
printf 'root ALL=(ALL:ALL) ALL\n' >"$files/sudoers"
printf 'secret\n' >"$files/app.conf"
printf 'CERTS\n' >"$files/ca.crt"
printf 'nameserver 192.0.2.1\n' >"$files/resolv.conf"
printf 'auth sufficient pam_rootok.so\n' >"$files/pam-sudo"
ln -s "$files/hosts" "$etc/etc/hosts"
ln -s "$files/ca.crt" "$etc/etc/ssl/certs/ca-certificates.crt"
ln -s "$files/pam-sudo" "$etc/etc/pam.d/sudo"
ln -s "$files/resolv.conf" "$etc/etc/resolv.conf"
ln -s "$files/sudoers" "$etc/etc/sudoers"
printf '0440\n' >"$etc/etc/sudoers.mode"; printf 'root\n' >"$etc/etc/sudoers.uid"; printf '+0\n' >"$etc/etc/sudoers.gid"
ln -s "$files/app.conf" "$etc/etc/app.conf"
printf '0600\n' >"$etc/etc/app.conf.mode"; printf 'sandbox\n' >"$etc/etc/app.conf.uid"; printf 'sandbox\n' >"$etc/etc/app.conf.gid"
ln -s "$files/hosts" "$etc/etc/direct"
printf 'direct-symlink\n' >"$etc/etc/direct.mode"; printf '+0\n' >"$etc/etc/direct.uid"; printf '+0\n' >"$etc/etc/direct.gid"
printf '%s\n' "$top" "$etc" "$sudo_pkg" "$files" >"$tmp/store-paths"
printf 'root:x:0:0:root:/root:/bin/bash\nsandbox:x:1000:1000:ksbox sandbox:/home/sandbox:/bin/bash\n' >"$tmp/passwd"
printf 'root:x:0:\nwheel:x:1:sandbox\nsandbox:x:1000:\n' >"$tmp/group"
printf 'root:!:1::::::\nsandbox:!:1::::::\n' >"$tmp/shadow"
# A build user's files: the image must still be root's.
[ "$(id -u)" -ne 0 ] || chown -R 4321:4321 "$store"
chmod -R a-w "$store"

img=$tmp/rootfs.ext4
TOPLEVEL=$top STORE_PATHS=$tmp/store-paths PASSWD=$tmp/passwd GROUP=$tmp/group SHADOW=$tmp/shadow \
  SUDO=$sudo_pkg/bin/sudo bash "$make_rootfs" "$img"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# stat_field PATH -> "TYPE MODE UID GID" (as debugfs prints them).
stat_field() {
  debugfs -R "stat $1" "$img" 2>/dev/null |
    awk '/^Inode:/ { for (i = 1; i <= NF; i++) { if ($i == "Type:") t = $(i + 1); if ($i == "Mode:") m = $(i + 1) } }
         /^User:/ { u = $2; g = $4 } END { print t, m, u, g }'
}
expect_stat() { # PATH "TYPE MODE UID GID"
  local got; got=$(stat_field "$1")
  [ "$got" = "$2" ] || fail "$1: mode/uid/gid '$got', want '$2'"
}
# A link's target: inline ("fast") links are in the inode, longer ones in a block.
link_of() {
  local st; st=$(debugfs -R "stat $1" "$img" 2>/dev/null)
  grep -q '^Inode:.*Type: symlink' <<<"$st" || return 0
  if grep -q '^Fast link dest:' <<<"$st"; then
    sed -n 's/^Fast link dest: "\(.*\)"$/\1/p' <<<"$st"
  else
    debugfs -R "cat $1" "$img" 2>/dev/null
  fi
}
expect_link() { # PATH TARGET
  local got; got=$(link_of "$1")
  [ "$got" = "$2" ] || fail "$1 links to '$got', want '$2'"
}
cat_file() { debugfs -R "cat $1" "$img" 2>/dev/null; }
exists() { debugfs -R "stat $1" "$img" 2>&1 | grep -q '^Inode:'; }

label=$(dumpe2fs -h "$img" 2>/dev/null | sed -n 's/^Filesystem volume name: *//p')
[ "$label" = ksbox-root ] || fail "label '$label', want ksbox-root"
dumpe2fs -h "$img" 2>/dev/null | grep -q '^Filesystem features:.*has_journal' && fail "image has a journal"

# The agent's PATH and /bin/sh: /usr/bin is the system profile's bin.
expect_link /usr/bin "$top/sw/bin"
expect_link /bin usr/bin
expect_link /run/current-system "$top"
in_store=/nix/store/$(basename "$top")
exists "$in_store/sw/bin/bash" || fail "the closure is not in the image's /nix/store"
expect_stat "$in_store/sw/bin/bash" "regular 0755 0 0"
expect_stat "$in_store/sw/bin/sh" "symlink 0777 0 0"
exists "/nix/store/$(basename "$files")/sudoers" || fail "a store path of the closure is missing"
# sudo: a setuid-root copy, first in the agent's PATH.
expect_stat /run/wrappers/bin/sudo "regular 04755 0 0"
expect_link /usr/local/bin/sudo /run/wrappers/bin/sudo
[ "$(cat_file /run/wrappers/bin/sudo)" = "sudo binary" ] || fail "/run/wrappers/bin/sudo is not the sudo binary"
# /etc as activation would leave it.
expect_link /etc/static "$top/etc"
expect_link /etc/hosts /etc/static/hosts
expect_link /etc/ssl/certs/ca-certificates.crt /etc/static/ssl/certs/ca-certificates.crt
expect_link /etc/pam.d/sudo /etc/static/pam.d/sudo
expect_link /etc/direct "$files/hosts"
expect_stat /etc/sudoers "regular 0440 0 0"
[ "$(cat_file /etc/sudoers)" = "root ALL=(ALL:ALL) ALL" ] || fail "/etc/sudoers content"
expect_stat /etc/app.conf "regular 0600 1000 1000"
exists /etc/resolv.conf && fail "/etc/resolv.conf exists (the agent writes it; a store link would make it read-only)"
exists /etc/sudoers.mode && fail "/etc/sudoers.mode was copied"
[ "$(cat_file /etc/passwd)" = "$(cat "$tmp/passwd")" ] || fail "/etc/passwd differs"
[ "$(cat_file /etc/group)" = "$(cat "$tmp/group")" ] || fail "/etc/group differs"
expect_stat /etc/passwd "regular 0644 0 0"
expect_stat /etc/shadow "regular 0640 0 0"
expect_link /etc/mtab ../proc/self/mounts
# Homes and the directories the agent mounts on.
expect_stat /home/sandbox "directory 0700 1000 1000"
expect_stat /root "directory 0700 0 0"
expect_stat /tmp "directory 01777 0 0"
for d in /dev /proc /sys /mnt; do expect_stat "$d" "directory 0755 0 0"; done

if [ "$failures" -ne 0 ]; then
  echo "rootfs_layout_test: $failures check(s) failed" >&2
  exit 1
fi
echo "rootfs_layout_test: ok"
