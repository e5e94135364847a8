"""Chest X-ray sets by name: ``sample``, the 480 images that cxrvae ships (no network), and
MedMNIST's PneumoniaMNIST and ChestMNIST, downloaded once with pooch, checked against the
published md5, and cached.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests

from ..errors import DataError

log = logging.getLogger(__name__)

SAMPLE = "sample"  # the DATA name of the packaged sample
SAMPLE_FILE = "pediatric_cxr_sample.npz"
SAMPLE_CREDIT = (
    "the sample that cxrvae ships: 480 of the pediatric chest X-rays of Kermany, Zhang and "
    "Goldbaum (2018), Mendeley Data v2, doi:10.17632/rscbjbr9sx.2, licensed CC BY 4.0"
)


def sample_path() -> Path:
    """The packaged sample: 480 pediatric chest X-rays at 64 px, labelled normal/pneumonia
    (Kermany et al. 2018, CC BY 4.0; see ``cxrvae/data/samples/README.md``)."""
    return Path(str(importlib.resources.files("cxrvae.data") / "samples" / SAMPLE_FILE))


MEDMNIST_URL = "https://zenodo.org/records/10519652/files/"  # MedMNIST+ (v3), all sizes


@dataclass(frozen=True)
class NamedSet:
    """A public chest X-ray set that cxrvae downloads by name."""

    name: str
    md5: dict  # file size (px) -> md5 that MedMNIST publishes in medmnist/info.py
    label_names: tuple

    def file_name(self, size: int) -> str:
        return f"{self.name}.npz" if size == 28 else f"{self.name}_{size}.npz"


DATASETS = {
    s.name: s
    for s in (
        NamedSet(
            "pneumoniamnist",
            {
                28: "28209eda62fecd6e6a2d98b1501bb15f",
                64: "8f4eceb4ccffa70c672198ea285246c6",
                128: "05b46931834c231683c68f40c47b2971",
                224: "d6a3c71de1b945ea11211b03746c1fe1",
            },
            ("normal", "pneumonia"),
        ),
        NamedSet(
            "chestmnist",
            {
                28: "02c8a6516a18b556561a56cbdd36c4a8",
                64: "9de6cd0b934ebb5b7426cfba5efbae16",
                128: "db107e5590b27930b62dbaf558aebee3",
                224: "45bd33e6f06c3e8cdb481c74a89152aa",
            },
            (
                "atelectasis",
                "cardiomegaly",
                "effusion",
                "infiltration",
                "mass",
                "nodule",
                "pneumonia",
                "pneumothorax",
                "consolidation",
                "edema",
                "emphysema",
                "fibrosis",
                "pleural",
                "hernia",
            ),
        ),
    )
}


def parse_dataset(spec: str) -> tuple[NamedSet, int | None] | None:
    """``"pneumoniamnist"`` or ``"chestmnist:128"`` -> (set, size or None); None otherwise.

    Raises
    ------
    DataError
        For a known name with a size MedMNIST does not publish.
    """
    name, _, size = str(spec).strip().lower().partition(":")
    if name not in DATASETS:
        return None
    ds = DATASETS[name]
    if not size:
        return ds, None
    if not size.isdigit() or int(size) not in ds.md5:
        raise DataError(
            f"{spec}: {name} comes in sizes {', '.join(map(str, ds.md5))}; "
            f"write e.g. {name}:{max(s for s in ds.md5 if s <= 128)}"
        )
    return ds, int(size)


def nearest_file_size(ds: NamedSet, image_size: int) -> int:
    """The published size to fetch for models of ``image_size`` px (closest; larger on ties)."""
    return min(ds.md5, key=lambda s: (abs(s - image_size), -s))


def cache_dir() -> Path:
    """Where downloads are kept: ``$CXRVAE_CACHE``, else the user cache folder."""
    env = os.environ.get("CXRVAE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(pooch.os_cache("cxrvae"))


def dataset_url() -> str:
    """Base URL of the named sets: ``$CXRVAE_DATASET_URL``, else MedMNIST's Zenodo record."""
    url = os.environ.get("CXRVAE_DATASET_URL") or MEDMNIST_URL
    return url if url.endswith("/") else url + "/"


def fetch(ds: NamedSet, size: int) -> Path:
    """The cached file of ``ds`` at ``size`` px, downloaded and md5-checked on first use."""
    fname = ds.file_name(size)
    url = dataset_url() + fname
    folder = cache_dir()
    cached = folder / fname
    if cached.exists() and _md5(cached) == ds.md5[size]:
        return cached
    log.info("downloading %s to %s (once; later runs use the cached file)", url, folder)
    pooch.get_logger().setLevel(logging.WARNING)  # the line above says it already
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # pooch writes to a temporary file and moves it into place only if the md5 matches.
        path = pooch.retrieve(
            url,
            known_hash=f"md5:{ds.md5[size]}",
            fname=fname,
            path=folder,
            progressbar=sys.stderr.isatty(),
        )
    except ValueError as e:
        if "hash" not in str(e).lower():
            raise
        raise DataError(
            f"{url}: the download does not match the md5 that MedMNIST publishes "
            f"({ds.md5[size]}); nothing was kept in {folder}"
        ) from None
    except requests.exceptions.RequestException as e:
        reason = type(e).__name__
        if isinstance(e, requests.exceptions.HTTPError) and e.response is not None:
            reason = f"HTTP {e.response.status_code}"
        raise DataError(
            f"{url}: cannot download ({reason}); check the network, or download "
            f"{fname} yourself and give its path instead of {ds.name}"
        ) from None
    return Path(path)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
