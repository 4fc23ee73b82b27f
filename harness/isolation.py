"""Run untrusted loss code in a worker process: plain data back, a per-call timeout, a memory limit, an
overall budget, crashes survived, nothing left behind.

:class:`Worker` wraps a callable ``call(inputs, labels)`` (an adapter of :mod:`harness.adapters`) and runs it
in a long-lived child process, one call at a time over a socket pair. :meth:`Worker.gradient` asks the same
child for ``call.gradient(inputs, labels)`` instead (the request's ``what``: ``loss`` or ``gradient``): the
function's gradient is computed where the function runs, comes back as plain data like the loss, and a
hang, crash or exception during it is the same finding, counted in the same streak.

**Plain data only, both ways.** Every message is a frame: a 12-byte prefix (header length, payload length),
a JSON header (at most :data:`MAX_HEADER` bytes: dtype names, shapes, numbers as hex strings, one-line
messages) and raw array bytes. The worker converts what the function returned *inside the worker* (a
framework tensor to numpy, an array subclass to its base ``ndarray``, a Python number to a hex string);
anything that fails there (an ``__array__`` that raises, a ``__len__`` that lies, an object array) is a
finding. The harness checks each header (known dtype name, a shape whose size matches the payload, a
payload no larger than a result of these inputs can be) and rebuilds the array with ``np.frombuffer``: it
never unpickles anything the worker sent, so no code of the audited function can run in this process.
The parent sends its own pickled callable to a spawned worker (our data, unpickled there).

**Deadlines.** The harness reads and writes the socket without blocking, under the call's deadline: a
worker that stops mid-frame or stops reading is cut at the timeout like one that hangs.

In the child:

- its own session and process group (``setsid``), ``PR_SET_CHILD_SUBREAPER`` (Linux) so that processes
  its children orphan (a ``setsid`` double fork) are reparented to it, and an environment tag
  (:data:`TAG_VARIABLE`) that every descendant inherits. Ending a worker (:func:`kill_tree`) stops
  (``SIGSTOP``) every process found by parent links, session, group or tag, until no new one appears,
  then kills them all, so a forking function cannot outrun it;
- it dies with the harness: ``PR_SET_PDEATHSIG`` (SIGTERM, handled) and a watchdog thread that notices
  the parent is gone (and the socket's end of file) kill the worker's descendants, then the worker;
- its stdout and stderr (file descriptors 1 and 2, so also what its children and C code write) go to a
  pipe drained by a thread: the number of bytes and a bounded tail (:data:`OUTPUT_TAIL` bytes) come back
  with each answer (:attr:`Worker.output`), nothing reaches the terminal;
- ``RLIMIT_AS`` = the address space it started with + ``memory_mb`` MiB, and no core files; Ctrl-C ignored;
- its working directory is a fresh scratch folder (:data:`WORKDIR_VARIABLE`), removed when the worker
  ends, so audited code that writes or deletes relative paths (at import or per call) touches only that
  folder; the caller's folder stays on ``sys.path`` (as an absolute path) so its modules still import.

In the parent, a call that gives no answer within ``timeout`` seconds kills the worker's process tree and
raises :class:`harness.scoring.CandidateFailure` of kind ``timeout``; a child that dies (segfault, abort,
``os._exit``) gives kind ``crashed`` with the signal's name; ``MemoryError`` in the child gives kind
``out_of_memory``; any other exception kind ``raised``. The next call starts a fresh child; after
:data:`TRIP_AFTER` timeouts or crashes in a row, calls are refused at once (a finding saying so) except
occasional probes. A :class:`Budget` (the audit's ``--budget`` and its Ctrl-C) refuses every call once
spent; such a refusal carries ``stop`` (the reason) so that the caller stops asking.

Start method: ``spawn`` (a fresh ``python -c`` interpreter, which never copies a threaded parent such as
one running TensorFlow or JAX) whenever the callable pickles: a ``"module:function"`` spec, an importable
function, or one defined in the script being run (the worker runs that script as ``__mp_main__``, as
``multiprocessing`` does). Only a callable that cannot be pickled (a lambda, a local function) is run in a
``fork`` of this process. This module imports nothing heavy; the child imports only what the audited code
needs.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
import weakref
from typing import Any, Callable

from ._values import parse_value

__all__ = ["Worker", "Budget", "start_method", "close_all", "kill_tree", "check_limits", "TAG_VARIABLE",
           "MAX_SECONDS", "MAX_MEMORY_MB"]

# How long a fresh worker may take to import the audited code and report ready (TensorFlow: a few seconds).
STARTUP_SECONDS = 120.0
# After this many consecutive timeouts or crashes the worker is "tripped": calls are refused at once (a
# finding of the same kind, saying it was not run) except probes, after PROBE_GAP refused calls, then twice
# as many after each failed probe; a probe that answers resets it.
TRIP_AFTER = 3
PROBE_GAP = 10
# Limits checked up front (a one-line error, never a finding about the audited function).
MAX_SECONDS = 1e6
MAX_MEMORY_MB = 2**27  # 128 TiB: the user address space of a 64-bit Linux process
# The wire: a frame is _PREFIX (header length, payload length), a JSON header, raw bytes.
_PREFIX = struct.Struct("!IQ")
MAX_HEADER = 1 << 20
# What a call asks the worker for: the function's loss, or its gradient (call.gradient).
_WHATS = ("loss", "gradient")
# Bytes of the worker's captured stdout/stderr kept (the last ones).
OUTPUT_TAIL = 4000
# Environment variable set in every worker (and so inherited by whatever it starts): its value finds them.
TAG_VARIABLE = "LOSSFUZZ_WORKER_TAG"
WORKDIR_VARIABLE = "LOSSFUZZ_WORKER_DIR"  # the scratch working directory of a worker (module docstring)

_LIVE: "weakref.WeakSet[Worker]" = weakref.WeakSet()


def check_limits(timeout: Any = None, memory_mb: Any = None, budget: Any = None) -> None:
    """One-line ``ValueError`` for a per-call timeout, memory limit or budget the worker cannot honour."""
    for name, flag, value in (("timeout", "--timeout", timeout), ("budget", "--budget", budget)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= MAX_SECONDS):
            raise ValueError(f"{name}={value!r} ({flag}) is not a number of seconds above 0 and at most"
                             f" {MAX_SECONDS:.0f}")
    if memory_mb is not None:
        if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or not (0 <= memory_mb <= MAX_MEMORY_MB):
            raise ValueError(f"memory_mb={memory_mb!r} (--memory-mb) is not a limit in MiB from 0 (none) to"
                             f" {MAX_MEMORY_MB} (128 TiB, what a 64-bit process can address); e.g. 4096")


class Budget:
    """Seconds for a whole audit (``None``: unlimited) and a stop request (``stop()`` true: Ctrl-C or
    SIGTERM). :meth:`reason` says why no more calls are to be made, or None."""

    def __init__(self, seconds: float | None = None, stop: Callable[[], bool] | None = None) -> None:
        check_limits(budget=seconds)
        self.seconds = seconds
        self.started = time.monotonic()
        self._stop = stop
        self.spent_reason: str | None = None

    def left(self) -> float:
        if self.seconds is None:
            return math.inf
        return self.seconds - (time.monotonic() - self.started)

    def reason(self) -> str | None:
        if self.spent_reason is None:
            if self._stop is not None and self._stop():
                self.spent_reason = "interrupted (Ctrl-C or SIGTERM)"
            elif self.left() <= 0:
                self.spent_reason = f"the audit's budget of {self.seconds:g} s ran out (--budget)"
        return self.spent_reason


def _pickled(obj: Any) -> bytes | None:
    """``obj`` pickled, if a fresh interpreter can unpickle it (``__main__`` only when it is a script file)."""
    import pickle

    try:
        data = pickle.dumps(obj)
    except Exception:
        return None
    if b"__main__" in data or b"__mp_main__" in data:
        if _main_path() is None:
            return None
    return data


def _main_path() -> str | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py") or not os.path.isfile(path):
        return None
    return os.path.abspath(path)


def start_method(call: Any) -> str:
    """``spawn`` or ``fork`` for a worker running ``call`` (see the module docstring)."""
    if _pickled(call) is not None or not hasattr(os, "fork"):
        return "spawn"
    return "fork"


# ------------------------------------------------------------------------------------------ process trees


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, process group, session) of every process (empty without /proc)."""
    table: dict[int, tuple[int, int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            fields = stat.rsplit(b")", 1)[1].split()
            if fields[0] == b"Z":
                continue  # a zombie: already dead
            table[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[3]))
        except (OSError, IndexError, ValueError):
            continue
    return table


def _tagged(pid: int, tag: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return tag in f.read().split(b"\0")
    except OSError:
        return False


def _tree(root: int, tag: str | None) -> set[int]:
    """``root`` and every live process below it: by parent links, by ``root``'s session or group (it leads
    both), or carrying ``TAG_VARIABLE=tag`` (for orphans re-parented elsewhere)."""
    table = _proc_table()
    found = {root} if root in table else set()
    children: dict[int, list[int]] = {}
    for pid, (ppid, pgid, sid) in table.items():
        children.setdefault(ppid, []).append(pid)
        if sid == root or pgid == root:
            found.add(pid)
    entry = f"{TAG_VARIABLE}={tag}".encode() if tag else None
    if entry is not None:
        me = os.getpid()
        found.update(pid for pid in table if pid != me and _tagged(pid, entry))
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_tree(root: int, tag: str | None = None, *, spare: int | None = None) -> int:
    """Stop, then kill, ``root`` and every process of its tree (see :func:`_tree`), looking again until no
    new one appears, so that processes forking while they are killed cannot escape. ``spare``: a pid left
    alive (the worker killing its own descendants). Returns how many were killed."""
    protected = {os.getpid(), os.getppid(), 0, 1, spare}
    seen: set[int] = set()
    if not os.path.isdir("/proc"):  # pragma: no cover - not Linux: the group is what we can reach
        try:
            os.killpg(root, signal.SIGKILL)
        except OSError:
            pass
        return 0
    for _round in range(100):
        fresh = _tree(root, tag) - seen - protected
        if not fresh:
            break
        for pid in fresh:
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                pass
        seen |= fresh
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(seen)


# ------------------------------------------------------------------------------------------------ framing


class _Closed(Exception):
    """The other end is gone (or sent something that is not a frame)."""


class _TimedOut(Exception):
    """The deadline passed in the middle of a frame."""


class _Malformed(Exception):
    """A frame that breaks the protocol (too large, bad JSON, bad fields)."""


def _frame(header: dict, payload: bytes | memoryview = b"") -> list:
    data = json.dumps(header, separators=(",", ":")).encode()
    return [_PREFIX.pack(len(data), len(payload)), data, payload]


class _Channel:
    """One end of the socket pair. The parent's end is non-blocking and every read or write takes a
    deadline (``time.monotonic()`` value); the child's end blocks."""

    def __init__(self, sock: socket.socket, *, blocking: bool) -> None:
        self.sock = sock
        self.sock.setblocking(blocking)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, header: dict, payload: bytes | memoryview = b"", deadline: float | None = None) -> None:
        for part in _frame(header, payload):
            view = memoryview(part).cast("B")
            while len(view):
                if deadline is not None:
                    self._wait(write=True, deadline=deadline)
                try:
                    sent = self.sock.send(view)
                except (BlockingIOError, InterruptedError):
                    continue
                except (BrokenPipeError, ConnectionResetError, OSError) as exc:
                    raise _Closed(str(exc)) from None
                view = view[sent:]

    def _wait(self, *, write: bool, deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _TimedOut
            try:
                r, w, _x = select.select([] if write else [self.sock], [self.sock] if write else [], [], left)
            except InterruptedError:
                continue
            if r or w:
                return

    def _read(self, n: int, deadline: float | None) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            if deadline is not None:
                self._wait(write=False, deadline=deadline)
            try:
                k = self.sock.recv_into(view[got:], n - got)
            except (BlockingIOError, InterruptedError):
                continue
            except (ConnectionResetError, OSError) as exc:
                raise _Closed(str(exc)) from None
            if k == 0:
                raise _Closed("end of file")
            got += k
        return buf

    def poll(self, deadline: float) -> bool:
        try:
            self._wait(write=False, deadline=deadline)
        except _TimedOut:
            return False
        return True

    def recv(self, deadline: float | None = None, max_payload: int = 0) -> tuple[dict, bytearray]:
        """One frame: its header (a JSON object) and payload, refused (:class:`_Malformed`) before anything
        is allocated when a length is above ``MAX_HEADER`` or ``max_payload``."""
        head, size = _PREFIX.unpack(bytes(self._read(_PREFIX.size, deadline)))
        if head > MAX_HEADER or size > max_payload:
            raise _Malformed(f"a frame of {head} + {size} bytes (at most {MAX_HEADER} + {max_payload} expected)")
        raw = self._read(head, deadline)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            raise _Malformed(f"a header that is not JSON ({type(exc).__name__})") from None
        if not isinstance(header, dict):
            raise _Malformed("a header that is not a JSON object")
        payload = self._read(size, deadline) if size else bytearray()
        return header, payload


# --------------------------------------------------------------------------------------- plain-data arrays


_NUMBER_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
                  "float32", "float64", "longdouble", "complex64", "complex128")


def _dtype(name: Any) -> Any:
    """The numpy dtype of a number format's name (``bfloat16`` from ml_dtypes), or None for any other name.
    ml_dtypes is imported only when asked for bfloat16 (it takes seconds to import)."""
    import numpy as np

    if not isinstance(name, str):
        return None
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    for known in _NUMBER_DTYPES:
        if np.dtype(known).name == name:
            return np.dtype(known)
    return None


def _describe_array(a: Any) -> tuple[dict, memoryview]:
    """(header fields, raw bytes) of a base ndarray in native byte order (the sender's side)."""
    import numpy as np

    a = np.asarray(a)
    if not a.flags.c_contiguous:
        a = a.copy(order="C")  # not ascontiguousarray: it turns a 0-d array into 1-d
    if a.dtype.byteorder not in "=|":
        a = a.astype(a.dtype.newbyteorder("="))
    return {"dtype": a.dtype.name, "shape": list(a.shape)}, memoryview(a.reshape(-1).view(np.uint8))


def _rebuild_array(spec: Any, payload: bytearray | memoryview, max_ndim: int = 32) -> Any:
    """The array a header describes, over ``payload`` (no copy, no pickle); ``_Malformed`` for anything odd."""
    import numpy as np

    if not isinstance(spec, dict):
        raise _Malformed("an array description that is not an object")
    dtype = _dtype(spec.get("dtype"))
    shape = spec.get("shape")
    if dtype is None:
        raise _Malformed(f"an unknown dtype {str(spec.get('dtype'))[:40]!r}")
    if (not isinstance(shape, list) or len(shape) > max_ndim
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**62 for n in shape)):
        raise _Malformed("a shape that is not a short list of sizes")
    count = math.prod(shape)
    if count * dtype.itemsize != len(payload):
        raise _Malformed(f"shape {tuple(shape)} of {dtype.name} with {len(payload)} bytes")
    return np.frombuffer(payload, dtype=dtype, count=count).reshape(tuple(shape))


