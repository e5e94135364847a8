"""The structure of one model's latent space: K-means clusters of the sample's means with their
galleries, and the PCA and t-SNE maps, with how faithful the maps are and, with labels, what
they say of the labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from ..data.xray import label_word
from ..figures.analysis import plot_cluster_gallery, plot_maps, plot_silhouette
from ..figures.common import save_figure
from ..outputs import FIGURES
from ..seeding import derive_seed
from . import evidence as ev
from . import latent as lt
from .sampling import Sample

log = logging.getLogger(__name__)

GALLERY_SIZE = 8  # images per cluster
CLUSTER_FEATURES = ("exposure", "contrast", "sharpness", "lung_opacity")  # averaged per cluster


@dataclass
class Clustering:
    """K-means on the sample's latent means.

    ``silhouette`` is the score of each K tried ({} when K was set); ``features`` the mean of
    each of :data:`CLUSTER_FEATURES` per cluster, and ``separation`` how far apart the
    clusters' means of each lie, in SDs across the sample. With labels, ``label_share`` is each
    label's share per cluster, and ``purity`` and ``nmi`` the agreement with the labels.
    """

    clusters: np.ndarray  # (n_samples,) the cluster of each sampled image
    n_clusters: int
    silhouette: dict[int, float]
    sizes: list[int]
    features: list[dict[str, float]]
    separation: dict[str, float]
    label_share: list[dict[str, float]] | None = None
    purity: float | None = None
    nmi: float | None = None

    @property
    def silhouette_chosen(self) -> float | None:
        """The silhouette of the K used, when the silhouette chose it."""
        return self.silhouette[self.n_clusters] if self.silhouette else None


@dataclass
class Maps:
    """The PCA and t-SNE maps (n_samples, 2) of the latent means and what they keep."""

    pca: np.ndarray
    tsne: np.ndarray
    projection: PCA  # the fitted PCA whose first two coordinates ``pca`` holds
    trustworthiness: dict[str, float]  # "pca", "tsne"
    knn_accuracy: dict[str, float] | None = None  # "latent", "pca", "tsne"
    probe_auc: float | None = None

    @property
    def explained_variance(self) -> np.ndarray:
        """(latent_dim,) the PCA's explained-variance ratios."""
        return self.projection.explained_variance_ratio_


def _choose_n_clusters(mu, s: Sample, latent_dim: int) -> tuple[int, dict[int, float]]:
    """K of K-means: the configured one, or the best silhouette (then drawn)."""
    a = s.cfg.analysis
    if a.n_clusters is not None:
        n_clusters = min(a.n_clusters, len(mu) - 1)
        if n_clusters < a.n_clusters:
            log.warning(
                "latent %d: %d clusters asked for %d images; using %d",
                latent_dim,
                a.n_clusters,
                len(mu),
                n_clusters,
            )
        return n_clusters, {}
    curve = lt.silhouette_curve(mu, a.k_range, derive_seed(s.cfg.seed, "kmeans"), a.n_init)
    n_clusters = max(curve, key=curve.get)
    save_figure(
        plot_silhouette(curve, n_clusters, f"Latent {latent_dim}: silhouette of K-means by K"),
        FIGURES["silhouette"].file(s.out, latent_dim=latent_dim),
    )
    return n_clusters, curve


def cluster_step(mu, s: Sample, latent_dim: int) -> Clustering:
    """K-means on the latent means ``mu`` (n_samples, D), and its galleries."""
    n_clusters, curve = _choose_n_clusters(mu, s, latent_dim)
    clusters = lt.kmeans(mu, n_clusters, derive_seed(s.cfg.seed, "kmeans"), s.cfg.analysis.n_init)
    sizes = np.bincount(clusters, minlength=n_clusters)
    rng = np.random.default_rng(derive_seed(s.cfg.seed, f"gallery-{latent_dim}"))
    galleries = []
    for c in range(n_clusters):
        members = np.flatnonzero(clusters == c)
        pick = np.sort(rng.choice(members, size=min(GALLERY_SIZE, len(members)), replace=False))
        galleries.append(s.data.normalized(s.sample_idx[pick]))
    save_figure(
        plot_cluster_gallery(
            galleries, sizes, f"Latent {latent_dim}: random members of each K-means cluster"
        ),
        FIGURES["clusters"].file(s.out, latent_dim=latent_dim),
    )
    means = [
        {f: float(s.features[f][clusters == c].mean()) for f in CLUSTER_FEATURES}
        for c in range(n_clusters)
    ]
    spread = s.spread
    result = Clustering(
        clusters=clusters,
        n_clusters=int(n_clusters),
        silhouette=curve,
        sizes=sizes.tolist(),
        features=means,
        separation={
            f: float((max(m[f] for m in means) - min(m[f] for m in means)) / max(spread[f], 1e-12))
            for f in CLUSTER_FEATURES
        },
    )
    labels = s.labels
    if labels is not None:
        result.label_share = [
            {
                n: float(np.mean(labels[clusters == c] == j))
                for j, n in enumerate(s.data.label_names)
            }
            for c in range(n_clusters)
        ]
        agreement = ev.cluster_label_agreement(clusters, labels)
        result.purity, result.nmi = agreement["purity"], agreement["nmi"]
    return result


def map_step(mu, clusters, s: Sample, latent_dim: int) -> Maps:
    """PCA and t-SNE maps of ``mu`` coloured by cluster (and label)."""
    seed, name = s.cfg.seed, f"Latent {latent_dim}"
    n_clusters = int(clusters.max()) + 1
    projection = lt.fit_pca(mu, derive_seed(seed, "pca"))
    pca_xy, evr = projection.transform(mu)[:, :2], projection.explained_variance_ratio_
    tsne_xy = lt.tsne(mu, s.cfg.analysis.perplexity, derive_seed(seed, "tsne"))
    save_figure(
        plot_maps(
            pca_xy,
            tsne_xy,
            clusters,
            [f"cluster {c}" for c in range(n_clusters)],
            f"{name}: {len(mu)} training images coloured by K-means cluster",
            evr,
        ),
        FIGURES["maps_clusters"].file(s.out, latent_dim=latent_dim),
    )
    maps = Maps(
        pca=pca_xy,
        tsne=tsne_xy,
        projection=projection,
        trustworthiness={
            "pca": ev.map_trustworthiness(mu, pca_xy),
            "tsne": ev.map_trustworthiness(mu, tsne_xy),
        },
    )
    labels = s.labels
    if labels is not None:
        save_figure(
            plot_maps(
                pca_xy,
                tsne_xy,
                labels,
                [label_word(n) for n in s.data.label_names],
                f"{name}: the same maps coloured by label",
                evr,
            ),
            FIGURES["maps_labels"].file(s.out, latent_dim=latent_dim),
        )
    if ev.usable_labels(labels):
        es = derive_seed(seed, "evidence")
        maps.knn_accuracy = {
            "latent": ev.knn_accuracy(mu, labels, es),
            "pca": ev.knn_accuracy(pca_xy, labels, es),
            "tsne": ev.knn_accuracy(tsne_xy, labels, es),
        }
        maps.probe_auc = ev.probe_auc(mu, labels, es)
    return maps
