#!/usr/bin/env python3
"""Writes seeds for fuse_server_fuzz (see the input layout at the top of
fuse_server_fuzz.cc) into corpus/fuse_server/ next to this script: the ops
beyond the core set (TMPFILE, xattrs, MKNOD, ACCESS, FALLOCATE, LSEEK,
COPY_FILE_RANGE, INTERRUPT), renames and unlinks with a tiny O_PATH fd
cache (TINY_FDS: inodes re-opened by name), opens under the writeback
cache (WRITEBACK), directories read without OPENDIR under worktree
(IMPLICIT_DIRS), files used without OPEN (IMPLICIT_FILES), chown under the
uid mapping, a read-only share and
malformed forms of the new requests. The core seeds (init, lookup_getattr,
open_read, readdir, malformed) predate this script and are kept as they are.

The fuzzer's share: f ("hello world"), d/, d/g, fifo, and symlinks up, abs.
Nodeids are handed out in lookup order from 2 (root = 1), handles from 1."""

import itertools
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "fuse_server"

SEND_INIT, FIX_LEN, READ_ONLY, TINY_FDS, WRITEBACK, IMPLICIT_DIRS, IMPLICIT_FILES = 1, 2, 4, 8, 16, 32, 64

LOOKUP, FORGET, GETATTR, SETATTR, MKNOD, UNLINK, LINK, OPEN, READ, WRITE = 1, 2, 3, 4, 8, 10, 13, 14, 15, 16
FSYNC, FLUSH = 20, 25
OPENDIR, READDIR, FSYNCDIR, READDIRPLUS = 27, 28, 30, 44
RENAME2 = 45
FUSE_GETATTR_FH, RENAME_EXCHANGE = 1, 2
SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR = 21, 22, 23, 24
ACCESS, CREATE, INTERRUPT, FALLOCATE, LSEEK, COPY_FILE_RANGE, TMPFILE = 34, 35, 36, 43, 46, 47, 51

O_WRONLY, O_RDWR, O_EXCL, O_APPEND, O_TMPFILE = 0o1, 0o2, 0o200, 0o2000, 0o20200000
S_IFIFO, S_IFCHR, S_IFREG, S_IFSOCK = 0o010000, 0o020000, 0o100000, 0o140000
KEEP_SIZE, PUNCH_HOLE, COLLAPSE_RANGE, ZERO_RANGE = 1, 2, 8, 0x10
SEEK_END, SEEK_DATA, SEEK_HOLE = 2, 3, 4
FATTR_MODE, FATTR_UID, FATTR_GID = 1, 2, 4

_unique = itertools.count(2)  # 1 is the fuzzer's INIT


def req(opcode, nodeid, args=b"", out=4096, split=0x53):
    """One record: the request with a correct header, its reply space and split."""
    body = struct.pack("<IIQQIIIHH", 40 + len(args), opcode, next(_unique), nodeid, 0, 0, 0, 0, 0) + args
    return struct.pack("<HHB", len(body), out, split) + body


def cstr(s):
    return s.encode() + b"\0"


def create_in(flags, mode, open_flags=0):
    return struct.pack("<IIII", flags, mode, 0o022, open_flags)


def write_in(fh, off, data, write_flags=0):
    return struct.pack("<QQIIQII", fh, off, len(data), write_flags, 0, 0, 0) + data


def setxattr(node, name, value, flags=0):
    return req(SETXATTR, node, struct.pack("<II", len(value), flags) + cstr(name) + value)


def getxattr(node, name, size, list_=False):
    args = struct.pack("<II", size, 0) + (b"" if list_ else cstr(name))
    return req(LISTXATTR if list_ else GETXATTR, node, args)


def fallocate(node, fh, mode, off, length):
    return req(FALLOCATE, node, struct.pack("<QQQII", fh, off, length, mode, 0))


def lseek(node, fh, off, whence):
    return req(LSEEK, node, struct.pack("<QQII", fh, off, whence, 0))


def setattr(node, valid, mode=0, uid=0, gid=0):
    return req(SETATTR, node, struct.pack("<IIQQQQQQIIIIIIII", valid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          mode, 0, uid, gid, 0))


