#!/usr/bin/env python3
"""Writes the seed corpus for blk_request_fuzz (see the input layout at the
top of blk_request_fuzz.cc) into corpus/blk_request/ next to this script:
well-formed reads, writes, flushes, GET_IDs, discards and write-zeroes, in
several framings, for the parser alone and through a whole ring, plus a few
refusals the fuzzer mutates from."""

import pathlib
import struct

from seed_image import put_chains

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "blk_request"

T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13
DEVICE, RO, FLUSH, DISCARD, WZ, INDIRECT, EVENT_IDX = 1, 2, 4, 8, 16, 32, 64
ALL = FLUSH | DISCARD | WZ
NEXT, WRITE = 1, 2


class Ram:
    """Guest RAM region A as the fuzzer loads it (address 0 = offset 0)."""

    def __init__(self):
        self.b = bytearray(0x2000)

    def put(self, addr, data):
        self.b[addr : addr + len(data)] = data

    def header(self, addr, typ, sector):
        self.put(addr, struct.pack("<IIQ", typ, 0, sector))

    def ranges(self, addr, items):
        self.put(addr, b"".join(struct.pack("<QII", s, n, f) for s, n, f in items))

    def bytes(self):
        return bytes(self.b).rstrip(b"\0")


def parser_seed(flags, segs, ram):
    out = struct.pack("<BB", flags, len(segs))
    out += b"".join(struct.pack("<HHB", a, n, w) for a, n, w in segs)
    return out + ram.bytes()


def request(typ, sector, data_len, data_writable, split_header=False):
    ram = Ram()
    ram.header(0x100, typ, sector)
    segs = [(0x100, 8, 0), (0x108, 8, 0)] if split_header else [(0x100, 16, 0)]
    if data_len:
        ram.put(0x400, bytes(range(256)) * (data_len // 256 + 1))
        segs.append((0x400, data_len, int(data_writable)))
    segs.append((0x1f00, 1, 1))
    return segs, ram


def ranges_request(typ, items):
    ram = Ram()
    ram.header(0x100, typ, 0)
    ram.ranges(0x400, items)
    return [(0x100, 16, 0), (0x400, 16 * len(items), 0), (0x1f00, 1, 1)], ram


def device_seed(flags, chains):
    """A ring of size 16 in region A: desc 0x0, avail 0x200, used 0x400;
    request buffers from 0x800. `chains` is a list of [(addr, len, writable)]."""
    ram = Ram()
    desc, avail, used = 0x000, 0x200, 0x400
    put_chains(ram, desc, avail, chains, NEXT, WRITE)
    return ram, struct.pack("<BBHHHB", flags | DEVICE, 4, desc, avail, used, 1)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    seeds = {}
    for name, (typ, sector, n, w) in {
        "read": (T_IN, 4, 1024, True),
        "write": (T_OUT, 0, 512, False),
        "flush": (T_FLUSH, 0, 0, False),
        "get_id": (T_GET_ID, 0, 20, True),
        "read_past_end": (T_IN, 127, 1024, True),
        "write_ragged": (T_OUT, 0, 100, False),
        "unknown_type": (77, 0, 0, False),
    }.items():
        segs, ram = request(typ, sector, n, w)
        seeds["parse_" + name] = parser_seed(ALL, segs, ram)
    segs, ram = request(T_IN, 1, 512, True, split_header=True)
    seeds["parse_split_header"] = parser_seed(ALL, segs, ram)
    segs, ram = request(T_OUT, 1, 512, False)
    seeds["parse_write_read_only"] = parser_seed(ALL | RO, segs, ram)
    segs, ram = ranges_request(T_DISCARD, [(0, 8, 0), (64, 16, 0)])
    seeds["parse_discard"] = parser_seed(ALL, segs, ram)
    segs, ram = ranges_request(T_WZ, [(8, 8, 1)])
    seeds["parse_write_zeroes_unmap"] = parser_seed(ALL, segs, ram)
    segs, ram = ranges_request(T_DISCARD, [(0, 8, 1)])
    seeds["parse_discard_bad_flags"] = parser_seed(ALL, segs, ram)

    # Whole device: a write, a read of it, a flush, a discard, a GET_ID.
    ram, hdr = None, None
    chains = [
        [(0x800, 16, 0), (0xc00, 512, 0), (0x1e00, 1, 1)],
        [(0x820, 16, 0), (0xe00, 512, 1), (0x1e01, 1, 1)],
        [(0x840, 16, 0), (0x1e02, 1, 1)],
        [(0x860, 16, 0), (0x1000, 16, 0), (0x1e03, 1, 1)],
        [(0x880, 16, 0), (0x1100, 20, 1), (0x1e04, 1, 1)],
    ]
    ram, hdr = device_seed(ALL, chains)
    ram.header(0x800, T_OUT, 2)
    ram.put(0xc00, b"\xab" * 512)
    ram.header(0x820, T_IN, 2)
    ram.header(0x840, T_FLUSH, 0)
    ram.header(0x860, T_DISCARD, 0)
    ram.ranges(0x1000, [(8, 8, 0)])
    ram.header(0x880, T_GET_ID, 0)
    seeds["device_mixed"] = hdr + ram.bytes()
    ram, hdr = device_seed(ALL | RO | EVENT_IDX, chains[:2])
    ram.header(0x800, T_OUT, 2)
    ram.header(0x820, T_IN, 2)
    seeds["device_read_only"] = hdr + ram.bytes()

    for name, data in seeds.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
