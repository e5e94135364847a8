"""Fuzzed readers: npz and npy files, image files and DICOM data sets made by Hypothesis, read
through the command line (``cxrvae export``).

Every example is either read right (an npz of uint8 images of the asked size is written) or
refused with exactly one line naming the file, exit status 2; never a traceback, and nothing is
written. The default run tries ``EXAMPLES`` generated inputs per reader; the long run
(``python -m pytest -m slow tests/data/test_fuzz.py``) tries ``LONG_EXAMPLES`` new ones each.
"""

import contextlib
import io
import re
import shutil
import struct
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from cxrvae.cli import main

EXAMPLES = 40  # per reader in the default run
LONG_EXAMPLES = 1500  # per reader with -m slow
SIZE = 32  # the image size asked for

# --------------------------------------------------------------------------- the one check


def _exported(source: Path) -> None:
    """``cxrvae export SOURCE OUT.npz``: read right, or refused in one line; nothing else."""
    out_dir = Path(tempfile.mkdtemp(prefix="fuzz-out-"))
    out = out_dir / "out.npz"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("always")  # every warning printed, as a user would see it
            warnings.showwarning = _print_warning
            code = main(["export", str(source), str(out), "--image-size", str(SIZE), "-q"])
        text = err.getvalue()
        assert "Traceback" not in text, text
        if code == 0:
            with np.load(out, allow_pickle=False) as f:
                images = f["images"]
            assert images.dtype == np.uint8 and images.ndim == 3 and len(images) >= 1
            assert images.shape[1:] == (SIZE, SIZE)
            assert text == "", text
        else:
            assert code == 2, (code, text)
            assert re.fullmatch(r"cxrvae: error: [^\n]+\n", text), text
            assert source.name in text, text  # names the file (or its folder)
            assert list(out_dir.iterdir()) == [], "a refused input wrote something"
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _print_warning(message, category, filename, lineno, file=None, line=None):
    """Python's way of showing a warning (which pytest replaces while it runs a test)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _fuzz(strategy, write, n: int, derandomize: bool) -> None:
    """Run ``_exported`` on ``n`` examples of ``strategy``, each written by ``write(example,
    folder) -> path``."""

    @settings(
        max_examples=n,
        derandomize=derandomize,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(example):
        folder = Path(tempfile.mkdtemp(prefix="fuzz-in-"))
        try:
            _exported(write(example, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    run()


# --------------------------------------------------------------------------- npz and npy files

KEYS = ["images", "x", "arr_0", "arr_1", "labels", "y", "ids", "label_names", "source_split",
        "train_images", "val_images", "test_images", "train_labels", "test_labels"]  # fmt: skip
DTYPES = ["u1", "u2", "i1", "i2", "i4", "i8", "f2", "f4", "f8", "?", "U6", "S4", "c8", "O"]


@st.composite
def arrays(draw):
    """An array of any of ``DTYPES`` with 0 to 5 dimensions, often image-like, with NaN and
    infinities among floats."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = draw(st.integers(0, 24))
    side = draw(st.sampled_from([1, 8, 15, 16, 17, 24, 32, 40]))
    shape = draw(
        st.one_of(
            st.just((n, side, side)),
            st.just((n, side, side + 8)),
            st.sampled_from([(n, side, side, 1), (n, side, side, 3), (n, 1, side, side)]),
            st.just((n, side * side)),
            st.just((side, side)),
            st.just((n,)),
            hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5),
        )
    )
    if dtype.kind == "O":
        return np.array([b"x"] * int(np.prod(shape)), dtype=object).reshape(shape)
    if dtype.kind in "US":
        words = np.array(["a", "b", "normal", ""], dtype=dtype)
        picks = draw(hnp.arrays(np.int8, shape, elements=st.integers(0, 3)))
        return words[picks]
    if draw(st.booleans()) or dtype.kind in "bc":  # random values, NaN and inf included
        return draw(hnp.arrays(dtype, shape))
    fill = draw(st.sampled_from(["ramp", "constant", "nan_one"]))
    a = np.asarray(np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) % 251)
    if fill == "constant":
        a[...] = 7
    if dtype.kind == "f" and fill == "nan_one" and a.size:
        a.flat[0] = np.nan
    return a.astype(dtype)


