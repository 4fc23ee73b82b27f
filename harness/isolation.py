"""Run untrusted loss code in a worker process: a per-call timeout, a memory limit, crashes survived.

:class:`Worker` wraps a callable ``call(inputs, labels) -> np.ndarray`` (an adapter of
:mod:`harness.adapters`) and runs it in a long-lived child process, one call at a time over a
``multiprocessing`` pipe (numpy arrays are pickled between our own two processes; nothing is written to a
file). In the child:

- its own process group (``setpgid``), so that a kill reaches whatever the audited code started;
- ``RLIMIT_AS`` = the address space it started with + ``memory_mb`` MiB (relative, because a child forked
  from a process that already mapped TensorFlow starts with gigabytes of address space), and no core files;
- floating-point warnings and library warnings silenced, as for the built-in candidates.

In the parent, a call that gives no answer within ``timeout`` seconds kills the child's process group and
raises :class:`harness.scoring.CandidateFailure` of kind ``timeout``; a child that dies (segfault, abort,
``os._exit``) gives kind ``crashed`` with the signal's name; ``MemoryError`` in the child gives kind
``out_of_memory``; any other exception kind ``raised``, as :func:`harness.scoring.call_candidate` words it.
The next call starts a fresh child; after :data:`TRIP_AFTER` timeouts or crashes in a row, calls are
refused at once (a finding saying so) except occasional probes, so that a function that hangs on every
input costs a few dozen timeouts rather than one per example. :meth:`Worker.close` (also run at exit for every live worker) ends the
child and reaps it, so no zombie or orphan stays behind.

Start method: ``fork`` (cheap, and the only one that can run a callable that does not pickle, such as a
lambda), except when TensorFlow, PyTorch or JAX is already loaded in this process and the callable pickles
(an importable function or a ``"module:function"`` spec): then ``spawn``, because those libraries' thread
pools do not survive a fork. This module imports nothing heavy; the child imports only what the audited
code needs.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from typing import Any, Callable

__all__ = ["Worker", "start_method", "close_all"]

# Libraries whose runtime threads make a forked child unsafe once loaded in the parent.
_FORK_UNSAFE = ("tensorflow", "torch", "jax", "jaxlib")
# How long a fresh worker may take to import the audited code and report ready (TensorFlow: a few seconds).
STARTUP_SECONDS = 120.0
# After this many consecutive timeouts or crashes the worker is "tripped": calls are refused at once (a
# finding of the same kind, saying it was not run) except probes, after PROBE_GAP refused calls, then twice
# as many after each failed probe; a probe that answers resets it. This bounds an audit of a function that
# hangs or crashes on every input to a few dozen timeouts instead of one per example.
TRIP_AFTER = 3
PROBE_GAP = 10

_LIVE: "weakref.WeakSet[Worker]" = weakref.WeakSet()


def _picklable(obj: Any) -> bool:
    """Whether ``obj`` pickles and unpickles in a fresh interpreter (not by reference to ``__main__``)."""
    import pickle

    try:
        data = pickle.dumps(obj)
    except Exception:
        return False
    return b"__main__" not in data and b"__mp_main__" not in data


def start_method(call: Any) -> str:
    """``fork`` or ``spawn`` for a worker running ``call`` (see the module docstring)."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    if "fork" not in methods:
        return "spawn"
    heavy = any(name in sys.modules for name in _FORK_UNSAFE)
    if (heavy or sys.platform == "darwin") and _picklable(call):
        return "spawn"
    return "fork"


