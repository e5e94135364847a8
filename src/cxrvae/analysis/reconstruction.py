"""One model's reconstructions: their quality over the whole test set (streamed), the shown and
the worst test images, a linear code of the same size for reference, the importance-weighted
test log-likelihood, and each test image's scores: the reference that scoring new images
compares with (and, for a run trained on some labels only, anomaly detection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..atomic import save_npz
from ..figures.analysis import plot_reconstructions
from ..figures.common import save_figure
from ..outputs import DENSITY, FIGURES, OTHERS, REFERENCE, model_dir
from ..results import SCORES, AnomalyDetection, LinearBaseline, LogLikelihood, Spread
from ..seeding import derive_seed
from . import evidence as ev
from . import latent as lt
from .atypicality import fit_training_density, log_likelihood, score_images
from .sampling import Sample
from .twosample import auroc

GALLERY_SIZE = 8  # worst reconstructions shown
RECON_BATCH = 512  # test images reconstructed and scored at a time


@dataclass
class Reconstruction:
    """How well one model reconstructs the test set: each per-image measure's spread, the
    shown test images' reconstructions, and every test image's BCE above its floor."""

    bce: Spread
    bce_floor: Spread
    bce_above_floor: Spread
    mse: Spread
    psnr: Spread
    ssim: Spread
    shown: np.ndarray  # (n_reconstructions, H, W): the sample's test images, reconstructed
    above_floor: np.ndarray  # (n_test,) nats per image


def reconstruction_step(model, s: Sample, latent_dim: int) -> Reconstruction:
    """Reconstruction quality over the whole test set, streamed; figures of the shown test
    images and of the worst."""
    data, name = s.data, f"Latent {latent_dim}"
    parts = []
    for start in range(0, len(s.test_idx), RECON_BATCH):
        idx = s.test_idx[start : start + RECON_BATCH]
        x_hat, bce = lt.reconstruct_scored(model, data, idx)
        parts.append(ev.reconstruction_quality(data.normalized(idx), x_hat, bce))
    quality = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    recon = lt.reconstruct(model, data, s.recon_idx)
    save_figure(
        plot_reconstructions(
            data.normalized(s.recon_idx),
            {name.lower(): recon},
            f"{name}: test images (top) and reconstructions (bottom)",
        ),
        FIGURES["reconstructions"].file(s.out, latent_dim=latent_dim),
    )
    worst = s.test_idx[np.argsort(quality["bce_above_floor"])[::-1][:GALLERY_SIZE]]
    save_figure(
        plot_reconstructions(
            data.normalized(worst),
            {name.lower(): lt.reconstruct(model, data, worst)},
            f"{name}: the {len(worst)} worst-reconstructed test images (largest BCE above "
            "its floor)",
        ),
        FIGURES["worst_reconstructions"].file(s.out, latent_dim=latent_dim),
    )
    spreads = {k: Spread(**ev.summarize(v)) for k, v in quality.items()}
    return Reconstruction(**spreads, shown=recon, above_floor=quality["bce_above_floor"])


def baseline_step(model_above_floor: np.ndarray, s: Sample, latent_dim: int) -> LinearBaseline:
    """PCA with ``latent_dim`` components reconstructing the test set, against the model."""
    k = min(latent_dim, s.baseline.n_components_)
    parts = []
    for start in range(0, len(s.test_idx), RECON_BATCH):
        x = s.data.normalized(s.test_idx[start : start + RECON_BATCH])
        flat = x.reshape(len(x), -1).astype(np.float64)
        x_hat = ev.linear_reconstruction(s.baseline, flat, k)
        parts.append(ev.linear_quality(flat, x_hat, x.shape[1:]))
    above = float(np.concatenate([p["bce_above_floor"] for p in parts]).mean())
    return LinearBaseline(
        n_components=int(k),
        n_fit=s.n_fit,
        bce_above_floor=above,
        ssim=float(np.concatenate([p["ssim"] for p in parts]).mean()),
        error_removed=float(1 - model_above_floor.mean() / max(above, 1e-12)),
    )


def likelihood_step(model, s: Sample, latent_dim: int) -> LogLikelihood:
    """Importance-weighted test log-likelihood on a seeded subset of the test images."""
    a, seed = s.cfg.analysis, s.cfg.seed
    idx = lt.sample_indices(s.test_idx, a.n_likelihood, derive_seed(seed, "likelihood"))
    log_px, elbo = log_likelihood(
        model, s.data, idx, a.n_importance, derive_seed(seed, f"likelihood-{latent_dim}")
    )
    nats = float(log_px.mean())
    return LogLikelihood(
        n_importance=a.n_importance,
        n_images=int(len(idx)),
        nats=nats,
        bits_per_pixel=float(-nats / (s.data.image_size**2 * np.log(2))),
        elbo=float(elbo.mean()),
        gap=float(nats - elbo.mean()),
    )


def reference_step(model, s: Sample, latent_dim: int, mu: np.ndarray) -> AnomalyDetection | None:
    """Fit what the scores compare with on the analysed training images (their means ``mu``)
    and save it; score every test image as ``cxrvae score`` scores new images, and save the
    scores as the model's reference; when the run was trained on some labels only, how well
    each score tells the held-out images of the other labels from the test images."""
    seed = s.cfg.seed
    folder = model_dir(s.out, latent_dim)
    density = fit_training_density(
        model, s.data, s.sample_idx, mu, derive_seed(seed, f"density-{latent_dim}")
    )
    density.save(folder / DENSITY)
    reference = score_images(
        model, s.data, s.test_idx, derive_seed(seed, f"reference-{latent_dim}"), density
    )
    save_npz(folder / REFERENCE, **reference.arrays())
    if not len(s.other_idx):
        return None
    others_seed = derive_seed(seed, f"others-{latent_dim}")
    others = score_images(model, s.data, s.other_idx, others_seed, density)
    save_npz(folder / OTHERS, **others.arrays())
    es = derive_seed(seed, f"anomaly-{latent_dim}")
    names = s.data.label_names
    trained = sorted(set(s.cfg.data.train_labels or ()))
    return AnomalyDetection(
        trained=trained,
        others=sorted({names[y] for y in s.data.labels[s.other_idx]}),
        n_trained=int(len(s.test_idx)),
        n_others=int(len(s.other_idx)),
        auroc={name: auroc(reference.score(name), others.score(name), es) for name in SCORES},
    )
