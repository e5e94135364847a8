"""The report's discussion: the study's questions, answered from the run's measured numbers.

Each answer opens with one sentence that answers the question, then a compact table of the
evidence (models as columns), then a few sentences of why that point to figures. Every number
quoted is a value of ``metrics.json``, rounded; what a sentence claims follows the thresholds
of :mod:`cxrvae.prose`. Nothing about labels is said of a set without them.
"""

from __future__ import annotations

from .evidence import ACTIVE_VARIANCE, USED_KL
from .features import WORDS
from .prose import (
    BETTER,
    COLLAPSED,
    LINEAR_SHARED,
    MIN_EFFECT,
    PROBE_GOOD,
    PROBE_MOVE,
    PROBE_SOME,
    Answer,
    Table,
    axis_name,
    differs,
    grouping,
    models_table,
    num,
    pct,
    plural,
    probe_ends,
    row,
    separation,
    short,
    signed,
    words,
)
from .results import DataSummary, ModelAnalysis, StudyMetrics

# --------------------------------------------------------------------------- the data


def _data_answer(data: DataSummary) -> Answer | None:
    ex = data.exploration
    if ex is None or not ex.features:
        return None
    f, labels = ex.features, ex.effect_labels
    exp, con = f["exposure"], f["contrast"]
    if labels:
        a, b = sorted(f, key=lambda k: -abs(f[k].effect))[:2]
        answer = (
            f"Compared with {labels[0]} images, {labels[1]} images have mostly "
            f"{differs(a, f[a].effect)} and {differs(b, f[b].effect)}; across all images "
            f"exposure ranges from {num(exp.p5, 2)} to {num(exp.p95, 2)}."
        )
    else:
        answer = (
            f"Across the middle 90% of the images, exposure ranges from {num(exp.p5, 2)} to "
            f"{num(exp.p95, 2)} and contrast from {num(con.p5, 3)} to {num(con.p95, 3)}."
        )
    head = ["feature", "5th pct", "median", "95th pct"]
    head += [f"d ({labels[1]} - {labels[0]})"] if labels else []
    rows = [[words(k), *(num(x, 3) for x in (v.p5, v.median, v.p95))] for k, v in f.items()]
    if labels:
        rows = [r + [signed(v.effect)] for r, v in zip(rows, f.values())]
    question = "What differences do you notice between the images?"
    return Answer("data", question, answer, Table(head, rows), _data_why(data))


def _data_why(data: DataSummary) -> list[str]:
    ex = data.exploration
    f, dup = ex.features, ex.duplicates
    shift = max(abs(f["shift_x"].p5), abs(f["shift_x"].p95))
    why = [
        f"Positioning varies little: for 90% of images the body's centre lies within "
        f"{pct(shift)} of the width from the frame's centre, and {pct(ex.dark_any)} of the "
        "images have a dark strip along an edge (air or collimation outside the body); see the "
        "positioning figure.",
        f"The most atypical image lies {num(ex.atypical[0])} from the mean in pixel-PCA space, "
        f"against a median of {num(ex.atypical_median)}; the atypical-images figure shows them. "
        "Burned-in markers and text are not measured: look for them in the grid.",
    ]
    near = (
        f"{plural(dup.near_pairs, 'pair')} {'is' if dup.near_pairs == 1 else 'are'} "
        "near-identical (RMS difference at most "
        f"{dup.near_threshold:g} on 16 x 16 versions), {dup.near_straddling} across the "
        "train/test split."
    )
    if dup.identical_images:
        joined = (
            f", {plural(dup.identical_regrouped, 'set')} spanning patients"
            if dup.identical_regrouped
            else ""
        )
        why.append(
            f"{dup.identical_images} images are pixel-identical copies in "
            f"{plural(dup.identical_groups, 'set')}{joined}; each set is kept on one side of the "
            f"split. {near}"
        )
    elif dup.near_pairs:
        why.append(near + " Pairs across the split leak test images into training.")
    return why


# --------------------------------------------------------------------------- reconstruction


def _recon_answer(analysed: dict[int, ModelAnalysis], rates: dict[int, float]) -> Answer:
    dims = sorted(analysed)
    err = {d: analysed[d].test_bce_above_floor.mean for d in dims}
    lo, hi = dims[0], dims[-1]
    if 1 - err[hi] / max(err[lo], 1e-12) > BETTER:
        drop = {b: err[a] - err[b] for a, b in zip(dims, dims[1:])}
        where = max(drop, key=drop.get)
        answer = (
            f"Larger codes reconstruct better: the error above the floor falls from "
            f"{num(err[lo])} (latent {lo}) to {num(err[hi])} nats per image (latent {hi}), "
            f"most between latent {dims[dims.index(where) - 1]} and {where}."
        )
    else:
        answer = (
            f"A larger code does not reconstruct better here: the error above the floor is "
            f"{num(err[lo])} nats per image for latent {lo} and {num(err[hi])} for latent {hi}."
        )
    base = {d: analysed[d].linear_baseline for d in dims}
    ll = {d: analysed[d].log_likelihood for d in dims}
    rows = [
        row("BCE above floor (nats)", dims, lambda d: num(err[d])),
        row("SSIM", dims, lambda d: num(analysed[d].test_ssim.mean, 3)),
        row("rate: KL (nats)", dims, lambda d: num(rates[d])),
        row("PCA: BCE above floor", dims, lambda d: num(base[d].bce_above_floor)),
        row("error removed beyond PCA", dims, lambda d: pct(base[d].error_removed)),
        row("log-likelihood (nats)", dims, lambda d: num(ll[d].nats)),
        row("bits per pixel", dims, lambda d: num(ll[d].bits_per_pixel, 3)),
    ]
    question = "How does reconstruction differ between latent sizes, and why?"
    why = _recon_why(dims, rates, base, ll)
    return Answer("reconstruction", question, answer, models_table(dims, rows), why)


