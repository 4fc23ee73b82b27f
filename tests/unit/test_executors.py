"""harness._executors.executor_for: local spawned processes, or a Dask cluster; one-line errors otherwise.

The Dask tests start a LocalCluster of worker processes on 127.0.0.1 (``lossfuzz[dask]``, installed by tox
through the ``all`` extra)."""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest

from harness._executors import INSTALL_HINT, executor_for, executor_for_options
from harness.options import UsageError


@pytest.fixture(scope="module", autouse=True)
def resource_tracker():
    """multiprocessing's resource tracker, started once per interpreter by the first spawned process and
    kept for its lifetime by design: started here, before the tests, it is not taken for a process a test
    left running (tests/conftest.py)."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def worker_pid_and_square(x: int) -> tuple[int, int]:
    """A toy task: top-level (importable by the workers), plain data in and out."""
    return os.getpid(), x * x


def page_faults_of_reused_arrays() -> int:
    """Minor page faults while four 8 MiB arrays are made, filled and freed four times over, after two warm-up
    rounds: about 2000 a round where the allocator gives freed memory back to the system and maps it again."""
    import resource

    import numpy as np

    def round_of_arrays() -> None:
        arrays = [np.ones(1 << 20) for _ in range(4)]  # every page touched
        del arrays

    round_of_arrays()
    round_of_arrays()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        round_of_arrays()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def start_method() -> str:
    import multiprocessing

    return multiprocessing.get_start_method()


def started_then_sleep(flag: str) -> None:
    with open(flag + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(flag + ".tmp", flag)
    time.sleep(600)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_local_executor_runs_tasks_in_spawned_worker_processes():
    with executor_for(None, 2) as executor:
        results = list(executor.map(worker_pid_and_square, range(6)))
        method = executor.submit(start_method).result()
    assert [square for _pid, square in results] == [0, 1, 4, 9, 16, 25]
    assert os.getpid() not in {pid for pid, _square in results}  # other processes, not this one
    assert method == "spawn"  # never forked from a parent that may hold TensorFlow


def test_a_local_worker_keeps_the_memory_it_frees_for_its_next_chunk():
    with executor_for(None, 1) as executor:
        faults = executor.submit(page_faults_of_reused_arrays).result()
    assert faults < 256  # 0 here; without the setting about 8000 (a chunk's arrays mapped and faulted in again)


def test_a_command_without_scheduler_runs_on_its_workers_option_else_on_every_core():
    with executor_for_options({"scheduler": None, "workers": 1}) as one, executor_for_options({}) as every:
        assert one._max_workers == 1 and every._max_workers == os.cpu_count()
        assert one.submit(worker_pid_and_square, 3).result()[1] == 9


@pytest.mark.timeout(60)  # the task sleeps 600 s: waiting for it fails here
def test_leaving_the_local_executor_with_an_exception_ends_its_workers_at_once(tmp_path):
    flag = tmp_path / "started"
    with pytest.raises(KeyboardInterrupt):
        with executor_for(None, 1) as executor:
            executor.submit(started_then_sleep, str(flag))
            while not flag.exists():
                time.sleep(0.05)
            assert alive(int(flag.read_text()))
            raise KeyboardInterrupt  # a second Ctrl-C: nothing waits for the work in hand
    assert not alive(int(flag.read_text()))  # the worker was ended, not left sleeping


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_a_bad_number_of_local_workers_is_a_one_line_error(workers):
    with pytest.raises(UsageError, match=r"workers=.* is not a number of processes; pass 1 or more"):
        with executor_for(None, workers):
            pass


def test_the_dask_executor_runs_tasks_on_the_cluster_workers():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        with executor_for(cluster.scheduler_address, 1) as executor:
            results = list(executor.map(worker_pid_and_square, range(6)))
        with distributed.Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
    assert [square for _pid, square in results] == [0, 1, 4, 9, 16, 25]
    assert {pid for pid, _square in results} <= worker_pids and os.getpid() not in worker_pids


@pytest.mark.timeout(60)
def test_a_scheduler_that_cannot_be_reached_is_a_one_line_error_naming_the_fix():
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{closed_port()}"
    with pytest.raises(UsageError) as caught:
        with executor_for(address, 1):
            pytest.fail("connected to a closed port")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot reach the Dask scheduler at {address}") and "dask scheduler" in message


@pytest.mark.timeout(60)
def test_a_scheduler_without_workers_is_a_one_line_error_not_a_hang():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        with pytest.raises(UsageError, match=r"has no workers after 1 s; start some with `dask worker tcp://"):
            with executor_for(cluster.scheduler_address, 1, timeout=1.0):
                pytest.fail("an executor without workers")


def test_without_dask_the_scheduler_is_a_one_line_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(UsageError, match=r"needs Dask, which is not installed; pip install 'lossfuzz\[dask\]'"):
        with executor_for("tcp://127.0.0.1:8786", 1):
            pass
    assert INSTALL_HINT == "pip install 'lossfuzz[dask]'"


@pytest.mark.parametrize("address", ["127.0.0.1:8786", "tcp://127.0.0.1", "tcp://:8786", "tcp://host:99999", "http://h:1"])
def test_an_address_not_of_the_form_tcp_host_port_is_refused_before_connecting(address):
    with pytest.raises(UsageError, match=r"is not a Dask scheduler address; pass tcp://HOST:PORT"):
        with executor_for(address, 1):
            pass


def test_a_cancelled_gather_is_not_logged_as_an_error_but_other_errors_are():
    import logging

    from harness._executors import _CancelledGathers

    class FutureCancelledError(Exception):  # distributed's class, by name (its module moved between versions)
        pass

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord("tornado.application", logging.ERROR, __file__, 1, "Exception in callback", None,
                                 (type(exc), exc, None))

    quiet = _CancelledGathers()
    assert not quiet.filter(record(FutureCancelledError("score_cell-1 cancelled")))
    assert quiet.filter(record(ValueError("a real error")))
