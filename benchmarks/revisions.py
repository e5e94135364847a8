"""Wall time and peak memory of two commands, run with a base revision and with this checkout.

    python benchmarks/revisions.py --base 5d568b0 [--dir /tmp/cxrvae_revisions] [--repeat 1]
                                   [--only large first]

The commands (each run in a fresh process, once per revision and repeat, the revisions taking
turns so that both meet the same machine):

- ``large``: ``cxrvae train`` on a generated set of 60,000 uint8 images of 128 px in one npz
  (983 MB; written once to DIR/large.npz), one model of latent size 4, one epoch capped at 20
  steps: the data step (loading, identical images, the survey of how images differ and its
  figures), training and the test pass at scale;
- ``first``: ``cxrvae run`` with no DATA (the packaged sample, the whole default study) in an
  empty folder: what a new user's first run costs.

The base revision is checked out in a temporary git worktree and run from its own ``src``
(see ``scripts/same_outputs.py``). Peak memory is the peak resident set size of the command's
own process (``os.wait4``; worker processes, where models train at once, are not included).
Prints each run, then the medians side by side with the ratios head / base, and for the wall
time also the median of the ratios pair by pair (each head run over the base run just before
it): on a machine whose speed drifts, that ratio moves less than the ratio of the medians.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from same_outputs import cxrvae_argv, revision_src  # noqa: E402

N_LARGE, SIZE_LARGE = 60_000, 128


def make_large(path: Path) -> Path:
    """The generated set of ``N_LARGE`` synthetic chest X-rays of ``SIZE_LARGE`` px, once."""
    from cxrvae.data.synthetic import synthetic_xrays

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.empty((N_LARGE, SIZE_LARGE, SIZE_LARGE), np.uint8)
    chunk = 5000
    for c, start in enumerate(range(0, N_LARGE, chunk)):  # distinct seeds: distinct images
        images[start : start + chunk] = synthetic_xrays(n=chunk, size=SIZE_LARGE, seed=c)[0]
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, images=images)
    tmp.replace(path)
    return path


def commands(work: Path) -> dict[str, tuple[list[str], Path]]:
    """Each benchmark: (cxrvae arguments with the run folder as {out}, working folder)."""
    large = make_large(work / "large.npz")
    return {
        "large": (
            [
                "train",
                large,
                "--out",
                "{out}",
                "--latent-dims",
                "4",
                "--epochs",
                "1",
                "--max-steps",
                "20",
                "--image-size",
                "128",
                "-q",
            ],
            work,
        ),  # fmt: skip
        "first": (["run", "--out", "{out}", "-q"], work / "first"),
    }


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB) of one process."""
    cwd.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(map(str, argv))}\n{proc.stderr.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss * 1024 / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="git revision to compare with")
    p.add_argument("--dir", type=Path, default=Path("/tmp/cxrvae_revisions"))
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--only", nargs="+", choices=("large", "first"), default=("large", "first"))
    a = p.parse_args()
    import torch

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}"
    )
    todo = {k: v for k, v in commands(a.dir).items() if k in a.only}
    results = {(name, rev): [] for name in todo for rev in ("base", "head")}
    with revision_src(a.base) as base_src:
        sources = {"base": base_src, "head": ROOT / "src"}
        for r in range(a.repeat):
            for name, (args, cwd) in todo.items():
                for rev, src in sources.items():
                    out = a.dir / "runs" / f"{name}-{rev}-{r}"
                    subprocess.run(["rm", "-rf", str(out)], check=True)
                    argv = cxrvae_argv(src, [str(x).replace("{out}", str(out)) for x in args])
                    wall, rss = timed(argv, cwd)
                    results[name, rev].append((wall, rss))
                    print(f"{name:6s} {rev} ({a.base if rev == 'base' else 'checkout'}) run {r}:"
                          f" {wall:7.1f} s, peak RSS {rss:5.2f} GB", flush=True)  # fmt: skip
    print(f"\nmedians of {a.repeat} run(s); ratio = head / base")
    print(f"{'command':8s} {'base s':>8s} {'head s':>8s} {'ratio':>6s}   "
          f"{'base GB':>8s} {'head GB':>8s} {'ratio':>6s}")  # fmt: skip
    for name in todo:
        (bw, br), (hw, hr) = (
            [statistics.median(v[i] for v in results[name, rev]) for i in (0, 1)]
            for rev in ("base", "head")
        )
        print(f"{name:8s} {bw:8.1f} {hw:8.1f} {hw / bw:6.2f}   {br:8.2f} {hr:8.2f} {hr / br:6.2f}")
    for name in todo:
        pairs = [h[0] / b[0] for b, h in zip(results[name, "base"], results[name, "head"])]
        print(f"{name}: wall time ratio pair by pair {', '.join(f'{r:.3f}' for r in pairs)}; "
              f"median {statistics.median(pairs):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