def seed(flags, *records):
    return bytes([flags]) + b"".join(records)


def seeds():
    s = {}
    # nodeid 2 = the unnamed file, fh 1; then an O_EXCL one, nodeid 3, fh 2.
    s["tmpfile_link"] = seed(
        SEND_INIT,
        req(TMPFILE, 1, create_in(O_RDWR | O_TMPFILE, S_IFREG | 0o600) + cstr("/")),
        req(WRITE, 2, write_in(1, 0, b"unnamed")),
        req(LINK, 1, struct.pack("<Q", 2) + cstr("named")),
        req(TMPFILE, 1, create_in(O_WRONLY | O_TMPFILE | O_EXCL, S_IFREG | 0o600) + cstr("/")),
        req(LINK, 1, struct.pack("<Q", 3) + cstr("never")))
    # f = 2, fifo = 3.
    s["xattr"] = seed(
        SEND_INIT,
        req(LOOKUP, 1, cstr("f")),
        setxattr(2, "user.a", b"value"),
        getxattr(2, "user.a", 0),
        getxattr(2, "user.a", 64),
        getxattr(2, "user.a", 2),
        getxattr(2, "", 0, list_=True),
        getxattr(2, "", 64, list_=True),
        setxattr(2, "trusted.x", b"t"),
        setxattr(2, "security.capability", b"\1\0\0\2"),
        setxattr(2, "user.a", b"x", flags=1),
        req(REMOVEXATTR, 2, cstr("user.a")),
        req(LOOKUP, 1, cstr("fifo")),
        setxattr(3, "user.a", b"v"),
        getxattr(3, "", 0, list_=True),
        setxattr(1, "user.root", b"r"))
    s["mknod_access"] = seed(
        SEND_INIT,
        req(MKNOD, 1, struct.pack("<IIII", S_IFIFO | 0o644, 0, 0, 0) + cstr("fifo2")),
        req(MKNOD, 1, struct.pack("<IIII", S_IFSOCK | 0o600, 0, 0, 0) + cstr("sock")),
        req(MKNOD, 1, struct.pack("<IIII", S_IFREG | 0o6755, 0, 0, 0) + cstr("suid")),
        req(MKNOD, 1, struct.pack("<IIII", S_IFCHR | 0o666, (1 << 8) | 3, 0, 0) + cstr("null")),
        req(ACCESS, 1, struct.pack("<II", 0o7, 0)),
        req(LOOKUP, 1, cstr("fifo")),
        req(ACCESS, 5, struct.pack("<II", 0o4, 0)))
    # f = 2, fh 1.
    s["fallocate_lseek"] = seed(
        SEND_INIT,
        req(LOOKUP, 1, cstr("f")),
        req(OPEN, 2, struct.pack("<II", O_RDWR, 0)),
        fallocate(2, 1, 0, 0, 8192),
        fallocate(2, 1, KEEP_SIZE, 8192, 4096),
        fallocate(2, 1, PUNCH_HOLE | KEEP_SIZE, 0, 4096),
        fallocate(2, 1, ZERO_RANGE, 4096, 100),
        fallocate(2, 1, COLLAPSE_RANGE, 0, 4096),
        lseek(2, 1, 0, SEEK_DATA),
        lseek(2, 1, 0, SEEK_HOLE),
        lseek(2, 1, 0, SEEK_END),
        lseek(2, 1, 1 << 40, SEEK_DATA))
    # f = 2 read-only as fh 1; "c" = 3 created as fh 2.
    s["copy_file_range"] = seed(
        SEND_INIT,
        req(LOOKUP, 1, cstr("f")),
        req(OPEN, 2, struct.pack("<II", 0, 0)),
        req(CREATE, 1, create_in(O_RDWR, S_IFREG | 0o644) + cstr("c")),
        req(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", 1, 0, 3, 2, 0, 1 << 40, 0)),
        req(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", 1, 6, 3, 2, 100, 5, 0)),
        req(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", 2, 0, 2, 1, 0, 5, 0)))
    s["idmap_chown"] = seed(
        SEND_INIT,
        req(LOOKUP, 1, cstr("f")),
        setattr(2, FATTR_UID | FATTR_GID, uid=1000, gid=1000),
        setattr(2, FATTR_UID, uid=0),
        setattr(2, FATTR_GID | FATTR_MODE, mode=0o4755, gid=0))
    s["readonly_interrupt"] = seed(
        SEND_INIT | READ_ONLY,
        req(INTERRUPT, 0, struct.pack("<Q", 7), out=0),
        req(LOOKUP, 1, cstr("f")),
        getxattr(2, "user.k", 16),
        setxattr(2, "user.k", b"w"),
        req(REMOVEXATTR, 2, cstr("user.k")),
        req(TMPFILE, 1, create_in(O_RDWR | O_TMPFILE, S_IFREG | 0o600) + cstr("/")),
        req(MKNOD, 1, struct.pack("<IIII", S_IFIFO | 0o644, 0, 0, 0) + cstr("p")),
        req(ACCESS, 2, struct.pack("<II", 0o2, 0)))
    s["malformed_new_ops"] = seed(
        SEND_INIT,
        req(LOOKUP, 1, cstr("f")),
        # The extended setxattr_in (not negotiated): its tail reads as an empty name.
        req(SETXATTR, 2, struct.pack("<IIII", 1, 0, 0, 0) + cstr("user.a") + b"v"),
        req(SETXATTR, 2, struct.pack("<II", 70000, 0) + cstr("user.a")),
        req(SETXATTR, 2, struct.pack("<II", 9, 0) + cstr("user.a") + b"short"),
        req(GETXATTR, 2, struct.pack("<II", 64, 0) + b"user.unterminated"),
        req(LISTXATTR, 2, struct.pack("<II", 64, 0) + b"junk"),
        req(LSEEK, 2, b"short"),
        req(FALLOCATE, 2, struct.pack("<QQQII", 1, 0, 1, 0, 0) + b"x"),
        req(TMPFILE, 1, create_in(O_RDWR | O_TMPFILE, 0o600) + b"/"),
        req(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", 1, 0, 999, 1, 0, 1, 0)),
        req(INTERRUPT, 0, b"abc", out=0))
    # d = 2, d/g = 3, f = 4, fifo = 5: with two fds cached, most re-open by name.
    s["evict_rename_unlink"] = seed(
        SEND_INIT | TINY_FDS,
        req(LOOKUP, 1, cstr("d")),
        req(LOOKUP, 2, cstr("g")),
        req(LOOKUP, 1, cstr("f")),
        req(LOOKUP, 1, cstr("fifo")),
        req(GETATTR, 3, struct.pack("<IIQ", 0, 0, 0)),
        req(RENAME2, 1, struct.pack("<QII", 2, 0, 0) + cstr("f") + cstr("f2")),
        req(OPEN, 4, struct.pack("<II", 0, 0)),
        req(READ, 4, struct.pack("<QQIIQII", 1, 0, 64, 0, 0, 0, 0)),
        req(UNLINK, 2, cstr("f2")),
        req(GETATTR, 4, struct.pack("<IIQ", 0, 0, 0)),
        req(GETATTR, 4, struct.pack("<IIQ", FUSE_GETATTR_FH, 0, 1)),
        req(RENAME2, 2, struct.pack("<QII", 1, RENAME_EXCHANGE, 0) + cstr("g") + cstr("fifo")),
        req(GETATTR, 3, struct.pack("<IIQ", 0, 0, 0)),
        req(GETATTR, 5, struct.pack("<IIQ", 0, 0, 0)),
        req(RENAME2, 1, struct.pack("<QII", 2, 0, 0) + cstr("d") + cstr("inside")),
        req(LOOKUP, 2, cstr("fifo")))
    # f = 2: opened write-only (read-write on the host) and with O_APPEND.
    s["writeback_open"] = seed(
        SEND_INIT | WRITEBACK,
        req(LOOKUP, 1, cstr("f")),
        req(OPEN, 2, struct.pack("<II", O_WRONLY, 0)),
        req(READ, 2, struct.pack("<QQIIQII", 1, 0, 64, 0, 0, 0, 0)),
        req(OPEN, 2, struct.pack("<II", O_WRONLY | O_APPEND, 0)),
        req(WRITE, 2, write_in(2, 0, b"HE")),
        req(CREATE, 1, create_in(O_WRONLY | O_APPEND, S_IFREG | 0o644) + cstr("w")))
    # FUSE_HANDLE_KILLPRIV_V2: the kill flags of OPEN (O_TRUNC), CREATE,
    # WRITE and SETATTR (size), on f (node 2, handles 1 and 2).
    kill_open, kill_write, kill_attr, o_trunc, fattr_size = 1, 1 << 2, 1 << 11, 0o1000, 1 << 3
    s["kill_suidgid"] = seed(
        SEND_INIT,
        req(LOOKUP, 1, cstr("f")),
        req(OPEN, 2, struct.pack("<II", O_RDWR | o_trunc, kill_open)),
        req(WRITE, 2, write_in(1, 0, b"x", kill_write)),
        req(WRITE, 2, write_in(7, 0, b"x", kill_write)),
        setattr(2, fattr_size | kill_attr),
        req(CREATE, 1, create_in(O_RDWR | o_trunc, S_IFREG | 0o6755, kill_open) + cstr("f")))
    # worktree, no OPENDIR: d = 2, f = 3; listings with fh 0 of d, the root
    # (interleaved, from an offset) and a file; FSYNCDIR with fh 0.
    read_in = lambda off, size: struct.pack("<QQIIQII", 0, off, size, 0, 0, 0, 0)
    s["implicit_dirs"] = seed(
        SEND_INIT | IMPLICIT_DIRS,
        req(OPENDIR, 1, struct.pack("<II", 0, 0)),
        req(LOOKUP, 1, cstr("d")),
        req(LOOKUP, 1, cstr("f")),
        req(READDIRPLUS, 2, read_in(0, 80)),
        req(READDIRPLUS, 1, read_in(0, 120)),
        req(READDIRPLUS, 2, read_in(1, 4096)),
        req(READDIR, 1, read_in(2, 4096)),
        req(READDIR, 3, read_in(0, 4096)),
        req(FSYNCDIR, 2, struct.pack("<QII", 0, 1, 0)),
        req(FSYNCDIR, 9, struct.pack("<QII", 0, 0, 0)))
    # worktree, no OPEN: f = 2, fifo = 3, d = 4; I/O with fh 0 of f (an
    # append among it), of the FIFO and the directory (refused, never
    # opened), a create and its write, FLUSH and FSYNC with fh 0, a copy
    # from f into the new file, an unlink and the FORGET that ends its stream.
    s["implicit_files"] = seed(
        SEND_INIT | IMPLICIT_DIRS | IMPLICIT_FILES,
        req(LOOKUP, 1, cstr("f")),
        req(OPEN, 2, struct.pack("<II", 0, 0)),
        req(READ, 2, read_in(0, 64)),
        req(WRITE, 2, struct.pack("<QQIIQII", 0, 0, 2, 0, 0, O_WRONLY | O_APPEND, 0) + b"HE"),
        req(LOOKUP, 1, cstr("fifo")),
        req(READ, 3, read_in(0, 64)),
        req(WRITE, 3, write_in(0, 0, b"x")),
        req(LOOKUP, 1, cstr("d")),
        req(READ, 4, read_in(0, 64)),
        req(CREATE, 1, create_in(O_WRONLY | O_EXCL, S_IFREG | 0o644) + cstr("n")),
        req(WRITE, 5, write_in(0, 3, b"new")),
        req(FLUSH, 5, struct.pack("<QIIQ", 0, 0, 0, 0)),
        req(FSYNC, 5, struct.pack("<QII", 0, 1, 0)),
        req(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", 0, 0, 5, 0, 8, 4, 0)),
        lseek(5, 0, 0, SEEK_END),
        req(UNLINK, 1, cstr("n")),
        req(FORGET, 5, struct.pack("<Q", 1)))
    return s


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
