"""Folders of chest X-rays: PNG, JPEG, TIFF, BMP and DICOM files, searched recursively, with
labels from subfolder names and the source split from ``train``/``val``/``test`` folders.

This module reads pixels and file names; :mod:`cxrvae.data` turns them into an ``XrayData``
(normalisation, labels, split).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError
from .pixels import LUMA, cast, resize_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass
class FolderImages:
    """Images read from a folder, already resized to ``size`` x ``size``.

    ``ids`` are paths relative to the folder; ``labels`` the immediate subfolder names (None
    when some image lies directly in the folder); ``groups`` a per-patient key for DICOM files
    (a hash of PatientID, never the identifier itself).
    """

    images: np.ndarray
    ids: np.ndarray
    labels: np.ndarray | None
    source_split: np.ndarray | None
    groups: np.ndarray | None
    source_dtype: str
    native_shape: tuple
    notes: list = field(default_factory=list)


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:  # DICOM Part 10 files have "DICM" after a 128-byte preamble, whatever their name
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def list_images(folder: Path) -> list[Path]:
    """Image and DICOM files under ``folder`` (recursively, hidden files skipped), sorted."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES or _is_dicom(p):
            out.append(p)
    return out


def _read_picture(path: Path, size: int) -> tuple[np.ndarray, tuple, str | None]:
    """One PNG/JPEG/TIFF/BMP file -> (grayscale image at size x size, native shape, note)."""
    note = None
    with Image.open(path) as im:
        if getattr(im, "n_frames", 1) > 1:
            raise DataError(f"{path}: has {im.n_frames} frames; give single-frame images")
        native = (im.height, im.width)
        im.draft("L" if im.mode in ("L", "RGB", "CMYK", "YCbCr") else im.mode, (size, size))
        if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            a = np.asarray(im)
            if a.dtype != np.uint16 and a.min() >= 0 and a.max() <= 65535:
                a = a.astype(np.uint16)  # 16-bit PNGs often open as 32-bit "I"
        elif im.mode == "F":
            a = np.asarray(im, dtype=np.float32)
        elif im.mode in ("L", "1"):
            a = np.asarray(im.convert("L"))
        else:  # palette, RGB(A), LA, CMYK...: BT.601 luminance
            a = cast(np.asarray(im.convert("RGB"), dtype=np.float64) @ LUMA, np.uint8)
            note = "colour"
    return resize_image(a, size), native, note


def _read_dicom(path: Path, size: int) -> tuple[np.ndarray, tuple, str | None, str | None]:
    """One DICOM file -> (image with bone bright, native shape, note, patient key)."""
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:
        raise DataError(
            f"{path}: reading DICOM needs pydicom 3 or later: pip install 'cxrvae[dicom]'"
        ) from None
    try:
        ds = pydicom.dcmread(path)
    except Exception as e:  # pydicom raises many types for damaged files
        raise DataError(f"{path}: not a readable DICOM file ({e})") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DataError(f"{path}: multi-frame DICOM ({frames} frames); give single radiographs")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if int(ds.get("SamplesPerPixel", 1)) != 1 or not photometric.startswith("MONOCHROME"):
        raise DataError(
            f"{path}: colour DICOM ({photometric}); chest radiographs are expected in grayscale"
        )
    try:
        a = ds.pixel_array
    except Exception as e:
        raise DataError(f"{path}: cannot decode the pixel data ({e})") from None
    a = apply_voi_lut(apply_modality_lut(a, ds), ds).astype(np.float64)
    if photometric == "MONOCHROME1":  # low values are bright: invert so bone is bright
        a = a.max() + a.min() - a
    patient = ds.get("PatientID")
    key = hashlib.sha256(str(patient).encode()).hexdigest()[:16] if patient else None
    return resize_image(a.astype(np.float32), size), a.shape, None, key


