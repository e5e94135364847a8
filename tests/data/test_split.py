"""The train/test split: seeded, 80/20, stratified, each patient (and each set of identical
images) on one side; or the source's own."""

import re

import numpy as np
import pytest

from cxrvae.data.split import (
    identical_images,
    join_identical,
    patient_groups,
    source_sides,
    source_split_indices,
    split_indices,
)
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.errors import DataError


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


def _same_split(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize(
    "case",
    ["shuffled", "stratified", "few patients", "many patients", "patients, no labels"],
)
def test_every_kind_of_split_is_seeded(case):
    n = 60
    labels = np.arange(n) % 2 if case in ("stratified", "many patients") else None
    groups = {
        "few patients": np.repeat(np.arange(4), 15),  # fewer than 1 / test_fraction
        "many patients": np.repeat(np.arange(20), 3),
        "patients, no labels": np.repeat(np.arange(20), 3),
    }.get(case)
    runs = [split_indices(n, labels, groups, seed=s) for s in (7, 7, 8, 9)]
    assert _same_split(runs[0], runs[1])
    assert not (_same_split(runs[0], runs[2]) and _same_split(runs[0], runs[3]))
    for train, test in runs:
        assert len(np.union1d(train, test)) == n and not np.intersect1d(train, test).size
        assert train.dtype == test.dtype == np.int64
        assert np.array_equal(train, np.sort(train)) and np.array_equal(test, np.sort(test))
        if groups is not None:
            assert not set(groups[train]) & set(groups[test])


def test_the_defaults_are_seed_0_and_a_fifth_held_out():
    labels = np.arange(50) % 2
    assert _same_split(split_indices(50, labels), split_indices(50, labels, None, 0, 0.2))
    assert len(split_indices(50)[1]) == 10


@pytest.mark.parametrize("n, fraction, expected", [(10, 0.2, 2), (3, 0.2, 1), (10, 0.5, 5)])
def test_a_shuffled_split_holds_out_the_share_asked_for(n, fraction, expected):
    train, test = split_indices(n, test_fraction=fraction, seed=0)
    assert len(test) == expected and len(train) == n - expected


def test_two_patients_are_one_each_side():
    groups = np.repeat(["a", "b"], 10)
    labels = np.tile([0, 1], 10)
    train, test = split_indices(20, labels, groups, seed=0)
    assert {groups[train][0], groups[test][0]} == {"a", "b"}
    assert len(set(groups[train])) == len(set(groups[test])) == 1


def test_a_larger_test_share_holds_out_more_patients():
    groups = np.repeat(np.arange(10), 4)
    train, test = split_indices(40, groups=groups, seed=0, test_fraction=0.5)
    assert len(set(groups[test])) == 5  # two folds: half the patients
    # fewer patients than 1 / test_fraction: one of the three held out
    g3 = np.repeat(np.arange(3), 4)
    assert len(set(g3[split_indices(12, groups=g3, seed=0, test_fraction=0.1)[1]])) == 1


def test_patients_and_labels_are_stratified_as_sklearn_does():
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

    groups, labels = np.repeat(np.arange(25), 2), np.repeat(np.arange(25) % 2, 2)
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=3)
    _, test = next(folds.split(np.arange(50), labels, groups))
    np.testing.assert_array_equal(split_indices(50, labels, groups, seed=3)[1], np.sort(test))
    # a label with exactly two images is still stratified
    labels = np.r_[np.zeros(48, int), 1, 1]
    sss = StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=3)
    _, test = next(sss.split(np.arange(50), labels))
    np.testing.assert_array_equal(split_indices(50, labels, seed=3)[1], np.sort(test))
    # a label with a single image cannot be: a seeded shuffle
    labels = np.r_[np.zeros(49, int), 1]
    perm = np.random.default_rng(3).permutation(50)
    np.testing.assert_array_equal(split_indices(50, labels, seed=3)[1], np.sort(perm[:10]))


def test_patient_names_are_read_from_any_path_and_unmatched_names_are_their_own():
    ids = np.array(["a\\person3_x.png", "b/person3_y.png", "c.png", "c.png", "d.png"])
    groups = patient_groups(ids)
    assert groups.tolist() == ["person3", "person3", "c.png", "c.png", "d.png"]
    assert patient_groups(None) is None


