"""Each image's atypicality under a model (the scores `cxrvae score` gives), and the
importance-weighted likelihood they rest on, against the formulas they implement."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from cxrvae.analysis import atypicality as aty
from cxrvae.analysis.atypicality import load_scores, log_likelihood, score_images
from cxrvae.analysis.latent import encode, reconstruct
from cxrvae.data.loader import load_npz
from cxrvae.results import SCORES
from cxrvae.train.model import ConvVAE


@pytest.fixture
def model_and_data(npz_path):
    torch.manual_seed(0)
    return ConvVAE(32, 4, (8, 16)).eval(), load_npz(npz_path, image_size=32)


@pytest.fixture
def density(model_and_data):
    """What the scores compare with, fitted on images 40-95 as the analysis fits it on its
    sample of training images."""
    model, data = model_and_data
    idx = np.arange(40, 96)
    mu, _ = encode(model, data, idx)
    return aty.fit_training_density(model, data, idx, mu, seed=3)


def _by_hand(model, data, idx):
    """Posterior means, and the BCE of their reconstruction minus each image's own binary
    entropy, summed over pixels (float64)."""
    x = torch.from_numpy(data.normalized(idx))[:, None].double()
    with torch.no_grad():
        mu, _ = model.encode(x.float())
        logits = model.decode(mu).double()
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    p = x.clamp(1e-12, 1 - 1e-12)
    entropy = -(x * p.log() + (1 - x) * (1 - p).log()).sum((1, 2, 3))
    return mu.numpy(), (bce - entropy).numpy()


def test_scores_are_the_formulas_each_image_by_itself(model_and_data, density, monkeypatch):
    model, data = model_and_data
    idx = np.arange(10, 33)
    monkeypatch.setattr(aty, "BATCH", 5)  # four batches of 5 and one of 3
    s = score_images(model, data, idx, seed=7, density=density)
    mu, above = _by_hand(model, data, idx)
    np.testing.assert_array_equal(s.idx, idx)
    np.testing.assert_allclose(s.mu, mu, atol=1e-5)
    np.testing.assert_allclose(s.above_floor, above, rtol=1e-4, atol=1e-2)
    assert s.above_floor.dtype == np.float64 and (s.above_floor > 0).all()  # above the floor
    # ELBO and bits per pixel from SCORE_IMPORTANCE codes, the batch starting at i seeded seed + i
    for start in range(0, len(idx), 5):
        part = idx[start : start + 5]
        log_px, elbo = log_likelihood(model, data, part, aty.SCORE_IMPORTANCE, 7 + start)
        np.testing.assert_allclose(s.neg_elbo[start : start + 5], -elbo, rtol=1e-12)
        bpp = -log_px / (32 * 32 * np.log(2))
        np.testing.assert_allclose(s.bits_per_pixel[start : start + 5], bpp, rtol=1e-12)
    # 1 - SSIM of the reconstruction from the mean, the code's rarity, their standardised sum
    x, recon = data.normalized(idx), reconstruct(model, data, idx)
    ssim = [structural_similarity(a, b, data_range=1.0) for a, b in zip(x, recon)]
    np.testing.assert_allclose(s.ssim_error, 1 - np.array(ssim), rtol=1e-6)
    np.testing.assert_allclose(s.latent_density, density.rarity(mu), rtol=1e-6)
    z = (s.ssim_error - density.center[0]) / density.scale[0]
    z += (s.latent_density - density.center[1]) / density.scale[1]
    np.testing.assert_allclose(s.ssim_density, z, rtol=1e-9)
    for name in SCORES:
        assert s.score(name) is getattr(s, name)


def test_the_training_density_is_the_mixture_of_the_training_codes(model_and_data, density):
    """Its rarity is -log of the mixture's density (scikit-learn's, refitted alike), and it is
    standardised by the mean and SD of the training images' own scores."""
    from sklearn.mixture import GaussianMixture

    model, data = model_and_data
    idx = np.arange(40, 96)
    mu, _ = encode(model, data, idx)
    gmm = GaussianMixture(
        len(density.weights), covariance_type="full", reg_covar=aty.DENSITY_REG, random_state=3
    ).fit(mu.astype(np.float64))
    np.testing.assert_allclose(density.rarity(mu), -gmm.score_samples(mu), rtol=1e-6)
    assert len(density.weights) == aty.DENSITY_COMPONENTS  # 56 images: 4 components
    pairs = zip(data.normalized(idx), reconstruct(model, data, idx))
    errors = 1 - np.array([structural_similarity(a, b, data_range=1.0) for a, b in pairs])
    np.testing.assert_allclose(density.center, [errors.mean(), density.rarity(mu).mean()])
    np.testing.assert_allclose(density.scale, [errors.std(), density.rarity(mu).std()])
    # a code far from every training code is rarer than any training code
    far = mu.mean(0, keepdims=True) + 10 * mu.std(0, keepdims=True)
    assert density.rarity(far)[0] > density.rarity(mu).max()
    assert density.rarity(mu[:0]).shape == (0,)
    # the float32 codes are fitted in float64: the mixture of the same values in float64
    again = aty.fit_training_density(model, data, idx, mu.astype(np.float64), seed=3)
    np.testing.assert_array_equal(again.means, density.means)
    np.testing.assert_array_equal(again.center, density.center)


@pytest.mark.parametrize("n, components", [(15, 1), (29, 2), (39, 3), (40, 4), (90, 4)])
def test_one_mixture_component_per_ten_training_codes_up_to_four(model_and_data, n, components):
    model, data = model_and_data
    idx = np.arange(n) % 96
    mu = np.random.default_rng(n).normal(size=(n, 4))
    assert len(aty.fit_training_density(model, data, idx, mu, seed=0).weights) == components


