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

from ..data.xray import XrayData
from ..results import SCORES
from . import evidence as ev
from . import latent as lt

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


def score_images(model, data: XrayData, idx, seed: int) -> ImageScores:
    """Each image's scores under ``model`` (seeded: the same call gives the same numbers)."""
    idx = np.asarray(idx)
    parts = []
    for start in range(0, len(idx), BATCH):
        part = idx[start : start + BATCH]
        mu, _ = lt.encode(model, data, part)
        _, bce = lt.reconstruct_scored(model, data, part)
        floor = ev.binary_entropy(data.normalized(part))
        log_px, elbo = lt.log_likelihood(model, data, part, SCORE_IMPORTANCE, seed + start)
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
