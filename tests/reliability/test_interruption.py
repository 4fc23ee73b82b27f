"""Interruption: SIGINT writes a partial report; SIGKILL then --resume loses no finished work and ends with
the figures of an uninterrupted run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = ["run", "--families", "sigmoid_ce,sparse_softmax_ce", "--candidates", "naive,numpy_stable,keras_clipped",
        "--dtypes", "float32,float64", "--examples", "20", "--speed-elements", "0", "--no-progress"]


def lossfuzz(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_journal_records(out: Path, count: int, proc: subprocess.Popen, limit: float = 120.0) -> None:
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count('"score"') >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"lossfuzz ended before {count} scores were journaled: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("no journal records in time")


def accuracy(report: Path) -> list:
    data = json.loads(report.read_text())
    rows = data["results"]
    for row in rows:
        row.pop("speed")
    return [rows, data["curves"], data["settings"]]


def test_sigint_stops_cleanly_and_writes_a_report_marked_partial(tmp_path):
    proc = lossfuzz(tmp_path)
    wait_for_journal_records(tmp_path, 2, proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (err, _out)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["partial"] is True
    # exactly the finished scores, whenever the signal landed: those the journal holds for --resume
    journaled = (tmp_path / "journal.jsonl").read_text().count('"score"')
    assert len(data["results"]) == journaled >= 2
    assert "partial" in (tmp_path / "report.md").read_text().lower()
    assert "Traceback" not in err
    assert (tmp_path / "journal.jsonl").exists()  # kept for --resume


def test_sigkill_then_resume_gives_the_figures_of_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = lossfuzz(whole)
    reference.communicate(timeout=300)
    assert reference.returncode == 0

    proc = lossfuzz(killed)
    wait_for_journal_records(killed, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    journaled = (killed / "journal.jsonl").read_text().count('"score"')
    assert not (killed / "report.json").exists()

    resumed = lossfuzz(killed, "--resume")
    _out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert accuracy(killed / "report.json") == accuracy(whole / "report.json")
    assert journaled >= 3
    assert not (killed / "journal.jsonl").exists()


def test_resume_with_other_options_is_a_one_line_error(tmp_path):
    proc = lossfuzz(tmp_path)
    wait_for_journal_records(tmp_path, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    other = subprocess.run([sys.executable, "-m", "harness.cli", *ARGS, "--seed", "7", "--out", str(tmp_path), "--resume"],
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and "other settings" in other.stderr


def test_a_run_killed_during_the_sweeps_resumes_from_its_journal_with_the_same_figures(tmp_path):
    # In-process and deterministic: the "kill" is an exception raised right after the first sweep is journaled.
    from harness.campaign import Settings, run_campaign
    from harness.journal import Journal, read_journal
    from harness.progress import ProgressBar  # noqa: F401  (the CLI's hooks; the journal is what matters here)

    settings = Settings(families=("sigmoid_ce", "binary_ce"), candidates=("naive", "numpy_stable"),
                        dtypes=("float32",), examples=10, speed_elements=0)
    whole, _ = run_campaign(settings)

    class Killed(BaseException):
        pass

    path = tmp_path / "journal.jsonl"
    journal = Journal(path, settings.to_json(), "fp")

    def swept_then_die(family, dtype, curves):
        journal.swept(family, dtype, curves)
        raise Killed

    from harness.campaign import Progress

    with pytest.raises(Killed):
        run_campaign(settings, progress=Progress(scored=journal.scored, swept=swept_then_die))
    journal.close()
    resume = read_journal(path, settings.to_json(), "fp")
    assert len(resume.scores) == 8 and len(resume.curves) == 1  # 4 candidate x dtype, a loss and a gradient row each
    resumed, _ = run_campaign(settings, resume=resume)
    strip = lambda r: [{k: v for k, v in s.to_json().items() if k != "speed"} for s in r.scores]  # noqa: E731
    assert strip(resumed) == strip(whole)
    assert [c.to_json() for c in resumed.curves] == [c.to_json() for c in whole.curves]
