"""The models of every seed (``--seeds N``) side by side: each number's mean and spread over
the seeds, and whether the latent spaces, clusterings and maps of two latent sizes differ more
than those of two seeds of one size. The run holds the first seed's models; the others' are run
folders of their own in ``out/repeats/`` (:func:`cxrvae.outputs.repeat_dir`), trained and
analysed alike on the same split and the same sampled images."""

from __future__ import annotations

from itertools import combinations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from .. import outputs
from ..config import RunConfig
from ..figures.analysis import plot_over_seeds, plot_similarity
from ..figures.common import save_figure
from ..results import SCORES, SEED_MEASURES, Alike, Auroc, ModelResult, OverSeeds, SeedVariation
from ..runfolder import read_metrics
from ..seeding import derive_seed
from . import evidence as ev
from .atypicality import load_scores
from .sampling import Sample
from .twosample import auroc

AXES = ("pca1", "pca2", "tsne1", "tsne2")


def _measure(name: str, m: ModelResult, clusters: np.ndarray, labels) -> float | None:
    """One number of one trained and analysed model (see :data:`SEED_MEASURES`), or None."""
    a = m.analysis
    if name.startswith("anomaly_"):
        return a.anomaly.auroc[name.removeprefix("anomaly_")].value if a.anomaly else None
    if name == "label_ari":
        return float(adjusted_rand_score(labels, clusters)) if labels is not None else None
    value = {
        "test_loss": m.test_loss,
        "test_bce": m.test_bce,
        "test_kl": m.test_kl,
        "above_floor": a.test_bce_above_floor.mean,
        "log_likelihood": a.log_likelihood.nats if a.log_likelihood else None,
        "pca_gain": a.linear_baseline.error_removed if a.linear_baseline else None,
        "active_units": a.active_units,
        "kl_dims_used": a.kl_dims_used,
        "silhouette": a.silhouette_chosen,
        "probe_auc": a.probe_auc,
    }[name]
    return None if value is None else float(value)


def over_seeds(values) -> OverSeeds:
    """Values of one number over the seeds, with their mean and sample standard deviation."""
    v = np.asarray(values, np.float64)
    sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return OverSeeds(values=[float(x) for x in v], mean=float(v.mean()), sd=sd)


def alike(models: list[tuple[int, int]], similarity: np.ndarray) -> Alike:
    """Means of a similarity over pairs of models ``(latent size, seed)``: within each size
    (pairs of its seeds), and between each two sizes (every seed of one with every seed of the
    other)."""
    within, between = {}, {}
    for i, j in combinations(range(len(models)), 2):
        (a, _), (b, _) = models[i], models[j]
        key = a if a == b else f"{min(a, b)}-{max(a, b)}"
        (within if a == b else between).setdefault(key, []).append(similarity[i, j])
    return Alike(
        within={k: float(np.mean(v)) for k, v in within.items()},
        between={k: float(np.mean(v)) for k, v in between.items()},
    )


def _leading_feature(m: ModelResult, axis: str) -> str | None:
    path = m.analysis.interpolations.get(axis)
    if path is None or not path.trends:
        return None
    return max(path.trends, key=lambda f: abs(path.trends[f].effect))


def seed_variation(out, cfg: RunConfig, metrics, s: Sample) -> SeedVariation:
    """Every seed's models of the run in ``out`` compared (``metrics``: the run's own, just
    analysed); the figures of their spread and of how alike their latent spaces are."""
    runs = [out, *outputs.repeat_dirs(out, cfg.train.seeds)]
    all_metrics = [metrics] + [read_metrics(run) for run in runs[1:]]
    dims = [k for k in cfg.model.latent_dims if all(k in m.analysed for m in all_metrics)]
    models = [(k, r) for k in dims for r in range(len(runs))]
    saved = {}
    for k, r in models:
        with np.load(outputs.model_dir(runs[r], k) / outputs.EMBEDDING) as e:
            saved[k, r] = {name: e[name] for name in ("mu", "clusters", "pca")}
    labels = s.data.labels[s.sample_idx] if s.data.labels is not None else None
    numbers = {}
    for name in SEED_MEASURES:
        per_size = {}
        for k in dims:
            values = [
                _measure(name, m.models[k], saved[k, r]["clusters"], labels)
                for r, m in enumerate(all_metrics)
            ]
            if all(v is not None for v in values):
                per_size[k] = over_seeds(values)
        if per_size:
            numbers[name] = per_size
    n = len(models)
    cka, ari, maps = np.eye(n), np.eye(n), np.eye(n)
    for i, j in combinations(range(n), 2):
        a, b = saved[models[i]], saved[models[j]]
        cka[i, j] = cka[j, i] = ev.linear_cka(a["mu"], b["mu"])
        ari[i, j] = ari[j, i] = adjusted_rand_score(a["clusters"], b["clusters"])
        maps[i, j] = maps[j, i] = ev.map_agreement(a["pca"], b["pca"])
    names = [f"{k}/{r + 1}" for k, r in models]
    result = SeedVariation(
        n_seeds=len(runs),
        numbers=numbers,
        models=names,
        cka=[[float(x) for x in row] for row in cka],
        cka_alike=alike(models, cka),
        ari_alike=alike(models, ari),
        map_alike=alike(models, maps),
        axes={
            axis: {
                k: [_leading_feature(m.models[k], axis) or "" for m in all_metrics] for k in dims
            }
            for axis in AXES
        },
        ensemble_auroc=ensemble_auroc(runs, dims, cfg.seed),
    )
    _draw(out, result)
    return result


def ensemble_auroc(runs, dims, seed: int) -> dict[int, dict[str, Auroc]] | None:
    """Trained on some labels only: for each latent size, how well each score averaged over
    the models of every seed (an ensemble) tells the held-out images of the other labels from
    those of the trained ones (ROC AUC, bootstrap interval as each model's own); else None."""
    result = {}
    for k in dims:
        folders = [outputs.model_dir(run, k) for run in runs]
        if not all((f / outputs.OTHERS).exists() for f in folders):
            return None
        trained = [load_scores(f / outputs.REFERENCE) for f in folders]
        others = [load_scores(f / outputs.OTHERS) for f in folders]
        es = derive_seed(seed, f"anomaly-{k}")
        result[k] = {
            s: auroc(
                np.mean([t.score(s) for t in trained], axis=0),
                np.mean([o.score(s) for o in others], axis=0),
                es,
            )
            for s in SCORES
        }
    return result


def _draw(out, v: SeedVariation) -> None:
    points = {
        SEED_MEASURES[name]: {k: o.values for k, o in per_size.items()}
        for name, per_size in v.numbers.items()
    }
    save_figure(plot_over_seeds(points, v.n_seeds), outputs.FIGURES["seeds"].file(out))
    title = (
        f"Linear CKA between the latent means\nof {len(v.models)} models "
        "(1: alike up to rotation, scale)"
    )
    save_figure(plot_similarity(np.array(v.cka), v.models, title), outputs.FIGURES["cka"].file(out))
