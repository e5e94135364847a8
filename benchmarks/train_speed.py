"""Training throughput: the textbook PyTorch loop vs cxrvae's training, same data, seed, epochs.

    python benchmarks/train_speed.py [--data ../shared/data/pediatric_cxr_64.npz] [--epochs 3]

The textbook loop (the baseline) is written here: widths 32-64-128-256 without BatchNorm,
fp32, a DataLoader over a float tensor of the whole training set, batch 128, Adam at 1e-3.
cxrvae's side is `cxrvae.train.loop.fit` with the default configuration (or --widths/--batch-size).
--levers also times the textbook loop with channels-last and with bf16 CPU autocast;
--skip-baseline times cxrvae alone (e.g. to compare --widths at more epochs).
Both train and then evaluate the test set every epoch; images/s = training images seen / wall
time of all epochs. Both are timed in this one process; it prints images/s, the ratio and the
test loss after the same number of epochs, and the time to quality: when cxrvae's test loss
first reached the textbook loop's final one, against the textbook loop's total time.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from cxrvae.config import RunConfig
from cxrvae.data.loader import load_npz
from cxrvae.data.split import split_indices
from cxrvae.seeding import derive_seed
from cxrvae.train.loop import DeviceData, build_model, evaluate, fit
from cxrvae.train.model import ConvVAE, vae_loss

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/pediatric_cxr_64.npz"


def lever(data, train, latent_dim, seed, channels_last=False, bf16=False, n_batches=12):
    """Training-step throughput (images/s) of the textbook model with one lever switched on.

    Batches of 128, 2 warm-up steps, then ``n_batches`` timed steps (bf16 autocast on a CPU
    without native bf16 can be very slow, so this is kept short).
    """
    torch.manual_seed(seed)
    model = ConvVAE(data.image_size, latent_dim, (32, 64, 128, 256), batchnorm=False)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(data.normalized(train[:128])).unsqueeze(1).contiguous(memory_format=fmt)
    for i in range(2 + n_batches):
        if i == 2:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            x_hat, mu, logvar = model(x)
        loss = vae_loss(x_hat, x, mu, logvar)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return n_batches * len(x) / (time.perf_counter() - start)


def textbook(data, train, test, latent_dim, epochs, seed):
    """The plain loop most tutorials write; returns (images/s, test metrics)."""
    torch.manual_seed(seed)
    model = ConvVAE(data.image_size, latent_dim, (32, 64, 128, 256), batchnorm=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_train = torch.from_numpy(data.normalized(train)).unsqueeze(1)  # the float copies
    x_test = torch.from_numpy(data.normalized(test)).unsqueeze(1)
    loader = DataLoader(
        TensorDataset(x_train),
        batch_size=128,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    test_loader = DataLoader(TensorDataset(x_test), batch_size=128)
    start = time.perf_counter()
    curve = []  # (seconds so far, test loss) after every epoch
    for _ in range(epochs):
        model.train()
        for (x,) in loader:
            x_hat, mu, logvar = model(x)
            loss = vae_loss(x_hat, x, mu, logvar)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()  # the usual per-epoch test pass, as cxrvae's fit also does
        total = 0.0
        with torch.no_grad():
            for (x,) in test_loader:
                x_hat, mu, logvar = model(x)
                total += float(vae_loss(x_hat, x, mu, logvar)["loss"]) * len(x)
        curve.append((time.perf_counter() - start, total / len(test)))
    seconds = time.perf_counter() - start
    model = model.to(memory_format=torch.channels_last)
    return (
        epochs * len(train) / seconds,
        evaluate(model, DeviceData.from_data(data, "cpu"), torch.as_tensor(test)),
        curve,
    )


def ours(data, train, test, latent_dim, epochs, seed, cfg: RunConfig):
    torch.manual_seed(seed)
    model = build_model(cfg.model, data.image_size, latent_dim)
    tc = cfg.train.__class__(**{**cfg.train.__dict__, "epochs": epochs, "device": "cpu"})
    start = time.perf_counter()
    history = fit(model, data, train, test, tc, seed=seed)  # trains, then tests, every epoch
    seconds = time.perf_counter() - start
    last = history[-1]
    curve = list(zip(np.cumsum([r["seconds"] for r in history]), [r["test_loss"] for r in history]))
    return (
        epochs * len(train) / seconds,
        {"loss": last["test_loss"], "bce": last["test_bce"], "kl": last["test_kl"]},
        curve,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--widths", type=int, nargs="+", default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--skip-baseline",
        action="store_true",
        help="time cxrvae only (for comparing its own settings)",
    )
    p.add_argument(
        "--curve",
        action="store_true",
        help="print both test-loss curves epoch by epoch (time to quality is always printed)",
    )
    p.add_argument(
        "--levers",
        action="store_true",
        help="also time the textbook loop with channels-last, and with bf16 autocast",
    )
    args = p.parse_args()

    cfg = RunConfig()
    if args.widths:
        cfg = cfg.replace(model={"widths": tuple(args.widths)})
    if args.batch_size:
        cfg = cfg.replace(train={"batch_size": args.batch_size})
    data = load_npz(args.data, cfg.data.image_size)
    train, test = split_indices(
        len(data), data.labels, data.groups, derive_seed(args.seed, "split")
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    print(
        f"data: {args.data.name}, {len(train)} train / {len(test)} test, "
        f"latent {args.latent_dim}, {args.epochs} epochs each"
    )
    base_ips = None
    if not args.skip_baseline:
        base_ips, base, base_curve = textbook(
            data, train, test, args.latent_dim, args.epochs, args.seed
        )
        print(
            f"textbook fp32 loop (32-64-128-256, batch 128): {base_ips:7.0f} images/s, "
            f"test loss {base['loss']:.1f} (BCE {base['bce']:.1f} + KL {base['kl']:.1f})"
        )
    if args.levers:
        plain = lever(data, train, args.latent_dim, args.seed)
        print(f"lever: textbook model, fp32 training steps: {plain:7.0f} images/s")
        for name, kw in (
            ("channels-last", {"channels_last": True}),
            ("channels-last + bf16 autocast", {"channels_last": True, "bf16": True}),
        ):
            ips = lever(data, train, args.latent_dim, args.seed, **kw)
            print(f"lever: textbook model, {name}: {ips:7.0f} images/s ({ips / plain:.2f}x)")
    our_ips, our, our_curve = ours(data, train, test, args.latent_dim, args.epochs, args.seed, cfg)
    print(
        f"cxrvae ({'-'.join(map(str, cfg.model.widths))}, batch {cfg.train.batch_size}): "
        f"{our_ips:7.0f} images/s, test loss {our['loss']:.1f} "
        f"(BCE {our['bce']:.1f} + KL {our['kl']:.1f})"
    )
    if base_ips:
        print(f"throughput ratio cxrvae / textbook: {our_ips / base_ips:.2f}x")
    if args.curve:
        print("epoch  textbook s  test loss   cxrvae s  test loss")
        for e, (b, o) in enumerate(zip(base_curve or [(np.nan,) * 2] * len(our_curve), our_curve)):
            print(f"{e + 1:5d} {b[0]:11.1f} {b[1]:10.1f} {o[0]:10.1f} {o[1]:10.1f}")
    if base_ips:
        target, base_s = base["loss"], base_curve[-1][0]
        reached = next(((e, t) for e, (t, v) in enumerate(our_curve, 1) if v <= target), None)
        print(
            f"time to quality: the textbook loop reached test loss {target:.1f} after "
            f"{args.epochs} epochs ({base_s:.0f} s); "
            + (
                f"cxrvae reached it after epoch {reached[0]} ({reached[1]:.0f} s): "
                f"{base_s / reached[1]:.1f}x sooner"
                if reached
                else "cxrvae did not reach it"
            )
            + f"; cxrvae ended at {our['loss']:.1f} ({our_curve[-1][0]:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(main())
