"""What a command's arguments say: its settings, made once, and what DATA may name. No torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import IMAGE_SIZES, RunConfig, configure
from ..data.catalog import SAMPLE, parse_dataset
from ..errors import UsageError


def configured(args: argparse.Namespace) -> RunConfig:
    """The command's :class:`RunConfig`: defaults, then the ``--config`` file, then the flags
    given (see :func:`cxrvae.config.configure`). Made once per command and kept on ``args``;
    a setting that is wrong raises the same :class:`UsageError` each time it is asked for."""
    if "_configured" not in vars(args):
        try:
            args._configured = configure(
                getattr(args, "config", None), vars(args), _size_of_named_set(args)
            )
        except UsageError as e:
            args._configured = e
    if isinstance(args._configured, UsageError):
        raise args._configured
    return args._configured


def _size_of_named_set(args) -> int | None:
    """The model size for a public set named with a size (``pneumoniamnist:128`` -> 128)."""
    data = getattr(args, "data", None)
    if data is None or Path(data).exists():
        return None
    named = parse_dataset(data)
    if named is None or named[1] is None:
        return None
    return min(IMAGE_SIZES, key=lambda s: (abs(s - named[1]), -s))


def may_exist(data) -> bool:
    """Whether DATA may name images: omitted, a path that exists, the sample or a public set."""
    return data is None or data == SAMPLE or Path(data).exists() or parse_dataset(data) is not None
