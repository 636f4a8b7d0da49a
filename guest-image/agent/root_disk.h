// Booting from a root disk instead of staying in the initramfs. The kernel
// command line names the disks (dotted names: the kernel neither parses them
// nor passes them to init, so the agent reads /proc/cmdline):
//   ksbox.root=DISK      the read-only base (guest-image/rootfs/, ext4)
//   ksbox.overlay=DISK   the sandbox's own writable layer (ext4, made by the
//                        host); without it the layer is a tmpfs and nothing
//                        persists
// DISK is serial:ID, the virtio-blk disk whose serial is ID (what `ksbox run`
// uses: ksbox-vmm --disk PATH,serial=ID), or /dev/NAME.
// PID 1 mounts both, overlayfs of them on a new root, moves /dev, /proc and
// /sys into it and makes it the root. The agent keeps running as PID 1 (its
// binary stays mapped from the initramfs); its children see the root disk.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ksbox::agent {

struct RootDisk {
  std::string base;     // the read-only base: "/dev/NAME" or "serial:ID"
  std::string overlay;  // the writable layer, the same; empty: tmpfs
};

// The ksbox.root / ksbox.overlay words of a kernel command line (the last of
// each counts, as for the kernel's own words). nullopt and *error empty
// without ksbox.root; nullopt and *error set when a value is neither
// /dev/NAME (NAME of [A-Za-z0-9_-], at most 32) nor serial:ID (ID of
// [A-Za-z0-9._-], at most 20: a virtio-blk serial), when both name the same
// disk, or when ksbox.overlay comes alone.
std::optional<RootDisk> parse_root_disk(std::string_view cmdline, std::string* error);

// The block device (/dev/NAME) of the one disk under `sys_block` (normally
// /sys/block) whose `serial` attribute is `serial`. nullopt with *error set
// when none has it, or when two do (a disk picked by chance could be the
// wrong one).
std::optional<std::string> find_disk_by_serial(std::string_view serial, const std::string& sys_block,
                                               std::string* error);

// True when / is an overlayfs: the switch has happened (the agent re-executes
// itself after a crash and must not try again).
bool root_is_overlay();

// Mounts the layers and switches the root; /dev, /proc and /sys must be
// mounted. On failure logs why, undoes its mounts and returns false: the
// initramfs stays the root and the guest still serves execs.
bool switch_to_root_disk(const RootDisk& disk);

}  // namespace ksbox::agent
