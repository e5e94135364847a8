"""Training across processes: torchrun with gloo on two CPU processes."""

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from cxrvae.runfolder import read_history

OPTS = ["--image-size", "32", "--latent-dims", "2", "--widths", "8", "16", "32",
        "--batch-size", "16", "--device", "cpu"]  # fmt: skip


@pytest.mark.processes
def test_torchrun_two_cpu_processes_match_one_process_and_rank_0_reports(
    tmp_path, ddp_npz, start_cli
):
    one = start_cli("train", ddp_npz, "--out", tmp_path / "one", "--epochs", "3", *OPTS)
    one_out, one_err = one.communicate(timeout=300)
    assert one.returncode == 0, one_err
    # `run` under torchrun: both processes train, rank 0 alone analyses and writes the report
    analysis = ["--n-samples", "60", "--perplexity", "10"]
    two = start_cli("run", ddp_npz, "--out", tmp_path / "two", "--epochs", "3", *OPTS, *analysis,
               torchrun=True)  # fmt: skip
    _, err = two.communicate(timeout=300)
    assert two.returncode == 0, err
    out = tmp_path / "two"
    assert (out / "report.html").is_file() and (out / "explorer.html").is_file()
    assert err.count("latent 2: analysed") == 1
    # files written once, by rank 0: one summary line, one history row per epoch, no leftovers
    assert err.count("latent 2: test loss") == 1 and err.count("wrote ") == 1
    history = read_history(out / "latent_2" / "history.csv")
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))
    for name in ("config.json", "metrics.json", "split.npz", "latent_2/model.safetensors"):
        assert (out / name).is_file(), name
    # the same global batch in one process gives close losses (BatchNorm statistics and the
    # noise differ per process, so not identical)
    ref = read_history(tmp_path / "one" / "latent_2" / "history.csv")
    for a, b in zip(history, ref):
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=0.02)
    assert history[-1]["test_loss"] < history[0]["test_loss"]


def _kill_all(marker: str) -> None:
    """SIGKILL every process whose command line holds ``marker``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.mark.processes
def test_torchrun_interrupted_then_resumed_matches_uninterrupted(tmp_path, ddp_npz, start_cli):
    args = ["--epochs", "30", *OPTS]
    full = start_cli("train", ddp_npz, "--out", tmp_path / "full", *args, torchrun=True)
    _, err = full.communicate(timeout=300)
    assert full.returncode == 0, err

    out = tmp_path / "cut"
    run = start_cli("train", ddp_npz, "--out", out, *args, torchrun=True)
    ckpt = out / "latent_2" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if ckpt.exists():
            try:
                if len(torch.load(ckpt, weights_only=True)["history"]) >= 3:
                    break
            except Exception:  # being replaced at this moment
                pass
        time.sleep(0.05)
    _kill_all(str(out))  # torchrun and both workers (in sessions of their own), no goodbye
    run.communicate(timeout=60)
    assert not (out / "latent_2" / "model.safetensors").exists(), "finished before the kill"

    resumed = start_cli("train", ddp_npz, "--out", out, *args, "--resume", torchrun=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    a = read_history(out / "latent_2" / "history.csv")
    b = read_history(tmp_path / "full" / "latent_2" / "history.csv")
    assert len(a) == len(b) == 30
    for ra, rb in zip(a, b):
        assert ra["test_loss"] == rb["test_loss"] and ra["train_loss"] == rb["train_loss"]
