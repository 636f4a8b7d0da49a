#!/usr/bin/env python3
"""Writes the seed corpus for virtqueue_fuzz (see the input layout at the top
of virtqueue_fuzz.cc). Run from anywhere; output goes to corpus/virtqueue/
next to this script. Seeds are small, well-formed starting points (plus a few
refusals) that the fuzzer mutates from."""

import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "virtqueue"

NEXT, WRITE, INDIRECT = 1, 2, 4
DESC, AVAIL, USED = 0x000, 0x100, 0x200  # ring placement in region A

# Queue-mode op kinds (low 3 bits of the kind byte).
POP, USE_OLDEST, USE_ANY, POKE, NOTIFY_CHECK, RECONFIGURE, DRAIN = range(7)


class Image:
    """Guest RAM region A as the fuzzer will load it (address 0 = offset 0)."""

    def __init__(self, size=0x800):
        self.b = bytearray(size)

    def put(self, addr, fmt, *vals):
        data = struct.pack("<" + fmt, *vals)
        if addr + len(data) > len(self.b):
            self.b.extend(bytes(addr + len(data) - len(self.b)))
        self.b[addr : addr + len(data)] = data

    def bytes(self):
        return bytes(self.b).rstrip(b"\0")  # the fuzzer zero-fills the rest

    def desc(self, table, i, addr, length, flags=0, nxt=0):
        self.put(table + 16 * i, "QIHH", addr, length, flags, nxt)

    def avail(self, heads, qsize, flags=0, used_event=None):
        self.put(AVAIL, "HH", flags, len(heads))
        for n, h in enumerate(heads):
            self.put(AVAIL + 4 + 2 * n, "H", h)
        if used_event is not None:
            self.put(AVAIL + 4 + 2 * qsize, "H", used_event)


def poke(addr, value):
    """POKE op: write u16 `value` at even address `addr` (< 0x4000)."""
    assert addr % 2 == 0
    return (POKE | ((addr & 0x3f) >> 1) << 3, addr >> 6, value)


def queue_seed(mode, size_log2, ops, image):
    hdr = struct.pack("<BBHHHB", mode, size_log2, DESC, AVAIL, USED, len(ops))
    body = b"".join(struct.pack("<BBH", k, a, v) for k, a, v in ops)
    return hdr + body + image.bytes()


def transport_seed(ops, image, mode=1):
    hdr = struct.pack("<BB", mode, len(ops))
    body = b"".join(struct.pack("<BHI", k, o, v) for k, o, v in ops)
    return hdr + body + image.bytes()


# Transport op encoding: index into the fuzzer's register table, 4-byte access.
REG = {name: i for i, name in enumerate(
    "magic version device_id vendor dev_features dev_features_sel drv_features drv_features_sel "
    "queue_sel queue_num_max queue_num queue_ready queue_notify int_status int_ack status "
    "desc_lo desc_hi avail_lo avail_hi used_lo used_hi shm_sel shm_len_lo shm_len_hi "
    "config_gen config".split())}
R4, W4, R1 = 0x4, 0x5, 0x0  # kind: bit0 write, bits1-2 log2(size)
RAW = 0x8
NOTIFY = 0x10


def rd(name):
    return (R4, REG[name], 0)


def wr(name, v):
    return (W4, REG[name], v)


def simple_chain_image():
    img = Image()
    img.desc(DESC, 0, 0x400, 16, NEXT, 1)
    img.desc(DESC, 1, 0x500, 32, WRITE)
    img.avail([0], 16)
    return img


