"""Runs that could damage each other or their reports (issue 11, items 9, 10 and 12): one run per --out,
report sets swapped in whole, signals and write failures while writing, output paths checked up front, a
double Ctrl-C."""

import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.reliability.test_interruption import wait_for_journal_records

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["run", "--families", "sigmoid_ce", "--candidates", "naive,numpy_stable", "--dtypes", "float32",
         "--examples", "5", "--speed-elements", "0", "--no-progress"]
# Long enough to be caught in the middle (minutes uninterrupted); every test stops it.
LONG = ["run", "--families", "sigmoid_ce,sparse_softmax_ce", "--candidates", "naive,numpy_stable,keras_clipped",
        "--dtypes", "float32,float64", "--examples", "3000", "--speed-elements", "0", "--no-progress"]
REPORTS = ("report.json", "report.md", "report.html")


def lossfuzz(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, **kw)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def wait_for_scores(out: Path, proc: subprocess.Popen, count: int = 1) -> None:
    wait_for_journal_records(out, count, proc)


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file of the report set under ``out`` (reports, corpus) and its bytes; not the lock file, nor the
    journal (an interrupted run keeps it for --resume)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (".lossfuzz.lock", "journal.jsonl")}


@pytest.fixture
def previous(tmp_path) -> Path:
    """A folder holding a finished run's reports and corpus."""
    out = tmp_path / "out"
    result = lossfuzz(*SMALL, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


# ------------------------------------------------------------------------------------ 9: one run per --out


def test_a_second_run_on_the_same_out_fails_naming_the_folder_and_the_holder(tmp_path):
    out = tmp_path / "out"
    first = start(*LONG, "--out", str(out))
    try:
        wait_for_scores(out, first)
        journal_before = (out / "journal.jsonl").read_bytes()
        second = lossfuzz(*SMALL, "--out", str(out))
        journal_after = (out / "journal.jsonl").read_bytes()
    finally:
        first.kill()
        first.communicate()
    assert second.returncode == 2, second.stderr
    assert second.stderr.count("\n") == 1, second.stderr
    assert f"{out} is in use by another lossfuzz run (pid {first.pid})" in second.stderr
    # the second run touched nothing of the first's: its journal only grew, no report appeared
    assert journal_after.startswith(journal_before) and b"\0" not in journal_after
    assert not any((out / name).exists() for name in REPORTS)
    # the killed holder's lock is gone with it: the same folder resumes its journal
    resumed = lossfuzz(*SMALL, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr


def test_audit_and_gate_take_the_same_lock(tmp_path):
    out = tmp_path / "out"
    first = start(*LONG, "--out", str(out))
    try:
        wait_for_scores(out, first)
        audit = lossfuzz("audit", "tests.fixtures.flawed_losses:stable_ce", "--family", "sigmoid_ce", "--examples", "5",
                         "--no-progress", "--out", str(out))
        gate = lossfuzz("gate", "--baseline", "tests/fixtures/v1/baseline.json", "--no-progress", "--out", str(out))
    finally:
        first.kill()
        first.communicate()
    for result in (audit, gate):
        assert result.returncode == 2 and f"pid {first.pid}" in result.stderr, result.stderr


# --------------------------------------------------------------------------- 10: report sets, whole or not at all

# Runs `lossfuzz run` in this process with the HTML renderer sending SIGNAL to the process half-way, as a
# Ctrl-C or a `kill` would while the (slow) HTML is rendered.
SIGNAL_WHILE_RENDERING = textwrap.dedent("""
    import os, signal, sys
    import harness.reports as reports
    from harness.cli import main
    kind = "html"
    original = reports.render
    def render_then_signal(result, what):
        text = original(result, what)
        if what == kind:
            os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        return text
    reports.render = render_then_signal
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_while_the_reports_are_written_leaves_the_previous_set_whole(previous, sig, code):
    before = snapshot(previous)
    args = [a if a != "5" else "7" for a in SMALL]  # other figures than the previous run's
    result = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_RENDERING, sig, *args, "--out", str(previous)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == code, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"lossfuzz: interrupted by {sig} while writing the reports; the previous ones are unchanged"]
    assert snapshot(previous) == before  # reports and corpus of the previous run, none of this one
    assert not list(previous.glob(".writing-*"))


def test_a_write_that_fails_names_the_file_and_leaves_the_previous_set(previous):
    before = snapshot(previous)
    # every file but the largest report fits under this file size limit, the largest does not: "File too large"
    # (report.html, or report.json where its gradient rows make it the larger one)
    (second, _), (largest, name) = sorted((len(v), k) for k, v in before.items() if k.startswith("report."))[-2:]
    limit = (second + largest) // 2
    assert second < limit < largest
    args = [a if a != "5" else "7" for a in SMALL]
    result = lossfuzz(*args, "--out", str(previous),
                      preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"lossfuzz: error: cannot write {previous / name}: File too large"
    assert snapshot(previous) == before
    assert not list(previous.glob(".writing-*"))


# ------------------------------------------------------------------------------------------------ 12: messages


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next(previous):
    stale = previous / ".writing-killed"
    (stale / "corpus").mkdir(parents=True)
    (stale / "report.json").write_text("{")
    result = lossfuzz(*SMALL, "--out", str(previous))
    assert result.returncode == 0, result.stderr
    assert not stale.exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["sparse_softmax_ce", "--logits=1,2;3,4", "--labels", "1"], "has 1 class indices; sparse_softmax_ce needs one per row"),
    (["sigmoid_ce", "--logits", ",", "--labels", ","], "rows must be non-empty"),
])
def test_exact_says_what_is_wrong_with_its_values(args, expected):
    # (already one line before this change: kept as regression tests of the cases)
    result = lossfuzz("exact", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr


def test_an_unusable_junit_path_fails_before_the_campaign(tmp_path):
    out = tmp_path / "out"
    result = lossfuzz("gate", "--baseline", "tests/fixtures/v1/baseline.json", "--no-progress", "--out", str(out),
                      "--junit", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"lossfuzz: error: --junit {tmp_path} is a folder; pass a file path, e.g. --junit {tmp_path / 'junit.xml'}"
    assert not out.exists()  # nothing ran, nothing was written


def test_a_baseline_to_update_in_a_folder_that_cannot_be_made_fails_before_the_campaign(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = lossfuzz("gate", "--update-baseline", "--baseline", str(blocker / "b.json"), "--no-progress",
                      "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and str(blocker) in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("gap", [0.0, 0.05, 0.3])
def test_a_double_ctrl_c_exits_130_without_a_traceback(tmp_path, gap):
    out = tmp_path / "out"
    proc = start(*LONG, "--out", str(out))
    try:
        wait_for_scores(out, proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(gap)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_a_keyboard_interrupt_swallowed_by_a_weakref_callback_is_raised_again():
    """Python prints a KeyboardInterrupt raised in a weakref callback as "Exception ignored" and goes on;
    under stop_on_signals the second Ctrl-C's interrupt is raised again in the main code instead."""
    script = textwrap.dedent("""
        import gc, os, signal, sys, time, weakref
        from harness.progress import stop_on_signals
        class Thing: pass
        with stop_on_signals() as stop:
            os.kill(os.getpid(), signal.SIGINT)  # the first: a request to stop
            try:
                t = Thing()
                ref = weakref.ref(t, lambda r: os.kill(os.getpid(), signal.SIGINT))  # the second, in a callback
                del t
                gc.collect()
                for _ in range(1000):
                    time.sleep(0.001)
                print("went on")
            except KeyboardInterrupt:
                print("interrupted")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.stdout.strip() == "interrupted", result.stdout + result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
