#!/usr/bin/env python3
"""Writes the seed corpus for net_frame_fuzz (see the input layout at the top
of net_frame_fuzz.cc) into corpus/net_frame/ next to this script."""

import pathlib
import struct

from seed_image import Image

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "net_frame"

NEXT, WRITE, INDIRECT = 1, 2, 4
NEEDS_CSUM = 1
KICK_RX, KICK_TX, POKE, DELIVER, FULL, WRITABLE, RESET = range(7)


def net_hdr(flags=0, gso=0, csum_start=0, csum_offset=0):
    return struct.pack("<BBHHHHH", flags, gso, 0, 0, csum_start, csum_offset, 0)


def udp_frame(payload=b"hello"):
    eth = bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0])
    udp_len = 8 + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0,
                     bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2]))
    return eth + ip + struct.pack(">HHHH", 12345, 53, udp_len, 0x1c46) + payload


RX, TX = 0x0000, 0x1000


def device_seed(features, ops, image):
    body = b"".join(struct.pack("<BHB", *op) for op in ops)
    return struct.pack("<BBB", 1, features, len(ops)) + body + image.bytes()


def seeds():
    s = {}
    frame = udp_frame()
    s["packet_csum"] = bytes([0, 1]) + net_hdr(NEEDS_CSUM, 0, 34, 6) + frame
    s["packet_plain"] = bytes([0, 0]) + net_hdr() + frame
    s["packet_gso"] = bytes([0, 1]) + net_hdr(0, 1) + frame
    s["packet_bad_offsets"] = bytes([0, 1]) + net_hdr(NEEDS_CSUM, 0, 40, 0xfff0) + frame

    # Mergeable RX: four 1 KiB buffers, a 2500-byte frame and a small one.
    img = Image()
    for i in range(4):
        img.desc(RX, i, 0x4000 + i * 0x400, 0x400, WRITE)
    img.avail(RX + 0x200, [0, 1, 2, 3])
    s["device_rx_merge"] = device_seed(1 | 4, [(DELIVER, 2500, 7), (DELIVER, 100, 1), (KICK_RX, 0, 0)], img)

    # TX: header and frame in two descriptors, then a looping chain; backend full in between.
    img = Image()
    img.put(0x6000, net_hdr(NEEDS_CSUM, 0, 34, 6))
    img.put(0x6100, frame)
    img.desc(TX, 0, 0x6000, 12, NEXT, 1)
    img.desc(TX, 1, 0x6100, len(frame))
    img.desc(TX, 2, 0x6000, 64, NEXT, 2)
    img.avail(TX + 0x200, [0, 2])
    s["device_tx"] = device_seed(2, [(FULL, 0, 0), (KICK_TX, 0, 0), (WRITABLE, 0, 0), (KICK_TX, 0, 0)], img)

    # TX through an indirect table whose buffer crosses into the RAM gap.
    img = Image()
    img.put(0x7000, struct.pack("<QIHH", 0x6000, 12, NEXT, 1) + struct.pack("<QIHH", 0xfff0, 0x100, 0, 0))
    img.desc(TX, 0, 0x7000, 32, INDIRECT)
    img.avail(TX + 0x200, [0])
    s["device_tx_indirect"] = device_seed(2 | 8, [(KICK_TX, 0, 0)], img)
    return s


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
