"""Wall time of the whole default study, stage by stage.

    python benchmarks/study_time.py [--data ../shared/data/pediatric_cxr_64.npz] [--out DIR]
                                    [extra `cxrvae run` options...]

Runs `cxrvae run DATA --out DIR --overwrite` in this process and prints the time of each stage
from DIR/metrics.json: data (load, split, exploration figures), training of each model,
analysis of each model, report; and the total wall time.
"""

from __future__ import annotations

import argparse
import json
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
    args, extra = p.parse_known_args()
    start = time.perf_counter()
    code = cxrvae_main(["run", str(args.data), "--out", str(args.out), "--overwrite", "-q", *extra])
    total = time.perf_counter() - start
    if code != 0:
        return code
    m = json.loads((args.out / "metrics.json").read_text())
    t = m["timings"]
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"CUDA {'yes' if torch.cuda.is_available() else 'no'}"
    )
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
    for k, s in t["analysis"].items():
        print(f"{'analyse latent ' + k:<22}{s:8.1f} s")
    print(f"{'report':<22}{t['report']:8.1f} s")
    print(f"{'total wall':<22}{total:8.1f} s  ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
