"""Loading any source into an XrayData: resizing, normalisation, NaN images, memory-mapped
npy files, the packaged sample and the real shared set."""

import numpy as np
import pytest
import torch

from cxrvae.data.catalog import sample_path
from cxrvae.data.loader import load, load_npz
from cxrvae.data.split import split_indices
from cxrvae.train.loop import DeviceData


@pytest.mark.parametrize("shape", [(40, 48), (64, 64), (20, 20)])
def test_load_npz_resizes_to_image_size(tmp_path, shape):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, *shape), dtype=np.uint8)
    np.savez(tmp_path / "r.npz", images=images)
    data = load_npz(tmp_path / "r.npz", image_size=32)
    assert data.images.shape == (10, 32, 32)
    got = data.normalized(np.arange(10))
    assert got.min() >= 0.0 and got.max() <= 1.0
    assert any("resized" in n for n in data.notes)


def test_load_npz_per_image_normalisation(tmp_path, xrays):
    images = xrays[0].copy()
    images[0] = 7  # a constant image maps to zeros and is counted
    np.savez(tmp_path / "p.npz", images=images)
    data = load_npz(tmp_path / "p.npz", image_size=32, normalize="per-image")
    x = data.normalized(np.arange(len(data)))
    assert np.all(x[0] == 0)
    np.testing.assert_allclose(x[1:].min((1, 2)), 0.0)
    np.testing.assert_allclose(x[1:].max((1, 2)), 1.0)
    assert data.summary().n_constant_images == 1


def test_real_data_loads_with_patients(shared_npz):
    data = load_npz(shared_npz)
    assert len(data) == 5840 and data.images.dtype == np.uint8
    assert data.label_names == ["normal", "pneumonia"]
    train, test = split_indices(len(data), data.labels, data.groups, seed=0)
    assert not set(data.groups[train]) & set(data.groups[test])


def test_npy_is_memory_mapped_and_shared_with_training(tmp_path, xrays):
    np.save(tmp_path / "x.npy", xrays[0])
    data = load(tmp_path / "x.npy", image_size=32)
    assert isinstance(data.images, np.memmap) and data.images.dtype == np.uint8
    dd = DeviceData.from_data(data, torch.device("cpu"))
    assert dd.images.data_ptr() == data.images.ctypes.data  # no copy of the set
    idx = torch.tensor([3, 7])
    np.testing.assert_allclose(dd.batch(idx)[:, 0].numpy(), data.normalized([3, 7]), atol=1e-6)


def test_the_packaged_sample_loads_by_name_with_labels_and_patients():
    import cxrvae

    assert sample_path().stat().st_size <= 2_000_000
    data = cxrvae.load("sample")
    assert len(data) == 480 and data.images.shape[1:] == (64, 64)
    assert data.label_names == ["normal", "pneumonia"]
    assert np.bincount(data.labels).tolist() == [240, 240]
    assert data.groups is not None and len(np.unique(data.groups)) == 326
    assert (sample_path().parent / "README.md").read_text().count("CC BY 4.0") >= 1
