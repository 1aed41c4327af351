#!/usr/bin/env python3
"""Runs a criterion benchmark several times, interleaved (run 1 of every
benchmark, then run 2 of every benchmark, ...), and prints each benchmark's
median over the runs of criterion's per-run median, and the ratios asked for.

    scripts/bench_ratios.py --bench validator --filter 'single/1M/' --runs 5 \
        --ratio 'single_1M/baseline_naive_btreeset:single_1M/strict'

Benchmark ids are criterion's directories under target/criterion, where '/'
inside a group or function name became '_' (`single_1M/strict`). A ratio
`A:B` is median(A) / median(B). Machines are noisy: the spread
(min-max of the per-run medians) is printed beside each median.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time


def medians(root: pathlib.Path, since: float) -> dict:
    """Criterion's median of every benchmark written after `since`."""
    out = {}
    for est in root.glob("**/new/estimates.json"):
        if est.stat().st_mtime < since:
            continue
        bench_id = str(est.parent.parent.relative_to(root))
        with open(est) as f:
            out[bench_id] = json.load(f)["median"]["point_estimate"]
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bench", required=True)
    p.add_argument("--filter", default="")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--features", default="")
    p.add_argument("--ratio", action="append", default=[])
    a = p.parse_args()
    root = pathlib.Path("target/criterion")
    runs = []
    for i in range(a.runs):
        cmd = ["cargo", "bench", "--bench", a.bench]
        if a.features:
            cmd += ["--features", a.features]
        cmd += ["--", a.filter] if a.filter else []
        print(f"run {i + 1}/{a.runs}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        started = time.time()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        runs.append(medians(root, started))
    ids = sorted(set().union(*runs))
    med = {}
    print(f"| benchmark | median of {a.runs} run medians | min | max |")
    print("|---|---:|---:|---:|")
    for b in ids:
        vals = [r[b] for r in runs if b in r]
        med[b] = statistics.median(vals)
        print(f"| {b} | {med[b]:.1f} ns | {min(vals):.1f} | {max(vals):.1f} |")
    for r in a.ratio:
        x, y = r.split(":")
        if x in med and y in med:
            print(f"{x} / {y} = {med[x] / med[y]:.2f}")
        else:
            print(f"{r}: not measured", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
