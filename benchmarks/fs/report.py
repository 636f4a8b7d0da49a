#!/usr/bin/env python3
"""RESULT lines for benchmarks/fs from Google Benchmark's JSON output: the
median CPU time (user + system: steadier than wall time on a shared host,
and all of this work is on-CPU) of each fuse_<op> against its syscall_<op>.

usage: report.py BENCH.json [WHERE]   (WHERE: the share's directory and fs)
Exits 1 if a benchmark failed or a pair is incomplete, after printing the rest.
"""
import json
import statistics
import sys


def fmt(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    where = sys.argv[2] if len(sys.argv) > 2 else "?"
    runs, units, ok = {}, {}, True
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            print(f"error: {b['name']}: {b.get('error_message', '')}", file=sys.stderr)
            ok = False
        elif b.get("run_type", "iteration") == "iteration":  # aggregates are recomputed here
            runs.setdefault(b["run_name"], []).append(b["cpu_time"])
            units[b["run_name"]] = b["time_unit"]
    reps = sorted({len(v) for v in runs.values()})
    ctx = data.get("context", {})
    print(f"fs ops: median CPU time of {'/'.join(map(str, reps)) or 0} repetitions, native (no KVM), "
          f"FuseServer::handle() in-process vs the host syscalls; host {ctx.get('host_name', '?')}, "
          f"{ctx.get('num_cpus', '?')} CPUs; share in {where}; goal ratio <= 1.5")
    for name in sorted(runs):  # the JSON order is the random interleaving's
        if not name.startswith("fuse_"):
            continue
        peer = "syscall_" + name.removeprefix("fuse_")
        if peer not in runs or units[peer] != units[name]:
            print(f"error: no {peer} to compare {name} with", file=sys.stderr)
            ok = False
            continue
        k, p, u = statistics.median(runs[name]), statistics.median(runs[peer]), units[name]
        print(f"RESULT {name} ksbox={fmt(k)}{u} peer=syscall:{fmt(p)}{u} ratio={k / p:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
