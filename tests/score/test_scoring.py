"""Scoring new images with a trained run: calibrated on the run's own test images, sensitive to
inverted images, preprocessing as the run's, the files it writes, and bad input refused."""

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest

import cxrvae
from cxrvae import outputs
from cxrvae.cli import main
from cxrvae.data.loader import load
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.report.explorer import explorer_payload
from cxrvae.results import from_dict
from cxrvae.score.summary import ScoreSummary


def _test_images(run_dir):
    run = cxrvae.open_run(run_dir)
    data = run.data()
    return run, data, data.subset(run.test_idx)


def _digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_runs_own_test_images_look_like_its_test_images(scoring_run):
    """Calibrated: the batch test cannot tell the test images from themselves, and the flags
    are about as many as the false-positive rate says."""
    run, _, test = _test_images(scoring_run[1])
    scores = run.score(test, fpr=0.1)
    n = len(run.test_idx)
    for k, m in scores.summary.models.items():
        assert m.classifier.contains(0.5), (k, m.classifier)
        assert m.mmd_p > 0.05
        assert m.n_flagged <= max(3, 0.25 * n), (k, m.n_flagged)  # expected 0.1 x n
    assert "No difference from the run's test images detected" in scores.summary.conclusion


def test_inverted_images_are_flagged_and_the_batch_separated(scoring_run):
    """Sensitive: intensity-inverted test images are nearly all flagged, and the batch test
    tells them from the test images."""
    run, data, test = _test_images(scoring_run[1])
    inverted = test.subset(np.arange(len(test)))
    inverted.images = (255 - test.images).astype(np.uint8)
    scores = run.score(inverted, fpr=0.05)  # 40 test images: p-values of 1/41 and up
    for k, m in scores.models.items():
        assert m.flagged.mean() >= 0.9, k
    assert scores.summary.models[4].classifier.value >= 0.99  # the larger latent space
    assert scores.summary.conclusion.startswith("This batch differs from the run's test images")


def test_in_a_batch_with_a_tenth_inverted_the_flagged_are_those(scoring_run):
    run, data, _ = _test_images(scoring_run[1])
    batch = data.subset(run.train_idx[:100])
    inverted = np.arange(0, 100, 10)
    batch.images = batch.images.copy()
    batch.images[inverted] = 255 - batch.images[inverted]
    scores = run.score(batch, fpr=0.05)  # 40 test images: the two highest set the line
    m = scores.models[max(scores.models)]
    flagged = np.flatnonzero(m.flagged)
    assert set(inverted) <= set(flagged)
    assert np.isin(flagged, inverted).mean() >= 0.6  # mostly those
    assert m.percentile["above_floor"][inverted].min() == 100


