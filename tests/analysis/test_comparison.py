"""How the models compare: agreement of their clusterings and latent spaces, which feature
leads each path, and the side-by-side figures; on constructed analyses of known structure."""

import numpy as np
import pytest

from cxrvae.analysis.comparison import compare_models
from cxrvae.analysis.per_model import AnalysedModel
from cxrvae.analysis.sampling import draw_sample
from cxrvae.config import RunConfig
from cxrvae.data.features import NAMES
from cxrvae.outputs import FIGURES
from cxrvae.results import LinearBaseline, ModelAnalysis, PathSummary, Spread, Trend
from cxrvae.thresholds import MIN_EFFECT


@pytest.fixture
def sample(split_set, tmp_path):
    data, train, test = split_set
    cfg = RunConfig().replace(
        data={"image_size": 32},
        model={"latent_dims": (2, 4), "widths": (8, 16, 32)},
        analysis={"n_samples": 60, "n_reconstructions": 4},
    )
    return draw_sample(data, cfg, tmp_path, train, test)


def _paths(effects: dict[str, dict[str, float]]) -> dict[str, PathSummary]:
    """Path summaries whose features change by the given effects (others by 0.1 SD)."""
    return {
        axis: PathSummary(
            label=axis,
            values=[0.0, 1.0],
            trends={
                f: Trend(start=0, end=1, slope=e, effect=e)
                for f, e in {f: changes.get(f, 0.1) for f in NAMES}.items()
            },  # fmt: skip
        )
        for axis, changes in effects.items()
    }


def _analysed(s, mu, clusters, paths, above) -> AnalysedModel:
    spread = Spread(mean=1.0, median=1.0, p10=1.0, p90=1.0)
    metrics = ModelAnalysis(
        n_samples=len(mu), test_bce=spread, test_bce_floor=spread, test_bce_above_floor=spread,
        test_mse=spread, test_psnr=spread, test_ssim=spread, n_clusters=int(clusters.max()) + 1,
        silhouette={}, cluster_sizes=np.bincount(clusters).tolist(), cluster_features=[],
        pca_explained_variance=[1.0], trustworthiness={"pca": 1.0, "tsne": 1.0},
        kl_per_dim=[1.0] * mu.shape[1], active_units=mu.shape[1], interpolation_dim=0,
        interpolations=paths,
        linear_baseline=LinearBaseline(n_components=mu.shape[1], n_fit=10,
                                       bce_above_floor=2 * above, ssim=0.5, error_removed=0.5),
    )  # fmt: skip
    recon = s.data.normalized(s.recon_idx)
    return AnalysedModel(metrics, mu, clusters, recon, np.full(len(s.test_idx), above))


def test_agreement_between_models_of_known_structure(sample):
    rng = np.random.default_rng(0)
    n = len(sample.sample_idx)
    mu2 = rng.normal(size=(n, 2))
    mu4 = np.column_stack([mu2 @ rng.normal(size=(2, 2)), rng.normal(size=(n, 2))])
    clusters = (mu2[:, 0] > 0).astype(int)
    paths = _paths({"pca1": {"exposure": 2.0}, "pca2": {"contrast": -0.9}, "tsne1": {}})
    results = {
        2: _analysed(sample, mu2, clusters, paths, 50.0),
        4: _analysed(sample, mu4, 1 - clusters, paths, 30.0),  # the same groups, renamed
    }
    c = compare_models(results, sample, {2: 3.0, 4: 6.0})
    assert c.ari == {"2-4": pytest.approx(1.0)} and c.ari_mean == pytest.approx(1.0)
    assert set(c.linear_r2) == {"2->4", "4->2"}
    assert c.linear_r2["4->2"] > 0.99  # latent 2 is a linear map of latent 4's first columns
    assert c.linear_r2["2->4"] < 0.7  # but latent 4 holds two dimensions of its own
    # each model: pca1 led by exposure, pca2 by contrast (|-0.9| >= MIN_EFFECT), tsne1 by none
    assert MIN_EFFECT <= 0.9
    assert c.n_paths == 6 and c.path_leaders == {"exposure": 2, "contrast": 2}
    assert c.n_samples == n and c.sample_note == sample.note
    assert c.config == sample.cfg.to_dict()["analysis"]
    for name in ("reconstructions_comparison", "error_distribution", "rate_distortion"):
        assert FIGURES[name].file(sample.out).is_file(), name


def test_unrelated_clusterings_do_not_agree(sample):
    rng = np.random.default_rng(1)
    n = len(sample.sample_idx)
    paths = _paths({"pca1": {}})
    results = {
        d: _analysed(sample, rng.normal(size=(n, d)), rng.integers(0, 3, n), paths, 10.0)
        for d in (2, 4)
    }
    c = compare_models(results, sample, {2: 1.0, 4: 2.0})
    assert abs(c.ari["2-4"]) < 0.1
    assert max(c.linear_r2.values()) < 0.1
    assert c.path_leaders == {}  # no path moves a feature by MIN_EFFECT


def test_interpolation_legends_use_the_tables_words(sample, monkeypatch):
    """The features drawn under each interpolation are named as the axes table names them."""
    import torch

    from cxrvae.analysis import paths
    from cxrvae.analysis.latent import encode
    from cxrvae.analysis.structure import map_step
    from cxrvae.data.features import NAMES, short
    from cxrvae.train.model import ConvVAE

    legends = []

    def keep(fig, path):
        legends.extend(
            t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
        )

    monkeypatch.setattr(paths, "save_figure", keep)
    torch.manual_seed(0)
    model = ConvVAE(32, 4, (8, 16, 32)).eval()
    mu, logvar = encode(model, sample.data, sample.sample_idx)
    maps = map_step(mu, np.zeros(len(mu), int), sample, 4)
    paths.interpolation_step(model, mu, logvar, maps, sample, 4)
    assert legends and set(legends) <= {short(f) for f in NAMES}
