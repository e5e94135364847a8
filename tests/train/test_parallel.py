"""Several models at once (--parallel-models' mechanism, on CPU devices): the plan, one shared
copy of the images, progress, a killed worker, Ctrl-C and an exact resume."""

import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cxrvae.data.loader import load
from cxrvae.runfolder import read_history
from cxrvae.study import train_study

OPTS = ["--image-size", "32", "--latent-dims", "2", "--widths", "8", "16", "32",
        "--batch-size", "16", "--device", "cpu"]  # fmt: skip


@pytest.mark.processes
def test_models_train_at_once_in_separate_processes(tmp_path, npz_path, tiny_config):
    seq = train_study(npz_path, tiny_config, tmp_path / "seq", parallel=False)
    seen = []  # what the parent's progress reporters receive from the workers

    def progress(k, done, total):
        seen.append(("start", k, done, total))
        return lambda row: seen.append(("row", k, row["epoch"], row["test_loss"]))

    par = train_study(
        npz_path, tiny_config, tmp_path / "par", devices=["cpu", "cpu"], progress=progress
    )
    for k in (2, 4):
        m = par.models[k]
        assert m.epochs == 2
        assert m.test_loss == pytest.approx(seq.models[k].test_loss, rel=1e-4)
        assert (tmp_path / "par" / f"latent_{k}" / "model.safetensors").is_file()
        assert ("start", k, 0, 2) in seen
        assert [e for kind, kk, e, *_ in seen if kind == "row" and kk == k] == [1, 2]
        assert ("row", k, 2, m.test_loss) in seen
    assert (tmp_path / "par" / "figures" / "history_comparison.png").is_file()
    assert not (tmp_path / "par" / ".images.npy").exists()  # the shared copy is removed


def test_workers_map_one_copy_of_the_images(tmp_path, xrays):
    from cxrvae.train.parallel import images_file

    np.save(tmp_path / "x.npy", xrays[0])
    mapped = load(tmp_path / "x.npy", image_size=32)
    assert images_file(mapped, tmp_path) == (tmp_path / "x.npy", False)  # the input itself
    resized = load(tmp_path / "x.npy", image_size=16)  # no longer the file's pixels
    path, temporary = images_file(resized, tmp_path)
    assert temporary and path == tmp_path / ".images.npy"
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), resized.images)


@pytest.mark.processes
def test_workers_fork_from_one_server_with_their_waiting_policy(monkeypatch):
    from cxrvae.train import workers

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    payload = b"x" * 300_000  # more than a pipe holds: a start waits until the worker reads
    tasks = [(os.getenv, ("OMP_WAIT_POLICY",)), (len, (payload,)), (os.getppid, ())]
    one = workers.run(tasks, 2, 1)  # 3 tasks, 2 at once, one thread each
    two = workers.run(tasks, 2, 2)
    assert one[:2] == ["PASSIVE", 300_000]  # sharing the cores: OpenMP threads wait asleep
    assert two[:2] == [None, 300_000]
    assert "OMP_WAIT_POLICY" not in os.environ  # the parent's environment is left as it was
    # One run's workers forked from the server this process started, which imported torch
    # once for all of them; the others wanted another policy than the server's: spawned here.
    forked, spawned = (one, two) if one[2] != os.getpid() else (two, one)
    assert spawned[2] == os.getpid()
    assert _processes()[forked[2]] == (os.getpid(), "forkserver")


def test_train_and_run_start_the_workers_server_where_the_models_may_train_at_once(
    npz_path, monkeypatch
):
    from cxrvae import cli
    from cxrvae.train import workers

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    data = str(npz_path)

    def threads(*argv, cpus=2):
        monkeypatch.setattr(workers, "cpu_count", lambda: cpus)
        return cli.train_command.server_threads(cli.build_parser().parse_args(argv))

    # Two cores, three models (or the default three): one thread each.
    assert threads("run", data, "--latent-dims", "2", "3", "4") == 1
    assert threads("train", data, "--device", "cpu") == 1
    assert threads("run") == 1  # the packaged sample
    assert threads("train", data, cpus=8) == 2  # three processes share eight cores
    # Where the models can only train in turn, no server is started.
    assert threads("train", data, "--no-parallel-models") is None
    assert threads("train", data, "--latent-dims", "4") is None
    assert threads("run", data, cpus=1) is None
    assert threads("train", data, "--device", "cuda") is None
    assert threads("train", data + ".missing") is None  # refused as soon as torch is in
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert threads("train", data) is None  # under torchrun the processes share each model
    # Only train and run train models
    assert [c for c, m in cli.COMMANDS.items() if hasattr(m, "warm_workers")] == ["train", "run"]


