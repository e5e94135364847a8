"""Chest-film features in a reader's words, and the effect size between two labels."""

import numpy as np
import pytest

from cxrvae.data.features import cohens_d, image_features


def test_image_features_measure_what_they_say():
    dark, bright = np.zeros((1, 32, 32)), np.ones((1, 32, 32))
    half = np.zeros((1, 32, 32))
    half[:, :, :16] = 1  # the left half bright: asymmetric, shifted left, dark right edge
    f = image_features(np.concatenate([dark, bright, half]))
    np.testing.assert_allclose(f["exposure"], [0, 1, 0.5])
    np.testing.assert_allclose(f["contrast"], [0, 0, 0.5])
    assert f["asymmetry"][2] == 1 and f["asymmetry"][1] == 0
    assert f["sharpness"][2] > 0 == f["sharpness"][0]
    assert f["shift_x"][2] < -0.2 and abs(f["shift_x"][1]) < 1e-9
    np.testing.assert_allclose(
        f["dark_border"], [1, 0, 0.5]
    )  # left and right strips, top/bottom half


def test_cohens_d_on_known_groups():
    values = np.array([0.0, 2.0, 0.0, 2.0, 1.0, 3.0, 1.0, 3.0])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # means 1 and 2, each group's SD (ddof 1) 1.1547: d = 1 / 1.1547
    assert cohens_d(values, labels, 0, 1) == pytest.approx(1 / np.sqrt(4 / 3))
    assert cohens_d(values, labels, 1, 0) == pytest.approx(-1 / np.sqrt(4 / 3))
    assert cohens_d(np.ones(8), labels, 0, 1) == 0.0
