"""Each scored image under one model: its scores, their percentile among the run's test images
and the flag beyond the test images' threshold, its nearest analysed training images in latent
space, and its place on the run's PCA and t-SNE maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import outputs
from ..analysis import latent as lt
from ..analysis.atypicality import ImageScores, load_scores, score_images
from ..data.xray import XrayData
from ..results import SCORES
from ..seeding import derive_seed

# Flags rest on the reconstruction error above the floor: on the shared 64 px set it flagged
# 99.7% of intensity-inverted test images under each model, where bits per pixel flagged 97%,
# 59% and 43% (latent 4, 16, 32): a larger model gives inverted images a fair likelihood.
FLAG_SCORE = "above_floor"
N_NEAREST = 3  # nearest analysed training images listed per image
TSNE_NEIGHBOURS = 10  # a new point sits at the weighted mean of this many training points
DISTANCE_BLOCK = 1024  # scored images compared with the training sample at a time


@dataclass
class ModelImages:
    """One model's view of each scored image (n images), against its reference: the run's
    held-out test images scored alike at analysis time."""

    latent_dim: int
    scores: ImageScores
    reference: ImageScores
    percentile: dict[str, np.ndarray]  # by score: (n,) share of test images scoring lower, in %
    threshold: float  # of the flag score
    flagged: np.ndarray  # (n,) bool
    nearest: np.ndarray  # (n, N_NEAREST) rows of the analysed training sample, nearest first
    nearest_distance: np.ndarray  # (n, N_NEAREST) in latent space
    pca: np.ndarray  # (n, 2) on the run's PCA map
    tsne: np.ndarray  # (n, 2) on the run's t-SNE map

    @property
    def flag_score(self) -> np.ndarray:
        return self.scores.score(FLAG_SCORE)


def score_with_model(model, data: XrayData, run_out, seed: int, fpr: float) -> ModelImages:
    """Score every image of ``data`` under the model of ``run_out/latent_<k>``."""
    k = model.latent_dim
    folder = outputs.model_dir(run_out, k)
    reference = load_scores(folder / outputs.REFERENCE)
    scores = score_images(model, data, np.arange(len(data)), derive_seed(seed, f"score-{k}"))
    percentile = {
        s: np.searchsorted(np.sort(reference.score(s)), scores.score(s), side="right")
        / len(reference.idx)
        * 100
        for s in SCORES
    }
    threshold = float(np.quantile(reference.score(FLAG_SCORE), 1 - fpr))
    with np.load(folder / outputs.EMBEDDING) as e:
        train_mu, train_tsne = e["mu"], e["tsne"]
    nearest, distance = _nearest(scores.mu, train_mu, max(N_NEAREST, TSNE_NEIGHBOURS))
    pca = lt.fit_pca(train_mu, derive_seed(seed, "pca")).transform(scores.mu)[:, :2]
    weights = 1.0 / (distance[:, :TSNE_NEIGHBOURS] + 1e-9)
    tsne = (weights[..., None] * train_tsne[nearest[:, :TSNE_NEIGHBOURS]]).sum(1)
    tsne /= weights.sum(1, keepdims=True)
    return ModelImages(
        latent_dim=k,
        scores=scores,
        reference=reference,
        percentile=percentile,
        threshold=threshold,
        flagged=scores.score(FLAG_SCORE) > threshold,
        nearest=nearest[:, :N_NEAREST],
        nearest_distance=distance[:, :N_NEAREST],
        pca=pca.astype(np.float32),
        tsne=tsne.astype(np.float32),
    )


def _nearest(mu: np.ndarray, train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``k`` nearest ``train`` means (m, D) of each ``mu`` (n, D), and their
    Euclidean distances, nearest first; by blocks of images."""
    k = min(k, len(train))
    sq = (train.astype(np.float64) ** 2).sum(1)
    rows, dists = [], []
    for start in range(0, len(mu), DISTANCE_BLOCK):
        x = mu[start : start + DISTANCE_BLOCK].astype(np.float64)
        d2 = np.maximum((x**2).sum(1)[:, None] + sq[None] - 2 * x @ train.T, 0)
        part = np.argsort(d2, axis=1, kind="stable")[:, :k]
        rows.append(part)
        dists.append(np.sqrt(np.take_along_axis(d2, part, 1)))
    if not rows:
        return np.zeros((0, k), int), np.zeros((0, k))
    return np.concatenate(rows), np.concatenate(dists)