def _encode_result(result: Any, max_bytes: int) -> tuple[dict, memoryview | bytes]:
    """What ``call`` returned as a reply (header, payload), converted here in the worker: a Python number as
    a hex string, anything else through :func:`harness.adapters.to_numpy` to a base ``ndarray``."""
    import numpy as np

    from ._records import CandidateFailure

    if isinstance(result, (int, float)) and not isinstance(result, bool):
        return {"status": "ok", "number": float(result).hex()}, b""
    from .adapters import to_numpy

    array = np.asarray(to_numpy(result))  # a subclass becomes its base class; object arrays stay objects
    if type(array) is not np.ndarray:  # pragma: no cover - asarray never returns a subclass
        array = np.array(array, subok=False)
    if _dtype(array.dtype.name) is None:
        raise CandidateFailure(f"returned an array of dtype {array.dtype.name}, not of numbers", "wrong_dtype")
    if array.nbytes > max_bytes:
        raise CandidateFailure(f"returned shape {array.shape} ({array.nbytes} bytes), more than a result for these"
                               " inputs can hold", "wrong_shape")
    fields, raw = _describe_array(array)
    return {"status": "ok", "array": fields}, raw


def _reply_bound(inputs: Any) -> int:
    """The largest payload a result for these inputs may have: one complex128 per input element, + 64."""
    return 16 * max(int(getattr(inputs, "size", 1)), 1) + 64


