"""Tasks in worker processes: a few at once, each with its share of the CPU threads.

Used to train and analyse several models at once. Workers fork from a server process that has
imported torch and the tasks' modules once for all of them (multiprocessing's forkserver; they
are spawned where there is none), send progress messages and log records to the parent, and
return a result or an exception. Ctrl-C stops the parent, which stops the workers: a worker
turns SIGTERM into an exception, so the atomic writes it had started remove their temporary
files. A worker whose parent dies stops itself.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing
import multiprocessing.forkserver as forkserver
import os
import pickle
import queue as queue_module
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
_queue = None  # in a worker: where send() puts messages for the parent
_index = None  # in a worker: the index of its task
_server_policy = None  # in the parent: the waiting policy the fork server started with


class WorkerDied(RuntimeError):
    """A worker process ended without returning (killed, out of memory...)."""


def cpu_count() -> int:
    """CPUs this process may run on (its affinity, e.g. under taskset or a container quota)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_cores(n_tasks: int, cpus: int | None = None) -> tuple[int, int]:
    """(processes, threads each) for ``n_tasks`` at once on ``cpus`` (default: this process's):
    one process per task, at most one more than there are cores, the cores shared out as
    threads."""
    cpus = cpus or cpu_count()
    processes = min(n_tasks, cpus + 1)
    return processes, max(1, cpus // processes)


def available_memory() -> int | None:
    """Bytes of memory available to new work (Linux MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def send(*message) -> None:
    """In a worker: hand ``message`` to the parent's ``on_message`` (ignored elsewhere)."""
    if _queue is not None:
        _queue.put(("message", _index, message))


class _ToParent(logging.Handler):
    """Log records of a worker, formatted, to the parent (which filters and prints them)."""

    def emit(self, record):
        _queue.put(("log", _index, logging.handlers.QueueHandler.prepare(self, record)))


def _stop(signum, frame):
    raise SystemExit(128 + signum)  # unwinds: pending atomic writes delete their temp files


def _watch_parent() -> None:
    # A parent killed outright (SIGKILL, SIGTERM) cannot stop its workers: they stop themselves.
    # (Not by their parent process id: a forked worker's parent is the fork server.)
    parent = multiprocessing.parent_process()
    while parent is not None and parent.is_alive():
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker(q, index: int, threads: int, level: int, fn: Callable, args: tuple) -> None:
    global _queue, _index
    _queue, _index = q, index
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what a Ctrl-C stops
    signal.signal(signal.SIGTERM, _stop)
    threading.Thread(target=_watch_parent, daemon=True).start()
    root = logging.getLogger()
    root.handlers[:] = [_ToParent()]
    root.setLevel(level)
    import matplotlib
    import torch
    from threadpoolctl import threadpool_limits

    matplotlib.use("Agg")  # figures go to files only

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # BLAS and OpenMP too: idle threads of one worker spin
    try:
        result = fn(*args)
    except Exception as e:
        q.put(("error", index, _picklable(e)))
    else:
        q.put(("done", index, result))


def _picklable(e: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RuntimeError(f"{type(e).__name__}: {e}")


def _check_alive(running: dict, names) -> None:
    for i, p in running.items():
        if p.exitcode not in (None, 0):  # a clean exit has sent "done" or "error" first
            why = " (killed: out of memory?)" if p.exitcode == -signal.SIGKILL else ""
            raise WorkerDied(
                f"the worker process of {names[i]} ended with exit code {p.exitcode}{why}"
            )


def _deliver(kind: str, index: int, payload, on_message) -> None:
    """Act on a worker's message, log record or exception in the parent."""
    if kind == "message" and on_message is not None:
        on_message(index, payload)
    elif kind == "log":
        logging.getLogger(payload.name).handle(payload)
    elif kind == "error":
        raise payload


def run(
    tasks: Sequence[tuple[Callable, tuple]],
    processes: int,
    threads: int,
    on_message: Callable | None = None,
    names: Sequence[str] | None = None,
) -> list:
    """Run ``fn(*args)`` for each ``(fn, args)`` in a worker process of its own.

    ``tasks`` are module-level functions (workers import them) and their arguments; at most
    ``processes`` run at once, each with ``threads`` torch threads and the environment of
    :func:`waiting_policy`, the next starting when one ends. ``on_message(index, message)`` is
    called in this process for every :func:`send` of task ``index``; ``names`` say what each
    task is in error messages (default "task <index>").

    Returns the tasks' return values, in order. Raises the first exception a task raised,
    after stopping the others; :class:`WorkerDied` when a process ended without a result.
    KeyboardInterrupt stops every worker, then propagates.
    """
    names = names or [f"task {i}" for i in range(len(tasks))]
    if start_server({fn.__module__ for fn, _ in tasks}, threads):
        ctx, env = multiprocessing.get_context("forkserver"), {}  # the server has it
    else:
        ctx, env = multiprocessing.get_context("spawn"), waiting_policy(threads)
    q = ctx.Queue()
    level = logging.getLogger().getEffectiveLevel()
    pending = list(enumerate(tasks))
    running: dict[int, multiprocessing.Process] = {}
    finished: list[multiprocessing.Process] = []  # returned; joined at the end
    results: dict[int, object] = {}
    try:
        while pending or running:
            _start_next(ctx, pending, running, processes, (q, threads, level), env)
            try:
                kind, i, payload = q.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                continue
            finally:  # also while messages keep coming from the other workers
                _check_alive(running, names)
            if kind == "done":
                results[i] = payload
                finished.append(running.pop(i))
            else:
                _deliver(kind, i, payload, on_message)
    finally:
        _stop_all(running, q)
        for p in finished:
            p.join()
    return [results[i] for i in range(len(tasks))]


def waiting_policy(threads: int) -> dict[str, str]:
    """What workers with ``threads`` threads each add to their environment when they start.

    With one thread each, the workers share the cores out one each (or fewer). Libraries that
    start OpenMP threads of their own anyway (t-SNE always runs on two, see
    :mod:`cxrvae.analysis.latent`) would then spin at every barrier on a core another worker
    needs; with ``OMP_WAIT_POLICY=PASSIVE`` they sleep instead (benchmarks/README.md measures
    both). How threads wait does not change the numbers. A policy of the user's own is kept.
    """
    if threads == 1 and "OMP_WAIT_POLICY" not in os.environ:
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    return {}


def start_server(modules: Iterable[str], threads: int) -> bool:
    """Start the process that forks the workers, unless it runs; whether it serves workers
    with ``threads`` threads.

    The server imports torch and ``modules`` once, in the background, for every worker forked
    from it: a spawned worker takes seconds to import them, each one again. Its workers have
    the environment it started with, this process's then and the workers' waiting policy
    (:func:`waiting_policy`, which libraries read as they load): it serves workers that want
    that policy, and the others are spawned. Where there is no fork (Windows), every worker is
    spawned.
    """
    global _server_policy
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    policy = waiting_policy(threads)
    if _server_policy is None:
        multiprocessing.get_context("forkserver").set_forkserver_preload(
            [__name__, "torch", *sorted(modules), f"{__package__}.preload"]
        )
        with _environment({**policy, "PYTHONPATH": _this_package_first()}):
            forkserver.ensure_running()  # returns at once; the server imports on its own
        _server_policy = policy
    return _server_policy == policy


def _this_package_first() -> str:
    """PYTHONPATH with the folder this cxrvae was imported from first.

    The server imports its modules before it takes this process's ``sys.path`` (Python 3.11 and
    3.12 never take it), so without this it imports the installed cxrvae even where this
    process runs another (a source tree on ``sys.path``), and its workers run that one."""
    here = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])


