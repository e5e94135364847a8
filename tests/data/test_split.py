"""The train/test split: seeded, 80/20, stratified, each patient (and each set of identical
images) on one side."""

import numpy as np
import pytest

from cxrvae.data.split import identical_images, join_identical, patient_groups, split_indices
from cxrvae.data.synthetic import synthetic_xrays


def test_split_indices_is_reproducible_and_80_20():
    labels = np.arange(200) % 2
    a = split_indices(200, labels, seed=3)
    b = split_indices(200, labels, seed=3)
    c = split_indices(200, labels, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert len(a[1]) == 40 and len(a[0]) == 160
    assert np.intersect1d(a[0], a[1]).size == 0


def test_split_indices_stratified():
    labels = (np.arange(500) % 5 == 0).astype(int)  # 20% positives
    train, test = split_indices(500, labels, seed=0)
    assert abs(labels[test].mean() - 0.2) < 0.02
    assert abs(labels[train].mean() - 0.2) < 0.02


def test_split_indices_keeps_patients_on_one_side():
    ids = np.array([f"person{i // 3}_bacteria_{i}.jpeg" for i in range(300)])
    groups = patient_groups(ids)
    labels = (np.arange(300) // 3) % 2
    train, test = split_indices(300, labels, groups, seed=0)
    assert not set(groups[train]) & set(groups[test])
    assert 0.15 <= len(test) / 300 <= 0.25


@pytest.mark.parametrize(
    "name, patient",
    [
        ("person12_virus_40.jpeg", "person12"),
        ("IM-0011-0001-0002.jpeg", "IM-0011"),
        ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
        ("00000001_002.png", "00000001"),
        ("train/patient00042/study1/view1_frontal.jpg", "patient00042"),
    ],
)
def test_patient_groups_patterns(name, patient):
    groups = patient_groups(np.array([name, name]))
    assert groups[0] == patient


def test_patient_groups_none_when_every_id_is_unique():
    assert patient_groups(np.array(["a.png", "b.png"])) is None


def test_split_with_fewer_patients_than_folds_keeps_patients_apart():
    groups = np.repeat(["a", "b", "c", "d"], 3)
    train, test = split_indices(12, groups=groups, seed=1)
    assert len(test) > 0 and len(train) > 0
    assert not set(groups[train]) & set(groups[test])


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


def test_without_patient_ids_identical_sets_join_no_patients():
    images, _ = synthetic_xrays(n=20, size=32, seed=0)
    images[[3, 9]] = images[1]
    identical = identical_images(images)
    groups, joined = join_identical(None, identical, 20)
    assert joined == 0  # nothing can be said about patients that are not known
    assert len(set(groups[[1, 3, 9]])) == 1 and len(set(groups)) == 18
