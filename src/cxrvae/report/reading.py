"""How the report reads a run's metrics: the models analysed with every measure of this
version, the interpolation path along which the label probe changes its mind most, and the best
anomaly score of a run trained on some labels only. The key findings and the discussion both
start from these.
"""

from __future__ import annotations

from ..results import FLAG_SCORE, Auroc, ModelAnalysis, StudyMetrics
from ..thresholds import PROBE_MOVE


def analysed_models(metrics: StudyMetrics) -> dict[int, ModelAnalysis]:
    """The models analysed with every measure of this version, by latent size (runs analysed
    by an earlier version lack some: run ``cxrvae analyze`` again)."""
    return {
        d: a
        for d, a in sorted(metrics.analysed.items())
        if a.cluster_separation is not None and a.linear_baseline and a.log_likelihood
    }


def strongest_probe_path(analysed) -> tuple[int, str, object] | None:
    """(latent size, axis, probe path) of the path that moves the label probability most, when
    it moves it by ``PROBE_MOVE`` or more."""
    found = [
        (d, axis, p.probe)
        for d, a in analysed.items()
        for axis, p in a.interpolations.items()
        if p.probe
    ]
    found = [x for x in found if abs(x[2].probability[-1] - x[2].probability[0]) >= PROBE_MOVE]
    return max(found, key=lambda x: abs(x[2].probability[-1] - x[2].probability[0]), default=None)


def runner_up(values: dict, best, key=None):
    """The latent size whose value comes closest to ``best``'s from below (``key``: what to
    compare of each value, default the value itself); None when ``best`` is the only one."""
    key = key or (lambda x: x)
    return max((d for d in values if d != best), key=lambda d: key(values[d]), default=None)


def best_anomaly_score(analysed) -> tuple[int, str, Auroc] | None:
    """(latent size, score, its AUROC) of the model whose flag score (:data:`FLAG_SCORE`,
    chosen before this run's test images were seen) tells the labels apart best, for a run
    trained on some labels only; of the best score where the run predates it."""
    found = [
        (d, s, v) for d, a in analysed.items() if a.anomaly for s, v in a.anomaly.auroc.items()
    ]
    flagged = [f for f in found if f[1] == FLAG_SCORE]
    return max(flagged or found, key=lambda x: x[2].value, default=None)