@pytest.mark.processes
def test_the_workers_server_starts_before_the_command_imports_torch(npz_path):
    import subprocess
    import sys

    from cxrvae import cli, study

    assert cli.WORKER_MODULES == study.WORKER_MODULES  # named twice: the cli has no torch yet
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    probe = (
        "import os, sys\n"
        "os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])  # two cores\n"
        "from cxrvae import cli\n"
        "from cxrvae.train import workers\n"
        "cli.train_command.warm_workers(cli.build_parser().parse_args(sys.argv[1:]))\n"
        "print(workers._server_policy, 'torch' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "WORLD_SIZE")}
    argv = ["run", str(npz_path), "--latent-dims", "2", "3", "4"]
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True, env=env
    )
    # The server imports torch, this process not yet; its workers wait asleep at OpenMP
    # barriers (one thread each: waiting_policy).
    assert done.stdout.strip() == "{'OMP_WAIT_POLICY': 'PASSIVE'} False"


def test_one_thread_per_worker_waits_asleep_unless_the_user_chose(monkeypatch):
    from cxrvae.train import workers

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert workers.waiting_policy(1) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert workers.waiting_policy(2) == {}  # the threads have cores of their own
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert workers.waiting_policy(1) == {}


def test_parallel_plan_shares_the_cores_and_keeps_small_runs_in_turn(npz_path):
    from types import SimpleNamespace

    from cxrvae.config import RunConfig
    from cxrvae.train.parallel import PARALLEL_MIN_WORK, Plan, plan_parallel

    cfg = RunConfig().replace(train={"device": "cpu"})
    data = SimpleNamespace(images=np.zeros((5840, 64, 64), np.uint8), image_size=64)
    assert plan_parallel(cfg, 3, data, 4672, cpus=2) == Plan(["cpu"] * 3, 1)  # 2 cores, 3 models
    assert plan_parallel(cfg, 3, data, 4672, cpus=16) == Plan(["cpu"] * 3, 5)
    assert plan_parallel(cfg, 8, data, 4672, cpus=4) == Plan(["cpu"] * 5, 1)  # the rest wait
    assert plan_parallel(cfg, 3, data, 4672, cpus=1) is None
    assert plan_parallel(cfg, 1, data, 4672, cpus=8) is None
    assert plan_parallel(cfg, 3, data, 4672, parallel=False, cpus=8) is None
    small = PARALLEL_MIN_WORK // cfg.train.epochs - 1  # too short to pay for the processes
    assert plan_parallel(cfg, 3, data, small, cpus=2) is None
    assert plan_parallel(cfg, 3, data, small, parallel=True, cpus=2) == Plan(["cpu"] * 3, 1)
    assert plan_parallel(cfg, 3, data, 384, cpus=2) == Plan(["cpu"] * 3, 1)  # the sample
    capped = cfg.replace(train={"max_steps": 2})  # 2 steps of 64 images per epoch: short
    assert plan_parallel(capped, 3, data, 4672, cpus=2) is None
    from cxrvae.train.workers import available_memory

    if available_memory() is None:
        pytest.skip("no /proc/meminfo: the memory check cannot be exercised here")
    huge = SimpleNamespace(images=np.broadcast_to(np.uint8(0), (10**6, 512, 512)), image_size=64)
    assert plan_parallel(cfg, 3, huge, 4672, cpus=2) is None  # three copies would not fit


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: its parent and what it is (a worker spawned by multiprocessing, the fork
    server of multiprocessing or a worker forked by it, which shows the server's command line),
    or "" otherwise."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        kind = "spawn" if "spawn_main" in cmd else "forkserver" if "forkserver" in cmd else ""
        found[int(proc.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), kind)
    return found


def _workers_of(pid: int) -> list[int]:
    """The worker processes of process ``pid``: spawned by it, or forked by its fork server."""
    procs = _processes()
    servers = {p for p, (parent, kind) in procs.items() if parent == pid and kind == "forkserver"}
    return [
        p
        for p, (parent, kind) in procs.items()
        if (parent == pid and kind == "spawn") or (parent in servers and kind == "forkserver")
    ]


def _gone(pids, timeout=20.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(Path(f"/proc/{p}").exists() for p in pids):
            return True
        time.sleep(0.1)
    return False


PARALLEL = ["--image-size", "32", "--latent-dims", "2", "4", "--widths", "8", "16", "32",
            "--batch-size", "16", "--device", "cpu", "--parallel-models"]  # fmt: skip


def _start_parallel(start_cli, ddp_npz, out, epochs):
    """Start `cxrvae train --parallel-models`; return it and its two workers once both models
    have saved two epochs."""
    run = start_cli("train", ddp_npz, "--out", out, "--epochs", epochs, *PARALLEL)
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and run.poll() is None:
        if len(workers) < 2:
            workers = _workers_of(run.pid)
        try:
            if all(len(torch.load(out / f"latent_{k}" / "checkpoint.pt")["history"]) >= 2
                   for k in (2, 4)):  # fmt: skip
                break
        except Exception:  # not written yet, or being replaced at this moment
            pass
        time.sleep(0.05)
    assert run.poll() is None and len(workers) == 2, "finished before the interruption"
    return run, workers


def _interrupt_parallel(start_cli, ddp_npz, out, sig, epochs):
    run, workers = _start_parallel(start_cli, ddp_npz, out, epochs)
    run.send_signal(sig)
    _, err = run.communicate(timeout=60)
    assert _gone(workers), "worker processes outlived their parent"
    assert not list(out.rglob(".*.tmp")), "a temporary file was left behind"
    return run.returncode, err


@pytest.mark.processes
def test_a_killed_worker_is_one_line_and_stops_the_other(tmp_path, ddp_npz, start_cli):
    run, workers = _start_parallel(start_cli, ddp_npz, tmp_path / "run", 400)
    os.kill(workers[0], signal.SIGKILL)  # as the kernel's out-of-memory killer would
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1 and "Traceback" not in err
    assert re.search(r"worker process of latent \d ended with exit code -9", err)
    assert _gone(workers)


@pytest.mark.processes
def test_ctrl_c_stops_the_workers_and_names_every_stopped_model(tmp_path, ddp_npz, start_cli):
    code, err = _interrupt_parallel(start_cli, ddp_npz, tmp_path / "run", signal.SIGINT, 400)
    assert code == 130 and "Traceback" not in err
    assert re.search(r"latent_2 stopped after epoch \d+, latent_4 stopped after epoch \d+", err)


@pytest.mark.processes
def test_killed_parent_workers_stop_and_resume_is_bit_identical(tmp_path, ddp_npz, start_cli):
    from cxrvae.cli import main

    # The uninterrupted reference trains in this process's workers, with their threads.
    # 20 epochs: killed after 2, the resumed run has 18 to diverge in
    full = ["train", str(ddp_npz), "--out", str(tmp_path / "full"), "--epochs", "20", *PARALLEL]
    assert main([*full, "-q"]) == 0
    out = tmp_path / "run"
    code, _ = _interrupt_parallel(start_cli, ddp_npz, out, signal.SIGKILL, 20)
    assert code == -signal.SIGKILL
    resumed = start_cli("train", ddp_npz, "--out", out, "--epochs", 20, *PARALLEL, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    for k in (2, 4):
        a = read_history(out / f"latent_{k}" / "history.csv")
        b = read_history(tmp_path / "full" / f"latent_{k}" / "history.csv")
        assert len(a) == len(b) == 20
        assert [r["test_loss"] for r in a] == [r["test_loss"] for r in b]


@pytest.mark.processes
def test_workers_run_the_cxrvae_their_parent_runs(tmp_path):
    """A cxrvae run from another source tree (a checkout on sys.path, as
    scripts/same_outputs.py runs one) has its workers import that tree, not the installed
    package: the fork server is started with it first on PYTHONPATH."""
    import shutil
    import subprocess
    import sys

    import cxrvae

    shutil.copytree(Path(cxrvae.__file__).parent, tmp_path / "tree" / "cxrvae")
    (tmp_path / "elsewhere").mkdir()  # the working folder: not where the tree is
    probe = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from cxrvae.train import workers\n"
        "def where():\n"
        "    import cxrvae\n"
        "    return cxrvae.__file__\n"
        "if __name__ == '__main__':\n"
        "    workers.start_server([], 1)\n"
        "    print(workers.run([(where, ())], 1, 1)[0])\n"
    )
    (tmp_path / "probe.py").write_text(probe)
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "probe.py"), str(tmp_path / "tree")],
        capture_output=True, text=True, check=True, env=env, cwd=tmp_path / "elsewhere",
    )  # fmt: skip
    assert done.stdout.strip() == str(tmp_path / "tree" / "cxrvae" / "__init__.py"), done.stderr
