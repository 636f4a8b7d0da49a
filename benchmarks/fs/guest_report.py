#!/usr/bin/env python3
"""Summarises benchmarks/fs/run-guest: reads the FSBENCH lines of the logs
of the sides that ran (ksbox-vmm's console, QEMU's console, the native run,
ksbox-vmm with --share-cache always, ksbox-vmm with cache=worktree and the
guest's caches kept, QEMU with Debian's virtiofsd cold and warm, the work on
the guest's own tmpfs), prints per-side checks, a header and the RESULT
lines (medians over the passes):
  RESULT <metric> ksbox=… peer=qemu-9p:… ratio=ksbox/peer
  RESULT <metric>_vs_native ksbox=… peer=native:… ratio=ksbox/peer
  RESULT <metric>_warm_vs_native ksbox=<warm> peer=native:… ratio=warm/peer
  RESULT <metric>_always ksbox=<always> peer=ksbox-auto:… ratio=always/auto
  RESULT <metric>_vs_virtiofsd ksbox=… peer=virtiofsd:… ratio=ksbox/peer
  RESULT <metric>_warm_vs_virtiofsd ksbox=<warm> peer=virtiofsd-warm:… ratio=warm/peer
  RESULT <metric>_warm_vs_guest ksbox=<warm> peer=guest-tmpfs:… ratio=warm/peer
and, as comments, virtiofsd's and guest-tmpfs's own ratios to native (what
the harness costs any virtio-fs server, and any guest: guest-tmpfs is the
work on a tmpfs inside the ksbox guest).
Times are in ms (lower is better); seq_* in MiB/s and rand_* in IOPS (higher
is better). Exits 1 when a side did not finish."""
import argparse
import statistics
import sys

TIMED = ["find_files", "stat_files", "git_status", "untar", "rm_tree", "small_write"]
RATES = ["seq_write", "seq_read", "rand_read", "rand_write"]


def parse(path):
    steps, checks, done, fail = {}, [], False, None
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        return steps, checks, False, str(e), []
    for line in lines:
        line = line.strip()
        words = line.split()
        if len(words) == 3 and words[0] == "FSBENCH" and words[2].isdigit():
            steps.setdefault(words[1], []).append(int(words[2]))
        elif words[:1] == ["FSBENCH-CHECK"]:
            checks.append(" ".join(words[1:]))
        elif words[:1] == ["FSBENCH-DONE"]:
            done = True
        elif words[:1] == ["FSBENCH-FAIL"]:
            fail = " ".join(words[1:])
    return steps, checks, done, fail, lines


def values(steps, args):
    """metric -> (median, unit)."""
    out = {}
    for m in TIMED:
        if m in steps:
            out[m] = (statistics.median(ns / 1e6 for ns in steps[m]), "ms")
    for m in RATES:
        if m in steps:
            if m.startswith("seq"):
                out[m] = (statistics.median(args.mib / (ns / 1e9) for ns in steps[m]), "MiB/s")
            else:
                out[m] = (statistics.median(args.randops / (ns / 1e9) for ns in steps[m]), "IOPS")
    return out


def fmt(v, unit):
    return f"{v:.1f}{unit}" if v < 1000 else f"{v:.0f}{unit}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--files", type=int, required=True)
    ap.add_argument("--mib", type=int, required=True)
    ap.add_argument("--randops", type=int, required=True)
    ap.add_argument("--where", required=True)
    ap.add_argument("--qemu-model", default="mapped")
    ap.add_argument("--smallkib", type=int, default=1024)
    ap.add_argument("--sides", default="ksbox,qemu,native")
    ap.add_argument("ksbox")
    ap.add_argument("qemu")
    ap.add_argument("native")
    ap.add_argument("always", nargs="?")
    ap.add_argument("warm", nargs="?")
    ap.add_argument("virtiofsd", nargs="?")
    ap.add_argument("virtiofsd_warm", nargs="?")
    ap.add_argument("guest_tmpfs", nargs="?")
    args = ap.parse_args()

    ran = args.sides.split(",")
    sides = {}
    ok = True
    sys.stdout.flush()
    for name, side, path in (("ksbox", "ksbox", args.ksbox), ("qemu-9p", "qemu", args.qemu),
                             ("native", "native", args.native), ("ksbox-always", "ksbox-always", args.always),
                             ("ksbox-warm", "ksbox-warm", args.warm), ("virtiofsd", "virtiofsd", args.virtiofsd),
                             ("virtiofsd-warm", "virtiofsd-warm", args.virtiofsd_warm),
                             ("guest-tmpfs", "guest-tmpfs", args.guest_tmpfs)):
        if side not in ran or not path:
            continue
        steps, checks, done, fail, lines = parse(path)
        print(f"# {name}: {'; '.join(checks) or 'no checks'}", file=sys.stderr)
        if not done:
            ok = False
            print(f"# {name}: did not finish ({fail or 'no FSBENCH-DONE'}); last lines of {path}:", file=sys.stderr)
            for line in lines[-40:]:
                print(f"#   {line}", file=sys.stderr)
        sides[name] = values(steps, args)
        # Each side's own medians too, so that a one-side run still says something.
        own = [f"{m}={fmt(*sides[name][m])}" for m in TIMED + RATES if sides[name].get(m)]
        if own:
            print(f"# {name}: {' '.join(own)}", file=sys.stderr)
        # And every pass of the timed steps (ksbox-warm's first one is cold).
        passes = [f"{m}=" + "/".join(f"{ns / 1e6:.0f}" for ns in steps[m]) for m in TIMED if steps.get(m)]
        if passes:
            print(f"# {name} passes (ms): {' '.join(passes)}", file=sys.stderr)

    print(f"# fs in-guest benchmark: {args.reps} passes per side in one boot each (medians), {args.where}; "
          f"{args.files} files, {args.mib} MiB sequential, {args.randops} random 4 KiB requests, "
          f"{args.smallkib} KiB in 128-byte writes; "
          "guests: 1 vCPU, 1 GiB, caches dropped before each step (ksbox-warm: kept, cache=worktree); "
          f"qemu-9p: security_model={args.qemu_model}, msize=512000, cache=none; "
          "virtiofsd: cache=auto (warm: always, caches kept); guest-tmpfs: on a tmpfs in the ksbox guest; "
          "ms lower is better, MiB/s and IOPS higher is better")
    for name in ("virtiofsd", "virtiofsd-warm", "guest-tmpfs"):
        if name in sides and "native" in sides:
            ratios = [f"{m}={sides[name][m][0] / sides['native'][m][0]:.2f}" for m in TIMED + RATES
                      if sides[name].get(m) and sides["native"].get(m)]
            if ratios:
                print(f"# {name} against native: {' '.join(ratios)}")
    for ours, peer, suffix in (("ksbox", "qemu-9p", ""), ("ksbox", "native", "_vs_native"),
                               ("ksbox-warm", "native", "_warm_vs_native"), ("ksbox-always", "ksbox", "_always"),
                               ("ksbox", "virtiofsd", "_vs_virtiofsd"),
                               ("ksbox-warm", "virtiofsd-warm", "_warm_vs_virtiofsd"),
                               ("ksbox-warm", "guest-tmpfs", "_warm_vs_guest")):
        if ours not in sides or peer not in sides:
            continue
        label = "ksbox-auto" if peer == "ksbox" else peer
        for m in TIMED + RATES:
            k, p = sides[ours].get(m), sides[peer].get(m)
            if not k or not p:
                continue
            print(f"RESULT {m}{suffix} ksbox={fmt(*k)} peer={label}:{fmt(*p)} ratio={k[0] / p[0]:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
