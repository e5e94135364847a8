import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cxrvae.analysis import evidence as ev


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_binary_entropy_is_the_bce_of_a_perfect_reconstruction(rng):
    x = rng.random((3, 8, 8))
    logits = torch.logit(torch.from_numpy(x))
    bce = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(x), reduction="none")
    np.testing.assert_allclose(ev.binary_entropy(x), bce.sum((1, 2)).numpy(), rtol=1e-9)
    assert ev.binary_entropy(np.array([[[0.0, 1.0]]]))[0] == 0
    assert ev.binary_entropy(np.full((1, 2, 2), 0.5))[0] == pytest.approx(4 * np.log(2))


def test_reconstruction_quality_of_a_perfect_and_a_poor_copy(rng):
    x = rng.random((4, 16, 16))
    perfect = ev.reconstruction_quality(x, x, ev.binary_entropy(x))
    np.testing.assert_allclose(perfect["bce_above_floor"], 0, atol=1e-9)
    np.testing.assert_allclose(perfect["ssim"], 1.0)
    assert (perfect["mse"] == 0).all() and (perfect["psnr"] > 100).all()
    blurred = np.full_like(x, x.mean())
    poor = ev.reconstruction_quality(x, blurred, ev.binary_entropy(x) + 50)
    assert (poor["ssim"] < 0.5).all() and (poor["psnr"] < perfect["psnr"]).all()
    np.testing.assert_allclose(poor["bce_above_floor"], 50)


def test_summarize_orders_percentiles():
    s = ev.summarize(np.arange(101.0))
    assert s["p10"] == 10 and s["median"] == 50 and s["p90"] == 90 and s["mean"] == 50


def test_cluster_label_agreement_perfect_and_uninformative(rng):
    labels = np.repeat([0, 1], 50)
    perfect = ev.cluster_label_agreement(1 - labels, labels)
    assert perfect == {"purity": 1.0, "nmi": pytest.approx(1.0)}
    noise = ev.cluster_label_agreement(rng.integers(0, 2, 100), labels)
    assert noise["nmi"] < 0.1 and noise["purity"] < 0.7


def test_linear_r2_finds_linear_maps_and_nothing_else(rng):
    z = rng.normal(size=(300, 4))
    assert ev.linear_r2(z, z @ rng.normal(size=(4, 6)), seed=0) > 0.999
    assert ev.linear_r2(z, rng.normal(size=(300, 3)), seed=0) < 0.1


def test_map_trustworthiness(rng):
    z = np.column_stack([rng.normal(size=200), rng.normal(size=200), 1e-3 * rng.normal(size=200)])
    assert ev.map_trustworthiness(z, z[:, :2]) > 0.99
    assert ev.map_trustworthiness(z, rng.normal(size=(200, 2))) < 0.8


def test_knn_and_probe_on_separable_and_random_labels(rng):
    labels = np.repeat([0, 1], 100)
    z = rng.normal(size=(200, 5)) + 4 * labels[:, None]
    assert ev.knn_accuracy(z, labels, seed=0) > 0.95
    assert ev.probe_auc(z, labels, seed=0) > 0.95
    shuffled = rng.permutation(labels)
    assert 0.3 < ev.probe_auc(z, shuffled, seed=0) < 0.7


def test_probe_handles_more_classes(rng):
    labels = np.repeat([0, 1, 2], 40)
    z = rng.normal(size=(120, 3)) + 5 * np.eye(3)[labels]
    assert ev.probe_auc(z, labels, seed=0) > 0.95


@pytest.mark.parametrize(
    "labels, ok",
    [
        (None, False),
        (np.array([0, 0, 0, 0]), False),
        (np.array([0, 0, 1]), False),
        (np.array([0, 0, 1, 1]), True),
    ],
)
def test_usable_labels(labels, ok):
    assert ev.usable_labels(labels) == ok


def test_linear_baseline_equals_an_explicit_pca_reconstruction(rng):
    x = rng.random((60, 64))
    pca = ev.fit_linear_baseline(x, 8, seed=0)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    for k in (3, 8):
        explicit = (x - mean) @ vt[:k].T @ vt[:k] + mean
        np.testing.assert_allclose(ev.linear_reconstruction(pca, x, k), explicit, atol=1e-6)


def test_linear_quality_of_a_perfect_and_a_poor_linear_code(rng):
    x = np.clip(rng.random((5, 256)), 0.01, 0.99)
    perfect = ev.linear_quality(x, x, (16, 16))
    np.testing.assert_allclose(perfect["bce_above_floor"], 0, atol=1e-9)
    np.testing.assert_allclose(perfect["ssim"], 1)
    flat = ev.linear_quality(x, np.full_like(x, x.mean()), (16, 16))
    assert np.all(flat["bce_above_floor"] > 1) and np.all(flat["ssim"] < 0.5)
    outside = ev.linear_quality(x, x + 2.0, (16, 16))  # clipped, not undefined
    assert np.all(np.isfinite(outside["bce_above_floor"]))
