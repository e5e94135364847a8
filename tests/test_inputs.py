"""Real inputs are never misread: npz layouts found or refused with both readings named, hostile
array headers, DICOM as archives hold it, any number of images for inspect and export, and the
packaged sample that a first run studies offline."""

import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrvae.cli import main
from cxrvae.data import load
from cxrvae.datasets import sample_path
from cxrvae.errors import DataError
from cxrvae.synthetic import synthetic_xrays

SHARED_DICOM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicom"


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert re.fullmatch(r"cxrvae: error: [^\n]+\n", err), err
    return err


def _images(n, size=48, seed=0):
    return synthetic_xrays(n=n, size=size, seed=seed)[0]


# --------------------------------------------------------------------------- npz layouts


def test_one_image_per_key_is_stacked_in_key_order(tmp_path, capsys):
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
    assert code == 2 and "5 usable images; training needs at least 10" in _one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_lone_square_2d_array_is_ambiguous_and_layout_chooses(tmp_path, capsys):
    path = tmp_path / "one.npz"
    np.savez(path, _images(1, size=256)[0])
    assert main(["inspect", str(path)]) == 2
    err = _one_error_line(capsys)
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


def test_a_layout_that_does_not_fit_is_one_line(tmp_path, capsys):
    path = tmp_path / "stack.npz"
    np.savez(path, images=_images(20, size=32))
    assert main(["inspect", str(path), "--layout", "nhwc"]) == 2
    assert "--layout nhwc does not fit array 'images' of shape (20, 32, 32)" in (
        _one_error_line(capsys)
    )


def test_other_image_arrays_left_out_are_named(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, normal=_images(30, size=32), mean=_images(1, size=32)[0])
    data = load(path, image_size=32)
    assert len(data) == 30
    assert any("image-like arrays left out: mean (32, 32)" in n for n in data.notes)


# --------------------------------------------------------------------------- hostile headers


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
    tmp_path, capsys, compression
):
    path = tmp_path / "hostile.npz"
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr("images.npy", _npy_bytes(HUGE))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert str(path) in err and "declares shape (4096, 4096, 1048576)" in err
    assert "17592.2 GB" in err or "17.6 TB" in err
    assert not out.exists()


def test_npy_header_declaring_more_than_the_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "hostile.npy"
    path.write_bytes(_npy_bytes(HUGE))
    assert main(["inspect", str(path)]) == 2
    assert "the array declares shape" in _one_error_line(capsys)


# --------------------------------------------------------------------------- DICOM


def _dataset(pixels: np.ndarray, **meta):
    pytest.importorskip("pydicom", reason="pydicom (the 'dicom' extra) is not installed")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for k, v in meta.items():
        setattr(ds, k, v)
    return ds


def _pixels(seed=0):
    return np.random.default_rng(seed).integers(0, 4096, (40, 48)).astype(np.uint16)


def _as_read(pixels):
    """What the loader makes of stored pixels at their own size: a float image."""
    return pixels.astype(np.float32)