def _address_space_bytes() -> int:
    """This process's current virtual memory size (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_resources(memory_mb: int) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    if memory_mb:
        limit = _address_space_bytes() + int(memory_mb) * 2**20
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        except (ValueError, OSError):
            pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


def _serve(conn: Any, call: Callable[[Any, Any], Any], memory_mb: int) -> None:
    """The child's loop: receive (inputs, labels), answer ("ok", result) or ("failure", kind, message)."""
    import faulthandler
    import warnings

    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business: it closes us
    if faulthandler.is_enabled():
        faulthandler.disable()  # a crash is reported by the parent, not as a traceback on the terminal
    _limit_resources(memory_mb)
    import numpy as np

    prepare = getattr(call, "prepare", None)
    try:
        if prepare is not None:
            prepare()
    except BaseException as exc:  # noqa: BLE001 - the audited code's import failing is reported, not raised
        conn.send(("failed", f"could not load the function in the worker: {type(exc).__name__}: {_first_line(exc)}"))
        return
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        inputs, labels = message
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reply: tuple = ("ok", call(inputs, labels))
        except MemoryError as exc:
            reply = ("failure", "out_of_memory",
                     f"raised MemoryError{': ' + _first_line(exc) if _first_line(exc) else ''}"
                     f" (the worker's memory limit is {memory_mb} MiB above its start; see --memory-mb)")
        except BaseException as exc:  # noqa: BLE001 - SystemExit in audited code is a finding too
            kind = getattr(exc, "kind", None)
            if type(exc).__name__ == "CandidateFailure" and kind:
                reply = ("failure", kind, str(exc))
            else:
                reply = ("failure", "raised", f"raised {type(exc).__name__}: {_first_line(exc)}")
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("failure", "out_of_memory", "the result did not fit in the worker's memory limit"))
        except Exception as exc:  # noqa: BLE001 - an unpicklable result
            result = reply[1] if reply[0] == "ok" else None
            conn.send(("failure", "not_an_array",
                       f"returned {type(result).__name__}, which could not be sent back ({type(exc).__name__}: {_first_line(exc)})"))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Spawned:
    """A fresh interpreter running :func:`_child_main`, with the ``multiprocessing.Process`` methods used here."""

    def __init__(self, popen: Any) -> None:
        self.popen = popen
        self.pid = popen.pid

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        try:
            self.popen.kill()
        except ProcessLookupError:
            pass

    def join(self, timeout: float | None = None) -> None:
        import subprocess

        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def close(self) -> None:
        pass


def _spawn(call: Any, memory_mb: int) -> tuple[Any, _Spawned]:
    """Start ``python -c 'harness.isolation._child_main(FD)'`` in its own process group, connected by a socket
    pair: unlike ``multiprocessing``'s spawn it does not re-run the parent's ``__main__``."""
    import socket
    import subprocess
    from multiprocessing.connection import Connection

    ours, theirs = socket.socketpair()
    code = f"import sys; sys.path[:0] = {[p for p in sys.path]!r}; import harness.isolation as i; i._child_main({theirs.fileno()})"
    popen = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                             process_group=0, close_fds=True)
    theirs.close()
    conn = Connection(ours.detach())
    conn.send((call, memory_mb))
    return conn, _Spawned(popen)


def _child_main(fd: int) -> None:
    """Entry point of a spawned worker: read the callable, then serve calls."""
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    try:
        call, memory_mb = conn.recv()
    except BaseException as exc:  # noqa: BLE001 - e.g. the function's module does not import here
        conn.send(("failed", f"could not load the function in the worker: {type(exc).__name__}: {_first_line(exc)}"))
        return
    _serve(conn, call, memory_mb)


