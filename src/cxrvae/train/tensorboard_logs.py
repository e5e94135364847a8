"""TensorBoard logs of a run (``--tensorboard``): losses per epoch, and the analysed sample in
the projector with X-ray thumbnails. Needs the ``tensorboard`` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import outputs
from ..errors import ConfigError


def require_tensorboard():
    """TensorBoard's SummaryWriter, or a one-line error saying how to install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "--tensorboard needs the tensorboard package: pip install 'cxrvae[tensorboard]'"
        ) from None
    return SummaryWriter


def _writer(out, latent_dim: int):
    return require_tensorboard()(log_dir=str(outputs.tensorboard_dir(out, latent_dim)))


def logged(progress, out):
    """Wrap a progress factory so that every epoch's row is also logged as TensorBoard scalars
    (``loss/train``, ``loss/test``, ``bce/test``...) under ``out/tensorboard/latent_<k>``."""

    def start(latent_dim: int, done: int, total: int):
        writer = _writer(out, latent_dim)
        report = progress(latent_dim, done, total) if progress else None

        def on_epoch(row):
            for key, value in row.items():
                if key != "epoch":
                    split, _, metric = key.partition("_")
                    writer.add_scalar(f"{metric}/{split}" if metric else key, value, row["epoch"])
            writer.flush()
            if row["epoch"] == total:
                writer.close()
            if report:
                report(row)

        return on_epoch

    return start


def has_logs(out) -> bool:
    """Whether the run in ``out`` was trained with ``--tensorboard``."""
    return (Path(out) / outputs.TENSORBOARD).is_dir()


def log_embedding(out, latent_dim: int, mu, clusters, labels, label_names, thumbnails) -> None:
    """The analysed sample for TensorBoard's projector, with X-ray thumbnails (uint8)."""
    import torch

    if labels is None:
        meta, header = [str(c) for c in clusters], None
    else:
        meta = [[str(c), label_names[y]] for c, y in zip(clusters, labels)]
        header = ["cluster", "label"]
    writer = _writer(out, latent_dim)
    writer.add_embedding(
        torch.from_numpy(np.ascontiguousarray(mu, dtype=np.float32)),
        metadata=meta,
        metadata_header=header,
        label_img=torch.from_numpy(thumbnails[:, None].astype(np.float32) / 255.0),
        tag=f"latent_{latent_dim}",
    )
    writer.close()
