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
