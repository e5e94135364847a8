"""The report's discussion: the study's questions, answered from the run's measured numbers.

Each answer opens with one sentence that answers the question, then a compact table of the
evidence (models as columns), then a few sentences of why that point to figures. Every number
quoted is a value of ``metrics.json``, rounded; what a sentence claims follows the thresholds
of :mod:`cxrvae.thresholds`. Nothing about labels is said of a set without them. The answers
on how each latent space is organised are in :mod:`.map_answers`.
"""

from __future__ import annotations

from ..data.xray import label_word
from ..results import DataSummary, ModelAnalysis, StudyMetrics
from ..thresholds import ACTIVE_VARIANCE, BETTER, COLLAPSED, LINEAR_SHARED, USED_KL
from .map_answers import anomaly_answer, axes_answer, cluster_answer, maps_answer, probe_answer
from .prose import (
    Answer,
    Table,
    differs,
    images_of,
    listed,
    models_table,
    num,
    pct,
    plural,
    row,
    signed,
    words,
)
from .reading import analysed_models, runner_up
from .seeds import spaces_answer, spread_answer, verdict

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
            f"Compared with {images_of(labels[0])}, {images_of(labels[1])} have mostly "
            f"{differs(a, f[a].effect)} and {differs(b, f[b].effect)}; across all images "
            f"exposure ranges from {num(exp.p5, 2)} to {num(exp.p95, 2)}."
        )
    else:
        answer = (
            f"Across the middle 90% of the images, exposure ranges from {num(exp.p5, 2)} to "
            f"{num(exp.p95, 2)} and contrast from {num(con.p5, 3)} to {num(con.p95, 3)}."
        )
    head = ["feature", "5th pct", "median", "95th pct"]
    head += [f"d ({label_word(labels[1])} - {label_word(labels[0])})"] if labels else []
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
    among = (
        f" among a sample of {num(dup.near_compared, 0)} images"
        if dup.near_compared < data.n_images
        else ""
    )
    near = (
        f"Near-identical pairs{among} (RMS difference at most {dup.near_threshold:g} on 16 x 16 "
        f"versions): {num(dup.near_pairs, 0)}, {num(dup.near_straddling, 0)} across the "
        "train/test split."
    )
    if dup.identical_images:
        joined = (
            f", {plural(dup.identical_regrouped, 'set')} spanning patients"
            if dup.identical_regrouped
            else ""
        )
        why.append(
            f"Pixel-identical copies: {dup.identical_images} images in "
            f"{plural(dup.identical_groups, 'set')}{joined}; each set is kept on one side of the "
            f"split. {near}"
        )
    elif dup.near_pairs:
        why.append(near + " Pairs across the split leak test images into training.")
    return why


# --------------------------------------------------------------------------- reconstruction


def _recon_answer(
    metrics: StudyMetrics, analysed: dict[int, ModelAnalysis], rates: dict[int, float]
) -> Answer:
    dims = sorted(analysed)
    err = {d: analysed[d].test_bce_above_floor.mean for d in dims}
    lo, hi = dims[0], dims[-1]
    if 1 - err[hi] / max(err[lo], 1e-12) > BETTER:
        drop = {b: err[a] - err[b] for a, b in zip(dims, dims[1:])}
        where = max(drop, key=drop.get)
        answer = (
            f"Larger codes reconstruct better: the error above the floor falls from "
            f"{num(err[lo])} (latent {lo}) to {num(err[hi])} nats per image (latent {hi}), "
            f"most between latent {dims[dims.index(where) - 1]} and {where}; "
            f"{verdict(metrics, 'above_floor', hi, lo, higher=False)}."
        )
    else:
        answer = (
            f"A larger code does not reconstruct better here: the error above the floor is "
            f"{num(err[lo])} nats per image for latent {lo} and {num(err[hi])} for latent {hi}; "
            f"{verdict(metrics, 'above_floor', lo, hi, higher=False)}."
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
    why = _recon_why(metrics, dims, rates, base, ll)
    return Answer("reconstruction", question, answer, models_table(dims, rows), why)


def _recon_why(metrics, dims, rates, base, ll) -> list[str]:
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
        better = [d for d in dims if base[d].error_removed > 0]
        worse = [d for d in dims if d not in better]
        verb = "beats" if len(better) == 1 else "beat"
        pays = (
            "pays more in KL for its code than its non-linear decoder recovers"
            if len(worse) == 1
            else "pay more in KL for their codes than their non-linear decoders recover"
        )
        why.append(
            f"Only latent {listed(better)} {verb} PCA with as many components; latent "
            f"{listed(worse)} {pays}."
        )
    best = max(dims, key=lambda d: ll[d].nats)
    gaps = [ll[d].gap for d in dims]
    second = runner_up(ll, best, lambda x: x.nats)
    why.append(
        f"The importance-weighted log-likelihood ({ll[best].n_importance} samples per image, "
        f"{ll[best].n_images} test images) is highest for latent {best}; "
        f"{verdict(metrics, 'log_likelihood', best, second, higher=True)}. The ELBO with "
        f"sampled codes lies {num(min(gaps))} to {num(max(gaps))} nats below it."
    )
    return why


# --------------------------------------------------------------------------- latent use


def _use_answer(analysed: dict[int, ModelAnalysis], r2: dict) -> Answer:
    dims = sorted(analysed)
    used = {d: analysed[d].kl_dims_used for d in dims}
    collapsed = [str(d) for d in dims if used[d] <= COLLAPSED]
    answer = f"The models carry information in {listed(f'{used[d]} of {d}' for d in dims)} "
    answer += "dimensions" + (
        f"; latent {listed(collapsed)} {'has' if len(collapsed) == 1 else 'have'} collapsed to "
        "the prior."
        if collapsed
        else "."
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


# --------------------------------------------------------------------------- the whole


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
        _recon_answer(metrics, analysed, rates),
        spread_answer(metrics),
        _use_answer(analysed, comparison.linear_r2 if comparison else {}),
        cluster_answer(analysed, comparison, metrics.data, metrics.seeds),
        maps_answer(analysed, metrics.seeds),
        spaces_answer(metrics),
        axes_answer(analysed, comparison, metrics.data.label_names, metrics.seeds),
        probe_answer(metrics, analysed),
        anomaly_answer(metrics, analysed),
    ]
    return [a for a in items if a]


def word_count(answers: list[Answer]) -> int:
    """Words of the discussion's prose (questions, answers, reasons), tables left out."""
    return sum(len(f"{a.question} {a.answer} {' '.join(a.why)}".split()) for a in answers)
