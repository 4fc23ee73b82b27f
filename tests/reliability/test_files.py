"""Reports and corpora are written atomically and read strictly: damage is named in one line, never half-read."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import harness

from harness._files import write_atomic
from harness.reports.json_report import load_json

SMALL = ["run", "--families", "sigmoid_ce", "--candidates", "naive,numpy_stable", "--dtypes", "float32",
         "--examples", "5", "--speed-elements", "0", "--no-progress"]


def lossfuzz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = lossfuzz(*SMALL, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_a_truncated_report_is_named_in_a_one_line_error(finished):
    text = (finished / "report.json").read_text()
    for cut in (len(text) // 2, 10, 1):
        with pytest.raises(ValueError) as info:
            load_json(text[:cut], "report.json")
        assert "report.json is not valid JSON" in str(info.value) and "\n" not in str(info.value)


def test_a_report_of_another_schema_is_refused(finished):
    data = json.loads((finished / "report.json").read_text())
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version=99"):
        load_json(json.dumps(data), "report.json")


def test_a_corrupt_corpus_file_stops_the_run_with_its_name(finished, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    good = (finished / "corpus" / "sigmoid_ce.float32.json").read_text()
    (corpus / "sigmoid_ce.float32.json").write_text(good[: len(good) // 2])
    result = lossfuzz(*SMALL, "--out", str(tmp_path))
    assert result.returncode == 2
    assert "sigmoid_ce.float32.json is not valid JSON" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "report.json").exists()


def test_reports_are_whole_files_and_readable_by_others(finished):
    for name in ("report.json", "report.md", "report.html"):
        path = finished / name
        assert path.stat().st_mode & 0o044  # not the 0600 of a temporary file
    assert load_json((finished / "report.json").read_text()).scores
    assert not list(finished.glob(".*.tmp"))


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # not text: the write fails midway
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_reports_baselines_and_corpora_are_json_not_pickle(finished):
    for path in [finished / "report.json", *sorted((finished / "corpus").glob("*.json"))]:
        json.loads(path.read_text())
    source = "".join(p.read_text() for p in Path(harness.__file__).parent.rglob("*.py"))
    # pickle carries arrays between our own processes (the audit worker); no file is ever unpickled or eval'd
    assert not re.search(r"pickle\.load\(|\beval\(|\bexec\(", source)
