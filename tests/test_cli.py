"""End to end through cxrvae.cli.main on a tiny synthetic set."""

import json
import re

import numpy as np
import pytest

from cxrvae.cli import main

ANALYSIS = ["--n-samples", "60", "--perplexity", "10"]  # as in conftest


CONTRACT = [
    "config.json",
    "split.npz",
    "metrics.json",
    "figures/history_comparison.png",
    *[
        f"figures/data/{n}"
        for n in (
            "grid.png",
            "mean_std.png",
            "intensity_histogram.png",
            "brightness_contrast.png",
            "typical_atypical.png",
        )
    ],
    *[
        f"latent_{k}/{n}"
        for k in (2, 4)
        for n in ("history.csv", "model.safetensors", "checkpoint.pt")
    ],
    *[f"figures/latent_{k}/history.png" for k in (2, 4)],
]


AXES = ("pca1", "pca2", "tsne1", "tsne2")


def test_run_writes_every_file_of_the_contract(study):
    _, out = study
    for rel in CONTRACT:
        assert (out / rel).is_file(), rel
    header = (out / "latent_2" / "history.csv").read_text().splitlines()
    assert header[0] == "epoch,train_loss,train_bce,train_kl,test_loss,test_bce,test_kl,seconds"
    assert len(header) == 3  # two epochs
    m = json.loads((out / "metrics.json").read_text())
    assert m["data"]["n_images"] == 96 and m["data"]["n_train"] + m["data"]["n_test"] == 96
    for k in ("2", "4"):
        assert set(m["models"][k]) >= {
            "test_loss",
            "test_bce",
            "test_kl",
            "train_loss",
            "epochs",
            "train_seconds",
        }
        assert m["models"][k]["test_loss"] == pytest.approx(
            m["models"][k]["test_bce"] + m["models"][k]["test_kl"], rel=1e-6
        )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seed"] == 0 and cfg["config"]["model"]["latent_dims"] == [2, 4]
    assert "torch" in cfg["versions"] and cfg["device"] == "cpu"
    with np.load(out / "split.npz") as s:
        assert len(s["train"]) == m["data"]["n_train"]


def test_run_writes_analysis_figures_and_metrics(study):
    _, out = study
    m = json.loads((out / "metrics.json").read_text())
    assert (out / "figures" / "reconstructions_comparison.png").is_file()
    assert (out / "figures" / "error_distribution.png").is_file()
    for k in ("2", "4"):
        a = m["models"][k]["analysis"]
        assert a["n_samples"] == 60
        assert set(a["silhouette"]) == {str(k) for k in range(2, 11)}
        best = max(a["silhouette"], key=a["silhouette"].get)
        assert a["n_clusters"] == int(best) and sum(a["cluster_sizes"]) == 60
        folder = out / "figures" / f"latent_{k}"
        names = [f"interpolation_{ax}.png" for ax in AXES]
        names += [
            f"interpolation_z{a['interpolation_dim']}.png",
            "reconstructions.png",
            "clusters.png",
            "maps_clusters.png",
            "maps_labels.png",
            "silhouette.png",
            "worst_reconstructions.png",
            "samples.png",
        ]
        for name in names:
            assert (folder / name).is_file(), name
        q = a["test_bce_above_floor"]
        assert q["p10"] <= q["median"] <= q["p90"]
        assert a["test_bce"]["mean"] == pytest.approx(
            a["test_bce_floor"]["mean"] + a["test_bce_above_floor"]["mean"]
        )
        assert a["test_bce"]["mean"] == pytest.approx(m["models"][k]["test_bce"], rel=1e-4)
        assert 0 < a["test_ssim"]["mean"] <= 1
        assert 0 <= a["trustworthiness"]["tsne"] <= 1
        assert 0 <= a["probe_auc"] <= 1 and set(a["knn_accuracy"]) == {"latent", "pca", "tsne"}
        assert 0 <= a["purity"] <= 1 and len(a["kl_per_dim"]) == int(k)
    assert set(m["analysis"]["ari"]) == {"2-4"}
    assert set(m["analysis"]["linear_r2"]) == {"2->4", "4->2"}


