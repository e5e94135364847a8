"""What the explorer shows of a model: neighbours in latent space, the decoded grid over the PCA
map, the traversals."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from cxrvae.analysis import latent as lt
from cxrvae.analysis.embedding import (
    GRID,
    TRAVERSAL_STEPS,
    decoded_grid,
    nearest_neighbours,
    traversals,
)
from cxrvae.analysis.structure import Clustering, Maps
from cxrvae.data.xray import as_uint8
from cxrvae.seeding import derive_seed
from cxrvae.train.model import ConvVAE


@pytest.fixture
def codes():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(80, 6)) * [3, 2, 1, 0.5, 0.2, 0.1]).astype(np.float32)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ConvVAE(32, 6, (8, 16)).eval()


def test_neighbours_are_scikit_learns_without_the_image_itself(codes):
    rows, dist = nearest_neighbours(codes, k=5)
    d, r = NearestNeighbors(n_neighbors=6).fit(codes).kneighbors(codes)
    np.testing.assert_array_equal(rows, r[:, 1:])
    np.testing.assert_allclose(dist, d[:, 1:], rtol=1e-6)
    assert (rows != np.arange(len(codes))[:, None]).all()
    assert (np.diff(dist, axis=1) >= 0).all()  # nearest first


def test_an_identical_twin_is_a_neighbour_and_the_image_is_not(codes):
    codes = np.vstack([codes, codes[:1]])  # image 80 is a copy of image 0
    rows, dist = nearest_neighbours(codes, k=3)
    for i, twin in ((0, 80), (80, 0)):
        assert rows[i, 0] == twin and dist[i, 0] == 0
        assert i not in rows[i]


def test_the_grid_covers_the_map_and_maps_back_through_its_pca(codes, model):
    projection = lt.fit_pca(codes, derive_seed(0, "pca"))
    pca = projection.transform(codes)[:, :2]
    maps = Maps(pca=pca, tsne=pca, projection=projection, trustworthiness={})
    g = decoded_grid(model, maps)
    assert g["grid_x"].shape == g["grid_y"].shape == (GRID,)
    assert g["grid_z"].shape == (GRID * GRID, 6) and g["grid"].shape == (GRID * GRID, 32, 32)
    for c, axis in enumerate((g["grid_x"], g["grid_y"])):
        assert axis[0] < pca[:, c].min() and axis[-1] > pca[:, c].max()
        assert np.allclose(np.diff(axis), np.diff(axis)[0], rtol=1e-4)  # evenly spaced
    # Each grid code, projected with the map's PCA, lands on its grid point (y outer, x inner).
    xx, yy = np.meshgrid(g["grid_x"], g["grid_y"])
    back = lt.fit_pca(codes, derive_seed(0, "pca")).transform(g["grid_z"])
    np.testing.assert_allclose(back[:, 0], xx.ravel(), atol=1e-4)
    np.testing.assert_allclose(back[:, 1], yy.ravel(), atol=1e-4)
    # ... and its image is the decoder's output there.
    np.testing.assert_array_equal(
        g["grid"][[0, 57]], as_uint8(lt.decode(model, g["grid_z"][[0, 57]]))
    )
    assert g["grid"][0].tolist() != g["grid"][-1].tolist()


def test_traversals_move_the_most_used_dimensions_around_typical_images(codes, model):
    kl = np.array([0.1, 3.0, 0.5, 2.0, 0.01, 1.0])
    clusters = (codes[:, 0] > 0).astype(int)
    clustering = Clustering(clusters, 2, silhouette={}, sizes=[], features=[], separation={})
    t = traversals(model, codes, kl, clustering)
    np.testing.assert_array_equal(t["traversal_dims"][:3], [1, 3, 5])
    anchors = t["traversal_anchors"]
    assert anchors[0] == np.argmin(((codes - codes.mean(0)) ** 2).sum(1))
    assert len(set(anchors.tolist())) == len(anchors) <= 3
    assert t["traversal_frames"].shape == (len(anchors), 6, len(TRAVERSAL_STEPS), 32, 32)
    # The middle step (0 SD) is the anchor's own decoded code.
    middle = len(TRAVERSAL_STEPS) // 2
    own = as_uint8(lt.decode(model, codes[anchors]))
    for r in range(6):
        np.testing.assert_array_equal(t["traversal_frames"][:, r, middle], own)
