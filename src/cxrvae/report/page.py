"""The study report: one self-contained HTML file built from a run folder's files.

Reads ``config.json`` and ``metrics.json`` (as :mod:`cxrvae.results` types) and the figures
that :mod:`cxrvae.outputs` lists; the key findings come from :mod:`.findings`, the discussion
from :mod:`.discussion`; the page is ``templates/report.html``. Every text from the input is
escaped.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from .. import outputs
from ..atomic import atomic_write, read_json
from ..config import RunConfig
from ..results import DataSummary, StudyMetrics
from ..runfolder import read_metrics
from .discussion import discussion
from .findings import key_findings


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt(x, digits=1) -> str:
    return f"{x:,.{digits}f}"


def figure_entry(
    out: Path, key: str, spec: outputs.FigureSpec, names: dict, values: dict
) -> dict | None:
    """One figure for the page (embedded PNG, caption, anchor), or None when it was not drawn.

    The anchor is ``fig-<key>``, then ``-<latent_dim>`` and ``-<axis>`` for a model's figures.
    """
    path = spec.file(out, **names)
    if not path.exists():
        return None
    anchor = "-".join(["fig", key, *(str(names[k]) for k in ("latent_dim", "axis") if k in names)])
    return {
        "id": anchor,
        "src": _img(path),
        "name": path.name,
        "caption": spec.text(**values, **names),
    }


SECTIONS = ("data", "training", "reconstructions", "clusters", "interpolations", "samples", "seeds")
# The discussion's answers that show figures of their own (the seeds section's)
ANSWER_FIGURES = {"seed-spread": "seeds", "seed-spaces": "cka"}


def render(template: str, **values) -> str:
    """One of ``templates/``, rendered with every value escaped."""
    env = Environment(
        loader=PackageLoader("cxrvae.report", "templates"), autoescape=select_autoescape(["html"])
    )
    return env.get_template(template).render(**values)


def _figures(out: Path, metrics: StudyMetrics, values: dict):
    """Every drawn figure by report section: the run-wide ones, and each model's."""
    run_figs, model_figs = {}, {}
    for section in SECTIONS:
        specs = outputs.figures_in(section).items()
        run_wide = [(k, s) for k, s in specs if "{latent_dim}" not in s.path]
        per_model = [(k, s) for k, s in specs if "{latent_dim}" in s.path]
        run_figs[section] = [f for k, s in run_wide if (f := figure_entry(out, k, s, {}, values))]
        model_figs[section] = []
        for d in sorted(metrics.models):
            figs = []
            for key, spec in per_model:
                for names in _names(spec, d, metrics):
                    if f := figure_entry(out, key, spec, names, values):
                        figs.append(f)
            if figs:
                model_figs[section].append((d, figs))
    return run_figs, model_figs


def _names(spec: outputs.FigureSpec, latent_dim: int, metrics: StudyMetrics) -> list[dict]:
    """The file-name fields of ``spec`` for one model: one per interpolation axis, if any."""
    if "{axis}" not in spec.path:
        return [{"latent_dim": latent_dim}]
    analysis = metrics.models[latent_dim].analysis
    paths = analysis.interpolations if analysis else {}
    return [{"latent_dim": latent_dim, "axis": a, "label": p.label} for a, p in paths.items()]


SPLIT_WORDS = {"seeded": " (seeded split)", "source": " (the source's own split)"}


def _data_rows(data: DataSummary) -> list[tuple[str, object]]:
    rows = [
        ("source", data.source),
        ("reading", data.reading),
        ("images", data.n_images),
        ("train / test", f"{data.n_train} / {data.n_test}" + SPLIT_WORDS[data.split]),
        (
            "image size",
            f"{data.image_size} x {data.image_size} px "
            f"(source {' x '.join(map(str, data.native_shape))}, {data.source_dtype})",
        ),
        ("normalisation", f"min-max, {data.normalize}"),
    ]
    if data.label_counts:
        rows.append(("labels", ", ".join(f"{k}: {v}" for k, v in data.label_counts.items())))
    if data.n_patients:
        rows.append(("patients", f"{data.n_patients} (each on one side of the split)"))
    rows += [("note", note) for note in data.notes]
    return rows


TRAINING_HEAD = (
    "latent",
    "test loss",
    "test BCE",
    "test KL",
    "train loss",
    "epochs",
    "train s",
    "active units",
    "K",
    "silhouette",
)


