"""How the report weighs a comparison between latent sizes against the variation between seeds:
the clause every ranking sentence ends with, and (with ``--seeds N``) the answers on how much
each number varies between seeds and whether the latent spaces differ more between sizes than
between seeds. The numbers are those of ``metrics.seeds`` (:class:`~cxrvae.results.SeedVariation`).
"""

from __future__ import annotations

import math

from ..results import SEED_MEASURES, OverSeeds, SeedVariation, StudyMetrics
from ..thresholds import SEED_MARGIN, SUGGESTED_SEEDS
from .prose import Answer, Table, axis_name, listed, num, pct, short

UNTESTED = (
    "one training per size, so not tested against seed variation "
    f"(--seeds {SUGGESTED_SEEDS} tests it)"
)
ONLY_ONE = "the only latent size trained, so there is nothing to rank it against"
DIGITS = {"silhouette": 2, "label_ari": 2, "probe_auc": 3, "pca_gain": 2}  # others: 1


def _fmt(measure: str, x: float, extra: int = 0) -> str:
    if measure == "pca_gain":
        return pct(x, extra)
    if measure.startswith("anomaly_"):
        return num(x, 3 + extra)
    return num(x, DIGITS.get(measure, 1) + extra)


def _sd(measure: str, sd: float) -> str:
    """A standard deviation with up to two more digits than its measure, so that a spread
    smaller than the last shown digit does not read as none."""
    extra = 0
    while (
        extra < 2 and sd > 0 and float(_fmt(measure, sd, extra).rstrip("%").replace(",", "")) == 0
    ):
        extra += 1
    return _fmt(measure, sd, extra)


def holds(a: OverSeeds, b: OverSeeds, a_better: bool) -> bool:
    """Whether the means over the seeds put ``a`` ahead of ``b`` (``a_better``: higher) by more
    than ``SEED_MARGIN`` standard deviations between seeds (the two SDs pooled)."""
    pooled = math.sqrt((a.sd**2 + b.sd**2) / 2)
    gap = (a.mean - b.mean) if a_better else (b.mean - a.mean)
    return gap > SEED_MARGIN * pooled


def verdict(
    metrics: StudyMetrics, measure: str, first: int, second: int | None, higher: bool
) -> str:
    """The clause that says whether latent ``first`` beats latent ``second`` on ``measure``
    (``higher`` is better) by more than the seeds vary, with the means and SDs over the seeds;
    that the comparison was not tested, with one training per size."""
    if second is None:
        return ONLY_ONE
    v = metrics.seeds
    per_size = v.numbers.get(measure, {}) if v else {}
    if first not in per_size or second not in per_size:
        return UNTESTED
    a, b = per_size[first], per_size[second]
    means = (
        f"over {v.n_seeds} seeds latent {first} averages {_fmt(measure, a.mean)} (SD "
        f"{_sd(measure, a.sd)}) and latent {second} {_fmt(measure, b.mean)} (SD "
        f"{_sd(measure, b.sd)})"
    )
    if holds(a, b, higher):
        return f"{means}: the difference exceeds the variation between seeds, so the ranking holds"
    if holds(b, a, higher):
        return f"{means}: the means rank them the other way, beyond the variation between seeds"
    return f"{means}: within the variation between seeds, so no ranking is supported"


def _cell(measure: str, o: OverSeeds) -> str:
    whole = measure in ("active_units", "kl_dims_used")  # counts: their values are whole
    values = ", ".join(str(round(x)) if whole else _fmt(measure, x) for x in o.values)
    return f"{_fmt(measure, o.mean)} ± {_sd(measure, o.sd)} ({values})"


def spread_answer(metrics: StudyMetrics) -> Answer | None:
    """How much each number varies between seeds, and which comparisons of sizes hold."""
    v: SeedVariation = metrics.seeds
    if v is None or not v.numbers:
        return None
    dims = sorted({k for per_size in v.numbers.values() for k in per_size})
    rows = [
        [SEED_MEASURES[m], *(_cell(m, per_size[k]) if k in per_size else "-" for k in dims)]
        for m, per_size in v.numbers.items()
    ]
    table = Table(["", *[f"latent {d}" for d in dims]], rows)
    separated = [
        SEED_MEASURES[m]
        for m, per_size in v.numbers.items()
        if len(per_size) > 1 and _separated(per_size)
    ]
    within = [SEED_MEASURES[m] for m in v.numbers if SEED_MEASURES[m] not in separated]
    if separated:
        answer = (
            f"Over {v.n_seeds} seeds, the latent sizes differ by more than their seeds do in "
            f"{listed(short_names(separated))}; "
            + (f"not in {listed(short_names(within))}." if within else "in every number.")
        )
    else:
        answer = (
            f"Over {v.n_seeds} seeds, no number separates the latent sizes by more than the "
            "seeds alone move it."
        )
    why = [
        f"Each cell is the mean ± the standard deviation over the {v.n_seeds} trainings of that "
        "size, then every value (the first is the run's own model): the SD is the spread "
        "another seed is expected to add, and with so few seeds it is itself uncertain, which is "
        "why the values are shown too.",
        f"Two sizes differ by a number when their means lie more than {SEED_MARGIN:g} SDs apart "
        "(the two sizes' SDs pooled); the seeds figure shows every value.",
    ]
    question = "How much do the numbers vary between trainings that differ only in their seed?"
    return Answer("seed-spread", question, answer, table, why)


