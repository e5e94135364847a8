"""The report's discussion: the study's questions, each answered from the run's measured numbers.

The thresholds that decide what a sentence claims are named constants below, not tuned to one
data set.
"""

from __future__ import annotations

from dataclasses import dataclass

from .results import ModelAnalysis, ModelResult, PathSummary, StudyMetrics, Trend

# What counts as a clear difference, used by the discussion's sentences.
ARI_SAME = 0.7  # adjusted Rand above this: two models group the images in much the same way
ARI_DIFFERENT = 0.3  # below this: they group them differently
LINEAR_SHARED = 0.8  # cross-validated R^2 above this: one space is a linear map of the other
PCA_FAITHFUL = 0.6  # PC1 + PC2 explain at least this share: the PCA map shows most of the space
SILHOUETTE_CLEAR = 0.5  # silhouette above this: well-separated clusters
SILHOUETTE_WEAK = 0.25  # below this: clusters are cuts through a continuum
LABEL_ENRICHED = 0.15  # a cluster's label share differs from the sample's by this much or more
MIN_EFFECT = 0.5  # a path changes a feature when it moves by half its SD across the images
PROBE_GOOD = 0.85  # probe AUC at or above: the latent space captures the label well
PROBE_SOME = 0.65  # at or above: in part
UNUSED_KL = 0.05  # a latent dimension with less mean KL than this (nats) is unused
COLLAPSED_UNITS = 1  # at most this many active latent units: the posterior has collapsed

FEATURE_WORDS = {
    "brightness": "overall brightness",
    "contrast": "contrast",
    "edge_energy": "edge energy (sharpness of structures)",
    "lr_asymmetry": "left-right asymmetry",
    "centre_brightness": "brightness of the centre relative to the border",
}


@dataclass
class Answer:
    """One question of the study and its answer."""

    question: str
    answer: str


def _fmt(x, digits=1) -> str:
    return f"{x:,.{digits}f}"


def _collapsed(a: ModelAnalysis) -> bool:
    return a.active_units <= COLLAPSED_UNITS


def _recon_answer(models: dict[int, ModelResult]) -> str:
    dims = sorted(models)
    parts = [
        f"latent {d}: test BCE {_fmt(models[d].test_bce)} and KL "
        f"{_fmt(models[d].test_kl)} nats/image"
        for d in dims
    ]
    lo, hi = dims[0], dims[-1]
    gain = models[lo].test_bce - models[hi].test_bce
    extra_kl = models[hi].test_kl - models[lo].test_kl
    text = "Measured on the test set: " + "; ".join(parts) + ". "
    if gain > 0:
        text += (
            f"Going from {lo} to {hi} latent dimensions lowers the reconstruction error "
            f"by {_fmt(gain)} nats/image while the KL term grows by {_fmt(extra_kl)}: "
            "a larger code can carry more information about each image, and the KL term "
            "is the price, in nats, of that information. "
        )
        if extra_kl > 0 and gain < extra_kl:
            text += (
                "The gain in reconstruction is smaller than the added KL, so the larger "
                "models buy little detail for their extra code length. "
            )
    else:
        text += (
            f"The model with {hi} dimensions does not reconstruct better than the one with "
            f"{lo} (difference {_fmt(gain)} nats/image): the extra dimensions carry no "
            "extra information at this training length. "
        )
    analyses = [(d, models[d].analysis) for d in dims]
    if all(a is not None for _, a in analyses):
        text += _floor_sentences(analyses) + _units_sentences(analyses)
    return text


def _floor_sentences(analyses: list[tuple[int, ModelAnalysis]]) -> str:
    text = (
        "Part of every BCE is a floor that no model can go below, because the targets are "
        "grey levels (the summed binary entropy of each image, here "
        f"{_fmt(analyses[0][1].test_bce_floor.mean)} nats/image on average). Above "
        "that floor, with pixel-level PSNR and structural similarity (SSIM, 1 = identical): "
        + "; ".join(
            f"latent {d}: {_fmt(a.test_bce_above_floor.mean)} nats/image, PSNR "
            f"{a.test_psnr.mean:.2f} dB, SSIM {a.test_ssim.mean:.3f}"
            for d, a in analyses
        )
        + ". "
    )
    lo, hi = analyses[0][1], analyses[-1][1]
    share = 1 - hi.test_bce_above_floor.mean / max(lo.test_bce_above_floor.mean, 1e-12)
    if share > 0:
        return text + (
            f"Measured above the floor, the largest model removes {share:.0%} of the "
            "smallest one's reconstruction error. "
        )
    return text + (
        f"Measured above the floor, the largest model's error is {-share:.0%} "
        "higher than the smallest one's. "
    )


