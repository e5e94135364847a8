"""The models of several seeds (--seeds N): how alike two latent spaces are (linear CKA), two maps
(Procrustes), and whether a comparison of latent sizes exceeds the variation between seeds."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from cxrvae.analysis.evidence import linear_cka, map_agreement
from cxrvae.analysis.seeds import alike, over_seeds
from cxrvae.report.seeds import UNTESTED, holds, verdict


@pytest.fixture
def z():
    return np.random.default_rng(0).normal(size=(200, 6))


def test_cka_is_one_for_a_space_with_itself_and_unchanged_by_rotation_and_scaling(z):
    rotation = ortho_group.rvs(6, random_state=1)
    assert linear_cka(z, z) == pytest.approx(1.0)
    assert linear_cka(z, 3.7 * z @ rotation + 5.0) == pytest.approx(1.0)
    assert linear_cka(z @ rotation, z[:, :3]) == pytest.approx(linear_cka(z, z[:, :3]))
    other = np.random.default_rng(2).normal(size=(200, 4))
    assert linear_cka(z, other) < 0.1  # unrelated spaces
    stretched = z * np.array([10, 1, 1, 1, 1, 1])  # not isotropic: no longer the same
    assert linear_cka(z, stretched) < 0.9
    assert linear_cka(np.zeros((5, 2)), z[:5]) == 0.0


def test_maps_alike_after_an_orthogonal_alignment(z):
    xy = z[:, :2]
    angle = 0.7
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    assert map_agreement(xy, 2.5 * xy @ turn + 1) == pytest.approx(1.0)
    assert map_agreement(xy, xy * [1, -1]) == pytest.approx(1.0)  # a reflection too
    shuffled = xy[np.random.default_rng(3).permutation(len(xy))]
    assert map_agreement(xy, shuffled) < 0.1


def test_alike_averages_within_each_size_and_between_each_two():
    models = [(4, 0), (4, 1), (16, 0), (16, 1)]
    s = np.array([[1, 0.9, 0.2, 0.4], [0.9, 1, 0.3, 0.1], [0.2, 0.3, 1, 0.7], [0.4, 0.1, 0.7, 1]])
    a = alike(models, s)
    assert a.within == pytest.approx({4: 0.9, 16: 0.7})
    assert a.between == pytest.approx({"4-16": (0.2 + 0.4 + 0.3 + 0.1) / 4})


def test_over_seeds_is_the_mean_and_the_sample_sd():
    o = over_seeds([1.0, 2.0, 6.0])
    assert (
        o.values == [1, 2, 6] and o.mean == 3 and o.sd == pytest.approx(np.std([1, 2, 6], ddof=1))
    )
    assert over_seeds([5.0]).sd == 0


class _Metrics:
    """The part of StudyMetrics a verdict reads."""

    def __init__(self, numbers=None):
        from types import SimpleNamespace

        self.seeds = SimpleNamespace(n_seeds=3, numbers=numbers) if numbers else None


def _sizes(a_values, b_values):
    return {"test_loss": {32: over_seeds(a_values), 16: over_seeds(b_values)}}


def test_a_difference_within_the_seeds_is_no_ranking_and_one_far_outside_holds():
    near = _Metrics(_sizes([2388.4, 2393.0, 2391.1], [2393.5, 2390.2, 2395.0]))
    text = verdict(near, "test_loss", 32, 16, higher=False)
    assert "no ranking is supported" in text and "latent 32 averages 2,390.8" in text
    far = _Metrics(_sizes([2388.4, 2388.9, 2388.1], [2393.5, 2393.9, 2393.2]))
    assert verdict(far, "test_loss", 32, 16, higher=False).endswith(
        "the difference exceeds the variation between seeds, so the ranking holds"
    )
    assert "the means rank them the other way" in verdict(far, "test_loss", 16, 32, False)
    assert verdict(_Metrics(), "test_loss", 32, 16, higher=False) == UNTESTED
    assert verdict(far, "silhouette", 32, 16, higher=True) == UNTESTED  # not measured


def test_holds_needs_the_gap_beyond_two_pooled_sds():
    a, b = over_seeds([10.0, 11.0, 12.0]), over_seeds([13.0, 14.0, 15.0])  # SD 1 each, gap 3
    assert holds(b, a, a_better=True) and not holds(a, b, a_better=True)
    c = over_seeds([11.5, 12.5, 13.5])  # gap 1.5: within 2 SDs
    assert not holds(c, a, a_better=True)


def _variation(within, between, leaders=None):
    from cxrvae.results import Alike, SeedVariation

    same = Alike(within={4: within, 16: within}, between={"4-16": between})
    return SeedVariation(n_seeds=3, numbers={}, models=[], cka=[], cka_alike=same,
                         ari_alike=same, map_alike=same, axes=leaders or {})  # fmt: skip


def test_clusters_and_maps_say_whether_sizes_differ_more_than_seeds():
    from cxrvae.report.seeds import clusters_clause, maps_clause

    apart, close = _variation(0.8, 0.3), _variation(0.4, 0.5)
    assert "the sizes cluster differently beyond" in clusters_clause(apart)
    assert "at least 0.80, two sizes at most 0.30" in clusters_clause(apart)
    assert "no more apart than two seeds" in clusters_clause(close)
    assert "differ more than two seeds of one size do" in maps_clause(apart)
    assert "differ no more than two seeds of one size can" in maps_clause(close)
    assert clusters_clause(None) == "not tested against seed variation"
    assert "--seeds 3 tests it" in maps_clause(None)


def test_the_axes_hold_when_every_seed_leads_with_one_feature():
    from cxrvae.report.seeds import axes_sentence

    steady = {"pca1": {4: ["exposure"] * 3}, "pca2": {4: ["contrast"] * 3}}
    assert "every axis changes most the same feature" in axes_sentence(_variation(1, 0, steady))
    moved = {"pca1": {4: ["exposure"] * 3}, "pca2": {4: ["contrast", "exposure", "contrast"]}}
    text = axes_sentence(_variation(1, 0, moved))
    assert "for 1 of 2 axes" in text and "PCA 2 of latent 4: contrast and exposure" in text
    assert axes_sentence(None) is None
