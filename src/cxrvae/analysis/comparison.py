"""How the models of a study compare: their clusterings and latent spaces, and the figures
that show every model side by side (reconstructions, errors, rate against distortion)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from ..figures.analysis import plot_error_distribution, plot_rate_distortion, plot_reconstructions
from ..figures.common import save_figure
from ..outputs import FIGURES
from ..results import Comparison
from ..seeding import derive_seed
from ..thresholds import MIN_EFFECT
from . import evidence as ev
from .per_model import AnalysedModel
from .sampling import Sample


def compare_models(
    results: dict[int, AnalysedModel], s: Sample, rates: dict[int, float]
) -> Comparison:
    """How the models compare, with the figures that show them side by side.

    ``rates`` are each model's test KL (nats per image), the information its code carries.
    """
    _draw(results, s, rates)
    dims = list(results)
    pairs = [(a, b) for i, a in enumerate(dims) for b in dims[i + 1 :]]
    es = derive_seed(s.cfg.seed, "evidence")
    ari = {
        f"{a}-{b}": float(adjusted_rand_score(results[a].clusters, results[b].clusters))
        for a, b in pairs
    }
    paths = [p for r in results.values() for p in r.metrics.interpolations.values()]
    return Comparison(
        sample_note=s.note,
        n_samples=int(len(s.sample_idx)),
        ari=ari,
        ari_mean=float(np.mean(list(ari.values()))) if ari else None,
        linear_r2={
            f"{a}->{b}": ev.linear_r2(results[a].mu, results[b].mu, es)
            for a in dims
            for b in dims
            if a != b
        },
        n_paths=len(paths),
        path_leaders=path_leaders(paths),
        config=s.cfg.to_dict()["analysis"],
    )


def path_leaders(paths) -> dict[str, int]:
    """How many of the paths (:class:`~cxrvae.results.PathSummary`) each feature leads: the
    feature a path changes most, when it changes it by ``MIN_EFFECT`` SD or more; most first."""
    leaders: dict[str, int] = {}
    for p in paths:
        name, trend = max(p.trends.items(), key=lambda kv: abs(kv[1].effect))
        if abs(trend.effect) >= MIN_EFFECT:
            leaders[name] = leaders.get(name, 0) + 1
    return dict(sorted(leaders.items(), key=lambda kv: -kv[1]))


def _draw(results: dict[int, AnalysedModel], s: Sample, rates: dict[int, float]) -> None:
    """Every model's reconstructions of the same test images, the error distributions, and
    rate against distortion beside the linear baseline."""
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
    save_figure(
        plot_rate_distortion(
            {d: rates[d] for d in results},
            {d: float(r.bce_above_floor.mean()) for d, r in results.items()},
            {d: r.metrics.linear_baseline.bce_above_floor for d, r in results.items()},
        ),
        FIGURES["rate_distortion"].file(s.out),
    )