def test_a_darker_batch_stays_darker(scoring_run, new_images):
    """The run's saved pixel range normalises the batch, never the batch's own range."""
    tmp, run_dir = scoring_run
    images = load(tmp / "train.npz", image_size=32).images[:40]
    darker = new_images((images // 2).astype(np.uint8))
    scores = cxrvae.open_run(run_dir).score(darker)
    shift = scores.summary.features["exposure"]
    assert shift.batch < shift.reference - 0.1 and shift.effect < -1
    assert any("normalised with the run's pixel range" in n for n in scores.summary.notes)


def test_the_cli_writes_scores_and_a_layer_and_leaves_the_rest_of_the_run(scoring_run, tmp_path):
    tmp, run_dir = scoring_run
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = _digest(run)
    images, _ = synthetic_xrays(n=30, size=48, seed=5)  # another size: resized as in training
    np.savez(tmp_path / "new.npz", images=images, ids=np.array([f"f{i}.png" for i in range(30)]))
    assert main(["score", str(run), str(tmp_path / "new.npz"), "-q"]) == 0
    out = run / "scores" / "new"
    after = _digest(run)
    changed = {k for k in before if after[k] != before[k]}
    assert changed == {"explorer.html"}  # built again with the new layer; the rest untouched
    assert set(after) - set(before) <= {k for k in after if k.startswith("scores/new/")}
    assert [layer["name"] for layer in explorer_payload(run)["layers"]] == ["new"]
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and rows[3]["id"] == "f3.png"
    for k in (2, 4):
        assert 0 <= float(rows[0][f"latent{k}_percentile"]) <= 100
        assert rows[0][f"latent{k}_flagged"] in ("0", "1")
        assert len(rows[0][f"latent{k}_nearest"].split(";")) == 3
    summary = from_dict(ScoreSummary, json.loads((out / "score.json").read_text()))
    assert summary.n_images == 30 and set(summary.models) == {2, 4}
    assert any("resized 48x48 -> 32x32" in n for n in summary.notes)
    page = (out / "score.html").read_text()
    assert summary.conclusion in page.replace("&#39;", "'") and 'id="findings"' in page
    with np.load(out / "scored.npz") as layer:
        assert layer["images"].shape == (30, 32, 32) and layer["pca_4"].shape == (30, 2)
    assert main(["score", str(run), str(tmp_path / "new.npz"), "-q"]) == 2  # already there


def test_the_analysed_sample_lands_where_the_run_drew_it(scoring_run):
    """Scored again, the analysed training images sit at their own place on the PCA map, and
    each is its own nearest training image."""
    run, data, _ = _test_images(scoring_run[1])
    e = run.embedding(4)
    scores = run.score(data.subset(e["sample_idx"][:20]))
    m = scores.models[4]
    np.testing.assert_allclose(m.pca, e["pca"][:20], atol=1e-4)
    np.testing.assert_array_equal(m.nearest[:, 0], np.arange(20))
    np.testing.assert_allclose(m.nearest_distance[:, 0], 0, atol=1e-4)


def test_one_image_scores_without_a_batch_test(scoring_run, new_images):
    tmp, run_dir = scoring_run
    one = new_images(load(tmp / "train.npz", image_size=32).images[:1])
    scores = cxrvae.open_run(run_dir).score(one)
    assert scores.summary.n_images == 1 and scores.summary.features is None
    assert all(m.classifier is None for m in scores.summary.models.values())
    assert scores.summary.conclusion.startswith("Too few images for a batch test")


def _one_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cxrvae: error: "), err
    return err


@pytest.mark.parametrize("fault", ["no_models", "not_analysed", "mixed_weights", "bad_data"])
def test_bad_input_is_one_line_and_writes_nothing(scoring_run, tmp_path, capsys, fault):
    tmp, run_dir = scoring_run
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    data = tmp / "train.npz"
    expected = {
        "no_models": "no trained model to score with",
        "not_analysed": "analysed by an earlier cxrvae",
        "mixed_weights": "the folder mixes runs",
        "bad_data": "not an npz",
    }[fault]
    if fault == "no_models":
        m = json.loads((run / "metrics.json").read_text())
        for k in m["models"]:
            m["models"][k] = {"failed": "non-finite training loss", "epochs": 1}
        (run / "metrics.json").write_text(json.dumps(m))
    elif fault == "not_analysed":
        (outputs.model_dir(run, 2) / outputs.REFERENCE).unlink()
    elif fault == "mixed_weights":
        shutil.copy(outputs.model_dir(run, 2) / outputs.WEIGHTS, outputs.model_dir(run, 4))
    else:
        data = tmp_path / "broken.npz"
        data.write_bytes(b"not a zip at all")
    before = _digest(run)
    assert main(["score", str(run), str(data)]) == 2
    assert expected in _one_line(capsys)
    assert _digest(run) == before and not (run / "scores").exists()


def test_a_run_without_a_saved_range_measures_it_on_its_source(scoring_run, tmp_path):
    tmp, run_dir = scoring_run
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    m = json.loads((run / "metrics.json").read_text())
    del m["data"]["pixel_range"]  # as an earlier cxrvae wrote it
    (run / "metrics.json").write_text(json.dumps(m))
    images = load(tmp / "train.npz", image_size=32).images[:10]
    a = cxrvae.open_run(run).score(load(tmp / "train.npz", image_size=32).subset(range(10)))
    b = cxrvae.open_run(run_dir).score(load(tmp / "train.npz", image_size=32).subset(range(10)))
    assert images.shape[0] == 10
    np.testing.assert_array_equal(a.models[4].scores.mu, b.models[4].scores.mu)
