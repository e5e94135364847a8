"""The discussion and the key findings follow the numbers, with and without labels; the HTML
escapes what comes from the input and every finding links to something on the page."""

import copy
import json
import re

import pytest

from cxrvae.discussion import discussion, word_count
from cxrvae.features import NAMES
from cxrvae.findings import key_findings
from cxrvae.prose import MIN_EFFECT, probe_ends
from cxrvae.report import build_report
from cxrvae.results import ProbePath, StudyMetrics, from_dict

DIMS = (4, 16, 32)
AXES = ("pca1", "pca2", "tsne1", "tsne2", "z0")


def _spread(mean):
    return {"mean": mean, "median": mean, "p10": mean, "p90": mean}


def _trends(effects):
    return {f: {"start": 0.5, "end": 0.6, "slope": e, "effect": e} for f, e in effects.items()}


def _analysis(d, above, labels=True, used=None, active=None, effects=None):
    effects = effects or {"exposure": -2.0, "contrast": 1.0}
    effects = {f: effects.get(f, 0.1) for f in NAMES}
    a = {
        "n_samples": 300,
        "test_bce": _spread(2300 + above),
        "test_bce_floor": _spread(2300.0),
        "test_bce_above_floor": _spread(above),
        "test_mse": _spread(0.01),
        "test_psnr": _spread(20.0),
        "test_ssim": _spread(0.6),
        "n_clusters": 2,
        "silhouette": {"2": 0.2, "3": 0.1},
        "cluster_sizes": [200, 100],
        "cluster_features": [{"exposure": 0.4}, {"exposure": 0.6}],
        "cluster_separation": {"exposure": 1.4, "contrast": 0.3},
        "silhouette_chosen": 0.2,
        "pca_explained_variance": [0.5, 0.2] + [0.3 / (d - 2)] * (d - 2),
        "pca_variance_2d": 0.7,
        "trustworthiness": {"pca": 0.9, "tsne": 0.97},
        "kl_per_dim": [1.0] * d,
        "active_units": d if active is None else active,
        "kl_dims_used": d if used is None else used,
        "kl_top2_share": 0.4,
        "interpolation_dim": 0,
        "interpolations": {
            ax: {"label": ax, "values": [0, 1], "trends": _trends(effects)} for ax in AXES
        },
        "linear_baseline": {
            "n_components": d,
            "n_fit": 400,
            "bce_above_floor": 2 * above,
            "ssim": 0.5,
            "error_removed": 0.5,
        },  # fmt: skip
        "log_likelihood": {
            "n_importance": 32,
            "n_images": 96,
            "nats": -2300 - above,
            "bits_per_pixel": 0.8,
            "elbo": -2304 - above,
            "gap": 4.0,
        },  # fmt: skip
        "traversal": {"dims": [0], "kl": [1.0], "sd": [1.0], "steps": [-3.0, 0.0, 3.0]},
    }
    if labels:
        a.update(label_share_per_cluster=[{"normal": 0.2, "pneumonia": 0.8},
                                          {"normal": 0.7, "pneumonia": 0.3}],
                 purity=0.75, nmi=0.2, probe_auc=0.9,
                 knn_accuracy={"latent": 0.8, "pca": 0.7, "tsne": 0.78})  # fmt: skip
        for ax, p in a["interpolations"].items():
            p["probe"] = {
                "label": "pneumonia",
                "probability": [0.9, 0.5, 0.1 if ax == "tsne1" else 0.8],
            }
    return a


def _features(labels):
    out = {}
    for f in NAMES:
        out[f] = {"mean": 0.4, "sd": 0.05, "p5": 0.35, "median": 0.4, "p95": 0.55}
        if labels:
            out[f]["effect"] = {"sharpness": -1.4, "lung_opacity": 0.7}.get(f, 0.1)
    return out