def _recon_why(dims, rates, base, ll) -> list[str]:
    lo, hi = dims[0], dims[-1]
    why = [
        f"A larger code can carry more information about each image: the rate (KL) is "
        f"{num(rates[lo])} nats for latent {lo} and {num(rates[hi])} for latent {hi}; the "
        "rate-distortion figure shows what each model buys with it."
    ]
    removed = [base[d].error_removed for d in dims]
    if min(removed) > 0:
        why.append(
            f"Against PCA with as many components, a linear code of the same size, the models "
            f"remove {pct(min(removed))} to {pct(max(removed))} of the error, so the gain comes "
            "from the non-linear decoder, not only from more numbers."
        )
    elif max(removed) < 0:
        why.append(
            "PCA with as many components reconstructs better than every model: the KL term makes "
            "each VAE pay for the information in its code, and PCA pays nothing."
        )
    else:
        better = ", ".join(str(d) for d in dims if base[d].error_removed > 0)
        why.append(
            f"Only latent {better} beats PCA with as many components; the others pay more in KL "
            "for their code than their non-linear decoder recovers."
        )
    best = max(dims, key=lambda d: ll[d].nats)
    gaps = [ll[d].gap for d in dims]
    why.append(
        f"The importance-weighted log-likelihood ({ll[best].n_importance} samples per image, "
        f"{ll[best].n_images} test images) is highest for latent {best}; the ELBO with sampled "
        f"codes lies {num(min(gaps))} to {num(max(gaps))} nats below it."
    )
    return why


# --------------------------------------------------------------------------- latent use


def _use_answer(analysed: dict[int, ModelAnalysis], r2: dict) -> Answer:
    dims = sorted(analysed)
    used = {d: analysed[d].kl_dims_used for d in dims}
    collapsed = [str(d) for d in dims if used[d] <= COLLAPSED]
    answer = f"The models carry information in {', '.join(f'{used[d]} of {d}' for d in dims)} "
    answer += "dimensions" + (
        f"; latent {', '.join(collapsed)} has collapsed to the prior." if collapsed else "."
    )
    rows = [
        row(f"dimensions with KL > {USED_KL:g} nats", dims, lambda d: str(used[d])),
        row(f"active units (variance > {ACTIVE_VARIANCE:g})", dims,
            lambda d: str(analysed[d].active_units)),
        row("KL in the 2 most used", dims, lambda d: pct(analysed[d].kl_top2_share)),
        row("variance in PC1 + PC2", dims, lambda d: pct(analysed[d].pca_variance_2d)),
    ]  # fmt: skip
    why = []
    if any(analysed[d].active_units != used[d] for d in dims):
        why.append(
            "The count rests on the KL per dimension, the information each carries; the active "
            "units (variance of the means) also count dimensions whose means vary a little "
            "while carrying almost none, so the two can differ."
        )
    why.append("The traversal grids show what the most used dimensions change, one per row.")
    verdict = _r2_verdict(r2)
    why += [verdict] if verdict else []
    question = "How much of its latent space does each model use?"
    return Answer("latent-use", question, answer, models_table(dims, rows), why)


def _r2_verdict(r2: dict) -> str:
    pairs = [(int(p.split("->")[0]), int(p.split("->")[1]), v) for p, v in r2.items()]
    up = [v for a, b, v in pairs if a < b]
    down = [v for a, b, v in pairs if a > b]
    if not (up and down):
        return ""
    if min(down) >= LINEAR_SHARED and max(up) < LINEAR_SHARED:
        return (
            f"A linear map from a larger space explains a smaller one's means (R^2 at least "
            f"{num(min(down), 2)}), not the reverse (at most {num(max(up), 2)}): the extra "
            "dimensions hold information of their own."
        )
    low, high = num(min(r2.values()), 2), num(max(r2.values()), 2)
    if min(r2.values()) >= LINEAR_SHARED:
        return f"Each space is nearly a linear map of the others (R^2 {low} to {high})."
    return (
        f"The spaces are not linear maps of each other (R^2 {low} to {high}): the models "
        "organise the images differently."
    )


# --------------------------------------------------------------------------- clusters and maps


