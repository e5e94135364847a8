"""Image files of chest X-rays: a folder of PNG, JPEG, TIFF, BMP and DICOM files searched
recursively (labels from subfolder names, the source split from ``train``/``val``/``test``
folders), or a single such file.

This module reads pixels and file names; :mod:`cxrvae.data.loader` turns them into an ``XrayData``
(normalisation, labels, split).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError
from . import dicom
from .pixels import LUMA, RawImages, cast, resize_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
DROP_HINT = "remove it, or pass --drop-invalid to leave such files out"


@dataclass
class _FileImage:
    """One file read: its image (resized), stored size, and how it was read."""

    path: Path
    image: np.ndarray
    native_shape: tuple
    colour: bool = False  # a colour picture converted to grayscale
    dicom: dicom.DicomImage | None = None


def is_image_file(path: Path) -> bool:
    """A picture by its suffix, or a DICOM file (by suffix or content)."""
    return path.suffix.lower() in IMAGE_SUFFIXES or dicom.looks_like_dicom(path)


def list_images(folder: Path) -> list[Path]:
    """Image and DICOM files under ``folder`` (recursively, hidden files skipped), sorted."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if is_image_file(p):
            out.append(p)
    return out


def _read_picture(path: Path, size: int) -> _FileImage:
    """One PNG/JPEG/TIFF/BMP file as a grayscale image at size x size."""
    colour = False
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
            colour = True
    return _FileImage(path, resize_image(a, size), native, colour=colour)


def _read_one(path: Path, size: int) -> _FileImage:
    if path.suffix.lower() not in IMAGE_SUFFIXES and dicom.looks_like_dicom(path):
        d = dicom.read_dicom(path, size)
        return _FileImage(path, d.image, d.native_shape, dicom=d)
    try:
        return _read_picture(path, size)
    except DataError:
        raise
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        raise DataError(f"{path}: cannot read as an image ({e})") from None


def read_folder(folder, size: int, drop_invalid: bool = False) -> RawImages:
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
    read = _read_all(folder, files, size, drop_invalid, notes)
    return _collect(folder, read, size, notes, f"{len(read)} image files under {folder.name}/")


def read_file(path, size: int) -> RawImages:
    """One picture or DICOM file as a set of one image (for ``inspect`` and ``export``)."""
    path = Path(path)
    return _collect(path.parent, [_read_one(path, size)], size, [], f"the image file {path.name}")


def _read_all(folder: Path, files: list[Path], size: int, drop_invalid: bool, notes: list):
    """Each readable file, read in threads; unreadable ones stop the load or are counted."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(_read_one, p, size) for p in files]
        results, skipped = [], []
        for fut in futures:
            try:
                results.append(fut.result())
            except DataError as e:
                if not drop_invalid:
                    raise DataError(f"{e} ({DROP_HINT})") from None
                skipped.append(str(e))
    if skipped:
        n = len(skipped)
        what = "file that is not a usable image" if n == 1 else "files that are not usable images"
        notes.append(f"left out {n} {what} (first: {skipped[0]})")
    if not results:
        raise DataError(f"{folder}: none of the {len(files)} image files could be read")
    return results


def _collect(root: Path, read: list[_FileImage], size: int, notes: list, what: str) -> RawImages:
    """The images, ids, labels, split and patients of files read under ``root``."""
    images = [r.image for r in read]
    shapes = {tuple(r.native_shape) for r in read}
    dtypes = sorted({str(im.dtype) for im in images})
    stored = sorted({r.dicom.dtype if r.dicom else str(r.image.dtype) for r in read})
    if len(dtypes) > 1:
        notes.append(
            f"images of different types ({', '.join(dtypes)}) stored as float32; each keeps "
            "its own value scale, so consider --normalize per-image"
        )
        images = [im.astype(np.float32) for im in images]
    if any(r.colour for r in read):
        notes.append("colour images converted to grayscale (BT.601 luminance)")
    dicoms = [r.dicom for r in read if r.dicom is not None]
    if dicoms:
        notes.append(dicom.describe(dicoms))
    rel = [r.path.relative_to(root) for r in read]
    labels, source_split = _from_folder_names(rel, notes)
    keys = [r.dicom.patient if r.dicom else None for r in read]
    groups = np.asarray(keys) if all(keys) and len(set(keys)) < len(keys) else None
    if len(shapes) == 1 and shapes != {(size, size)}:
        (h, w), how = next(iter(shapes)), "down" if max(next(iter(shapes))) > size else "up"
        kept = "" if h == w else ", aspect ratio not kept"
        notes.append(f"resized {h}x{w} -> {size}x{size} (antialiased bicubic, {how}sampling{kept})")
    elif len(shapes) > 1:
        hs, ws = [s[0] for s in shapes], [s[1] for s in shapes]
        notes.append(
            f"resized from {min(hs)}-{max(hs)} x {min(ws)}-{max(ws)} px to {size}x{size} "
            "(antialiased bicubic, aspect ratio not kept)"
        )
    per_image = {"ids": np.asarray([r.as_posix() for r in rel])}
    if labels is not None:
        per_image["labels"] = labels
    kinds = {"DICOM": len(dicoms), "picture": len(read) - len(dicoms)}
    return RawImages(
        images=np.stack(images),
        per_image=per_image,
        reading=what + " (" + ", ".join(f"{v} {k}" for k, v in kinds.items() if v) + ")",
        native_shape=shapes.pop() if len(shapes) == 1 else (),
        source_dtype=stored[0] if len(stored) == 1 else "mixed",
        source_split=source_split,
        groups=groups,
        notes=notes,
    )


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
