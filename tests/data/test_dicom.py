"""DICOM as archives hold it: without preamble, compressed, inverted, refused in one line when
it is no radiograph; the real shared DICOM files; no patient identifier in any output."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrvae.cli import main
from cxrvae.data.loader import load
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.errors import DataError

# tests/data/ -> the project root -> ../shared/data/dicom
SHARED_DICOM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom"


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
def test_a_dicom_that_is_no_radiograph_is_one_line_naming_it(tmp_path, capsys, kind, error_line):
    make, message = BAD_DICOM[kind]
    path = make(tmp_path)
    assert main(["inspect", str(path)]) == 2
    err = error_line()
    assert str(path) in err and message in err


def test_drop_invalid_leaves_such_files_out_and_counts_them(tmp_path, capsys, error_line):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(3):
        _write(folder / f"ok{i}.dcm", _dataset(_pixels(i)))
    _no_pixel_data(folder)
    _unsupported(folder)
    assert main(["inspect", str(folder)]) == 2
    assert "--drop-invalid" in error_line()
    assert main(["inspect", str(folder), "--drop-invalid"]) == 0
    out = capsys.readouterr().out
    assert "images:        3 " in out
    assert "left out 2 files that are not usable images" in out


@pytest.mark.processes
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


def test_inspect_and_export_take_a_single_picture_and_four_dicoms(tmp_path, capsys, error_line):
    png = tmp_path / "one.png"
    Image.fromarray(synthetic_xrays(n=1, size=64)[0][0]).save(png)
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
    assert "4 usable images; training needs at least 10" in error_line()


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


def _dicom(
    path,
    pixels,
    photometric="MONOCHROME2",
    slope=1.0,
    intercept=0.0,
    patient="P1",
    frames=1,
    samples=1,
    window=None,
):
    pytest.importorskip("pydicom", reason="pydicom (the 'dicom' extra) is not installed")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient
    ds.PatientName = f"Doe^{patient}"
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric if samples == 1 else "RGB"
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def dicom_folder(tmp_path, xrays):
    images, _ = xrays
    root = tmp_path / "dicom"
    for i in range(12):
        px = images[i].astype(np.uint16) * 16  # 12-bit values
        _dicom(root / f"img{i:02d}.dcm", px, patient=f"SECRET{i // 3:03d}")
    return root


def test_dicom_folder_loads_with_patients_grouped(dicom_folder, xrays):
    data = load(dicom_folder, image_size=32, normalize="per-image")
    assert len(data) == 12 and data.images.shape == (12, 32, 32)
    assert len(np.unique(data.groups)) == 4
    assert not any("SECRET" in g for g in data.groups)  # hashed, never the identifier
    expected = xrays[0][:12].astype(float)
    lo, hi = expected.min((1, 2), keepdims=True), expected.max((1, 2), keepdims=True)
    np.testing.assert_allclose(
        data.normalized(np.arange(12)), (expected - lo) / (hi - lo), atol=1e-5
    )


def test_dicom_monochrome1_is_inverted_and_luts_applied(tmp_path, xrays):
    px = xrays[0][0].astype(np.uint16) * 16
    for i in range(10):
        _dicom(tmp_path / "m" / f"a{i}.dcm", px, "MONOCHROME2", window=(2048, 4096))
    # the same picture stored inverted, and one stored at half the values with slope 2
    _dicom(tmp_path / "m" / "inv.dcm", 4095 - px, "MONOCHROME1", window=(2048, 4096))
    _dicom(tmp_path / "m" / "half.dcm", px // 2, slope=2.0, window=(2048, 4096))
    data = load(tmp_path / "m", image_size=32, normalize="per-image")
    ids = list(data.ids)
    ref = data.normalized([ids.index("a0.dcm")])[0]
    np.testing.assert_allclose(data.normalized([ids.index("inv.dcm")])[0], ref, atol=2e-3)
    np.testing.assert_allclose(data.normalized([ids.index("half.dcm")])[0], ref, atol=2e-3)


@pytest.mark.parametrize(
    "kw, message", [({"frames": 2}, "multi-frame DICOM"), ({"samples": 3}, "colour DICOM")]
)
def test_dicom_multiframe_and_colour_are_refused(tmp_path, xrays, kw, message):
    px = xrays[0][0].astype(np.uint16)
    if "frames" in kw:
        px = np.stack([px, px])
    if "samples" in kw:
        px = np.repeat(px[..., None], 3, axis=2)
    for i in range(11):
        _dicom(tmp_path / "d" / f"{i}.dcm", xrays[0][i].astype(np.uint16))
    _dicom(tmp_path / "d" / "odd.dcm", px, **kw)
    with pytest.raises(DataError, match=f"odd.dcm: {message}"):
        load(tmp_path / "d", image_size=32)


def test_dicom_run_writes_no_patient_identifier(tmp_path, dicom_folder, tiny_cli):
    out = tmp_path / "run"
    args = ["train", str(dicom_folder), "--out", str(out), *tiny_cli]
    assert main(args) == 0
    for f in out.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            assert b"SECRET" not in blob and b"Doe^" not in blob, f
