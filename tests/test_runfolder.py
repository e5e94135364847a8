"""The run folder: the checks before a run writes there, and the records it keeps, read back
as they were written; no torch and no images needed."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cxrvae import outputs
from cxrvae.config import RunConfig
from cxrvae.errors import RunFolderError
from cxrvae.results import DataSummary, ModelResult, StudyMetrics, Timings
from cxrvae.runfolder import (
    check_resume,
    history_columns,
    prepare_run_dir,
    read_config,
    read_history,
    read_metrics,
    read_split,
    require_run,
    source_ref,
    write_config,
    write_history,
    write_metrics,
    write_split,
)


def _summary():
    return DataSummary(
        source="x.npz", n_images=10, image_size=32, native_shape=[32, 32], source_dtype="uint8",
        storage_dtype="uint8", normalize="global", n_constant_images=0, has_labels=False,
        patient_grouped=False, notes=["a note"],
    )  # fmt: skip


def _run(folder, cfg=None):
    """A folder with the records of a trained run of two models, one of them failed."""
    cfg = cfg or RunConfig().replace(model={"latent_dims": (2, 4)})
    prepare_run_dir(folder)
    write_config(folder, cfg, "/data/x.npz", "cpu", _summary())
    write_split(folder, np.arange(8), np.arange(8, 10))
    models = {
        2: ModelResult(test_loss=3.0, test_bce=2.5, test_kl=0.5, train_loss=3.5, train_bce=3.0,
                       train_kl=0.5, epochs=2, train_seconds=1.25),
        4: ModelResult(failed="non-finite training loss", epochs=1),
    }  # fmt: skip
    write_metrics(folder, StudyMetrics(data=_summary(), models=models, timings=Timings(train=2.0)))
    return folder


def test_records_read_back_as_written(tmp_path):
    out = _run(tmp_path / "run")
    cfg, source = read_config(out)
    assert cfg.model.latent_dims == (2, 4) and source == "/data/x.npz"
    metrics = read_metrics(out)
    assert list(metrics.models) == [2, 4] and list(metrics.trained) == [2]
    assert metrics.models[2].train_seconds == 1.25 and not metrics.models[4].ok
    assert metrics.data.notes == ["a note"] and metrics.timings.train == 2.0
    train, test = read_split(out)
    np.testing.assert_array_equal(train, np.arange(8))
    np.testing.assert_array_equal(test, np.arange(8, 10))
    saved = json.loads((out / outputs.CONFIG).read_text())
    assert saved["device"] == "cpu" and saved["seed"] == 0 and "torch" in saved["versions"]
    assert "failed" not in json.loads((out / outputs.METRICS).read_text())["models"]["2"]


def test_history_csv_round_trip_and_columns(tmp_path):
    rows = [
        {"epoch": e, "train_loss": 1.5, "train_bce": 1.0, "train_kl": 0.5, "test_loss": 2.0,
         "test_bce": 1.25, "test_kl": 0.75 * e, "seconds": 0.125}
        for e in (1, 2)
    ]  # fmt: skip
    write_history(tmp_path / "h.csv", rows)
    assert read_history(tmp_path / "h.csv") == rows
    assert (tmp_path / "h.csv").read_text().splitlines()[0] == (
        "epoch,train_loss,train_bce,train_kl,test_loss,test_bce,test_kl,seconds"
    )
    columns = history_columns(rows)
    np.testing.assert_array_equal(columns["epoch"], [1, 2])
    np.testing.assert_array_equal(columns["test_kl"], [0.75, 1.5])


def test_a_folder_holding_a_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    out = _run(tmp_path / "run")
    with pytest.raises(RunFolderError, match="already holds a run .*--resume.*--overwrite"):
        prepare_run_dir(out)
    assert prepare_run_dir(out, resume=True) == out and (out / outputs.METRICS).exists()


def test_overwrite_removes_only_the_runs_own_files(tmp_path):
    out = _run(tmp_path / "run")
    for k in (2, 4):
        outputs.model_dir(out, k).mkdir()
        (outputs.model_dir(out, k) / outputs.WEIGHTS).write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    (out / "latent_other").mkdir()
    prepare_run_dir(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["latent_other", "notes.txt"]


@pytest.mark.parametrize("make", ["file", "none"])
def test_require_run_names_the_folder(tmp_path, make):
    out = tmp_path / "run"
    if make == "file":
        out.write_text("not a folder")
    with pytest.raises(RunFolderError, match=f"{out}: no trained run here"):
        require_run(out)
    if make == "file":
        with pytest.raises(RunFolderError, match="exists and is not a folder"):
            prepare_run_dir(out)


def test_resume_is_refused_when_settings_differ(tmp_path):
    cfg = RunConfig().replace(model={"latent_dims": (2, 4)})
    out = _run(tmp_path / "run", cfg)
    check_resume(out, cfg)  # the same settings: fine
    check_resume(out, cfg.replace(analysis={"n_samples": 50}))  # analysis may change
    with pytest.raises(RunFolderError, match="these differ: seed, train.epochs"):
        check_resume(out, cfg.replace(seed=3, train={"epochs": 5}))


def test_source_ref_is_an_absolute_path_or_the_loaders_name(tmp_path, monkeypatch):
    (tmp_path / "x.npz").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert source_ref("x.npz", "x.npz") == str(tmp_path / "x.npz")
    assert source_ref("pneumoniamnist", "pneumoniamnist:64") == "pneumoniamnist:64"


def test_model_dirs_are_in_latent_order(tmp_path):
    for k in (32, 4, 16):
        outputs.model_dir(tmp_path, k).mkdir()
    (tmp_path / "latent_notes").mkdir()
    assert [p.name for p in outputs.model_dirs(tmp_path)] == ["latent_4", "latent_16", "latent_32"]


@pytest.mark.processes
def test_reading_a_run_imports_no_torch(tmp_path):
    out = _run(tmp_path / "run")
    code = (
        "import sys\n"
        "from cxrvae.runfolder import read_config, read_metrics, read_split\n"
        "from cxrvae.report.page import build_report\n"
        f"read_config({str(out)!r}); read_metrics({str(out)!r}); read_split({str(out)!r})\n"
        f"build_report({str(out)!r})\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False" and (out / outputs.REPORT).is_file()
