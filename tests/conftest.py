"""Suite-wide guards: no test leaves a process it started running (workers, CLI subprocesses)."""

from __future__ import annotations

import os
import signal

import pytest


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
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:
            found[int(entry)] = fields[0]
    return found


@pytest.fixture(autouse=True)
def no_process_left_running():
    """Fail a test that leaves a child process running, after killing it (so one leak cannot hang the suite)."""
    before = set(child_processes())
    yield
    left = {pid: state for pid, state in child_processes().items() if pid not in before and state != "Z"}
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert not left, f"processes left running by this test (killed now): {sorted(left)}"
