#!/usr/bin/env python3
"""Writes the seed corpus for egress_parse_fuzz (see the input layout at the
top of egress_parse_fuzz.cc) into corpus/egress_parse/ next to this script."""

import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "egress_parse"


def name(*labels):
    return b"".join(bytes([len(l)]) + l.encode() for l in labels) + b"\0"


def query(qname, qtype=1):
    return struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)


def response(qname, addrs):
    m = bytearray(query(qname))
    m[2:4] = b"\x81\x80"
    m[6:8] = struct.pack(">H", 1 + len(addrs))
    target = name("edge", "cdn", "net")
    m += b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, len(target))
    at = len(m)
    m += target
    for a in addrs:
        m += bytes([0xc0, at]) + struct.pack(">HHIH", 1, 1, 60, 4) + bytes(a)
    return bytes(m)


def frame(proto, l4, dst=(10, 0, 2, 3), frag=0x4000, src=(10, 0, 2, 15)):
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, frag, 64, proto, 0, bytes(src), bytes(dst))
    return bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0]) + ip + l4


def udp(sport, dport, payload):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    q = query(name("api", "github", "com"))
    answer = frame(17, udp(53, 40000, response(name("github", "com"), [(140, 82, 112, 3)])), src=(10, 0, 2, 3),
                   dst=(10, 0, 2, 15))
    syn = frame(6, struct.pack(">HHIIBBHHH", 40000, 443, 1, 0, 5 << 4, 2, 65535, 0, 0), (140, 82, 112, 3))
    alone = b"\0\0\0"  # frames mode, no inbound frame
    seeds = {
        "frame_dns_query": alone + frame(17, udp(40000, 53, q)),
        "frame_dns_response": alone + answer,
        "frame_tcp_syn": alone + syn,
        "frame_answer_then_syn": b"\0" + struct.pack("<H", len(answer)) + answer + syn,
        "frame_fragment": alone + frame(17, udp(1, 53, b"x"), frag=0x2000),
        "dns_query": b"\1" + q,
        "dns_response": b"\1" + response(name("pypi", "org"), [(151, 101, 0, 223), (151, 101, 64, 223)]),
        "dns_pointer_loop": b"\1" + struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1",
    }
    for n, data in seeds.items():
        (OUT / n).write_bytes(data)


if __name__ == "__main__":
    main()
