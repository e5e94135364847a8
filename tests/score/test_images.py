"""Each scored image under one model, against its definitions: the percentile among the run's
test images, the conformal p-value against them and the flag it gives, the nearest analysed
training images and the places on the run's maps. A run folder holding only what scoring reads
is made here."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from cxrvae.analysis.atypicality import fit_training_density, score_images
from cxrvae.analysis.latent import encode
from cxrvae.data.loader import load_npz
from cxrvae.results import SCORES
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
    sample = np.arange(40)
    mu, _ = encode(model, data, sample)
    density = fit_training_density(model, data, sample, mu, seed=2)
    density.save(folder / "density.npz")
    reference = score_images(model, data, np.arange(60, 96), 1, density)
    np.savez(folder / "reference.npz", **reference.arrays())
    tsne = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    np.savez(folder / "embedding.npz", sample_idx=sample, mu=mu, pca=mu[:, :2], tsne=tsne)
    new = data.subset(np.arange(40, 60))
    out = im.score_with_model(model, new, tmp_path, seed=5, fpr=0.1)
    return out, reference, mu, tsne, new, model, density


def test_percentiles_and_flags_follow_the_reference(scored):
    out, reference, _, _, new, model, density = scored
    again = score_images(model, new, np.arange(20), derive_seed(5, "score-3"), density)
    np.testing.assert_array_equal(out.scores.above_floor, again.above_floor)
    for name in SCORES:
        ref, mine = reference.score(name), out.scores.score(name)
        expected = [100 * np.mean(ref <= v) for v in mine]  # share of test images at or below
        np.testing.assert_allclose(out.percentile[name], expected)
    ref, mine = reference.ssim_density, out.scores.ssim_density  # the flag score
    pvalue = [(1 + np.sum(ref >= v)) / (len(ref) + 1) for v in mine]
    np.testing.assert_allclose(out.flags.pvalue, pvalue)
    np.testing.assert_array_equal(out.flagged, out.flags.pvalue <= 0.1)
    np.testing.assert_array_equal(out.flagged, mine > out.threshold)  # the line the figure draws
    assert out.flags.rate == 3 / 37  # 36 test images: floor(0.1 x 37) = 3 p-values of 1/37


def test_nearest_training_images_and_map_places(scored):
    out, _, mu, tsne, *_ = scored
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


def test_a_score_tied_with_the_lth_highest_reference_is_not_flagged():
    reference = np.arange(1.0, 11.0)  # 1..10: p-values in steps of 1/11
    f = im.flags(reference, np.array([10.0, 10.5, 9.0]), fpr=1 / 11)
    assert f.threshold == 10.0 and f.rate == pytest.approx(1 / 11)
    np.testing.assert_array_equal(f.flagged, [False, True, False])
    np.testing.assert_allclose(f.pvalue, [2 / 11, 1 / 11, 3 / 11])
    f = im.flags(reference, np.array([9.0, 9.5]), fpr=0.2)  # floor(0.2 x 11) = 2
    assert f.threshold == 9.0 and f.rate == pytest.approx(2 / 11)
    np.testing.assert_array_equal(f.flagged, [False, True])


@pytest.mark.parametrize("n_reference, fpr, l_", [(9, 0.5, 5), (39, 0.1, 4), (19, 0.3, 6)])
def test_the_expected_flags_are_the_beta_binomial_of_the_rate(n_reference, fpr, l_):
    """Given the references, the chance that a new exchangeable image is flagged is
    Beta(l, n + 1 - l), l = floor(fpr (n + 1)); over n new images the count is beta-binomial."""
    from scipy.stats import betabinom

    reference = np.random.default_rng(1).normal(size=n_reference)
    f = im.flags(reference, np.zeros(3), fpr=fpr)
    assert f.rate == pytest.approx(l_ / (n_reference + 1))
    mean, low, high = f.expected(30)
    want = betabinom(30, l_, n_reference + 1 - l_).ppf([0.025, 0.975])
    assert mean == pytest.approx(30 * l_ / (n_reference + 1)) and (low, high) == tuple(want)


def test_a_reference_too_small_for_the_rate_flags_nothing():
    """50 references cannot give a p-value below 1/51, so a 1% rate is refused: no flags, even
    for a score far beyond every reference, and no threshold."""
    reference = np.random.default_rng(0).normal(size=50)
    f = im.flags(reference, np.array([100.0, 0.0]), fpr=0.01)
    assert not f.attainable and f.rate == 0 and f.threshold == np.inf
    assert not f.flagged.any() and f.expected(30) == (0.0, 0.0, 0.0)
    assert f.pvalue[0] == pytest.approx(1 / 51) and im.min_fpr(50) == pytest.approx(1 / 51)
    assert im.flags(reference, np.array([100.0]), fpr=1 / 51).flagged.all()  # just enough
    assert not im.flags(reference[:8], np.array([100.0]), fpr=0.1).flagged.any()  # 1/9 > 0.1


@pytest.mark.parametrize("ties", [False, True])
def test_conformal_flags_keep_the_false_positive_rate_over_many_draws(ties):
    """Exchangeable scores (references and new images from one distribution, ties included):
    over 4,000 draws the share flagged stays at or below fpr, and the flag count lies within
    the expected interval in about 95% of draws. The threshold a percentile of the references
    gave before fails the first: at 39 references it flags about 12%."""
    rng = np.random.default_rng(7)
    n_ref, n_new, fpr, draws = 39, 25, 0.1, 4000
    scores = rng.gamma(2.0, size=(draws, n_ref + n_new))
    if ties:
        scores = np.round(scores, 1)
    counts, inside = np.zeros(draws), 0
    for d in range(draws):
        f = im.flags(scores[d, :n_ref], scores[d, n_ref:], fpr)
        counts[d] = f.flagged.sum()
        _, low, high = f.expected(n_new)
        inside += low <= counts[d] <= high
    rate = counts.mean() / n_new
    se = counts.std() / n_new / np.sqrt(draws)
    assert rate <= fpr + 3 * se, (rate, se)
    if not ties:  # continuous scores: exactly the rate the flags promise
        assert rate == pytest.approx(f.rate, abs=4 * se)
        assert f.expected(n_new)[0] == pytest.approx(n_new * 4 / 40)
    assert inside / draws >= 0.93