# -------------------------------------------------------------------------------------------- the child


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:  # noqa: BLE001 - not Linux, or no libc symbol: the watchdog thread still works
        return False


_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36


def _guard(parent: int, tag: str) -> None:
    """End this worker and everything it started when ``parent`` (the harness) goes away."""

    def die(*_args: Any) -> None:
        kill_tree(os.getpid(), tag, spare=os.getpid())
        os._exit(70)

    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGTERM, die)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the death signal was armed
        die()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        die()

    threading.Thread(target=watch, name="lossfuzz-parent-watch", daemon=True).start()


class _Capture:
    """Redirect file descriptors 1 and 2 to a pipe drained by a thread; keep the byte count and a tail."""

    def __init__(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        read, write = os.pipe()
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        os.set_blocking(read, False)
        self._fd = read
        self._lock = threading.Lock()
        self.total = 0
        self.tail = bytearray()
        self._sent = -1
        threading.Thread(target=self._drain_forever, name="lossfuzz-output", daemon=True).start()

    def _drain(self) -> bool:
        """Read what is in the pipe now; False at end of file."""
        with self._lock:
            while True:
                try:
                    chunk = os.read(self._fd, 1 << 16)
                except BlockingIOError:
                    return True
                except OSError:
                    return False
                if not chunk:
                    return False
                self.total += len(chunk)
                self.tail += chunk
                del self.tail[:-OUTPUT_TAIL]

    def _drain_forever(self) -> None:
        while True:
            try:
                select.select([self._fd], [], [])
            except InterruptedError:
                continue
            except OSError:
                return
            if not self._drain():
                return

    def report(self) -> dict | None:
        """The output so far (flushed and drained first), or None when nothing new since the last report."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - the audited code may have replaced or closed them
                pass
        self._drain()
        if self.total == self._sent:
            return None
        self._sent = self.total
        return {"bytes": self.total, "tail": self.tail.decode("utf-8", "replace")}


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc).strip()
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        return f"<{type(exc).__name__} whose message cannot be read>"
    return text.splitlines()[0][:300] if text else ""


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
        except (ValueError, OSError, OverflowError):
            pass


def _failure_reply(exc: BaseException, memory_mb: int) -> dict:
    if isinstance(exc, MemoryError):
        first = _first_line(exc)
        return {"status": "failure", "kind": "out_of_memory",
                "message": f"raised MemoryError{': ' + first if first else ''} (the worker's memory limit is"
                           f" {memory_mb} MiB above its start; see --memory-mb)"}
    kind = getattr(exc, "kind", None)
    if type(exc).__name__ == "CandidateFailure" and isinstance(kind, str):
        return {"status": "failure", "kind": kind, "message": _first_line(exc)[:300],
                "hint": str(getattr(exc, "hint", "") or "")[:300]}
    return {"status": "failure", "kind": "raised", "message": f"raised {type(exc).__name__}: {_first_line(exc)}"}


def _serve(chan: _Channel, call: Any, memory_mb: int, parent: int, tag: str) -> None:
    """The child's loop: load, answer ``ready``, then answer each call with plain data."""
    import faulthandler
    import warnings

    _guard(parent, tag)
    _enter_scratch_folder()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business: it closes us
    if faulthandler.is_enabled():
        faulthandler.disable()  # a crash is reported by the parent, not as a traceback on the terminal
    capture = _Capture()
    load: tuple[dict, bytearray] | None = None
    if call is None:  # spawned: the callable comes pickled from the parent (our own data)
        try:
            load = chan.recv(max_payload=1 << 30)
        except (_Closed, _Malformed, OSError, struct.error):
            return
        memory_mb = int(load[0].get("memory_mb", 0))
    _limit_resources(memory_mb)
    import numpy as np

    def send(header: dict, payload: Any = b"") -> None:
        output = capture.report()
        if output is not None:
            header["output"] = output
        chan.send(header, payload)

    try:
        if load is not None:
            import pickle

            if load[0].get("main"):
                _run_main(load[0]["main"])
            call = pickle.loads(load[1])
        prepare = getattr(call, "prepare", None)
        described = prepare() if prepare is not None else None
        if described is not None and not isinstance(described, dict):
            described = None
    except BaseException as exc:  # noqa: BLE001 - the audited code's import failing is reported, not raised
        usage = isinstance(exc, ValueError)
        message = _first_line(exc) if usage else f"{type(exc).__name__}: {_first_line(exc)}"
        send({"status": "failed", "usage": usage, "message": message})
        return
    from . import adapters, scoring  # noqa: F401 - what converts results, loaded before the timed calls

    send({"status": "ready", "described": described})
    while True:
        try:
            header, payload = chan.recv(max_payload=1 << 40)
        except (_Closed, _Malformed, OSError, struct.error):
            return
        if header.get("op") != "call":
            return
        try:
            x_spec, z_spec = header["inputs"], header["labels"]
            split = math.prod(x_spec["shape"]) * _dtype(x_spec["dtype"]).itemsize
            view = memoryview(payload)
            inputs = _rebuild_array(x_spec, view[:split]).copy()
            labels = _rebuild_array(z_spec, view[split:]).copy()
        except Exception as exc:  # noqa: BLE001 - cannot happen with our parent; say so rather than hang
            send({"status": "failure", "kind": "crashed", "message": f"bad request: {exc}"})
            continue
        try:
            fn = call if header.get("what", "loss") == "loss" else getattr(call, "gradient", None)
            if fn is None:
                raise TypeError("this worker's function has no gradient")
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fn(inputs, labels)
                reply, raw = _encode_result(result, _reply_bound(inputs))
        except BaseException as exc:  # noqa: BLE001 - SystemExit in audited code is a finding too
            reply, raw = _failure_reply(exc, memory_mb), b""
        try:
            send(reply, raw)
        except _Closed:
            return
        except (MemoryError, ValueError, TypeError) as exc:
            send({"status": "failure", "kind": "not_an_array",
                  "message": f"the result could not be sent back ({type(exc).__name__}: {_first_line(exc)})"})


def _enter_scratch_folder() -> None:
    """Move into the worker's scratch folder, keeping the caller's folder importable by its absolute path
    (``""`` and ``"."`` on ``sys.path`` mean the current folder, which is about to change)."""
    scratch = os.environ.get(WORKDIR_VARIABLE)
    if not scratch:
        return
    here = os.getcwd()
    sys.path[:] = [here if entry in ("", ".") else entry for entry in sys.path]
    os.chdir(scratch)


def _run_main(path: str) -> None:
    """Load the parent's script as ``__mp_main__`` (its ``if __name__ == "__main__"`` part does not run), so
    that functions defined in it unpickle here, as ``multiprocessing``'s spawn does."""
    import runpy
    import types

    module = types.ModuleType("__mp_main__")
    module.__dict__.update(runpy.run_path(path, run_name="__mp_main__"))
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module


def _child_main(fd: int, parent: int, tag: str) -> None:
    """Entry point of a spawned worker."""
    chan = _Channel(socket.socket(fileno=fd), blocking=True)
    try:
        _serve(chan, None, 0, parent, tag)
    finally:
        os._exit(0)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Child:
    """A worker process we started (forked or spawned): its pid, and reaping it."""

    def __init__(self, pid: int, tag: str) -> None:
        self.pid = pid
        self.tag = tag
        self.exitcode: int | None = None

    def is_alive(self) -> bool:
        if self.exitcode is not None:
            return False
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.exitcode = -signal.SIGKILL
            return False
        if pid == 0:
            return True
        self.exitcode = os.waitstatus_to_exitcode(status)
        return False

    def kill(self) -> None:
        """Kill the worker and everything it started, and reap it."""
        kill_tree(self.pid, self.tag)
        if self.exitcode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                _pid, status = os.waitpid(self.pid, 0)
                self.exitcode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.exitcode = -signal.SIGKILL
        kill_tree(self.pid, self.tag)  # what it forked between the first sweep and its death


def _fork(call: Any, memory_mb: int, tag: str, scratch: str) -> tuple[_Channel, _Child]:
    ours, theirs = socket.socketpair()
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        try:
            ours.close()
            os.setsid()
            os.environ[TAG_VARIABLE] = tag
            os.environ[WORKDIR_VARIABLE] = scratch
            _serve(_Channel(theirs, blocking=True), call, memory_mb, parent, tag)
        finally:
            os._exit(0)
    theirs.close()
    return _Channel(ours, blocking=False), _Child(pid, tag)


def _spawn(tag: str, scratch: str) -> tuple[_Channel, _Child]:
    """Start ``python -c 'harness.isolation._child_main(FD, ...)'`` in its own session: unlike
    ``multiprocessing``'s spawn it never re-runs the parent's ``__main__`` as the main program."""
    import subprocess

    ours, theirs = socket.socketpair()
    code = (f"import sys; sys.path[:0] = {[p for p in sys.path]!r}; import harness.isolation as i;"
            f" i._child_main({theirs.fileno()}, {os.getpid()}, {tag!r})")
    env = {**os.environ, TAG_VARIABLE: tag, WORKDIR_VARIABLE: scratch}
    popen = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                             start_new_session=True, close_fds=True, env=env)
    popen.returncode = 0  # we reap it ourselves (os.waitpid); keep subprocess from doing it too
    theirs.close()
    return _Channel(ours, blocking=False), _Child(popen.pid, tag)


