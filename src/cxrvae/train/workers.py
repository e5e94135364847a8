"""Tasks in worker processes: a few at once, each with its share of the CPU threads.

Used to train and analyse several models at once (``--parallel-models``). Workers are spawned
(safe with torch and CUDA), send progress messages and log records to the parent, and return a
result or an exception; a worker whose task is done takes the next one, and inside
:func:`reuse` waits for the next run. Ctrl-C stops the parent, which stops the workers: a worker
turns SIGTERM into an exception, so the atomic writes it had started remove their temporary
files. A worker whose parent dies stops itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import logging.handlers
import multiprocessing
import os
import pickle
import queue as queue_module
import signal
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
_queue = None  # in a worker: where send() puts messages for the parent
_index = None  # in a worker: the index of its task


class WorkerDied(RuntimeError):
    """A worker process ended without returning (killed, out of memory...)."""


def cpu_count() -> int:
    """CPUs this process may run on (its affinity, e.g. under taskset or a container quota)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


def _watch_parent(parent: int) -> None:
    # A parent killed outright (SIGKILL, SIGTERM) cannot stop its workers: they stop themselves.
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker(q, tasks, threads: int, level: int) -> None:
    """A worker's life: set up, then run each (index, fn, args) that comes through ``tasks``
    until None comes (or the parent goes)."""
    global _queue, _index
    _queue = q
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what a Ctrl-C stops
    signal.signal(signal.SIGTERM, _stop)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    root = logging.getLogger()
    root.handlers[:] = [_ToParent()]
    root.setLevel(level)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # BLAS and OpenMP too: idle threads of one worker spin
    while (task := tasks.recv()) is not None:
        _index, fn, args = task
        try:
            result = fn(*args)
        except Exception as e:
            q.put(("error", _index, _picklable(e)))
        else:
            q.put(("done", _index, result))


