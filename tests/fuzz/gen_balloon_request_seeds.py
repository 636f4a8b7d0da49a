#!/usr/bin/env python3
"""Writes the seed corpus for balloon_request_fuzz (see the input layout at
the top of balloon_request_fuzz.cc) into corpus/balloon_request/ next to this
script: inflate and deflate PFN lists, free page reports and memory stats,
for the parser alone and through a whole ring, plus refusals the fuzzer
mutates from."""

import pathlib
import struct

from seed_image import Image, put_chains

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "balloon_request"

DEVICE, STATS_VQ, REPORTING, INDIRECT, EVENT_IDX = 1, 8, 16, 32, 64
INFLATE, DEFLATE, STATS, REPORT = 0, 1, 2, 3
NEXT, WRITE = 1, 2
PAGE = 0x1000


def kind(k):
    return k << 1


def pfns(*nums):
    return b"".join(struct.pack("<I", n) for n in nums)


def stats(*pairs):
    return b"".join(struct.pack("<HQ", t, v) for t, v in pairs)


def parser_seed(k, segs, ram):
    out = struct.pack("<BB", kind(k), len(segs))
    out += b"".join(struct.pack("<HHB", a, n, w) for a, n, w in segs)
    return out + ram.bytes()


def device_seed(flags, k, chains, ram, log2_size=4):
    """A ring in region A: desc 0x0, avail 0x200, used 0x400. `chains` is a
    list of [(addr, len, writable)]."""
    desc, avail, used = 0x000, 0x200, 0x400
    put_chains(ram, desc, avail, chains, NEXT, WRITE)
    hdr = struct.pack("<BBHHHB", flags | DEVICE | kind(k), log2_size, desc, avail, used, 1)
    return hdr + ram.bytes()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    seeds = {}

    ram = Image()
    ram.put(0x800, pfns(3, 4, 5, 10))
    seeds["parse_inflate"] = parser_seed(INFLATE, [(0x800, 16, 0)], ram)
    seeds["parse_deflate_split"] = parser_seed(DEFLATE, [(0x800, 6, 0), (0x806, 10, 0)], ram)
    ram = Image()
    ram.put(0x800, pfns(3, 0x40))  # PFN 0x40 = 0x40000: not RAM
    seeds["parse_inflate_out_of_ram"] = parser_seed(INFLATE, [(0x800, 8, 0)], ram)
    seeds["parse_inflate_ragged"] = parser_seed(INFLATE, [(0x800, 7, 0)], ram)
    seeds["parse_report"] = parser_seed(REPORT, [(0x2000, 0x2000, 1), (0x9000, 0x1000, 1)], Image())
    seeds["parse_report_misaligned"] = parser_seed(REPORT, [(0x2010, 0x1000, 1)], Image())
    seeds["parse_report_readable"] = parser_seed(REPORT, [(0x2000, 0x1000, 0)], Image())
    ram = Image()
    ram.put(0x800, stats((4, 100 << 20), (5, 512 << 20), (99, 1)))
    seeds["parse_stats"] = parser_seed(STATS, [(0x800, 30, 0)], ram)

    # Whole device: each queue with a well-formed request or two.
    ram = Image()
    ram.put(0x800, pfns(4, 5, 6))
    ram.put(0x900, pfns(9))
    seeds["device_inflate"] = device_seed(0, INFLATE, [[(0x800, 12, 0)], [(0x900, 4, 0)]], ram)
    ram = Image()
    ram.put(0x800, pfns(4, 5))
    seeds["device_deflate"] = device_seed(EVENT_IDX, DEFLATE, [[(0x800, 8, 0)]], ram)
    seeds["device_report"] = device_seed(
        REPORTING, REPORT, [[(0x2000, 0x2000, 1), (0x4000, 0x1000, 1)], [(0x9000, 0x3000, 1)]], Image())
    seeds["device_report_after_stats_vq"] = device_seed(REPORTING | STATS_VQ, REPORT, [[(0x6000, 0x1000, 1)]], Image())
    ram = Image()
    ram.put(0x800, stats((4, 100 << 20), (6, 200 << 20)))
    seeds["device_stats"] = device_seed(STATS_VQ, STATS, [[(0x800, 20, 0)], [(0x800, 10, 0)]], ram)

    for name, data in seeds.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
