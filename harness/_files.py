"""Files of the CLI: atomic writes (temporary file in the same folder, then rename), report sets swapped in
whole, the lock that keeps two runs out of one folder, and the one safe reader of files users hand over."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

__all__ = ["write_atomic", "ensure_writable_dir", "read_text", "parse_json", "json_depth", "MAX_FILE_BYTES",
           "MAX_JSON_DEPTH", "WriteError", "lock_folder", "release_locks", "LOCK_NAME", "Interrupted", "abandon_on_signals", "write_set"]


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check it is writable; one-line ``OSError`` otherwise."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create report folder {str(folder)!r}: {exc.strerror}; pass --out DIR with a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(f"report folder {str(folder)!r} is not writable; pass --out DIR with a writable folder")
    return folder


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; reports are ordinary files
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    return target


class WriteError(OSError):
    """A file could not be written: one line naming it and why (``cannot write DIR/report.html: File too
    large``). The CLI prints it and exits with 2; the previous file (or report set) stays whole."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------ reading
# Every file the user hands over (baseline, corpus, journal) and every JSON text (--kwargs) is read here:
# bounded in size and nesting, regular files only, and every failure is one line naming the file.

MAX_FILE_BYTES = 64 * 2**20  # a full run's report.json is about 1 MB; a baseline with its corpus a few
MAX_JSON_DEPTH = 64  # lossfuzz's own files nest 6 deep


def read_text(path: str | os.PathLike, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (``what`` names it in errors, e.g. ``"baseline x.json"``);
    a one-line ``ValueError`` for a FIFO, a device, a folder, a file over ``max_bytes`` or bytes that are
    not UTF-8, and a one-line ``OSError`` naming it when it cannot be opened. Never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO without a writer returns
    except OSError as exc:
        raise OSError(f"{what} cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise ValueError(f"{what} is {kind}; pass a file written by lossfuzz")
        if info.st_size > max_bytes:
            raise ValueError(f"{what} has {info.st_size} bytes, more than the {max_bytes} a lossfuzz file may have;"
                             " pass a file written by lossfuzz")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)  # the size can grow after fstat
    except OSError as exc:
        raise OSError(f"{what} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ValueError(f"{what} has more than the {max_bytes} bytes a lossfuzz file may have; pass a file written"
                         " by lossfuzz")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not UTF-8 text (byte {exc.start}); pass a file written by lossfuzz") from None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(text: str) -> int:
    """How deep the arrays and objects of JSON ``text`` nest (strings skipped); linear time, no recursion."""
    bare = _STRING.sub("", text).encode("utf-8", "replace")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = np.zeros(codes.size, dtype=np.int64)
    steps[(codes == ord("[")) | (codes == ord("{"))] = 1
    steps[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number of JSON")


def parse_json(text: str, what: str, fix: str = "regenerate it") -> Any:
    """JSON ``text`` (strict: no NaN or Infinity literals, at most :data:`MAX_JSON_DEPTH` deep); a one-line
    ``ValueError`` naming ``what`` and saying ``fix`` otherwise."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{what} nests {depth} levels deep, more than the {MAX_JSON_DEPTH} lossfuzz reads; {fix}")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {fix}") from None
    except ValueError as exc:  # NaN / Infinity literals
        raise ValueError(f"{what} is not valid JSON ({exc}); {fix}") from None
    except RecursionError:  # below MAX_JSON_DEPTH only when called deep in a stack: still one line
        raise ValueError(f"{what} nests too deeply; {fix}") from None


# ------------------------------------------------------------------------------- one run per folder

LOCK_NAME = ".lossfuzz.lock"
_HELD: dict[Path, int] = {}


def lock_folder(folder: str | os.PathLike) -> None:
    """Take the exclusive lock of report folder ``folder`` for the rest of this command (released by
    :func:`release_locks`, or by the system when the process ends, however it ends); a one-line ``OSError``
    naming the folder and the holder's pid when another run holds it. Nothing in the folder is touched
    but the lock file."""
    key = Path(folder).resolve()
    if key in _HELD:
        return
    lock = key / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OSError(f"cannot open the lock file {lock}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise OSError(f"{folder} is in use by another lossfuzz run (pid {holder}); wait for it to finish or pass"
                      " another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[key] = fd
    for stale in key.glob(".writing-*"):  # left by a run killed while writing; with the lock held, none is live
        shutil.rmtree(stale, ignore_errors=True)


def release_locks() -> None:
    """Release every folder lock this process holds (the CLI calls it when a command ends)."""
    while _HELD:
        _key, fd = _HELD.popitem()
        os.close(fd)  # closing the last descriptor releases the flock


# -------------------------------------------------------------------------- a report set, whole

class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM while a set of files was being written: the set was abandoned (or, when the signal
    came while it was being swapped in, finished). ``signum`` gives the exit code, 128 + signum."""

    def __init__(self, signum: int, done: bool = False) -> None:
        self.signum, self.done = signum, done
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name} " + ("after the reports were written" if done else
                                                       "while writing the reports; the previous ones are unchanged"))


@contextlib.contextmanager
def abandon_on_signals() -> Iterator[None]:
    """Around rendering and :func:`write_set`: SIGINT or SIGTERM raises :class:`Interrupted` at once (the
    set being written is dropped, the folder keeps the previous set), except while the set is swapped in:
    then the swap finishes and :class:`Interrupted` (``done``) is raised after it. Main thread only."""
    state = _SIGNALS
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    state.pending, state.swapping = None, False
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if state.pending is not None:
        pending, state.pending = state.pending, None
        raise Interrupted(pending, done=True)


class _SignalState:
    pending: int | None = None
    swapping: bool = False


_SIGNALS = _SignalState()


def _on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
    if _SIGNALS.swapping:
        _SIGNALS.pending = signum
        return
    raise Interrupted(signum)


def write_set(folder: str | os.PathLike, texts: Mapping[str, str]) -> list[Path]:
    """Write ``texts`` (path relative to ``folder`` -> text) as one set: each into a staging folder inside
    ``folder`` first, then all renamed into place, so that readers see the previous set or the new one,
    never a mix of two runs (a failure or a signal before the swap leaves the previous set whole). Every
    I/O error is a one-line ``OSError`` naming the file."""
    root = Path(folder)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=root))
    except OSError as exc:
        raise WriteError(f"cannot write into {root}: {exc.strerror}") from None
    try:
        for rel, text in texts.items():
            staged, final = staging / rel, root / rel
            try:
                staged.parent.mkdir(parents=True, exist_ok=True)
                with open(staged, "w", encoding="utf-8") as handle:
                    os.chmod(staged, 0o666 & ~_umask())
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise WriteError(f"cannot write {final}: {exc.strerror or exc}") from None
        _SIGNALS.swapping = True  # from here the set goes in whole (renames take microseconds)
        try:
            for rel in texts:
                final = root / rel
                try:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging / rel, final)
                except OSError as exc:
                    raise WriteError(f"cannot write {final}: {exc.strerror or exc}") from None
        finally:
            _SIGNALS.swapping = False
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [root / rel for rel in texts]
