"""Anomaly detection: a run trained on some labels only holds the other labels out, and its
report says how well each score tells them apart (ROC AUC with an interval). The run here uses
the source's own split (``--split source``), as the field's benchmark protocol does."""

import json

import numpy as np
import pytest

from cxrvae.cli import main
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.results import SCORES


@pytest.fixture(scope="module")
def anomaly_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anomaly")
    images, labels = synthetic_xrays(n=240, size=32, seed=4)
    # The source's split: about a quarter test, in mixed case and long forms as sources write it
    side = np.random.default_rng(1).choice(["Train", "testing", "val"], 240, p=[0.6, 0.25, 0.15])
    np.savez(tmp / "x.npz", images=images, labels=labels, source_split=side,
             label_names=np.array(["normal", "pneumonia"]))  # fmt: skip
    out = tmp / "run"
    args = ["run", str(tmp / "x.npz"), "--out", str(out), "--train-labels", "normal",
            "--split", "source",
            "--image-size", "32", "--latent-dims", "2", "4", "--widths", "8", "16", "32",
            "--epochs", "6", "--batch-size", "16", "--lr", "3e-3", "--device", "cpu",
            "--n-samples", "60", "--perplexity", "10", "-q"]  # fmt: skip
    assert main(args) == 0
    return tmp, out, labels, side


def test_only_the_trained_labels_train_and_the_others_are_held_out(anomaly_run):
    _, out, labels, side = anomaly_run
    with np.load(out / "split.npz") as s:
        train, test, others = s["train"], s["test"], s["others"]
    assert (labels[train] == 0).all() and (labels[test] == 0).all()
    assert len(others) and (labels[others] == 1).all()
    assert not set(others) & set(train)
    m = json.loads((out / "metrics.json").read_text())
    assert m["data"]["train_labels"] == ["normal"] and m["data"]["n_others"] == len(others)
    assert m["data"]["n_train"] == len(train) and m["data"]["split"] == "source"


def test_the_source_split_is_used_exactly(anomaly_run):
    """Every normal image of the source's train and val sides trains, every test-side image is
    tested, and no test-side image is trained on."""
    _, out, labels, side = anomaly_run
    with np.load(out / "split.npz") as s:
        train, test, others = s["train"], s["test"], s["others"]
    is_test = side == "testing"
    np.testing.assert_array_equal(train, np.flatnonzero(~is_test & (labels == 0)))
    np.testing.assert_array_equal(test, np.flatnonzero(is_test & (labels == 0)))
    np.testing.assert_array_equal(others, np.flatnonzero(is_test & (labels == 1)))
    html = (out / "report.html").read_text()
    n_val = int((side == "val").sum())
    assert "the source&#39;s own split" in html and f"its {n_val} validation images" in html


def test_the_report_gives_each_scores_auroc_with_an_interval(anomaly_run):
    from sklearn.metrics import roc_auc_score

    from cxrvae.finished import open_run

    tmp, out, *_ = anomaly_run
    m = json.loads((out / "metrics.json").read_text())
    with np.load(out / "split.npz") as s:
        others = s["others"]
    with np.load(tmp / "x.npz") as f:  # the held-out pneumonia images, scored anew
        np.savez(tmp / "others.npz", images=f["images"][others])
    scored = open_run(out).score(tmp / "others.npz")
    for k in ("2", "4"):
        a = m["models"][k]["analysis"]["anomaly"]
        assert a["trained"] == ["normal"] and a["others"] == ["pneumonia"]
        assert set(a["auroc"]) == set(SCORES)
        for name, v in a["auroc"].items():
            assert 0 <= v["low"] <= v["value"] <= v["high"] <= 1
            if name in ("above_floor", "neg_elbo", "bits_per_pixel"):  # the synthetic films'
                assert v["low"] > 0.5, name  # bright blob costs likelihood (it is smooth, so
                # the structural error need not notice it)
        # The AUROC of the images' own scores, higher meaning pneumonia: the error above the
        # floor (from the posterior mean, so the same when scored again) gives it exactly.
        with np.load(out / f"latent_{k}" / "reference.npz") as r:
            normal = r["above_floor"]
        pneumonia = scored.models[int(k)].scores.above_floor
        y = np.r_[np.zeros(len(normal)), np.ones(len(pneumonia))]
        expected = roc_auc_score(y, np.r_[normal, pneumonia])
        assert a["auroc"]["above_floor"]["value"] == pytest.approx(expected, abs=1e-12)
    html = (out / "report.html").read_text()
    assert 'id="tab-anomaly"' in html
    assert "Trained on normal images only" in html and "tells held-out pneumonia images" in html


def test_train_labels_that_data_lacks_are_one_line(tmp_path, capsys, tiny_cli):
    images, labels = synthetic_xrays(n=40, size=32, seed=0)
    np.savez(tmp_path / "x.npz", images=images, labels=labels,
             label_names=np.array(["normal", "pneumonia"]))  # fmt: skip
    args = ["train", str(tmp_path / "x.npz"), "--out", str(tmp_path / "run"), *tiny_cli]
    assert main([*args, "--train-labels", "healthy"]) == 2
    assert "no label 'healthy' (the labels are normal, pneumonia)" in capsys.readouterr().err
    assert main([*args, "--train-labels", "normal", "pneumonia"]) == 2
    assert "names every label" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_missing_or_malformed_source_split_is_one_line(tmp_path, capsys, tiny_cli):
    images, labels = synthetic_xrays(n=40, size=32, seed=0)
    np.savez(tmp_path / "none.npz", images=images, labels=labels)
    np.savez(
        tmp_path / "bad.npz", images=images, source_split=np.array(["train"] * 30 + ["dev"] * 10)
    )
    for name, message in (
        ("none", "--split source needs the source's own split"),
        ("bad", "the source split names 'dev' for 10 image(s)"),
    ):
        args = ["train", str(tmp_path / f"{name}.npz"), "--out", str(tmp_path / "run"), *tiny_cli]
        assert main([*args, "--split", "source"]) == 2
        err = capsys.readouterr().err
        assert message in err and f"{name}.npz" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "run").exists()
