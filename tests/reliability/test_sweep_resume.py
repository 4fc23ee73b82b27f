"""A sweep killed with SIGKILL mid-way (a real subprocess, its worker pool with it) resumes from its chunk
journal with ``--resume`` and gives the figures of an uninterrupted sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

# float16, every label: 68 patterns x 15361 labels per chunk (about 2**20 cases), 8 chunks
BASE = ["sweep", "sigmoid_ce", "--candidate", "naive,numpy_stable", "--dtype", "float16", "--labels", "all",
        "--workers", "1", "--no-progress"]
ARGS = [*BASE, "--bits", "0x3800:0x3a00"]
CHUNKS = 8


def sweep(out: Path, *extra: str) -> subprocess.Popen:
    # a session of its own: the kill takes the worker pool too, as a kill of the whole job would
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def figures(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    facts = json.loads((out / "summary.json").read_text())
    for key in ("wall_seconds", "chunk_seconds", "command", "chunks_from_journal"):
        facts.pop(key)
    return {"results": report["results"], "sweep": report["sweep"], "summary": facts}


def kill_after_chunks(out: Path, count: int, proc: subprocess.Popen, limit: float = 300.0) -> int:
    journal = out / "sweep-journal.jsonl"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count('"chunk"') >= count:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            # whole records only, as a resume reads them (a record cut by the kill is not one)
            return sum('"chunk"' in line for line in journal.read_text().split("\n")[:-1])
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended before {count} chunks were journalled: {proc.stderr.read()}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail("no chunk journalled in time")


@pytest.mark.timeout(900)
def test_sigkill_then_resume_gives_the_figures_of_an_uninterrupted_sweep(tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = sweep(killed)
    done = kill_after_chunks(killed, 2, proc)
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= done < CHUNKS and not (killed / "report.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "harness.cli", *ARGS, "--out", str(killed), "--resume"],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert not (killed / "sweep-journal.jsonl").exists()  # removed once the reports are written
    fresh = subprocess.run([sys.executable, "-m", "harness.cli", *ARGS, "--out", str(whole)],
                           capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    told = json.loads((killed / "summary.json").read_text())["chunks_from_journal"]
    assert told == done and json.loads((whole / "summary.json").read_text())["chunks_from_journal"] == 0
    assert f"{done} of {CHUNKS} chunks came from the journal" in (killed / "summary.md").read_text()
    a, b = figures(killed), figures(whole)
    assert a == b
    assert a["summary"]["versions"]["numpy"] == numpy.__version__  # the versions the sweep ran with
    assert a["sweep"]["chunks"] == CHUNKS and a["summary"]["cases"] == 0x200 * 15361  # every case, once


@pytest.mark.timeout(600)
def test_resume_with_other_options_is_a_one_line_error(tmp_path):
    proc = sweep(tmp_path)
    kill_after_chunks(tmp_path, 1, proc)
    other = subprocess.run([sys.executable, "-m", "harness.cli", *BASE, "--bits", "0x3800:0x3900",
                            "--out", str(tmp_path), "--resume"],
                           capture_output=True, text=True, timeout=300)
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and "written with other settings" in other.stderr
