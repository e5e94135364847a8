"""Peak resident memory of training on a large uint8 set, against a float-copy baseline.

    python benchmarks/memory.py [--n 112120] [--size 128] [--steps 20] [--dir /tmp/cxrvae_mem]

Writes a synthetic uint8 set of N x SIZE x SIZE images to DIR/big.npy (ChestMNIST at 128 px by
default: 112,120 images, 1.84 GB), then runs under ``/usr/bin/time -v``, each in its own
process:

- ``cxrvae train big.npy`` for one model, one epoch capped at STEPS optimiser steps (data
  figures, the test pass over every test image and all files included);
- the baseline: what a textbook loader does, ``np.load`` then ``astype(float32) / 255`` and a
  tensor of it, followed by the same capped training steps.

It prints each peak RSS (``Maximum resident set size``), the data size, the goal (data + 1 GiB)
and the ratio of the two peaks.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

GIB = 1024**3

BASELINE = textwrap.dedent(
    """
    import sys, numpy as np, torch
    from cxrvae.train.model import ConvVAE, vae_loss
    path, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    x = torch.from_numpy(np.load(path).astype(np.float32) / 255.0).unsqueeze(1)  # float copy
    model = ConvVAE(x.shape[-1], 16, (8, 16, 32, 64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        x_hat, mu, logvar = model(x[idx])
        loss = vae_loss(x_hat, x[idx], mu, logvar)["loss"]
        opt.zero_grad(); loss.backward(); opt.step()
    print("baseline done", float(loss))
    """
)


def make_set(path: Path, n: int, size: int) -> None:
    """Synthetic chest-like uint8 images written straight into a .npy memmap, in chunks."""
    from cxrvae.data.synthetic import synthetic_xrays

    if path.exists() and np.load(path, mmap_mode="r").shape == (n, size, size):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size))
    base, _ = synthetic_xrays(n=256, size=size, seed=0)
    rng = np.random.default_rng(0)
    for start in range(0, n, 4096):
        m = min(4096, n - start)
        pick = base[rng.integers(0, len(base), m)].astype(np.int16)
        noise = rng.integers(-12, 13, (m, size, size), dtype=np.int16)
        out[start : start + m] = np.clip(pick + noise, 0, 255).astype(np.uint8)
    out.flush()
    del out


def peak_rss(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS in bytes, wall seconds, output) of ``cmd`` under /usr/bin/time -v."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return kb * 1024.0, wall, proc.stdout + proc.stderr


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=112_120)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dir", type=Path, default=Path("/tmp/cxrvae_mem"))
    p.add_argument("--skip-baseline", action="store_true")
    args = p.parse_args()

    data = args.dir / "big.npy"
    make_set(data, args.n, args.size)
    data_bytes = args.n * args.size * args.size
    print(f"data: {args.n} x {args.size} x {args.size} uint8 = {data_bytes / GIB:.2f} GiB ({data})")

    cmd = [
        sys.executable, "-m", "cxrvae", "train", str(data), "--out", str(args.dir / "run"),
        "--overwrite", "--image-size", str(args.size), "--latent-dims", "16", "--epochs", "1",
        "--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--device", "cpu",
        "-q",
    ]  # fmt: skip
    rss, wall, _ = peak_rss(cmd)
    goal = data_bytes + GIB
    print(
        f"cxrvae train:  peak RSS {rss / GIB:6.2f} GiB in {wall:6.1f} s   "
        f"(goal <= data + 1 GiB = {goal / GIB:.2f} GiB: {'met' if rss <= goal else 'NOT met'})"
    )
    if args.skip_baseline:
        return
    brss, bwall, _ = peak_rss(
        [sys.executable, "-c", BASELINE, str(data), str(args.steps), str(args.batch_size)]
    )
    print(f"float baseline: peak RSS {brss / GIB:6.2f} GiB in {bwall:6.1f} s")
    print(f"ratio baseline / cxrvae: {brss / rss:.2f}x")


if __name__ == "__main__":
    main()
