"""Each scored image under one model, against its definitions: the percentile among the run's
test images, the flag beyond their threshold, the nearest analysed training images and the
places on the run's maps. A run folder holding only what scoring reads is made here."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from cxrvae.analysis.atypicality import score_images
from cxrvae.analysis.latent import encode
from cxrvae.data.loader import load_npz
from cxrvae.score import images as im
from cxrvae.seeding import derive_seed
from cxrvae.train.model import ConvVAE


@pytest.fixture
def scored(npz_path, tmp_path):
    """A model, a run folder with its reference scores (images 60-95) and analysed sample
    (images 0-39, a random t-SNE map), and images 40-59 scored against them."""
    torch.manual_seed(0)
    model = ConvVAE(32, 3, (8, 16)).eval()
    data = load_npz(npz_path, image_size=32)
    folder = tmp_path / "latent_3"
    folder.mkdir()
    reference = score_images(model, data, np.arange(60, 96), seed=1)
    np.savez(folder / "reference.npz", **reference.arrays())
    sample = np.arange(40)
    mu, _ = encode(model, data, sample)
    tsne = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    np.savez(folder / "embedding.npz", sample_idx=sample, mu=mu, pca=mu[:, :2], tsne=tsne)
    new = data.subset(np.arange(40, 60))
    out = im.score_with_model(model, new, tmp_path, seed=5, fpr=0.1)
    return out, reference, mu, tsne, new, model


def test_percentiles_and_flags_follow_the_reference(scored):
    out, reference, _, _, new, model = scored
    again = score_images(model, new, np.arange(20), derive_seed(5, "score-3"))
    np.testing.assert_array_equal(out.scores.above_floor, again.above_floor)
    for name in ("above_floor", "neg_elbo", "bits_per_pixel"):
        ref, mine = reference.score(name), out.scores.score(name)
        expected = [100 * np.mean(ref <= v) for v in mine]  # share of test images at or below
        np.testing.assert_allclose(out.percentile[name], expected)
    ref = reference.above_floor
    assert out.threshold == pytest.approx(np.quantile(ref, 0.9))
    np.testing.assert_array_equal(out.flagged, out.scores.above_floor > out.threshold)
    assert np.mean(ref > out.threshold) <= 0.1 + 1 / len(ref)  # the test images' rate: fpr


def test_nearest_training_images_and_map_places(scored):
    out, _, mu, tsne, _, _ = scored
    d = np.linalg.norm(out.scores.mu[:, None].astype(float) - mu[None].astype(float), axis=2)
    order = np.argsort(d, axis=1, kind="stable")
    np.testing.assert_array_equal(out.nearest, order[:, : im.N_NEAREST])
    np.testing.assert_allclose(out.nearest_distance, np.sort(d, 1)[:, : im.N_NEAREST], rtol=1e-6)
    # PCA place: the run's PCA of its analysed means, applied to the new means
    pca = PCA(random_state=derive_seed(5, "pca")).fit(mu)
    np.testing.assert_allclose(out.pca, pca.transform(out.scores.mu)[:, :2], atol=1e-5)
    # t-SNE place: the mean of the 10 nearest analysed images' places, weighted by 1 / distance
    near = order[:, : im.TSNE_NEIGHBOURS]
    w = 1 / (np.take_along_axis(d, near, 1) + 1e-9)
    expected = (w[..., None] * tsne[near]).sum(1) / w.sum(1, keepdims=True)
    np.testing.assert_allclose(out.tsne, expected, rtol=1e-5)
    assert out.pca.dtype == out.tsne.dtype == np.float32 and out.latent_dim == 3
    # what the places and neighbours were taken from: the run's saved test scores and sample
    np.testing.assert_array_equal(out.reference.idx, np.arange(60, 96))
    np.testing.assert_array_equal(out.analysed.sample_idx, np.arange(40))
    np.testing.assert_array_equal(out.analysed.tsne, tsne)


def test_no_images_have_no_neighbours():
    rows, distance = im._nearest(np.zeros((0, 3)), np.ones((5, 3)), 10)
    assert rows.shape == distance.shape == (0, 5)
    assert rows.dtype.kind == "i"  # rows index the sample, even when there are none


def test_a_tie_with_a_test_image_counts_it_at_or_below():
    reference = np.array([3.0, 1.0, 2.0, 2.0])
    got = im.percentile_of(reference, np.array([2.0, 0.5, 3.0, 9.0]))
    np.testing.assert_array_equal(got, [75, 0, 100, 100])


def test_a_score_at_the_threshold_is_not_flagged():
    reference = np.arange(1.0, 11.0)  # 1..10: the 0.9 quantile is 9.1, the 1.0 quantile 10
    threshold, flagged = im.flags(reference, np.array([10.0, 10.5, 9.0]), fpr=0.0)
    assert threshold == 10.0
    np.testing.assert_array_equal(flagged, [False, True, False])
    threshold, flagged = im.flags(reference, np.array([9.1, 9.2]), fpr=0.1)
    assert threshold == pytest.approx(9.1)
    np.testing.assert_array_equal(flagged, [False, True])