def _units_sentences(analyses: list[tuple[int, ModelAnalysis]]) -> str:
    text = (
        "Active latent units (variance of the means across images above 0.01): "
        + ", ".join(f"{a.active_units} of {d}" for d, a in analyses)
        + ". "
    )
    collapsed = [str(d) for d, a in analyses if _collapsed(a)]
    if collapsed:
        text += (
            f"Posterior collapse: latent {', '.join(collapsed)} "
            f"{'has' if len(collapsed) == 1 else 'have'} at most {COLLAPSED_UNITS} "
            "active unit; the decoder ignores the code and draws an average image, "
            "so the clusters, maps and interpolations of such a model carry little "
            "meaning. "
        )
    unused = {d: sum(v < UNUSED_KL for v in a.kl_per_dim) for d, a in analyses}
    if any(unused.values()):
        text += (
            f"Dimensions whose mean KL is below {UNUSED_KL} nats, left at the prior: "
            + ", ".join(f"{n} of {d}" for d, n in unused.items())
            + ". They carry no information, which is why adding dimensions raises the KL "
            "less than in proportion. "
        )
    return text


def _silhouette_words(sil: float) -> str:
    if sil >= SILHOUETTE_CLEAR:
        return "well separated"
    if sil < SILHOUETTE_WEAK:
        return "weakly separated, cuts through a continuum"
    return "moderately separated"


def _label_clause(a: ModelAnalysis, label_names) -> str:
    name = label_names[-1]
    vals = [sh[name] for sh in a.label_share_per_cluster]
    overall = sum(v * n for v, n in zip(vals, a.cluster_sizes)) / sum(a.cluster_sizes)
    s = (
        f", share of '{name}' per cluster from {min(vals):.0%} to {max(vals):.0%} "
        f"against {overall:.0%} in the sample"
    )
    if max(abs(v - overall) for v in vals) >= LABEL_ENRICHED:
        s += " (the clusters partly follow the label)"
    else:
        s += " (the clusters barely follow the label)"
    if a.nmi is not None:
        s += f"; purity {a.purity:.2f}, normalised mutual information {a.nmi:.2f}"
    return s


def _cluster_answer(analysed: dict[int, ModelAnalysis], ari: dict, label_names) -> str:
    out = []
    for d, a in analysed.items():
        s = f"Latent {d}: K = {a.n_clusters} (sizes {', '.join(map(str, a.cluster_sizes))})"
        if _collapsed(a):
            s += " on a collapsed latent space (clusters of noise-level differences)"
        if a.silhouette_chosen is not None:
            sil = a.silhouette_chosen
            s += f", silhouette {sil:.2f} ({_silhouette_words(sil)})"
        b = [f["brightness"] for f in a.cluster_features]
        s += f"; mean brightness of the clusters' images ranges from {min(b):.3f} to {max(b):.3f}"
        if a.label_share_per_cluster and label_names:
            s += _label_clause(a, label_names)
        out.append(s + ".")
    text = " ".join(out)
    if ari:
        pairs = ", ".join(f"{p.replace('-', ' vs ')}: {v:.2f}" for p, v in ari.items())
        mean = sum(ari.values()) / len(ari)
        verdict = (
            "the models group the same images together"
            if mean >= ARI_SAME
            else "the models group the images differently"
            if mean < ARI_DIFFERENT
            else "the groupings overlap only in part"
        )
        text += (
            f" Agreement between the models' clusterings of the same images (adjusted "
            f"Rand index; 1 = identical, 0 = chance): {pairs}; on average {mean:.2f}, so "
            f"{verdict}."
        )
    return text


def _r2_verdict(r2: dict) -> str:
    pairs = [(int(p.split("->")[0]), int(p.split("->")[1]), v) for p, v in r2.items()]
    small_to_large = [v for a, b, v in pairs if a < b]
    large_to_small = [v for a, b, v in pairs if a > b]
    if not (small_to_large and large_to_small):
        return ""
    if min(large_to_small) >= LINEAR_SHARED and max(small_to_large) < LINEAR_SHARED:
        return (
            "Larger spaces contain the smaller ones' information almost linearly, "
            "while the smaller ones miss much of the larger ones': the extra "
            "dimensions hold information of their own."
        )
    if min(r2.values()) >= LINEAR_SHARED:
        return (
            "Every space is close to a linear transform of the others: they "
            "encode much the same information, differently rotated."
        )
    return (
        "The spaces are not linear transforms of each other: the models "
        "organise the images differently, not just in another basis."
    )


