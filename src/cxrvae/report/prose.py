"""How the report puts numbers into words: the answer and table types, number formats, and
the phrases that name features, axes and agreement. The thresholds that decide what a sentence
claims are in :mod:`cxrvae.thresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.features import WORDS
from ..thresholds import ARI_DIFFERENT, ARI_SAME, SILHOUETTE_CLEAR, SILHOUETTE_WEAK


@dataclass
class Table:
    """A compact evidence table: a header row, then rows of text cells."""

    head: list[str]
    rows: list[list[str]]


@dataclass
class Answer:
    """One question of the study: its one-sentence answer, evidence and reasons."""

    key: str  # the anchor of its table: tab-<key>
    question: str
    answer: str
    table: Table | None = None
    why: list[str] = field(default_factory=list)


@dataclass
class Finding:
    """A one-line conclusion with its number, and the anchor of what shows it."""

    text: str
    anchor: str


def num(x: float, digits: int = 1) -> str:
    """A number with thousands separators and ``digits`` decimals."""
    return f"{x:,.{digits}f}"


def pct(x: float) -> str:
    """A share as a whole percentage."""
    return f"{100 * x:.0f}%"


def signed(x: float) -> str:
    """An effect size or change, signed, two decimals."""
    return f"{x:+.2f}"


def words(feature: str) -> str:
    """A feature's description (see :data:`cxrvae.data.features.WORDS`)."""
    return WORDS.get(feature, feature)


def short(feature: str) -> str:
    """A feature's name without its explanation in brackets."""
    return words(feature).split(" (")[0]


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 set``, ``2 sets``."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def probe_ends(probe, label_names) -> str:
    """How a path's two ends read to the label probe: ``normal (0.07) to pneumonia (0.97)``
    with two labels (the numbers are the probability of ``probe.label``)."""
    p0, p1 = probe.probability[0], probe.probability[-1]
    if label_names and len(label_names) == 2:
        other = next(n for n in label_names if n != probe.label)
        a, b = (probe.label if p >= 0.5 else other for p in (p0, p1))
        if a == b:
            return f"{a} throughout ({num(p0, 2)} to {num(p1, 2)})"
        return f"{a} ({num(p0, 2)}) to {b} ({num(p1, 2)})"
    return f"p({probe.label}) {num(p0, 2)} to {num(p1, 2)}"


def differs(feature: str, effect: float) -> str:
    """``lower sharpness of edges (d = -1.43)``: the direction of a label difference."""
    return f"{'higher' if effect > 0 else 'lower'} {short(feature)} (d = {signed(effect)})"


def row(label: str, dims, value) -> list[str]:
    """A table row: ``label``, then ``value(d)`` for each latent size ``d``."""
    return [label, *[value(d) for d in dims]]


def models_table(dims, rows: list[list[str]]) -> Table:
    """A table with one column per model."""
    return Table(["", *[f"latent {d}" for d in dims]], rows)


def separation(sil: float) -> str:
    """How separated clusters of a given silhouette are, in words."""
    if sil >= SILHOUETTE_CLEAR:
        return "well separated"
    return "cuts through a continuum" if sil < SILHOUETTE_WEAK else "moderately separated"


def axis_name(axis: str) -> str:
    """``pca1`` -> ``PCA 1``...; a latent dimension's axis is the most used dimension."""
    names = {"pca1": "PCA 1", "pca2": "PCA 2", "tsne1": "t-SNE 1", "tsne2": "t-SNE 2"}
    return names.get(axis, "most used dimension")


def grouping(ari: float) -> str:
    """How alike two clusterings of adjusted Rand index ``ari`` group the images, in words."""
    if ari >= ARI_SAME:
        return "alike"
    return "differently" if ari < ARI_DIFFERENT else "in part alike"
