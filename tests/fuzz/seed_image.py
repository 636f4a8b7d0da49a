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