def _organisation_answer(analysed: dict[int, ModelAnalysis], r2: dict) -> str:
    out = []
    for d, a in analysed.items():
        kl = sorted(a.kl_per_dim, reverse=True)
        top = sum(kl[:2]) / max(sum(kl), 1e-12)
        out.append(
            f"latent {d}: {a.active_units} active units, the two most used "
            f"dimensions hold {top:.0%} of the KL, PC1 + PC2 explain "
            f"{sum(a.pca_explained_variance[:2]):.0%} of the variance of the means"
        )
    text = (
        "How each latent space is used: " + "; ".join(out) + ". A space whose variance "
        "sits in a few directions is organised along a few dominant factors; one that "
        "spreads it over many dimensions encodes more independent detail."
    )
    if r2:
        text += (
            " How much of one model's latent space a linear map from another's explains on "
            "held-out images (cross-validated R^2): "
            + "; ".join(
                f"{p.split('->')[1]} from {p.split('->')[0]}: {v:.2f}" for p, v in r2.items()
            )
            + ". "
            + _r2_verdict(r2)
        )
    return text


def _maps_answer(analysed: dict[int, ModelAnalysis]) -> str:
    out = []
    for d, a in analysed.items():
        ev = sum(a.pca_explained_variance[:2])
        how = (
            "so the PCA map is a faithful picture of the space"
            if ev >= PCA_FAITHFUL
            else "so the PCA map flattens most of the space away and t-SNE's neighbourhoods "
            "show more of its structure"
        )
        clause = f"latent {d}: PC1 + PC2 explain {ev:.0%}, {how}"
        tw = a.trustworthiness
        clause += (
            f" (trustworthiness of the neighbours shown: PCA {tw['pca']:.3f}, "
            f"t-SNE {tw['tsne']:.3f})"
        )
        knn = a.knn_accuracy
        if knn:
            clause += (
                f"; 5-NN label accuracy {knn['latent']:.0%} in the latent space, "
                f"{knn['pca']:.0%} in the PCA map, {knn['tsne']:.0%} in the t-SNE map"
            )
        out.append(clause)
    return (
        "PCA is a linear projection that keeps the directions of largest variance and "
        "global distances; t-SNE keeps local neighbourhoods and distorts distances between "
        "groups. " + "; ".join(out) + ". In the maps coloured by cluster, clusters that are "
        "separate in t-SNE but overlap in PCA differ in directions beyond the first two "
        "components."
    )


def _probe_answer(analysed: dict[int, ModelAnalysis], label_names) -> str | None:
    aucs = [(d, a.probe_auc) for d, a in analysed.items()]
    if not aucs or any(v is None for _, v in aucs):
        return None
    best = max(aucs, key=lambda x: x[1])
    verdict = (
        "captures the label well"
        if best[1] >= PROBE_GOOD
        else "captures the label only in part"
        if best[1] >= PROBE_SOME
        else "barely captures the label"
    )
    return (
        "A logistic-regression probe from the latent means to the label "
        f"({' / '.join(label_names or [])}), trained and scored on held-out images (5-fold "
        "ROC AUC; 0.5 = chance, 1 = perfect): "
        + "; ".join(f"latent {d}: {v:.3f}" for d, v in aucs)
        + f". The best, latent {best[0]}, {verdict}: the models were never shown the labels, "
        "so this is what unsupervised compression kept about them."
    )


def _strongest(trends: dict[str, Trend]) -> tuple[str, Trend]:
    name = max(trends, key=lambda n: abs(trends[n].effect))
    return name, trends[name]


