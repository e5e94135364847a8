"""The discussion's answers on how each latent space is organised: its clusters, its PCA and
t-SNE maps, what the interpolation axes encode, and (with labels) what it learned of the label.
"""

from __future__ import annotations

from ..data.features import WORDS
from ..data.xray import label_word
from ..results import SCORE_WORDS, Auroc, DataSummary, StudyMetrics
from ..thresholds import MIN_EFFECT, PROBE_GOOD, PROBE_SOME
from .prose import (
    Answer,
    Table,
    axis_name,
    axis_phrase,
    grouping,
    listed,
    models_table,
    num,
    pct,
    probe_ends,
    row,
    separation,
    short,
    signed,
)
from .reading import best_anomaly_score, runner_up, strongest_probe_path
from .seeds import axes_sentence, clusters_clause, maps_clause, verdict


def cluster_answer(analysed, comparison, data: DataSummary, seeds=None) -> Answer:
    dims = sorted(analysed)
    sil = {d: analysed[d].silhouette_chosen for d in dims}
    known = [s for s in sil.values() if s is not None]
    parts = []
    if known:
        low, high = num(min(known), 2), num(max(known), 2)
        parts.append(f"are {separation(max(known))} (silhouette {low} to {high})")
    ari = comparison.ari_mean if comparison else None
    if ari is not None:
        how = grouping(ari)
        parts.append(f"group the images {how} (mean ARI {num(ari, 2)}; {clusters_clause(seeds)})")
    answer = f"The models' clusters {' and '.join(parts)}." if parts else "See the galleries."
    rows = [
        row("K", dims, lambda d: str(analysed[d].n_clusters)),
        row("silhouette", dims, lambda d: num(sil[d], 2) if sil[d] is not None else "set"),
        row("cluster sizes", dims, lambda d: ", ".join(map(str, analysed[d].cluster_sizes))),
    ]
    name = (data.label_names or [None])[-1]
    if name and all(analysed[d].nmi is not None for d in dims):
        share = {d: [s[name] for s in analysed[d].label_share_per_cluster] for d in dims}
        rows += [
            row(f"share of {label_word(name)} per cluster", dims,
                lambda d: f"{pct(min(share[d]))} to {pct(max(share[d]))}"),
            row("normalised mutual information", dims, lambda d: num(analysed[d].nmi, 2)),
        ]  # fmt: skip
    question = "Do the clusters show different images, and do the models cluster alike?"
    why = _cluster_why(analysed)
    return Answer("clusters", question, answer, models_table(dims, rows), why)


def _cluster_why(analysed) -> list[str]:
    why = []
    if all(a.cluster_separation for a in analysed.values()):
        # The feature whose cluster means lie furthest apart, in SDs across the sample.
        spans = {(d, f): v for d, a in analysed.items() for f, v in a.cluster_separation.items()}
        (d, f), span = max(spans.items(), key=lambda kv: kv[1])
        why.append(
            f"What separates clusters most is {short(f)}: in latent {d} the clusters' means lie "
            f"{num(span)} SDs apart; the galleries show their images."
        )
    return why + [
        "K-means draws boundaries even through a continuum, so a weak silhouette means the "
        "clusters are a partition of convenience rather than distinct kinds of image."
    ]