def _picklable(e: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RuntimeError(f"{type(e).__name__}: {e}")


def _check_alive(running: dict, names) -> None:
    for i, w in running.items():
        code = w.process.exitcode
        if code is not None:  # a worker with a task ends only when something ended it
            why = " (killed: out of memory?)" if code == -signal.SIGKILL else ""
            raise WorkerDied(f"the worker process of {names[i]} ended with exit code {code}{why}")


def _deliver(kind: str, index: int, payload, on_message) -> None:
    """Act on a worker's message, log record or exception in the parent."""
    if kind == "message" and on_message is not None:
        on_message(index, payload)
    elif kind == "log":
        logging.getLogger(payload.name).handle(payload)
    elif kind == "error":
        raise payload


@dataclasses.dataclass
class _Process:
    """A worker process, the parent's end of its task pipe, and what it was started with."""

    process: multiprocessing.Process
    tasks: object  # multiprocessing.connection.Connection
    key: tuple  # (threads, environment)

    def stop(self, wait: bool = True) -> None:
        with contextlib.suppress(OSError):
            self.tasks.send(None)
        if wait:
            self.process.join()


class _Pool:
    """The queue workers report on, and the workers left idle for the next :func:`run`."""

    def __init__(self):
        self.ctx = multiprocessing.get_context("spawn")
        self.queue = self.ctx.Queue()
        self.idle: list[_Process] = []

    def take(self, key: tuple) -> _Process | None:
        """An idle worker started with ``key``, if one is alive."""
        for w in list(self.idle):
            self.idle.remove(w)
            if w.key == key and w.process.is_alive():
                return w
            w.stop()
        return None

    def close(self) -> None:
        for w in self.idle:
            w.stop(wait=False)
        for w in self.idle:
            w.process.join()
        self.idle.clear()
        self.queue.close()


_kept: _Pool | None = None  # inside reuse(): where finished workers wait for the next run


@contextlib.contextmanager
def reuse():
    """Within the block, a worker whose task is done stays for the next :func:`run` with the
    same threads and environment, instead of ending: the analyses of a study then run in the
    processes that trained its models, which saves each a new Python and the import of torch.
    The workers left end with the block."""
    global _kept
    if _kept is not None:  # already inside a block
        yield
        return
    _kept = _Pool()
    try:
        yield
    finally:
        pool, _kept = _kept, None
        pool.close()


def run(
    tasks: Sequence[tuple[Callable, tuple]],
    processes: int,
    threads: int,
    on_message: Callable | None = None,
    names: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
) -> list:
    """Run ``fn(*args)`` for each ``(fn, args)`` in a worker process.

    ``tasks`` are module-level functions (spawned processes import them) and their arguments;
    at most ``processes`` run at once, each with ``threads`` torch threads, the next taken by
    the first worker whose task ends. ``on_message(index, message)`` is called in this process
    for every :func:`send` of task ``index``; ``names`` say what each task is in error messages
    (default "task <index>"); ``env`` adds variables to the workers' environment, read from
    their start (before any library reads them). Workers are new processes, or, inside
    :func:`reuse`, those an earlier run left with the same ``threads`` and ``env``.

    Returns the tasks' return values, in order. Raises the first exception a task raised,
    after stopping the others; :class:`WorkerDied` when a process ended without a result.
    KeyboardInterrupt stops every worker, then propagates.
    """
    names = names or [f"task {i}" for i in range(len(tasks))]
    env = env or {}
    key = (threads, tuple(sorted(env.items())))
    pool = _kept or _Pool()
    level = logging.getLogger().getEffectiveLevel()
    pending = list(enumerate(tasks))
    running: dict[int, _Process] = {}
    finished: list[_Process] = []  # their task done: they take the next, or are kept or stopped
    results: dict[int, object] = {}
    failed = True
    try:
        while pending or running:
            starting = {}
            while pending and len(running) + len(starting) < processes:
                i, task = pending.pop(0)  # to a worker whose task is done, if there is one
                starting[i] = (finished.pop() if finished else pool.take(key), task)
            with _environment(env):
                _start(pool, starting, threads, level, key, running)  # stopped below on failure
            try:
                kind, i, payload = pool.queue.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                continue
            finally:  # also while messages keep coming from the other workers
                _check_alive(running, names)
            if kind == "done":
                results[i] = payload
                finished.append(running.pop(i))
            else:
                _deliver(kind, i, payload, on_message)
        failed = False
    finally:
        _stop_all(running)
        if pool is _kept and not failed:
            pool.idle += finished
        else:
            if pool is _kept:  # the stopped workers' messages may be left on its queue
                finished, pool.idle = finished + pool.idle, []
            for w in finished:
                w.stop(wait=False)
            for w in finished:
                w.process.join()
            pool.queue.close()
            if pool is _kept:
                pool.queue = pool.ctx.Queue()
    return [results[i] for i in range(len(tasks))]


def _start(pool: _Pool, starting: dict, threads: int, level: int, key: tuple, running: dict):
    """Hand each task of ``starting`` (index -> (idle worker or None, (fn, args))) to its
    worker, starting new processes where there is none, side by side; add them to ``running``.

    Starting a process and handing it a task larger than a pipe holds (as a set's ids make it)
    each wait until the worker reads, and a new worker reads only after importing torch: about
    1.7 s each, one after another.
    """
    errors = []

    def start(i, worker, task):
        try:
            if worker is None:
                mine, theirs = pool.ctx.Pipe()
                args = (pool.queue, theirs, threads, level)
                p = pool.ctx.Process(target=_worker, args=args, daemon=True)
                p.start()
                worker = _Process(p, mine, key)
            running[i] = worker
            worker.tasks.send((i, *task))
        except BaseException as e:  # raised below, in this thread
            errors.append(e)

    threads_ = [threading.Thread(target=start, args=(i, *wt)) for i, wt in starting.items()]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    if errors:
        raise errors[0]


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """``os.environ`` with ``env`` added, for the time of the block (a spawned process takes
    this process's environment when it starts)."""
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


def _stop_all(running: dict) -> None:
    """Stop the workers still running (a task failed, or Ctrl-C)."""
    for w in running.values():
        w.process.terminate()
    for w in running.values():
        w.process.join()
