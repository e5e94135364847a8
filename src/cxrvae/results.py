"""What a run measured, as dataclasses: the steps fill them, ``metrics.json`` is written from
them and read back into them, and the report reads their fields. No torch here.

Field order is the key order in ``metrics.json``; optional fields left at ``None`` are not
written. :func:`to_dict` and :func:`from_dict` convert any of these classes to and from plain
JSON values.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from .config import RENAMED


@dataclass(kw_only=True)
class Spread:
    """A per-image measure over the test set: mean, median, 10th and 90th percentile."""

    mean: float
    median: float
    p10: float
    p90: float


@dataclass(kw_only=True)
class Trend:
    """How an image feature changes along an interpolation path.

    ``effect`` is the least-squares slope over t in standard deviations of the feature across
    the analysed images: the change from t = 0 to t = 1, comparable between features.
    """

    start: float
    end: float
    slope: float
    effect: float


@dataclass(kw_only=True)
class ProbePath:
    """What a label probe on the latent means says of each decoded frame of a path."""

    label: str  # the class whose probability is given
    probability: list[float]  # one per frame, t = 0 ... 1


@dataclass(kw_only=True)
class PathSummary:
    """One interpolation: its axis label, the axis values of its endpoints, feature trends,
    and (with labels) the label probability of its frames."""

    label: str
    values: list[float]
    trends: dict[str, Trend]
    probe: ProbePath | None = None


@dataclass(kw_only=True)
class LinearBaseline:
    """PCA with as many components as the model has latent dimensions, fitted on training
    images, reconstructing the test set: a linear code of the same size."""

    n_components: int
    n_fit: int  # training images it was fitted on
    bce_above_floor: float  # mean over test images, nats per image
    ssim: float
    error_removed: float  # 1 - model's BCE above floor / the baseline's


@dataclass(kw_only=True)
class LogLikelihood:
    """Importance-weighted estimate of the test log-likelihood (Burda et al. 2016)."""

    n_importance: int  # samples per image
    n_images: int  # test images it was averaged over
    nats: float  # mean log p(x), nats per image
    bits_per_pixel: float  # -log2 p(x) / pixels
    elbo: float  # mean ELBO (sampled codes) on the same images, nats per image
    gap: float  # nats - elbo: how far the ELBO is below the estimate


@dataclass(kw_only=True)
class Traversal:
    """The latent dimensions drawn in the traversal grid, their mean KL, and the step."""

    dims: list[int]
    kl: list[float]
    sd: list[float]  # standard deviation of each dimension's means across the sample
    steps: list[float]  # values in SD, e.g. -3 ... +3


# The scores of an image under a model (see cxrvae.analysis.atypicality), higher meaning more
# atypical, and how the report and the score page name them.
SCORES = (
    "above_floor", "neg_elbo", "bits_per_pixel", "ssim_error", "latent_density", "ssim_density"
)  # fmt: skip
SCORE_WORDS = {
    "above_floor": "reconstruction error above the floor (nats)",
    "neg_elbo": "negative ELBO (nats)",
    "bits_per_pixel": "bits per pixel (-log2 p(x))",
    "ssim_error": "structural error, 1 - SSIM of the reconstruction",
    "latent_density": "latent rarity (-log density of the code among the training images')",
    "ssim_density": "structural error plus latent rarity (each in training-image SDs)",
}
# The score `cxrvae score` flags with and the report leads anomaly detection with: of every
# score and combination tried on the pediatric set's benchmark protocol, the best on validation
# films of the source's training side (benchmarks/anomaly_protocol.py, benchmarks/README.md).
FLAG_SCORE = "ssim_density"


@dataclass(kw_only=True)
class Auroc:
    """A ROC AUC with its bootstrap interval (95%)."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


@dataclass(kw_only=True)
class AnomalyDetection:
    """Trained on some labels only: how well each score tells held-out images of the other
    labels (positives) from held-out images of the trained ones."""

    trained: list[str]  # the labels trained on
    others: list[str]  # the other labels
    n_trained: int  # held-out images of the trained labels
    n_others: int  # held-out images of the others
    auroc: dict[str, Auroc]  # by score (see SCORES)


