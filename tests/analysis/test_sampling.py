"""The shared sample every model is analysed on: seeded, drawn from the right sides of the
split, saved for the explorer, with a linear baseline equal to an explicit PCA."""

import numpy as np
import pytest

from cxrvae import outputs
from cxrvae.analysis.sampling import THUMBNAIL, draw_sample
from cxrvae.config import RunConfig
from cxrvae.data.features import NAMES


@pytest.fixture
def setup(split_set):
    data, train, test = split_set
    cfg = RunConfig().replace(
        data={"image_size": 32},
        model={"latent_dims": (2, 6), "widths": (8, 16, 32)},
        analysis={"n_samples": 40, "n_reconstructions": 5},
    )
    return data, train, test, cfg


def test_sample_is_seeded_and_drawn_from_each_side_of_the_split(setup, tmp_path):
    data, train, test, cfg = setup
    s = draw_sample(data, cfg, tmp_path, train, test)
    assert len(s.sample_idx) == 40 and np.isin(s.sample_idx, train).all()
    assert len(s.recon_idx) == 5 and np.isin(s.recon_idx, test).all()
    np.testing.assert_array_equal(s.test_idx, test)
    other = draw_sample(data, cfg.replace(seed=1), tmp_path, train, test)
    assert not np.array_equal(s.sample_idx, other.sample_idx)
    same = draw_sample(data, cfg, tmp_path, train, test)
    np.testing.assert_array_equal(s.sample_idx, same.sample_idx)
    np.testing.assert_array_equal(s.recon_idx, same.recon_idx)
    assert s.note == f"40 of {len(train)} training images encoded"


def test_sample_features_labels_and_thumbnails(setup, tmp_path):
    data, train, test, cfg = setup
    s = draw_sample(data, cfg, tmp_path, train, test)
    assert set(s.features) == set(NAMES)
    assert all(v.shape == (40,) for v in s.features.values())
    np.testing.assert_array_equal(s.labels, data.labels[s.sample_idx])
    assert s.spread["exposure"] == pytest.approx(s.features["exposure"].std())
    assert s.thumbnails.dtype == np.uint8 and s.thumbnails.shape == (40, 32, 32)
    assert THUMBNAIL >= 32  # images at most THUMBNAIL px are kept at their size
    np.testing.assert_allclose(s.thumbnails / 255, data.normalized(s.sample_idx), atol=0.5 / 255)
    with np.load(tmp_path / outputs.SAMPLE) as f:
        np.testing.assert_array_equal(f["sample_idx"], s.sample_idx)
        np.testing.assert_array_equal(f["images"], s.thumbnails)
        np.testing.assert_array_equal(f["labels"], s.labels)
        assert list(f["label_names"]) == ["normal", "pneumonia"]


def test_small_sets_use_every_image_and_say_so(setup, tmp_path):
    data, train, test, cfg = setup
    cfg = cfg.replace(analysis={"n_samples": 1000, "n_reconstructions": 50})
    s = draw_sample(data, cfg, tmp_path, train, test)
    np.testing.assert_array_equal(s.sample_idx, train)
    np.testing.assert_array_equal(s.recon_idx, test)
    assert f"all {len(train)} training images encoded (fewer than 1000)" in s.note
    assert f"reconstructions show all {len(test)} test images (fewer than 50)" in s.note


def test_baseline_is_pca_of_training_images_with_the_largest_latent_size(setup, tmp_path):
    data, train, test, cfg = setup
    s = draw_sample(data, cfg, tmp_path, train, test)
    assert s.baseline.n_components_ == 6 and s.n_fit == len(train)
    x = data.normalized(train).reshape(len(train), -1).astype(np.float64)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    np.testing.assert_allclose(s.baseline.mean_, mean, atol=1e-6)
    # the same subspace as an explicit SVD (components are defined up to sign)
    np.testing.assert_allclose(np.abs(s.baseline.components_ @ vt[:6].T), np.eye(6), atol=1e-4)
