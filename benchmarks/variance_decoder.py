"""The learned-variance candidate of the anomaly protocol: a VAE whose decoder predicts a mean
and a variance per pixel (a Gaussian likelihood), scored by its error in units of that variance,
on the same sets as ``anomaly_protocol.py``.

    python benchmarks/variance_decoder.py [--data ../shared/data/pediatric_cxr_64.npz]
        [--latent-dims 4 16 32] [--seeds 3] [--epochs 100] [--lr 1e-2] [--work runs/variance_64]

Mao et al. (MICCAI 2020) reach test AUROC 0.78 at 64 px on this protocol with an autoencoder
whose reconstruction error is divided by a per-pixel variance the network predicts. The study
keeps the BCE loss the product is built on, so this candidate is trained here, beside it:

1. **Model.** The product's ``ConvVAE`` (same widths, BatchNorm, stride-2 blocks) with a last
   layer of two channels: logits of the mean and the log variance of each pixel. The log
   variance has a smooth floor at log 1e-4 (a standard deviation of 0.01 of the [0, 1] pixel
   range), so a pixel cannot buy an unbounded likelihood by shrinking its variance.
2. **Loss.** Gaussian negative log-likelihood summed over pixels plus the KL to N(0, I), per
   image; trained as ``cxrvae run`` trains (Adam, a one-cycle schedule, batch 64, the same
   epochs) on the protocol's training normals. ``--lr`` sets the schedule's peak: 1e-2, the
   product's, by default; the Gaussian likelihood may want a lower one, so compare on
   validation.
3. **Scores** (higher: more atypical), each image encoded to its posterior mean:
   ``var_error`` the mean squared error over the predicted variance (Mao et al.'s score);
   ``var_nll`` the negative ELBO under the Gaussian likelihood; ``mse`` the plain squared error
   of this model; ``mahalanobis`` of the code against the training codes (Ledoit-Wolf); and
   ``var_error + mahalanobis``, each standardised on the validation normals. Each also averaged
   over the seeds (standardised first): the ensemble.

The table has the columns of ``anomaly_protocol.py``; ``variance.json`` holds every number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from anomaly_protocol import SEED, _result, _z, protocol_sets, table
from sklearn.covariance import LedoitWolf
from torch import nn
from torch.nn import functional as F

from cxrvae.data.loader import load_npz
from cxrvae.seeding import derive_seed, make_generator
from cxrvae.train.loop import DeviceData
from cxrvae.train.model import ConvVAE, kl_divergence

LOG_VAR_MIN = math.log(1e-4)  # pixel SD at least 0.01 of the [0, 1] range
PARTS = ("val_normal", "val_pneumonia", "test_normal", "test_pneumonia")


class VarianceVAE(ConvVAE):
    """``ConvVAE`` whose decoder gives two channels: mean logits and log variance."""

    def __init__(self, image_size: int, latent_dim: int):
        super().__init__(image_size, latent_dim)
        last = self.decoder[-1]
        self.decoder[-1] = nn.ConvTranspose2d(last.in_channels, 2, 4, stride=2, padding=1)

    def mean_logvar(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.decode(z)
        # a smooth floor (softplus): a clamp would stop the gradient of a pixel below it for good
        return torch.sigmoid(out[:, :1]), LOG_VAR_MIN + F.softplus(out[:, 1:] - LOG_VAR_MIN)


def gaussian_nll(x, mean, logvar) -> torch.Tensor:
    """-log N(x; mean, exp(logvar)) summed over each image's pixels, shape (B,)."""
    terms = (x - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi)
    return 0.5 * terms.flatten(1).sum(1)


