#!/usr/bin/env python3
"""Summarises benchmarks/net/run: reads the NETBENCH lines of ksbox-vmm's
and QEMU's guest consoles and prints medians and RESULT lines:
  RESULT <metric> ksbox=<v><unit> peer=qemu-user:<v><unit> ratio=ksbox/peer
Throughput in MiB/s (higher is better), round trips in µs (lower is
better). Exits 1 when a side printed none of a metric."""
import argparse
import statistics
import sys

METRICS = [("guest_to_host_mibps", "guest_to_host", "MiB/s"), ("host_to_guest_mibps", "host_to_guest", "MiB/s"),
           ("rr_p50_us", "tcp_rr_p50", "us")]


def parse(path):
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            words = line.split()
            if len(words) == 3 and words[0] == "NETBENCH":
                out.setdefault(words[1], []).append(float(words[2]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--where", required=True)
    ap.add_argument("ksbox")
    ap.add_argument("qemu")
    a = ap.parse_args()
    k, q = parse(a.ksbox), parse(a.qemu)
    print(f"# net: ksbox-vmm (virtio-net + libslirp) vs QEMU -M microvm (virtio-net-device + -netdev user), {a.where}")
    print(f"# medians of {len(k.get('rr_p50_us', []))} (ksbox) / {len(q.get('rr_p50_us', []))} (qemu) passes; "
          "1 vCPU, 512 MiB each; peer: benchmarks/net/peer.py on the host's loopback")
    ok = True
    for key, name, unit in METRICS:
        if key not in k or key not in q:
            print(f"net: no {key} from {'ksbox' if key not in k else 'qemu'}", file=sys.stderr)
            ok = False
            continue
        kv, qv = statistics.median(k[key]), statistics.median(q[key])
        print(f"RESULT {name} ksbox={kv:.1f}{unit} peer=qemu-user:{qv:.1f}{unit} ratio={kv / qv:.2f}")
        print(f"# {name} passes: ksbox {' '.join(f'{v:.1f}' for v in k[key])}; "
              f"qemu {' '.join(f'{v:.1f}' for v in q[key])}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