def _start_next(ctx, pending: list, running: dict, processes: int, setup: tuple, env: dict):
    """Start pending tasks, in order, while fewer than ``processes`` run; add them to
    ``running`` (the caller stops them if anything fails). ``setup`` is (queue, threads, log
    level); ``env`` is added to the environment of spawned processes.

    They start side by side: starting a process blocks until it has read its task (once the
    task is larger than a pipe holds, as a set's ids make it), and a new process reads it only
    once it has imported torch (spawned, or forked from a server still importing it).
    """
    q, threads, level = setup
    starting = {}
    while pending and len(running) + len(starting) < processes:
        i, (fn, args) = pending.pop(0)
        task = (q, i, threads, level, fn, args)
        starting[i] = ctx.Process(target=_worker, args=task, daemon=True)
    if not starting:
        return
    try:
        with _environment(env), ThreadPoolExecutor(len(starting)) as pool:
            list(pool.map(multiprocessing.Process.start, starting.values()))
    finally:
        running.update({i: p for i, p in starting.items() if p.pid is not None})


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """``os.environ`` with ``env`` added, for the time of the block (a spawned process, or the
    fork server, takes this process's environment when it starts)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stop_all(running: dict, q) -> None:
    """Stop the workers still running (a task failed, or Ctrl-C) and close the queue."""
    for p in running.values():
        p.terminate()
    for p in running.values():
        p.join()
    q.close()
