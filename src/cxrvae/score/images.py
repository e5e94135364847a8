"""Each scored image under one model: its scores, their percentile among the run's test images,
its conformal p-value against them and its flag at the rate asked for, its nearest analysed
training images in latent space, and its place on the run's PCA and t-SNE maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import betabinom
from sklearn.neighbors import NearestNeighbors

from .. import outputs
from ..analysis import latent as lt
from ..analysis.atypicality import ImageScores, TrainingDensity, load_scores, score_images
from ..data.xray import XrayData
from ..results import FLAG_SCORE, SCORES
from ..seeding import derive_seed

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
    flags: Flags  # of the flag score, against the test images'
    nearest: np.ndarray  # (n, N_NEAREST) rows of the analysed training sample, nearest first
    nearest_distance: np.ndarray  # (n, N_NEAREST) in latent space
    pca: np.ndarray  # (n, 2) on the run's PCA map
    tsne: np.ndarray  # (n, 2) on the run's t-SNE map

    @property
    def flag_score(self) -> np.ndarray:
        return self.scores.score(FLAG_SCORE)

    @property
    def flagged(self) -> np.ndarray:
        return self.flags.flagged

    @property
    def threshold(self) -> float:
        return self.flags.threshold


def percentile_of(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each of ``scores`` as the share of the ``reference`` scores at or below it, in %."""
    return np.searchsorted(np.sort(reference), scores, side="right") / len(reference) * 100


@dataclass
class Flags:
    """Conformal flags (Bates et al., Annals of Statistics 2023): each scored image's p-value
    against the reference scores, and the images whose p-value is at most the rate asked for.

    With n reference images exchangeable with a scored image, its p-value is at most ``a`` with
    probability at most ``a``: flagging at ``p <= fpr`` keeps the false-positive rate on such
    images at or below ``fpr``. The p-values are multiples of 1 / (n + 1), so the rate given is
    ``rate = floor(fpr (n + 1)) / (n + 1)``; with ``fpr < 1 / (n + 1)`` no image can be flagged
    (``attainable`` False) and none is.
    """

    pvalue: np.ndarray  # (n,) (1 + reference scores at least as high) / (n_reference + 1)
    flagged: np.ndarray  # (n,) bool
    threshold: float  # an image is flagged when its score exceeds this (inf: none can be)
    rate: float  # the false-positive rate the flags give, at most fpr
    n_reference: int

    @property
    def attainable(self) -> bool:
        return self.rate > 0

    def expected(self, n: int) -> tuple[float, float, float]:
        """How many of ``n`` images exchangeable with the references would be flagged: the
        mean, and the 95% interval over draws of references and images alike (a beta-binomial:
        given the references, the rate is Beta(l, n_reference + 1 - l), l = rate (n + 1))."""
        l_ = round(self.rate * (self.n_reference + 1))
        if not l_ or not n:
            return 0.0, 0.0, 0.0
        low, high = betabinom(n, l_, self.n_reference + 1 - l_).ppf([0.025, 0.975])
        return n * self.rate, float(low), float(high)


def conformal_pvalues(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each of ``scores``' conformal p-value: (1 + reference scores >= it) / (n + 1)."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    at_least = len(ref) - np.searchsorted(ref, scores, side="left")
    return (1 + at_least) / (len(ref) + 1)


def min_fpr(n_reference: int) -> float:
    """The smallest false-positive rate ``n_reference`` reference images can give."""
    return 1.0 / (n_reference + 1)


def flags(reference: np.ndarray, scores: np.ndarray, fpr: float) -> Flags:
    """Conformal flags of ``scores`` at the false-positive rate ``fpr`` (see :class:`Flags`)."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    n = len(ref)
    pvalue = conformal_pvalues(ref, scores)
    l_ = int(np.floor(fpr * (n + 1) + 1e-9))  # p <= fpr  <=>  fewer than l_ references >= score
    threshold = float(ref[n - l_]) if l_ >= 1 else float("inf")  # the l_-th highest reference
    flagged = np.asarray(scores) > threshold
    return Flags(pvalue, flagged, threshold, l_ / (n + 1), n)


def score_with_model(model, data: XrayData, run_out, seed: int, fpr: float) -> ModelImages:
    """Score every image of ``data`` under the model of ``run_out/latent_<k>``."""
    k = model.latent_dim
    folder = outputs.model_dir(run_out, k)
    reference = load_scores(folder / outputs.REFERENCE)
    density = TrainingDensity.load(folder / outputs.DENSITY)
    scores = score_images(
        model, data, np.arange(len(data)), derive_seed(seed, f"score-{k}"), density
    )
    percentile = {s: percentile_of(reference.score(s), scores.score(s)) for s in SCORES}
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
        flags=flags(reference.score(FLAG_SCORE), scores.score(FLAG_SCORE), fpr),
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
