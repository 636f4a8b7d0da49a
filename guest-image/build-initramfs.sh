#!/usr/bin/env bash
# build-initramfs.sh OUTFILE — writes the ksbox busybox initramfs (gzip'd newc cpio):
#   /init (initramfs/init), /bin/busybox (busybox-static) + a symlink per applet,
#   /sbin/ksbox-agent (from $AGENT), /dev/console (c 5:1) and /dev/null (c 1:3),
#   dirs /proc /sys /dev /tmp /etc /root /mnt /home, an /etc/passwd and
#   /etc/group with root and the unprivileged user sandbox (1000:1000), whose
#   home /init creates.
#
# The archive is written by this script directly (the newc format is ASCII hex
# headers), so device nodes need no mknod, root or fakeroot, and every entry has
# uid/gid 0 and a fixed mtime: same inputs, byte-identical output.
# Env: BUSYBOX (default /bin/busybox), SOURCE_DATE_EPOCH (mtime, default 0),
#      AGENT (a statically linked ksbox-agent; CMake passes its build. Unset:
#      an image without the agent, whose init falls back to the console shell).
set -euo pipefail
export LC_ALL=C  # ${#name} must count bytes

say() { printf 'build-initramfs: %s\n' "$*" >&2; }
die() { printf 'build-initramfs: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUTFILE" >&2; exit 2; }
outfile=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
init=$here/initramfs/init
busybox=${BUSYBOX:-/bin/busybox}
agent=${AGENT:-}
mtime=${SOURCE_DATE_EPOCH:-0}

[ -r "$init" ] || die "missing $init"
[ -x "$busybox" ] || die "$busybox not found; run scripts/setup.sh (busybox-static)"
# A dynamically linked busybox would need its libraries in the image.
if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
  die "$busybox is not statically linked (install busybox-static)"
fi
if [ -n "$agent" ]; then
  [ -x "$agent" ] || die "AGENT=$agent is not an executable file"
  if command -v file >/dev/null && ! file -L "$agent" | grep -q 'statically linked'; then
    die "$agent is not statically linked"
  fi
else
  say "warning: AGENT not set; the image has no ksbox-agent and boots to a shell"
fi

ino=1000
# entry NAME MODE SIZE [RDEVMAJOR RDEVMINOR]: one newc header + name + padding.
# Data (if any) must follow, then pad_to4 SIZE.
entry() {
  local name=$1 mode=$2 size=$3 rmaj=${4:-0} rmin=${5:-0} nlink=1
  [ $(( mode & 0170000 )) -eq $(( 0040000 )) ] && nlink=2
  ino=$((ino + 1))
  # magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
    "$ino" "$mode" 0 0 "$nlink" "$mtime" "$size" 0 0 "$rmaj" "$rmin" $(( ${#name} + 1 )) 0 "$name"
  pad_to4 $(( 110 + ${#name} + 1 ))
}
# NUL padding to a 4-byte boundary, with builtins only (hundreds of entries).
pad_to4() { case $(( $1 % 4 )) in 1) printf '\0\0\0' ;; 2) printf '\0\0' ;; 3) printf '\0' ;; esac; }
dir()     { entry "$1" $(( 0040000 | 0$2 )) 0; }
node()    { entry "$1" $(( 0020000 | 0$2 )) 0 "$3" "$4"; }
symlink() { entry "$1" $(( 0120777 )) ${#2}; printf '%s' "$2"; pad_to4 ${#2}; }
file()    { local size; size=$(stat -L -c %s "$2"); entry "$1" $(( 0100000 | 0$3 )) "$size"; cat "$2"; pad_to4 "$size"; }
text()    { entry "$1" $(( 0100000 | 0$3 )) ${#2}; printf '%s' "$2"; pad_to4 ${#2}; }

# Applets by install path (e.g. sbin/reboot, usr/bin/env); we keep busybox's
# layout so both /bin and /sbin paths that scripts hard-code exist.
mapfile -t applets < <("$busybox" --list-full | sort)
[ ${#applets[@]} -gt 100 ] || die "'$busybox --list-full' listed only ${#applets[@]} applets"

write_archive() {
  for d in bin sbin usr usr/bin usr/sbin dev etc home mnt proc root sys tmp; do
    case $d in tmp) dir "$d" 1777 ;; root) dir "$d" 700 ;; *) dir "$d" 755 ;; esac
  done
  node dev/console 600 5 1
  node dev/null 666 1 3
  text etc/passwd $'root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh\n' 644
  text etc/group $'root:x:0:\ntty:x:5:sandbox\nsandbox:x:1000:\n' 644
  file init "$init" 755
  file bin/busybox "$busybox" 755
  [ -z "$agent" ] || file sbin/ksbox-agent "$agent" 755
  local a target
  for a in "${applets[@]}"; do
    [ "$a" = bin/busybox ] && continue
    # Relative targets keep the image self-contained wherever it is unpacked.
    case $a in
      bin/*) target=busybox ;;
      sbin/*) target=../bin/busybox ;;
      usr/bin/*|usr/sbin/*) target=../../bin/busybox ;;
      linuxrc) continue ;;  # old initrd entry point; we boot /init
      *) die "unexpected applet path $a" ;;
    esac
    symlink "$a" "$target"
  done
  entry TRAILER!!! 0 0
}

mkdir -p "$(dirname "$outfile")"
tmp=$(mktemp "$outfile.tmp.XXXXXX")
trap 'rm -f "$tmp"' EXIT
write_archive | gzip -9 -n >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$outfile"
say "wrote $outfile ($(stat -c %s "$outfile") bytes, ${#applets[@]} applets)"
