"""The two-sample statistics are calibrated (about their nominal level when both sides come
from one distribution) and sensitive (they find a shift)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxrvae.analysis import twosample as ts


def test_mmd_rejects_at_about_its_nominal_level_over_random_half_splits():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(160, 4))
    rejected = 0
    for s in range(40):
        order = np.random.default_rng(s).permutation(len(points))
        _, p = ts.mmd_test(points[order[:80]], points[order[80:]], seed=s)
        rejected += p < 0.05
    assert rejected / 40 <= 0.125  # nominal 0.05; 5 of 40 would already be unusual


def test_mmd_and_the_classifier_find_a_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(100, 4)), rng.normal(size=(60, 4)) + [1.2, 0, 0, 0]
    mmd, p = ts.mmd_test(a, b, seed=0)
    assert mmd > 0 and p < 0.01
    auc = ts.classifier_test(a, b, seed=0)
    assert auc.low > 0.6 and auc.value > 0.7


def test_the_classifier_interval_contains_a_half_for_one_distribution():
    rng = np.random.default_rng(2)
    covered = [
        ts.classifier_test(rng.normal(size=(80, 3)), rng.normal(size=(60, 3)), seed=s).contains(0.5)
        for s in range(10)
    ]
    assert sum(covered) >= 8


def test_auroc_interval_around_the_auc():
    rng = np.random.default_rng(3)
    neg, pos = rng.normal(size=200), rng.normal(size=150) + 1
    a = ts.auroc(neg, pos, seed=0)
    y = np.r_[np.zeros(200), np.ones(150)]
    assert a.value == pytest.approx(roc_auc_score(y, np.r_[neg, pos]))
    assert a.low < a.value < a.high and a.high - a.low < 0.15
    assert a.contains(0.76)  # the true AUC of two normals one SD apart: Phi(1 / sqrt 2)


# Reference implementations: the textbook formulas, written out the slow way, with the draws
# the functions document (the bootstrap resamples each side alone; the MMD test takes a seeded
# subset of a side over 1,000 points, then relabels the pooled points 200 times).


def _pairs_auc(neg, pos):
    """The share of (negative, positive) pairs that the score orders right, ties a half."""
    return (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()


def _reference_auroc(neg, pos, seed):
    y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(1000):
        n, p = neg[rng.integers(0, len(neg), len(neg))], pos[rng.integers(0, len(pos), len(pos))]
        boot.append(_pairs_auc(n, p))
    return roc_auc_score(y, np.r_[neg, pos]), *np.quantile(boot, [0.025, 0.975])


def _reference_mmd2(a, b, bandwidth2):
    def k(x, y):
        return np.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) / bandwidth2)

    m, n = len(a), len(b)
    kaa, kbb = k(a, a), k(b, b)
    xx = (kaa.sum() - np.trace(kaa)) / (m * (m - 1))
    yy = (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
    return xx + yy - 2 * k(a, b).mean()


def _reference_mmd_test(a, b, seed, permutations=True):
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(seed)
    a, b = (x if len(x) <= 1000 else x[np.sort(rng.choice(len(x), 1000, replace=False))]
            for x in (a, b))  # fmt: skip
    pooled = np.r_[a, b]
    bandwidth2 = np.median(pdist(pooled, "sqeuclidean"))
    observed = _reference_mmd2(a, b, bandwidth2)
    if not permutations:
        return observed, None
    first = np.arange(len(pooled)) < len(a)
    larger = 0
    for _ in range(200):
        f = rng.permutation(first)
        larger += _reference_mmd2(pooled[f], pooled[~f], bandwidth2) >= observed - 1e-12
    return observed, (1 + larger) / 201


@pytest.mark.parametrize("ties", [False, True])
def test_auroc_and_its_interval_are_the_stratified_percentile_bootstrap(ties):
    rng = np.random.default_rng(4)
    neg, pos = rng.normal(size=40), rng.normal(size=25) + 0.5
    if ties:  # whole numbers: many ties, each counting a half
        neg, pos = np.round(neg * 2), np.round(pos * 2)
    got = ts.auroc(neg, pos, seed=7)
    want = _reference_auroc(neg, pos, seed=7)
    assert (got.value, got.low, got.high) == pytest.approx(want)


def test_mmd_and_its_p_value_are_the_unbiased_statistic_and_its_permutations():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(20, 3)) + [0.4, 0, 0]
    got = ts.mmd_test(a, b, seed=3)
    want = _reference_mmd_test(a, b, seed=3)
    assert got == pytest.approx(want)
    assert 0 < got[1] < 1


def test_mmd_of_large_sides_uses_a_seeded_subset_of_each():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(1030, 2)), rng.normal(size=(1004, 2)) + [0.05, 0]
    got = ts.mmd_test(a, b, seed=1)
    assert got[0] == pytest.approx(_reference_mmd_test(a, b, seed=1, permutations=False)[0])
    assert got == ts.mmd_test(a, b, seed=1)  # seeded: the same subsets and relabellings


def _reference_classifier(reference, batch, seed, groups=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.r_[reference, batch]
    y = np.r_[np.zeros(len(reference), int), np.ones(len(batch), int)]
    splits = min(5, len(reference), len(batch))
    if groups is None:
        cv = StratifiedKFold(splits, shuffle=True, random_state=seed)
    else:
        cv = StratifiedGroupKFold(min(splits, len(set(groups))), shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    p = cross_val_predict(model, x, y, groups=groups, cv=cv, method="predict_proba")[:, 1]
    return _reference_auroc(p[y == 0], p[y == 1], seed)


@pytest.mark.parametrize(
    ("n_reference", "n_batch", "shift"), [(50, 4, 0.8), (50, 40, 0.8), (3, 30, 0.0)]
)
def test_the_classifier_test_is_the_cross_validated_auroc_of_a_logistic_regression(
    n_reference, n_batch, shift
):
    rng = np.random.default_rng(8)
    reference = rng.normal(size=(n_reference, 3))
    batch = rng.normal(size=(n_batch, 3)) + [shift, 0, 0]
    got = ts.classifier_test(reference, batch, seed=2)
    assert (got.value, got.low, got.high) == pytest.approx(
        _reference_classifier(reference, batch, seed=2)
    )


@pytest.mark.parametrize("n_shared", [1, 12])
def test_a_point_on_both_sides_stays_in_one_fold(n_shared):
    rng = np.random.default_rng(9)
    reference = rng.normal(size=(40, 3))
    batch = np.r_[reference[:n_shared], rng.normal(size=(8, 3)) + [1.0, 0, 0]]
    _, groups = np.unique(np.r_[reference, batch], axis=0, return_inverse=True)
    got = ts.classifier_test(reference, batch, seed=4)
    want = _reference_classifier(reference, batch, seed=4, groups=groups)
    assert (got.value, got.low, got.high) == pytest.approx(want)


def test_fewer_distinct_points_than_folds_give_as_many_folds_as_points():
    points = np.random.default_rng(10).normal(size=(3, 2))
    reference, batch = np.repeat(points, 4, axis=0), np.repeat(points, 2, axis=0)
    _, groups = np.unique(np.r_[reference, batch], axis=0, return_inverse=True)
    got = ts.classifier_test(reference, batch, seed=1)  # three groups: three folds
    want = _reference_classifier(reference, batch, seed=1, groups=groups)
    assert (got.value, got.low, got.high) == pytest.approx(want)


def test_float32_means_are_measured_in_float64():
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(40, 5)).astype(np.float32), rng.normal(size=(30, 5)).astype(np.float32)
    got = ts.mmd_test(a, b, seed=0)
    assert got[0] == pytest.approx(ts.mmd_test(a.astype(float), b.astype(float), 0)[0], rel=1e-12)


def test_a_side_of_exactly_the_limit_is_used_whole(monkeypatch):
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(ts.MMD_MAX, 2)), rng.normal(size=(20, 2)) + [0.3, 0]
    at_the_limit = ts.mmd_test(a, b, seed=4)
    monkeypatch.setattr(ts, "MMD_MAX", ts.MMD_MAX + 1)  # no subset drawn at all
    assert ts.mmd_test(a, b, seed=4) == at_the_limit  # the same relabellings: nothing drawn


def test_identical_sets_are_not_different():
    same = np.zeros((10, 2))
    mmd, p = ts.mmd_test(same, same, seed=0)  # every relabelling ties with the observed MMD
    assert mmd == pytest.approx(0, abs=1e-12) and p == 1.0


def test_a_zero_median_distance_falls_back_to_a_bandwidth_of_one():
    a = np.r_[np.zeros((12, 2)), [[1.0, 0.0]]]  # most pairs identical: median distance 0
    b = np.r_[np.zeros((9, 2)), [[0.0, 2.0], [1.0, 1.0]]]
    got, _ = ts.mmd_test(a, b, seed=0)
    assert got == pytest.approx(_reference_mmd2(a, b, 1.0))


def test_ks_finds_the_shifted_dimension_and_not_the_others():
    """Dimension 2 of 6 shifted by 0.8 SD: its corrected p-value is below 0.05 in every one of
    20 draws; some unshifted dimension is below 0.05 in at most 3 draws (the correction keeps
    the chance of any at 5% or less per draw)."""
    from scipy.stats import ks_2samp

    false, found = 0, 0
    for s in range(20):
        rng = np.random.default_rng(s)
        reference, batch = rng.normal(size=(150, 6)), rng.normal(size=(60, 6))
        batch[:, 2] += 0.8
        p = ts.ks_dimensions(reference, batch)
        found += p[2] < 0.05
        false += bool(np.any(np.delete(p, 2) < 0.05))
        raw = [ks_2samp(reference[:, j], batch[:, j]).pvalue for j in range(6)]
        np.testing.assert_allclose(p, np.minimum(1, np.array(raw) * 6))  # Bonferroni over 6
    assert found == 20 and false <= 3
