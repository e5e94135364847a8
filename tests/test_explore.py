"""How the images differ: features, label effect sizes, near-duplicates and identical images kept
on one side of the split."""

import numpy as np
import pytest

from cxrvae.data import load_npz
from cxrvae.explore import explore_data, near_duplicates
from cxrvae.features import cohens_d
from cxrvae.split import identical_images, join_identical, split_indices
from cxrvae.synthetic import synthetic_xrays


def test_cohens_d_on_known_groups():
    values = np.array([0.0, 2.0, 0.0, 2.0, 1.0, 3.0, 1.0, 3.0])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # means 1 and 2, each group's SD (ddof 1) 1.1547: d = 1 / 1.1547
    assert cohens_d(values, labels, 0, 1) == pytest.approx(1 / np.sqrt(4 / 3))
    assert cohens_d(values, labels, 1, 0) == pytest.approx(-1 / np.sqrt(4 / 3))
    assert cohens_d(np.ones(8), labels, 0, 1) == 0.0


def test_near_duplicates_finds_planted_pairs_only():
    rng = np.random.default_rng(0)
    small = rng.random((50, 256)).astype(np.float32)
    small[10] = small[3]  # identical
    small[40] = small[7] + 0.01  # near: RMS 0.01
    small[41] = small[8] + 0.05  # too far: RMS 0.05
    pairs, dists = near_duplicates(small, threshold=0.02, block=16)
    assert sorted(map(tuple, pairs.tolist())) == [(3, 10), (7, 40)]
    np.testing.assert_allclose(sorted(dists), [0.0, 0.01], atol=1e-5)


def test_identical_images_are_grouped_and_stay_on_one_side():
    images, labels = synthetic_xrays(n=60, size=32, seed=0)
    images[[5, 33]] = images[12]  # three copies of one image, three patients
    images[50] = images[2]
    groups = np.array([f"p{i}" for i in range(60)])
    identical = identical_images(images)
    assert sorted(map(sorted, (g.tolist() for g in identical))) == [[2, 50], [5, 12, 33]]
    joined, n = join_identical(groups, identical, 60)
    assert n == 2 and len(set(joined[[5, 12, 33]])) == 1 and joined[2] == joined[50]
    assert len(set(joined)) == 60 - 3
    for seed in range(5):
        train, test = split_indices(60, labels, joined, seed)
        side = np.isin(np.arange(60), test)
        assert len(set(side[[5, 12, 33]])) == 1 and side[2] == side[50]


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