class Worker:
    """``call`` in a child process: ``worker(inputs, labels)`` returns its result or raises
    :class:`harness.scoring.CandidateFailure`. See the module docstring."""

    def __init__(self, call: Callable[[Any, Any], Any], *, timeout: float = 10.0, memory_mb: int = 4096,
                 name: str = "candidate", method: str | None = None, trip_after: int = TRIP_AFTER) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout={timeout!r} is not positive; pass a number of seconds above 0")
        self.call = call
        self.timeout = float(timeout)
        self.memory_mb = int(memory_mb)
        self.name = name
        self.method = method
        self.trip_after = int(trip_after)
        self.starts = 0
        self.calls = 0  # calls made in the worker (refused ones not counted)
        self.refused = 0  # calls refused while tripped
        self._streak: list[str] = []  # kinds of the consecutive timeouts/crashes just before
        self._skip = 0  # refused calls left before the next probe
        self._gap = PROBE_GAP
        self._process: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()
        _LIVE.add(self)

    # -------------------------------------------------------------------------------------------- lifecycle

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _start(self) -> None:
        from ._records import CandidateFailure

        method = self.method or start_method(self.call)
        if method == "fork":
            import multiprocessing

            ctx = multiprocessing.get_context("fork")
            parent, child = ctx.Pipe(duplex=True)
            process: Any = ctx.Process(target=_serve, args=(child, self.call, self.memory_mb),
                                       name=f"lossfuzz-worker[{self.name}]", daemon=True)
            process.start()
            child.close()
        else:
            parent, process = _spawn(self.call, self.memory_mb)
        self._process, self._conn = process, parent
        self.starts += 1
        wait = max(STARTUP_SECONDS, self.timeout)
        if not parent.poll(wait):
            self._stop(kill=True)
            raise CandidateFailure(f"the worker did not start within {wait:g} s", "timeout")
        try:
            hello = parent.recv()
        except (EOFError, OSError):
            raise self._died("while starting") from None
        if hello[0] != "ready":
            self._stop(kill=True)
            raise CandidateFailure(hello[1], "raised")

    def _stop(self, kill: bool) -> int | None:
        """End the child (politely unless ``kill``), reap it, and return its exit code."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return None
        if not kill and process.is_alive():
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            process.join(1.0)
        if process.is_alive() or kill:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the child leads its own group: take its children too
            except (ProcessLookupError, PermissionError, OSError):
                pass
            if process.is_alive():
                process.kill()
        process.join()
        try:
            conn.close()
        except OSError:
            pass
        code = process.exitcode
        try:
            process.close()
        except ValueError:
            pass
        return code

    def _died(self, when: str):
        from ._records import CandidateFailure

        code = self._stop(kill=True)  # reap it, and anything left in its group
        if code is not None and code < 0:
            name = _signal_name(-code)
            hint = " (perhaps the kernel's out-of-memory killer)" if -code == signal.SIGKILL else ""
            return CandidateFailure(f"crashed: the worker was killed by {name}{hint} {when}", "crashed")
        return CandidateFailure(f"crashed: the worker exited with status {code} {when}", "crashed")

    def close(self) -> None:
        """End the worker and reap it; the next call would start a fresh one."""
        with self._lock:
            self._stop(kill=False)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._process is not None:
                self._stop(kill=True)
        except Exception:
            pass

    # ------------------------------------------------------------------------------------------------ calls

    def __call__(self, inputs: Any, labels: Any) -> Any:
        from ._records import CandidateFailure

        with self._lock:
            if self.trip_after and len(self._streak) >= self.trip_after:
                if self._skip > 0:
                    self._skip -= 1
                    self.refused += 1
                    what = "timed out" if self._streak[-1] == "timeout" else "crashed"
                    raise CandidateFailure(f"not run: the worker {what} on the {len(self._streak)} calls before"
                                           " (calls are tried again now and then)", self._streak[-1])
            try:
                result = self._call(inputs, labels)
            except CandidateFailure as exc:
                if exc.kind in ("timeout", "crashed"):
                    self._streak.append(exc.kind)
                    if self.trip_after and len(self._streak) > self.trip_after:
                        self._gap *= 2  # a failed probe
                    if self.trip_after and len(self._streak) >= self.trip_after:
                        self._skip = self._gap
                else:
                    self._reset()
                raise
            self._reset()
            return result

    def _reset(self) -> None:
        self._streak.clear()
        self._skip = 0
        self._gap = PROBE_GAP

    def _call(self, inputs: Any, labels: Any) -> Any:
        from ._records import CandidateFailure

        if self._process is None or not self._process.is_alive():
            if self._process is not None:
                self._stop(kill=True)
            self._start()
        conn = self._conn
        self.calls += 1
        try:
            conn.send((inputs, labels))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise self._died("before the call") from None
        if not conn.poll(self.timeout):
            self._stop(kill=True)
            raise CandidateFailure(f"timed out: no answer within {self.timeout:g} s (the worker was killed)", "timeout")
        try:
            reply = conn.recv()
        except (EOFError, OSError, ConnectionResetError):
            raise self._died("during the call") from None
        if reply[0] == "ok":
            return reply[1]
        raise CandidateFailure(reply[2], reply[1])


def close_all() -> None:
    """Close every live worker (run at exit)."""
    for worker in list(_LIVE):
        try:
            worker.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


atexit.register(close_all)
