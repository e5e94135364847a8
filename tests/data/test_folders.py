"""Folders of PNG, JPEG and TIFF files: labels from subfolders, exact pixels, 16-bit depth,
colour, bad files; export round trips."""

import numpy as np
import pytest
from PIL import Image

from cxrvae.cli import main
from cxrvae.data.loader import load
from cxrvae.data.xray import export_npz
from cxrvae.errors import DataError


def _save(path, array, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)


@pytest.fixture
def xray_folder(tmp_path, xrays):
    """NORMAL/ and PNEUMONIA/ subfolders below train/ and test/, in PNG, JPEG and TIFF."""
    images, labels = xrays
    root = tmp_path / "chest_xray"
    for i, (im, y) in enumerate(zip(images[:40], labels[:40])):
        part = "test" if i % 5 == 0 else "train"
        cls = ["NORMAL", "PNEUMONIA"][y]
        ext = [".png", ".jpeg", ".tif"][i % 3]
        _save(root / part / cls / f"person{i // 2}_virus_{i}{ext}", im)
    return root


def test_folder_labels_from_subfolders_ids_from_paths(xray_folder, xrays):
    data = load(xray_folder, image_size=32)
    assert len(data) == 40
    assert data.label_names == ["NORMAL", "PNEUMONIA"]
    ids = list(data.ids)
    assert all(not i.startswith("/") for i in ids)
    # each image's label is its subfolder, its source split the train/test folder above it
    for i, label, split in zip(ids, data.labels, data.source_split):
        parts = i.split("/")
        assert data.label_names[label] == parts[1] and split == parts[0]
    assert set(data.source_split) == {"train", "test"}
    assert data.groups is not None  # personN_ in the file names


def test_folder_png_pixels_are_read_exactly(tmp_path, xrays):
    images, _ = xrays
    for i in range(12):
        _save(tmp_path / "imgs" / f"{i:02d}.png", images[i])
    data = load(tmp_path / "imgs", image_size=32)
    assert data.labels is None  # images directly in the folder: no labels
    np.testing.assert_array_equal(data.images, images[:12])


def test_folder_16bit_png_keeps_full_depth(tmp_path):
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, size=(12, 32, 32), dtype=np.uint16)
    deep[:, 0, 0] = 65535  # values above 255 that an 8-bit path would lose
    for i, im in enumerate(deep):
        _save(tmp_path / "d" / f"{i:02d}.png", im)
    data = load(tmp_path / "d", image_size=32)
    assert data.images.dtype == np.uint16
    np.testing.assert_array_equal(data.images, deep)
    lo, hi = deep.min(), deep.max()
    np.testing.assert_allclose(data.normalized([3])[0], (deep[3] - lo) / (hi - lo), atol=1e-6)


def test_folder_colour_and_size_are_converted(tmp_path, xrays):
    images, _ = xrays
    for i in range(12):
        rgb = np.repeat(images[i][..., None], 3, axis=2)
        _save(tmp_path / "c" / f"{i}.png", np.asarray(Image.fromarray(rgb).resize((48, 40))))
    data = load(tmp_path / "c", image_size=32)
    assert data.images.shape == (12, 32, 32)
    assert any("grayscale" in n for n in data.notes)
    assert any("resized 40x48 -> 32x32" in n and "aspect ratio not kept" in n for n in data.notes)


def test_folder_bad_file_names_it_or_is_left_out(tmp_path, xrays):
    images, _ = xrays
    for i in range(12):
        _save(tmp_path / "b" / f"{i}.png", images[i])
    bad = tmp_path / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match="broken.png: cannot read as an image") as e:
        load(tmp_path / "b", image_size=32)
    assert "\n" not in str(e.value)
    data = load(tmp_path / "b", image_size=32, drop_invalid=True)
    assert len(data) == 12 and any(
        "left out 1 file that is not a usable image" in n for n in data.notes
    )


def test_folder_without_images_is_refused(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="no PNG, JPEG, TIFF, BMP or DICOM files"):
        load(tmp_path / "empty")


def test_export_round_trips_through_load(tmp_path, xray_folder):
    data = load(xray_folder, image_size=32)
    out = export_npz(data, tmp_path / "plain.npz")
    with np.load(out) as f:
        assert f["images"].dtype == np.uint8 and f["images"].shape == (40, 32, 32)
        np.testing.assert_array_equal(f["labels"], data.labels)
        assert list(f["label_names"]) == data.label_names
        assert list(f["ids"]) == list(data.ids)
    again = load(out, image_size=32)
    np.testing.assert_allclose(
        again.normalized(np.arange(40)), data.normalized(np.arange(40)), atol=1 / 255
    )


def test_cli_inspect_and_export(tmp_path, xray_folder, capsys):
    assert main(["inspect", str(xray_folder), "--image-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "images:        40" in out and "NORMAL" in out and "32x32 px" in out
    target = tmp_path / "x.npz"
    assert main(["export", str(xray_folder), str(target), "--image-size", "32", "-q"]) == 0
    assert target.is_file()
    assert main(["export", str(xray_folder), str(target), "-q"]) == 2  # exists: refused
    assert "exists" in capsys.readouterr().err