def short_names(names: list[str]) -> list[str]:
    return [n.split(" (")[0] for n in names]


def _separated(per_size: dict[int, OverSeeds]) -> bool:
    """Whether some two sizes' means lie further apart than the seeds vary (either way)."""
    dims = sorted(per_size)
    return any(
        holds(per_size[a], per_size[b], per_size[a].mean > per_size[b].mean)
        for i, a in enumerate(dims)
        for b in dims[i + 1 :]
    )


def spaces_answer(metrics: StudyMetrics) -> Answer | None:
    """Whether the latent spaces, clusterings and maps differ more between sizes than between
    seeds of one size: linear CKA, ARI and Procrustes agreement, within against between."""
    v = metrics.seeds
    if v is None or not v.cka_alike.between:
        return None
    dims = sorted(v.cka_alike.within)
    within, between = v.cka_alike.least_within, v.cka_alike.most_between
    if between < within:
        answer = (
            f"Yes: two latent sizes' spaces are less alike than two seeds of one size (linear "
            f"CKA at most {num(between, 2)} between sizes, at least {num(within, 2)} between "
            "seeds), so the sizes organise the images differently."
        )
    else:
        answer = (
            f"Not beyond the seeds: two latent sizes' spaces are as alike as two seeds of one "
            f"size can be (linear CKA up to {num(between, 2)} between sizes, down to "
            f"{num(within, 2)} between seeds), so the differences between the models are in "
            "part those of their seeds."
        )
    pairs = sorted(v.cka_alike.between)
    head = [
        "",
        *[f"seeds of latent {d}" for d in dims],
        *[f"latent {p.replace('-', ' vs ')}" for p in pairs],
    ]
    rows = [
        [name, *(num(a.within[d], 2) for d in dims), *(num(a.between[p], 2) for p in pairs)]
        for name, a in (
            ("linear CKA of the latent means", v.cka_alike),
            ("ARI of the K-means clusters", v.ari_alike),
            ("PCA maps alike (1 - Procrustes)", v.map_alike),
        )
    ]
    question = "Is the latent space organised differently between models, or only between seeds?"
    return Answer("seed-spaces", question, answer, Table(head, rows), _spaces_why(v))


def _spaces_why(v: SeedVariation) -> list[str]:
    return [
        "Linear CKA (Kornblith et al. 2019) compares the latent means of the same sampled images "
        "under two models, whatever their sizes, unchanged by a rotation or scaling of either "
        "space; the CKA figure shows every pair. The clusters and the maps are compared alike in "
        "their answers: the ARI of two models' K-means partitions, and the agreement of their "
        "PCA maps after an orthogonal Procrustes alignment.",
    ]


def clusters_clause(v: SeedVariation | None) -> str:
    """Whether two sizes' K-means partitions agree less than two seeds' of one size do."""
    if v is None or not v.ari_alike.between:
        return "not tested against seed variation"
    within, between = v.ari_alike.least_within, v.ari_alike.most_between
    verdict = (
        "the sizes cluster differently beyond what the seeds change"
        if between < within
        else "no more apart than two seeds' clusters"
    )
    return (
        f"two seeds of one size agree with an ARI of at least {num(within, 2)}, two sizes at most "
        f"{num(between, 2)}: {verdict}"
    )


def maps_clause(v: SeedVariation | None) -> str:
    """Whether two sizes' PCA maps differ more than two seeds' of one size do."""
    if v is None or not v.map_alike.between:
        return (
            "whether two sizes' maps differ more than two trainings of one size would was not "
            f"tested (--seeds {SUGGESTED_SEEDS} tests it)"
        )
    within, between = v.map_alike.least_within, v.map_alike.most_between
    if between < within:
        return (
            f"between models, two latent sizes' PCA maps differ more than two seeds of one size "
            f"do (aligned by an orthogonal Procrustes fit they agree by at most {num(between, 2)}, "
            f"two seeds' by at least {num(within, 2)})"
        )
    return (
        f"between models, two latent sizes' PCA maps differ no more than two seeds of one size "
        f"can (aligned by an orthogonal Procrustes fit they agree by up to {num(between, 2)}, two "
        f"seeds' by as little as {num(within, 2)}), so part of what differs between the models' "
        "maps is their seeds"
    )


def axes_sentence(v: SeedVariation | None) -> str | None:
    """Whether the feature each interpolation axis changes most is the same in every seed."""
    if v is None:
        return None
    stable, moved = [], []
    for axis, per_size in v.axes.items():
        for d, leaders in per_size.items():
            (stable if len(set(leaders)) == 1 and leaders[0] else moved).append((axis, d))
    if not stable and not moved:
        return None
    n = len(stable) + len(moved)
    if not moved:
        return f"Over {v.n_seeds} seeds, every axis changes most the same feature in every seed."
    axis, d = moved[0]
    leaders = listed(short(f) for f in dict.fromkeys(v.axes[axis][d]) if f)
    which = f"{len(stable)} of {n} axes" if stable else f"none of the {n} axes"
    return (
        f"Over {v.n_seeds} seeds, the feature an axis changes most is the same in every seed for "
        f"{which}: another seed's axis leads elsewhere (for example {axis_name(axis)} of latent "
        f"{d}: {leaders}), so one seed's axes are one of several orientations the space can take."
    )