@dataclass(kw_only=True)
class ModelAnalysis:
    """The latent analysis of one model (``models.<latent_dim>.analysis`` in metrics.json)."""

    n_samples: int
    # reconstruction of the whole test set, per image (nats, dB, SSIM)
    test_bce: Spread
    test_bce_floor: Spread
    test_bce_above_floor: Spread
    test_mse: Spread
    test_psnr: Spread
    test_ssim: Spread
    # K-means on the sample's latent means
    n_clusters: int  # K of K-means
    silhouette: dict[str, float]
    cluster_sizes: list[int]
    cluster_features: list[dict[str, float]]
    # how far apart the clusters' means of each feature lie, in SDs across the sample
    cluster_separation: dict[str, float] | None = None
    silhouette_chosen: float | None = None
    label_share_per_cluster: list[dict[str, float]] | None = None
    purity: float | None = None
    nmi: float | None = None
    # PCA and t-SNE maps
    pca_explained_variance: list[float]
    pca_variance_2d: float | None = None  # PC1 + PC2: the share of variance the PCA map shows
    trustworthiness: dict[str, float]
    knn_accuracy: dict[str, float] | None = None
    probe_auc: float | None = None
    # latent use and interpolations
    kl_per_dim: list[float]
    active_units: int  # dimensions whose means vary across images (variance > 0.01)
    kl_dims_used: int | None = None  # dimensions carrying information (mean KL > 0.05 nats)
    kl_top2_share: float | None = None  # share of the KL held by the two most used dimensions
    interpolation_dim: int
    interpolations: dict[str, PathSummary]
    # reference points
    linear_baseline: LinearBaseline | None = None
    log_likelihood: LogLikelihood | None = None
    traversal: Traversal | None = None
    anomaly: AnomalyDetection | None = None  # runs trained on some labels only


@dataclass(kw_only=True)
class ModelResult:
    """One model of the run: its final losses (nats per image), or why training failed."""

    failed: str | None = None  # the TrainingError's message; the fields below are then None
    test_loss: float | None = None
    test_bce: float | None = None
    test_kl: float | None = None
    train_loss: float | None = None
    train_bce: float | None = None
    train_kl: float | None = None
    epochs: int  # completed (good) epochs
    train_seconds: float | None = None
    analysis: ModelAnalysis | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


@dataclass(kw_only=True)
class FeatureSpread:
    """One image feature across the set (see :mod:`cxrvae.data.features`)."""

    mean: float
    sd: float
    p5: float
    median: float
    p95: float
    effect: float | None = None  # Cohen's d between the two most frequent labels (second - first)


@dataclass(kw_only=True)
class Duplicates:
    """Pixel-identical and near-identical images."""

    identical_images: int  # images with at least one pixel-identical twin
    identical_groups: int
    identical_regrouped: int  # identical groups that spanned patients and were joined
    near_threshold: float  # RMS difference on 16x16 downsampled images, in [0, 1] units
    near_compared: int  # images compared (a seeded subset of very large sets)
    near_pairs: int  # pairs at or below the threshold (identical pairs included)
    near_straddling: int  # of them, pairs with one image in train and one in test


@dataclass(kw_only=True)
class Exploration:
    """What the data exploration measured: how the images differ."""

    # Optional so that runs of earlier versions, which measured less, still load.
    features: dict[str, FeatureSpread] | None = None
    effect_labels: list[str] | None = None  # [first, second]: the labels Cohen's d compares
    dark_edges: dict[str, float] | None = None  # share of images with a dark edge strip, by side
    dark_any: float | None = None  # share of images with a dark strip on at least one side
    atypical: list[float] | None = None  # the largest pixel-PCA distances from the mean
    atypical_median: float | None = None
    pca_components: int | None = None
    duplicates: Duplicates | None = None


@dataclass(kw_only=True)
class DataSummary:
    """The loaded set, without identifiers (``data`` in metrics.json and config.json)."""

    source: str
    reading: str = ""  # how the source was read as images (runs before 0.2 lack it)
    n_images: int
    image_size: int
    native_shape: list[int]
    source_dtype: str
    storage_dtype: str
    normalize: str
    n_constant_images: int
    has_labels: bool
    patient_grouped: bool
    notes: list[str]
    label_names: list[str] | None = None
    label_counts: dict[str, int] | None = None
    n_patients: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    split: str = "seeded"  # "seeded" (stratified, by patient) or "source" (the source's own)
    exploration: Exploration | None = None
    pixel_range: list[float] | None = None  # [min, max] of global normalisation, source units
    train_labels: list[str] | None = None  # anomaly detection: the labels trained on
    n_others: int | None = None  # held-out images of the other labels


@dataclass(kw_only=True)
class Comparison:
    """Between models: agreement of their clusterings and of their latent spaces."""

    sample_note: str
    n_samples: int
    ari: dict[str, float]  # "4-16": adjusted Rand index of the two models' clusters
    ari_mean: float | None = None
    linear_r2: dict[str, float]  # "4->16": R^2 of a linear map from latent 4 to latent 16
    n_paths: int | None = None  # interpolation paths of all models
    path_leaders: dict[str, int] | None = None  # feature -> paths it changes most (>= 0.5 SD)
    config: dict  # the analysis settings used