def _metrics(labels=True, above=(300.0, 210.0, 200.0), ari=0.2, **kw):
    data = {"source": "x.npz", "n_images": 500, "n_train": 400, "n_test": 100,
            "image_size": 32, "native_shape": [32, 32], "source_dtype": "uint8",
            "storage_dtype": "uint8", "normalize": "global", "n_constant_images": 0,
            "has_labels": labels, "patient_grouped": False, "notes": [],
            "exploration": {"features": _features(labels), "dark_edges": {"left": 0.5},
                            "dark_any": 0.6, "atypical": [19.1, 15.0], "atypical_median": 7.3,
                            "pca_components": 20,
                            "duplicates": {"identical_images": 4, "identical_groups": 2,
                                           "identical_regrouped": 1, "near_threshold": 0.02,
                                           "near_compared": 500, "near_pairs": 3,
                                           "near_straddling": 0}}}  # fmt: skip
    if labels:
        data["label_names"] = ["normal", "pneumonia"]
        data["exploration"]["effect_labels"] = ["normal", "pneumonia"]
    models = {
        str(d): {"test_loss": 2300 + e + 10, "test_bce": 2300 + e, "test_kl": 5.0 * (i + 1),
                 "train_loss": 2400.0, "train_bce": 2390.0, "train_kl": 10.0, "epochs": 3,
                 "train_seconds": 2.0, "analysis": _analysis(d, e, labels, **kw)}
        for i, (d, e) in enumerate(zip(DIMS, above))
    }  # fmt: skip
    comparison = {"sample_note": "300 of 400 training images encoded", "n_samples": 300,
                  "ari": {"4-16": ari, "4-32": ari, "16-32": ari}, "ari_mean": ari,
                  "linear_r2": {"4->16": 0.5, "16->4": 0.9}, "n_paths": 15,
                  "path_leaders": {"exposure": 15}, "config": {}}  # fmt: skip
    return {"data": data, "models": models, "analysis": comparison}


def _answers(m):
    return {a.key: a for a in discussion(from_dict(StudyMetrics, m))}


def _text(m) -> str:
    return " ".join(f"{a.answer} {' '.join(a.why)}" for a in _answers(m).values())


def test_every_question_opens_with_a_one_sentence_answer():
    answers = _answers(_metrics())
    assert list(answers) == ["data", "reconstruction", "latent-use", "clusters", "maps", "axes",
                             "label"]  # fmt: skip
    for a in answers.values():
        assert a.question.endswith("?") and a.answer.endswith(".")
        assert a.answer.count(". ") == 0, a.answer  # one sentence
        assert a.table and all(len(r) == len(a.table.head) for r in a.table.rows)
    head = answers["reconstruction"].table.head
    assert head == ["", "latent 4", "latent 16", "latent 32"]  # models as columns


def test_the_discussion_stays_under_900_words_for_three_models():
    assert word_count(discussion(from_dict(StudyMetrics, _metrics()))) < 900


@pytest.mark.parametrize(
    "above, verdict, where",
    [
        ((300.0, 210.0, 200.0), "Larger codes reconstruct better", "between latent 4 and 16"),
        ((300.0, 299.0, 298.0), "does not reconstruct better", None),
    ],
)
def test_reconstruction_answer_follows_the_error(above, verdict, where):
    a = _answers(_metrics(above=above))["reconstruction"]
    assert verdict in a.answer and (where is None or where in a.answer)


@pytest.mark.parametrize(
    "removed, verdict",
    [
        ((0.5, 0.6, 0.7), "remove 50% to 70% of the error"),
        ((-0.1, -0.2, -0.3), "PCA with as many components reconstructs better than every model"),
        ((-0.1, 0.2, 0.3), "Only latent 16, 32 beats PCA"),
    ],
)
def test_reconstruction_why_follows_the_linear_baseline(removed, verdict):
    m = _metrics()
    for d, r in zip(DIMS, removed):
        m["models"][str(d)]["analysis"]["linear_baseline"]["error_removed"] = r
    assert verdict in _text(m)


def test_latent_use_rests_on_the_kl_and_says_why_active_units_differ():
    text = _answers(_metrics(used=3, active=None))["latent-use"]
    assert "3 of 4, 3 of 16, 3 of 32" in text.answer
    assert any("The count rests on the KL per dimension" in w for w in text.why)
    same = _answers(_metrics())["latent-use"]
    assert not any("rests on" in w for w in same.why)  # one story when both agree
    collapsed = _answers(_metrics(used=1, active=1))["latent-use"]
    assert "has collapsed to the prior" in collapsed.answer


@pytest.mark.parametrize(
    "ari, verdict", [(0.9, "group the images alike"), (0.1, "group the images differently"),
                     (0.5, "group the images in part alike")],
)  # fmt: skip
def test_cluster_answer_follows_the_ari(ari, verdict):
    answer = _answers(_metrics(ari=ari))["clusters"].answer
    assert verdict in answer and "cuts through a continuum" in answer  # silhouette 0.2


def test_axes_name_the_leading_features_and_what_does_not_change():
    a = _answers(_metrics())["axes"]
    assert "Most paths change exposure" in a.answer
    cell = a.table.rows[0][1]
    assert "exposure -2.00 SD; contrast +1.00 SD" in cell  # the two largest, no "also" list
    assert "sharpness" not in cell
    assert any("No path moves" in w and "sharpness" in w for w in a.why)
    small = _answers(_metrics(effects={"exposure": MIN_EFFECT / 2}))["axes"]
    assert f"nothing by {MIN_EFFECT} SD" in small.table.rows[0][1]


