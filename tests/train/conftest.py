"""Fixtures of the training tests that start processes: a small labelled set, and the command
line started as a process of its own (optionally under torchrun with two processes)."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from cxrvae.data.synthetic import synthetic_xrays


@pytest.fixture
def ddp_npz(tmp_path):
    images, labels = synthetic_xrays(n=160, size=32, seed=0)
    path = tmp_path / "set.npz"
    np.savez(path, images=images, labels=labels)
    return path


def interruptible():
    """In a started process: Ctrl-C interrupts it even where the tests themselves were started
    with SIGINT ignored (a background job of a non-interactive shell), which Python would keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args, torchrun=False, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    head = [sys.executable]
    if torchrun:
        head += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    return subprocess.Popen(
        [*head, "-m", "cxrvae", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
        **kw,
    )


@pytest.fixture(scope="session")
def start_cli():
    """``start_cli(*args, torchrun=False)``: ``python -m cxrvae ARGS`` started in a new
    process (with one OpenMP thread), its output captured; under torchrun with two processes."""
    return _start