@dataclass(kw_only=True)
class OverSeeds:
    """One number of one latent size over its trainings with other seeds (``--seeds``): every
    value (seed 1 is the run's own model), their mean and their sample standard deviation."""

    values: list[float]
    mean: float
    sd: float  # ddof 1: the spread another seed's training is expected to add


@dataclass(kw_only=True)
class Alike:
    """How alike models are by one measure (1: the same), as means over pairs of models: of
    repeats of one latent size (``within``, by size) and of two sizes (``between``, "4-16")."""

    within: dict[int, float]
    between: dict[str, float]

    @property
    def least_within(self) -> float:
        """How alike the least alike two seeds of one size are."""
        return min(self.within.values())

    @property
    def most_between(self) -> float:
        """How alike the most alike two sizes are."""
        return max(self.between.values())


@dataclass(kw_only=True)
class SeedVariation:
    """The models of every seed (``--seeds N``) side by side: how much each number varies
    between trainings that differ only in their initial weights and batch order, and whether
    two latent sizes differ more than two seeds of one size do."""

    n_seeds: int
    numbers: dict[str, dict[int, OverSeeds]]  # measure (see SEED_MEASURES) -> latent size
    models: list[str]  # "4/1", "4/2"...: latent size / seed, the order of ``cka``
    cka: list[list[float]]  # linear CKA between every two models' latent means of the sample
    cka_alike: Alike
    ari_alike: Alike  # adjusted Rand index of the K-means partitions of the sample
    map_alike: Alike  # PCA maps: 1 - Procrustes disparity after an orthogonal alignment
    axes: dict[str, dict[int, list[str]]]  # interpolation axis -> size -> leading feature per seed
    # trained on some labels only: each size's anomaly ROC AUC of its seeds' scores averaged
    ensemble_auroc: dict[int, dict[str, Auroc]] | None = None


# The numbers that describe each model, as seed variation lists them, and how they read
SEED_MEASURES = {
    "test_loss": "test loss (nats)",
    "test_bce": "test BCE (nats)",
    "test_kl": "test KL (nats)",
    "above_floor": "BCE above the floor (nats)",
    "log_likelihood": "log-likelihood (nats)",
    "pca_gain": "error removed beyond PCA",
    "active_units": "active units",
    "kl_dims_used": "dimensions carrying information",
    "silhouette": "silhouette",
    "label_ari": "ARI of the clusters against the labels",
    "probe_auc": "label probe ROC AUC",
    **{f"anomaly_{s}": f"anomaly ROC AUC by {SCORE_WORDS[s].split(' (')[0]}" for s in SCORES},
}


@dataclass(kw_only=True)
class Timings:
    """Seconds of wall time per stage (``analysis`` per latent size)."""

    data: float | None = None
    train: float | None = None
    analysis: dict[str, float] | None = None
    report: float | None = None


@dataclass(kw_only=True)
class StudyMetrics:
    """Everything in ``metrics.json``."""

    data: DataSummary
    models: dict[int, ModelResult]
    timings: Timings = field(default_factory=Timings)
    analysis: Comparison | None = None
    seeds: SeedVariation | None = None  # with --seeds N (N > 1), after the analysis

    @property
    def trained(self) -> dict[int, ModelResult]:
        """The models whose training finished, by latent size."""
        return {k: m for k, m in self.models.items() if m.ok}

    @property
    def analysed(self) -> dict[int, ModelAnalysis]:
        """The analyses of the models that have one, by latent size."""
        return {k: m.analysis for k, m in self.models.items() if m.analysis is not None}


# --------------------------------------------------------------------------- conversion


def to_dict(obj):
    """A dataclass (nested) as plain JSON values; ``None`` fields are left out."""
    if dataclasses.is_dataclass(obj):
        return {
            f.name: to_dict(v)
            for f in dataclasses.fields(obj)
            if (v := getattr(obj, f.name)) is not None
        }
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def from_dict(cls, value):
    """Build ``cls`` (a dataclass above, or a type such as ``dict[int, ModelResult]``) from
    plain JSON values, converting nested dataclasses and dictionary keys by the type hints."""
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(cls) if a is not type(None)]
        return from_dict(inner, value)
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        value = {RENAMED.get(k, k) if RENAMED.get(k) in hints else k: v for k, v in value.items()}
        return cls(**{k: from_dict(hints[k], v) for k, v in value.items() if k in hints})
    if origin is dict:
        key, item = typing.get_args(cls)
        return {key(k): from_dict(item, v) for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(cls)
        return [from_dict(item, v) for v in value]
    return value
