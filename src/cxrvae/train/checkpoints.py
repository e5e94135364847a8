"""What training writes: resumable checkpoints (model, optimiser, schedule, batch order and
history, loadable with ``torch.load(weights_only=True)``) and the final weights as safetensors.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from ..atomic import atomic_write
from .model import ConvVAE

log = logging.getLogger(__name__)


def save_checkpoint(path, model, optimizer, scheduler, generator, history, config_dict) -> None:
    """Everything needed to continue training, loadable with ``weights_only=True``."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "history": history,
        "config": json.dumps(config_dict),
        "model_args": _model_args(model),
        "versions": {"torch": str(torch.__version__)},
    }
    # Serialise in memory, then write with plain file I/O: a full disk then raises OSError
    # (torch.save writing to a full disk raises a RuntimeError that names no file).
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda p: p.write_bytes(buffer.getvalue()))


def restore_checkpoint(path, model, optimizer, scheduler, generator) -> list[dict]:
    """The history of the checkpoint at ``path``, its states loaded ([] without one)."""
    if path is None or not Path(path).exists():
        return []
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    log.info("resumed from %s after epoch %d", path, len(state["history"]))
    return list(state["history"])


def _model_args(model: ConvVAE) -> dict:
    return {
        "image_size": model.image_size,
        "latent_dim": model.latent_dim,
        "widths": list(model.widths),
        "batchnorm": any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()),
    }


def save_model(path, model: ConvVAE) -> None:
    """Weights as safetensors, with the constructor arguments in the file's metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"cxrvae_model": json.dumps(_model_args(model))}
    blob = save(tensors, metadata=meta)
    atomic_write(path, lambda p: p.write_bytes(blob))


def load_model(path, device="cpu") -> ConvVAE:
    """Rebuild a ConvVAE from a file written by :func:`save_model`, in eval mode."""
    with safe_open(str(path), framework="pt") as f:
        args = json.loads(f.metadata()["cxrvae_model"])
    model = ConvVAE(args["image_size"], args["latent_dim"], args["widths"], args["batchnorm"])
    model.load_state_dict(load_file(str(path)))
    return model.to(device=device, memory_format=torch.channels_last).eval()


def checkpoint_history(path) -> list[dict]:
    """The history rows stored in a checkpoint ([] when there is none)."""
    path = Path(path)
    return list(torch.load(path, weights_only=True)["history"]) if path.exists() else []