def train(data, fit_idx, latent_dim: int, seed: int, epochs: int, lr: float) -> VarianceVAE:
    torch.manual_seed(derive_seed(seed, f"init-{latent_dim}"))
    model = VarianceVAE(data.image_size, latent_dim).to(memory_format=torch.channels_last)
    dd = DeviceData.from_data(data, "cpu")
    idx = torch.as_tensor(fit_idx)
    batch, steps = 64, len(fit_idx) // 64 + (len(fit_idx) % 64 >= 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps)
    generator = make_generator(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        torch.manual_seed(derive_seed(seed, f"noise-{epoch}"))
        perm = idx[torch.randperm(len(idx), generator=generator)]
        total = 0.0
        for step in range(steps):
            x = dd.batch(perm[step * batch : (step + 1) * batch])
            mu, logvar = model.encode(x)
            mean, px_logvar = model.mean_logvar(model.reparameterize(mu, logvar))
            loss = (gaussian_nll(x, mean, px_logvar) + kl_divergence(mu, logvar).sum(1)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
        if not math.isfinite(total):
            sys.exit(f"latent {latent_dim}, seed {seed}: non-finite loss at epoch {epoch}")
        if epoch % 10 == 0 or epoch <= 3:
            print(f"    epoch {epoch}: loss {total / steps:.1f}", flush=True)
    return model.eval()


@torch.inference_mode()
def scores(model: VarianceVAE, data, idx: np.ndarray, fit_mu: np.ndarray | None):
    """Per-image scores of ``idx`` (and the posterior means, for the density)."""
    dd = DeviceData.from_data(data, "cpu")
    out = {"var_error": [], "var_nll": [], "mse": [], "mu": []}
    for start in range(0, len(idx), 256):
        x = dd.batch(torch.as_tensor(idx[start : start + 256]))
        mu, logvar = model.encode(x)
        mean, px_logvar = model.mean_logvar(mu)
        sq = (x - mean) ** 2
        out["var_error"].append((sq * torch.exp(-px_logvar)).flatten(1).mean(1))
        out["var_nll"].append(gaussian_nll(x, mean, px_logvar) + kl_divergence(mu, logvar).sum(1))
        out["mse"].append(sq.flatten(1).mean(1))
        out["mu"].append(mu)
    got = {k: torch.cat(v).double().numpy() for k, v in out.items()}
    mu = got.pop("mu")
    if fit_mu is not None:
        got["mahalanobis"] = LedoitWolf().fit(fit_mu).mahalanobis(mu)
    return got, mu


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/pediatric_cxr_64.npz"))
    p.add_argument("--latent-dims", type=int, nargs="+", default=[4, 16, 32])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-2, help="peak of the one-cycle schedule")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--work", type=Path, default=None, help="default: runs/variance_<size>")
    args = p.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (the pediatric set of ../shared/data)")
    work = args.work or Path("runs") / f"variance_{args.image_size}"
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs")
    sets = protocol_sets(args.data)
    data = load_npz(args.data, image_size=args.image_size)
    start = time.perf_counter()
    by_key: dict = {}  # (k, score) -> seed -> part -> (n,)
    for k in args.latent_dims:
        for r in range(args.seeds):
            print(f"  latent {k}, seed {r + 1}", flush=True)
            seed = derive_seed(SEED, f"seed-{r}")
            model = train(data, sets["fit"], k, seed, args.epochs, args.lr)
            _, fit_mu = scores(model, data, sets["fit"], None)
            for part in PARTS:
                got, _ = scores(model, data, sets[part], fit_mu)
                for name, v in got.items():
                    by_key.setdefault((k, name), {}).setdefault(r, {})[part] = v
        error, density = by_key[(k, "var_error")], by_key[(k, "mahalanobis")]
        by_key[(k, "var_error + mahalanobis")] = {
            r: {part: _z(error[r], part) + _z(density[r], part) for part in PARTS} for r in error
        }
    seconds = time.perf_counter() - start
    results = [_result(k, name, s, args.seeds) for (k, name), s in by_key.items()]
    if args.seeds > 1:
        for (k, name), s in list(by_key.items()):
            mean = {part: np.mean([_z(s[r], part) for r in s], 0) for part in PARTS}
            results.append(_result(k, f"{name} (ensemble of {args.seeds})", {0: mean}, 1))
    chosen = max(results, key=lambda r: r["val"]["mean"])
    (work / "variance.json").write_text(
        json.dumps({"results": results, "seconds": round(seconds, 1),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "lr": args.lr,
                    "chosen": {"latent_dim": chosen["latent_dim"], "score": chosen["score"]}},
                   indent=1)
    )  # fmt: skip
    print(table(results, chosen))
    print(f"best on validation: latent {chosen['latent_dim']}, {chosen['score']}")
    print(f"training and scoring {seconds:.0f} s")


if __name__ == "__main__":
    main()
