"""Bad input, interruptions and faults: clear one-line errors, exact resumes, nothing lost."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from cxrvae.cli import main
from cxrvae.data.synthetic import synthetic_xrays
from cxrvae.errors import DataError


def _good(n=40):
    return synthetic_xrays(n=n, size=32, seed=0)[0]


def _write(path, kind):
    """Write one kind of bad input at path."""
    images = _good()
    if kind == "missing":
        return
    if kind == "empty_dir":
        path.mkdir()
    elif kind == "not_zip":
        path.write_bytes(b"hello, this is text")
    elif kind == "truncated":
        np.savez(path, images=images)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "pickled":
        np.savez(path, images=np.array([object(), 1], dtype=object))
    elif kind == "one_dim":
        np.savez(path, values=np.arange(100.0))
    elif kind == "empty":
        np.savez(path, images=np.zeros((0, 32, 32), np.uint8))
    elif kind == "impossible_shape":
        np.savez(path, images=np.zeros((4, 3, 32, 32, 2), np.uint8))
    elif kind == "nan":
        x = images.astype(np.float32)
        x[[1, 5, 9], 0, 0] = np.nan
        x[7, 3, 3] = np.inf
        np.savez(path, images=x)
    elif kind == "constant":
        np.savez(path, images=np.full((40, 32, 32), 5, np.uint8))
    elif kind == "label_length":
        np.savez(path, images=images, labels=np.zeros(len(images) - 3, np.int64))
    elif kind == "tiny_images":
        np.savez(path, images=np.zeros((40, 12, 12), np.uint8))
    elif kind == "too_few":
        np.savez(path, images=images[:6])


BAD = {
    "missing": "no such file",
    "empty_dir": "no PNG, JPEG, TIFF, BMP or DICOM files",
    "not_zip": "not an npz",
    "truncated": "truncated or corrupt",
    "pickled": "pickled Python objects",
    "one_dim": "no numeric array with at least 2 dimensions",
    "empty": "is empty",
    "impossible_shape": "is not images in any layout",
    "nan": "4 of 40 images contain NaN or infinite values",
    "constant": "every pixel of every image equals 5",
    "label_length": "'labels' has 37 entries for 40 images",
    "tiny_images": "smaller than the minimum 16 px",
    "too_few": "6 usable images; training needs at least 10",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, kind, tiny_cli):
    path = tmp_path / "input.npz"
    _write(path, kind)
    out = tmp_path / "run"
    code = main(["train", str(path), "--out", str(out), *tiny_cli])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.fullmatch(r"cxrvae: error: .+\n", err)
    assert str(path) in err and BAD[kind] in err
    assert not out.exists()


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(DataError):
        main(["train", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "run"), "--debug"])


def test_drop_invalid_leaves_out_nan_images(tmp_path, capsys, tiny_cli):
    path = tmp_path / "input.npz"
    _write(path, "nan")
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--drop-invalid", *tiny_cli]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["data"]["n_images"] == 36
    assert "dropped 4 images containing NaN or infinite values" in m["data"]["notes"]


def test_image_size_the_architecture_cannot_take(tmp_path, capsys, tiny_cli):
    path = tmp_path / "input.npz"
    np.savez(path, images=_good())
    args = ["train", str(path), "--out", str(tmp_path / "run"), *tiny_cli]
    args[args.index("--widths") + 1 : args.index("--widths") + 4] = ["4", "4", "4", "4", "4", "4"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "image_size 32 cannot pass 6 stride-2 layers" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_unwritable_output_folder(tmp_path, capsys, tiny_cli):
    path = tmp_path / "input.npz"
    np.savez(path, images=_good())
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["train", str(path), "--out", str(blocker / "run"), *tiny_cli]) == 2
    err = capsys.readouterr().err
    assert "cannot write there" in err and str(blocker / "run") in err


@pytest.fixture
def finished(tmp_path, tiny_cli):
    path = tmp_path / "input.npz"
    np.savez(path, images=_good(60))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), *tiny_cli]) == 0
    return path, out


def test_existing_run_is_refused_and_kept(finished, capsys, tiny_cli):
    path, out = finished
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["train", str(path), "--out", str(out), *tiny_cli]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_resume_with_other_settings_is_refused(finished, capsys, tiny_cli):
    path, out = finished
    args = ["train", str(path), "--out", str(out), *tiny_cli, "--resume"]
    args[args.index("--epochs") + 1] = "3"
    assert main(args) == 2
    assert "these differ: train.epochs" in capsys.readouterr().err


def test_overwrite_replaces_the_old_runs_models(finished, tiny_cli):
    path, out = finished
    args = ["train", str(path), "--out", str(out), *tiny_cli, "--overwrite"]
    i = args.index("--latent-dims")
    args[i + 1 : i + 3] = ["3"]
    assert main(args) == 0
    assert sorted(p.name for p in out.glob("latent_*")) == ["latent_3"]


def test_non_finite_loss_is_recorded_and_exits_1(tmp_path, capsys, tiny_cli):
    path = tmp_path / "input.npz"
    np.savez(path, images=_good(60))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), *tiny_cli, "--lr", "1e12"]) == 1
    err = capsys.readouterr().err
    assert "training of latent 2, 4 failed" in err and "Traceback" not in err
    m = json.loads((out / "metrics.json").read_text())
    assert all("non-finite" in m["models"][k]["failed"] for k in ("2", "4"))


def _history(out, k):
    rows = (out / f"latent_{k}" / "history.csv").read_text().splitlines()
    return [r.rsplit(",", 1)[0] for r in rows]  # every column but the wall time


def _weights(out, k):
    from safetensors.torch import load_file

    return load_file(str(out / f"latent_{k}" / "model.safetensors"))


def _start_and_interrupt(args, out, sig, after_epochs=3):
    """Start `python -m cxrvae` in a new process, with as many torch threads as this one (the
    numbers depend on them); send sig once a checkpoint has epochs."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxrvae", *args], stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as tests/train's
    )  # fmt: skip
    ckpt = out / "latent_2" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(torch.load(ckpt, weights_only=True)["history"]) >= after_epochs:
                break
        except (FileNotFoundError, EOFError, RuntimeError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be interrupted"
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


# One model, 15 epochs (about 0.15 s each on 2 cores): interrupted after 3, the rest are the
# resumed run's to diverge in.
LONG_RUN = [
    "--image-size",
    "32",
    "--latent-dims",
    "2",
    "--widths",
    "8",
    "16",
    "32",
    "--epochs",
    "15",
    "--batch-size",
    "16",
    "--device",
    "cpu",
    "-q",
]


@pytest.mark.processes
def test_kill_9_then_resume_is_bit_identical(tmp_path):
    path = tmp_path / "input.npz"
    np.savez(path, images=_good(96))
    args = LONG_RUN
    ref = tmp_path / "reference"
    assert main(["train", str(path), "--out", str(ref), *args]) == 0
    out = tmp_path / "run"
    code, _ = _start_and_interrupt(
        ["train", str(path), "--out", str(out), *args], out, signal.SIGKILL
    )
    assert code == -signal.SIGKILL
    assert not (out / "metrics.json").exists()
    assert main(["train", str(path), "--out", str(out), *args, "--resume"]) == 0
    assert _history(out, 2) == _history(ref, 2)
    a, b = _weights(out, 2), _weights(ref, 2)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.processes
def test_ctrl_c_says_where_it_stopped_and_how_to_resume(tmp_path):
    path = tmp_path / "input.npz"
    np.savez(path, images=_good(96))
    out = tmp_path / "run"
    args = ["train", str(path), "--out", str(out), *LONG_RUN]
    code, err = _start_and_interrupt(args, out, signal.SIGINT)
    assert code == 130
    assert re.search(r"latent_2 stopped after epoch \d+, which is saved", err)
    assert "--resume" in err and "Traceback" not in err


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 KB tmpfs mounted in tmp_path (needs root and mount permission, else skipped)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill a disk: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_file(
    tmp_path, tiny_disk, capsys, tiny_cli
):
    path = tmp_path / "input.npz"
    np.savez(path, images=_good(60))
    out = tiny_disk / "run"
    assert main(["train", str(path), "--out", str(out), *tiny_cli]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"cxrvae: error: .+: No space left on device\n", err)
    assert str(out) in err
    written = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in written if p.name.endswith(".tmp")]
    for p in written:  # whatever was written is complete
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".png":
            assert p.read_bytes()[-8:-4] == b"IEND"


def test_small_sets_adapt_and_say_what_was_used(tmp_path, tiny_cli):
    path = tmp_path / "input.npz"
    np.savez(path, images=_good(30))
    out = tmp_path / "run"
    args = ["run", str(path), "--out", str(out), *tiny_cli, "--n-clusters", "40"]
    args += ["--perplexity", "5"]
    assert main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    n_train, n_test = m["data"]["n_train"], m["data"]["n_test"]
    assert n_test < 10
    note = m["analysis"]["sample_note"]
    assert f"all {n_train} training images encoded (fewer than 1000)" in note
    assert f"reconstructions show all {n_test} test images" in note
    assert m["models"]["2"]["analysis"]["n_clusters"] == n_train - 1
