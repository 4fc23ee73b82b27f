"""``lossfuzz run --scheduler``: every (family, candidate, dtype) cell a task on a Dask cluster, with the figures
of a local run. A LocalCluster of worker processes on 127.0.0.1 stands in for ``dask scheduler`` + ``dask
worker`` (``lossfuzz[dask]``, installed by tox through the ``all`` extra)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import Executor, Future

import pytest

from harness._executors import executor_for
from harness.campaign import Settings, run_campaign
from harness.corpus import corpus_to_json

distributed = pytest.importorskip("distributed")

# numpy candidates only (the workers import nothing heavy), an _upcast variant (it searches with its base's
# seed) and a softmax family (rows), in two dtypes; enough examples for shrinking and a corpus.
SMALL = Settings(families=("sigmoid_ce", "softmax_ce"), candidates=("naive", "numpy_stable", "numpy_stable_upcast"),
                 dtypes=("float16", "float32"), examples=12, speed_elements=0)
CLI_ARGS = ["run", "--families", "sigmoid_ce,sparse_softmax_ce", "--candidates", "naive,numpy_stable,keras_clipped",
            "--dtypes", "float16,float32", "--examples", "12", "--speed-elements", "0", "--no-progress"]


@pytest.fixture
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


def without_timings(report: dict) -> dict:
    """A report.json's figures: all of it but the wall time, the provenance and the candidates' timings."""
    data = {k: v for k, v in report.items() if k not in ("wall_seconds", "provenance")}
    data["results"] = [{k: v for k, v in row.items() if k != "speed"} for row in data["results"]]
    return data


class Recording(Executor):
    """An executor that notes what is submitted to it and hands it to another."""

    def __init__(self, inner: Executor) -> None:
        self.inner, self.submitted = inner, []

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append((fn.__name__, args[1:4]))
        return self.inner.submit(fn, *args, **kwargs)


def cached_cells() -> list:
    """On a worker: the (family, dtype) ground truths its process holds (it scored cells of them)."""
    from harness.campaign import _CELL_CACHES

    return sorted(_CELL_CACHES)


@pytest.mark.timeout(300)
def test_a_campaign_on_a_dask_cluster_gives_the_figures_of_a_local_run(cluster):
    _, corpus = run_campaign(Settings(**{**SMALL.to_json(), "seed": 5}))  # a corpus to replay, as a second run has
    local, local_corpus = run_campaign(SMALL, corpus)
    with executor_for(cluster.scheduler_address, 1) as dask_executor:
        recording = Recording(dask_executor)
        remote, remote_corpus = run_campaign(SMALL, corpus, executor=recording)
    assert without_timings(remote.to_json()) == without_timings(local.to_json())
    assert {k: corpus_to_json(*k, v) for k, v in remote_corpus.items()} == {k: corpus_to_json(*k, v) for k, v in local_corpus.items()}
    # every cell went to the cluster, none was scored here
    # (one task per cell gives its loss and gradient rows)
    assert sorted(args for _name, args in recording.submitted) == sorted((s.family, s.candidate, s.dtype) for s in local.scores
                                                                         if s.quantity == "loss")
    assert {name for name, _args in recording.submitted} == {"score_cell"}
    assert len(local.scores) == 2 * (2 * 2 * 2 + 2 * 1)  # the _upcast variant exists for float16 only
    assert any(s.max_ulp and s.max_ulp > 1 for s in remote.scores) and not remote.partial


def lossfuzz(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(400)
def test_lossfuzz_run_with_scheduler_writes_the_reports_and_corpus_of_a_local_run(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    for out, extra in ((local, []), (remote, ["--scheduler", cluster.scheduler_address])):
        proc = lossfuzz(*CLI_ARGS, "--out", str(out), *extra)
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    report = {out: json.loads((out / "report.json").read_text()) for out in (local, remote)}
    assert without_timings(report[remote]) == without_timings(report[local])
    assert len(report[remote]["results"]) == 2 * 3 * 2 * 2  # families x candidates x dtypes x (loss, gradient)
    corpus = {out: {p.name: p.read_text() for p in (out / "corpus").glob("*.json")} for out in (local, remote)}
    assert corpus[remote] == corpus[local] and len(corpus[local]) == 4
    assert not (remote / "journal.jsonl").exists()  # removed once the reports are written, as locally
    with distributed.Client(cluster) as client:
        held = sorted({tuple(cell) for cells in client.run(cached_cells).values() for cell in cells})
    assert held == [("sigmoid_ce", "float16"), ("sigmoid_ce", "float32"),
                    ("sparse_softmax_ce", "float16"), ("sparse_softmax_ce", "float32")]  # the workers scored them


@pytest.mark.timeout(400)
def test_sigint_stops_a_run_on_the_cluster_with_partial_reports_and_resume_finishes_it(cluster, tmp_path):
    settings = [*CLI_ARGS[:-5], "--examples", "80", "--speed-elements", "0", "--no-progress"]
    args = [*settings, "--out", str(tmp_path), "--scheduler", cluster.scheduler_address]
    proc = lossfuzz(*args)
    journal = tmp_path / "journal.jsonl"
    deadline = time.monotonic() + 200
    while not (journal.exists() and journal.read_text().count('"score"') >= 2):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no journal records in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    partial = json.loads((tmp_path / "report.json").read_text())
    assert partial["partial"] is True and "Traceback" not in err
    journaled = journal.read_text().count('"score"')
    assert 2 <= len(partial["results"]) == journaled < 24  # the finished cells' rows, whichever they were
    resumed = lossfuzz(*args, "--resume")
    _out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    whole = lossfuzz(*settings, "--out", str(tmp_path / "whole"))  # local, uninterrupted
    _out, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err
    finished = json.loads((tmp_path / "report.json").read_text())
    assert without_timings(finished) == without_timings(json.loads((tmp_path / "whole" / "report.json").read_text()))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(60)  # a closed port is refused at once: no waiting for a connect timeout
def test_an_unreachable_scheduler_is_one_line_exit_2_and_leaves_an_earlier_journal_whole(tmp_path):
    journal = tmp_path / "journal.jsonl"
    journal.write_text('{"lossfuzz_journal": 1, "settings": {}, "corpus": "x"}\n')
    address = f"tcp://127.0.0.1:{closed_port()}"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *CLI_ARGS, "--out", str(tmp_path), "--scheduler", address],
                          capture_output=True, text=True, timeout=100)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"lossfuzz: error: cannot reach the Dask scheduler at {address}")
    assert journal.read_text() == '{"lossfuzz_journal": 1, "settings": {}, "corpus": "x"}\n'
    assert not (tmp_path / "report.json").exists()


@pytest.mark.timeout(300)
def test_a_sweep_on_a_dask_cluster_gives_the_figures_of_a_local_sweep(cluster):
    from harness.exhaustive import plan_sweep, run_sweep, sweep_chunk

    class Here(Executor):
        def submit(self, fn, /, *args, **kwargs):
            future = Future()
            future.set_result(fn(*args, **kwargs))
            return future

    # several chunks of float16 sigmoid_ce, loss and gradient, two candidates: merged in plan order either way
    plan = plan_sweep("sigmoid_ce", "float16", "hard", ["naive", "numpy_stable"], (0xC800, 0xD000), chunk_cases=1 << 10,
                      quantities=("loss", "gradient"))
    assert len(plan) == 4
    local = run_sweep(plan, Here())
    with executor_for(cluster.scheduler_address, 1) as dask_executor:
        recording = Recording(dask_executor)
        remote = run_sweep(plan, recording)
    assert [s.to_json() for s in remote.scores] == [s.to_json() for s in local.scores]
    assert remote.buckets == local.buckets and remote.gradient_buckets == local.gradient_buckets
    assert remote.paths == local.paths and remote.cases == local.cases == 0x800 * 2
    assert [name for name, _args in recording.submitted] == [sweep_chunk.__name__] * 4  # every chunk went there
    assert any(s.counts["inf"] + s.counts["nan"] > 0 for s in remote.scores)  # naive's overflow is in the slice