def test_a_training_density_saves_and_loads_back_and_a_run_without_one_is_one_line(
    density, tmp_path
):
    from cxrvae.errors import RunFolderError

    density.save(tmp_path / "density.npz")
    back = aty.TrainingDensity.load(tmp_path / "density.npz")
    for name in ("weights", "means", "covariances", "center", "scale"):
        np.testing.assert_array_equal(getattr(back, name), getattr(density, name))
    folder = tmp_path / "run" / "latent_4"
    with pytest.raises(RunFolderError) as e:
        aty.TrainingDensity.load(folder / "density.npz")
    assert str(e.value) == (
        f"{folder / 'density.npz'}: missing; this run was analysed by an older cxrvae, so its "
        "scores lack the structural error and latent rarity (cxrvae analyze "
        f"{tmp_path / 'run'} adds them)"
    )
    old = folder / "scores.npz"
    folder.mkdir(parents=True)
    np.savez(old, idx=np.arange(2), mu=np.zeros((2, 4)), above_floor=np.ones(2))
    with pytest.raises(RunFolderError) as e:
        load_scores(old)
    assert str(e.value) == (
        f"{old}: made by an older cxrvae, without the neg_elbo score (cxrvae analyze "
        f"{tmp_path / 'run'} scores the test images again)"
    )


def test_scores_do_not_depend_on_the_batch_where_no_codes_are_drawn(
    model_and_data, density, monkeypatch
):
    model, data = model_and_data
    idx = np.arange(40)
    whole = score_images(model, data, idx, 0, density)
    monkeypatch.setattr(aty, "BATCH", 6)
    parts = score_images(model, data, idx, 0, density)
    np.testing.assert_allclose(parts.mu, whole.mu, atol=1e-6)
    np.testing.assert_allclose(parts.above_floor, whole.above_floor, rtol=1e-6)
    # the same seed gives the same scores
    again = score_images(model, data, idx, 0, density)
    np.testing.assert_array_equal(again.neg_elbo, parts.neg_elbo)


def test_no_images_give_empty_scores_of_the_right_shapes(model_and_data, density):
    model, data = model_and_data
    s = score_images(model, data, np.arange(0), 0, density)
    assert s.mu.shape == (0, 4) and s.mu.dtype == np.float32
    assert all(s.score(name).shape == (0,) for name in SCORES) and s.idx.shape == (0,)


def test_saved_scores_load_back(model_and_data, density, tmp_path):
    model, data = model_and_data
    s = score_images(model, data, np.arange(12), 1, density)
    np.savez(tmp_path / "s.npz", **s.arrays())
    back = load_scores(tmp_path / "s.npz")
    for name in ("idx", "mu", *SCORES):
        np.testing.assert_array_equal(getattr(back, name), getattr(s, name))


@pytest.fixture
def trained_model(npz_path):
    """A small model trained for a few epochs, so that its posterior is not the prior."""
    from cxrvae.config import TrainConfig
    from cxrvae.train.loop import fit

    data = load_npz(npz_path, image_size=32)
    torch.manual_seed(0)
    model = ConvVAE(32, 4, (8, 16))
    cfg = TrainConfig(epochs=8, batch_size=16, lr=3e-3, device="cpu")
    fit(model, data, np.arange(80), np.arange(80, 96), cfg, seed=0)
    return model.eval(), data


def test_log_likelihood_is_at_least_the_elbo_and_grows_with_samples(trained_model):
    model, data = trained_model
    idx = np.arange(80, 96)
    lp1, elbo1 = log_likelihood(model, data, idx, 1, seed=0)
    np.testing.assert_allclose(lp1, elbo1)  # one sample: the estimate is the ELBO's sample
    estimates = {}
    for k in (1, 4, 16, 64):
        runs = [log_likelihood(model, data, idx, k, seed=s) for s in range(4)]
        lp = np.mean([r[0] for r in runs], axis=0)
        elbo = np.mean([r[1] for r in runs], axis=0)
        assert lp.mean() >= elbo.mean()  # Jensen: on average at least the ELBO
        estimates[k] = lp.mean()
    values = [estimates[k] for k in (1, 4, 16, 64)]
    assert all(b >= a - 0.05 for a, b in zip(values, values[1:])), values  # tightens with K
    assert values[-1] > values[0]
    again, _ = log_likelihood(model, data, idx, 16, seed=0)
    np.testing.assert_array_equal(again, log_likelihood(model, data, idx, 16, seed=0)[0])


def test_log_likelihood_is_exact_when_the_decoder_ignores_the_code(trained_model):
    model, data = trained_model
    with torch.no_grad():
        # p(x|z) = p(x) for every z, and q(z|x) = N(0, I), the true posterior: every
        # importance weight is p(x), so the estimate is exact for any number of samples.
        model.fc_dec.weight.zero_()
        for head in (model.fc_mu, model.fc_logvar):
            head.weight.zero_()
            head.bias.zero_()
    idx = np.arange(80, 96)
    x = torch.from_numpy(data.normalized(idx))[:, None]
    with torch.no_grad():
        logits = model.decode(torch.zeros(1, 4)).float()
    exact = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits.expand_as(x), x, reduction="none"
    ).sum((1, 2, 3))
    for k in (1, 8):
        lp, _ = log_likelihood(model, data, idx, k, seed=3)
        np.testing.assert_allclose(lp, exact.numpy(), rtol=1e-5)
