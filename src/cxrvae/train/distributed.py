"""Several processes training one model (torchrun): who this process is, and what it shares.

Without torchrun every helper here is a no-op for a single process (rank 0 of 1).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..errors import RunFolderError


def world() -> tuple[int, int]:
    """(rank, number of processes): (0, 1) unless started by torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True in the process that writes files (rank 0, or the only process)."""
    return world()[0] == 0


def init_distributed(device: str = "auto") -> bool:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1 (NCCL on GPUs, gloo on CPUs).

    Returns True when this process is one of several. Safe to call more than once.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and device != "cpu"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if cuda else "gloo")
    return True


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if world()[1] > 1:
        dist.barrier()


def sum_over_processes(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over every process, in place."""
    if world()[1] > 1:
        dist.all_reduce(t)
    return t


def on_main(fn, *args, **kwargs):
    """Run ``fn`` in the main process only and hand its result (or its error) to the others.

    Without torchrun this is a plain call.
    """
    rank, size = world()
    result, error = None, None
    if rank == 0:
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # shared below, so no process waits forever for rank 0
            error = e
    if size > 1:
        box = [(result, None if error is None else str(error))]
        dist.broadcast_object_list(box, src=0)
        result, message = box[0]
        if rank != 0 and message is not None:
            raise RunFolderError(message)
    if error is not None:
        raise error
    return result
