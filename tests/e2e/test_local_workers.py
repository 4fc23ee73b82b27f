"""``lossfuzz run --workers N``: the (family, candidate, dtype) cells scored in N local processes (by default one
per core), with the figures of a run in one process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from concurrent.futures import Executor, Future

import pytest

from harness import _executors, cli

from .test_dask import CLI_ARGS, without_timings


class InProcess(Executor):
    """Runs each task when submitted, here; notes what ran."""

    def __init__(self) -> None:
        self.ran: list[tuple] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        self.ran.append(args[1:4])
        return future


@pytest.mark.timeout(300)
def test_run_asks_for_one_process_per_core_capped_at_the_cells_and_none_for_one_cell(tmp_path, monkeypatch):
    asked, executor = [], InProcess()

    def fake_executor_for(scheduler, workers, **_kw):
        asked.append((scheduler, workers))
        return contextlib.nullcontext(executor)

    monkeypatch.setattr(_executors, "executor_for", fake_executor_for)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert cli.main([*CLI_ARGS, "--quantities", "loss", "--out", str(tmp_path / "a")]) == 0
    assert asked == [(None, 3)]  # 12 cells (2 families x 3 candidates x 2 dtypes), 3 cores
    assert len(executor.ran) == 12 and len(set(executor.ran)) == 12
    one_cell = ["run", "--families", "sigmoid_ce", "--candidates", "naive", "--dtypes", "float16", "--examples", "5",
                "--speed-elements", "0", "--no-progress", "--quantities", "loss"]
    assert cli.main([*one_cell, "--out", str(tmp_path / "b")]) == 0
    assert cli.main([*CLI_ARGS, "--quantities", "loss", "--workers", "1", "--out", str(tmp_path / "c")]) == 0
    assert asked == [(None, 3)]  # neither a single cell nor --workers 1 starts a pool
    two = [*one_cell[:5], "--dtypes", "float16,float32", *one_cell[7:]]
    assert cli.main([*two, "--workers", "8", "--out", str(tmp_path / "d")]) == 0
    assert asked[-1] == (None, 2)  # no more processes than cells


@pytest.mark.timeout(400)
def test_a_run_on_two_local_processes_writes_the_reports_and_corpus_of_a_run_in_one(tmp_path):
    reports, corpora = {}, {}
    for workers in ("1", "2"):
        out = tmp_path / workers
        done = subprocess.run([sys.executable, "-m", "harness.cli", *CLI_ARGS, "--workers", workers, "--out", str(out)],
                              capture_output=True, text=True, timeout=350)
        assert done.returncode == 0, done.stderr[-2000:]
        reports[workers] = json.loads((out / "report.json").read_text())
        corpora[workers] = {p.name: p.read_text() for p in (out / "corpus").glob("*.json")}
    assert without_timings(reports["2"]) == without_timings(reports["1"])
    assert len(reports["2"]["results"]) == 2 * 3 * 2 * 2 and corpora["2"] == corpora["1"] and len(corpora["1"]) == 4


@pytest.mark.timeout(300)
def test_a_run_killed_outright_takes_its_worker_processes_with_it(tmp_path):
    import signal
    import time

    from ..conftest import _stat

    out = tmp_path / "out"
    args = [*CLI_ARGS[:-5], "--examples", "200", "--speed-elements", "0", "--no-progress", "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        journal = out / "journal.jsonl"
        # the pool's two workers (children of the run, beside the resource tracker), once cells are done
        while len(workers) < 2 or not (journal.exists() and journal.read_text().count('"score"') >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, "no worker finished a cell in time"
            children = [int(e) for e in os.listdir("/proc") if e.isdigit() and (f := _stat(e)) and int(f[1]) == proc.pid]
            workers = [pid for pid in children if b"spawn_main" in open(f"/proc/{pid}/cmdline", "rb").read()]
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)  # returns only once no worker holds the output pipes any more
        gone = time.monotonic() + 10
        while any(_stat(str(pid)) not in (None,) and _stat(str(pid))[0] != "Z" for pid in workers):
            assert time.monotonic() < gone, f"workers {workers} outlived their killed parent"
            time.sleep(0.05)
    finally:
        proc.kill()
