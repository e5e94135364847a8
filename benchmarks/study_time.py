"""Wall time of the whole default study, stage by stage.

    python benchmarks/study_time.py [--data ../shared/data/pediatric_cxr_64.npz] [--out DIR]
                                    [--compare-in-turn] [extra `cxrvae run` options...]

Runs `cxrvae run DATA --out DIR --overwrite` in this process and prints the time of each stage
from DIR/metrics.json: data (load, split, exploration figures), training of each model,
analysis of each model, report; and the total wall time. --compare-in-turn then runs the same
study with --no-parallel-models (the models trained one after another, each using every core)
into DIR_in_turn, as the baseline, and prints the ratio of the two wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from cxrvae.cli import main as cxrvae_main

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/pediatric_cxr_64.npz"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=Path("runs/study_time"))
    p.add_argument(
        "--compare-in-turn",
        action="store_true",
        help="also time the study with --no-parallel-models and print the ratio",
    )
    args, extra = p.parse_known_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"CUDA {'yes' if torch.cuda.is_available() else 'no'}"
    )
    total = timed_study(args.data, args.out, extra)
    if total is None:
        return 1
    if args.compare_in_turn:
        out = args.out.with_name(args.out.name + "_in_turn")
        base = timed_study(args.data, out, [*extra, "--no-parallel-models"])
        if base is None:
            return 1
        print(f"ratio in turn / default: {base / total:.2f}x")
    return 0


def timed_study(data: Path, out: Path, extra: list[str]) -> float | None:
    """Run the study, print its stages; return the total wall time (None if it failed)."""
    start = time.perf_counter()
    code = cxrvae_main(["run", str(data), "--out", str(out), "--overwrite", "-q", *extra])
    total = time.perf_counter() - start
    if code != 0:
        return None
    m = json.loads((out / "metrics.json").read_text())
    t = m["timings"]
    print(
        f"data: {m['data']['n_images']} images at {m['data']['image_size']} px "
        f"({' '.join(extra) or 'default options'})"
    )
    print(f"{'data + figures':<22}{t['data']:8.1f} s")
    for k, model in m["models"].items():
        print(
            f"{'train latent ' + k:<22}{model['train_seconds']:8.1f} s  "
            f"({model['epochs']} epochs, test loss {model['test_loss']:.1f} = "
            f"BCE {model['test_bce']:.1f} + KL {model['test_kl']:.1f})"
        )
    print(f"{'training, wall time':<22}{t['train']:8.1f} s  (models trained at once overlap)")
    for k, s in t["analysis"].items():
        print(f"{'analyse latent ' + k:<22}{s:8.1f} s")
    print(f"{'report':<22}{t['report']:8.1f} s")
    print(f"{'total wall':<22}{total:8.1f} s  ({total / 60:.1f} min)", flush=True)
    return total


if __name__ == "__main__":
    raise SystemExit(main())