def _read_one(path: Path, size: int):
    if _is_dicom(path):
        return _read_dicom(path, size)
    try:
        return (*_read_picture(path, size), None)
    except DataError:
        raise
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        raise DataError(f"{path}: cannot read as an image ({e})") from None


def read_folder(folder, size: int, drop_invalid: bool = False) -> FolderImages:
    """Read every image under ``folder``, each resized to ``size`` x ``size``.

    Labels come from the immediate subfolder names (``NORMAL/``, ``PNEUMONIA/``), the source
    split from a ``train``/``val``/``test`` folder on the way, ids from the relative paths.
    Unreadable files stop the load with their name, or are left out with ``drop_invalid``.
    """
    folder = Path(folder)
    files = list_images(folder)
    if not files:
        raise DataError(f"{folder}: no PNG, JPEG, TIFF, BMP or DICOM files in this folder or below")
    notes: list[str] = []
    results = _read_all(folder, files, size, drop_invalid, notes)
    paths = [r[0] for r in results]
    images = [r[1] for r in results]
    shapes = {tuple(r[2]) for r in results}
    dtypes = sorted({str(im.dtype) for im in images})
    if len(dtypes) > 1:
        notes.append(
            f"images of different types ({', '.join(dtypes)}) stored as float32; each keeps "
            "its own value scale, so consider --normalize per-image"
        )
        images = [im.astype(np.float32) for im in images]
    if any(r[3] == "colour" for r in results):
        notes.append("colour images converted to grayscale (BT.601 luminance)")
    rel = [p.relative_to(folder) for p in paths]
    labels, source_split = _from_folder_names(rel, notes)
    keys = [r[4] for r in results]
    groups = np.asarray(keys) if all(keys) and len(set(keys)) < len(keys) else None
    if len(shapes) > 1 or shapes != {(size, size)}:
        hs, ws = [s[0] for s in shapes], [s[1] for s in shapes]
        notes.append(
            f"resized from {min(hs)}-{max(hs)} x {min(ws)}-{max(ws)} px to {size}x{size} "
            "(antialiased bicubic, aspect ratio not kept)"
        )
    notes.insert(0, f"read {len(paths)} image files from {folder.name}/")
    return FolderImages(
        images=np.stack(images),
        ids=np.asarray([r.as_posix() for r in rel]),
        labels=labels,
        source_split=source_split,
        groups=groups,
        source_dtype=dtypes[0] if len(dtypes) == 1 else "mixed",
        native_shape=shapes.pop() if len(shapes) == 1 else (),
        notes=notes,
    )


def _read_all(folder: Path, files: list[Path], size: int, drop_invalid: bool, notes: list):
    """Each readable file as (path, image, native shape, note, patient key), read in threads."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(_read_one, p, size) for p in files]
        results, skipped = [], []
        for p, fut in zip(files, futures):
            try:
                results.append((p, *fut.result()))
            except DataError as e:
                if not drop_invalid:
                    raise DataError(
                        f"{e} (remove it, or pass --drop-invalid to leave such files out)"
                    ) from None
                skipped.append(p)
    if skipped:
        notes.append(f"left out {len(skipped)} unreadable files (first: {skipped[0]})")
    if not results:
        raise DataError(f"{folder}: none of the {len(files)} image files could be read")
    return results


def _from_folder_names(rel: list[Path], notes: list) -> tuple[np.ndarray | None, ...]:
    """Labels from the immediate subfolder names, and the source split from train/val/test
    folders on the way (each None unless every file has one)."""
    parents = [r.parent.name if len(r.parts) > 1 else "" for r in rel]
    labels = None
    if all(parents) and not any(n.lower() in SPLIT_NAMES for n in parents):
        labels = np.asarray(parents)
        notes.append(f"labels from the subfolder names: {', '.join(sorted(set(parents)))}")
    splits = [
        next((SPLIT_NAMES[s.lower()] for s in r.parts[:-1] if s.lower() in SPLIT_NAMES), "")
        for r in rel
    ]
    return labels, np.asarray(splits) if all(splits) else None
