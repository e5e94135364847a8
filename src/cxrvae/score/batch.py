"""The scored images as a batch, against the run's test images: a classifier two-sample test,
an MMD permutation test and per-dimension Kolmogorov-Smirnov tests in each model's latent
space, each score's median, and the shift of every chest-film feature (Cohen's d)."""

from __future__ import annotations

import numpy as np

from ..analysis.twosample import MIN_PER_SIDE, classifier_test, ks_dimensions, mmd_test
from ..data.features import cohens_d
from ..results import FLAG_SCORE, SCORES
from ..seeding import derive_seed
from .ensemble import EnsembleImages
from .images import ModelImages
from .summary import FeatureShift, ModelScore


def model_score(
    m: ModelImages, fpr: float, seed: int, seeds: EnsembleImages | None = None
) -> ModelScore:
    """What one model says of the batch: its flags, and whether its latent space tells the
    batch from the test images (tests left out with fewer than ``MIN_PER_SIDE`` images); with
    ``seeds``, what the models of every seed of its size say together."""
    out = ModelScore(
        flag_score=FLAG_SCORE,
        fpr=fpr,
        rate=m.flags.rate,
        threshold=m.threshold if m.flags.attainable else None,
        n_reference=int(len(m.reference.idx)),
        n_flagged=int(m.flagged.sum()),
        expected_flags=list(m.flags.expected(len(m.scores.idx))),
        medians={s: float(np.median(m.scores.score(s))) for s in SCORES},
        reference_medians={s: float(np.median(m.reference.score(s))) for s in SCORES},
        ensemble=seeds.summary if seeds is not None else None,
    )
    if min(len(m.scores.idx), len(m.reference.idx)) >= MIN_PER_SIDE:
        es = derive_seed(seed, f"batch-{m.latent_dim}")
        out.classifier = classifier_test(m.reference.mu, m.scores.mu, es)
        out.mmd, out.mmd_p = mmd_test(m.reference.mu, m.scores.mu, es)
        out.ks_p = ks_dimensions(m.reference.mu, m.scores.mu).tolist()
    return out


def feature_shifts(reference: dict, batch: dict) -> dict[str, FeatureShift] | None:
    """Each feature's mean over the test images and the batch, and Cohen's d between them
    (None with fewer than ``MIN_PER_SIDE`` images on a side)."""
    n_ref, n_new = len(next(iter(reference.values()))), len(next(iter(batch.values())))
    if min(n_ref, n_new) < MIN_PER_SIDE:
        return None
    side = np.r_[np.zeros(n_ref, int), np.ones(n_new, int)]
    return {
        f: FeatureShift(
            reference=float(np.mean(reference[f])),
            batch=float(np.mean(batch[f])),
            effect=cohens_d(np.r_[reference[f], batch[f]], side, 0, 1),
        )
        for f in batch
    }
