"""Hostile files and values (issue 11, item 11): a baseline, corpus, journal, ``--kwargs`` or ``exact`` input
crafted to hang, exhaust memory, overflow or recurse is one line naming the file (or flag), exit 2."""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.journal import read_journal

ROOT = Path(__file__).resolve().parents[2]
BASELINE = json.loads((ROOT / "tests/fixtures/v1/baseline.json").read_text())
SMALL = ["run", "--families", "sigmoid_ce", "--candidates", "naive,numpy_stable", "--dtypes", "float32",
         "--examples", "5", "--speed-elements", "0", "--no-progress"]
DEEP = "[" * 100_000 + "]" * 100_000


def lossfuzz(*args: str) -> subprocess.CompletedProcess:
    # 60 s: every case here fails before any work; a hang (a FIFO, /dev/zero) fails the test by timing out
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def one_line_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lossfuzz: error: "), result.stderr[-2000:]
    for text in expected:
        assert text in result.stderr, result.stderr


def baseline_with(**gate_example) -> str:
    data = copy.deepcopy(BASELINE)
    data["gate"]["replayed"][0]["examples"][0].update(gate_example)
    return json.dumps(data)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


# ------------------------------------------------------------------------------------------------- baseline

BASELINES = {
    "0x1p99999 in a replay example": (baseline_with(inputs=["0x1p99999"]), "is beyond the float64 range"),
    "nested 100000 deep": (DEEP, "nests 100000 levels deep"),
    "a 41-dimension replay shape": (baseline_with(shape=[1] * 41), "is not an example's"),
    "a 10^6-element replay example": (baseline_with(inputs=["0x1p+0"] * 10**6, labels=["0x1p-1"] * 10**6, shape=[10**6]),
                                      "shape [1000000] is not an example's"),
    "a NaN literal": (re.sub(r'"max_ulp": [0-9.e+-]+', '"max_ulp": NaN', json.dumps(BASELINE), count=1), "NaN"),
}


@pytest.mark.parametrize("case", list(BASELINES))
def test_a_hostile_baseline_is_one_line_naming_it(tmp_path, case):
    text, expected = BASELINES[case]
    path = write(tmp_path / "baseline.json", text)
    assert "NaN" not in case or "NaN" in text  # the fixture has the value replaced
    one_line_error(lossfuzz("gate", "--baseline", str(path), "--no-progress", "--out", str(tmp_path / "out")),
                   f"baseline {path}", expected)


def test_a_baseline_that_is_a_device_or_a_fifo_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        one_line_error(lossfuzz("gate", "--baseline", path, "--no-progress", "--out", str(tmp_path / "out")),
                       f"baseline {path} is not a regular file")


