"""Training across processes: torchrun with gloo on two CPU processes.

One torchrun ``run`` (two processes, 20 epochs) is shared: its report and files show that rank 0
alone writes, and its history is what an interrupted and resumed torchrun must give again."""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cxrvae.cli import main
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.runfolder import read_history

OPTS = ["--image-size", "32", "--latent-dims", "2", "--widths", "8", "16", "32",
        "--batch-size", "16", "--device", "cpu", "--epochs", "20"]  # fmt: skip


@pytest.fixture(scope="module")
def torchrun_run(tmp_path_factory, start_cli):
    """``cxrvae run`` under torchrun with two processes: (its set, its run folder, stderr)."""
    tmp = tmp_path_factory.mktemp("ddp")
    images, labels = synthetic_xrays(n=160, size=32, seed=0)
    np.savez(tmp / "set.npz", images=images, labels=labels)
    analysis = ["--n-samples", "60", "--perplexity", "10"]
    two = start_cli("run", tmp / "set.npz", "--out", tmp / "two", *OPTS, *analysis, torchrun=True)
    _, err = two.communicate(timeout=300)
    assert two.returncode == 0, err
    return tmp / "set.npz", tmp / "two", err


@pytest.mark.processes
def test_torchrun_two_cpu_processes_match_one_process_and_rank_0_reports(tmp_path, torchrun_run):
    data, out, err = torchrun_run
    # `run` under torchrun: both processes train, rank 0 alone analyses and writes the report
    assert (out / "report.html").is_file() and (out / "explorer.html").is_file()
    assert err.count("latent 2: analysed") == 1
    # files written once, by rank 0: one summary line, one history row per epoch, no leftovers
    assert err.count("latent 2: test loss") == 1 and err.count("wrote ") == 1
    history = read_history(out / "latent_2" / "history.csv")
    assert [r["epoch"] for r in history] == list(range(1, 21))
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))
    for name in ("config.json", "metrics.json", "split.npz", "latent_2/model.safetensors"):
        assert (out / name).is_file(), name
    # the same global batch in one process gives close losses (BatchNorm statistics and the
    # noise differ per process, so not identical)
    assert main(["train", str(data), "--out", str(tmp_path / "one"), *OPTS, "-q"]) == 0
    ref = read_history(tmp_path / "one" / "latent_2" / "history.csv")
    for a, b in zip(history[:3], ref[:3]):
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
def test_torchrun_interrupted_then_resumed_matches_uninterrupted(tmp_path, torchrun_run, start_cli):
    data, full, _ = torchrun_run
    out = tmp_path / "cut"
    run = start_cli("train", data, "--out", out, *OPTS, torchrun=True)
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

    resumed = start_cli("train", data, "--out", out, *OPTS, "--resume", torchrun=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    a = read_history(out / "latent_2" / "history.csv")
    b = read_history(full / "latent_2" / "history.csv")  # trained as `train` trains
    assert len(a) == len(b) == 20
    for ra, rb in zip(a, b):
        assert ra["test_loss"] == rb["test_loss"] and ra["train_loss"] == rb["train_loss"]