class Worker:
    """``call`` in a child process: ``worker(inputs, labels)`` returns its result (a numpy array, or a
    Python float for a Python number) or raises :class:`harness.scoring.CandidateFailure`. See the
    module docstring."""

    def __init__(self, call: Callable[[Any, Any], Any], *, timeout: float = 10.0, memory_mb: int = 4096,
                 name: str = "candidate", method: str | None = None, trip_after: int = TRIP_AFTER,
                 budget: Budget | None = None, startup_timeout: float = STARTUP_SECONDS) -> None:
        check_limits(timeout=timeout, memory_mb=memory_mb)
        self.call = call
        self.timeout = float(timeout)
        self.memory_mb = int(memory_mb)
        self.name = name
        self.method = method
        self.trip_after = int(trip_after)
        self.budget = budget
        self.startup_timeout = float(startup_timeout)
        self.starts = 0
        self.calls = 0  # calls made in the worker (refused ones not counted)
        self.refused = 0  # calls refused while tripped
        self.method_used: str | None = None
        self.described: dict | None = None  # what prepare() said about the function (plain data)
        self._output_before = 0  # bytes written by earlier worker processes
        self._output_now = 0
        self._output_tail = ""
        self._streak: list[str] = []  # kinds of the consecutive timeouts/crashes just before
        self._skip = 0  # refused calls left before the next probe
        self._gap = PROBE_GAP
        self._process: _Child | None = None
        self._chan: _Channel | None = None
        self._scratch: str | None = None  # the worker's working directory (module docstring)
        self._lock = threading.Lock()
        _LIVE.add(self)

    # -------------------------------------------------------------------------------------------- lifecycle

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def output(self) -> dict | None:
        """What the function wrote to stdout/stderr in every worker so far: ``{"bytes": n, "tail": text}``
        (the last :data:`OUTPUT_TAIL` bytes, decoded with replacement), or None when it wrote nothing."""
        total = self._output_before + self._output_now
        return {"bytes": total, "tail": self._output_tail} if total else None

    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _note_output(self, header: dict) -> None:
        out = header.get("output")
        if isinstance(out, dict) and isinstance(out.get("bytes"), int) and isinstance(out.get("tail"), str):
            self._output_now = max(0, out["bytes"])
            self._output_tail = out["tail"][-OUTPUT_TAIL:]

    def start(self) -> dict | None:
        """Start the worker now (if not running) and return what it said about the function."""
        with self._lock:
            if not self.alive():
                self._start()
            return self.described

    def _deadline(self, seconds: float) -> tuple[float, bool]:
        """(deadline, whether the budget sets it) for a wait of at most ``seconds``."""
        left = self.budget.left() if self.budget is not None else math.inf
        if left < seconds:
            return time.monotonic() + max(left, 0.0), True
        return time.monotonic() + seconds, False

    def _start(self) -> None:
        from ._records import CandidateFailure

        if self._process is not None:
            self._stop()
        tag = uuid.uuid4().hex
        method = self.method or start_method(self.call)
        data = _pickled(self.call) if method == "spawn" else None
        if method == "spawn" and data is None:
            raise ValueError(f"{self.name}: cannot run in a fresh interpreter (it does not pickle: a lambda or"
                             " a local function); give it a module-level name")
        deadline, by_budget = self._deadline(max(self.startup_timeout, 0.001))
        self._scratch = tempfile.mkdtemp(prefix="lossfuzz-worker-")
        if method == "fork":
            chan, process = _fork(self.call, self.memory_mb, tag, self._scratch)
        else:
            chan, process = _spawn(tag, self._scratch)
        self._process, self._chan, self.method_used = process, chan, method
        self._output_before += self._output_now
        self._output_now = 0
        self.starts += 1
        try:
            if method == "spawn":
                assert data is not None
                main = _main_path() if (b"__main__" in data or b"__mp_main__" in data) else None
                chan.send({"op": "load", "main": main, "memory_mb": self.memory_mb}, data, deadline)
            hello, _payload = chan.recv(deadline)
        except _TimedOut:
            self._stop()
            failure = CandidateFailure(f"the worker did not load the function within {self.startup_timeout:g} s"
                                       if not by_budget else "not run: the budget ran out while the worker started",
                                       "timeout")
            if by_budget:
                failure.stop = self.budget.reason() if self.budget else None
            raise failure from None
        except (_Closed, _Malformed, OSError, struct.error):
            raise self._died("while loading the function") from None
        self._note_output(hello)
        if hello.get("status") != "ready":
            self._stop()
            message = str(hello.get("message", ""))[:500]
            failure = CandidateFailure(f"could not load the function in the worker: {message}", "raised")
            failure.usage = message if hello.get("usage") else None
            raise failure
        described = hello.get("described")
        self.described = described if isinstance(described, dict) else None

    def _stop(self) -> int | None:
        """Kill the child and everything it started, reap it, and return its exit code."""
        process, chan, scratch = self._process, self._chan, self._scratch
        self._process = self._chan = self._scratch = None
        if chan is not None:
            chan.close()
        if process is not None:
            process.kill()
        if scratch is not None:  # after the kill: nothing of the worker's can write there any more
            shutil.rmtree(scratch, ignore_errors=True)
        return None if process is None else process.exitcode

    def _died(self, when: str):
        from ._records import CandidateFailure

        code = self._stop()
        if code is not None and code < 0:
            name = _signal_name(-code)
            hint = " (perhaps the kernel's out-of-memory killer)" if -code == signal.SIGKILL else ""
            return CandidateFailure(f"crashed: the worker was killed by {name}{hint} {when}", "crashed")
        return CandidateFailure(f"crashed: the worker exited with status {code} {when}", "crashed")

    def close(self) -> None:
        """End the worker and everything it started, and reap it; the next call would start a fresh one."""
        with self._lock:
            self._stop()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._process is not None:
                self._stop()
        except Exception:
            pass

    # ------------------------------------------------------------------------------------------------ calls

    def __call__(self, inputs: Any, labels: Any, what: str = "loss") -> Any:
        from ._records import CandidateFailure

        if what not in _WHATS:
            raise ValueError(f"what={what!r} is not one of: {', '.join(_WHATS)}")
        with self._lock:
            reason = self.budget.reason() if self.budget is not None else None
            if reason is not None:
                self.refused += 1
                failure = CandidateFailure(f"not run: {reason}", "timeout")
                failure.stop = reason
                raise failure
            if self.trip_after and len(self._streak) >= self.trip_after:
                if self._skip > 0:
                    self._skip -= 1
                    self.refused += 1
                    what = "timed out" if self._streak[-1] == "timeout" else "crashed"
                    raise CandidateFailure(f"not run: the worker {what} on the {len(self._streak)} calls before"
                                           " (calls are tried again now and then)", self._streak[-1])
            try:
                result = self._call(inputs, labels, what)
            except CandidateFailure as exc:
                if getattr(exc, "stop", None):
                    raise
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

    def gradient(self, inputs: Any, labels: Any) -> Any:
        """``call.gradient(inputs, labels)`` in the worker (d loss / d inputs), under the same timeout,
        memory limit, budget and trip rules as a loss call."""
        return self(inputs, labels, what="gradient")

    def _reset(self) -> None:
        self._streak.clear()
        self._skip = 0
        self._gap = PROBE_GAP

    def _call(self, inputs: Any, labels: Any, what: str = "loss") -> Any:
        import numpy as np

        from ._records import CandidateFailure

        if self._process is None or not self._process.is_alive():
            self._start()
        chan = self._chan
        assert chan is not None
        self.calls += 1
        x_fields, x_raw = _describe_array(np.asarray(inputs))
        z_fields, z_raw = _describe_array(np.asarray(labels))
        deadline, by_budget = self._deadline(self.timeout)
        try:
            chan.send({"op": "call", "what": what, "inputs": x_fields, "labels": z_fields}, bytes(x_raw) + bytes(z_raw),
                      deadline)
            if not chan.poll(deadline):
                raise _TimedOut
            reply, payload = chan.recv(deadline, max_payload=_reply_bound(np.asarray(inputs)))
        except _TimedOut:
            self._stop()
            if by_budget:
                failure = CandidateFailure("stopped: the budget ran out during this call (the worker was killed)",
                                           "timeout")
                failure.stop = self.budget.reason() if self.budget else None
                raise failure from None
            raise CandidateFailure(f"timed out: no answer within {self.timeout:g} s (the worker was killed)",
                                   "timeout") from None
        except _Malformed as exc:
            self._stop()
            raise CandidateFailure(f"crashed: the worker sent {exc} (the worker was killed)", "crashed") from None
        except (_Closed, OSError, struct.error):
            raise self._died("during the call") from None
        self._note_output(reply)
        status = reply.get("status")
        try:
            if status == "ok" and "number" in reply:
                text = reply["number"]
                if not isinstance(text, str) or len(text) > 64:
                    raise _Malformed("a number that is not a short hex string")
                return parse_value(text, "the worker's number")
            if status == "ok":
                return _rebuild_array(reply.get("array"), payload)
            if status == "failure":
                kind, message = reply.get("kind"), reply.get("message")
                hint = reply.get("hint", "")
                if not isinstance(kind, str) or not isinstance(message, str) or not isinstance(hint, str):
                    raise _Malformed("a failure without a kind and a message")
                from ._records import FINDING_KINDS

                raise CandidateFailure(message[:500], kind if kind in FINDING_KINDS else "raised", hint=hint[:300])
            raise _Malformed(f"an answer of status {str(status)[:20]!r}")
        except (_Malformed, ValueError, OverflowError) as exc:
            self._stop()
            raise CandidateFailure(f"crashed: the worker sent a malformed answer ({exc}); it was killed",
                                   "crashed") from None


def close_all() -> None:
    """Close every live worker (run at exit)."""
    for worker in list(_LIVE):
        try:
            worker.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


atexit.register(close_all)