def test_identical_sets_within_one_patient_join_nothing():
    groups = np.array(["p0", "p0", "p1", "p2", "p3"])
    joined, n = join_identical(groups, [np.array([0, 1])], 5)
    assert n == 0 and joined.tolist() == groups.tolist()
    same, n = join_identical(groups, [], 5)
    assert n == 0 and same is groups
    # a chain: 1~2 and 2~3 join three patients into one group, by two sets
    joined, n = join_identical(groups, [np.array([1, 2]), np.array([2, 3]), np.array([3, 4])], 5)
    assert n == 3 and len(set(joined)) == 1


def test_fewer_patients_than_folds_hold_out_a_seeded_share_of_them():
    from sklearn.model_selection import GroupShuffleSplit

    groups = np.repeat(np.arange(9), 3)  # nine patients, fewer than 1 / 0.1 folds
    train, test = split_indices(27, groups=groups, seed=5, test_fraction=0.1)
    assert len(set(groups[test])) == 1  # a tenth of nine patients: one
    gss = GroupShuffleSplit(n_splits=1, test_size=0.1, random_state=5)
    _, expected = next(gss.split(np.arange(27), groups=groups))
    np.testing.assert_array_equal(test, np.sort(expected))


def test_as_many_patients_as_folds_are_stratified_folds():
    from sklearn.model_selection import StratifiedGroupKFold

    groups, labels = np.repeat(np.arange(5), 4), np.repeat([0, 1, 0, 1, 0], 4)
    train, test = split_indices(20, labels, groups, seed=2)
    assert not set(groups[train]) & set(groups[test])
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=2)
    _, expected = next(folds.split(np.arange(20), labels, groups))
    np.testing.assert_array_equal(test, np.sort(expected))


def test_as_many_patients_as_folds_use_the_folds():
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.repeat(np.arange(5), 4)  # five patients, four images each: K = 5 folds
    labels = np.tile([0, 1], 10)
    mixed = np.array([0, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    # with patients of unlike label mixes the folds hold out another patient than a plain
    # shuffle of the patients would (seeds 0, 1, 2 and 4)
    for seed, labels in [*((s, labels) for s in range(6)), *((s, mixed) for s in range(6))]:
        train, test = split_indices(20, labels=labels, groups=groups, seed=seed)
        folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
        want_train, want_test = next(folds.split(np.arange(20), labels, groups))
        np.testing.assert_array_equal(test, np.sort(want_test))
        np.testing.assert_array_equal(train, np.sort(want_train))


def test_source_sides_read_the_sources_names_in_any_case_and_form():
    sides = source_sides(
        np.array(["Train", "training ", "VAL", "validation", "test", "Testing"]), "s"
    )
    assert sides.tolist() == ["train", "train", "val", "val", "test", "test"]
    assert source_sides(np.array([b"TRAIN", b"test"]), "s").tolist() == ["train", "test"]
    train, test = source_split_indices(np.array(["test", "train", "val", "test", "train"]), "s")
    assert train.tolist() == [1, 2, 4] and test.tolist() == [0, 3]
    assert train.dtype == test.dtype == np.int64


@pytest.mark.parametrize(
    "split, message",
    [
        (None, "s.npz: --split source needs the source's own split"),
        (np.array(["train", "dev", "test", "dev"]), "s.npz: the source split names 'dev' for 2"),
        (np.array(["train", "val", "train"]), "s.npz: the source split has no test images"),
        (np.array(["test", "test"]), "s.npz: the source split has no train images"),
    ],
)
def test_a_missing_or_malformed_source_split_is_refused(split, message):
    with pytest.raises(DataError, match=re.escape(message)):
        source_sides(split, "s.npz")
    with pytest.raises(DataError, match=re.escape(message)):
        source_split_indices(split, "s.npz")


def test_a_missing_source_split_says_where_one_is_read_from():
    with pytest.raises(DataError) as e:
        source_sides(None, "s.npz")
    assert str(e.value) == (
        "s.npz: --split source needs the source's own split (an npz array 'source_split', "
        "MedMNIST's train_/val_/test_ arrays, or train/ and test/ folders); these images have none"
    )
    with pytest.raises(DataError) as e:
        source_sides(np.array(["train", "dev", "test"]), "s.npz")
    assert str(e.value) == (
        "s.npz: the source split names 'dev' for 1 image(s); each image must be train, val or test"
    )


def test_val_alone_is_a_train_side():
    train, test = source_split_indices(np.array(["val", "test", "val"]), "s")
    assert train.tolist() == [0, 2] and test.tolist() == [1]
