#!/usr/bin/env bash
# rootfs_test.sh ROOTFS_EXT4 — checks the content of the default guest root
# file system (guest-image/rootfs/) without KVM: mounts the image read-only
# with a tmpfs overlay on top (the layout a sandbox gets, with a throwaway
# upper layer), chroots into it and runs the tools and agent CLIs, as root
# and as the `sandbox` user. Mounts live in a private mount namespace, so
# they vanish with it whatever happens.
# Needs root (loop mount, chroot): without it the test is skipped (exit 77).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 ROOTFS_EXT4" >&2; exit 2; }
image=$(realpath "$1")
if [ ! -f "$image" ]; then
  echo "FAIL: $image is missing; build it: cmake --build build --target guest-rootfs" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root for the loop mount and chroot (runs as uid $(id -u))"
  exit 77
fi

if [ "${KSBOX_ROOTFS_TEST_INNER:-}" != 1 ]; then
  # Own UTS namespace too: the chroot gets the guest's host name.
  exec env KSBOX_ROOTFS_TEST_INNER=1 unshare --mount --uts --propagation private "$0" "$image"
fi
hostname ksbox

scratch=$(mktemp -d /tmp/ksbox-rootfs-test.XXXXXX)
trap 'umount -R "$scratch/root" 2>/dev/null; umount "$scratch/upper" "$scratch/lower" 2>/dev/null; rm -rf --one-file-system "$scratch"' EXIT
root=$scratch/root
mkdir -p "$scratch/lower" "$scratch/upper" "$root"
mount -o ro,loop -t ext4 "$image" "$scratch/lower"
mount -t tmpfs tmpfs "$scratch/upper"
mkdir -p "$scratch/upper/up" "$scratch/upper/work"
mount -t overlay overlay -o "lowerdir=$scratch/lower,upperdir=$scratch/upper/up,workdir=$scratch/upper/work" "$root"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/tmp"

passed=0 failed=0
check() { # check NAME CMD... : CMD runs on the host side
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); printf 'ok   %-40s %s\n' "$name" "$(printf '%s' "$out" | head -n 1)"
  else
    failed=$((failed + 1)); printf 'FAIL %-40s exit %s: %s\n' "$name" "$?" "$(printf '%s' "$out" | tail -n 5)"
  fi
}
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
as_sandbox() { in_root sudo -n -u sandbox -H "$@"; }
equals() { local want=$1 got; shift; got=$("$@" 2>&1) || return; [ "$got" = "$want" ] || { echo "want '$want', got '$got'"; return 1; }; echo "$got"; }

check "base is mounted read-only" sh -c "! touch '$scratch/lower/.w' && echo read-only"
for tool in "git --version" "node --version" "npm --version" "python3 --version" "python3 -m pip --version" \
  "python3 -m venv --help" "gcc --version" "make --version" "rg --version" "fdfind --version" \
  "jq --version" "vim --version" "less --version" "curl --version" "ssh -V"; do
  check "$tool" in_root $tool
done
check "sandbox uid"   equals 1000 in_root id -u sandbox
check "sandbox gid"   equals 1000 in_root id -g sandbox
check "sandbox home+shell" equals /home/sandbox:/bin/bash sh -c "chroot '$root' getent passwd sandbox | cut -d: -f6,7"
check "sudoers.d/sandbox mode 0440" equals 440 stat -c %a "$root/etc/sudoers.d/sandbox"
check "sandbox: passwordless sudo" equals 0 as_sandbox sudo -n id -u
# Silent: no password prompt, no complaint (sudo warns when the host name does not resolve).
check "sudo -n -u sandbox sudo -n true" equals "" in_root sudo -n -u sandbox sudo -n true
check "host name ksbox resolves" in_root getent hosts ksbox
# The agents run as the sandbox user, with its (writable) home.
for agent in claude gemini codex; do
  check "$agent --version (as sandbox)" as_sandbox timeout 120 "$agent" --version
done
check "python3 venv + pip (as sandbox)" as_sandbox sh -c \
  'python3 -m venv /tmp/v && /tmp/v/bin/pip --version'
check "apt lists and caches removed" sh -c "[ -z \"\$(ls -A '$root/var/lib/apt/lists' 2>/dev/null | grep -v '^partial\$\|^lock\$')\" ] && ! ls '$root'/var/cache/apt/*.deb >/dev/null 2>&1 && echo clean"
check "no man pages" sh -c "[ -z \"\$(ls -A '$root/usr/share/man')\" ] && echo none"

echo "rootfs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
