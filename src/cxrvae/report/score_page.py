"""``score.html``: what scoring a batch found, findings first, in the report's style; and the
batch's conclusion in one sentence (the page opens with it, ``score.json`` keeps it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from .. import outputs
from ..analysis.twosample import MIN_PER_SIDE
from ..atomic import atomic_write, read_json
from ..results import SCORE_WORDS, from_dict
from ..score.summary import EnsembleScore, ModelScore, ScoreSummary
from ..thresholds import MIN_EFFECT, P_DIFFERENT
from .page import figure_entry, render
from .prose import differs, listed, num, pct, plural, sentence, short, signed


def _differs(m: ModelScore) -> bool:
    return (
        bool(m.classifier and m.classifier.low > 0.5)
        or (m.mmd_p or 1.0) < P_DIFFERENT
        or bool(_moved(m))
    )


def _moved(m: ModelScore) -> list[int]:
    """The latent dimensions whose corrected KS p-value is below ``P_DIFFERENT``, most moved
    first (numbered from 1)."""
    p = m.ks_p or []
    return [j + 1 for j in sorted(range(len(p)), key=lambda j: p[j]) if p[j] < P_DIFFERENT]


def _ks(m: ModelScore) -> str:
    """What the per-dimension KS tests found, for the model table."""
    if m.ks_p is None:
        return "-"
    moved = _moved(m)
    if not moved:
        return f"none of {len(m.ks_p)} (min p {num(min(m.ks_p), 3)})"
    shown = ", ".join(map(str, moved[:6])) + (" ..." if len(moved) > 6 else "")
    return f"{len(moved)} of {len(m.ks_p)}: {shown}"


def _auc(m: ModelScore) -> str:
    c = m.classifier
    return f"AUROC {num(c.value, 2)} [{num(c.low, 2)}, {num(c.high, 2)}]"


def conclusion(s: ScoreSummary) -> str:
    """One sentence: how the batch differs from the run's test images, or that it does not."""
    tested = {k: m for k, m in s.models.items() if m.classifier is not None}
    if not tested:
        return (
            f"Too few images for a batch test ({plural(s.n_images, 'image')}; at least "
            f"{MIN_PER_SIDE}): each image's scores are below."
        )
    k = max(tested, key=lambda d: (tested[d].classifier.low, -(tested[d].mmd_p or 1)))
    m = tested[k]
    evidence = f"latent {k} tells them apart with {_auc(m)}, MMD p = {num(m.mmd_p, 3)}"
    if not any(_differs(t) for t in tested.values()):
        return (
            f"No difference from the run's test images detected with n = {s.n_images} images "
            f"(latent {k}: {_auc(m)}, MMD p = {num(m.mmd_p, 3)}; no latent dimension moved by "
            "a KS test)."
        )
    if moved_dims := {d: _moved(t) for d, t in tested.items() if _moved(t)}:
        d, dims = max(moved_dims.items(), key=lambda kv: len(kv[1]) / len(tested[kv[0]].ks_p))
        evidence += (
            f"; {len(dims)} of latent {d}'s {len(tested[d].ks_p)} dimensions moved (KS, "
            "Bonferroni-corrected)"
        )
    moved = sorted((s.features or {}).items(), key=lambda kv: -abs(kv[1].effect))
    moved = [(f, v.effect) for f, v in moved[:2] if abs(v.effect) >= MIN_EFFECT]
    if not moved:
        return (
            f"This batch differs from the run's test images ({evidence}), though no chest-film "
            f"feature moves by {MIN_EFFECT} SD: the difference is in what the models encode."
        )
    by = " and ".join(differs(f, e) for f, e in moved)
    return f"This batch differs from the run's test images mainly by {by}: {evidence}."


def findings(s: ScoreSummary) -> list[str]:
    """The page's opening lines: the conclusion, the flags, the largest feature shift."""
    out = [s.conclusion or conclusion(s)]
    for k, m in s.models.items():
        out.append(_flags_sentence(k, m, s.n_images))
        if (e := m.ensemble) is not None:
            out.append(_seeds_sentence(k, e, s.n_images))
        if moved := _moved(m):
            dims = listed(str(j) for j in moved[:6]) + (" and others" if len(moved) > 6 else "")
            out.append(
                f"Latent {k}'s dimension{'s' if len(moved) > 1 else ''} {dims} moved: the batch's "
                "means there are distributed unlike the test images' (Kolmogorov-Smirnov, p < "
                f"{P_DIFFERENT} after Bonferroni correction for {len(m.ks_p)} dimensions)."
            )
    if s.features:
        f, v = max(s.features.items(), key=lambda kv: abs(kv[1].effect))
        out.append(
            sentence(
                f"{short(f)} is the feature that moves most: {num(v.reference, 3)} in the test "
                f"images, {num(v.batch, 3)} here (d = {signed(v.effect)})."
            )
        )
    return out


