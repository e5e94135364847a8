"""The discussion follows the numbers; the HTML escapes what comes from the input."""

import json

import pytest

from cxrvae.discussion import MIN_EFFECT, discussion
from cxrvae.report import build_report
from cxrvae.results import StudyMetrics, from_dict


def _spread(mean):
    return {"mean": mean, "median": mean, "p10": mean, "p90": mean}


def _trend(effect, start=0.5, end=0.6):
    return {"start": start, "end": end, "slope": end - start, "effect": effect}


QUALITY = {"bce": 2400.0, "bce_floor": 2300.0, "bce_above_floor": 100.0, "mse": 0.01,
           "psnr": 20.0, "ssim": 0.6}  # fmt: skip
DATA = {"source": "x.npz", "n_images": 10, "n_train": 8, "n_test": 2, "image_size": 32,
        "native_shape": [32, 32], "source_dtype": "uint8", "storage_dtype": "uint8",
        "normalize": "global", "n_constant_images": 0, "has_labels": False,
        "patient_grouped": False, "notes": []}  # fmt: skip


def _analysis(active_units, effects, latent_dim):
    trends = {f: _trend(e) for f, e in effects.items()}
    return {
        "n_samples": 100,
        **{f"test_{k}": _spread(v) for k, v in QUALITY.items()},
        "n_clusters": 2,
        "cluster_sizes": [60, 40],
        "silhouette": {"2": 0.6, "3": 0.4},
        "silhouette_chosen": 0.6,
        "cluster_features": [
            {"brightness": 0.4, "contrast": 0.2, "edge_energy": 0.01},
            {"brightness": 0.6, "contrast": 0.2, "edge_energy": 0.01},
        ],
        "pca_explained_variance": [0.7, 0.2] + [0.1 / (latent_dim - 2)] * (latent_dim - 2),
        "trustworthiness": {"pca": 0.9, "tsne": 0.95},
        "kl_per_dim": [1.0] * latent_dim,
        "active_units": active_units,
        "interpolation_dim": 0,
        "interpolations": {
            ax: {"label": ax.upper(), "values": [0, 1], "trends": trends}
            for ax in ("pca1", "pca2", "tsne1", "tsne2", "z0")
        },
    }


def _metrics(bce_small=2400.0, bce_large=2350.0, active_large=20, ari=0.9, effects=None):
    effects = effects or {"brightness": 1.5, "contrast": 0.2}
    train = {"train_loss": 1.0, "epochs": 1, "train_seconds": 1.0}
    return {
        "data": dict(DATA),
        "models": {
            "4": {
                "test_loss": bce_small + 8,
                "test_bce": bce_small,
                "test_kl": 8.0,
                **train,
                "analysis": _analysis(4, effects, 4),
            },
            "32": {
                "test_loss": bce_large + 25,
                "test_bce": bce_large,
                "test_kl": 25.0,
                **train,
                "analysis": _analysis(active_large, effects, 32),
            },
        },
        "analysis": {
            "sample_note": "",
            "n_samples": 100,
            "ari": {"4-32": ari},
            "linear_r2": {},
            "config": {},
        },  # fmt: skip
    }


def _answers(metrics):
    return discussion(from_dict(StudyMetrics, metrics))


def _text(metrics):
    return " ".join(d.answer for d in _answers(metrics))


def test_discussion_answers_every_question():
    items = _answers(_metrics())
    assert len(items) == 7
    assert all(d.question.endswith("?") and len(d.answer) > 50 for d in items)


@pytest.mark.parametrize(
    "auc, verdict",
    [
        (0.95, "captures the label well"),
        (0.7, "captures the label only in part"),
        (0.52, "barely captures the label"),
    ],
)
def test_discussion_reports_the_probe(auc, verdict):
    m = _metrics()
    m["data"]["label_names"] = ["normal", "pneumonia"]
    for model in m["models"].values():
        model["analysis"]["probe_auc"] = auc
    items = _answers(m)
    assert items[-1].question.startswith("What did the unsupervised latent space learn")
    assert verdict in items[-1].answer and f"{auc:.3f}" in items[-1].answer