DAMAGE = ["none", "none", "truncate", "flip", "huge_header"]


@st.composite
def npz_files(draw):
    """(kind, arrays, damage, where): an npz of one to three arrays, or one npy, then damaged."""
    kind = draw(st.sampled_from(["npz", "npz", "npy"]))
    if kind == "npy":
        contents = {"arr": draw(arrays())}
    else:
        keys = st.one_of(st.sampled_from(KEYS), st.text("abcxyz_", min_size=1, max_size=6))
        contents = draw(st.dictionaries(keys, arrays(), min_size=1, max_size=3))
    return kind, contents, draw(st.sampled_from(DAMAGE)), draw(st.floats(0, 1))


def _write_npz(example, folder: Path) -> Path:
    kind, contents, damage, where = example
    path = folder / f"fuzz.{kind}"
    if damage == "huge_header":  # an npy header declaring far more data than the file holds
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': (100000, 4096, 4096), }"
        header = header.ljust(118) + "\n"
        blob = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64
        if kind == "npy":
            path.write_bytes(blob)
        else:
            import zipfile

            with zipfile.ZipFile(path, "w") as z:
                z.writestr("images.npy", blob)
        return path
    if kind == "npy":
        np.save(path, contents["arr"], allow_pickle=True)
    else:
        np.savez(path, **contents)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        del data[int(where * len(data)) :]
    elif damage == "flip" and data:
        i = int(where * (len(data) - 1))
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_fuzzed_npz_and_npy_files_are_read_or_refused_in_one_line():
    _fuzz(npz_files(), _write_npz, EXAMPLES, derandomize=True)


# --------------------------------------------------------------------------- image files

# Pillow modes and the formats that store them
MODES = {
    "1": ["PNG", "BMP", "TIFF"],
    "L": ["PNG", "JPEG", "BMP", "TIFF"],
    "LA": ["PNG", "TIFF"],
    "P": ["PNG", "BMP", "TIFF", "GIF"],
    "RGB": ["PNG", "JPEG", "BMP", "TIFF"],
    "RGBA": ["PNG", "TIFF"],
    "CMYK": ["JPEG", "TIFF"],
    "YCbCr": ["JPEG"],
    "I;16": ["PNG", "TIFF"],
    "I": ["TIFF"],
    "F": ["TIFF"],
}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".png"}


