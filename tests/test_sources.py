"""Folders of images and DICOM files, public sets downloaded from a server on 127.0.0.1."""

import hashlib
import http.server
import json
import threading
from functools import partial

import numpy as np
import pytest
from PIL import Image

from cxrvae.cli import main
from cxrvae.data import export_npz, load
from cxrvae.datasets import DATASETS, fetch
from cxrvae.errors import DataError

# --------------------------------------------------------------------------- folders


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


# --------------------------------------------------------------------------- DICOM


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


# --------------------------------------------------------------------------- public sets


class _Server:
    """A static file server on 127.0.0.1 that counts the requests for each path."""

    def __init__(self, folder):
        hits = self.hits = {}

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                hits[self.path] = hits.get(self.path, 0) + 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(Handler, directory=str(folder))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mirror(tmp_path, monkeypatch, xrays):
    """A MedMNIST-layout pneumoniamnist_64.npz served on 127.0.0.1, and an empty cache.

    The served file is small and synthetic, so its md5 replaces the published one for the
    test; everything else (URL, pooch, cache, checks) is the real path.
    """
    images, labels = xrays
    folder = tmp_path / "served"
    folder.mkdir()
    path = folder / "pneumoniamnist_64.npz"
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)  # 64 px like the real file
    np.savez(
        path,
        train_images=big[:64],
        train_labels=labels[:64, None],
        val_images=big[64:80],
        val_labels=labels[64:80, None],
        test_images=big[80:],
        test_labels=labels[80:, None],
    )
    monkeypatch.setitem(
        DATASETS["pneumoniamnist"].md5, 64, hashlib.md5(path.read_bytes()).hexdigest()
    )
    server = _Server(folder)
    monkeypatch.setenv("CXRVAE_DATASET_URL", server.url)
    monkeypatch.setenv("CXRVAE_CACHE", str(tmp_path / "cache"))
    yield server, tmp_path / "cache"
    server.close()


def test_named_set_is_downloaded_once_and_cached(mirror):
    server, cache = mirror
    data = load("pneumoniamnist", image_size=64)
    assert data.source == "pneumoniamnist:64"
    assert data.label_names == ["normal", "pneumonia"] and len(data) == 96
    assert set(data.source_split) == {"train", "val", "test"}
    assert (cache / "pneumoniamnist_64.npz").is_file()
    load("pneumoniamnist:64", image_size=32)
    assert server.hits == {"/pneumoniamnist_64.npz": 1}


def test_checksum_mismatch_is_an_error_and_keeps_nothing(mirror, monkeypatch, capsys):
    server, cache = mirror
    monkeypatch.setitem(DATASETS["pneumoniamnist"].md5, 64, "0" * 32)
    assert main(["inspect", "pneumoniamnist:64"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("cxrvae: error:")]
    assert len(errors) == 1 and "does not match the md5" in errors[0]
    assert "Traceback" not in err
    assert not any(cache.iterdir()) if cache.exists() else True


def test_unreachable_server_suggests_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CXRVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXRVAE_DATASET_URL", "http://127.0.0.1:9/")  # discard port: refused
    with pytest.raises(DataError, match="cannot download .*give its path") as e:
        fetch(DATASETS["chestmnist"], 64)
    assert "chestmnist_64.npz" in str(e.value)


def test_missing_file_on_the_server_says_http_404(mirror):
    with pytest.raises(DataError, match="HTTP 404"):
        load("chestmnist:28")


def test_a_public_set_by_name_trains_and_is_found_again(mirror, tmp_path, monkeypatch, tiny_cli):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "pneumoniamnist:64", *tiny_cli]) == 0
    saved = json.loads((tmp_path / "runs" / "pneumoniamnist_64" / "config.json").read_text())
    assert saved["source"] == "pneumoniamnist:64"
    assert saved["config"]["data"]["image_size"] == 32  # --image-size wins over the set's size
    # analyze finds the data again through the cache
    assert main(["analyze", "runs/pneumoniamnist_64", "--n-samples", "40", "-q"]) == 0


def test_named_size_sets_the_default_image_size(mirror, capsys):
    assert main(["inspect", "pneumoniamnist:64"]) == 0
    assert "models see:    64x64" in capsys.readouterr().out
