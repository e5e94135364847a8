"""Wall time of a run with --seeds N against the same run with one seed, side by side.

    python benchmarks/seeds_time.py [--data sample] [--seeds 3] [--repeat 1] [--out DIR]
                                    [extra `cxrvae run` options...]

Runs `cxrvae run DATA --seeds 1` and `cxrvae run DATA --seeds N` in turn (each a fresh process,
--repeat times), prints each wall time, the ratio of the medians, and where the N-seed run's
time went: each seed's training wall time and analysis seconds (from its metrics.json), and the
share of the wall that training took.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="sample")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=1, help="pairs of runs (default: 1)")
    p.add_argument("--out", type=Path, default=Path("runs/seeds_time"))
    args, extra = p.parse_known_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs")
    print(f"data: {args.data} ({' '.join(extra) or 'default options'})")
    walls = {1: [], args.seeds: []}
    for i in range(args.repeat):
        for n in walls:
            out = args.out / f"seeds_{n}"
            walls[n].append(run(args.data, out, n, extra))
            print(f"pair {i + 1}: --seeds {n}: {walls[n][-1]:7.1f} s", flush=True)
    one, many = statistics.median(walls[1]), statistics.median(walls[args.seeds])
    print(f"median wall: --seeds 1 {one:.1f} s, --seeds {args.seeds} {many:.1f} s")
    print(f"ratio --seeds {args.seeds} / --seeds 1: {many / one:.2f}x")
    where(args.out / f"seeds_{args.seeds}", args.seeds, many)
    return 0


def run(data: str, out: Path, seeds: int, extra: list[str]) -> float:
    command = [sys.executable, "-m", "cxrvae", "run", data, "--out", str(out), "--overwrite",
               "--seeds", str(seeds), "-q", *extra]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def where(out: Path, seeds: int, wall: float) -> None:
    """The N-seed run's last wall time, stage by stage."""
    folders = [out, *(out / "repeats" / str(r) for r in range(2, seeds + 1))]
    spent = 0.0
    for r, folder in enumerate(folders, start=1):
        t = json.loads((folder / "metrics.json").read_text())["timings"]
        analysis = sum((t.get("analysis") or {}).values())
        spent += t["train"]
        print(f"seed {r}: training {t['train']:7.1f} s, analysis {analysis:6.1f} s (per model, "
              "summed: they overlap when analysed at once)")  # fmt: skip
    print(
        f"training of every seed: {spent:.1f} s of the {wall:.1f} s wall ({spent / wall:.0%}); "
        "the rest is data, analysis, comparing the seeds, report, explorer and start-up"
    )


if __name__ == "__main__":
    raise SystemExit(main())