@pytest.mark.parametrize("implicit", [True, False])
def test_dicom_without_preamble_or_file_meta_is_read(tmp_path, implicit):
    ds = _dataset(_pixels())
    del ds.file_meta
    path = tmp_path / "IM0001"  # archives often drop the suffix as well
    ds.save_as(path, enforce_file_format=False, implicit_vr=implicit, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    data = load(path, image_size=32, normalize="per-image")
    ref = load(_write(tmp_path / "ref.dcm", _dataset(_pixels())), 32, "per-image")
    np.testing.assert_array_equal(data.normalized([0]), ref.normalized([0]))


def _write(path: Path, ds) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_rle_and_jpeg_lossless_decode_to_the_stored_pixels(tmp_path):
    pytest.importorskip("pylibjpeg", reason="the 'dicom' extra's decoders are not installed")
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs writes the JPEG")
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1, RLELossless

    px = _pixels()
    folder = tmp_path / "d"
    folder.mkdir()
    _write(folder / "plain.dcm", _dataset(px))
    rle = _dataset(px)
    rle.compress(RLELossless)
    _write(folder / "rle.dcm", rle)
    jll = _dataset(px)
    jll.PixelData = encapsulate([imagecodecs.jpeg8_encode(px, lossless=True, bitspersample=12)])
    jll["PixelData"].VR = "OB"
    jll.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    _write(folder / "jpeg_lossless.dcm", jll)
    data = load(folder, image_size=32, normalize="per-image")
    assert len(data) == 3
    x = data.normalized([0, 1, 2])
    np.testing.assert_array_equal(x[0], x[1])
    np.testing.assert_array_equal(x[0], x[2])
    note = next(n for n in data.notes if "DICOM files" in n)
    assert "RLE Lossless 1" in note and "Process 14" in note


def _testdata(name: str) -> str:
    pydicom = pytest.importorskip("pydicom", reason="pydicom (the 'dicom' extra) is not installed")
    path = pydicom.data.get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not among pydicom's bundled test files")
    return path


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"]
)
def test_pydicom_compressed_files_equal_the_uncompressed_one(tmp_path, name):
    pytest.importorskip("pylibjpeg", reason="the 'dicom' extra's decoders are not installed")
    ref = load(_testdata("MR_small.dcm"), image_size=64)
    got = load(_testdata(name), image_size=64)
    np.testing.assert_allclose(got.images, ref.images, atol=1e-3)


def _no_pixel_data(tmp_path):
    from pydicom.uid import generate_uid

    ds = _dataset(_pixels())
    del ds.PixelData
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR Storage
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = generate_uid()
    return _write(tmp_path / "report.dcm", ds)


def _unsupported(tmp_path):
    from pydicom.encaps import encapsulate

    ds = _dataset(_pixels())
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3 not really video"])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 Main Profile
    return _write(tmp_path / "video.dcm", ds)


BAD_DICOM = {
    "no pixel data": (_no_pixel_data, "a DICOM file without pixel data (Basic Text SR"),
    "DICOMDIR": (lambda tmp: _testdata("DICOMDIR"), "a DICOMDIR (the index of a DICOM media set)"),
    "colour": (
        lambda tmp: _testdata("SC_rgb_jpeg_gdcm.dcm"),
        "colour DICOM image (RGB, a secondary capture)",
    ),
    "unsupported": (_unsupported, "pixel data encoded as MPEG2 Main Profile / Main Level"),
}


@pytest.mark.parametrize("kind", list(BAD_DICOM))
def test_a_dicom_that_is_no_radiograph_is_one_line_naming_it(tmp_path, capsys, kind):
    make, message = BAD_DICOM[kind]
    path = make(tmp_path)
    assert main(["inspect", str(path)]) == 2
    err = _one_error_line(capsys)
    assert str(path) in err and message in err


