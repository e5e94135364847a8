"""Chest-film features in a reader's words, and the effect size between two labels."""

import numpy as np
import pytest

from cxrvae.data.features import cohens_d, edge_strips, image_features


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


def test_the_regions_are_the_lung_fields_and_the_column_between_them():
    from cxrvae.data import features as ft

    x = np.zeros((1, 40, 40))
    rows = slice(int(ft.LUNG_ROWS[0] * 40), int(ft.LUNG_ROWS[1] * 40))  # rows 10-27
    x[0, rows, int(0.12 * 40) : int(0.42 * 40)] = 1.0  # left lung field
    x[0, rows, int(0.58 * 40) : int(0.88 * 40)] = 0.6  # right lung field
    x[0, rows, int(0.42 * 40) : int(0.58 * 40)] = 0.2  # the column between them
    f = image_features(x)
    assert f["lung_opacity"][0] == pytest.approx(0.8 - x.mean())  # the fields' mean is 0.8
    assert f["mediastinum"][0] == pytest.approx(0.2 - 0.8)
    assert f["exposure"][0] == pytest.approx(x.mean())


@pytest.mark.parametrize("row, col", [(0, 0), (5, 30), (31, 31), (20, 7)])
def test_the_position_is_the_brightness_centroid(row, col):
    x = np.zeros((1, 32, 32))
    x[0, row, col] = 1.0
    f = image_features(x)
    assert f["shift_x"][0] == pytest.approx(col / 31 - 0.5)
    assert f["shift_y"][0] == pytest.approx(row / 31 - 0.5)


def test_sharpness_is_the_mean_squared_gradient():
    ramp = np.tile(np.arange(32) / 31, (32, 1))[None]  # brightness rises left to right
    f = image_features(np.concatenate([ramp, ramp.transpose(0, 2, 1)]))
    np.testing.assert_allclose(f["sharpness"], [(1 / 31) ** 2] * 2)
    np.testing.assert_allclose(f["asymmetry"][1], 0, atol=1e-12)  # symmetric about the middle
    np.testing.assert_allclose(f["asymmetry"][0], np.abs(ramp - ramp[:, :, ::-1]).mean())


def test_dark_edges_are_strips_darker_than_the_threshold():
    from cxrvae.data import features as ft

    x = np.full((2, 32, 32), 0.5)
    x[0, :, :2] = ft.DARK - 0.01  # the left strip (2 px: a sixteenth of 32) just dark
    x[1, :, :2] = ft.DARK + 0.01  # just not
    x[:, :2, :] = 0.0  # the top strip dark in both
    f = image_features(x)
    # left, right, top, bottom: the top rows are dark in every strip they cross
    expected = [(1 + 2 / 32 + 1 + 2 / 32) / 4, (2 / 32 + 2 / 32 + 1 + 0) / 4]
    np.testing.assert_allclose(f["dark_border"], expected)
    strips = ft.edge_strips(x)
    assert set(strips) == {"left", "right", "top", "bottom"}
    np.testing.assert_allclose(strips["top"], [0, 0])
    np.testing.assert_allclose(strips["right"], [x[0, :, -2:].mean(), x[1, :, -2:].mean()])
    np.testing.assert_allclose(strips["left"], [x[0, :, :2].mean(), x[1, :, :2].mean()])


def test_every_feature_has_words_and_a_short_name():
    from cxrvae.data.features import NAMES, WORDS, short, words

    assert set(NAMES) == set(image_features(np.zeros((1, 32, 32)))) == set(WORDS)
    for name in NAMES:
        assert words(name) == WORDS[name] and short(name) == words(name).split(" (")[0]
        assert "(" not in short(name) and words(name).startswith(short(name))
    assert words("unknown") == short("unknown") == "unknown"


def test_cohens_d_pools_unequal_groups_and_needs_two_of_each():
    values = np.array([0.0, 1.0, 2.0, 4.0, 6.0])
    labels = np.array([0, 0, 0, 1, 1])
    # variances (ddof 1) 1 and 2, pooled over 2 + 1 degrees of freedom: (2 * 1 + 1 * 2) / 3
    assert cohens_d(values, labels, 0, 1) == pytest.approx((5.0 - 1.0) / np.sqrt(4 / 3))
    assert cohens_d(values, np.array([0, 0, 0, 0, 1]), 0, 1) == 0.0  # one image of label 1
    assert cohens_d(values, np.array([0, 1, 1, 1, 1]), 0, 1) == 0.0


