"""The worker that runs untrusted code: a call that never answers is cut at its timeout, and the hung
process is gone afterwards. Each test has its own tight time limit, so a worker that ignores its timeout
fails the test instead of hanging the suite (the suite-wide default is 600 s, see pyproject.toml)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from harness.isolation import Worker
from harness.records import CandidateFailure
from tests.fixtures import flawed_losses as flawed

X = np.float32([-3.0, 0.0, 2.5])
Z = np.float32([1.0, 0.25, 0.0])


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.timeout(30)
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_call_that_never_answers_is_cut_at_the_timeout_and_its_worker_killed(method):
    worker = Worker(flawed.sleeps_forever, timeout=0.5, method=method, trip_after=0)
    try:
        with pytest.raises(CandidateFailure, match=r"no answer within 0.5 s") as info:
            worker(Z, X)
        assert info.value.kind == "timeout"
        assert worker.calls == 1 and not worker.alive()
        pid = worker.pid
        assert pid is None or _gone(pid)
        worker.call, worker.timeout = flawed.stable_ce, 30
        np.testing.assert_array_equal(worker(Z, X), flawed.stable_ce(Z, X))  # a fresh worker answers
        assert worker.starts == 2
    finally:
        worker.close()


@pytest.mark.timeout(30)
def test_every_call_of_a_hanging_function_times_out_until_the_worker_trips():
    worker = Worker(flawed.sleeps_forever, timeout=0.2, method="fork", trip_after=3)
    try:
        kinds = []
        for _ in range(5):
            with pytest.raises(CandidateFailure) as info:
                worker(Z, X)
            kinds.append((info.value.kind, "not run" in str(info.value)))
        # three real timeouts, then refused at once without waiting
        assert kinds == [("timeout", False)] * 3 + [("timeout", True)] * 2
        assert worker.calls == 3 and worker.refused == 2
    finally:
        worker.close()


def test_every_test_has_a_time_limit_by_default(request):
    assert request.config.getini("timeout") == "600"
    assert request.config.getini("timeout_method") == "signal"
