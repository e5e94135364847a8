"""Each scored image under one model: its scores, their percentile among the run's test images
and the flag beyond the test images' threshold, its nearest analysed training images in latent
space, and its place on the run's PCA and t-SNE maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

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


@dataclass
class AnalysedSample:
    """The run's analysed training images under one model, as its analysis saved them."""

    sample_idx: np.ndarray  # (m,) their indices in the run's set
    mu: np.ndarray  # (m, latent_dim) posterior means
    pca: np.ndarray  # (m, 2) the run's PCA map
    tsne: np.ndarray  # (m, 2) the run's t-SNE map

    @classmethod
    def load(cls, folder) -> AnalysedSample:
        """From ``folder/embedding.npz`` (``folder``: a run's ``latent_<k>``)."""
        with np.load(folder / outputs.EMBEDDING) as e:
            return cls(**{name: e[name] for name in ("sample_idx", "mu", "pca", "tsne")})


@dataclass
class ModelImages:
    """One model's view of each scored image (n images), against its reference: the run's
    held-out test images scored alike at analysis time."""

    latent_dim: int
    scores: ImageScores
    reference: ImageScores
    analysed: AnalysedSample  # the rows ``nearest`` names, and the maps the images lie on
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


def percentile_of(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each of ``scores`` as the share of the ``reference`` scores at or below it, in %."""
    return np.searchsorted(np.sort(reference), scores, side="right") / len(reference) * 100


def flags(reference: np.ndarray, scores: np.ndarray, fpr: float) -> tuple[float, np.ndarray]:
    """The threshold that a share ``fpr`` of the ``reference`` scores exceed, and which of
    ``scores`` exceed it."""
    threshold = float(np.quantile(reference, 1 - fpr))
    return threshold, scores > threshold


def score_with_model(model, data: XrayData, run_out, seed: int, fpr: float) -> ModelImages:
    """Score every image of ``data`` under the model of ``run_out/latent_<k>``."""
    k = model.latent_dim
    folder = outputs.model_dir(run_out, k)
    reference = load_scores(folder / outputs.REFERENCE)
    scores = score_images(model, data, np.arange(len(data)), derive_seed(seed, f"score-{k}"))
    percentile = {s: percentile_of(reference.score(s), scores.score(s)) for s in SCORES}
    threshold, flagged = flags(reference.score(FLAG_SCORE), scores.score(FLAG_SCORE), fpr)
    analysed = AnalysedSample.load(folder)
    nearest, distance = _nearest(scores.mu, analysed.mu, max(N_NEAREST, TSNE_NEIGHBOURS))
    pca = lt.fit_pca(analysed.mu, derive_seed(seed, "pca")).transform(scores.mu)[:, :2]
    weights = 1.0 / (distance[:, :TSNE_NEIGHBOURS] + 1e-9)
    tsne = (weights[..., None] * analysed.tsne[nearest[:, :TSNE_NEIGHBOURS]]).sum(1)
    tsne /= weights.sum(1, keepdims=True)
    return ModelImages(
        latent_dim=k,
        scores=scores,
        reference=reference,
        analysed=analysed,
        percentile=percentile,
        threshold=threshold,
        flagged=flagged,
        nearest=nearest[:, :N_NEAREST],
        nearest_distance=distance[:, :N_NEAREST],
        pca=pca.astype(np.float32),
        tsne=tsne.astype(np.float32),
    )


def _nearest(mu: np.ndarray, train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``k`` nearest ``train`` means (m, D) of each ``mu`` (n, D), and their
    Euclidean distances, nearest first (scikit-learn's exact search, in float64)."""
    k = min(k, len(train))
    if not len(mu):
        return np.zeros((0, k), int), np.zeros((0, k))
    search = NearestNeighbors(n_neighbors=k).fit(train.astype(np.float64))
    distance, rows = search.kneighbors(mu.astype(np.float64))
    return rows, distance
