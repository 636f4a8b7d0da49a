// The `ksbox` CLI's exit statuses: part of its interface (shown in --help).
#pragma once

namespace ksbox::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;         // `stop`: the VM did not stop (or could not be reached)
inline constexpr int kExitUsage = 2;           // command-line syntax (CLI11), attach without a terminal
inline constexpr int kExitCannotExecute = 126; // the agent refused or failed to start the command
inline constexpr int kExitNotFound = 127;      // the agent reported ENOENT for the command
inline constexpr int kExitSignalBase = 128;    // 128+N: the command (or ksbox, before a session) died of N
inline constexpr int kExitConnection = 255;    // cannot connect, connection lost, protocol error (like ssh)

}  // namespace ksbox::cli
