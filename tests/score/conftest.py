"""A small trained and analysed run to score with, shared and read-only: every test that
scores writes into a folder of its own."""

import numpy as np
import pytest

from cxrvae.cli import main
from cxrvae.data.synthetic import synthetic_xrays

OPTS = ["--image-size", "32", "--latent-dims", "2", "4", "--widths", "8", "16", "32",
        "--epochs", "8", "--batch-size", "16", "--lr", "3e-3", "--device", "cpu",
        "--n-samples", "80", "--perplexity", "10", "-q"]  # fmt: skip


@pytest.fixture(scope="session")
def scoring_run(tmp_path_factory):
    """(folder of the training npz, the run folder): 200 synthetic X-rays of 32 px."""
    tmp = tmp_path_factory.mktemp("scoring")
    images, labels = synthetic_xrays(n=200, size=32, seed=11)
    np.savez(tmp / "train.npz", images=images, labels=labels,
             label_names=np.array(["normal", "pneumonia"]))  # fmt: skip
    assert main(["run", str(tmp / "train.npz"), "--out", str(tmp / "run"), *OPTS]) == 0
    return tmp, tmp / "run"


@pytest.fixture
def new_images(tmp_path):
    """``new_images(images, name)``: an npz of uint8 images (n, 32, 32) in tmp_path."""

    def write(images, name="new.npz", **arrays):
        path = tmp_path / name
        np.savez(path, images=images, **arrays)
        return path

    return write
