"""Guest RAM images for the fuzz seed generators: bytes at addresses, split
ring descriptors and avail rings (virtio 1.2 §2.7, little-endian)."""

import struct


class Image:
    def __init__(self):
        self.b = bytearray()

    def put(self, addr, data):
        if addr + len(data) > len(self.b):
            self.b.extend(bytes(addr + len(data) - len(self.b)))
        self.b[addr:addr + len(data)] = data

    def desc(self, table, i, addr, length, flags=0, nxt=0):
        self.put(table + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def avail(self, ring, heads):
        self.put(ring, struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads))

    def bytes(self):
        return bytes(self.b).rstrip(b"\0")


def put_chains(img, desc, avail, chains, next_flag=1, write_flag=2):
    """Writes `chains` (lists of (addr, len, writable)) as descriptor chains
    from entry 0 of the table at `desc`, and makes their heads available in
    the ring at `avail`. `img` needs only a put(addr, bytes) method."""
    d = 0
    heads = []
    for chain in chains:
        heads.append(d)
        for i, (addr, length, w) in enumerate(chain):
            last = i == len(chain) - 1
            flags = (0 if last else next_flag) | (write_flag if w else 0)
            img.put(desc + 16 * d, struct.pack("<QIHH", addr, length, flags, d + 1))
            d += 1
    img.put(avail, struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads))
