"""How the images differ: chest-film features, label effect sizes, near-duplicates and the
data step's figures."""

import numpy as np
import pytest

from cxrvae.data import survey
from cxrvae.data.features import image_features
from cxrvae.data.loader import load_npz
from cxrvae.data.split import identical_images
from cxrvae.data.survey import explore_data, image_stats, near_duplicates
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.seeding import derive_seed


def test_near_duplicates_finds_planted_pairs_only():
    rng = np.random.default_rng(0)
    small = rng.random((50, 256)).astype(np.float32)
    small[10] = small[3]  # identical
    small[40] = small[7] + 0.01  # near: RMS 0.01
    small[41] = small[8] + 0.05  # too far: RMS 0.05
    pairs, dists = near_duplicates(small, threshold=0.02, block=16)
    assert sorted(map(tuple, pairs.tolist())) == [(3, 10), (7, 40)]
    np.testing.assert_allclose(sorted(dists), [0.0, 0.01], atol=1e-5)


def test_explore_counts_duplicates_across_the_split_and_label_effects(tmp_path):
    images, labels = synthetic_xrays(n=80, size=32, seed=1)
    images[70] = images[4]
    np.savez(tmp_path / "x.npz", images=images, labels=labels)
    data = load_npz(tmp_path / "x.npz", image_size=32)
    identical = identical_images(data.images)
    test_idx = np.array([70, 71, 72])  # one copy in test: the pair straddles the split
    ex = explore_data(data, tmp_path / "run", 0, test_idx, identical, 0)
    d = ex.duplicates
    assert d.identical_images == 2 and d.identical_groups == 1
    assert d.near_pairs >= 1 and d.near_straddling >= 1
    assert ex.effect_labels == ["0", "1"]
    # synthetic class 1 has a bright blob in a lung: brighter lung fields than class 0
    assert ex.features["lung_opacity"].effect > 0.5
    for name in ("duplicates", "label_effects", "positioning", "grid"):
        assert (tmp_path / "run" / "figures" / "data" / f"{name}.png").is_file(), name


def test_explore_without_labels_has_no_effect_sizes(tmp_path):
    images, _ = synthetic_xrays(n=40, size=32, seed=2)
    np.savez(tmp_path / "x.npz", images=images)
    data = load_npz(tmp_path / "x.npz", image_size=32)
    ex = explore_data(data, tmp_path / "run", 0)
    assert ex.effect_labels is None and all(f.effect is None for f in ex.features.values())
    assert ex.duplicates.near_pairs == 0
    assert not (tmp_path / "run" / "figures" / "data" / "label_effects.png").exists()


def test_image_stats_shapes_and_ranges(npz_path):
    data = load_npz(npz_path, image_size=32)
    s = image_stats(data, seed=0)
    assert s.mean.shape == s.std.shape == (32, 32)
    assert s.hist_counts.sum() == len(data) * 32 * 32
    assert np.all((s.brightness >= 0) & (s.brightness <= 1))
    np.testing.assert_allclose(s.mean.mean(), s.brightness.mean(), rtol=1e-5)
    assert s.atypicality.shape == (len(data),)


def _set(tmp_path, n, name):
    images, labels = synthetic_xrays(n=n, size=32, seed=n)
    np.savez(tmp_path / name, images=images, labels=labels)
    return load_npz(tmp_path / name, image_size=32)


def test_a_large_set_is_surveyed_on_a_sample_that_the_notes_state(tmp_path, monkeypatch):
    monkeypatch.setattr(survey, "SURVEY_MAX", 300)
    data = _set(tmp_path, 700, "x.npz")
    assert survey.survey_note(300) is None
    assert survey.survey_note(700) == (
        "how the images differ (features, data figures, near-identical pairs) is measured on "
        "a seeded sample of 300 of the 700 images"
    )
    idx = survey.survey_indices(700, seed=0)
    assert len(idx) == 300 and np.array_equal(idx, np.unique(idx)) and idx.max() < 700
    np.testing.assert_array_equal(idx, survey.survey_indices(700, seed=0))
    ex = explore_data(data, tmp_path / "run", 0, np.arange(600, 700))
    assert ex.duplicates.near_compared == 300
    assert ex.features["exposure"].effect is not None  # labels of the sampled images
    # the sample's numbers are the numbers of those images, measured alone
    alone = survey.image_stats(data, idx, seed=derive_seed(0, "explore"))
    expected = image_features(data.normalized(idx))
    for name, values in alone.features.items():
        np.testing.assert_array_equal(values, expected[name])
    p5 = np.percentile(expected["exposure"], 5)
    assert ex.features["exposure"].p5 == pytest.approx(p5)


def test_the_data_step_memory_does_not_grow_with_the_set(tmp_path, monkeypatch):
    """Beyond its uint8 images, the data step holds what the sample holds: twice the images
    add (almost) nothing to its peak of traced allocations."""
    import gc
    import tracemalloc

    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from cxrvae.data.split import identical_images

    monkeypatch.setattr(survey, "SURVEY_MAX", 1000)
    # The figures are made from the arrays the step hands them, but neither laid out nor
    # rendered: both cost the same memory for any set (the figures have fixed sizes), and
    # under tracemalloc they were most of this test's time (33 s, now 9 s).
    monkeypatch.setattr(survey, "save_figure", lambda fig, path: plt.close(fig))
    monkeypatch.setattr(Figure, "tight_layout", lambda self, *args, **kwargs: None)
    peaks = {}
    for n in (2000, 8000):
        data = _set(tmp_path, n, f"x{n}.npz")
        # No garbage collection while measuring: whether one runs inside the step (and frees
        # the figures' cyclic garbage) depends on the tests before, which moved the peak by 2 MB.
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            identical_images(data.images)  # streams over the uint8 images: no float copy
            explore_data(data, tmp_path / f"run{n}", 0, np.arange(n - 200, n))
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            gc.enable()
    grown = peaks[8000] - peaks[2000]
    added = 6000 * 32 * 32  # the uint8 bytes of the larger set's extra images
    assert grown < 0.1 * added, (peaks, added)
    assert peaks[2000] < 30e6  # the survey of 1,000 images of 32 px: a few tens of MB at most