def test_a_baseline_over_the_size_bound_is_refused_unread(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(65 * 2**20)  # sparse: no disk used; read, it would be 65 MiB of NUL bytes
    one_line_error(lossfuzz("gate", "--baseline", str(path), "--no-progress", "--out", str(tmp_path / "out")),
                   f"baseline {path} has {65 * 2**20} bytes, more than")


def test_a_baseline_that_is_not_utf8_is_named(tmp_path):
    path = write(tmp_path / "b.json", b'{"tool": "lossfuzz\xff"}')
    one_line_error(lossfuzz("gate", "--baseline", str(path), "--no-progress", "--out", str(tmp_path / "out")),
                   f"baseline {path} is not UTF-8")


def test_a_report_to_compare_that_is_a_device_a_fifo_or_not_utf8_is_refused_without_reading_it(tmp_path):
    """Before: ``lossfuzz compare`` read its reports with ``Path.read_text``: a FIFO hung, /dev/zero read until
    memory ran out. It now takes the same safe reader as baselines, corpora and journals."""
    good = write(tmp_path / "good.json", json.dumps(BASELINE))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        one_line_error(lossfuzz("compare", str(good), path), f"report {path} is not a regular file")
    bad = write(tmp_path / "bad.json", b'{"tool": "lossfuzz\xff"}')
    one_line_error(lossfuzz("compare", str(good), str(bad)), f"report {bad} is not UTF-8")


# --------------------------------------------------------------------------------------------------- corpus

GOOD_CORPUS = {"lossfuzz_corpus": 1, "family": "sigmoid_ce", "dtype": "float32",
               "examples": [{"inputs": ["0x1p+0"], "labels": ["0x1p-1"], "shape": []}]}


def corpus_with(**example) -> str:
    data = copy.deepcopy(GOOD_CORPUS)
    data["examples"][0].update(example)
    return json.dumps(data)


CORPORA = {
    "0x1p99999": (corpus_with(inputs=["0x1p99999"]), "is beyond the float64 range"),
    "a 41-dimension shape": (corpus_with(shape=[1] * 41), "is not an example's"),
    "nested 100000 deep": (DEEP, "nests 100000 levels deep"),
    "not UTF-8": ('{"lossfuzz_corpus": 1, "family": "sigmoid\xff"}'.encode("latin-1"), "is not UTF-8"),
}


@pytest.mark.parametrize("case", list(CORPORA))
def test_a_hostile_corpus_file_is_one_line_naming_it(tmp_path, case):
    content, expected = CORPORA[case]
    path = write(tmp_path / "corpus" / "sigmoid_ce.float32.json", content)
    one_line_error(lossfuzz(*SMALL, "--out", str(tmp_path)), f"corpus file {path}", expected)
    assert not (tmp_path / "report.json").exists()


def test_a_fifo_in_the_corpus_folder_does_not_hang_the_run(tmp_path):
    (tmp_path / "corpus").mkdir()
    os.mkfifo(tmp_path / "corpus" / "x.json")
    one_line_error(lossfuzz(*SMALL, "--out", str(tmp_path)), f"corpus file {tmp_path / 'corpus' / 'x.json'} is not a regular file")


# -------------------------------------------------------------------------------------------------- journal

SETTINGS = {"seed": 0}
HEADER = json.dumps({"lossfuzz_journal": 1, "settings": SETTINGS, "corpus": "f"})
JOURNALS = {
    '{"score": null}': (f'{HEADER}\n{{"score": null, "worst": []}}\n', "has a malformed record"),
    "a null header": ("null\n", "line 1 is not a record"),
    "a NaN": (f'{HEADER}\n{{"score": {{"max_ulp": NaN}}, "worst": []}}\n', "NaN"),
    "nested 100000 deep": (f'{HEADER}\n{{"score": {DEEP}}}\n', "nests 100001 levels deep"),
    "a record that is not an object": (f"{HEADER}\n[1, 2]\n", "line 2 is not a record"),
}


@pytest.mark.parametrize("case", list(JOURNALS))
def test_a_hostile_journal_record_is_one_line_naming_the_journal(tmp_path, case):
    text, expected = JOURNALS[case]
    path = write(tmp_path / "journal.jsonl", text)
    with pytest.raises(ValueError) as info:
        read_journal(path, SETTINGS, "f")
    message = str(info.value)
    assert f"journal {path}" in message and expected in message and "\n" not in message


def test_a_journal_that_is_not_utf8_stops_resume_naming_it(tmp_path):
    journal = write(tmp_path / "journal.jsonl", b'{"lossfuzz_journal": 1\xfe}\n')
    one_line_error(lossfuzz(*SMALL, "--resume", "--out", str(tmp_path)), f"journal {journal} is not UTF-8")


# ------------------------------------------------------------------------------------------ flags and values


def test_an_exact_input_beyond_the_float_range_is_a_usage_error():
    one_line_error(lossfuzz("exact", "sigmoid_ce", "--logits", "0x1p99999", "--labels", "1"),
                   "logits '0x1p99999' is beyond the float64 range")


def test_deeply_nested_kwargs_are_a_usage_error():
    kwargs = '{"a": ' * 5000 + "1" + "}" * 5000
    one_line_error(lossfuzz("audit", "tests.fixtures.flawed_losses:stable_ce", "--family", "sigmoid_ce", "--kwargs", kwargs),
                   "nests 5000 levels deep")


@pytest.mark.parametrize(("flag", "value", "most"), [("--speed-elements", "100000000000000", "100000000"),
                                                     ("--examples", "10" + "0" * 22, "1000000")])
def test_counts_beyond_their_bound_are_refused_before_any_work(tmp_path, flag, value, most):
    one_line_error(lossfuzz("run", flag, value, "--out", str(tmp_path)), f"argument {flag}", f"pass at most {most}")
    assert list(tmp_path.iterdir()) == []
