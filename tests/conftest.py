"""Suite-wide guards: no test leaves a process it started running (workers, CLI subprocesses, and whatever
those started, even in another session or process group)."""

from __future__ import annotations

import itertools
import os
import signal

import pytest

# Set to a fresh value for each test: every process the test starts through exec inherits it, so that
# one it leaves behind is found wherever it went (a setsid double fork re-parents to init).
TEST_TAG = "LOSSFUZZ_TEST_TAG"
_COUNTER = itertools.count()


def _stat(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def child_processes() -> dict[int, str]:
    """pid -> state of every live or zombie process whose parent is this one (read from /proc)."""
    me, found = os.getpid(), {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc (not Linux): nothing to check
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat(entry)
        if fields is not None and int(fields[1]) == me:
            found[int(entry)] = fields[0]
    return found


def _other_pids() -> list[str]:
    """The /proc entries of every process but this one."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    me = str(os.getpid())
    return [entry for entry in entries if entry.isdigit() and entry != me]


def tagged_processes(tag: str) -> dict[int, str]:
    """pid -> state of every process (but this one) whose environment holds ``TEST_TAG=tag``: started by
    this test through exec, in any session, process group or parent."""
    found, entry_text = {}, f"{TEST_TAG}={tag}".encode()
    for entry in _other_pids():
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if entry_text not in f.read().split(b"\0"):
                    continue
        except OSError:
            continue
        fields = _stat(entry)
        if fields is not None:
            found[int(entry)] = fields[0]
    return found


def group_members(groups: set[int]) -> dict[int, str]:
    """pid -> state of every process (but this one) whose process group or session is one of ``groups``:
    what a leftover process started with a cleared environment (no tag) still shares with it."""
    found: dict[int, str] = {}
    if not groups:
        return found
    for entry in _other_pids():
        fields = _stat(entry)
        if fields is not None and (int(fields[2]) in groups or int(fields[3]) in groups):
            found[int(entry)] = fields[0]
    return found


def _resource_tracker(pid: int) -> bool:
    """Whether ``pid`` is this process's multiprocessing resource tracker: started with its first process
    pool (``lossfuzz run`` and ``sweep`` in process, a Dask LocalCluster), one per process, it lives as long
    as this process does and runs no code of ours. Known by its pid (its command line is pytest's until its
    exec is done)."""
    from multiprocessing import resource_tracker

    return pid == getattr(getattr(resource_tracker, "_resource_tracker", None), "_pid", None)


@pytest.fixture(autouse=True)
def no_process_left_running():
    """Fail a test that leaves a process running, after killing it (so one leak cannot hang the suite): a
    child of this process, any process that carries this test's tag (a grandchild, a setsid'd orphan), and
    every member of their process groups and sessions (one started with a cleared environment); each such
    group is killed whole."""
    tag = f"{os.getpid()}-{next(_COUNTER)}"
    previous = os.environ.get(TEST_TAG)
    os.environ[TEST_TAG] = tag
    before = set(child_processes())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TEST_TAG, None)
        else:
            os.environ[TEST_TAG] = previous
    left = {pid: state for pid, state in child_processes().items() if pid not in before and state != "Z"}
    left.update({pid: state for pid, state in tagged_processes(tag).items() if state != "Z"})
    left = {pid: state for pid, state in left.items() if not _resource_tracker(pid)}
    # the process groups and sessions of what is left (not ours): their other members are left too
    own = {os.getpgrp(), os.getsid(0)}
    groups = set()
    for pid in left:
        fields = _stat(str(pid))
        if fields is not None:
            groups.update({int(fields[2]), int(fields[3])})
    groups -= own
    left.update({pid: state for pid, state in group_members(groups).items() if state != "Z"})
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    assert not left, f"processes left running by this test (killed now): {sorted(left)}"
