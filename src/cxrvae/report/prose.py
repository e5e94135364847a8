"""How the report puts numbers into words: the answer and table types, number formats, and
the phrases that name features, axes and agreement. The thresholds that decide what a sentence
claims are in :mod:`cxrvae.thresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.features import short, words
from ..data.xray import label_word
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
    """A number with thousands separators and ``digits`` decimals (never ``-0.0``)."""
    return f"{x:,.{digits}f}".replace("-", "", 1) if round(x, digits) == 0 else f"{x:,.{digits}f}"


def pct(x: float, digits: int = 0) -> str:
    """A share as a percentage, whole unless ``digits``."""
    return f"{100 * x:.{digits}f}%"


def signed(x: float) -> str:
    """An effect size or change, signed, two decimals."""
    return f"{x:+.2f}"


__all__ = ["short", "words"]  # the feature words, with the phrases below


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised, as a sentence starts."""
    return text[:1].upper() + text[1:]


def images_of(label: str) -> str:
    """The images of a label: ``pneumonia images``, or ``images labelled 1`` for a label
    known only by its number."""
    return f"{label} images" if label_word(label) == str(label) else f"images labelled {label}"


def listed(items) -> str:
    """``4``, ``4 and 16``, ``4, 16 and 32``."""
    items = [str(i) for i in items]  # any iterable
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 set``, ``2 sets``."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def probe_ends(probe, label_names) -> str:
    """How a path's two ends read to the label probe: ``normal (0.07) to pneumonia (0.97)``
    with two labels (the numbers are the probability of ``probe.label``)."""
    p0, p1 = probe.probability[0], probe.probability[-1]
    if label_names and len(label_names) == 2:
        other = next(n for n in label_names if n != probe.label)
        a, b = (label_word(probe.label if p >= 0.5 else other) for p in (p0, p1))
        if a == b:
            return f"{a} throughout ({num(p0, 2)} to {num(p1, 2)})"
        return f"{a} ({num(p0, 2)}) to {b} ({num(p1, 2)})"
    return f"p({label_word(probe.label)}) {num(p0, 2)} to {num(p1, 2)}"


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


AXIS_NAMES = {"pca1": "PCA 1", "pca2": "PCA 2", "tsne1": "t-SNE 1", "tsne2": "t-SNE 2"}


def axis_name(axis: str) -> str:
    """An interpolation axis as a table names it: ``PCA 1``...; a latent dimension's axis is
    the ``most used dimension``."""
    return AXIS_NAMES.get(axis, "most used dimension")


def axis_phrase(axis: str) -> str:
    """An interpolation axis inside a sentence: ``PCA 1``..., ``the most used dimension``."""
    return AXIS_NAMES.get(axis, "the most used dimension")


def grouping(ari: float) -> str:
    """How alike two clusterings of adjusted Rand index ``ari`` group the images, in words."""
    if ari >= ARI_SAME:
        return "alike"
    return "differently" if ari < ARI_DIFFERENT else "in part alike"
