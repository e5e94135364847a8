"""npz and npy files: every common layout read alike, layouts found or refused with both
readings named, hostile array headers, MedMNIST pooling, and the reader's own results."""

import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrvae.cli import main
from cxrvae.data.loader import load, load_npz
from cxrvae.data.npz import read_npz
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.errors import DataError


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


def _images(n, size=48, seed=0):
    return synthetic_xrays(n=n, size=size, seed=seed)[0]


def test_one_image_per_key_is_stacked_in_key_order(tmp_path, capsys, error_line):
    # np.savez(path, *images) of a few large images: once read as 256 rows of 16x16 images
    images = _images(5, size=256)
    path = tmp_path / "five.npz"
    np.savez(path, *images)
    data = load(path, image_size=64)
    assert len(data) == 5
    ref = load(tmp_path / "five.npz", image_size=256)
    np.testing.assert_array_equal(ref.images, images)  # arr_0 ... arr_4, in that order
    assert "5 arrays of shape (256, 256) under separate keys" in data.reading
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "images:        5 (256x256 px" in out and "separate keys" in out
    code = main(["train", str(path), "--out", str(tmp_path / "run")])
    assert code == 2 and "5 usable images; training needs at least 10" in error_line()
    assert not (tmp_path / "run").exists()


def test_a_lone_square_2d_array_is_ambiguous_and_layout_chooses(tmp_path, capsys, error_line):
    path = tmp_path / "one.npz"
    np.savez(path, _images(1, size=256)[0])
    assert main(["inspect", str(path)]) == 2
    err = error_line()
    assert "one 256x256 image (--layout image)" in err
    assert "256 rows of 16x16 px (--layout rows)" in err
    assert main(["inspect", str(path), "--layout", "image"]) == 0
    assert "images:        1 (256x256 px" in capsys.readouterr().out
    assert main(["inspect", str(path), "--layout", "rows"]) == 0
    assert "images:        256 (16x16 px" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arrays, n, why",
    [
        # rows, and the labels give one value per row
        (lambda x: {"x": x.reshape(40, -1), "labels": np.arange(40) % 2}, 40, "rows"),
        # 12 rows of 1,024 values: no radiograph is 85 times wider than tall
        (lambda x: {"x": x[:12].reshape(12, -1)}, 12, "rows"),
        # width not a perfect square: one image
        (lambda x: {"x": np.hstack([x[0], x[1][:, :8]])}, 1, "one 32x40 image"),
        # (3, H, W): three images, since the labels count three
        (lambda x: {"x": x[:3], "labels": np.array([0, 1, 0])}, 3, "3 images"),
        # (H, W, 3): one colour image
        (lambda x: {"x": np.repeat(x[0][..., None], 3, 2)}, 1, "one 32x32 image"),
    ],
)
def test_clear_layouts_are_read_and_say_why(tmp_path, arrays, n, why):
    path = tmp_path / "a.npz"
    np.savez(path, **arrays(_images(40, size=32)))
    data = load(path, image_size=32)
    assert len(data) == n and why in data.reading


def test_three_images_or_one_colour_image_is_refused_naming_both(tmp_path):
    path = tmp_path / "three.npz"
    np.savez(path, x=_images(3, size=32))
    with pytest.raises(DataError) as e:
        load(path)
    assert "3 images of 32x32 px (--layout nhw)" in str(e.value)
    assert "one 32x32 image (--layout image)" in str(e.value)
    assert len(load(path, layout="nhw")) == 3


def test_a_layout_that_does_not_fit_is_one_line(tmp_path, capsys, error_line):
    path = tmp_path / "stack.npz"
    np.savez(path, images=_images(20, size=32))
    assert main(["inspect", str(path), "--layout", "nhwc"]) == 2
    assert "--layout nhwc does not fit array 'images' of shape (20, 32, 32)" in (error_line())


def test_other_image_arrays_left_out_are_named(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, normal=_images(30, size=32), mean=_images(1, size=32)[0])
    data = load(path, image_size=32)
    assert len(data) == 30
    assert any("image-like arrays left out: mean (32, 32)" in n for n in data.notes)


def _npy_bytes(shape, payload=b"\x00" * 64) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + payload


HUGE = (4096, 4096, 1024 * 1024)  # 16 TB of uint8


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_npz_header_declaring_terabytes_is_one_line_and_writes_nothing(
    tmp_path, capsys, compression, error_line
):
    path = tmp_path / "hostile.npz"
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr("images.npy", _npy_bytes(HUGE))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out)]) == 2
    err = error_line()
    assert str(path) in err and "declares shape (4096, 4096, 1048576)" in err
    assert "17592.2 GB" in err or "17.6 TB" in err
    assert not out.exists()


def test_npy_header_declaring_more_than_the_file_is_one_line(tmp_path, capsys, error_line):
    path = tmp_path / "hostile.npy"
    path.write_bytes(_npy_bytes(HUGE))
    assert main(["inspect", str(path)]) == 2
    assert "the array declares shape" in error_line()


