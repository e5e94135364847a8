"""The run folder: the checks before a run writes into it, what it records about the run, and
the Python view of a finished run (:class:`Run`, :func:`open_run`).

The folder is the contract between the steps (see :mod:`cxrvae.layout` for its file names):
each step reads what earlier steps wrote, so ``analyze`` and ``report`` can run again later.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, layout
from .config import RunConfig, read_config_file
from .data import XrayData, load_data
from .errors import RunFolderError
from .files import read_json, save_npz, write_json
from .results import StudyMetrics, from_dict, to_dict


def versions() -> dict:
    """Versions of the packages a run depends on, and the git commit of cxrvae when known."""
    import matplotlib
    import sklearn
    import torch

    out = {
        "cxrvae": __version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def prepare_run_dir(out, resume: bool = False, overwrite: bool = False) -> Path:
    """Check that ``out`` may receive this run, and create it.

    A folder that already holds a run is refused unless ``resume`` (continue it) or
    ``overwrite`` (replace its files) is given.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    existing = [m for m in layout.RUN_MARKERS if (out / m).exists()]
    if existing and not (resume or overwrite):
        raise RunFolderError(
            f"{out}: already holds a run ({', '.join(existing)}); "
            "use --resume to continue it or --overwrite to replace it"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise RunFolderError(f"{out}: cannot write there ({e.strerror or e})") from None
    if overwrite and not resume:
        _remove_run(out)
    return out


def _remove_run(out: Path) -> None:
    # Replace the previous run's own files (only those: --out may hold other things), so none
    # of its models can later pass for this run's.
    own = [*layout.RUN_MARKERS, layout.IMAGES, layout.REPORT, layout.FIGURES_DIR]
    for p in [*own, *(q.name for q in out.glob("latent_*"))]:
        target = out / p
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def require_run(out) -> Path:
    """``out`` as a Path, after checking that it holds a trained run."""
    out = Path(out)
    if not (out / layout.CONFIG).exists() or not (out / layout.METRICS).exists():
        raise RunFolderError(
            f"{out}: no trained run here (config.json and metrics.json are "
            "written by 'cxrvae train')"
        )
    return out


def source_ref(source, data: XrayData) -> str:
    """How config.json names the data: an absolute path, or a public set as ``name:size``."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else data.source


def read_config(out) -> tuple[RunConfig, str]:
    """The run's saved configuration and the source of its images."""
    settings, source = read_config_file(Path(out) / layout.CONFIG)
    return RunConfig.from_dict(settings), source


def read_metrics(out) -> StudyMetrics:
    """``metrics.json`` as :class:`~cxrvae.results.StudyMetrics`."""
    return from_dict(StudyMetrics, read_json(Path(out) / layout.METRICS))


def write_metrics(out, metrics: StudyMetrics) -> Path:
    """Write ``metrics.json`` (atomically)."""
    return write_json(Path(out) / layout.METRICS, to_dict(metrics))


def read_split(out) -> tuple[np.ndarray, np.ndarray]:
    """The run's train and test indices."""
    with np.load(Path(out) / layout.SPLIT) as f:
        return f["train"], f["test"]


def write_split(out, train, test) -> Path:
    return save_npz(Path(out) / layout.SPLIT, train=train, test=test)


@dataclass
class Run:
    """A run folder opened from Python: its configuration, metrics, split and per-model files.

    Returned by :func:`~cxrvae.study.run_study` and :func:`open_run`; every accessor reads the
    folder, so ``analyze_study`` or ``build_report`` can change it in between.
    """

    out: Path
    config: RunConfig
    source: str
    metrics: StudyMetrics
    train_idx: np.ndarray
    test_idx: np.ndarray

    @property
    def latent_dims(self) -> list[int]:
        """Latent sizes whose training finished."""
        return list(self.metrics.trained)

    def data(self) -> XrayData:
        """The images, loaded again from the run's source."""
        return load_data(self.source, self.config.data)

    # The model accessors import torch when called, so that reading a run's files (as the
    # report does) never loads it.
    def history(self, latent_dim: int) -> dict[str, np.ndarray]:
        """Per-epoch columns (``epoch``, ``train_loss``, ``test_loss``, ``test_bce``...)."""
        from .train import history_columns, read_history

        return history_columns(
            read_history(layout.model_dir(self.out, latent_dim) / layout.HISTORY)
        )

    def model(self, latent_dim: int, device="cpu"):
        """The trained :class:`~cxrvae.model.ConvVAE` in eval mode."""
        from .train import load_model

        return load_model(layout.model_dir(self.out, latent_dim) / layout.WEIGHTS, device)

    def embedding(self, latent_dim: int) -> dict[str, np.ndarray]:
        """The analysed sample of one model: ``sample_idx``, ``mu``, ``pca``, ``tsne``,
        ``clusters``, ``recon`` (uint8), and the interpolations (``axes``, ``t``, ``frames``).
        """
        path = layout.model_dir(self.out, latent_dim) / layout.EMBEDDING
        if not path.exists():
            raise RunFolderError(f"{path}: no analysis yet (run analyze_study first)")
        with np.load(path) as f:
            return {k: f[k] for k in f.files}


def open_run(out) -> Run:
    """Open a run folder written by ``cxrvae train``/``run`` or :func:`~cxrvae.run_study`."""
    out = require_run(out)
    config, source = read_config(out)
    return Run(out, config, source, read_metrics(out), *read_split(out))
