"""The analysis step of a study: for each trained model, reconstructions, clusters, maps and
interpolations of one shared sample of training images, and how the models compare.

Every figure goes where :mod:`cxrvae.layout` says; every number into a
:class:`~cxrvae.results.ModelAnalysis` or :class:`~cxrvae.results.Comparison`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from . import evidence as ev
from . import latent as lt
from .config import RunConfig
from .data import XrayData, as_uint8
from .figures import (
    plot_cluster_gallery,
    plot_error_distribution,
    plot_image_grid,
    plot_interpolation,
    plot_maps,
    plot_reconstructions,
    plot_silhouette,
    save_figure,
)
from .files import save_npz
from .layout import EMBEDDING, FIGURES, SAMPLE, model_dir
from .results import Comparison, ModelAnalysis, PathSummary, Spread
from .seeding import derive_seed

log = logging.getLogger(__name__)

GALLERY_SIZE = 8  # images per cluster, and worst reconstructions shown
N_GENERATED = 16  # images decoded from the prior
RECON_BATCH = 512  # test images reconstructed and scored at a time
THUMBNAIL = 64  # px: the explorer's images (larger models' images are shrunk to this)
CLUSTER_FEATURES = ("brightness", "contrast", "edge_energy")  # averaged per cluster
PATH_FEATURES = (*CLUSTER_FEATURES, "lr_asymmetry", "centre_brightness")  # along each path


@dataclass
class Sample:
    """What every model's analysis shares: the data, the run's settings and the images used.

    ``sample_idx`` are the analysed training images, ``recon_idx`` the test images shown
    reconstructed, ``features`` the :func:`latent.image_features` of the sample's images.
    """

    data: XrayData
    cfg: RunConfig
    out: Path
    sample_idx: np.ndarray
    test_idx: np.ndarray
    recon_idx: np.ndarray
    features: dict[str, np.ndarray]
    thumbnails: np.ndarray  # (n_samples, s, s) uint8, at most THUMBNAIL px
    note: str

    @property
    def labels(self) -> np.ndarray | None:
        """The sample's labels, when the set has labels."""
        return None if self.data.labels is None else self.data.labels[self.sample_idx]

    @property
    def spread(self) -> dict[str, float]:
        """Standard deviation of each image feature across the sample."""
        return {f: float(v.std()) for f, v in self.features.items()}


@dataclass
class AnalysedModel:
    """One model's analysis, and the arrays that the comparison between models needs."""

    metrics: ModelAnalysis
    mu: np.ndarray  # (n_samples, latent_dim) posterior means of the sample
    clusters: np.ndarray  # (n_samples,)
    recon: np.ndarray  # (n_reconstructions, H, W) the shared test images, reconstructed
    bce_above_floor: np.ndarray  # (n_test,)


def draw_sample(data: XrayData, cfg: RunConfig, out, train_idx, test_idx) -> Sample:
    """Draw the seeded sample every model is analysed on, and save it to ``sample.npz``."""
    a = cfg.analysis
    recon_idx = lt.sample_indices(
        test_idx, a.n_reconstructions, derive_seed(cfg.seed, "reconstructions")
    )
    sample_idx = lt.sample_indices(train_idx, a.n_samples, derive_seed(cfg.seed, "sample"))
    note = (
        f"all {len(sample_idx)} training images encoded (fewer than {a.n_samples})"
        if len(sample_idx) < a.n_samples
        else f"{len(sample_idx)} of {len(train_idx)} training images encoded"
    )
    if len(recon_idx) < a.n_reconstructions:
        note += (
            f"; reconstructions show all {len(recon_idx)} test images (fewer than "
            f"{a.n_reconstructions})"
        )
    images = data.normalized(sample_idx)
    sample = Sample(
        data,
        cfg,
        Path(out),
        sample_idx,
        test_idx,
        recon_idx,
        lt.image_features(images),
        as_uint8(images, THUMBNAIL),
        note,
    )
    labels = sample.labels
    save_npz(
        sample.out / SAMPLE,
        compressed=True,
        sample_idx=np.asarray(sample_idx),
        images=sample.thumbnails,
        labels=np.full(len(sample_idx), -1) if labels is None else labels,
        label_names=np.asarray(data.label_names or [], dtype=str),
    )
    return sample


