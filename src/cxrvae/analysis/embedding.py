"""What the explorer shows of one model, saved as ``latent_<k>/embedding.npz``: the analysed
sample's codes, maps, clusters, reconstructions and their errors, its nearest neighbours in
latent space, the interpolations, images decoded on a grid over the PCA map (decode anywhere),
and traversals of the most used dimensions around a few chosen images.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from ..atomic import save_npz
from ..data.xray import as_uint8
from . import evidence as ev
from . import latent as lt
from .paths import Paths
from .sampling import THUMBNAIL, Sample
from .structure import Clustering, Maps

GRID = 20  # decode anywhere: a GRID x GRID grid of points over the PCA map
GRID_PAD = 0.05  # the grid reaches this share of the map's extent beyond its points
N_NEIGHBOURS = 8  # nearest neighbours in latent space listed for each image
TRAVERSAL_DIMS = 6  # the most used dimensions the explorer traverses
TRAVERSAL_ANCHORS = 5  # images traversed around: the most typical, then cluster medoids
TRAVERSAL_STEPS = np.linspace(-3.0, 3.0, 13)  # in SDs of each dimension's means


def save_embedding(path, model, s: Sample, mu, maps: Maps, clustering: Clustering, paths: Paths):
    """Write everything the explorer shows of one model to ``path`` (an npz)."""
    its = paths.interpolations
    axes = list(its)
    recon, bce = lt.reconstruct_scored(model, s.data, s.sample_idx)  # decoded from the means
    error = bce - ev.binary_entropy(s.data.normalized(s.sample_idx))
    neighbours, distance = nearest_neighbours(mu)
    save_npz(
        path,
        compressed=True,
        sample_idx=np.asarray(s.sample_idx),
        mu=mu.astype(np.float32),
        pca=maps.pca.astype(np.float32),
        tsne=maps.tsne.astype(np.float32),
        clusters=clustering.clusters.astype(np.int64),
        recon=as_uint8(recon, THUMBNAIL),
        error=error.astype(np.float32),
        neighbours=neighbours.astype(np.int32),
        neighbour_distances=distance.astype(np.float32),
        axes=np.asarray(axes),
        axis_labels=np.asarray([its[a].label for a in axes]),
        t=np.stack([its[a].t for a in axes]).astype(np.float32),
        frames=np.stack([as_uint8(its[a].images, THUMBNAIL) for a in axes]),
        endpoints=np.asarray([its[a].endpoints for a in axes]),
        **decoded_grid(model, maps),
        **traversals(model, mu, paths.kl_per_dim, clustering),
    )


def nearest_neighbours(mu: np.ndarray, k: int = N_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each image's ``k`` nearest others in latent space (scikit-learn's exact search on the
    means (n, D)) and their Euclidean distances, nearest first: (n, k) rows, (n, k)."""
    k = min(k, len(mu) - 1)
    distance, rows = NearestNeighbors(n_neighbors=k + 1).fit(mu).kneighbors(mu)
    # Drop the image itself (an identical twin may come first, so find it by index).
    keep = rows != np.arange(len(mu))[:, None]
    keep[keep.all(1), -1] = False
    return rows[keep].reshape(len(mu), k), distance[keep].reshape(len(mu), k)


def decoded_grid(model, maps: Maps) -> dict[str, np.ndarray]:
    """The images decoded at a ``GRID`` x ``GRID`` grid over the PCA map: each point (x, y)
    mapped back to latent space through the map's PCA (the other components at the mean).

    Returns ``grid_x``, ``grid_y`` (GRID,) the coordinates, ``grid_z`` (GRID * GRID, D) the
    codes (row-major: y outer, x inner) and ``grid`` (GRID * GRID, s, s) uint8 the images.
    """
    pca = maps.projection
    axes = []
    for c in (0, 1):
        lo, hi = maps.pca[:, c].min(), maps.pca[:, c].max()
        pad = GRID_PAD * (hi - lo)
        axes.append(np.linspace(lo - pad, hi + pad, GRID))
    xx, yy = np.meshgrid(*axes)  # (GRID, GRID), y outer
    z = pca.mean_ + xx.reshape(-1, 1) * pca.components_[0] + yy.reshape(-1, 1) * pca.components_[1]
    z = z.astype(np.float32)
    return {
        "grid_x": axes[0].astype(np.float32),
        "grid_y": axes[1].astype(np.float32),
        "grid_z": z,
        "grid": as_uint8(lt.decode(model, z), THUMBNAIL),
    }


def traversals(model, mu, kl_per_dim, clustering: Clustering) -> dict[str, np.ndarray]:
    """The most used dimensions moved one at a time around a few images: the most typical
    sampled image and the medoids of the largest clusters.

    Returns ``traversal_dims`` (R,), ``traversal_kl`` (R,), ``traversal_anchors`` (A,) rows of
    the sample, ``traversal_sd`` (R,), ``traversal_steps`` (C,) in SDs, and
    ``traversal_frames`` (A, R, C, s, s) uint8.
    """
    dims = np.argsort(np.asarray(kl_per_dim, dtype=np.float64))[::-1][:TRAVERSAL_DIMS]
    sd = mu[:, dims].std(0)
    anchors = [int(np.argmin(((mu - mu.mean(0)) ** 2).sum(1)))]  # the most typical
    for c in range(clustering.n_clusters):
        members = np.flatnonzero(clustering.clusters == c)
        if len(anchors) >= TRAVERSAL_ANCHORS or not len(members):
            break
        centre = mu[members].mean(0)
        medoid = int(members[np.argmin(((mu[members] - centre) ** 2).sum(1))])
        if medoid not in anchors:
            anchors.append(medoid)
    frames = np.stack(
        [lt.traverse(model, mu[a], dims, sd, TRAVERSAL_STEPS) for a in anchors]
    )  # (A, R, C, H, W)
    a, r, c = frames.shape[:3]
    images = as_uint8(frames.reshape(-1, *frames.shape[3:]), THUMBNAIL)
    return {
        "traversal_dims": dims.astype(np.int64),
        "traversal_kl": np.asarray(kl_per_dim, dtype=np.float32)[dims],
        "traversal_anchors": np.asarray(anchors, dtype=np.int64),
        "traversal_sd": sd.astype(np.float32),
        "traversal_steps": TRAVERSAL_STEPS.astype(np.float32),
        "traversal_frames": images.reshape(a, r, c, *images.shape[1:]),
    }
