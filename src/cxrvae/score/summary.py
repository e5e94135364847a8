"""What scoring a batch measured, as dataclasses: ``score.json`` is written from them and the
score page reads them (the per-image numbers are in ``scores.csv``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..results import Auroc


@dataclass(kw_only=True)
class EnsembleScore:
    """With ``--seeds N``: the flag score averaged over the N seeds' models of one latent size,
    thresholded as each model's own (on the test images' averaged scores), and how far the
    seeds agree on which images they flag, each on its own threshold."""

    n_seeds: int
    # of the averaged flag score (conformal, against the test images' means); None: too few
    threshold: float | None = None
    n_flagged: int  # images whose averaged score is beyond it
    flagged_per_seed: list[int]  # images each seed's model flags, the run's own first
    flagged_by_any: int  # images some seed flags
    flagged_by_every: int  # images every seed flags


@dataclass(kw_only=True)
class ModelScore:
    """One model's view of the batch: its flags and whether it tells the batch from the run's
    test images."""

    flag_score: str  # the score flags rest on (see cxrvae.analysis.atypicality.SCORES)
    fpr: float  # the false-positive rate asked for, on images exchangeable with the test images
    rate: float  # the rate the flags give: floor(fpr (n_reference + 1)) / (n_reference + 1)
    threshold: float | None = None  # flagged above it (p-value <= fpr); None: none can be
    n_reference: int  # test images the flags and the tests rest on
    n_flagged: int  # images of the batch flagged
    expected_flags: list[float]  # of images like the test images: mean, 95% interval low, high
    medians: dict[str, float]  # each score's median in the batch
    reference_medians: dict[str, float]  # and among the test images
    classifier: Auroc | None = None  # two-sample test in latent space (None: too few images)
    mmd: float | None = None  # MMD^2 in latent space
    mmd_p: float | None = None  # its permutation p-value
    ks_p: list[float] | None = None  # per latent dimension: KS p-value, Bonferroni-corrected
    ensemble: EnsembleScore | None = None  # with --seeds N: the N seeds' models together


@dataclass(kw_only=True)
class FeatureShift:
    """One chest-film feature of the batch against the run's test images."""

    reference: float  # mean over the test images
    batch: float  # mean over the batch
    effect: float  # Cohen's d, batch minus test images


@dataclass(kw_only=True)
class ScoreSummary:
    """Everything in ``score.json``."""

    run: str  # the run folder
    source: str  # the scored images
    n_images: int
    image_size: int
    notes: list[str]
    models: dict[int, ModelScore]
    features: dict[str, FeatureShift] | None = None  # None: too few images
    conclusion: str = ""  # the one sentence the page opens with