def _flags_sentence(k: int, m: ModelScore, n: int) -> str:
    """What latent ``k`` flags, with what images like the test images would give; or why it
    flags nothing when its test images are too few for the rate asked for."""
    if m.rate == 0:
        smallest = 1 / (m.n_reference + 1)
        return (
            f"Latent {k} flags nothing: against its {m.n_reference} test images no p-value can "
            f"be smaller than 1/{m.n_reference + 1} ({pct(smallest)}), above the {pct(m.fpr)} "
            f"false-positive rate asked for; use --fpr {smallest:.4g} or more."
        )
    mean, low, high = m.expected_flags
    return (
        f"Latent {k} flags {m.n_flagged} of {n} images, whose {short_score(m)} has a conformal "
        f"p-value of at most {pct(m.fpr)} against its {m.n_reference} test images; images "
        f"exchangeable with the test images would give {num(mean)} flags (95% interval "
        f"{low:.0f} to {high:.0f}), a false-positive rate of {pct(m.rate)}."
    )


def _seeds_sentence(k: int, e: EnsembleScore, n: int) -> str:
    """What the models of every seed of latent ``k`` flag together, and how far they agree."""
    each = listed(str(f) for f in e.flagged_per_seed)
    agree = (
        f"of the {e.flagged_by_any} images some seed flags, {e.flagged_by_every} are flagged by "
        f"every seed"
        if e.flagged_by_any
        else "no seed flags any image"
    )
    return (
        f"Averaged over its {e.n_seeds} seeds (an ensemble), latent {k} flags {e.n_flagged} of "
        f"{n} images; its seeds' models flag {each} on their own, and {agree}."
    )


def short_score(m: ModelScore) -> str:
    return SCORE_WORDS[m.flag_score].split(" (")[0]


def _expected(m: ModelScore) -> str:
    if m.rate == 0:
        return "- (too few test images)"
    mean, low, high = m.expected_flags
    return f"{num(mean)} [{low:.0f}, {high:.0f}]"


def _model_rows(s: ScoreSummary) -> list[list[str]]:
    rows = []
    for k, m in s.models.items():
        rows.append([
            f"latent {k}", f"{m.n_flagged} of {s.n_images}", _expected(m),
            _auc(m).removeprefix("AUROC ") if m.classifier else "-",
            num(m.mmd, 4) if m.mmd is not None else "-",
            num(m.mmd_p, 3) if m.mmd_p is not None else "-",
            _ks(m),
            f"{num(m.medians[m.flag_score], 3)} / {num(m.reference_medians[m.flag_score], 3)}",
        ])  # fmt: skip
    return rows


def _feature_rows(s: ScoreSummary) -> list[list[str]]:
    items = sorted((s.features or {}).items(), key=lambda kv: -abs(kv[1].effect))
    return [[short(f), num(v.reference, 3), num(v.batch, 3), signed(v.effect)] for f, v in items]


def build_score_page(out) -> Path:
    """Write ``out/score.html`` from ``score.json`` and the figures in ``out``."""
    out = Path(out)
    s = from_dict(ScoreSummary, read_json(out / outputs.SCORE_JSON))
    any_model = next(iter(s.models.values()))
    values = {"flag_words": SCORE_WORDS[any_model.flag_score], "fpr": pct(any_model.fpr)}
    figures = {}
    for key, spec in outputs.SCORE_FIGURES.items():
        names = [{"latent_dim": k} for k in s.models] if "{latent_dim}" in spec.path else [{}]
        figures[spec.section] = figures.get(spec.section, []) + [
            f for n in names if (f := figure_entry(out, key, spec, n, values))
        ]
    html = render(
        "score.html",
        s=s,
        findings=findings(s),
        model_head=[
            "model",
            "flagged",
            "expected [95% interval]",
            "classifier AUROC [95% interval]",
            "MMD²",
            "MMD p",
            "dimensions moved (KS)",
            f"median {short_score(any_model)}: here / test",
        ],  # fmt: skip
        model_rows=_model_rows(s),
        feature_rows=_feature_rows(s),
        figures=figures,
        flag_words=values["flag_words"],
        fpr=values["fpr"],
        built=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    return atomic_write(out / outputs.SCORE_PAGE, lambda t: t.write_text(html, encoding="utf-8"))
