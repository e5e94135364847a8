import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from cxrvae.analysis.latent import (
    decode,
    encode,
    interpolate,
    interpolate_axis,
    kmeans,
    most_used_dim,
    pca,
    sample_indices,
    silhouette_curve,
    traverse,
    tsne,
)
from cxrvae.data.loader import load_npz
from cxrvae.train.model import ConvVAE


@pytest.fixture
def blobs():
    """Three well-separated Gaussian clusters in 8-D: (z (150, 8), true labels (150,))."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (3, 8))
    truth = np.repeat(np.arange(3), 50)
    return centres[truth] + rng.normal(0, 0.5, (150, 8)), truth


@pytest.fixture
def model_and_data(npz_path):
    torch.manual_seed(0)
    return ConvVAE(32, 4, (8, 16)).eval(), load_npz(npz_path, image_size=32)


def test_sample_indices_seeded_and_capped():
    pool = np.arange(100, 5100)
    a, b = sample_indices(pool, 1000, 7), sample_indices(pool, 1000, 7)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 1000 and len(np.unique(a)) == 1000 and np.isin(a, pool).all()
    assert not np.array_equal(a, sample_indices(pool, 1000, 8))
    np.testing.assert_array_equal(sample_indices(pool[:300], 1000, 7), pool[:300])


def test_kmeans_recovers_separated_clusters(blobs):
    z, truth = blobs
    labels = kmeans(z, 3, seed=0)
    assert adjusted_rand_score(truth, labels) > 0.9
    assert list(np.bincount(labels)) == sorted(np.bincount(labels), reverse=True)


def test_silhouette_curve_picks_true_k(blobs):
    z, _ = blobs
    curve = silhouette_curve(z, (2, 6), seed=0, n_init=3)
    assert sorted(curve) == [2, 3, 4, 5, 6]
    assert max(curve, key=curve.get) == 3


def test_pca_variance_sorted_and_at_most_one(blobs):
    coords, evr = pca(blobs[0], seed=0)
    assert coords.shape == (150, 2)
    assert np.all(np.diff(evr) <= 1e-12) and evr.sum() <= 1 + 1e-9


def test_tsne_keeps_neighbours(blobs):
    from sklearn.neighbors import KNeighborsClassifier

    z, truth = blobs
    xy = tsne(z, perplexity=30, seed=0)
    assert xy.shape == (150, 2)
    knn = KNeighborsClassifier(5).fit(xy, truth)
    assert knn.score(xy, truth) > 0.95
    np.testing.assert_array_equal(xy, tsne(z, perplexity=30, seed=0))


def test_interpolate_endpoints_and_t():
    z0, z1 = np.array([0.3, -1.0, 2.0]), np.array([1.7, 4.0, -2.5])
    t, z = interpolate(z0, z1, 7)
    np.testing.assert_allclose(t, np.arange(9) / 8)
    np.testing.assert_array_equal(z[0], z0.astype(np.float32))
    np.testing.assert_array_equal(z[-1], z1.astype(np.float32))
    np.testing.assert_allclose(z[4], (z0 + z1) / 2, rtol=1e-6)


def test_interpolate_axis_uses_argmin_argmax_and_encoded_means(model_and_data):
    model, data = model_and_data
    sample = np.arange(10, 40)
    values = np.random.default_rng(0).normal(size=30)
    it = interpolate_axis(model, data, sample, values, "pca1", "PCA 1", n_between=7)
    assert it.endpoints == (int(np.argmin(values)), int(np.argmax(values)))
    mu, _ = encode(model, data, sample[list(it.endpoints)])
    np.testing.assert_array_equal(it.z[0], mu[0])
    np.testing.assert_array_equal(it.z[-1], mu[1])
    assert it.images.shape == (9, 32, 32)
    assert it.images.min() >= 0 and it.images.max() <= 1
    np.testing.assert_array_equal(it.originals, data.normalized(sample[list(it.endpoints)]))


def test_encode_is_deterministic_and_batched(model_and_data, monkeypatch):
    from cxrvae.analysis import latent

    model, data = model_and_data
    idx = np.arange(len(data))
    mu1, lv1 = encode(model, data, idx)  # 96 images: one batch
    monkeypatch.setattr(latent, "ENCODE_BATCH", 7)  # 13 batches of 7 and one of 5
    mu2, lv2 = encode(model, data, idx[::-1])
    assert mu1.shape == lv1.shape == mu2.shape == (len(data), 4)
    np.testing.assert_allclose(mu1[::-1], mu2, atol=1e-5)
    np.testing.assert_allclose(lv1[::-1], lv2, atol=1e-5)


def test_most_used_dim_is_largest_kl():
    mu = np.zeros((20, 3), np.float32)
    mu[:, 2] = np.linspace(-3, 3, 20)
    dim, kl = most_used_dim(mu, np.zeros_like(mu))
    assert dim == 2 and kl.shape == (3,) and kl[0] == 0


def test_traverse_moves_one_dimension_per_row(model_and_data):
    model, _ = model_and_data
    base = np.array([0.5, -1.0, 0.2, 0.0], np.float32)
    steps = np.array([-3.0, 0.0, 3.0])
    grid = traverse(model, base, [2, 0], np.array([0.5, 2.0]), steps)
    assert grid.shape == (2, 3, 32, 32)
    for r in range(2):  # the middle column is the base code itself
        np.testing.assert_allclose(grid[r, 1], decode(model, base[None])[0], atol=1e-6)
    z = base.copy()
    z[0] = base[0] + 3.0 * 2.0  # row 1 moves dimension 0 by +3 SD of 2.0
    np.testing.assert_allclose(grid[1, 2], decode(model, z[None])[0], atol=1e-6)
    assert not np.allclose(grid[0, 0], grid[0, 2])
