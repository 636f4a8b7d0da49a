#!/usr/bin/env python3
"""Writes the seed corpus for vsock_packet_fuzz (see the input layout at the
top of vsock_packet_fuzz.cc) into corpus/vsock_packet/ next to this script.
Small, well-formed starting points plus a few refusals."""

import pathlib
import struct

from seed_image import Image

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "vsock_packet"

NEXT, WRITE, INDIRECT = 1, 2, 4
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = range(1, 8)
GUEST_CID, HOST_CID = 3, 2
# Device-mode op kinds (low 3 bits).
KICK_TX, KICK_RX, KICK_EVENT, POKE, HOST_CONNECT, HOST_SEND, HOST_CLOSE, SLEEP = range(8)


def hdr(op, src_port, dst_port, length=0, src_cid=GUEST_CID, dst_cid=HOST_CID, typ=1, flags=0,
        buf_alloc=262144, fwd_cnt=0):
    return struct.pack("<QQIIIHHIII", src_cid, dst_cid, src_port, dst_port, length, typ, op, flags,
                       buf_alloc, fwd_cnt)


# --- packet mode: segments are (address / 3, length) --------------------------------

def packet_seed(segments, image):
    body = b"".join(struct.pack("<HH", a // 3, n) for a, n in segments)
    return struct.pack("<BB", 0, len(segments)) + body + image.bytes()


def packet_seeds():
    seeds = {}
    img = Image()
    img.put(0x300, hdr(RW, 1000, 1024, 100))
    img.put(0x600, bytes(range(100)))
    seeds["packet_rw_split"] = packet_seed([(0x300, 44), (0x600, 100)], img)

    img = Image()
    h = hdr(RW, 1000, 1024, 6)
    img.put(0x300, h[:10])
    img.put(0x3c0, h[10:] + b"abc")
    img.put(0x480, b"def")
    seeds["packet_rw_scattered"] = packet_seed([(0x300, 10), (0x3c0, 37), (0x480, 3)], img)

    img = Image()
    img.put(0x300, hdr(REQUEST, 1000, 1024))
    seeds["packet_request"] = packet_seed([(0x300, 44)], img)

    img = Image()
    img.put(0x300, hdr(RW, 1000, 1024, 4, src_cid=9) + b"spoo")
    seeds["packet_bad_cid"] = packet_seed([(0x300, 48)], img)
    return seeds


# --- device mode ---------------------------------------------------------------------

RX, TX = 0x0000, 0x1000
RX_HDRS, RX_DATA, TX_BUFS, TX_TABLES = 0x600, 0x800, 0x1600, 0x1c00  # all below the event ring


def device_image(tx_packets, rx_buffers=8, indirect_tx=False):
    img = Image()
    for i in range(rx_buffers):  # Linux 6.1 style: header and payload apart
        img.desc(RX, 2 * i, RX_HDRS + 0x30 * i, 44, WRITE | NEXT, 2 * i + 1)
        img.desc(RX, 2 * i + 1, RX_DATA + 0x80 * i, 0x80, WRITE)
    img.avail(RX + 0x200, [2 * i for i in range(rx_buffers)])
    heads = []
    for k, pkt in enumerate(tx_packets):
        base = TX_BUFS + 0x80 * k
        img.put(base, pkt)
        if indirect_tx:
            table = TX_TABLES + 0x20 * k
            img.desc(table, 0, base, 44, NEXT, 1)
            img.desc(table, 1, base + 44, max(len(pkt) - 44, 0))
            img.desc(TX, k, table, 32, INDIRECT)
        else:
            img.desc(TX, k, base, len(pkt))
        heads.append(k)
    img.avail(TX + 0x200, heads)
    return img


def device_seed(features, ops, img):
    body = b"".join(struct.pack("<BBH", k, a, v) for k, a, v in ops)
    return struct.pack("<BBB", 1, features, len(ops)) + body + img.bytes()


def device_seeds():
    seeds = {}
    # The guest connects to host port 1 (a host server listens), sends data, the host answers.
    pkts = [hdr(REQUEST, 1000, 1), hdr(RW, 1000, 1, 5) + b"hello", hdr(CREDIT_REQUEST, 1000, 1),
            hdr(SHUTDOWN, 1000, 1, flags=3)]
    ops = [(KICK_RX, 0, 0), (KICK_TX, 0, 0), (SLEEP, 50, 0), (HOST_SEND, 2, 0), (SLEEP, 50, 0), (KICK_RX, 0, 0)]
    seeds["device_guest_connect"] = device_seed(1, ops, device_image(pkts))

    # Packets for streams that do not exist, and refusals.
    pkts = [hdr(RW, 2000, 7, 3) + b"abc", hdr(RW, 2000, 7, 3, src_cid=4) + b"abc", hdr(9, 1, 1),
            hdr(RW, 2000, 7, 100) + b"short", hdr(RST, 2000, 7), hdr(RESPONSE, 5, 6), hdr(CREDIT_UPDATE, 5, 6)]
    ops = [(KICK_TX, 0, 0), (KICK_RX, 0, 0)]
    seeds["device_refusals"] = device_seed(0, ops, device_image(pkts, rx_buffers=2))

    # A host client asks for guest port 5; the guest's answer comes from the fuzzer.
    ops = [(HOST_CONNECT, 1, 5), (SLEEP, 100, 0), (KICK_RX, 0, 0), (KICK_TX, 0, 0), (HOST_CONNECT, 0, 0),
           (SLEEP, 100, 0), (HOST_CLOSE, 0, 0)]
    pkts = [hdr(RESPONSE, 5, 1 << 30), hdr(RW, 5, 1 << 30, 2) + b"hi"]
    seeds["device_host_connect"] = device_seed(3, ops, device_image(pkts))

    # Indirect TX chains, and the guest rewriting its ring while the device works.
    pkts = [hdr(REQUEST, 1001, 1), hdr(RW, 1001, 1, 4) + b"data", hdr(RST, 1001, 1)]
    ops = [(KICK_TX, 0, 0), (POKE | (0x08 << 3 & 0xf8), 0x12, 0xffff), (KICK_TX, 0, 0), (KICK_EVENT, 0, 0)]
    seeds["device_indirect"] = device_seed(3, ops, device_image(pkts, indirect_tx=True))
    return seeds


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in {**packet_seeds(), **device_seeds()}.items():
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