def _reconstruction_step(model, s: Sample, latent_dim: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Reconstruction quality over the whole test set, streamed; figures of the shown test
    images and of the worst. Returns (metrics fields, shown reconstructions, BCE above floor)."""
    data, name = s.data, f"Latent {latent_dim}"
    parts = []
    for start in range(0, len(s.test_idx), RECON_BATCH):
        idx = s.test_idx[start : start + RECON_BATCH]
        x_hat, bce = lt.reconstruct_scored(model, data, idx)
        parts.append(ev.reconstruction_quality(data.normalized(idx), x_hat, bce))
    quality = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    recon = lt.reconstruct(model, data, s.recon_idx)
    save_figure(
        plot_reconstructions(
            data.normalized(s.recon_idx),
            {name.lower(): recon},
            f"{name}: test images (top) and reconstructions (bottom)",
        ),
        FIGURES["reconstructions"].file(s.out, latent_dim=latent_dim),
    )
    worst = s.test_idx[np.argsort(quality["bce_above_floor"])[::-1][:GALLERY_SIZE]]
    save_figure(
        plot_reconstructions(
            data.normalized(worst),
            {name.lower(): lt.reconstruct(model, data, worst)},
            f"{name}: the {len(worst)} worst-reconstructed test images (largest BCE above "
            "its floor)",
        ),
        FIGURES["worst_reconstructions"].file(s.out, latent_dim=latent_dim),
    )
    fields = {f"test_{k}": Spread(**ev.summarize(v)) for k, v in quality.items()}
    return fields, recon, quality["bce_above_floor"]


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


def _cluster_step(mu, s: Sample, latent_dim: int) -> tuple[dict, np.ndarray]:
    """K-means and its galleries; returns (metrics fields, cluster of each sampled image)."""
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
    fields = {
        "n_clusters": int(n_clusters),
        "silhouette": {str(n): v for n, v in curve.items()},
        "cluster_sizes": sizes.tolist(),
        "cluster_features": [
            {f: float(s.features[f][clusters == c].mean()) for f in CLUSTER_FEATURES}
            for c in range(n_clusters)
        ],
    }
    if curve:
        fields["silhouette_chosen"] = curve[n_clusters]
    labels = s.labels
    if labels is not None:
        fields["label_share_per_cluster"] = [
            {
                n: float(np.mean(labels[clusters == c] == j))
                for j, n in enumerate(s.data.label_names)
            }
            for c in range(n_clusters)
        ]
        fields.update(ev.cluster_label_agreement(clusters, labels))
    return fields, clusters


def _map_step(mu, clusters, s: Sample, latent_dim: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """PCA and t-SNE maps coloured by cluster (and label); returns (fields, pca, tsne)."""
    seed, name = s.cfg.seed, f"Latent {latent_dim}"
    n_clusters = int(clusters.max()) + 1
    pca_xy, evr = lt.pca(mu, derive_seed(seed, "pca"))
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
    fields = {
        "pca_explained_variance": evr.tolist(),
        "trustworthiness": {
            "pca": ev.map_trustworthiness(mu, pca_xy),
            "tsne": ev.map_trustworthiness(mu, tsne_xy),
        },
    }
    labels = s.labels
    if labels is not None:
        save_figure(
            plot_maps(
                pca_xy,
                tsne_xy,
                labels,
                s.data.label_names,
                f"{name}: the same maps coloured by label",
                evr,
            ),
            FIGURES["maps_labels"].file(s.out, latent_dim=latent_dim),
        )
    if ev.usable_labels(labels):
        es = derive_seed(seed, "evidence")
        fields["knn_accuracy"] = {
            "latent": ev.knn_accuracy(mu, labels, es),
            "pca": ev.knn_accuracy(pca_xy, labels, es),
            "tsne": ev.knn_accuracy(tsne_xy, labels, es),
        }
        fields["probe_auc"] = ev.probe_auc(mu, labels, es)
    return fields, pca_xy, tsne_xy


def axis_label(axis: str, evr) -> str:
    """How figures and the report name an interpolation axis."""
    if axis.startswith("pca"):
        i = int(axis[-1]) - 1
        return f"PCA {i + 1} ({100 * evr[i]:.1f}% of variance)"
    if axis.startswith("tsne"):
        return f"t-SNE {axis[-1]}"
    return f"latent dimension {axis[1:]} (largest mean KL)"


def _interpolation_step(model, mu, logvar, pca_xy, tsne_xy, evr, s: Sample, latent_dim: int):
    """Interpolations along PCA1/2, t-SNE1/2 and the most used latent dimension.

    Returns (metrics fields, {axis: latent.Interpolation}).
    """
    dim, kl_per_dim = lt.most_used_dim(mu, logvar)
    axes = {
        "pca1": pca_xy[:, 0],
        "pca2": pca_xy[:, 1],
        "tsne1": tsne_xy[:, 0],
        "tsne2": tsne_xy[:, 1],
        f"z{dim}": mu[:, dim],
    }
    spread = s.spread
    summaries, paths = {}, {}
    for axis, values in axes.items():
        label = axis_label(axis, evr)
        it = lt.interpolate_axis(
            model, s.data, s.sample_idx, values, axis, label, s.cfg.analysis.n_between, spread
        )
        feats = lt.image_features(it.images)
        # Change from t = 0 in standard deviations of the feature across the sampled images.
        shown = {f: (feats[f] - feats[f][0]) / max(spread[f], 1e-12) for f in PATH_FEATURES}
        save_figure(
            plot_interpolation(
                it.t,
                it.images,
                it.originals,
                it.reconstructions,
                f"Latent {latent_dim}: interpolation along {label}",
                ("lowest", "highest"),
                shown,
            ),
            FIGURES["interpolation"].file(s.out, latent_dim=latent_dim, axis=axis),
        )
        summaries[axis] = PathSummary(label=label, values=list(it.values), trends=it.trends)
        paths[axis] = it
    fields = {
        "kl_per_dim": kl_per_dim.tolist(),
        "active_units": int(np.sum(mu.var(0) > 0.01)),
        "interpolation_dim": dim,
        "interpolations": summaries,
    }
    return fields, paths


def _save_embedding(path, s: Sample, mu, pca_xy, tsne_xy, clusters, recon, paths) -> None:
    """What the explorer shows of one model: coordinates, clusters, images, interpolations."""
    axes = list(paths)
    save_npz(
        path,
        compressed=True,
        sample_idx=np.asarray(s.sample_idx),
        mu=mu.astype(np.float32),
        pca=pca_xy.astype(np.float32),
        tsne=tsne_xy.astype(np.float32),
        clusters=clusters.astype(np.int64),
        recon=as_uint8(recon, THUMBNAIL),
        axes=np.asarray(axes),
        axis_labels=np.asarray([paths[a].label for a in axes]),
        t=np.stack([paths[a].t for a in axes]).astype(np.float32),
        frames=np.stack([as_uint8(paths[a].images, THUMBNAIL) for a in axes]),
        endpoints=np.asarray([paths[a].endpoints for a in axes]),
    )


def analyze_model(model, s: Sample, latent_dim: int) -> AnalysedModel:
    """Reconstructions, clusters, maps, interpolations and samples of one model."""
    recon_fields, recon, above_floor = _reconstruction_step(model, s, latent_dim)
    mu, logvar = lt.encode(model, s.data, s.sample_idx)
    cluster_fields, clusters = _cluster_step(mu, s, latent_dim)
    map_fields, pca_xy, tsne_xy = _map_step(mu, clusters, s, latent_dim)
    evr = np.asarray(map_fields["pca_explained_variance"])
    path_fields, paths = _interpolation_step(model, mu, logvar, pca_xy, tsne_xy, evr, s, latent_dim)
    # The sample's reconstructions for the explorer: its means are already encoded.
    sample_recon = lt.decode(model, mu)
    embedding = model_dir(s.out, latent_dim) / EMBEDDING
    _save_embedding(embedding, s, mu, pca_xy, tsne_xy, clusters, sample_recon, paths)
    # Generation: decode codes drawn from the prior N(0, I).
    rng = np.random.default_rng(derive_seed(s.cfg.seed, f"generate-{latent_dim}"))
    z = rng.standard_normal((N_GENERATED, latent_dim)).astype(np.float32)
    save_figure(
        plot_image_grid(
            lt.decode(model, z),
            title=f"Latent {latent_dim}: {N_GENERATED} images decoded from random codes "
            "z ~ N(0, I)",
        ),
        FIGURES["samples"].file(s.out, latent_dim=latent_dim),
    )
    metrics = ModelAnalysis(
        n_samples=int(len(s.sample_idx)),
        **recon_fields,
        **cluster_fields,
        **map_fields,
        **path_fields,
    )
    return AnalysedModel(metrics, mu, clusters, recon, above_floor)


def compare_models(results: dict[int, AnalysedModel], s: Sample) -> Comparison:
    """How the models compare (clusterings, latent spaces), with the figures that show every
    model side by side."""
    save_figure(
        plot_reconstructions(
            s.data.normalized(s.recon_idx),
            {f"latent {d}": r.recon for d, r in results.items()},
            f"The same {len(s.recon_idx)} test images reconstructed by every model",
        ),
        FIGURES["reconstructions_comparison"].file(s.out),
    )
    save_figure(
        plot_error_distribution(
            {f"latent {d}": r.bce_above_floor for d, r in results.items()},
            "BCE above its floor (nats per image)",
        ),
        FIGURES["error_distribution"].file(s.out),
    )
    dims = list(results)
    pairs = [(a, b) for i, a in enumerate(dims) for b in dims[i + 1 :]]
    es = derive_seed(s.cfg.seed, "evidence")
    return Comparison(
        sample_note=s.note,
        n_samples=int(len(s.sample_idx)),
        ari={
            f"{a}-{b}": float(adjusted_rand_score(results[a].clusters, results[b].clusters))
            for a, b in pairs
        },
        linear_r2={
            f"{a}->{b}": ev.linear_r2(results[a].mu, results[b].mu, es)
            for a in dims
            for b in dims
            if a != b
        },
        config=s.cfg.to_dict()["analysis"],
    )
