"""What training shows while it runs: a progress bar per model on a terminal, one log line per
epoch otherwise, with log lines written above the bars."""

from __future__ import annotations

import contextlib
import logging
import sys

log = logging.getLogger("cxrvae")


def progress_factory():
    """Per-model progress: a tqdm bar on a terminal, one log line per epoch otherwise."""
    tty = sys.stderr.isatty()

    def start(latent_dim: int, done: int, total: int):
        if tty:
            from tqdm import tqdm

            bar = tqdm(
                total=total,
                initial=done,
                desc=f"latent {latent_dim:>3}",
                unit="epoch",
                dynamic_ncols=True,
            )

            def report(row):
                bar.update(1)
                bar.set_postfix(  # a dict keeps this order (keyword arguments get sorted)
                    {
                        "train": f"{row['train_loss']:.1f}",
                        "test": f"{row['test_loss']:.1f}",
                        "test BCE": f"{row['test_bce']:.1f}",
                        "test KL": f"{row['test_kl']:.2f}",
                    }
                )
                if row["epoch"] == total:
                    bar.close()
        else:

            def report(row):
                log.info(
                    "latent %d epoch %d/%d: train %.2f test %.2f (bce %.2f, kl %.2f) %.1fs",
                    latent_dim,
                    row["epoch"],
                    total,
                    row["train_loss"],
                    row["test_loss"],
                    row["test_bce"],
                    row["test_kl"],
                    row["seconds"],
                )

        return report

    return start


def terminal_logs():
    """On a terminal, log lines are written above the progress bars instead of through them."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()