@pytest.mark.parametrize(
    "save, shape",
    [(np.savez, (64, 64)), (np.savez_compressed, (64, 64)), (np.savez, (64 * 64,))],
)
def test_medmnist_npz_is_pooled_without_a_second_copy(tmp_path, save, shape):
    import tracemalloc

    rng = np.random.default_rng(0)
    parts = {s: rng.integers(0, 256, (n, *shape), dtype=np.uint8)
             for s, n in (("train", 3000), ("val", 500), ("test", 700))}  # fmt: skip
    path = tmp_path / "m.npz"
    save(path, **{f"{s}_images": v for s, v in parts.items()},
         **{f"{s}_labels": np.zeros((len(v), 1), np.int64) for s, v in parts.items()})  # fmt: skip
    expected = np.concatenate(list(parts.values()))
    del parts
    tracemalloc.start()
    try:
        data = load(path, image_size=64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(data.images, expected.reshape(-1, 64, 64))
    assert list(np.unique(data.source_split)) == ["test", "train", "val"]
    # the pooled set (17 MB) once plus read buffers of about a MB; concatenating would need twice
    assert peak < 1.3 * expected.nbytes, peak


TMP_FIXTURE = HealthCheck.function_scoped_fixture  # tmp_path is reused safely: one file, rewritten


DTYPES = [
    "uint8",
    "uint16",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
    "bool",
    "complex64",
    "U3",
]


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 24), min_size=0, max_size=5)))
    n = int(np.prod(shape)) if shape else 1
    if n > 40_000:
        shape, n = (2, 3), 6
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == "U3":
        return np.array(rng.integers(0, 100, n).astype(str), dtype="U3").reshape(shape)
    if dtype == "bool":
        return (rng.random(n) > 0.5).reshape(shape)
    values = rng.normal(0, draw(st.sampled_from([1.0, 1e3, 1e30])), n)
    if draw(st.booleans()) and n:
        values[rng.integers(0, n)] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            values = np.nan_to_num(values, nan=0, posinf=info.max, neginf=info.min)
            values = np.clip(values, info.min, info.max)
        return values.astype(dtype).reshape(shape)


@settings(deadline=None, suppress_health_check=[TMP_FIXTURE])
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "images",
                "x",
                "labels",
                "ids",
                "label_names",
                "train_images",
                "test_images",
                "train_labels",
            ]
        ),
        arrays(),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from([32, 64]),
    st.sampled_from(["global", "per-image"]),
)
def test_fuzz_npz_loads_or_raises_data_error(tmp_path, contents, size, normalize):
    path = tmp_path / "fuzz.npz"
    np.savez(path, **contents)
    try:
        data = load_npz(path, image_size=size, normalize=normalize)
    except DataError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    x = data.normalized(np.arange(len(data)))
    assert x.shape == (len(data), size, size) and np.isfinite(x).all()
    assert x.min() >= -1e-6 and x.max() <= 1 + 1e-6


@settings(deadline=None, suppress_health_check=[TMP_FIXTURE])
@given(st.binary(max_size=2000), st.booleans())
def test_fuzz_random_bytes_raise_data_error(tmp_path, blob, zip_header):
    path = tmp_path / "bytes.npz"
    path.write_bytes((b"PK\x03\x04" if zip_header else b"") + blob)
    with pytest.raises(DataError):
        load_npz(path)


# --------------------------------------------------------------------------- the reader itself


def test_read_npz_gives_the_images_and_the_arrays_beside_them(tmp_path, xrays):
    images, labels = xrays
    path = tmp_path / "x.npz"
    np.savez(path, images=images, labels=labels[:, None], ids=np.arange(96).astype(str),
             subtype=np.where(labels == 1, "viral", "normal"), views=np.array(["PA", "AP"]),
             label_names=np.array(["normal", "pneumonia"]))  # fmt: skip
    raw = read_npz(path)
    np.testing.assert_array_equal(raw.images, images)  # the same pixels, in their own type
    assert raw.images.dtype == np.uint8 and raw.source_dtype == "uint8"
    assert raw.native_shape == (32, 32)
    assert raw.reading == "array 'images' of shape (96, 32, 32) as 96 images of 32x32 px"
    np.testing.assert_array_equal(raw.per_image["labels"], labels)  # (N, 1) -> (N,)
    assert set(raw.per_image) == {"labels", "ids", "subtype"}  # 'views' has 2 entries: aside
    assert list(raw.label_names) == ["normal", "pneumonia"]
    assert raw.source_split is None and raw.groups is None and raw.notes == []


def test_read_npz_keeps_a_source_split_array(tmp_path, xrays):
    images, _ = xrays
    split = np.where(np.arange(96) < 80, "train", "test")
    np.savez(tmp_path / "x.npz", images=images, source_split=split)
    raw = read_npz(tmp_path / "x.npz")
    np.testing.assert_array_equal(raw.source_split, split)
    assert "source_split" not in raw.per_image


def test_read_npz_summarises_multi_label_findings(tmp_path, xrays):
    images, _ = xrays
    findings = np.zeros((96, 3), np.uint8)
    findings[10, 1] = 1  # one finding
    findings[20, [0, 2]] = 1  # two
    np.savez(tmp_path / "m.npz", train_images=images[:80], train_labels=findings[:80],
             test_images=images[80:], test_labels=findings[80:])  # fmt: skip
    raw = read_npz(tmp_path / "m.npz", label_names=["effusion", "mass", "nodule"])
    assert raw.per_image["labels"][10] == "mass"
    assert raw.per_image["labels"][20] == "several findings"
    assert raw.per_image["labels"][0] == "no finding"
    assert list(np.unique(raw.source_split)) == ["test", "train"]
    assert any("no finding (94), one finding (1), several findings (1)" in n for n in raw.notes)
    assert any(n.startswith("pooled MedMNIST splits train (80), test (16)") for n in raw.notes)


def test_read_npy_is_memory_mapped_and_checked_before_reading(tmp_path, xrays):
    np.save(tmp_path / "x.npy", xrays[0])
    raw = read_npz(tmp_path / "x.npy")
    assert isinstance(raw.images, np.memmap)
    np.testing.assert_array_equal(raw.images, xrays[0])
    (tmp_path / "cut.npy").write_bytes((tmp_path / "x.npy").read_bytes()[:5000])
    with pytest.raises(DataError, match="declares shape \\(96, 32, 32\\) of uint8"):
        read_npz(tmp_path / "cut.npy")
