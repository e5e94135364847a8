"""Is one set of images unlike another? The statistics that scoring and anomaly detection quote:
ROC AUC with a bootstrap interval, a classifier two-sample test and a kernel (MMD) permutation
test, on arrays of scores or latent means. Seeded, so repeatable; nothing here plots or writes.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import ks_2samp, rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..results import Auroc

N_BOOTSTRAP = 1000  # resamples of the bootstrap interval
LEVEL = 0.95  # its coverage
N_PERMUTATIONS = 200  # of the MMD test: p-values down to 1/201
MMD_MAX = 1000  # images per side the MMD test uses at most (a seeded subset of larger sides)
MIN_PER_SIDE = 5  # fewer images on a side: no two-sample test


def auroc(negative: np.ndarray, positive: np.ndarray, seed: int) -> Auroc:
    """ROC AUC of telling ``positive`` scores (n1,) from ``negative`` ones (n0,), higher
    meaning positive, with a stratified bootstrap interval (each side resampled alone)."""
    negative, positive = np.asarray(negative, float), np.asarray(positive, float)
    rng = np.random.default_rng(seed)
    boot = [
        _auc(negative[rng.integers(0, len(negative), len(negative))],
             positive[rng.integers(0, len(positive), len(positive))])
        for _ in range(N_BOOTSTRAP)
    ]  # fmt: skip
    low, high = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Auroc(value=_auc(negative, positive), low=float(low), high=float(high))


def _auc(negative: np.ndarray, positive: np.ndarray) -> float:
    """The Mann-Whitney form of the ROC AUC (ties count a half), from ranks: fast enough to
    bootstrap."""
    ranks = rankdata(np.r_[negative, positive])
    n0, n1 = len(negative), len(positive)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def classifier_test(reference: np.ndarray, batch: np.ndarray, seed: int) -> Auroc:
    """Classifier two-sample test: the cross-validated ROC AUC (with its bootstrap interval) of
    a logistic regression telling ``batch`` (n1, D) from ``reference`` (n0, D). About 0.5 when
    they come from one distribution; the interval then contains 0.5."""
    x = np.concatenate([reference, batch]).astype(np.float64)
    y = np.r_[np.zeros(len(reference)), np.ones(len(batch))].astype(int)
    # The same point on both sides (an image scored against itself) stays in one fold: a fold
    # that trains on one copy and tests the other would learn the opposite of the truth.
    _, groups = np.unique(x, axis=0, return_inverse=True)
    n_splits = min(5, len(reference), len(batch), groups.max() + 1)
    shared = groups.max() + 1 < len(x)
    folds = (StratifiedGroupKFold if shared else StratifiedKFold)(
        n_splits, shuffle=True, random_state=seed
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    fit_groups = groups if shared else None
    p = cross_val_predict(model, x, y, groups=fit_groups, cv=folds, method="predict_proba")[:, 1]
    return auroc(p[y == 0], p[y == 1], seed)


def mmd_test(reference: np.ndarray, batch: np.ndarray, seed: int) -> tuple[float, float]:
    """Maximum mean discrepancy between ``reference`` and ``batch`` (n, D) with a Gaussian
    kernel (bandwidth: the median distance of the pooled points), and its permutation p-value.

    Returns (MMD^2, unbiased estimate; p-value of ``N_PERMUTATIONS`` relabellings). At most
    ``MMD_MAX`` points of each side are used (a seeded subset).
    """
    rng = np.random.default_rng(seed)
    a, b = (_subset(np.asarray(s, np.float64), rng) for s in (reference, batch))
    x = np.concatenate([a, b])
    sq = (x**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2 * x @ x.T, 0)
    bandwidth2 = np.median(d2[np.triu_indices(len(x), 1)]) or 1.0
    k = np.exp(-d2 / bandwidth2)  # (N, N), ones on the diagonal
    first = np.arange(len(x)) < len(a)
    observed = _mmd2(k, first)
    count = sum(_mmd2(k, rng.permutation(first)) >= observed for _ in range(N_PERMUTATIONS))
    return float(observed), float((1 + count) / (1 + N_PERMUTATIONS))


def ks_dimensions(reference: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """A two-sample Kolmogorov-Smirnov test on each latent dimension (columns of ``reference``
    (n, D) and ``batch`` (m, D)), Bonferroni-corrected for the D tests: each dimension's p-value
    times D, at most 1. Per-dimension tests so corrected detect shifts as well as multivariate
    ones (Rabanser et al., NeurIPS 2019) and name the dimensions that moved.

    Returns
    -------
    ndarray (D,) of corrected p-values
    """
    d = reference.shape[1]
    p = np.array([ks_2samp(reference[:, j], batch[:, j]).pvalue for j in range(d)])
    return np.minimum(1.0, p * d)


def _subset(x: np.ndarray, rng) -> np.ndarray:
    return x if len(x) <= MMD_MAX else x[np.sort(rng.choice(len(x), MMD_MAX, replace=False))]


def _mmd2(k: np.ndarray, first: np.ndarray) -> float:
    """Unbiased MMD^2 of the points marked ``first`` against the others, for a kernel matrix
    ``k`` with ones on its diagonal (one matrix-vector product, so permutations are cheap)."""
    v = first.astype(np.float64)
    kv = k @ v
    m, n = v.sum(), len(v) - v.sum()
    xx = (v @ kv - m) / (m * (m - 1))
    yy = ((1 - v) @ (k.sum(1) - kv) - n) / (n * (n - 1))
    xy = ((1 - v) @ kv) / (m * n)
    return float(xx + yy - 2 * xy)
