"""Time to score new images with a trained three-model run, and what the likelihood costs.

    python benchmarks/score_time.py --run RUN [--data ../shared/data/pediatric_cxr_64.npz]
                                    [--n 1000] [--repeat 3]

RUN is a trained and analysed run (without one, `cxrvae run` of the packaged sample, the
default study, is trained into /tmp/cxrvae_score_time/run first). Writes the first N images of
DATA (the shared 64 px set, or synthetic images where it is absent) to an npz, then:

- times `cxrvae score RUN images.npz --out ... --overwrite` as a whole process, REPEAT times
  (min, median, max);
- times, in this process, the stages of one scoring: the scores of each model (with the
  importance-weighted likelihood at the default 8 codes per image), the batch tests, the files;
- times the likelihood estimate alone for one model at 8 and at 32 codes per image.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/pediatric_cxr_64.npz"


def images(data: Path, n: int, path: Path) -> Path:
    if data.exists():
        with np.load(data) as f:
            x = f["images"][:n]
    else:
        from cxrvae.data.synthetic import synthetic_xrays

        x = synthetic_xrays(n=n, size=64, seed=0)[0]
    np.savez(path, images=x)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", type=Path, default=Path("/tmp/cxrvae_score_time"))
    a = p.parse_args()
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} "
          f"torch threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")  # fmt: skip
    a.dir.mkdir(parents=True, exist_ok=True)
    run = a.run or a.dir / "run"
    if not (run / "metrics.json").exists():
        subprocess.run([sys.executable, "-m", "cxrvae", "run", "--out", str(run), "-q"], check=True)
    new = images(a.data, a.n, a.dir / "images.npz")
    cmd = [sys.executable, "-m", "cxrvae", "score", str(run), str(new), "--out",
           str(a.dir / "scores"), "--overwrite", "-q"]  # fmt: skip
    walls = []
    for _ in range(a.repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        walls.append(time.perf_counter() - start)
    mid = statistics.median(walls)
    print(f"cxrvae score, {a.n} images, {run}: min {min(walls):.1f} s, median {mid:.1f} s, "
          f"max {max(walls):.1f} s ({a.repeat} runs)")  # fmt: skip
    stages(run, new)


def stages(run: Path, new: Path) -> None:
    """One scoring in this process, stage by stage."""
    import cxrvae
    from cxrvae.analysis.atypicality import log_likelihood
    from cxrvae.score import scoring
    from cxrvae.score.loading import load_images, open_for_scoring
    from cxrvae.train.checkpoints import load_model

    t = time.perf_counter()
    r = open_for_scoring(run)
    images = load_images(new, r)
    data = images.data
    print(f"  read the images           {time.perf_counter() - t:6.1f} s")
    t = time.perf_counter()
    scores = scoring.score_batch(r, images, 0.01, "cpu")
    print(f"  score with every model    {time.perf_counter() - t:6.1f} s  (and the batch tests)")
    t = time.perf_counter()
    cxrvae.open_run(run).score(data, out=run.parent / "scores_stage", overwrite=True)
    print(f"  score and write the files {time.perf_counter() - t:6.1f} s")
    k = max(scores.models)
    model = load_model(run / f"latent_{k}" / "model.safetensors")
    idx = np.arange(len(data))
    for codes in (8, 32):
        t = time.perf_counter()
        log_likelihood(model, data, idx, codes, seed=0)
        print(f"  likelihood, latent {k}, {codes:2d} codes {time.perf_counter() - t:6.1f} s")


if __name__ == "__main__":
    main()