def _region(x, rows, cols):
    """The mean of a region given as fractions of the frame, written out: from the first row
    and column each fraction reaches, at least one of each."""
    h, w = x.shape[1:]
    r0, c0 = int(rows[0] * h), int(cols[0] * w)
    r1, c1 = max(r0 + 1, int(rows[1] * h)), max(c0 + 1, int(cols[1] * w))
    return x[:, r0:r1, c0:c1].mean((1, 2))


@pytest.mark.parametrize("size", [2, 3, 5, 8, 40, 64])
def test_the_regions_of_random_images_of_any_size(size):
    from cxrvae.data import features as ft

    x = np.random.default_rng(size).uniform(size=(3, size, size))
    f = image_features(x)
    lungs = (_region(x, ft.LUNG_ROWS, ft.LEFT_LUNG_COLS)
             + _region(x, ft.LUNG_ROWS, ft.RIGHT_LUNG_COLS)) / 2  # fmt: skip
    np.testing.assert_allclose(f["lung_opacity"], lungs - x.mean((1, 2)))  # each image's own
    np.testing.assert_allclose(f["mediastinum"], _region(x, ft.LUNG_ROWS, ft.CENTRE_COLS) - lungs)
    assert all(np.isfinite(v).all() for v in f.values())


def test_the_centroid_of_dim_images_and_of_each_image_alone():
    x = np.zeros((2, 2, 2))
    x[0, 1, 1] = 0.5  # one dim pixel: the centroid is that pixel, whatever its brightness
    x[1, 0, 0] = 0.25
    f = image_features(x)
    np.testing.assert_allclose(f["shift_x"], [0.5, -0.5])
    np.testing.assert_allclose(f["shift_y"], [0.5, -0.5])


def test_float32_images_are_measured_in_float64():
    x = np.random.default_rng(4).uniform(size=(2, 16, 16))
    x = x.astype(np.float32)
    low, high = image_features(x), image_features(x.astype(np.float64))
    for name in low:
        np.testing.assert_allclose(low[name], high[name], rtol=1e-12, atol=1e-15)
    strips, exact = edge_strips(x), edge_strips(x.astype(np.float64))
    for name in strips:
        np.testing.assert_allclose(strips[name], exact[name], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("size", [16, 64])
def test_the_edge_strips_are_a_sixteenth_of_the_frame_at_least_one_pixel(size):
    from cxrvae.data import features as ft

    b = max(1, round(size / 16))
    x = np.full((1, size, size), 0.5)
    x[0, -b:, :] = 0.0  # exactly the bottom strip dark
    strips = ft.edge_strips(x)
    assert strips["bottom"][0] == 0.0 and strips["top"][0] == 0.5
    np.testing.assert_allclose(image_features(x)["dark_border"], (b / size * 2 + 1) / 4)
    x[0, -b - 1, :] = 0.0  # one row more: not part of any strip
    assert ft.edge_strips(x)["bottom"][0] == 0.0
    last = np.full((1, size, size), 0.5)
    last[0, -1, :] = 0.0  # the last row only: a share 1 / b of the strip
    assert ft.edge_strips(last)["bottom"][0] == pytest.approx(0.5 * (b - 1) / b)


def test_a_strip_at_the_threshold_is_not_dark():
    from cxrvae.data import features as ft

    assert image_features(np.full((1, 32, 32), ft.DARK))["dark_border"][0] == 0.0


def test_cohens_d_of_small_spreads():
    values = np.array([0.0, 0.2, 0.0, 0.2, 0.1, 0.3, 0.1, 0.3])  # the known groups, a tenth
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert cohens_d(values, labels, 0, 1) == pytest.approx(1 / np.sqrt(4 / 3))


def test_cohens_d_of_two_images_each():
    values, labels = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 0, 1, 1])
    assert cohens_d(values, labels, 0, 1) == pytest.approx(2 / np.sqrt(0.5))
