// The agent's duties as the init process of the guest: the early mounts,
// the hostname, and powering off on request. PID 1 must never exit (the
// kernel panics), so nothing here throws: failures are logged.
#pragma once

namespace ksbox::agent {

// Makes sure fds 0..2 are open (children get dup2'ed pipes, and a closed
// stdio fd would let a new pipe land on 0..2). With console, missing ones go
// to /dev/console, else to /dev/null.
void ensure_stdio(bool console);

// Mounts /proc, /sys, devtmpfs on /dev, devpts on /dev/pts (ptmxmode=666),
// tmpfs on /dev/shm and /tmp, each only if nothing is mounted there yet;
// sets the hostname "ksbox", brings lo up, configures eth0 from the VMM's
// ksbox.net= word (net_setup.h) and mounts the workspace share (best effort).
void setup_pid1();

// The virtio-fs share the host offers as the project workspace.
inline constexpr const char* kWorkspaceTag = "workspace";

// Mounts the virtio-fs tag kWorkspaceTag on kWorkspaceDir (nosuid, nodev)
// when the guest has a virtio-fs device; logs a failure, never throws.
void mount_workspace();

// Reaps every exited child without blocking; returns how many.
int reap_all();

// kill(-1, SIGTERM), up to 2 s of reaping, kill(-1, SIGKILL), sync, reboot.
// Returns only if the reboot call fails (logged).
void power_off();

}  // namespace ksbox::agent
