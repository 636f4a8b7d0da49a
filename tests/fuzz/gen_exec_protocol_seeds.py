#!/usr/bin/env python3
"""Writes the seed corpus for exec_protocol_fuzz (see the input layout at the
top of exec_protocol_fuzz.cc) into corpus/exec_protocol/ next to this script.
An independent encoder of protocol/exec_protocol.h, so the seeds also check
that the C++ side matches the documented wire format."""

import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "exec_protocol"
MAGIC, VERSION = 0x5842534B, 1
(HELLO, EXEC, STARTED, STDIN, STDIN_EOF, STDOUT, STDERR, SIGNAL, RESIZE, EXITED,
 ERROR, SHUTDOWN) = range(1, 13)


def frame(typ, payload=b"", version=VERSION, magic=MAGIC, length=None):
    n = len(payload) if length is None else length
    return struct.pack("<IHHI", magic, version, typ, n) + payload


def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack("<I", len(b)) + b


def lst(items):
    return struct.pack("<I", len(items)) + b"".join(s(i) for i in items)


def exec_req(argv, env=(), cwd="", uid=0xFFFFFFFF, gid=0xFFFFFFFF, flags=0, rows=0, cols=0):
    return lst(argv) + lst(list(env)) + s(cwd) + struct.pack("<IIBHH", uid, gid, flags, rows, cols)


def seed(chunks, stream):
    """chunks: 1..16 chunk sizes (0 = the rest)."""
    return bytes([len(chunks) - 1]) + bytes(chunks) + stream


hello = frame(HELLO, struct.pack("<HH", 1, 1))
SEEDS = {
    # Host side of a plain exec, fed one byte at a time.
    "host_exec_bytewise": seed([1], hello + frame(EXEC, exec_req(["ls", "-la", "/workspace"], ["TERM=dumb"], "/workspace"))
                               + frame(STDIN, b"input\n") + frame(STDIN_EOF)),
    # Agent side: started, output, exit code 3.
    "agent_exit_code": seed([0], hello + frame(STARTED, struct.pack("<I", 42)) + frame(STDOUT, b"hello\n")
                            + frame(STDERR, b"warning\n") + frame(EXITED, struct.pack("<Bi", 0, 3))),
    # PTY session with resize and signal, odd chunking.
    "pty_session": seed([3, 7, 1, 13], hello + frame(EXEC, exec_req(["bash", "-l"], ["TERM=xterm", "LANG=C.UTF-8"],
                                                                   "", 1000, 1000, 1, 24, 80))
                        + frame(RESIZE, struct.pack("<HH", 50, 132)) + frame(SIGNAL, struct.pack("<i", 2))
                        + frame(STDIN, b"\x03") + frame(SHUTDOWN)),
    # Exec failure reported by the agent, then killed-by-signal exit.
    "agent_error_and_signal": seed([5, 0], hello + frame(ERROR, struct.pack("<I", 2) + s("exec failed: ENOENT"))
                                   + frame(EXITED, struct.pack("<Bi", 1, 9))),
    # Malformed payloads inside good frames (each must be refused by decode).
    "bad_payloads": seed([0], frame(EXEC, exec_req([], [])) + frame(EXEC, exec_req(["sh"], ["NOEQ"]))
                         + frame(EXEC, exec_req(["a\0b"])) + frame(SIGNAL, struct.pack("<i", 65))
                         + frame(EXITED, struct.pack("<Bi", 2, 0)) + frame(HELLO, struct.pack("<HH", 3, 2))
                         + frame(STDIN_EOF, b"x") + frame(STARTED, b"\0\0")),
    # Framing errors after a good frame.
    "bad_version": seed([2], frame(SHUTDOWN) + frame(SHUTDOWN, version=2)),
    "bad_magic": seed([0], frame(STDIN_EOF) + frame(STDIN_EOF, magic=0x5842534C)),
    "unknown_type": seed([4], frame(13)),
    "oversized": seed([0], frame(STDOUT, length=(1 << 20) + 1)),
    # A truncated trailing frame.
    "truncated_tail": seed([1, 2], frame(STDOUT, b"abc") + frame(STDOUT, b"defgh")[:-2]),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (OUT / name).write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
