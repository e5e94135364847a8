"""Seeds: one run seed, sub-seeds derived from it in a documented way."""

from __future__ import annotations

import random
import zlib

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(seed: int, purpose: str) -> int:
    """Sub-seed for one purpose (``"split"``, ``"model-16"``, ``"tsne"``...).

    ``crc32(purpose) XOR seed``, kept in [0, 2**31): the same run seed always gives the same
    sub-seed for a purpose, and different purposes get unrelated streams.
    """
    return (zlib.crc32(purpose.encode()) ^ int(seed)) % 2**31


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded with ``seed`` on ``device``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g
