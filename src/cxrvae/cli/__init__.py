"""Command line: ``cxrvae train | run | analyze | report | score | inspect | export``.

One module per command (``<name>_command``) declares its parser and runs it (``add_parser``,
``run``); :mod:`.options` holds the flags several commands share, :mod:`.settings` what the
arguments say, :mod:`.progress` what training shows. Only this package prints; ``cxrvae
--help`` and ``cxrvae COMMAND --help`` import no torch.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import warnings

from .. import __version__
from ..errors import TrainingError, UsageError
from . import (
    analyze_command,
    export_command,
    inspect_command,
    report_command,
    run_command,
    score_command,
    train_command,
)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

COMMANDS = {
    "train": train_command,
    "run": run_command,
    "analyze": analyze_command,
    "report": report_command,
    "score": score_command,
    "inspect": inspect_command,
    "export": export_command,
}
WORKER_MODULES = train_command.WORKER_MODULES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxrvae",
        description="Train convolutional VAEs on chest X-rays and explain what their latent "
        "spaces learned.",
        epilog="Run 'cxrvae COMMAND --help' for the options of a command. Settings flags "
        "(--epochs, --latent-dims...) are the kebab-case names of the fields of a --config "
        "file.",
    )
    parser.add_argument("--version", action="version", version=f"cxrvae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``cxrvae`` command; returns the exit status."""
    args = build_parser().parse_args(argv)  # before importing torch: --help stays quick
    command = COMMANDS[args.command]
    if hasattr(command, "warm_workers"):
        command.warm_workers(args)
    import matplotlib

    from ..train.distributed import init_distributed, is_main

    matplotlib.use("Agg")  # the command line only writes figures to files
    several = hasattr(command, "device") and init_distributed(command.device(args))
    logging.basicConfig(
        level=logging.WARNING if args.quiet or not is_main() else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )
    if not args.debug:
        _quiet_readers()
    try:
        return _dispatch(command, args)
    finally:
        if several:
            import torch.distributed as dist

            dist.destroy_process_group()


def _quiet_readers() -> None:
    """Leave out what the readers' libraries say of a damaged file (pydicom's log lines and
    tracebacks, its and Pillow's warnings: several lines each). The command says in one line
    what matters: that a file was refused, and why. ``--debug`` shows them."""
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"(pydicom|PIL)(\.|$)")


def console() -> None:
    """The ``cxrvae`` program: :func:`main`, then exit with its status.

    Before exiting, the objects left are moved out of the garbage collector's sight
    (``gc.freeze``): Python's last collection at exit would otherwise walk everything torch,
    scikit-learn and matplotlib made, for nothing, as the process ends.
    """
    status = main()
    gc.freeze()
    sys.exit(status)


def _dispatch(command, args) -> int:
    """Run the command; turn the errors users can fix into one line and an exit status."""
    from ..train.distributed import is_main
    from ..train.workers import WorkerDied

    try:
        return command.run(args)
    except UsageError as e:
        if not is_main():
            return EXIT_USAGE  # under torchrun, rank 0 says it
        if args.debug:
            raise
        print(f"cxrvae: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (TrainingError, WorkerDied) as e:
        if args.debug:
            raise
        print(f"cxrvae: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # unwritable folder, full disk...: say which file, keep what exists
        if args.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"cxrvae: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        stopped = (
            command.interrupted(args)
            if hasattr(command, "interrupted")
            else "Nothing was changed that a new run would not write again."
        )
        print(f"\ncxrvae: interrupted. {stopped}", file=sys.stderr)
        return EXIT_INTERRUPTED
