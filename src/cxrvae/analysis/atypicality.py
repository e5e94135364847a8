"""How atypical each image is under one model: the scores that ``cxrvae score`` gives new images
and the analysis gives the run's held-out test images (their reference), computed alike.

- ``above_floor``: binary cross-entropy of the reconstruction decoded from the posterior mean,
  minus the image's own floor (its summed binary entropy), nats per image;
- ``neg_elbo``: the negative ELBO, averaged over ``SCORE_IMPORTANCE`` codes drawn from q(z|x),
  nats per image;
- ``bits_per_pixel``: -log2 p(x) per pixel, p(x) the importance-weighted estimate from the same
  codes (Burda et al. 2016);
- ``ssim_error``: 1 - SSIM (scikit-image, data range 1) of the same reconstruction: structure
  the decoder could not rebuild, in place of brightness it could;
- ``latent_density``: -log density of the posterior mean under a Gaussian mixture of the
  analysed training images' means (:class:`TrainingDensity`): how rare the code is;
- ``ssim_density``: the sum of the two, each standardised by its mean and SD over the analysed
  training images; chosen on held-out normal and pneumonia films of the source's training side
  (``benchmarks/anomaly_protocol.py``).

Higher is more atypical for each. Images are streamed in batches, so any number fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from skimage.metrics import structural_similarity
from sklearn.mixture import GaussianMixture

from ..atomic import save_npz
from ..data.xray import XrayData
from ..errors import RunFolderError
from ..results import SCORES
from . import evidence as ev
from . import latent as lt

LOG_2PI = float(np.log(2 * np.pi))
DECODE_PIXELS = 2**24  # decoder outputs per call when scoring many samples per image
SCORE_IMPORTANCE = 8  # codes per image: 8 decoder passes each (the analysis's estimate uses 32)
BATCH = 512  # images scored at a time
DENSITY_COMPONENTS = 4  # Gaussians in the mixture of training codes (chosen with the scores)
DENSITY_REG = 1e-4  # added to each covariance's diagonal: codes of few images stay invertible


@dataclass
class ImageScores:
    """The scores of images ``idx`` of a set under one model, with their posterior means."""

    idx: np.ndarray  # (n,) indices into the set
    mu: np.ndarray  # (n, latent_dim) float32
    above_floor: np.ndarray  # (n,) float64, each score as the module says
    neg_elbo: np.ndarray
    bits_per_pixel: np.ndarray
    ssim_error: np.ndarray
    latent_density: np.ndarray
    ssim_density: np.ndarray

    def score(self, name: str) -> np.ndarray:
        """One of :data:`SCORES` by name."""
        return getattr(self, name)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as an array, for an npz."""
        return {"idx": self.idx, "mu": self.mu, **{s: self.score(s) for s in SCORES}}


@dataclass
class TrainingDensity:
    """What a model's scores compare an image with: a Gaussian mixture of the analysed training
    images' posterior means, and the mean and SD of ``ssim_error`` and ``latent_density`` over
    those images (``center``, ``scale``: (2,) each), which standardise ``ssim_density``."""

    weights: np.ndarray  # (C,)
    means: np.ndarray  # (C, D)
    covariances: np.ndarray  # (C, D, D)
    center: np.ndarray
    scale: np.ndarray

    def rarity(self, mu: np.ndarray) -> np.ndarray:
        """-log density (nats) of each code ``mu`` (n, D) under the mixture."""
        return _mixture_rarity(self.weights, self.means, self.covariances, mu)

    def combined(self, ssim_error: np.ndarray, rarity: np.ndarray) -> np.ndarray:
        """``ssim_density``: the two scores in training-image SDs from their mean, summed."""
        return (ssim_error - self.center[0]) / self.scale[0] + (
            rarity - self.center[1]
        ) / self.scale[1]

    def save(self, path) -> None:
        save_npz(path, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path) -> TrainingDensity:
        if not path.exists():
            raise RunFolderError(
                f"{path}: missing; this run was analysed by an older cxrvae, so its scores lack "
                f"the structural error and latent rarity (cxrvae analyze {path.parents[1]} adds "
                "them)"
            )
        with np.load(path) as f:
            return cls(**{k: f[k] for k in cls.__dataclass_fields__})


