"""Paths through one model's latent space: interpolations between the sampled images lowest and
highest on PCA 1/2, t-SNE 1/2 and the most used latent dimension, what a label probe says along
them, and a traversal of the most used dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.features import NAMES as PATH_FEATURES
from ..data.features import short
from ..data.xray import label_word
from ..figures.analysis import plot_interpolation, plot_path_probability, plot_traversal
from ..figures.common import save_figure
from ..outputs import FIGURES
from ..results import PathSummary, ProbePath, Traversal
from ..seeding import derive_seed
from ..thresholds import ACTIVE_VARIANCE, USED_KL
from . import evidence as ev
from . import latent as lt
from .sampling import Sample
from .structure import Maps

SHOWN_FEATURES = 4  # features drawn under each interpolation: those that change most
TRAVERSAL_STEPS = 7  # columns of the traversal grid, from -traversal_sd to +traversal_sd


@dataclass
class Paths:
    """The interpolations of one model and how it uses its latent dimensions.

    ``kl_per_dim`` (latent_dim,) float32 is each dimension's mean KL over the sample; ``dim``
    the most used one; ``interpolations`` and ``summaries`` are keyed by axis (``pca1``...).
    """

    kl_per_dim: np.ndarray
    dim: int
    active_units: int  # dimensions whose means vary more than ACTIVE_VARIANCE
    kl_dims_used: int  # dimensions whose mean KL exceeds USED_KL
    kl_top2_share: float
    interpolations: dict[str, lt.Interpolation]
    summaries: dict[str, PathSummary]


def axis_label(axis: str, evr) -> str:
    """How figures and the report name an interpolation axis."""
    if axis.startswith("pca"):
        i = int(axis[-1]) - 1
        return f"PCA {i + 1} ({100 * evr[i]:.1f}% of variance)"
    if axis.startswith("tsne"):
        return f"t-SNE {axis[-1]}"
    return f"latent dimension {axis[1:]} (largest mean KL)"


def interpolation_step(model, mu, logvar, maps: Maps, s: Sample, latent_dim: int) -> Paths:
    """Interpolations along PCA1/2, t-SNE1/2 and the most used latent dimension."""
    dim, kl_per_dim = lt.most_used_dim(mu, logvar)
    axes = {
        "pca1": maps.pca[:, 0],
        "pca2": maps.pca[:, 1],
        "tsne1": maps.tsne[:, 0],
        "tsne2": maps.tsne[:, 1],
        f"z{dim}": mu[:, dim],
    }
    spread = s.spread
    evr = np.asarray(maps.explained_variance, dtype=np.float64)  # as metrics.json holds it
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
        shown = {short(f): (feats[f] - feats[f][0]) / max(spread[f], 1e-12) for f in most}
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
    return Paths(
        kl_per_dim=kl_per_dim,
        dim=dim,
        active_units=int(np.sum(mu.var(0) > ACTIVE_VARIANCE)),
        kl_dims_used=int(np.sum(kl_per_dim > USED_KL)),
        kl_top2_share=float(kl[:2].sum() / max(kl.sum(), 1e-12)),
        interpolations=paths,
        summaries=summaries,
    )


def probe_step(model, mu, paths: Paths, s: Sample, latent_dim: int) -> None:
    """Each decoded frame of every path encoded again and given to a label probe fitted on the
    sample's means: the probability of one label along t, set as each path summary's
    ``probe`` (and drawn). Without usable labels, nothing."""
    labels = s.labels
    if not ev.usable_labels(labels):
        return
    its = paths.interpolations
    probe = ev.fit_probe(mu, labels, derive_seed(s.cfg.seed, "evidence"))
    probs = {a: probe.predict_proba(lt.encode_images(model, it.images)) for a, it in its.items()}
    classes = list(probe.classes_)
    # Two labels: the second (e.g. pneumonia); more: the label that changes most along the paths.
    col = (
        1
        if len(classes) == 2
        else int(np.argmax(sum(np.abs(p[-1] - p[0]) for p in probs.values())))
    )
    name = s.data.label_names[classes[col]]
    for axis, p in probs.items():
        paths.summaries[axis].probe = ProbePath(
            label=name, probability=[float(v) for v in p[:, col]]
        )
    t = next(iter(its.values())).t
    save_figure(
        plot_path_probability(
            t,
            {its[a].label: p[:, col] for a, p in probs.items()},
            label_word(name),
            f"Latent {latent_dim}: the label probe along each interpolation",
        ),
        FIGURES["path_probability"].file(s.out, latent_dim=latent_dim),
    )


def traversal_step(model, mu, kl_per_dim, s: Sample, latent_dim: int) -> Traversal:
    """The most used dimensions moved one at a time from the most typical sampled code."""
    a = s.cfg.analysis
    kl_per_dim = np.asarray(kl_per_dim, dtype=np.float64)
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