def _cluster_answer(analysed, comparison, data: DataSummary) -> Answer:
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
        parts.append(f"group the images {how} (mean ARI {num(ari, 2)})")
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
            row(f"share of {name} per cluster", dims,
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


def _maps_answer(analysed) -> Answer:
    dims = sorted(analysed)
    tw = {d: analysed[d].trustworthiness for d in dims}
    pc = {d: analysed[d].pca_variance_2d for d in dims}
    keeps = "keeps" if all(tw[d]["tsne"] >= tw[d]["pca"] for d in dims) else "does not always keep"

    def rng(k: str) -> str:
        return f"{num(min(tw[d][k] for d in dims), 3)} to {num(max(tw[d][k] for d in dims), 3)}"

    answer = (
        f"t-SNE {keeps} each image's neighbours better than PCA (trustworthiness {rng('tsne')} "
        f"against {rng('pca')}), while PCA's two axes show {pct(min(pc.values()))} to "
        f"{pct(max(pc.values()))} of the variance."
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


def _axes_answer(analysed, comparison, label_names) -> Answer:
    dims = sorted(analysed)
    paths = {d: list(analysed[d].interpolations.items()) for d in dims}
    everywhere = [p for d in dims for _, p in paths[d]]
    counts = (comparison.path_leaders if comparison else None) or {}
    top = list(counts)[:2]
    if top:
        answer = (
            f"Most paths change {' and '.join(short(f) for f in top)}: {short(top[0])} changes "
            f"most along {counts[top[0]]} of the {comparison.n_paths} paths"
        )
    else:
        answer = f"No path changes a measured feature by {MIN_EFFECT} SD or more"
    moved = strongest_probe_path(analysed)
    if moved:
        d, axis, pr = moved
        answer += (
            f", and {axis_name(axis)} of latent {d} runs from images the probe calls "
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
        why.append(f"No path moves {', '.join(short(f) for f in still)} by {MIN_EFFECT} SD.")
    question = "What do the interpolation axes encode, and how do they differ between models?"
    head = ["axis", *[f"latent {d}" for d in dims]]
    return Answer("axes", question, answer + ".", Table(head, rows), why)


def _probe_answer(analysed, data: DataSummary) -> Answer | None:
    dims = sorted(analysed)
    auc = {d: analysed[d].probe_auc for d in dims}
    if not data.label_names or any(v is None for v in auc.values()):
        return None
    best = max(auc, key=auc.get)
    how = "well" if auc[best] >= PROBE_GOOD else "in part" if auc[best] >= PROBE_SOME else "barely"
    answer = (
        f"The latent means capture the label {how}: a linear probe reaches ROC AUC "
        f"{num(auc[best], 3)} (latent {best}), though the models never saw a label."
    )
    rows = [row("probe ROC AUC (5-fold)", dims, lambda d: num(auc[d], 3))]
    if all(analysed[d].knn_accuracy for d in dims):
        rows.append(row("5-NN accuracy", dims, lambda d: pct(analysed[d].knn_accuracy["latent"])))
    why = [
        f"The probe is a logistic regression from the means to the label "
        f"({' / '.join(data.label_names)}), scored on held-out images; 0.5 is chance. The "
        "path-probability figures show where along each interpolation it changes its mind."
    ]
    question = "What did the unsupervised latent space learn about the label?"
    return Answer("label", question, answer, models_table(dims, rows), why)


# --------------------------------------------------------------------------- the whole


def analysed_models(metrics: StudyMetrics) -> dict[int, ModelAnalysis]:
    """The models analysed with every measure of this version, by latent size (runs analysed
    by an earlier version lack some: run ``cxrvae analyze`` again)."""
    return {
        d: a
        for d, a in sorted(metrics.analysed.items())
        if a.cluster_separation is not None and a.linear_baseline and a.log_likelihood
    }


def discussion(metrics: StudyMetrics) -> list[Answer]:
    """The study's questions, each answered from ``metrics`` (those it can answer)."""
    data = _data_answer(metrics.data)
    items = [data] if data else []
    analysed = analysed_models(metrics)
    if not analysed:
        reason = (
            "no model finished training"
            if not metrics.trained
            else "the models were analysed by an earlier cxrvae; run 'cxrvae analyze' again"
            if metrics.analysed
            else "no model is analysed"
        )
        question = "How does reconstruction differ between latent sizes, and why?"
        return items + [Answer("reconstruction", question, f"Nothing to compare yet: {reason}.")]
    rates = {d: metrics.models[d].test_kl for d in analysed}
    comparison = metrics.analysis
    items += [
        _recon_answer(analysed, rates),
        _use_answer(analysed, comparison.linear_r2 if comparison else {}),
        _cluster_answer(analysed, comparison, metrics.data),
        _maps_answer(analysed),
        _axes_answer(analysed, comparison, metrics.data.label_names),
    ]
    probe = _probe_answer(analysed, metrics.data)
    return items + ([probe] if probe else [])


def word_count(answers: list[Answer]) -> int:
    """Words of the discussion's prose (questions, answers, reasons), tables left out."""
    return sum(len(f"{a.question} {a.answer} {' '.join(a.why)}".split()) for a in answers)
