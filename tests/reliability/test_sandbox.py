"""Audited code stays in its worker (issue 11, "Audited code escapes the worker"): each test is an attack
that worked against the harness before (the old behaviour is in its docstring) and must fail now.

Functions live in tests/fixtures/hostile_losses.py; every test has its own time limit and the suite-wide
fixture (tests/conftest.py) fails any test that leaves a process behind, in any session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import harness
from harness.adapters import function_candidate
from harness.isolation import Worker
from harness.scoring import CandidateFailure
from tests.fixtures import hostile_losses as hostile

REPO = Path(__file__).resolve().parents[2]
H = "tests.fixtures.hostile_losses"
X = np.float32([-3.0, 0.0, 2.5])
Z = np.float32([1.0, 0.25, 0.0])
# A small audit: one dtype, one built-in, few Hypothesis examples, no timing.
QUICK = ["--family", "sigmoid_ce", "--dtypes", "float32", "--compare", "numpy_stable", "--examples", "2",
         "--speed-elements", "0", "--no-progress", "--no-shrink", "--no-per-element"]


def lossfuzz(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=environ, capture_output=True,
                          timeout=timeout)


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def marks(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(w, int(p)) for w, p in (line.split() for line in path.read_text().splitlines())]


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"not in {limit} s: {what}")


# ------------------------------------------------------------------------------ 1. plain data back only


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fn, expected", [(hostile.trapped_array, "array"), (hostile.trapped_float, "number")])
def test_a_result_crosses_as_plain_data_and_is_never_unpickled_here(fn, expected, tmp_path, monkeypatch):
    """Before: results were pickled by the worker and unpickled here, so a result's ``__reduce__`` (or a
    float subclass's ``__float__``) ran in the harness: 5685 times for one audit."""
    import multiprocessing.connection
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("the harness unpickled data from the worker")

    monkeypatch.setenv(hostile.MARKS, str(tmp_path / "marks"))
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(multiprocessing.connection.Connection, "recv", forbidden)
    with Worker(fn, timeout=30) as worker:
        got = worker(Z, X)
    if expected == "array":
        assert type(got) is np.ndarray and got.dtype == np.float32
        np.testing.assert_array_equal(got, hostile.stable_ce(Z, X))
    else:
        assert type(got) is float and got == float(np.mean(hostile.stable_ce(Z, X)))
    assert os.getpid() not in [pid for _what, pid in marks(tmp_path / "marks")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fn, message", [(hostile.bad_array, "__array__ refuses"), (hostile.lying_list, "__len__ refuses")])
def test_a_result_that_fails_to_convert_is_a_finding_and_the_worker_goes_on(fn, message):
    """A hostile ``__array__`` or ``__len__`` runs in the worker, where its failure is a finding."""
    with Worker(fn, timeout=30) as worker:
        for _ in range(2):
            with pytest.raises(CandidateFailure, match=message) as info:
                worker(Z, X)
            assert info.value.kind == "raised"
        assert worker.starts == 1 and worker.alive()  # the same worker answered both


@pytest.mark.timeout(240)
def test_a_result_that_exits_when_unpickled_does_not_end_the_audit(tmp_path):
    """Before: exit 0 with no verdict and no report (the harness unpickled the result and exited)."""
    run = lossfuzz("audit", f"{H}:exiting_array", *QUICK, "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert b"exiting_array (sigmoid_ce, float32): " in run.stdout
    assert json.loads((tmp_path / "report.json").read_text())["audit"]["examples"] > 5000


# ---------------------------------------------------------------------------- 2. imported in the worker


def _module(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


@pytest.mark.timeout(60)
def test_the_audited_module_is_imported_in_the_worker_only(tmp_path, monkeypatch):
    """Before: the harness imported the module (to read the signature): its import code ran here."""
    _module(tmp_path, "marks_import", f"""
        import os
        with open({str(tmp_path / 'marks')!r}, "a") as f:
            f.write(f"import {{os.getpid()}}\\n")
        def loss(labels, logits):
            return labels * 0 + logits * 0
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    with function_candidate("marks_import:loss", "sigmoid_ce") as c:
        assert c.convention == "called as f(labels=z, logits=x)"  # the signature, read in the worker
        pids = [pid for _w, pid in marks(tmp_path / "marks")]
        assert pids == [c.invoker.worker.pid] and os.getpid() not in pids
    assert "marks_import" not in sys.modules


@pytest.mark.timeout(120)
def test_an_import_that_exits_or_hangs_is_a_one_line_error(tmp_path):
    """Before: os._exit(0) at import ended the audit with exit 0 and nothing written; a sleep hung forever."""
    _module(tmp_path, "exits_at_import", "import os\nos._exit(0)\ndef loss(labels, logits): pass\n")
    _module(tmp_path, "hangs_at_import", "import time\ntime.sleep(600)\ndef loss(labels, logits): pass\n")
    run = lossfuzz("audit", "exits_at_import:loss", *QUICK, "--out", str(tmp_path / "a"), cwd=tmp_path)
    err = run.stderr.decode()
    assert run.returncode == 2 and err.count("\n") == 1, err
    assert "exits_at_import:loss" in err and "exited with status 0 while loading the function" in err
    assert not (tmp_path / "a" / "report.json").exists()
    run = lossfuzz("audit", "hangs_at_import:loss", *QUICK, "--budget", "3", "--out", str(tmp_path / "b"), cwd=tmp_path)
    err = run.stderr.decode()
    assert run.returncode == 2 and err.count("\n") == 1, err
    assert "hangs_at_import:loss" in err and "budget ran out while the worker started" in err


@pytest.mark.timeout(120)
def test_audited_code_that_deletes_and_writes_relative_paths_touches_only_a_scratch_folder(tmp_path):
    """Before: the worker ran in the caller's folder, so a module whose import deleted ``victim.txt`` (and
    whose calls wrote ``litter.txt``) deleted and littered the user's own files."""
    _module(tmp_path, "vandal", """
        import os
        if os.path.exists("victim.txt"):
            os.remove("victim.txt")
        import helper_beside_it  # the caller's folder still imports (sys.path keeps it, absolute)
        def loss(labels, logits):
            with open("litter.txt", "a") as f:
                f.write("x")
            return helper_beside_it.stable(labels, logits)
    """)
    _module(tmp_path, "helper_beside_it", """
        import numpy as np
        def stable(z, x):
            return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    """)
    (tmp_path / "victim.txt").write_text("keep me")
    before = set(Path("/tmp").glob("lossfuzz-worker-*"))
    run = lossfuzz("audit", "vandal:loss", *QUICK, "--out", str(tmp_path / "a"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr.decode()
    assert (tmp_path / "victim.txt").read_text() == "keep me"
    assert not (tmp_path / "litter.txt").exists()
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["results"][0]["examples"] > 100  # the function ran (and imported its neighbour)
    assert set(Path("/tmp").glob("lossfuzz-worker-*")) <= before  # the scratch folders are gone


@pytest.mark.timeout(120)
def test_exact_runs_the_function_in_a_worker(tmp_path):
    """Before: `lossfuzz exact --candidate` ran it here: a hang never ended, sys.exit(0) exited 0 silently,
    and a function writing into its inputs changed the inputs printed."""
    args = ["exact", "sigmoid_ce", "--logits=-3,0.5", "--labels", "1,0", "--candidate"]
    run = lossfuzz(*args, f"{H}:mutates_inputs")
    out = run.stdout.decode()
    assert run.returncode == 0 and "logits: -0x1.8p+1, 0x1p-1" in out, out
    run = lossfuzz(*args, f"{H}:exits_zero")
    out = run.stdout.decode()
    assert run.returncode == 0 and "raised SystemExit: 0 (raised)" in out and "exact" in out, out
    run = lossfuzz(*args, f"{H}:sleeps", "--timeout", "1")
    out = run.stdout.decode()
    assert run.returncode == 0 and "timed out: no answer within 1 s" in out and "exact" in out, out


# -------------------------------------------------------------------- 3. nothing outlives the harness


@pytest.mark.timeout(60)
def test_closing_a_worker_kills_what_the_function_forked_even_in_another_session(tmp_path, monkeypatch):
    """Before: the worker's process group was killed; a setsid double fork survived (33 processes)."""
    monkeypatch.setenv(hostile.PIDS, str(tmp_path / "pids"))
    worker = Worker(hostile.forks_and_sleeps, timeout=5, trip_after=0)
    try:
        with pytest.raises(CandidateFailure, match="no answer within 5 s"):
            worker(Z, X)
    finally:
        worker.close()
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 5
    wait_for(lambda: not any(running(p) for p in pids), 5, f"processes still running: {[p for p in pids if running(p)]}")


@pytest.mark.timeout(60)
def test_a_worker_and_its_children_die_with_the_harness(tmp_path):
    """Before: after SIGKILL of the harness the worker blocked forever on its pipe (one sat 10 minutes)."""
    script = tmp_path / "harness_dies.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from harness.isolation import Worker
        from tests.fixtures import hostile_losses
        Worker(hostile_losses.forks_and_sleeps, timeout=300)(np.float32([1]), np.float32([0]))
    """))
    pidfile = tmp_path / "pids"
    env = {**os.environ, "PYTHONPATH": str(REPO), hostile.PIDS: str(pidfile)}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env=env)
    try:
        wait_for(pidfile.exists, 40, "the function's pids")
    finally:
        proc.kill()
        proc.wait()
    pids = [int(p) for p in pidfile.read_text().split()]
    wait_for(lambda: not any(running(p) for p in pids), 10, f"still running: {[p for p in pids if running(p)]}")


@pytest.mark.jax
@pytest.mark.timeout(180)
def test_with_jax_loaded_a_function_of_the_script_runs_in_a_spawned_worker(tmp_path):
    """Before: a function defined in the script could only be forked, and with JAX running the fork warned
    "os.fork() is incompatible with multithreaded code, and JAX is multithreaded"."""
    script = tmp_path / "uses_jax.py"
    script.write_text(textwrap.dedent("""
        import jax.numpy as jnp
        import numpy as np
        import harness
        from harness.adapters import function_candidate

        def loss(labels, logits):
            return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))

        if __name__ == "__main__":
            jnp.zeros(3) + 1  # JAX's threads are running
            with function_candidate(loss, "sigmoid_ce") as c:
                got = c.load()(np.float32([1.0, -2.0]), np.float32([0.0, 1.0]))
                print("method", c.invoker.worker.method_used, got.tolist())
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-W", "always", str(script)], cwd=tmp_path, env=env, capture_output=True,
                         timeout=170)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert run.stdout.decode().startswith("method spawn ")
    assert b"os.fork()" not in run.stderr


# ---------------------------------------------------------------------- 4. budget and systematic stops


@pytest.mark.timeout(120)
def test_the_budget_bounds_the_whole_audit_and_the_verdict_says_so(tmp_path, monkeypatch):
    """Before: no budget: a function taking 2 s per call made 59 calls in 120 s and went on."""
    monkeypatch.setenv(hostile.CALLS, str(tmp_path / "calls"))
    result = harness.audit(f"{H}:slow", family="sigmoid_ce", examples=50, compare_with=(), budget=4, timeout=5)
    verdict = harness.auditing.verdicts(result.audit)[0]
    assert verdict.stopped == "the audit's budget of 4 s ran out (--budget)"
    assert verdict.level == "bad" and "STOPPED: the audit's budget of 4 s ran out" in verdict.summary
    assert result.partial
    calls = (tmp_path / "calls").read_text().count("call")
    assert 1 <= calls <= 4 / 0.3 + 1  # every call after the budget was refused


@pytest.mark.timeout(180)
def test_the_same_failure_on_every_probe_stops_the_one_at_a_time_retry(tmp_path, monkeypatch):
    """Before: out_of_memory (like timeouts and crashes) never stopped early: after the batch failed, all
    5628 catalogue examples were retried one call at a time."""
    monkeypatch.setenv(hostile.CALLS, str(tmp_path / "calls"))
    result = harness.audit(f"{H}:memory_error", family="sigmoid_ce", examples=5, compare_with=())
    verdict = harness.auditing.verdicts(result.audit)[0]
    assert len(verdict.systematic) == 1 and "all 20 calls tried" in verdict.systematic[0]
    assert "out_of_memory" in verdict.systematic[0]
    assert (tmp_path / "calls").read_text().count("call") < 60


# ---------------------------------------------------------------------------------- 5. limits up front


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flag, value", [("--memory-mb", "99999999999999"), ("--timeout", "1e300"), ("--budget", "inf")])
def test_an_impossible_limit_is_a_one_line_error_not_a_finding(flag, value, tmp_path):
    """Before: --memory-mb 99999999999999 printed 23 worker tracebacks and blamed the function ("FAILED …
    5633 failed calls (crashed)"), exit 0."""
    run = lossfuzz("audit", "tests.fixtures.flawed_losses:stable_ce", *QUICK, flag, value, "--out", str(tmp_path))
    err = run.stderr.decode()
    # the one line names the flag and says what the value is not (the option's parser or the worker's limits)
    assert run.returncode == 2 and err.count("\n") == 1 and flag in err and " is not a" in err, err
    assert run.stdout == b"" and not (tmp_path / "report.json").exists()


# -------------------------------------------------------------------------------------------- 6. signals


@pytest.mark.timeout(240)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_an_audit_writes_partial_reports_and_exits_130(sig, tmp_path):
    """Before: Ctrl-C exited 2 with "no score for candidate …" and no reports; SIGTERM exited -15."""
    calls = tmp_path / "calls"
    proc = start("audit", f"{H}:slow", *QUICK, "--examples", "50", "--out", str(tmp_path / "out"),
                 env={hostile.CALLS: str(calls)})
    try:
        wait_for(lambda: calls.exists() and calls.read_text().count("call") >= 2, 120, "two calls")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"interrupted: the reports are partial" in err and b"Traceback" not in err
    assert b"STOPPED: interrupted (Ctrl-C or SIGTERM)" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["partial"] is True and report["audit"]["stopped"] == "interrupted (Ctrl-C or SIGTERM)"


@pytest.mark.timeout(240)
def test_sigterm_to_a_gate_says_so_writes_nothing_and_exits_130(tmp_path):
    """Before: SIGTERM killed the gate: exit -15, no message."""
    calls = tmp_path / "calls"
    baseline = tmp_path / "baseline.json"
    proc = start("gate", "--baseline", str(baseline), "--update-baseline", "--candidates", "numpy_stable",
                 "--dtypes", "float32", "--families", "sigmoid_ce", "--examples", "50", "--function", f"{H}:slow",
                 "--family", "sigmoid_ce", "--name", "slow", "--out", str(tmp_path / "out"), "--no-progress",
                 env={hostile.CALLS: str(calls)})
    try:
        wait_for(lambda: calls.exists() and calls.read_text().count("call") >= 2, 120, "two calls")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"lossfuzz gate: interrupted (Ctrl-C or SIGTERM); nothing written" in out
    assert not baseline.exists() and not (tmp_path / "out" / "report.md").exists()


# ----------------------------------------------------------------------------------------------- 7. output


@pytest.mark.timeout(300)
def test_output_is_captured_and_untrusted_text_is_escaped(tmp_path):
    """Before: 100 MB written by the function buried the verdict, and ANSI escapes and newlines of --name,
    exception messages and baseline candidate names reached the terminal raw."""
    name = "\x1b[31mmine\nforged"
    run = lossfuzz("audit", f"{H}:chatty", *QUICK, "--name", name, "--out", str(tmp_path / "a"))
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    out = run.stdout.decode()
    assert len(run.stdout) < 20_000 and "\x1b" not in out and "\x07" not in out
    assert out.startswith("\\x1b[31mmine\\nforged (sigmoid_ce, float32): PROBLEMS")
    assert "raised: raised ValueError: bad \\x1b[31minput\\x1b[0m" in out
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    written = report["audit"]["output"]["bytes"]
    assert written > 2**20 and f"output: the function wrote {written} bytes to stdout/stderr" in out
    # the audit's report as a gate baseline: the function's name is missing from the gate run, and printed escaped
    run = lossfuzz("gate", "--baseline", str(tmp_path / "a" / "report.json"), "--out", str(tmp_path / "g"),
                   "--no-progress", "--examples", "2")
    out = run.stdout.decode()
    assert run.returncode == 1 and "missing: sigmoid_ce \\x1b[31mmine\\nforged float32" in out, out
    assert "\x1b" not in out