def fit_training_density(model, data: XrayData, idx, mu: np.ndarray, seed: int) -> TrainingDensity:
    """The mixture of the training images ``idx``'s means ``mu`` (n, D), full covariances,
    seeded; and the mean and SD of their ``ssim_error`` and ``latent_density``."""
    mu64 = np.asarray(mu, dtype=np.float64)  # float32 codes would make a float32 mixture
    n_components = max(1, min(DENSITY_COMPONENTS, len(mu64) // 10))
    gmm = GaussianMixture(
        n_components, covariance_type="full", reg_covar=DENSITY_REG, random_state=seed
    ).fit(mu64)
    mixture = gmm.weights_, gmm.means_, gmm.covariances_
    errors = np.concatenate(
        [_ssim_error(model, data, idx[s : s + BATCH]) for s in range(0, len(idx), BATCH)]
    )
    parts = np.stack([errors, _mixture_rarity(*mixture, mu64)])
    return TrainingDensity(*mixture, parts.mean(1), np.maximum(parts.std(1), 1e-12))


def _mixture_rarity(weights, means, covariances, mu) -> np.ndarray:
    mu = np.asarray(mu, dtype=np.float64)
    if not len(mu):  # scipy's logpdf would give one value for no codes
        return np.zeros(0)
    parts = [
        np.log(w) + multivariate_normal(m, c, allow_singular=True).logpdf(mu).reshape(-1)
        for w, m, c in zip(weights, means, covariances)
    ]
    return -logsumexp(np.stack(parts), axis=0)


def _ssim_error(model, data: XrayData, idx) -> np.ndarray:
    recon = lt.reconstruct(model, data, idx)
    return structural_error(data.normalized(idx), recon)


def structural_error(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """1 - SSIM (scikit-image, data range 1) of each image (n, H, W) and its reconstruction."""
    return np.array(
        [1.0 - structural_similarity(a, b, data_range=1.0) for a, b in zip(x, x_hat)],
        dtype=np.float64,
    )


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


def score_images(model, data: XrayData, idx, seed: int, density: TrainingDensity) -> ImageScores:
    """Each image's scores under ``model`` against its ``density`` (seeded: the same call gives
    the same numbers)."""
    idx = np.asarray(idx)
    parts = []
    for start in range(0, len(idx), BATCH):
        part = idx[start : start + BATCH]
        mu, _ = lt.encode(model, data, part)
        recon, bce = lt.reconstruct_scored(model, data, part)
        x = data.normalized(part)
        floor = ev.binary_entropy(x)
        log_px, elbo = log_likelihood(model, data, part, SCORE_IMPORTANCE, seed + start)
        bpp = -log_px / (data.image_size**2 * np.log(2))
        ssim_error, rarity = structural_error(x, recon), density.rarity(mu)
        combined = density.combined(ssim_error, rarity)
        parts.append((mu, bce - floor, -elbo, bpp, ssim_error, rarity, combined))
    if not parts:
        dim = model.latent_dim
        parts = [(np.zeros((0, dim), np.float32), *(np.zeros(0),) * (len(SCORES)))]
    mu, *scores = (np.concatenate(c) for c in zip(*parts))
    return ImageScores(idx, mu, *scores)


def load_scores(path) -> ImageScores:
    """Scores saved with :meth:`ImageScores.arrays` in an npz."""
    with np.load(path) as f:
        missing = [k for k in SCORES if k not in f.files]
        if missing:
            raise RunFolderError(
                f"{path}: made by an older cxrvae, without the {missing[0]} score (cxrvae "
                f"analyze {Path(path).parents[1]} scores the test images again)"
            )
        return ImageScores(**{k: f[k] for k in ("idx", "mu", *SCORES)})
