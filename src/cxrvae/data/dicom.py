"""DICOM files as archives hold them: with or without the Part 10 preamble and file meta,
uncompressed or compressed (JPEG, JPEG-LS, JPEG 2000, RLE through pydicom's decoder plugins).

Each file gives one grayscale radiograph with bone bright (modality and VOI LUTs applied,
MONOCHROME1 inverted), or a :class:`DataError` whose one line says what the file is instead.
Needs the ``dicom`` extra (pydicom and its decoders); pydicom is imported only when a DICOM
file is read.
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .pixels import resize_image

SUFFIXES = (".dcm", ".dicom")
DICOMDIR_UID = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # prefix of the secondary-capture SOP classes
# A data set without preamble and file meta starts with its first element, in practice one of
# group 0002 (file meta written without preamble) or 0008 (identifying information).
FIRST_GROUPS = (0x0002, 0x0008)
DECODERS_HINT = "pip install 'cxrvae[dicom]' installs pydicom's decoders"


def looks_like_dicom(path: Path) -> bool:
    """A ``.dcm``/``.dicom`` name, the Part 10 ``DICM`` marker, or a file that starts as a DICOM
    data set does (group 0002 or 0008); :func:`read_dicom` decides."""
    if path.suffix.lower() in SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    if head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    return group in FIRST_GROUPS and element < 0x2000


@dataclass
class DicomImage:
    """One radiograph read from a DICOM file.

    ``image`` is resized, bone bright; ``native_shape`` the stored rows and columns; ``dtype``
    the stored pixels' type; ``photometric`` and ``syntax`` (transfer syntax name) say how it was
    stored; ``windowed`` and
    ``rescaled`` whether a VOI LUT or window and a modality rescale were applied; ``patient``
    a hash of PatientID (never the identifier), or None.
    """

    image: np.ndarray
    native_shape: tuple
    dtype: str
    photometric: str
    syntax: str
    windowed: bool
    rescaled: bool
    patient: str | None


def _pydicom(path: Path):
    try:
        import pydicom
    except ImportError:
        raise DataError(
            f"{path}: reading DICOM needs pydicom 3 or later: pip install 'cxrvae[dicom]'"
        ) from None
    return pydicom


def read_dicom(path: Path, size: int) -> DicomImage:
    """Read one DICOM file as a grayscale radiograph resized to ``size`` x ``size``."""
    pydicom = _pydicom(path)
    try:
        # force: files without the preamble and file meta (older CR, toolkit test files).
        ds = pydicom.dcmread(path, force=True)
    except Exception as e:  # pydicom raises many types for damaged files
        raise DataError(f"{path}: not a readable DICOM file ({_first_line(e)})") from None
    _check_is_radiograph(path, ds)
    syntax = _transfer_syntax(ds)
    pixels = _decode(path, ds, syntax)
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    # A rescale slope of 1e308, say, overflows: the loader refuses the non-finite values.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            a = apply_voi_lut(apply_modality_lut(pixels, ds), ds).astype(np.float64)
        except Exception as e:  # a window of width 0, a LUT that does not fit the pixels...
            raise DataError(
                f"{path}: cannot apply its modality or VOI LUT ({_first_line(e)})"
            ) from None
        if photometric == "MONOCHROME1":  # low values are bright: invert so bone is bright
            a = a.max() + a.min() - a
        image = a.astype(np.float32)
    patient = ds.get("PatientID")
    return DicomImage(
        image=resize_image(image, size),
        native_shape=tuple(a.shape),
        dtype=str(pixels.dtype),
        photometric=photometric,
        syntax=syntax.name,
        windowed="WindowCenter" in ds or "VOILUTSequence" in ds,
        rescaled=float(ds.get("RescaleSlope", 1) or 1) != 1
        or float(ds.get("RescaleIntercept", 0) or 0) != 0,
        patient=hashlib.sha256(str(patient).encode()).hexdigest()[:16] if patient else None,
    )


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _what(ds) -> str:
    """What a DICOM object is, in a few words (SOP class name, else the modality)."""
    sop = ds.get("SOPClassUID")
    name = getattr(sop, "name", "") if sop else ""
    if name and name != str(sop):
        return name
    return f"modality {ds.Modality}" if "Modality" in ds else "unknown kind"


def _check_is_radiograph(path: Path, ds) -> None:
    """Refuse, in one line, what is not a single grayscale image."""
    meta = getattr(ds, "file_meta", None) or {}
    if meta.get("MediaStorageSOPClassUID") == DICOMDIR_UID or "DirectoryRecordSequence" in ds:
        raise DataError(
            f"{path}: a DICOMDIR (the index of a DICOM media set), not an image; the images "
            "are the files it lists"
        )
    if len(ds) == 0:
        raise DataError(f"{path}: not a DICOM file (no data elements could be read)")
    if "PixelData" not in ds:
        raise DataError(f"{path}: a DICOM file without pixel data ({_what(ds)}), not an image")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DataError(f"{path}: multi-frame DICOM ({frames} frames); give single radiographs")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if int(ds.get("SamplesPerPixel", 1)) != 1 or not photometric.startswith("MONOCHROME"):
        sop = str(ds.get("SOPClassUID", ""))
        kind = ", a secondary capture" if sop.startswith(SECONDARY_CAPTURE) else ""
        raise DataError(
            f"{path}: colour DICOM image ({photometric}{kind}); chest radiographs are expected "
            "in grayscale (MONOCHROME1 or MONOCHROME2)"
        )


def _transfer_syntax(ds):
    """The data set's transfer syntax; for a file without file meta, the encoding it was read
    with (then uncompressed), which pydicom needs in order to decode the pixels."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian
            if implicit
            else ExplicitVRLittleEndian
            if little
            else ExplicitVRBigEndian
        )
    return meta.TransferSyntaxUID


