#!/usr/bin/env python3
"""Summarises benchmarks/blk/run: reads the "BLKBENCH <job> <fio terse v3>"
lines of the two consoles (ksbox-vmm's, QEMU's) and prints a header and
  RESULT <job> ksbox=… peer=qemu-microvm-blk:… ratio=ksbox/peer
with medians over the passes: IOPS for the 4 KiB random jobs, MiB/s for the
sequential ones (higher is better). Exits 1 when a side did not finish."""
import argparse
import statistics
import sys

# fio terse v3 (1-based): 7 read KiB/s, 8 read IOPS, 48 write KiB/s, 49 write IOPS.
FIELDS = {"randread": (8, "IOPS"), "randwrite": (49, "IOPS"), "seqread": (7, "MiB/s"), "seqwrite": (48, "MiB/s")}


def parse(path):
    runs, done, tail = {}, False, []
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        return runs, False, [str(e)]
    for line in lines:
        words = line.strip().split(maxsplit=2)
        if words[:1] == ["BLKBENCH-DONE"]:
            done = True
        if len(words) == 3 and words[0] == "BLKBENCH" and words[1] in FIELDS:
            field, unit = FIELDS[words[1]]
            terse = words[2].split(";")
            if len(terse) < 49:
                continue
            v = float(terse[field - 1])
            runs.setdefault(words[1], []).append(v / 1024 if unit == "MiB/s" else v)
    return runs, done, lines[-40:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--where", required=True)
    ap.add_argument("ksbox")
    ap.add_argument("qemu")
    args = ap.parse_args()
    sides, ok = {}, True
    for name, path in (("ksbox", args.ksbox), ("qemu", args.qemu)):
        runs, done, tail = parse(path)
        if not done:
            ok = False
            print(f"# {name}: did not finish; last lines of {path}:", file=sys.stderr)
            for line in tail:
                print(f"#   {line}", file=sys.stderr)
        sides[name] = {job: statistics.median(v) for job, v in runs.items()}
    print(f"# blk in-guest benchmark: fio on /dev/vda (O_DIRECT, io_uring), {args.reps} passes of {args.seconds} s "
          f"per job in one boot per side (medians), {args.where}; guests: 1 vCPU, 512 MiB; 4 KiB random at "
          "depth 32 (IOPS), 1 MiB sequential at depth 8 (MiB/s); higher is better; peer: QEMU -M microvm "
          "virtio-blk-device, aio=io_uring, cache=writeback")
    for job, (_, unit) in FIELDS.items():
        k, p = sides["ksbox"].get(job), sides["qemu"].get(job)
        if k is None or p is None or p == 0:
            continue
        print(f"RESULT {job} ksbox={k:.0f}{unit} peer=qemu-microvm-blk:{p:.0f}{unit} ratio={k / p:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
