"""--seeds N: every latent size trained N times, on the same split and analysed on the same
sampled images, the report weighing each comparison of sizes against the seeds' variation."""

import json

import numpy as np
import pytest
import torch

from cxrvae.cli import main
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.results import FLAG_SCORE

OPTS = ["--image-size", "32", "--latent-dims", "2", "4", "--widths", "8", "16", "32",
        "--epochs", "2", "--batch-size", "16", "--device", "cpu", "-q"]  # fmt: skip


def _run_two_seeds(tmp, n: int, seed: int, *extra) -> tuple:
    """A tiny `cxrvae run --seeds 2` of n labelled synthetic images in tmp: (tmp, run folder)."""
    images, labels = synthetic_xrays(n=n, size=32, seed=seed)
    np.savez(tmp / "x.npz", images=images, labels=labels,
             label_names=np.array(["normal", "pneumonia"]))  # fmt: skip
    out = tmp / "run"
    args = ["run", str(tmp / "x.npz"), "--out", str(out), *OPTS, "--seeds", "2", *extra]
    assert main([*args, "--perplexity", "10"]) == 0
    return tmp, out


ANOMALY = ["--train-labels", "normal", "--n-samples", "50"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A tiny anomaly run with two seeds, `cxrvae run --train-labels normal --seeds 2`, shared by
    every test here: (the folder of its npz, the run folder)."""
    return _run_two_seeds(tmp_path_factory.mktemp("seeds"), 120, 2, *ANOMALY)


def test_the_seeds_share_the_split_and_the_sampled_images_but_not_their_weights(seeded):
    from safetensors.torch import load_file

    _, out = seeded
    other = out / "repeats" / "2"
    for name in ("train", "test"):
        with np.load(out / "split.npz") as a, np.load(other / "split.npz") as b:
            np.testing.assert_array_equal(a[name], b[name])
    with np.load(out / "sample.npz") as a, np.load(other / "sample.npz") as b:
        np.testing.assert_array_equal(a["sample_idx"], b["sample_idx"])
    for k in (2, 4):
        a = load_file(str(out / f"latent_{k}" / "model.safetensors"))
        b = load_file(str(other / f"latent_{k}" / "model.safetensors"))
        assert not torch.equal(a["fc_mu.weight"], b["fc_mu.weight"])
    saved = json.loads((other / "config.json").read_text())["config"]["train"]
    assert saved["seeds"] == 2 and saved["repeat"] == 1


def test_the_metrics_hold_every_seeds_numbers_and_how_alike_the_models_are(seeded):
    _, out = seeded
    m = json.loads((out / "metrics.json").read_text())
    other = json.loads((out / "repeats" / "2" / "metrics.json").read_text())
    s = m["seeds"]
    assert s["n_seeds"] == 2 and s["models"] == ["2/1", "2/2", "4/1", "4/2"]
    for k in ("2", "4"):
        loss = s["numbers"]["test_loss"][k]
        assert loss["values"] == [m["models"][k]["test_loss"], other["models"][k]["test_loss"]]
        assert loss["mean"] == pytest.approx(np.mean(loss["values"]))
        assert loss["sd"] == pytest.approx(np.std(loss["values"], ddof=1))
    cka = np.array(s["cka"])
    np.testing.assert_allclose(np.diag(cka), 1)
    np.testing.assert_allclose(cka, cka.T)
    assert s["cka_alike"]["within"]["2"] == pytest.approx(cka[0, 1])
    assert s["cka_alike"]["between"]["2-4"] == pytest.approx(cka[:2, 2:].mean())
    assert set(s["axes"]) == {"pca1", "pca2", "tsne1", "tsne2"}


def test_the_report_weighs_each_ranking_against_the_seeds(seeded):
    _, out = seeded
    html = (out / "report.html").read_text()
    assert 'id="tab-seed-spread"' in html and 'id="tab-seed-spaces"' in html
    assert 'id="fig-seeds"' in html and 'id="fig-cka"' in html
    assert "over 2 seeds latent" in html
    assert "not tested against seed variation" not in html
    # the figures of one model say which seed they show, and lead to the spread
    assert "trained with 2 seeds" in html and "the first seed's models" in html
    assert 'href="#tab-seed-spread"' in html


def test_one_seed_says_its_rankings_are_untested(study):
    _, out = study
    html = (out / "report.html").read_text()
    assert (
        "one training per size, so not tested against seed variation (--seeds 3 tests it)" in html
    )
    assert "seed-spread" not in html and "the first seed's models" not in html
    assert "seeds" not in json.loads((out / "metrics.json").read_text())


def test_seeds_that_cannot_be_are_one_line(tmp_path, seeded, error_line):
    tmp, out = seeded
    assert (
        main(["train", str(tmp / "x.npz"), "--out", str(tmp_path / "r"), *OPTS, "--seeds", "0"])
        == 2
    )
    assert "seeds must be >= 1" in error_line()
    assert not (tmp_path / "r").exists()
    # resuming with another number of seeds
    args = ["train", str(tmp / "x.npz"), "--out", str(out), *OPTS, *ANOMALY[:2], "--seeds", "3",
            "--resume"]  # fmt: skip
    assert main(args) == 2
    assert "train.seeds" in error_line()
    assert not (out / "repeats" / "3").exists()


def test_a_resumed_seed_continues_bit_identically(tmp_path):
    from cxrvae.config import RunConfig
    from cxrvae.study import train_study

    images, _ = synthetic_xrays(n=60, size=32, seed=1)
    np.savez(tmp_path / "x.npz", images=images)
    cfg = RunConfig().replace(
        data={"image_size": 32},
        model={"latent_dims": (2,), "widths": (8, 16)},
        train={"epochs": 4, "batch_size": 16, "device": "cpu", "seeds": 2},
    )
    train_study(tmp_path / "x.npz", cfg, tmp_path / "whole", parallel=False)

    started = []

    def stop_in_the_second_seed(k, done, total):  # a Ctrl-C in the second seed's second epoch
        started.append(k)

        def report(row):
            if len(started) == 2 and row["epoch"] == 2:
                raise KeyboardInterrupt

        return report

    with pytest.raises(KeyboardInterrupt):
        train_study(tmp_path / "x.npz", cfg, tmp_path / "cut", parallel=False,
                    progress=stop_in_the_second_seed)  # fmt: skip
    assert not (tmp_path / "cut" / "repeats" / "2" / "latent_2" / "model.safetensors").exists()
    train_study(tmp_path / "x.npz", cfg, tmp_path / "cut", resume=True, parallel=False)
    for sub in ("latent_2", "repeats/2/latent_2"):
        a = (tmp_path / "cut" / sub / "history.csv").read_text().splitlines()
        b = (tmp_path / "whole" / sub / "history.csv").read_text().splitlines()
        assert [r.rsplit(",", 1)[0] for r in a] == [r.rsplit(",", 1)[0] for r in b]


def test_the_anomaly_ensemble_averages_each_images_scores_over_the_seeds(seeded):
    from sklearn.metrics import roc_auc_score

    _, out = seeded
    ensemble = json.loads((out / "metrics.json").read_text())["seeds"]["ensemble_auroc"]
    for k in ("2", "4"):
        folders = [out / f"latent_{k}", out / "repeats" / "2" / f"latent_{k}"]
        trained = [np.load(f / "reference.npz")["above_floor"] for f in folders]
        others = [np.load(f / "others.npz")["above_floor"] for f in folders]
        assert not np.allclose(trained[0], trained[1])  # two models, not one read twice
        mean_t, mean_o = np.mean(trained, axis=0), np.mean(others, axis=0)
        truth = np.r_[np.zeros(len(mean_t)), np.ones(len(mean_o))]
        want = roc_auc_score(truth, np.r_[mean_t, mean_o])
        got = ensemble[k]["above_floor"]
        assert got["value"] == pytest.approx(want)
        assert got["low"] <= got["value"] <= got["high"]
    html = (out / "report.html").read_text()
    assert "averaged over the models of 2 seeds (an ensemble) reaches ROC AUC" in html


def test_scoring_averages_every_seeds_model_and_says_how_far_they_agree(seeded, tmp_path):
    import csv

    tmp, out = seeded
    rate = ["--fpr", "0.2", "-q"]  # 24 test images: p-values of 1/25 and up
    assert main(["score", str(out), str(tmp / "x.npz"), "--out", str(tmp_path / "all"), *rate]) == 0
    alone = ["score", str(out / "repeats" / "2"), str(tmp / "x.npz"), *rate, "--out"]
    assert main([*alone, str(tmp_path / "second")]) == 0  # the second seed by itself

    def rows(folder):
        with open(folder / "scores.csv") as f:
            return list(csv.DictReader(f))

    both, second = rows(tmp_path / "all"), rows(tmp_path / "second")
    summary = json.loads((tmp_path / "all" / "score.json").read_text())
    assert f"latent2_seeds_{FLAG_SCORE}" not in second[0]  # one folder: one model
    for k in ("2", "4"):
        p = f"latent{k}_"
        first = np.array([float(r[p + FLAG_SCORE]) for r in both])
        other = np.array([float(r[p + FLAG_SCORE]) for r in second])
        mean = np.array([float(r[p + "seeds_" + FLAG_SCORE]) for r in both])
        np.testing.assert_allclose(mean, (first + other) / 2, rtol=1e-4, atol=1e-5)  # 6 digits
        e = summary["models"][k]["ensemble"]
        flagged = np.array([int(r[p + "seeds_flagged"]) for r in both], bool)
        clear = np.abs(mean - e["threshold"]) > 1e-4 * max(1, abs(e["threshold"]))  # 6 digits
        np.testing.assert_array_equal(flagged[clear], (mean > e["threshold"])[clear])
        assert e["n_flagged"] == flagged.sum()
        each = [np.array([int(r[p + "flagged"]) for r in rs], bool) for rs in (both, second)]
        assert e["flagged_per_seed"] == [int(f.sum()) for f in each]
        assert e["flagged_by_any"] == int((each[0] | each[1]).sum())
        assert e["flagged_by_every"] == int((each[0] & each[1]).sum())
        counts = [int(r[p + "seeds_flagging"]) for r in both]
        assert counts == list(each[0].astype(int) + each[1].astype(int))
    page = (tmp_path / "all" / "score.html").read_text()
    assert "Averaged over its 2 seeds (an ensemble), latent 4 flags" in page
