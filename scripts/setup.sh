#!/usr/bin/env bash
# Installs everything ksbox needs to build, boot and test on Debian 12.
# Idempotent: only missing packages are installed, so a warm machine pays nothing.
set -euo pipefail

packages=(
  # toolchain and build
  cmake g++ clang pkg-config ninja-build make git
  # libraries (Debian 12)
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libfmt-dev
  nlohmann-json3-dev libboost-dev liburing-dev libgit2-dev libslirp-dev
  # slirp.pc requires glib-2.0, but Debian 12's libslirp-dev does not depend on it
  libglib2.0-dev
  # guest kernel and initramfs
  linux-source-6.1 patch bc flex bison libelf-dev libssl-dev xz-utils cpio gzip busybox-static
  # guest root file system (guest-image/rootfs/: debootstrap, an ext4 image)
  debootstrap e2fsprogs
  # nested harness and benchmark peers (QEMU; dropbear SSH for the exec benchmark)
  qemu-system-x86 qemu-utils dropbear-bin
  # the disk benchmark (benchmarks/blk) runs fio in the guests
  fio
  # end-to-end tests: a terminal multiplexer drives `ksbox attach`
  tmux
  # the Nix flake's offline checks (tests/nix): nix-instantiate, and the
  # NixOS image recipe run on a fake closure; python3 reads their JSON
  nix-bin fakeroot python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
