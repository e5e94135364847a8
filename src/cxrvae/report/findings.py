"""The key findings at the top of the report: five to eight one-line conclusions, each with its
number (a value of ``metrics.json``) and a link to the figure or table that shows it."""

from __future__ import annotations

from ..data.xray import label_word
from ..results import SCORE_WORDS, DataSummary, StudyMetrics
from ..thresholds import EFFECT_MEDIUM
from .prose import (
    Finding,
    axis_phrase,
    differs,
    grouping,
    images_of,
    listed,
    num,
    pct,
    plural,
    probe_ends,
    sentence,
    separation,
)
from .reading import analysed_models, best_anomaly_score, runner_up, strongest_probe_path
from .seeds import clusters_clause, verdict

MAX_FINDINGS = 8


def _data_findings(data: DataSummary) -> list[Finding]:
    ex = data.exploration
    if ex is None or not ex.features:
        return []
    f, labels, out = ex.features, ex.effect_labels, []
    top = max(f, key=lambda k: abs(f[k].effect)) if labels else None
    if top and abs(f[top].effect) >= EFFECT_MEDIUM:
        text = (
            f"{sentence(images_of(labels[1]))} have {differs(top, f[top].effect)} than "
            f"{images_of(labels[0])}: the largest difference between the labels (effect size)."
        )
        out.append(Finding(text, "fig-label_effects"))
    else:
        e = f["exposure"]
        text = f"Exposure varies from {num(e.p5, 2)} to {num(e.p95, 2)} across 90% of the images."
        out.append(Finding(text, "fig-brightness_contrast"))
    dup = ex.duplicates
    if dup.identical_images:
        text = (
            f"Pixel-identical copies: {dup.identical_images} images "
            f"({plural(dup.identical_groups, 'set')}), each set kept on one side of the split."
        )
        out.append(Finding(text, "fig-duplicates"))
    elif dup.near_straddling:
        text = f"{plural(dup.near_straddling, 'near-identical pair')} straddle the split."
        out.append(Finding(text, "fig-duplicates"))
    return out


def _model_findings(metrics: StudyMetrics, analysed) -> list[Finding]:
    dims = sorted(analysed)
    lo, hi = dims[0], dims[-1]
    err = {d: analysed[d].test_bce_above_floor.mean for d in dims}
    best = min(dims, key=err.get)
    other = hi if best == lo else lo
    base = analysed[hi].linear_baseline
    ll = {d: analysed[d].log_likelihood for d in dims}
    top = max(dims, key=lambda d: ll[d].nats)
    a = analysed[hi]
    if base.error_removed >= 0:
        linear = (
            f"Latent {hi} removes {pct(base.error_removed)} of the error that PCA with "
            f"{base.n_components} components leaves: what a non-linear code of the same size gains."
        )
    else:
        linear = (
            f"PCA with {base.n_components} components reconstructs better than latent {hi} "
            f"({num(base.bce_above_floor)} against {num(err[hi])} nats above the floor)."
        )
    texts = [
        (
            f"Latent {best} reconstructs best: {num(err[best])} nats per image above the floor, "
            f"against {num(err[other])} for latent {other}; "
            f"{verdict(metrics, 'above_floor', best, other, higher=False)}.",
            "tab-quality",
        ),
        (linear, "fig-rate_distortion"),
        (
            f"Best test log-likelihood: latent {top}, {num(ll[top].nats)} nats per image "
            f"({num(ll[top].bits_per_pixel, 3)} bits per pixel, {ll[top].n_importance} "
            "importance samples per image); "
            + verdict(metrics, "log_likelihood", top, runner_up(ll, top, lambda x: x.nats), True)
            + ".",
            "tab-reference",
        ),
        (
            f"Latent {hi} carries information in {a.kl_dims_used} of its {hi} dimensions; the "
            f"two most used hold {pct(a.kl_top2_share)} of its KL.",
            f"fig-traversal-{hi}",
        ),
    ]
    return [Finding(t, anchor) for t, anchor in texts]


def _cluster_and_label_findings(metrics: StudyMetrics, analysed) -> list[Finding]:
    out = []
    dims = sorted(analysed)
    sil = [analysed[d].silhouette_chosen for d in dims if analysed[d].silhouette_chosen is not None]
    ari = metrics.analysis.ari_mean if metrics.analysis else None
    if sil and ari is not None:
        how = grouping(ari)
        text = (
            f"Clusters are {separation(max(sil))} (silhouette at most {num(max(sil), 2)}); the "
            f"models group the images {how} (mean ARI {num(ari, 2)}; "
            f"{clusters_clause(metrics.seeds)})."
        )
        out.append(Finding(text, "tab-clusters"))
    auc = {d: analysed[d].probe_auc for d in dims}
    if metrics.data.label_names and all(v is not None for v in auc.values()):
        d = max(auc, key=auc.get)
        text = (
            f"Without ever seeing a label, latent {d}'s means predict it with ROC AUC "
            f"{num(auc[d], 3)}"
        )
        if len(dims) > 1:
            text += "; " + verdict(metrics, "probe_auc", d, runner_up(auc, d), higher=True)
        text += "."
        out.append(Finding(text, "tab-label"))
        moved = strongest_probe_path(analysed)
        if moved:
            d, axis, pr = moved
            ends = probe_ends(pr, metrics.data.label_names)
            text = f"{axis_phrase(axis)} of latent {d} runs from images the probe calls {ends}."
            text = sentence(text)
            out.append(Finding(text, f"fig-path_probability-{d}"))
    best = best_anomaly_score(analysed)
    if best:
        d, score, auc = best
        a = analysed[d].anomaly
        text = (
            f"Trained on {listed(map(label_word, a.trained))} images only, latent {d} tells "
            f"held-out {listed(map(label_word, a.others))} images apart with ROC AUC "
            f"{num(auc.value, 3)} ({SCORE_WORDS[score].split(' (')[0]})"
        )
        rivals = {k: m.anomaly.auroc[score].value for k, m in analysed.items() if m.anomaly}
        rival = runner_up(rivals, d)
        text += "; " + verdict(metrics, f"anomaly_{score}", d, rival, higher=True)
        text += "."
        out.insert(0, Finding(text, "tab-anomaly"))
    return out


def key_findings(metrics: StudyMetrics) -> list[Finding]:
    """The report's opening conclusions (fewer when the run has no labels or no analysis)."""
    out = _data_findings(metrics.data)
    analysed = analysed_models(metrics)
    if analysed:
        out += _model_findings(metrics, analysed) + _cluster_and_label_findings(metrics, analysed)
    return out[:MAX_FINDINGS]