def test_drop_invalid_leaves_such_files_out_and_counts_them(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(3):
        _write(folder / f"ok{i}.dcm", _dataset(_pixels(i)))
    _no_pixel_data(folder)
    _unsupported(folder)
    assert main(["inspect", str(folder)]) == 2
    assert "--drop-invalid" in _one_error_line(capsys)
    assert main(["inspect", str(folder), "--drop-invalid"]) == 0
    out = capsys.readouterr().out
    assert "images:        3 " in out
    assert "left out 2 files that are not usable images" in out


def test_without_the_decoders_a_compressed_dicom_is_one_line_saying_how(tmp_path):
    pytest.importorskip("pylibjpeg", reason="the 'dicom' extra's decoders are not installed")
    from pydicom.uid import RLELossless

    ds = _dataset(_pixels())
    ds.compress(RLELossless)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.80"  # as if JPEG-LS: needs a plugin
    path = _write(tmp_path / "jls.dcm", ds)
    # A fresh interpreter in which pydicom's plugins cannot be imported, as without the extra.
    code = (
        "import sys\n"
        "for m in ('pylibjpeg', 'libjpeg', 'openjpeg', 'rle', 'jpeg_ls', 'gdcm'):\n"
        "    sys.modules[m] = None\n"
        "from cxrvae.cli import main\n"
        "sys.exit(main(['inspect', sys.argv[1]]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "JPEG-LS Lossless" in r.stderr and "pip install 'cxrvae[dicom]'" in r.stderr


# --------------------------------------------------------------------------- any number of images


def test_inspect_and_export_take_a_single_picture_and_four_dicoms(tmp_path, capsys):
    png = tmp_path / "one.png"
    Image.fromarray(_images(1, size=64)[0]).save(png)
    assert main(["inspect", str(png)]) == 0
    assert "images:        1 (64x64 px" in capsys.readouterr().out
    folder = tmp_path / "four"
    folder.mkdir()
    for i in range(4):
        _write(folder / f"{i}.dcm", _dataset(_pixels(i)))
    out = tmp_path / "four.npz"
    assert main(["export", str(folder), str(out), "--image-size", "32"]) == 0
    capsys.readouterr()
    with np.load(out) as f:
        assert f["images"].shape == (4, 32, 32) and f["images"].dtype == np.uint8
    assert main(["train", str(folder), "--out", str(tmp_path / "run")]) == 2
    assert "4 usable images; training needs at least 10" in _one_error_line(capsys)


# --------------------------------------------------------------------------- real DICOM files


def _real(name: str) -> Path:
    path = SHARED_DICOM / name
    if not path.exists():
        pytest.skip(f"real DICOM file not found at {path} (the shared data folder is absent)")
    return path


@pytest.mark.parametrize(
    "name, syntax",
    [
        ("nih_dx_monochrome2_uncompressed.dcm", "Implicit VR Little Endian"),
        ("siim_cr_jpeg_baseline.dcm", "JPEG Baseline (Process 1)"),
    ],
)
def test_real_dicom_files_inspect_right(name, syntax, capsys):
    path = _real(name)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "images:        1 (1024x1024 px, uint8 in the source)" in out
    assert f"MONOCHROME2 (bone bright as stored); encoded as {syntax}" in out
    data = load(path, image_size=64, normalize="per-image")
    x = data.normalized([0])[0]
    # bone bright: the spine and mediastinum (centre columns) are brighter than the lungs
    assert x[16:48, 28:36].mean() > x[16:48, 10:22].mean() + 0.1


def test_a_folder_of_the_real_dicom_files(tmp_path, capsys):
    folder = tmp_path / "real"
    folder.mkdir()
    for name in ("nih_dx_monochrome2_uncompressed.dcm", "siim_cr_jpeg_baseline.dcm"):
        (folder / name).write_bytes(_real(name).read_bytes())
    assert main(["inspect", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "images:        2 (1024x1024 px" in out and "2 DICOM files: MONOCHROME2" in out


# --------------------------------------------------------------------------- the packaged sample


def test_the_packaged_sample_loads_by_name_with_labels_and_patients():
    import cxrvae

    assert sample_path().stat().st_size <= 2_000_000
    data = cxrvae.load("sample")
    assert len(data) == 480 and data.images.shape[1:] == (64, 64)
    assert data.label_names == ["normal", "pneumonia"]
    assert np.bincount(data.labels).tolist() == [240, 240]
    assert data.groups is not None and len(np.unique(data.groups)) == 326
    assert (sample_path().parent / "README.md").read_text().count("CC BY 4.0") >= 1


def test_run_without_data_studies_the_sample_offline(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise OSError("this test allows no network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)
    quick = ["--epochs", "1", "--max-steps", "2", "--latent-dims", "2", "--n-samples", "60"]
    assert main(["run", *quick, "--perplexity", "10"]) == 0
    assert "no DATA given: studying the packaged sample" in capsys.readouterr().err
    run = tmp_path / "runs" / "sample"
    assert (run / "report.html").is_file() and (run / "explorer.html").is_file()
