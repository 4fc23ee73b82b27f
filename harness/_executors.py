"""Where the pieces of a campaign or a sweep run: local processes, or a Dask distributed cluster.

:func:`executor_for` gives a :class:`concurrent.futures.Executor`: with no scheduler, a local
:class:`~concurrent.futures.ProcessPoolExecutor` whose workers are *spawned* (never forked: the parent may
hold TensorFlow's threads and locks) and ignore SIGINT (the parent decides what a Ctrl-C stops); with
``tcp://HOST:PORT``, the executor of a ``distributed.Client`` connected to that scheduler (Dask is the
engine: lossfuzz has no scheduler of its own). Whatever runs there must be a top-level, importable function
whose arguments and result are plain data, so that its figures are the same wherever it ran.

Dask is an extra (``pip install 'lossfuzz[dask]'``) and is imported only here, only when a scheduler is
asked for: ``import harness`` stays light. An address that cannot be reached, a scheduler without workers,
or Dask missing is a one-line :class:`~harness.options.UsageError` saying how to fix it, within
``timeout`` seconds, never a hang.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, ContextManager, Iterator, Mapping

from .options import UsageError, scheduler_address

__all__ = ["executor_for", "executor_for_options", "abandon", "CONNECT_TIMEOUT", "INSTALL_HINT"]

# Seconds to reach the scheduler, and then to see at least one worker, before giving up with one line.
CONNECT_TIMEOUT = 10.0
INSTALL_HINT = "pip install 'lossfuzz[dask]'"


@contextlib.contextmanager
def executor_for(scheduler: str | None, workers: int, *, timeout: float = CONNECT_TIMEOUT) -> Iterator[Executor]:
    """An executor for the work of one command, shut down when the block ends.

    ``scheduler``: None for ``workers`` local processes (spawned), or a Dask scheduler's ``tcp://HOST:PORT``
    (``workers`` is then the cluster's business and is ignored). Leaving the block normally cancels what
    has not started and, locally, waits for the work in hand; leaving it with an exception (a second
    Ctrl-C, a bug) also ends the local workers at once. On a cluster, tasks already running finish on their
    workers and their results are dropped (nothing waits for them)."""
    if scheduler is None:
        with _local_pool(workers) as pool:
            yield pool
    else:
        with _dask_executor(scheduler_address(scheduler), timeout) as executor:
            yield executor


def executor_for_options(options: Mapping[str, Any]) -> ContextManager[Executor]:
    """The executor of a command from its resolved options (:func:`harness.options.resolve`): ``scheduler``
    (``--scheduler``, a Dask cluster) if given, else ``workers`` local processes (``--workers``; default:
    every core). ``lossfuzz sweep`` runs its chunks on it: ``with executor_for_options(options) as pool:
    run_sweep(plan, pool, ...)``."""
    return executor_for(options.get("scheduler"), options.get("workers") or os.cpu_count() or 1)


def _worker_start(parent: int) -> None:
    """A local worker's initializer. A terminal's Ctrl-C reaches the whole process group; only the parent
    acts on it (it stops handing out work, and ends the workers if asked twice). A parent killed outright
    (SIGKILL, the OOM killer) cannot end its workers: on Linux the kernel ends them with it
    (``PR_SET_PDEATHSIG``), so none is left computing for nobody or holding the parent's output pipes (a
    caller waiting for them to close would wait forever); a parent already gone ends the worker at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl to call: the parent's own shutdown still ends the workers
            pass
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)
    keep_freed_memory()


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# glibc's mallopt parameters (<malloc.h>) and the values a worker sets (see keep_freed_memory)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest (4 MiB * sizeof(long)): a chunk's 2**20-value arrays are 8-16 MiB
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Have glibc's allocator keep the memory a worker frees, for its next chunk; True where it took both
    settings (glibc), False elsewhere (nothing changed).

    Why: a chunk allocates a few dozen arrays of 2**20 values (8-16 MiB) and frees them. By default glibc
    maps each afresh (``mmap``, then a page fault on every first touch of each 4 KiB page) and unmaps it when
    freed, or returns the top of its heap to the system once more than twice that size is free there. Blocks
    up to :data:`MMAP_THRESHOLD` now come from the heap, and up to :data:`TRIM_THRESHOLD` of free memory
    stays in it: on the sweep bench's chunks the system time fell from 1.0-1.3 s to 0.2-0.4 s of 6 s, and a
    chunk from 113-121 ms to 88-103 ms, with the same peak memory (README, "Speed"). The setting is the
    process's: only the local pool's workers, which exist for this work, take it (Dask workers are their
    operator's: the same ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` in their environment)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (or no C library to ask): its own allocator, untouched
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


@contextlib.contextmanager
def _local_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"workers={workers!r} is not a number of processes; pass 1 or more")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        _end_workers(pool)
        raise
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    except BaseException:  # a Ctrl-C while waiting for the work in hand: end the workers rather than wait
        _end_workers(pool)
        raise


def abandon(executor: Executor) -> None:
    """Drop the work ``executor`` has in hand, now: a local pool's workers are ended (a stopped ``run`` keeps
    only finished cells, so waiting for the running ones would be time spent on results thrown away); a Dask
    executor's unfinished tasks are cancelled when its block ends anyway."""
    if isinstance(executor, ProcessPoolExecutor):
        _end_workers(executor)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's worker processes now (the work they hold is pure and dropped), and reap them."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # (shutdown forgets them)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)


def _reachable(address: str, timeout: float) -> None:
    """Fail fast, in one line, where a plain TCP connection cannot be made (refused: at once; a name that
    does not resolve: at once; no answer: after ``timeout``), before Dask retries until its own timeout."""
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UsageError(f"cannot reach the Dask scheduler at {address} ({reason}); start one with `dask scheduler`"
                         " and pass the address it prints, or run without --scheduler") from None


class _CancelledGathers(logging.Filter):
    """Drops the traceback tornado logs when the Dask client was still gathering a task's result that a
    stopped run cancelled (``FutureCancelledError``): the cancellation lossfuzz asked for, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and type(exc).__name__ in ("FutureCancelledError", "CancelledError"))


@contextlib.contextmanager
def _dask_executor(address: str, timeout: float) -> Iterator[Executor]:
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(f"--scheduler {address} needs Dask, which is not installed; {INSTALL_HINT}") from None
    _reachable(address, timeout)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - whatever answered there is not a scheduler we can use
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"cannot connect to a Dask scheduler at {address} ({reason}); is it a `dask scheduler`"
                         " address?") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except Exception:  # noqa: BLE001 - distributed's TimeoutError (its class moved between versions)
            raise UsageError(f"the Dask scheduler at {address} has no workers after {timeout:g} s; start some with"
                             f" `dask worker {address}`") from None
        executor = client.get_executor()
        quiet = _CancelledGathers()
        logging.getLogger("tornado.application").addFilter(quiet)
        try:
            yield executor
        finally:
            executor.shutdown(wait=False)  # cancels what is unfinished; the scheduler forgets it
            logging.getLogger("tornado.application").removeFilter(quiet)
    finally:
        client.close()
