import numpy as np
import pytest

from cxrvae.data import load_npz
from cxrvae.errors import DataError
from cxrvae.explore import image_stats
from cxrvae.split import patient_groups, split_indices
from cxrvae.synthetic import synthetic_xrays


def _reference(images):
    x = images.astype(np.float64)
    return (x - x.min()) / (x.max() - x.min())


def _layouts(images, labels):
    """Many ways a user may have saved the same images (uint8 (N, H, W))."""
    f = images.astype(np.float64) / 255
    n = len(images)
    return {
        "images_key": {"images": images},
        "arr_0": {"arr_0": images},
        "x_with_labels": {"x": images, "y": labels},
        "nhw1": {"images": images[..., None]},
        "n1hw": {"images": images[:, None]},
        "nhw3_gray_rgb": {"images": np.repeat(images[..., None], 3, axis=-1)},
        "n3hw_gray_rgb": {"images": np.repeat(images[:, None], 3, axis=1)},
        "uint16": {"images": images.astype(np.uint16) * 257},
        "int16_signed": {"images": images.astype(np.int16) - 128},
        "int32": {"images": images.astype(np.int32) * 1000},
        "float16": {"images": f.astype(np.float16)},
        "float32": {"images": f.astype(np.float32)},
        "float64": {"images": f},
        "medmnist": {
            "train_images": images[: n // 2],
            "val_images": images[n // 2 : 3 * n // 4],
            "test_images": images[3 * n // 4 :],
            "train_labels": labels[: n // 2, None],
            "val_labels": labels[n // 2 : 3 * n // 4, None],
            "test_labels": labels[3 * n // 4 :, None],
        },
        "flattened_rows": {"data": images.reshape(n, -1)},
    }


@pytest.mark.parametrize("layout", list(_layouts(*synthetic_xrays(8, 32))))
def test_load_npz_every_layout_gives_the_same_images(tmp_path, xrays, layout):
    images, labels = xrays
    path = tmp_path / f"{layout}.npz"
    np.savez(path, **_layouts(images, labels)[layout])
    data = load_npz(path, image_size=32)
    got = data.normalized(np.arange(len(data)))
    assert got.shape == images.shape
    assert got.dtype == np.float32
    # float16 stores 1/255 steps with ~3 significant digits; every other layout is exact.
    tol = 2e-3 if layout == "float16" else 1e-6
    np.testing.assert_allclose(got, _reference(images), atol=tol)


def test_load_npz_keeps_integer_storage(npz_path):
    data = load_npz(npz_path, image_size=32)
    assert data.images.dtype == np.uint8  # no float copy of the set


def test_load_npz_labels_ids_and_names(npz_path, xrays):
    data = load_npz(npz_path, image_size=32)
    np.testing.assert_array_equal(data.labels, xrays[1])
    assert data.label_names == ["normal", "pneumonia"]
    assert data.groups is not None and len(np.unique(data.groups)) == len(data) // 2


def test_load_npz_medmnist_remembers_source_split(tmp_path, xrays):
    images, labels = xrays
    np.savez(tmp_path / "m.npz", **_layouts(images, labels)["medmnist"])
    data = load_npz(tmp_path / "m.npz", image_size=32)
    assert list(np.unique(data.source_split)) == ["test", "train", "val"]
    assert (data.source_split == "train").sum() == len(images) // 2
    np.testing.assert_array_equal(data.labels, labels)


def test_load_npz_string_labels_become_classes(tmp_path, xrays):
    images, labels = xrays
    names = np.where(labels == 1, "pneumonia", "normal")
    np.savez(tmp_path / "s.npz", images=images, diagnosis=names)
    data = load_npz(tmp_path / "s.npz", image_size=32)
    assert data.label_names == ["normal", "pneumonia"]
    np.testing.assert_array_equal(data.labels, labels)


def test_load_npz_prefers_the_labels_key_and_keeps_other_arrays(tmp_path, xrays):
    images, labels = xrays
    subtype = np.where(labels == 1, "viral", "normal")
    np.savez(tmp_path / "s.npz", images=images, subtype=subtype, labels=1 - labels)
    data = load_npz(tmp_path / "s.npz", image_size=32)
    np.testing.assert_array_equal(data.labels, 1 - labels)
    np.testing.assert_array_equal(data.extras["subtype"], subtype)


@pytest.mark.parametrize("shape", [(40, 48), (64, 64), (20, 20)])
def test_load_npz_resizes_to_image_size(tmp_path, shape):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, *shape), dtype=np.uint8)
    np.savez(tmp_path / "r.npz", images=images)
    data = load_npz(tmp_path / "r.npz", image_size=32)
    assert data.images.shape == (10, 32, 32)
    got = data.normalized(np.arange(10))
    assert got.min() >= 0.0 and got.max() <= 1.0
    assert any("resized" in n for n in data.notes)


def test_load_npz_per_image_normalisation(tmp_path, xrays):
    images = xrays[0].copy()
    images[0] = 7  # a constant image maps to zeros and is counted
    np.savez(tmp_path / "p.npz", images=images)
    data = load_npz(tmp_path / "p.npz", image_size=32, normalize="per-image")
    x = data.normalized(np.arange(len(data)))
    assert np.all(x[0] == 0)
    np.testing.assert_allclose(x[1:].min((1, 2)), 0.0)
    np.testing.assert_allclose(x[1:].max((1, 2)), 1.0)
    assert data.summary().n_constant_images == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"not a zip", "not an npz"),
        ("pickle", "pickled"),
        ("nan", "NaN"),
        ("constant", "every pixel"),
        ("onedim", "no numeric array"),
        ("tiny", "smaller than"),
    ],
)
def test_load_npz_bad_input_names_file_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content == "pickle":
        np.savez(path, images=np.array([{"a": 1}, None], dtype=object))
    elif content == "nan":
        x = np.random.default_rng(0).random((20, 32, 32))
        x[2, 3, 3] = np.nan
        np.savez(path, images=x)
    elif content == "constant":
        np.savez(path, images=np.full((20, 32, 32), 3, np.uint8))
    elif content == "onedim":
        np.savez(path, values=np.arange(10))
    elif content == "tiny":
        np.savez(path, images=np.zeros((5, 8, 8), np.uint8))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        load_npz(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


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


def test_image_stats_shapes_and_ranges(npz_path):
    data = load_npz(npz_path, image_size=32)
    s = image_stats(data, seed=0)
    assert s.mean.shape == s.std.shape == (32, 32)
    assert s.hist_counts.sum() == len(data) * 32 * 32
    assert np.all((s.brightness >= 0) & (s.brightness <= 1))
    np.testing.assert_allclose(s.mean.mean(), s.brightness.mean(), rtol=1e-5)
    assert s.atypicality.shape == (len(data),)


def test_real_data_loads_with_patients(shared_npz):
    data = load_npz(shared_npz)
    assert len(data) == 5840 and data.images.dtype == np.uint8
    assert data.label_names == ["normal", "pneumonia"]
    train, test = split_indices(len(data), data.labels, data.groups, seed=0)
    assert not set(data.groups[train]) & set(data.groups[test])


def test_split_with_fewer_patients_than_folds_keeps_patients_apart():
    groups = np.repeat(["a", "b", "c", "d"], 3)
    train, test = split_indices(12, groups=groups, seed=1)
    assert len(test) > 0 and len(train) > 0
    assert not set(groups[train]) & set(groups[test])