@pytest.mark.parametrize(
    "r2, verdict",
    [
        ({"4->32": 0.5, "32->4": 0.95}, "Larger spaces contain the smaller ones' information"),
        ({"4->32": 0.9, "32->4": 0.95}, "close to a linear transform of the others"),
        ({"4->32": 0.3, "32->4": 0.4}, "not linear transforms of each other"),
    ],
)
def test_discussion_follows_linear_r2(r2, verdict):
    m = _metrics()
    m["analysis"]["linear_r2"] = r2
    assert verdict in _text(m)


def test_discussion_quotes_the_reconstruction_gain():
    text = _text(_metrics(bce_small=2400.0, bce_large=2350.0))
    assert "lowers the reconstruction error by 50.0 nats/image" in text
    assert "KL term grows by 17.0" in text


def test_discussion_says_when_a_larger_code_does_not_help():
    text = _text(_metrics(bce_small=2350.0, bce_large=2360.0))
    assert "does not reconstruct better" in text


@pytest.mark.parametrize("active, collapsed", [(0, True), (1, True), (2, False), (20, False)])
def test_discussion_calls_out_collapse(active, collapsed):
    text = _text(_metrics(active_large=active))
    assert ("Posterior collapse: latent 32" in text) == collapsed


@pytest.mark.parametrize(
    "ari, verdict",
    [
        (0.9, "group the same images together"),
        (0.1, "group the images differently"),
        (0.5, "overlap only in part"),
    ],
)
def test_discussion_follows_ari(ari, verdict):
    assert verdict in _text(_metrics(ari=ari))


def test_discussion_names_the_feature_that_changes():
    text = _text(_metrics(effects={"brightness": -1.5, "contrast": 0.2}))
    assert "overall brightness falls most" in text
    text = _text(_metrics(effects={"brightness": MIN_EFFECT / 2, "contrast": 0.1}))
    assert "no measured feature changes" in text
    assert "falls most" not in text and "rises most" not in text


def test_report_escapes_text_from_the_input(tmp_path):
    metrics = _metrics()
    metrics["data"].update(source="<script>alert(1)</script>.npz", notes=["<b>note</b>"])
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "config.json").write_text(json.dumps({"seed": 0, "config": {"seed": 0}}))
    html = build_report(tmp_path).read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>note</b>" not in html


@pytest.mark.parametrize("shares, follows", [((0.9, 0.5), True), ((0.72, 0.68), False)])
def test_discussion_says_whether_clusters_follow_the_label(shares, follows):
    m = _metrics()
    m["data"]["label_names"] = ["normal", "pneumonia"]
    for model in m["models"].values():
        model["analysis"]["label_share_per_cluster"] = [
            {"normal": 1 - s, "pneumonia": s} for s in shares
        ]
    text = _text(m)
    assert ("partly follow the label" in text) == follows
    assert ("barely follow the label" in text) == (not follows)


def test_discussion_counts_unused_dimensions_from_their_kl():
    m = _metrics()
    m["models"]["32"]["analysis"]["kl_per_dim"] = [1.0] * 27 + [0.001] * 5
    assert "left at the prior: 0 of 4, 5 of 32" in _text(m)
    m["models"]["32"]["analysis"]["kl_per_dim"] = [1.0] * 32
    assert "left at the prior" not in _text(m)


def _with_quality(m, above):
    for d, v in zip(("4", "32"), above):
        m["models"][d]["analysis"]["test_bce_above_floor"] = _spread(v)
    return m


def test_discussion_quotes_the_error_above_the_floor():
    text = _text(_with_quality(_metrics(), (100.0, 40.0)))
    assert "2,300.0 nats/image on average" in text
    assert "the largest model removes 60% of the smallest one's" in text
    text = _text(_with_quality(_metrics(), (100.0, 110.0)))
    assert "the largest model's error is 10% higher" in text and "removes" not in text


@pytest.mark.parametrize("wall, at_once", [(2.5, True), (60.0, False)])
def test_report_gives_the_training_wall_time_and_says_when_times_overlap(tmp_path, wall, at_once):
    metrics = _metrics()
    for m in metrics["models"].values():
        m.update(train_seconds=2.0)  # two models: 4 s in all
    metrics["timings"] = {"train": wall}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "config.json").write_text(json.dumps({"seed": 0, "config": {"seed": 0}}))
    html = build_report(tmp_path).read_text()
    assert f"Training took {wall:.0f} s of wall time" in html
    assert ("models trained at once" in html) == at_once
