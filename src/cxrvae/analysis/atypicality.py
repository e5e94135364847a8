"""How atypical each image is under one model: the scores that ``cxrvae score`` gives new images
and the analysis gives the run's held-out test images (their reference), computed alike.

- ``above_floor``: binary cross-entropy of the reconstruction decoded from the posterior mean,
  minus the image's own floor (its summed binary entropy), nats per image;
- ``neg_elbo``: the negative ELBO, averaged over ``SCORE_IMPORTANCE`` codes drawn from q(z|x),
  nats per image;
- ``bits_per_pixel``: -log2 p(x) per pixel, p(x) the importance-weighted estimate from the same
  codes (Burda et al. 2016).

Higher is more atypical for each. Images are streamed in batches, so any number fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.xray import XrayData
from ..results import SCORES
from . import evidence as ev
from . import latent as lt

LOG_2PI = float(np.log(2 * np.pi))
DECODE_PIXELS = 2**24  # decoder outputs per call when scoring many samples per image
SCORE_IMPORTANCE = 8  # codes per image: 8 decoder passes each (the analysis's estimate uses 32)
BATCH = 512  # images scored at a time


@dataclass
class ImageScores:
    """The scores of images ``idx`` of a set under one model, with their posterior means."""

    idx: np.ndarray  # (n,) indices into the set
    mu: np.ndarray  # (n, latent_dim) float32
    above_floor: np.ndarray  # (n,) float64, each score as the module says
    neg_elbo: np.ndarray
    bits_per_pixel: np.ndarray

    def score(self, name: str) -> np.ndarray:
        """One of :data:`SCORES` by name."""
        return getattr(self, name)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as an array, for an npz."""
        return {"idx": self.idx, "mu": self.mu, **{s: self.score(s) for s in SCORES}}


@torch.inference_mode()
def log_likelihood(
    model, data: XrayData, idx, n_importance: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Importance-weighted estimate of the log-likelihood log p(x) of each image, and its ELBO.

    With K = ``n_importance`` codes z_k drawn from q(z|x) (Burda, Grosse and Salakhutdinov 2016,
    eq. 8): log p(x) ~ log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), a lower bound that tightens as
    K grows and is exact when q(z|x) is the true posterior. The ELBO is the mean of the K log
    weights. p(x|z) is the decoder's per-pixel Bernoulli with the grey levels as targets, the
    same likelihood the loss uses; p(z) = N(0, I). Seeded, so repeatable.

    Returns
    -------
    log_px, elbo : ndarray (n,) float64, nats per image
    """
    gen = torch.Generator().manual_seed(seed)
    k, pixels = n_importance, data.image_size**2
    out_lp, out_elbo = [], []
    for x in lt.batches(model, data, idx):
        mu, logvar = (t.float() for t in model.encode(x))  # (B, D)
        step = max(1, DECODE_PIXELS // (k * pixels))  # images scored per decoder call
        for s in range(0, len(x), step):
            xs, m, lv = x[s : s + step], mu[s : s + step], logvar[s : s + step]
            eps = torch.randn((k, *m.shape), generator=gen).to(m.device)  # (K, b, D)
            z = m + torch.exp(0.5 * lv) * eps
            logits = model.decode(z.reshape(-1, m.shape[1])).float()  # (K*b, 1, H, W)
            target = xs.float().expand(k, *xs.shape).reshape(logits.shape)
            log_px_z = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            log_px_z = log_px_z.sum((1, 2, 3)).reshape(k, -1)  # (K, b)
            log_pz = -0.5 * (z**2 + LOG_2PI).sum(-1)
            log_qz = -0.5 * (eps**2 + LOG_2PI + lv).sum(-1)
            log_w = (log_px_z + log_pz - log_qz).double()  # (K, b)
            out_lp.append((torch.logsumexp(log_w, 0) - np.log(k)).cpu().numpy())
            out_elbo.append(log_w.mean(0).cpu().numpy())
    return np.concatenate(out_lp), np.concatenate(out_elbo)


def score_images(model, data: XrayData, idx, seed: int) -> ImageScores:
    """Each image's scores under ``model`` (seeded: the same call gives the same numbers)."""
    idx = np.asarray(idx)
    parts = []
    for start in range(0, len(idx), BATCH):
        part = idx[start : start + BATCH]
        mu, _ = lt.encode(model, data, part)
        _, bce = lt.reconstruct_scored(model, data, part)
        floor = ev.binary_entropy(data.normalized(part))
        log_px, elbo = log_likelihood(model, data, part, SCORE_IMPORTANCE, seed + start)
        bpp = -log_px / (data.image_size**2 * np.log(2))
        parts.append((mu, bce - floor, -elbo, bpp))
    if not parts:
        dim = model.latent_dim
        parts = [(np.zeros((0, dim), np.float32), *(np.zeros(0),) * 3)]
    mu, above, neg_elbo, bpp = (np.concatenate(c) for c in zip(*parts))
    return ImageScores(idx, mu, above, neg_elbo, bpp)


def load_scores(path) -> ImageScores:
    """Scores saved with :meth:`ImageScores.arrays` in an npz."""
    with np.load(path) as f:
        return ImageScores(**{k: f[k] for k in ("idx", "mu", *SCORES)})
