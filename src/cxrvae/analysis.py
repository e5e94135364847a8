"""The analysis step of a study, model by model: reconstructions, the linear baseline and the
likelihood, clusters, maps, interpolations (with what a label probe says along them) and a
traversal of the most used latent dimensions, all on the shared :class:`~cxrvae.sampling.Sample`.

Every figure goes where :mod:`cxrvae.layout` says; every number into a
:class:`~cxrvae.results.ModelAnalysis`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import evidence as ev
from . import latent as lt
from .data import as_uint8
from .features import NAMES as PATH_FEATURES
from .figures import (
    plot_cluster_gallery,
    plot_image_grid,
    plot_interpolation,
    plot_maps,
    plot_path_probability,
    plot_reconstructions,
    plot_silhouette,
    plot_traversal,
    save_figure,
)
from .files import save_npz
from .layout import EMBEDDING, FIGURES, model_dir
from .results import (
    LinearBaseline,
    LogLikelihood,
    ModelAnalysis,
    PathSummary,
    ProbePath,
    Spread,
    Traversal,
)
from .sampling import THUMBNAIL, Sample
from .seeding import derive_seed

log = logging.getLogger(__name__)

GALLERY_SIZE = 8  # images per cluster, and worst reconstructions shown
N_GENERATED = 16  # images decoded from the prior
RECON_BATCH = 512  # test images reconstructed and scored at a time
CLUSTER_FEATURES = ("exposure", "contrast", "sharpness", "lung_opacity")  # averaged per cluster
SHOWN_FEATURES = 4  # features drawn under each interpolation: those that change most
TRAVERSAL_STEPS = 7  # columns of the traversal grid, from -traversal_sd to +traversal_sd


@dataclass
class AnalysedModel:
    """One model's analysis, and the arrays that the comparison between models needs."""

    metrics: ModelAnalysis
    mu: np.ndarray  # (n_samples, latent_dim) posterior means of the sample
    clusters: np.ndarray  # (n_samples,)
    recon: np.ndarray  # (n_reconstructions, H, W) the shared test images, reconstructed
    bce_above_floor: np.ndarray  # (n_test,)


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
    means = [
        {f: float(s.features[f][clusters == c].mean()) for f in CLUSTER_FEATURES}
        for c in range(n_clusters)
    ]
    spread = s.spread
    separation = {
        f: float((max(m[f] for m in means) - min(m[f] for m in means)) / max(spread[f], 1e-12))
        for f in CLUSTER_FEATURES
    }
    fields = {
        "n_clusters": int(n_clusters),
        "silhouette": {str(n): v for n, v in curve.items()},
        "cluster_sizes": sizes.tolist(),
        "cluster_features": means,
        "cluster_separation": separation,
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
        "pca_variance_2d": float(evr[:2].sum()),
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
        feats = it.features
        # Change from t = 0 in standard deviations of the feature across the sampled images,
        # for the features that change most along this path.
        most = sorted(PATH_FEATURES, key=lambda f: -abs(it.trends[f].effect))[:SHOWN_FEATURES]
        shown = {f: (feats[f] - feats[f][0]) / max(spread[f], 1e-12) for f in most}
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
    kl = np.sort(kl_per_dim)[::-1]
    fields = {
        "kl_per_dim": kl_per_dim.tolist(),
        "active_units": int(np.sum(mu.var(0) > ev.ACTIVE_VARIANCE)),
        "kl_dims_used": int(np.sum(kl_per_dim > ev.USED_KL)),
        "kl_top2_share": float(kl[:2].sum() / max(kl.sum(), 1e-12)),
        "interpolation_dim": dim,
        "interpolations": summaries,
    }
    return fields, paths


def _probe_step(model, mu, paths, summaries, s: Sample, latent_dim: int) -> None:
    """Each decoded frame of every path encoded again and given to a label probe fitted on the
    sample's means: the probability of one label along t (into ``summaries``, and a figure)."""
    labels = s.labels
    if not ev.usable_labels(labels):
        return
    probe = ev.fit_probe(mu, labels, derive_seed(s.cfg.seed, "evidence"))
    probs = {a: probe.predict_proba(lt.encode_images(model, it.images)) for a, it in paths.items()}
    classes = list(probe.classes_)
    # Two labels: the second (e.g. pneumonia); more: the label that changes most along the paths.
    col = (
        1
        if len(classes) == 2
        else int(np.argmax(sum(np.abs(p[-1] - p[0]) for p in probs.values())))
    )
    name = s.data.label_names[classes[col]]
    for axis, p in probs.items():
        summaries[axis].probe = ProbePath(label=name, probability=[float(v) for v in p[:, col]])
    t = next(iter(paths.values())).t
    save_figure(
        plot_path_probability(
            t,
            {paths[a].label: p[:, col] for a, p in probs.items()},
            name,
            f"Latent {latent_dim}: the label probe along each interpolation",
        ),
        FIGURES["path_probability"].file(s.out, latent_dim=latent_dim),
    )


def _baseline_step(model_bce_above: np.ndarray, s: Sample, latent_dim: int) -> LinearBaseline:
    """PCA with ``latent_dim`` components reconstructing the test set, against the model."""
    k = min(latent_dim, s.baseline.n_components_)
    parts = []
    for start in range(0, len(s.test_idx), RECON_BATCH):
        x = s.data.normalized(s.test_idx[start : start + RECON_BATCH])
        flat = x.reshape(len(x), -1).astype(np.float64)
        x_hat = ev.linear_reconstruction(s.baseline, flat, k)
        parts.append(ev.linear_quality(flat, x_hat, x.shape[1:]))
    above = float(np.concatenate([p["bce_above_floor"] for p in parts]).mean())
    return LinearBaseline(
        n_components=int(k),
        n_fit=s.n_fit,
        bce_above_floor=above,
        ssim=float(np.concatenate([p["ssim"] for p in parts]).mean()),
        error_removed=float(1 - model_bce_above.mean() / max(above, 1e-12)),
    )


def _likelihood_step(model, s: Sample, latent_dim: int) -> LogLikelihood:
    """Importance-weighted test log-likelihood on a seeded subset of the test images."""
    a, seed = s.cfg.analysis, s.cfg.seed
    idx = lt.sample_indices(s.test_idx, a.n_likelihood, derive_seed(seed, "likelihood"))
    log_px, elbo = lt.log_likelihood(
        model, s.data, idx, a.n_importance, derive_seed(seed, f"likelihood-{latent_dim}")
    )
    nats = float(log_px.mean())
    return LogLikelihood(
        n_importance=a.n_importance,
        n_images=int(len(idx)),
        nats=nats,
        bits_per_pixel=float(-nats / (s.data.image_size**2 * np.log(2))),
        elbo=float(elbo.mean()),
        gap=float(nats - elbo.mean()),
    )


def _traversal_step(model, mu, kl_per_dim, s: Sample, latent_dim: int) -> Traversal:
    """The most used dimensions moved one at a time from the most typical sampled code."""
    a = s.cfg.analysis
    dims = [int(d) for d in np.argsort(kl_per_dim)[::-1][: a.n_traversal]]
    sd = mu[:, dims].std(0)
    base = mu[np.argmin(((mu - mu.mean(0)) ** 2).sum(1))]  # the most typical image's code
    steps = np.linspace(-a.traversal_sd, a.traversal_sd, TRAVERSAL_STEPS)
    images = lt.traverse(model, base, dims, sd, steps)
    rows = [f"z{d}\nKL {kl_per_dim[d]:.2f}" for d in dims]
    save_figure(
        plot_traversal(images, rows, steps, f"Latent {latent_dim}: the most used dimensions"),
        FIGURES["traversal"].file(s.out, latent_dim=latent_dim),
    )
    return Traversal(
        dims=dims,
        kl=[float(kl_per_dim[d]) for d in dims],
        sd=[float(v) for v in sd],
        steps=[float(v) for v in steps],
    )


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


def _generated(model, s: Sample, latent_dim: int) -> None:
    """Images decoded from codes drawn from the prior N(0, I)."""
    rng = np.random.default_rng(derive_seed(s.cfg.seed, f"generate-{latent_dim}"))
    z = rng.standard_normal((N_GENERATED, latent_dim)).astype(np.float32)
    title = f"Latent {latent_dim}: {N_GENERATED} images decoded from random codes z ~ N(0, I)"
    save_figure(
        plot_image_grid(lt.decode(model, z), title=title),
        FIGURES["samples"].file(s.out, latent_dim=latent_dim),
    )


def analyze_model(model, s: Sample, latent_dim: int) -> AnalysedModel:
    """Every measure and figure of one model's analysis."""
    recon_fields, recon, above_floor = _reconstruction_step(model, s, latent_dim)
    mu, logvar = lt.encode(model, s.data, s.sample_idx)
    cluster_fields, clusters = _cluster_step(mu, s, latent_dim)
    map_fields, pca_xy, tsne_xy = _map_step(mu, clusters, s, latent_dim)
    evr = np.asarray(map_fields["pca_explained_variance"])
    path_fields, paths = _interpolation_step(model, mu, logvar, pca_xy, tsne_xy, evr, s, latent_dim)
    _probe_step(model, mu, paths, path_fields["interpolations"], s, latent_dim)
    kl_per_dim = np.asarray(path_fields["kl_per_dim"])
    references = {
        "linear_baseline": _baseline_step(above_floor, s, latent_dim),
        "log_likelihood": _likelihood_step(model, s, latent_dim),
        "traversal": _traversal_step(model, mu, kl_per_dim, s, latent_dim),
    }
    # The sample's reconstructions for the explorer: its means are already encoded.
    embedding = model_dir(s.out, latent_dim) / EMBEDDING
    _save_embedding(embedding, s, mu, pca_xy, tsne_xy, clusters, lt.decode(model, mu), paths)
    _generated(model, s, latent_dim)
    metrics = ModelAnalysis(
        n_samples=int(len(s.sample_idx)),
        **recon_fields,
        **cluster_fields,
        **map_fields,
        **path_fields,
        **references,
    )
    return AnalysedModel(metrics, mu, clusters, recon, above_floor)