def test_analyze_rewrites_the_same_analysis(study_copy):
    _, out = study_copy
    before = json.loads((out / "metrics.json").read_text())
    assert main(["analyze", str(out), "-q"]) == 0
    after = json.loads((out / "metrics.json").read_text())
    for k in ("2", "4"):
        assert before["models"][k]["analysis"] == after["models"][k]["analysis"]


def test_analyze_with_fixed_clusters(study_copy):
    _, copy = study_copy
    assert main(["analyze", str(copy), "--n-clusters", "3", "-q"]) == 0
    m = json.loads((copy / "metrics.json").read_text())
    assert all(m["models"][k]["analysis"]["n_clusters"] == 3 for k in ("2", "4"))


def test_train_refuses_existing_run_without_flag(study, capsys, tiny_cli):
    tmp, out = study
    code = main(["train", str(tmp / "xray_images.npz"), "--out", str(out), *tiny_cli])
    err = capsys.readouterr().err
    assert code == 2
    assert "already holds a run" in err and "--resume" in err
    assert "Traceback" not in err


def test_train_resume_skips_finished_models(study_copy, capsys, tiny_cli):
    tmp, out = study_copy
    before = (out / "latent_2" / "model.safetensors").read_bytes()
    assert (
        main(["train", str(tmp / "xray_images.npz"), "--out", str(out), *tiny_cli[:-1], "--resume"])
        == 0
    )
    assert "latent 2: already trained, skipped" in capsys.readouterr().err
    assert (out / "latent_2" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b"\x00" * 10), "not an npz"),
        (lambda p: np.savez(p, images=np.full((20, 32, 32), 9, np.uint8)), "every pixel"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, make, message, tiny_cli):
    path = tmp_path / "input.npz"
    make(path)
    out = tmp_path / "run"
    code = main(["train", str(path), "--out", str(out), *tiny_cli])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert re.fullmatch(r"cxrvae: error: .+", err) and message in err and str(path) in err
    assert not out.exists()


def _help(command, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "run", "analyze", "report", "inspect", "export"])
def test_help_describes_every_option(command, capsys):
    lines = _help(command, capsys).splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.strip() == "options:") :]
    for i, line in enumerate(body):
        m = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if m:  # an option: its description on the same line or indented on the next
            described = m.group(2) or (i + 1 < len(body) and body[i + 1].startswith(" " * 10))
            assert described, f"{command} {m.group(1)} has no help"


def test_tensorboard_scalars_per_epoch_and_projector(tmp_path, npz_path, tiny_cli):
    pytest.importorskip("tensorboard", reason="the 'tensorboard' extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    args = ["run", str(npz_path), "--out", str(out), *tiny_cli, *ANALYSIS, "--tensorboard"]
    assert main(args) == 0
    for k in (2, 4):
        logdir = out / "tensorboard" / f"latent_{k}"
        acc = EventAccumulator(str(logdir))
        acc.Reload()
        test_loss = [e.value for e in acc.Scalars("loss/test")]
        history = np.genfromtxt(out / f"latent_{k}" / "history.csv", delimiter=",", names=True)
        np.testing.assert_allclose(test_loss, history["test_loss"], rtol=1e-6)
        assert {"loss/train", "bce/test", "kl/test"} <= set(acc.Tags()["scalars"])
        config = (logdir / "projector_config.pbtxt").read_text()
        assert "sprite" in config and "metadata" in config
        meta = (logdir / "00000" / f"latent_{k}" / "metadata.tsv").read_text().splitlines()
        assert meta[0] == "cluster\tlabel" and len(meta) == 61  # header + 60 encoded images


def test_a_commands_settings_are_made_once(tmp_path, monkeypatch):
    from cxrvae import config
    from cxrvae.cli import build_parser
    from cxrvae.cli.settings import configured

    made = []
    real = config.configure
    monkeypatch.setattr("cxrvae.cli.settings.configure", lambda *a: made.append(a) or real(*a))
    args = build_parser().parse_args(["run", str(tmp_path / "x.npz"), "--epochs", "3"])
    first = configured(args)
    assert configured(args) is first and len(made) == 1
    assert first.train.epochs == 3
    bad = build_parser().parse_args(["run", "--epochs", "0"])
    for _ in range(2):  # a wrong setting is the same error each time it is asked for
        with pytest.raises(config.ConfigError, match="epochs"):
            configured(bad)