def maps_answer(analysed, seeds=None) -> Answer:
    dims = sorted(analysed)
    tw = {d: analysed[d].trustworthiness for d in dims}
    pc = {d: analysed[d].pca_variance_2d for d in dims}
    keeps = "keeps" if all(tw[d]["tsne"] >= tw[d]["pca"] for d in dims) else "does not always keep"

    def rng(k: str) -> str:
        return f"{num(min(tw[d][k] for d in dims), 3)} to {num(max(tw[d][k] for d in dims), 3)}"

    answer = (
        f"t-SNE {keeps} each image's neighbours better than PCA (trustworthiness {rng('tsne')} "
        f"against {rng('pca')}), while PCA's two axes show {pct(min(pc.values()))} to "
        f"{pct(max(pc.values()))} of the variance; {maps_clause(seeds)}."
    )
    rows = [
        row("variance in PC1 + PC2", dims, lambda d: pct(pc[d])),
        row("trustworthiness, PCA", dims, lambda d: num(tw[d]["pca"], 3)),
        row("trustworthiness, t-SNE", dims, lambda d: num(tw[d]["tsne"], 3)),
    ]
    if all(analysed[d].knn_accuracy for d in dims):
        for key, name in (("latent", "latent means"), ("pca", "PCA map"), ("tsne", "t-SNE map")):
            rows.append(row(f"5-NN label accuracy, {name}", dims,
                            lambda d, k=key: pct(analysed[d].knn_accuracy[k])))  # fmt: skip
    why = [
        "PCA is a linear projection that keeps the largest variance and global distances; "
        "t-SNE keeps local neighbourhoods and distorts the distances between groups. A larger "
        "latent space spreads its variance over more directions, so its PCA map shows less of it."
    ]
    question = "How do the PCA and t-SNE maps differ, between methods and between models, and why?"
    return Answer("maps", question, answer, models_table(dims, rows), why)


# --------------------------------------------------------------------------- interpolations


def _leading(path) -> list[tuple[str, float]]:
    """The one or two features a path changes most (by at least MIN_EFFECT SD)."""
    ranked = sorted(path.trends.items(), key=lambda kv: -abs(kv[1].effect))
    return [(f, t.effect) for f, t in ranked[:2] if abs(t.effect) >= MIN_EFFECT]


def _cell(path, label_names) -> str:
    text = "; ".join(f"{short(f)} {signed(e)} SD" for f, e in _leading(path))
    text = text or f"nothing by {MIN_EFFECT} SD"
    if path.probe:
        text += f"; probe: {probe_ends(path.probe, label_names)}"
    return text


def axes_answer(analysed, comparison, label_names, seeds=None) -> Answer:
    dims = sorted(analysed)
    paths = {d: list(analysed[d].interpolations.items()) for d in dims}
    everywhere = [p for d in dims for _, p in paths[d]]
    counts = (comparison.path_leaders if comparison else None) or {}
    top = list(counts)[:2]
    if top:
        answer = (
            f"Most paths change {' and '.join(short(f) for f in top)}: along "
            f"{counts[top[0]]} of the {comparison.n_paths} paths the largest change is in "
            f"{short(top[0])}"
        )
    else:
        answer = f"No path changes a measured feature by {MIN_EFFECT} SD or more"
    moved = strongest_probe_path(analysed)
    if moved:
        d, axis, pr = moved
        answer += (
            f", and {axis_phrase(axis)} of latent {d} runs from images the probe calls "
            f"{probe_ends(pr, label_names)}"
        )
    rows = [
        [axis_name(paths[dims[0]][i][0])] + [_cell(paths[d][i][1], label_names) for d in dims]
        for i in range(len(paths[dims[0]]))
    ]
    still = [f for f in WORDS if all(abs(p.trends[f].effect) < MIN_EFFECT for p in everywhere)]
    why = [
        "Each change is the slope along t in standard deviations of the feature across the "
        "analysed images; the lower panel of each interpolation figure plots the features that "
        "change most."
    ]
    if still:
        why.append(f"No path moves {listed(short(f) for f in still)} by {MIN_EFFECT} SD.")
    if stability := axes_sentence(seeds):
        why.insert(0, stability)
    question = "What do the interpolation axes encode, and how do they differ between models?"
    head = ["axis", *[f"latent {d}" for d in dims]]
    return Answer("axes", question, answer + ".", Table(head, rows), why)