def seeds():
    yield "queue_direct", queue_seed(0, 4, [(POP, 0, 0), (USE_OLDEST, 0, 32), (NOTIFY_CHECK, 0, 0),
                                             (DRAIN, 0, 0)], simple_chain_image())

    img = Image()
    img.desc(DESC, 0, 0x600, 48, INDIRECT)
    img.desc(0x600, 0, 0x400, 8, NEXT, 2)
    img.desc(0x600, 2, 0x480, 8, WRITE | NEXT, 1)
    img.desc(0x600, 1, 0x4c0, 8, WRITE)
    img.avail([0], 8)
    yield "queue_indirect", queue_seed(2, 3, [(POP, 0, 0), (USE_OLDEST, 0, 16), (NOTIFY_CHECK, 0, 0)], img)

    img = Image()
    img.desc(DESC, 0, 0x400, 8, NEXT, 1)  # loop 0 -> 1 -> 0
    img.desc(DESC, 1, 0x400, 8, NEXT, 0)
    img.desc(DESC, 2, 0x400, 8, NEXT, 9)  # next out of range (size 8)
    img.desc(DESC, 3, 0x400, 8, WRITE | NEXT, 4)  # readable after writable
    img.desc(DESC, 4, 0x400, 8)
    img.desc(DESC, 5, 0x1ff0, 0x20)  # crosses from region A into the gap
    img.desc(DESC, 6, 0x3000, 0x100, WRITE)  # region B, fine
    img.avail([0, 2, 3, 5, 6, 6], 8)  # ...and a duplicate in-flight head
    yield "queue_refusals", queue_seed(0, 3, [(DRAIN, 0, 0), (USE_ANY, 0, 6), (USE_ANY, 0, 7)], img)

    img = Image()
    for i in range(4):
        img.desc(DESC, i, 0x400 + 0x40 * i, 0x40, WRITE)
    img.avail([0, 1], 16, used_event=1)
    ops = [(POP, 0, 0), (POP, 0, 0), (USE_OLDEST, 0, 1), (NOTIFY_CHECK, 0, 0), (USE_OLDEST, 0, 1),
           (NOTIFY_CHECK, 0, 0),
           poke(AVAIL + 4 + 2 * 2, 2), poke(AVAIL + 4 + 2 * 3, 3), poke(AVAIL + 2, 4),  # the guest adds two
           (DRAIN, 0, 0), (RECONFIGURE, 0, 0), (DRAIN, 0, 0)]
    yield "queue_event_idx", queue_seed(4, 4, ops, img)

    init = [rd("magic"), rd("version"), rd("device_id"), wr("status", 1), wr("status", 3),
            wr("dev_features_sel", 1), rd("dev_features"),
            wr("drv_features_sel", 1), wr("drv_features", 1),
            wr("drv_features_sel", 0), wr("drv_features", 0x30000000),
            wr("status", 0xb), rd("status"),
            wr("queue_sel", 0), rd("queue_num_max"), wr("queue_num", 16),
            wr("desc_lo", DESC), wr("desc_hi", 0), wr("avail_lo", AVAIL), wr("avail_hi", 0),
            wr("used_lo", USED), wr("used_hi", 0), wr("queue_ready", 1), rd("queue_ready"),
            wr("status", 0xf), wr("queue_notify", 0), rd("int_status"), wr("int_ack", 1),
            (R1, REG["config"], 0), rd("config_gen"), (NOTIFY, 0, 0)]
    yield "transport_init_notify", transport_seed(init + [wr("status", 0)], simple_chain_image())
    # The same with a register page (mode bit 1), and with one that fails to map (bit 2).
    page_ops = init + [wr("queue_sel", 1), wr("dev_features_sel", 1), wr("config", 7), wr("status", 0)]
    yield "transport_register_page", transport_seed(page_ops, simple_chain_image(), mode=3)
    yield "transport_register_page_unmappable", transport_seed(page_ops, simple_chain_image(), mode=7)

    bad = [(R4 | RAW, 0x002, 0), (0x6 | RAW, 0x000, 0), (0x2 | RAW, 0x070, 0),  # unaligned/odd sizes
           (W4 | RAW, 0x071, 1), (W4, REG["magic"], 1), wr("status", 2), wr("status", 1),
           wr("status", 0xb), wr("queue_num", 8), wr("queue_sel", 5), rd("queue_num_max"),
           (0x7 | RAW, 0x108, 0xffffffff), (NOTIFY, 0, 3), rd("shm_len_lo")]
    yield "transport_bad_accesses", transport_seed(bad, Image(0x10))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in seeds():
        (OUT / name).write_bytes(data)
        print(f"{OUT / name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
