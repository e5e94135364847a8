"""Shared fixtures: tiny synthetic X-rays, npz files of them, and a tiny run configuration."""

import hashlib
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from hypothesis import settings

from cxrvae.config import RunConfig
from cxrvae.data.synthetic import synthetic_xrays

# The default suite fuzzes with a fixed, repeatable set of examples; HYPOTHESIS_PROFILE=fuzz
# searches far more widely (run it when the loader changes).
settings.register_profile("default", max_examples=60, derandomize=True)
settings.register_profile("fuzz", max_examples=3000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The suite runs in one worker process per core (pytest-xdist, pyproject.toml): one torch
    # thread each, so that the workers share the cores instead of fighting over them.
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def xrays():
    """(images uint8 (96, 32, 32), labels (96,)) from a seeded generator."""
    return synthetic_xrays(n=96, size=32, seed=0)


@pytest.fixture
def npz_path(tmp_path, xrays):
    """An npz with images, labels, label names and patient-revealing ids."""
    images, labels = xrays
    ids = np.array([f"person{i // 2}_virus_{i}.jpeg" for i in range(len(images))])
    path = tmp_path / "xray_images.npz"
    np.savez(
        path, images=images, labels=labels, label_names=np.array(["normal", "pneumonia"]), ids=ids
    )
    return path


@pytest.fixture
def split_set(npz_path):
    """The npz of ``npz_path`` loaded at 32 px, and its seeded split: (data, train, test)."""
    from cxrvae.data.loader import load_npz
    from cxrvae.data.split import split_indices

    data = load_npz(npz_path, image_size=32)
    return (data, *split_indices(len(data), data.labels, data.groups, seed=0))


@pytest.fixture(scope="session")
def tiny_cli():
    """CLI options for two small models, two epochs, 32 px on the CPU, quiet."""
    return [
        "--image-size",
        "32",
        "--latent-dims",
        "2",
        "4",
        "--widths",
        "8",
        "16",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "-q",
    ]


@pytest.fixture
def tiny_config():
    """Two small models, two epochs, 32 px: seconds on a CPU."""
    return RunConfig().replace(
        data={"image_size": 32},
        model={"latent_dims": (2, 4), "widths": (8, 16, 32)},
        train={"epochs": 2, "batch_size": 16, "lr": 3e-3, "device": "cpu"},
        analysis={"n_samples": 60, "k_range": (2, 4), "n_init": 2, "perplexity": 10.0},
    )


@pytest.fixture
def error_line(capsys):
    """``error_line()``: what the command line printed on stderr, checked to be exactly one
    line ``cxrvae: error: ...``."""

    def read() -> str:
        err = capsys.readouterr().err
        assert re.fullmatch(r"cxrvae: error: [^\n]+\n", err), err
        return err

    return read


@pytest.fixture
def shared_npz():
    path = SHARED_DATA / "pediatric_cxr_64.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the shared data folder is absent)")
    return path


ANALYSIS = ["--n-samples", "60", "--perplexity", "10"]


def _digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@contextmanager
def built_once(tmp_path_factory, name: str):
    """A folder that the whole session builds once, however many worker processes it has.

    Yields ``(folder, build)``: ``build`` is true for the one process that must make what goes
    in it (the others wait on a lock meanwhile, then find it made). Without workers it is a
    folder of this session, built here.
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # shared by workers
    folder = root / f"shared-{name}"
    with FileLock(str(folder) + ".lock"):
        done = folder / ".built"
        build = not done.exists()
        if build:
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed halfway
            folder.mkdir()
        yield folder, build
        if build:
            done.touch()


@pytest.fixture(scope="session")
def study(tmp_path_factory, tiny_cli):
    """One finished `cxrvae run` on the synthetic set, shared by the tests (made once per
    session, whichever worker process needs it first), read-only.

    Returns (folder holding xray_images.npz, run folder). No test may change the run: a test
    that must (analyse it again, resume it, delete a file) takes ``study_copy``. When the
    session ends, the run is checked to be byte for byte as it was written.
    """
    with built_once(tmp_path_factory, "study") as (tmp, build):
        out = tmp / "run"
        if build:
            images, labels = synthetic_xrays(n=96, size=32, seed=0)
            ids = np.array([f"person{i // 2}_virus_{i}.jpeg" for i in range(len(images))])
            np.savez(tmp / "xray_images.npz", images=images, labels=labels, ids=ids,
                     label_names=np.array(["normal", "pneumonia"]))  # fmt: skip
            from cxrvae.cli import main

            data = str(tmp / "xray_images.npz")
            assert main(["run", data, "--out", str(out), *tiny_cli, *ANALYSIS]) == 0
    written = _digest(out)
    yield tmp, out
    assert _digest(out) == written, "a test changed the shared run (use study_copy)"


@pytest.fixture
def study_copy(study, tmp_path):
    """A copy of the shared run, for a test that changes it: (data folder, run folder)."""
    tmp, out = study
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return tmp, copy


SCORING_OPTS = ["--image-size", "32", "--latent-dims", "2", "4", "--widths", "8", "16", "32",
        "--epochs", "8", "--batch-size", "16", "--lr", "3e-3", "--device", "cpu",
        "--n-samples", "80", "--perplexity", "10", "-q"]  # fmt: skip


@pytest.fixture(scope="session")
def scoring_run(tmp_path_factory):
    """A small trained and analysed run to score with, shared and read-only (a test that scores
    writes into a folder of its own): (folder of the training npz, the run folder), 200 synthetic
    X-rays of 32 px."""
    from cxrvae.cli import main

    with built_once(tmp_path_factory, "scoring") as (tmp, build):
        if build:
            images, labels = synthetic_xrays(n=200, size=32, seed=11)
            np.savez(tmp / "train.npz", images=images, labels=labels,
                     label_names=np.array(["normal", "pneumonia"]))  # fmt: skip
            run = str(tmp / "run")
            assert main(["run", str(tmp / "train.npz"), "--out", run, *SCORING_OPTS]) == 0
    return tmp, tmp / "run"
