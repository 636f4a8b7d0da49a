#!/usr/bin/env python3
"""The host side of benchmarks/net: a TCP server on 127.0.0.1:PORT that the
guest's net_probe drives (the guest reaches it at the gateway address, in
both ksbox-vmm's and QEMU's user networking). One connection per request,
whose first line says what to do:
  S <n>\\n  read n bytes, then send one byte (the ack)
  R <n>\\n  send n bytes
  E\\n      echo every byte until the client closes
Prints "peer: listening" on stdout once ready."""
import socket
import sys
import threading

CHUNK = 256 * 1024


def serve(conn):
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = conn.makefile("rb", buffering=0)
        line = b""
        while not line.endswith(b"\n"):
            c = f.read(1)
            if not c:
                return
            line += c
        words = line.split()
        if words[0] == b"S":
            left = int(words[1])
            while left > 0:
                got = conn.recv(min(CHUNK, left))
                if not got:
                    return
                left -= len(got)
            conn.sendall(b"k")
        elif words[0] == b"R":
            left = int(words[1])
            block = b"x" * CHUNK
            while left > 0:
                n = min(CHUNK, left)
                conn.sendall(block[:n])
                left -= n
        elif words[0] == b"E":
            while True:
                got = conn.recv(4096)
                if not got:
                    return
                conn.sendall(got)


def main():
    port = int(sys.argv[1])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    print("peer: listening", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