def probe_answer(metrics: StudyMetrics, analysed) -> Answer | None:
    data = metrics.data
    dims = sorted(analysed)
    auc = {d: analysed[d].probe_auc for d in dims}
    if not data.label_names or any(v is None for v in auc.values()):
        return None
    best = max(auc, key=auc.get)
    how = "well" if auc[best] >= PROBE_GOOD else "in part" if auc[best] >= PROBE_SOME else "barely"
    answer = (
        f"The latent means capture the label {how}: a linear probe reaches ROC AUC "
        f"{num(auc[best], 3)} (latent {best}), though the models never saw a label"
    )
    if len(dims) > 1:
        answer += "; " + verdict(metrics, "probe_auc", best, runner_up(auc, best), higher=True)
    answer += "."
    rows = [row("probe ROC AUC (5-fold)", dims, lambda d: num(auc[d], 3))]
    if all(analysed[d].knn_accuracy for d in dims):
        rows.append(row("5-NN accuracy", dims, lambda d: pct(analysed[d].knn_accuracy["latent"])))
    why = [
        f"The probe is a logistic regression from the means to the label "
        f"({' / '.join(map(label_word, data.label_names))}), scored on held-out images; 0.5 is "
        "chance. The path-probability figures show where along each interpolation it changes "
        "its mind."
    ]
    question = "What did the unsupervised latent space learn about the label?"
    return Answer("label", question, answer, models_table(dims, rows), why)


def anomaly_answer(metrics: StudyMetrics, analysed) -> Answer | None:
    """How well each model's scores tell the other labels from the trained ones."""
    best = best_anomaly_score(analysed)
    if best is None:
        return None
    dims = sorted(analysed)
    d, score, auc = best
    a = analysed[d].anomaly
    trained, others = listed(map(label_word, a.trained)), listed(map(label_word, a.others))
    answer = (
        f"Trained on {trained} images only, latent {d}'s {SCORE_WORDS[score].split(' (')[0]} "
        f"tells held-out {others} images from {trained} ones best: ROC AUC {num(auc.value, 3)} "
        f"[{num(auc.low, 3)}, {num(auc.high, 3)}]"
    )
    rivals = {k: m.anomaly.auroc[score].value for k, m in analysed.items() if m.anomaly}
    answer += "; " + verdict(metrics, f"anomaly_{score}", d, runner_up(rivals, d), True)
    answer += "."
    rows = [
        row(SCORE_WORDS[s], dims, lambda k, s=s: _interval(analysed[k].anomaly.auroc[s]))
        for s in a.auroc
    ]
    why = [
        f"Every held-out image is scored ({a.n_trained} of {trained}, {a.n_others} of "
        f"{others}), higher meaning less like the training images; the ROC AUC is the chance "
        "that an image of the other labels scores higher than one of the trained labels (0.5 "
        "is chance), with a 95% bootstrap interval.",
        "For comparison, on adult chest X-rays (RSNA), a VAE-GAN trained on normal films reached "
        "0.752 overall and 0.838 for opacity (Nakao et al. 2021, J Digit Imaging), and a "
        "flow-based model 0.868 for pneumonia-like opacities (arXiv 2001.07847): other sets, "
        "models and labels than this run's.",
    ]
    if metrics.seeds and metrics.seeds.ensemble_auroc:
        why.append(_ensemble_sentence(metrics.seeds, score))
    question = "How well do the models tell the labels they never saw from those they did?"
    return Answer("anomaly", question, answer, models_table(dims, rows), why)


def _ensemble_sentence(v, score: str) -> str:
    """How well the score averaged over every seed's model (an ensemble) does, beside each
    seed's own model, for every latent size."""
    sizes = [
        f"{_interval(per_score[score])} for latent {k} (its seeds alone: "
        f"{listed(num(x, 3) for x in v.numbers[f'anomaly_{score}'][k].values)})"
        for k, per_score in v.ensemble_auroc.items()
        if k in v.numbers.get(f"anomaly_{score}", {})
    ]
    return (
        f"Each image's {SCORE_WORDS[score].split(' (')[0]} averaged over the models of "
        f"{v.n_seeds} seeds (an ensemble) reaches ROC AUC {listed(sizes)}."
    )


def _interval(a: Auroc) -> str:
    return f"{num(a.value, 3)} [{num(a.low, 3)}, {num(a.high, 3)}]"
