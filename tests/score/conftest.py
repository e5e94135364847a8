"""New images to score, written by the test (the run they are scored with is the shared
``scoring_run``)."""

import numpy as np
import pytest


@pytest.fixture
def new_images(tmp_path):
    """``new_images(images, name)``: an npz of uint8 images (n, 32, 32) in tmp_path."""

    def write(images, name="new.npz", **arrays):
        path = tmp_path / name
        np.savez(path, images=images, **arrays)
        return path

    return write