def _training_rows(metrics: StudyMetrics) -> list[list]:
    rows = []
    for d, m in sorted(metrics.models.items()):
        if not m.ok:
            failed = f"training failed after {m.epochs} good epochs: {m.failed}"
            rows.append([d, failed, *["-"] * (len(TRAINING_HEAD) - 2)])
            continue
        a = m.analysis
        rows.append(
            [
                d,
                _fmt(m.test_loss),
                _fmt(m.test_bce),
                _fmt(m.test_kl, 2),
                _fmt(m.train_loss),
                m.epochs,
                _fmt(m.train_seconds, 0),
                a.active_units if a else "-",
                a.n_clusters if a else "-",
                f"{a.silhouette_chosen:.3f}" if a and a.silhouette_chosen is not None else "-",
            ]
        )
    return rows


def _quality_rows(metrics: StudyMetrics) -> list[list]:
    return [
        [
            d,
            _fmt(a.test_bce.mean),
            _fmt(a.test_bce_floor.mean),
            _fmt(a.test_bce_above_floor.mean),
            _fmt(a.test_mse.mean, 4),
            _fmt(a.test_psnr.mean, 2),
            _fmt(a.test_ssim.mean, 3),
        ]
        for d, a in sorted(metrics.analysed.items())
    ]


def _reference_rows(metrics: StudyMetrics) -> list[list]:
    rows = []
    for d, a in sorted(metrics.analysed.items()):
        b, ll = a.linear_baseline, a.log_likelihood
        if b is None or ll is None:
            continue
        rows.append(
            [
                d,
                _fmt(b.bce_above_floor),
                _fmt(b.ssim, 3),
                f"{100 * b.error_removed:.0f}%",
                _fmt(ll.nats),
                _fmt(ll.bits_per_pixel, 3),
                _fmt(ll.elbo),
                _fmt(ll.gap),
            ]
        )
    return rows


def build_report(out) -> Path:
    """Write ``out/report.html`` from ``config.json``, ``metrics.json`` and the figures."""
    out = Path(out)
    saved = read_json(out / outputs.CONFIG)
    metrics = read_metrics(out)
    a = RunConfig.from_dict(saved["config"]).analysis
    ex = metrics.data.exploration
    values = {  # what captions may quote, from the saved configuration and measurements
        "n_reconstructions": a.n_reconstructions,
        "n_between": a.n_between,
        "traversal_sd": f"{a.traversal_sd:g}",
        "near_rms": f"{ex.duplicates.near_threshold:g}" if ex and ex.duplicates else "",
    }
    refs = [m for m in metrics.analysed.values() if m.linear_baseline and m.log_likelihood]
    ref = refs[0] if refs else None
    run_figures, model_figures = _figures(out, metrics, values)
    # Each model's seconds add up to more than the wall time only when they trained at once.
    train_wall = metrics.timings.train
    trained = [m.train_seconds for m in metrics.trained.values()]
    html = render(
        "report.html",
        train_wall=None if train_wall is None else _fmt(train_wall, 0),
        at_once=train_wall is not None and sum(trained) > train_wall,
        source=metrics.data.source,
        seed=saved["seed"],
        device=saved.get("device", "?"),
        versions=saved.get("versions", {}),
        built=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        data_rows=_data_rows(metrics.data),
        table_head=TRAINING_HEAD,
        table_rows=_training_rows(metrics),
        run_figures=run_figures,
        model_figures=model_figures,
        analysed=bool(metrics.analysed),
        quality_rows=_quality_rows(metrics),
        sample_note=metrics.analysis.sample_note if metrics.analysis else None,
        n_between=values["n_between"],
        findings=key_findings(metrics),
        reference_rows=_reference_rows(metrics),
        reference_fit=ref.linear_baseline.n_fit if ref else "",
        reference_k=ref.log_likelihood.n_importance if ref else "",
        reference_n=ref.log_likelihood.n_images if ref else "",
        discussion=discussion(metrics),
        answer_figures={
            key: [f for f in run_figures["seeds"] if f["id"] == f"fig-{name}"]
            for key, name in ANSWER_FIGURES.items()
        },
        n_seeds=metrics.seeds.n_seeds if metrics.seeds else 1,
        config_json=json.dumps(saved["config"], indent=2),
    )
    return atomic_write(out / outputs.REPORT, lambda tmp: tmp.write_text(html, encoding="utf-8"))