def _path_sentence(it: PathSummary) -> tuple[str | None, str]:
    """The leading feature of one interpolation (None when nothing changes much) and a clause."""
    name, tr = _strongest(it.trends)
    words = FEATURE_WORDS.get(name, name)
    if abs(tr.effect) < MIN_EFFECT:
        return None, (
            f"{it.label}: no measured feature changes by {MIN_EFFECT} SD or more "
            f"(largest: {words}, {tr.effect:+.2f} SD)"
        )
    direction = "rises" if tr.effect > 0 else "falls"
    others = [
        FEATURE_WORDS.get(n, n)
        for n, v in it.trends.items()
        if n != name and abs(v.effect) >= MIN_EFFECT
    ]
    also = f"; also {', '.join(others)}" if others else ""
    return name, (
        f"{it.label}: {words} {direction} most, from {tr.start:.3g} to "
        f"{tr.end:.3g} ({tr.effect:+.2f} SD across images){also}"
    )


def _model_axes(d: int, a: ModelAnalysis, leading: list) -> str:
    moving = sorted({FEATURE_WORDS.get(n, n) for n in leading if n})
    if _collapsed(a):
        return (
            f"latent {d} has collapsed ({a.active_units} active units), so "
            "its paths barely change the decoded image"
        )
    if moving:
        return (
            f"latent {d}: its {len(leading)} axes lead with {len(moving)} different "
            f"feature{'s' if len(moving) != 1 else ''} ({', '.join(moving)})"
        )
    return f"latent {d}: no axis changes a measured feature by {MIN_EFFECT} SD"


def _axes_answer(analysed: dict[int, ModelAnalysis]) -> tuple[str, str, str]:
    per_axis, per_model = [], []
    by_axis: dict[str, list] = {}
    for d, a in analysed.items():
        clauses, leading = [], []
        for axis, it in a.interpolations.items():
            name, clause = _path_sentence(it)
            clauses.append(clause)
            leading.append(name)
            key = "latent dimension" if axis.startswith("z") else axis
            by_axis.setdefault(key, []).append(name)
        per_axis.append(f"Latent {d}: " + "; ".join(clauses) + ".")
        per_model.append(_model_axes(d, a, leading))
    axes_diff = []
    for axis, names in by_axis.items():
        found = [n for n in names if n]
        if not found:
            axes_diff.append(f"{axis}: no clear change in any model")
            continue
        common = max(sorted(set(found)), key=found.count)
        axes_diff.append(
            f"{axis}: {FEATURE_WORDS.get(common, common)} in "
            f"{found.count(common)} of {len(names)} models"
        )
    a1 = " ".join(per_axis) + (
        " Features are measured on the decoded images along each path; changes are given in "
        "standard deviations (SD) of the feature across the analysed images, and the figures' "
        "bottom panels plot them against t."
    )
    a2 = (
        "Leading feature of each axis, across models: " + "; ".join(axes_diff) + ". Axes "
        "with different leading features separate different properties of the images; axes "
        "sharing one are different views of the same dominant factor."
    )
    a3 = (
        "Between models: " + "; ".join(per_model) + ". More distinct leading features mean "
        "more factors of variation laid out along separate directions of the latent space."
    )
    return a1, a2, a3


def discussion(metrics: StudyMetrics) -> list[Answer]:
    """The study's questions, each answered by a paragraph built from ``metrics``."""
    models = metrics.trained
    if not models:
        return [
            Answer(
                "How does reconstruction differ between latent sizes, and why?",
                "No model finished training, so there is nothing to compare.",
            )
        ]
    label_names = metrics.data.label_names
    comparison = metrics.analysis
    ari = comparison.ari if comparison else {}
    r2 = comparison.linear_r2 if comparison else {}
    items = [
        Answer(
            "How does reconstruction differ between latent sizes, and why?", _recon_answer(models)
        )
    ]
    analysed = {d: m.analysis for d, m in sorted(models.items()) if m.analysis is not None}
    if not analysed:
        return items
    a1, a2, a3 = _axes_answer(analysed)
    items += [
        Answer(
            "Do the clusters show different images, and do the models cluster alike?",
            _cluster_answer(analysed, ari, label_names),
        ),
        Answer(
            "Is the latent space organised differently between models?",
            _organisation_answer(analysed, r2),
        ),
        Answer(
            "How do the PCA and t-SNE maps differ, between methods and between models, and why?",
            _maps_answer(analysed),
        ),
        Answer("What changes along each interpolation axis?", a1),
        Answer("How do the interpolation axes differ from each other?", a2),
        Answer("How do the models' interpolation axes differ?", a3),
    ]
    probe = _probe_answer(analysed, label_names)
    if probe:
        items.append(Answer("What did the unsupervised latent space learn about the label?", probe))
    return items