def _decode(path: Path, ds, syntax) -> np.ndarray:
    """The stored pixel values, or one line naming the encoding that cannot be decoded."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise DataError(
            f"{path}: pixel data encoded as {syntax.name} ({syntax}), which no DICOM decoder "
            "cxrvae uses can read (it reads uncompressed, RLE, JPEG, JPEG-LS and JPEG 2000)"
        ) from None
    if not decoder.is_available:
        raise DataError(
            f"{path}: pixel data compressed as {syntax.name} ({syntax}) needs a decoder that "
            f"is not installed; {DECODERS_HINT}"
        )
    try:
        pixels = ds.pixel_array
    except Exception as e:
        raise DataError(f"{path}: cannot decode the pixel data ({_first_line(e)})") from None
    if pixels.ndim != 2:  # more data than one frame holds, read as several; or colour
        shape = "x".join(map(str, pixels.shape))
        raise DataError(
            f"{path}: the pixel data decodes to a {shape} array, not one grayscale image "
            f"({ds.get('Rows', '?')} rows, {ds.get('Columns', '?')} columns)"
        )
    return pixels


def describe(images: list[DicomImage]) -> str:
    """One note on how a set of DICOM files was read: photometric handling, encodings, LUTs."""
    n = len(images)
    phot = _counts(d.photometric for d in images)
    syntaxes = _counts(d.syntax for d in images)
    windowed = sum(d.windowed for d in images)
    rescaled = sum(d.rescaled for d in images)
    inverted = phot.get("MONOCHROME1", 0)
    parts = [
        _listed(phot)
        + (" (MONOCHROME1 inverted so bone is bright)" if inverted else " (bone bright as stored)"),
        "encoded as " + _listed(syntaxes),
        f"VOI LUT or window applied to {windowed}" if windowed else "no VOI LUT or window",
    ]
    if rescaled:
        parts.append(f"rescale slope/intercept applied to {rescaled}")
    return f"{n} DICOM file{'s' if n != 1 else ''}: " + "; ".join(parts)


def _listed(counts: dict[str, int]) -> str:
    """``A`` when every file has it, else ``A 3, B 1``."""
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _counts(values) -> dict[str, int]:
    """How often each value occurs, most frequent first (ties by name)."""
    return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))