@st.composite
def picture(draw):
    """(name, bytes) of one image file: a real picture of any common mode and format, maybe
    animated or truncated, or random bytes under an image suffix."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from([".png", ".jpg", ".tif", ".bmp"])), draw(
            st.binary(max_size=300)
        )
    mode = draw(st.sampled_from(sorted(MODES)))
    fmt = draw(st.sampled_from(MODES[mode]))
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    if mode in ("I;16", "I"):
        im = Image.fromarray(pixels.astype(np.uint16) * 257).convert(mode)
    elif mode == "F":
        im = Image.fromarray(pixels.astype(np.float32) / draw(st.sampled_from([255, 1e-3, -1])))
    else:
        im = Image.fromarray(pixels).convert(mode)
    buf = io.BytesIO()
    frames = draw(st.sampled_from([1, 1, 1, 2])) if fmt in ("PNG", "GIF", "TIFF") else 1
    if frames > 1:
        im.save(buf, format=fmt, save_all=True, append_images=[im.rotate(90)])
    else:
        im.save(buf, format=fmt)
    data = buf.getvalue()
    if draw(st.integers(0, 4)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return SUFFIX[fmt], data


@st.composite
def image_folders(draw):
    """(files, single): one to three picture files in a folder (some in a subfolder), or one
    file given on its own."""
    files = draw(st.lists(picture(), min_size=1, max_size=3))
    return files, draw(st.booleans())


def _write_images(example, folder: Path) -> Path:
    files, single = example
    root = folder / "xrays"
    for i, (suffix, data) in enumerate(files):
        sub = root / ("NORMAL" if i % 2 else "PNEUMONIA")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"im{i}{suffix}").write_bytes(data)
    if single:
        return next(root.rglob("im0.*"))
    return root


def test_fuzzed_image_files_are_read_or_refused_in_one_line():
    _fuzz(image_folders(), _write_images, EXAMPLES, derandomize=True)


# --------------------------------------------------------------------------- DICOM data sets

SYNTAXES = [
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (the pixel data is not JPEG: undecodable)
    "1.2.840.10008.1.2.5",  # RLE Lossless (likewise)
]
PHOTOMETRIC = ["MONOCHROME2", "MONOCHROME2", "MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL",
               "", "WEIRD"]  # fmt: skip


@st.composite
def dicom_sets(draw):
    """A dict of DICOM attributes, often contradicting each other or the pixel data's length,
    and how the file is written."""
    rows, cols = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    bits = draw(st.sampled_from([8, 16, 16, 1, 12, 32]))
    tags = {
        "Rows": rows,
        "Columns": cols,
        "BitsAllocated": bits,
        "BitsStored": draw(st.sampled_from([bits, bits, 12, 1, 40])),
        "PixelRepresentation": draw(st.sampled_from([0, 0, 1, 2])),
        "SamplesPerPixel": draw(st.sampled_from([1, 1, 1, 3, 0])),
        "PhotometricInterpretation": draw(st.sampled_from(PHOTOMETRIC)),
        "Modality": draw(st.sampled_from(["CR", "DX", "SR", "OT"])),
        "SOPClassUID": draw(
            st.sampled_from(
                [
                    "1.2.840.10008.5.1.4.1.1.1",
                    "1.2.840.10008.5.1.4.1.1.7",
                    "1.2.840.10008.1.3.10",
                    "1.2.3.4",
                ]  # fmt: skip
            )
        ),
    }
    for name, values in {
        "NumberOfFrames": ["1", "2", "0", "-1"],
        "RescaleSlope": ["1", "0", "-2.5", "1e308", "0.5"],
        "RescaleIntercept": ["0", "-1024", "1e308"],
        "WindowCenter": ["100", "0", "-5", "2048\\1000"],
        "WindowWidth": ["200", "0", "-10", "1", "4096\\500"],
        "PlanarConfiguration": [0, 1],
        "PatientID": ["P1", ""],
        "VOILUTFunction": ["LINEAR", "SIGMOID", "LINEAR_EXACT", "OTHER"],
    }.items():
        if draw(st.booleans()):
            tags[name] = draw(st.sampled_from(values))
    expected = rows * cols * max(1, bits // 8) * max(1, tags["SamplesPerPixel"])
    length = draw(st.sampled_from(["right", "right", "short", "long", "none", "empty"]))
    seed = draw(st.integers(0, 2**16))
    writing = draw(st.sampled_from(["part10", "part10", "meta", "bare"]))
    return tags, length, expected, seed, draw(st.sampled_from(SYNTAXES)), writing


def _write_dicom(example, folder: Path) -> Path:
    pytest.importorskip("pydicom", reason="pydicom (the 'dicom' extra) is not installed")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    tags, length, expected, seed, syntax, writing = example
    ds = Dataset()
    for name, value in tags.items():
        setattr(ds, name, value)
    ds.SOPInstanceUID = generate_uid()
    n = {"right": expected, "short": expected // 2, "long": expected + 7, "empty": 0}.get(length)
    if n is not None:
        ds.PixelData = np.random.default_rng(seed).integers(0, 256, n, np.uint8).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    compressed = UID(syntax).is_compressed
    if compressed and "PixelData" in ds:  # as one fragment: valid framing, invalid contents
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([ds.PixelData or b"\0\0"])
        ds["PixelData"].VR = "OB"
    path = folder / ("image.dcm" if writing == "part10" else "IM0001")
    if writing == "bare":  # no preamble, no file meta: as some archives keep CR images
        del ds.file_meta
        how = {"implicit_vr": syntax == SYNTAXES[0], "little_endian": True}
    else:
        how = {"enforce_file_format": writing == "part10"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(path, **how)
    except Exception:  # a combination pydicom will not write: a damaged Part 10 file instead
        path.write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(seed).bytes(64))
    return path


def test_fuzzed_dicom_files_are_read_or_refused_in_one_line():
    _fuzz(dicom_sets(), _write_dicom, EXAMPLES, derandomize=True)


# --------------------------------------------------------------------------- what it found

CR = {"Rows": 1, "Columns": 1, "BitsAllocated": 8, "BitsStored": 8, "PixelRepresentation": 0,
      "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2", "Modality": "CR",
      "SOPClassUID": "1.2.840.10008.5.1.4.1.1.1"}  # fmt: skip
IMPLICIT, JPEG = SYNTAXES[0], SYNTAXES[4]


def _unsupported_zip_method(example, folder: Path) -> Path:
    """An npz whose member claims a compression method that zipfile does not implement."""
    path = _write_npz(example, folder)
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local, central
        at = data.index(signature) + offset
        data[at : at + 2] = struct.pack("<H", 99)  # AE-x encryption
    path.write_bytes(bytes(data))
    return path


FOUND = {
    # pydicom logged a warning of several lines before the error line
    "dicom-excess-frames": (
        _write_dicom,
        (
            {**CR, "Columns": 3, "BitsAllocated": 1, "BitsStored": 1},
            "right",
            3,
            0,
            IMPLICIT,
            "part10",
        ),
    ),
    # pydicom logged each JPEG decoder's traceback before the error line
    "dicom-not-jpeg": (_write_dicom, (CR, "right", 1, 0, JPEG, "part10")),
    # decoded to a 1x1x1 array: a TypeError's traceback in the resize
    "dicom-3d-pixels": (_write_dicom, (CR, "right", 1, 0, JPEG, "bare")),
    # WindowWidth 0: pydicom's ValueError, a traceback
    "dicom-window-width-0": (
        _write_dicom,
        ({**CR, "WindowCenter": "100", "WindowWidth": "0"}, "right", 1, 0, IMPLICIT, "part10"),
    ),
    # float64 beyond float32's range: "every pixel equals inf" and overflow warnings
    "npz-beyond-float32": (
        _write_npz,
        ("npz", {"images": np.full((2, 16, 16), 3.5e38)}, "none", 0.0),
    ),
    # int64 colour at int64's maximum: wrapped to its minimum ("every pixel equals -9.2e18")
    "npz-int64-colour": (
        _write_npz,
        (
            "npz",
            {
                "images": np.stack(
                    [np.zeros((16, 16, 3), np.int64), np.full((16, 16, 3), 2**63 - 1)]
                )
            },
            "none",
            0.0,
        ),
    ),
    # a damaged npy header: numpy's SyntaxError, a traceback
    "npy-damaged-header": (
        _write_npz,
        ("npy", {"arr": np.arange(19, dtype=np.uint16)}, "flip", 0.40625),
    ),
    # a zip member of an unknown compression method: zipfile's NotImplementedError, a traceback
    "npz-unknown-compression": (
        _unsupported_zip_method,
        ("npz", {"images": np.zeros((2, 16, 16), np.uint8)}, "none", 0.0),
    ),
}


@pytest.mark.parametrize("name", list(FOUND))
def test_inputs_the_fuzzing_found_are_read_or_refused_in_one_line(tmp_path, name):
    write, example = FOUND[name]
    _exported(write(example, tmp_path))


def test_values_beyond_float32_are_refused_as_such(tmp_path, capsys):
    path = _write_npz(FOUND["npz-beyond-float32"][1], tmp_path)
    assert main(["inspect", str(path)]) == 2
    assert "2 of 2 images contain values beyond float32's range" in capsys.readouterr().err


def test_int64_colour_keeps_its_maximum(tmp_path):
    from cxrvae.data.loader import load

    data = load(_write_npz(FOUND["npz-int64-colour"][1], tmp_path), image_size=32)  # resized
    np.testing.assert_array_equal(data.normalized([0, 1]).mean(axis=(1, 2)), [0, 1])


# --------------------------------------------------------------------------- the long run


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy, write",
    [(npz_files, _write_npz), (image_folders, _write_images), (dicom_sets, _write_dicom)],
    ids=["npz", "images", "dicom"],
)
def test_long_fuzz_run(strategy, write):
    _fuzz(strategy(), write, LONG_EXAMPLES, derandomize=False)