def test_the_probe_along_a_path_is_quoted_as_the_issue_asks():
    a = _answers(_metrics())["axes"]
    assert (
        "t-SNE 1 of latent 4 runs from images the probe calls pneumonia (0.90) to normal (0.10)"
        in a.answer
    )
    probe = ProbePath(label="pneumonia", probability=[0.07, 0.97])
    assert probe_ends(probe, ["normal", "pneumonia"]) == "normal (0.07) to pneumonia (0.97)"
    assert probe_ends(probe, ["a", "b", "pneumonia"]) == "p(pneumonia) 0.07 to 0.97"


def test_without_labels_nothing_is_said_about_labels():
    m = _metrics(labels=False)
    answers = _answers(m)
    assert "label" not in answers
    text = _text(m) + " ".join(c for a in answers.values() for r in a.table.rows for c in r)
    findings = " ".join(f.text for f in key_findings(from_dict(StudyMetrics, m)))
    for word in ("pneumonia", "normal", "probe", "AUC", "5-NN"):
        assert word not in text and word not in findings, word


def test_five_to_eight_findings_each_with_its_number():
    for labels in (True, False):
        found = key_findings(from_dict(StudyMetrics, _metrics(labels=labels)))
        assert 5 <= len(found) <= 8
        assert all(re.search(r"\d", f.text) and f.anchor for f in found)


def _write_run(tmp_path, metrics, config=None):
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "config.json").write_text(json.dumps({"seed": 0, "config": config or {"seed": 0}}))
    return build_report(tmp_path).read_text()


def test_report_escapes_text_from_the_input(tmp_path):
    metrics = _metrics()
    metrics["data"].update(source="<script>alert(1)</script>.npz", notes=["<b>note</b>"])
    html = _write_run(tmp_path, metrics)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>note</b>" not in html


def test_every_finding_links_to_an_element_of_the_report(study):
    _, out = study
    html = (out / "report.html").read_text()
    assert 'id="findings"' in html
    for section in ("data", "training", "reconstructions", "clusters", "interpolations",
                    "discussion", "config"):  # fmt: skip
        assert f'id="{section}"' in html, section
    links = re.findall(r'<li>[^<]*<a href="#([^"]+)">', html)
    assert 5 <= len(links) <= 8
    for anchor in links:
        assert f'id="{anchor}"' in html, anchor


def _numbers(tree) -> list[float]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _numbers(v)] + [
            float(k) for k in tree if re.fullmatch(r"\d+", str(k))
        ]
    if isinstance(tree, list):
        return [x for v in tree for x in _numbers(v)]
    if isinstance(tree, bool) or not isinstance(tree, int | float):
        return []
    return [float(tree)]


def test_every_number_of_the_findings_and_discussion_is_in_metrics_json(study):
    import cxrvae.evidence as ev
    import cxrvae.prose as prose

    _, out = study
    metrics = json.loads((out / "metrics.json").read_text())
    known = [abs(v) for v in _numbers(metrics)]
    known += [abs(v) for v in vars(prose).values() if isinstance(v, float | int)]
    known += [ev.USED_KL, ev.ACTIVE_VARIANCE, 2, 16, 90, 95, 5, 0.001, 0.999]  # stated in words
    typed = from_dict(StudyMetrics, metrics)
    words = [f.text for f in key_findings(typed)]
    for a in discussion(typed):
        words += (
            [a.answer, *a.why, *(c for r in a.table.rows for c in r)] if a.table else [a.answer]
        )
    text = " ".join(words).replace(",", "")
    for token in re.findall(r"-?\d+(?:\.\d+)?%?", text):
        value = abs(float(token.rstrip("%")))
        if token.endswith("%"):
            ok = any(abs(100 * k - value) <= 0.5 for k in known) or value in known
        else:
            step = 10 ** -len(token.split(".")[1]) if "." in token else 1
            ok = any(abs(k - value) <= step / 2 + 1e-9 for k in known)
        assert ok, f"{token} is not in metrics.json"


@pytest.mark.parametrize("wall, at_once", [(2.5, True), (60.0, False)])
def test_report_gives_the_training_wall_time_and_says_when_times_overlap(tmp_path, wall, at_once):
    metrics = copy.deepcopy(_metrics())
    metrics["timings"] = {"train": wall}
    html = _write_run(tmp_path, metrics)  # three models of 2 s each: 6 s in all
    assert f"Training took {wall:.0f} s of wall time" in html
    assert ("models trained at once" in html) == at_once
