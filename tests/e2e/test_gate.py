"""The regression gate: thresholds, replay corpus, `lossfuzz gate` end to end (exit codes 0/1/2), JUnit XML.

End to end on sigmoid_ce float32 with 20 Hypothesis examples and no timing: a user function through
--function (tests/gate_fixtures.py, always under --name mine so every variant is the same candidate key) and
the built-in numpy_stable with its registry entry swapped for a worse implementation.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from harness import cli
from harness._records import RunResult, Score, WorstCase
from harness.gate import (
    compare,
    examples_from_case,
    gate_entry,
    nonfinite_on_finite_inputs,
    parse_factor,
    read_gate_entry,
    replay_corpus,
    ulp_limit,
)
from harness.gate_command import load_baseline
from harness.junit import render_junit
from harness.reports.gate_markdown import render_gate_markdown
from harness.reports.json_report import load_json
from harness.scoring import replay_command
from harness.strategies import Example

SMALL = ["--dtypes", "float32", "--examples", "20", "--no-progress"]
MINE = ["--family", "sigmoid_ce", "--name", "mine", *SMALL]


def gate(*argv: str) -> tuple[int, str, str]:
    """Run `lossfuzz gate ...` in process (the command registered even before cli._COMMANDS lists it)."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(cli._COMMANDS, {"gate": "harness.gate_command"}), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["gate", *argv])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def accuracy(path: Path) -> list[dict]:
    rows = json.loads(path.read_text())["results"]
    for row in rows:
        row.pop("speed")
    return rows


@pytest.fixture(scope="module")
def mine(tmp_path_factory) -> Path:
    """A baseline of the stable user function, written by the gate."""
    folder = tmp_path_factory.mktemp("gate")
    code, out, err = gate("--update-baseline", "--baseline", str(folder / "baseline.json"), "--out", str(folder / "first"),
                          "--function", "tests.gate_fixtures:stable", *MINE)
    assert code == 0, err
    assert "wrote the baseline" in out
    return folder / "baseline.json"


# ----------------------------------------------------------------------------------------- thresholds


def _score(max_ulp=0.5, family="sigmoid_ce", candidate="mine", dtype="float32", **kw) -> Score:
    counts = {"nan": 0, "inf": 0, "finite_where_infinite": 0, "raised": 0, "on_nonfinite_inputs": 0}
    counts.update(kw.pop("counts", {}))
    data = dict(family=family, candidate=candidate, dtype=dtype, reduction="none", examples=100, max_ulp=max_ulp,
                mean_ulp=None, median_ulp=None, p99_ulp=None, max_bits=None, mean_bits=None, histogram={},
                counts=counts)
    data.update(kw)
    return Score(**data)


def _run(*scores: Score) -> RunResult:
    return RunResult(settings={}, provenance={}, scores=tuple(scores), wall_seconds=0.0)


def _verdict(old: Score, new: Score, **kw):
    (check,) = compare(_run(old), _run(new), **kw).checks
    return check


@pytest.mark.parametrize(
    "old, new, status",
    [
        (0.4, 0.6, "pass"),  # within 1.5x, and below the 1 ULP floor anyway
        (0.0, 1.0, "pass"),  # the floor: 0 -> 1 ULP is rounding noise
        (0.0, 1.01, "regression"),
        (10.0, 15.0, "pass"),
        (10.0, 15.01, "regression"),
        (1392.0, 10.0, "pass"),  # better
        (math.inf, math.inf, "pass"),  # nothing beats inf
        (1e7, math.inf, "regression"),  # inf beats any finite figure
        (None, 5.0, "pass"),  # no figure in the baseline: not compared
        (5.0, None, "regression"),  # no value with a ULP error any more
    ],
)
def test_max_ulp_threshold_is_factor_times_baseline_with_a_one_ulp_floor(old, new, status):
    check = _verdict(_score(old), _score(new))
    assert check.status == status, check.reasons
    assert check.failed == (status == "regression")


def test_factor_parses_with_or_without_x_and_rejects_factors_below_one():
    assert parse_factor("1.5x") == parse_factor("1.5") == parse_factor(" 1.5X ") == 1.5
    assert parse_factor("2") == 2.0
    for bad in ("0.5x", "x", "fast", "nan", "inf"):
        with pytest.raises(ValueError, match="max-ulp-regression"):
            parse_factor(bad)
    assert ulp_limit(0.4, 1.5) == 1.0 and ulp_limit(100.0, 2.0) == 200.0 and ulp_limit(None, 1.5) is None
    assert _verdict(_score(10.0), _score(25.0), max_ulp_regression="3x").status == "pass"


def test_new_nonfinite_counts_only_finite_inputs_and_fails_only_when_asked():
    old = _score(counts={"nan": 5, "on_nonfinite_inputs": 5})
    assert nonfinite_on_finite_inputs(old) == 0
    same_limits = _score(counts={"nan": 9, "on_nonfinite_inputs": 9})  # more mistakes, all on ±inf/nan inputs
    assert _verdict(old, same_limits).status == "pass"
    new = _score(counts={"nan": 6, "on_nonfinite_inputs": 5})
    warn = _verdict(old, new)
    assert (warn.status, warn.failed) == ("new_nonfinite", False)
    fail = _verdict(old, new, fail_on_new_nonfinite=True)
    assert (fail.status, fail.failed) == ("new_nonfinite", True)
    assert "non-finite results on finite inputs 0 → 1" in fail.summary


def test_slack_absorbs_double_counted_replays_but_zero_must_stay_zero():
    old = _score(counts={"inf": 10})
    assert _verdict(old, _score(counts={"inf": 13}), fail_on_new_nonfinite=True, slack=3).status == "pass"
    assert _verdict(old, _score(counts={"inf": 14}), fail_on_new_nonfinite=True, slack=3).status == "new_nonfinite"
    assert _verdict(_score(), _score(counts={"inf": 1}), fail_on_new_nonfinite=True,
                    slack={("sigmoid_ce", "float32"): 50}).failed
    assert _verdict(_score(), _score(counts={"raised": 1})).status == "regression"


def test_missing_new_unsupported_and_unscorable_keys():
    result = compare(_run(_score(candidate="mine"), _score(candidate="naive")), _run(_score(candidate="naive"),
                                                                                    _score(candidate="tf")))
    status = {c.candidate: (c.status, c.failed) for c in result.checks}
    assert status == {"mine": ("missing", True), "naive": ("pass", False), "tf": ("new", False)}
    assert "--function" in result.checks[0].summary  # not a built-in name: the hint to pass it
    assert result.exit_code == 1 and not result.passed
    gone = _verdict(_score(), _score(unsupported=True, examples=0, max_ulp=None))
    assert gone.status == "regression" and "unsupported" in gone.summary
    broken = _verdict(_score(), _score(examples=0, max_ulp=None, failure="raised ImportError: no"))
    assert broken.status == "regression" and "could not be scored" in broken.summary
    assert _verdict(_score(unsupported=True, examples=0, max_ulp=None), _score()).status == "pass"


# ---------------------------------------------------------------------------------------- replay corpus


def test_worst_cases_turn_back_into_the_examples_they_came_from():
    rows = np.array([[1e4, -3.0, 0.5], [2.0, 2.0, -7.0]], dtype=np.float32)
    soft = np.array([[0.25, 0.5, 0.25], [1.0, 0.0, 0.0]], dtype=np.float32)
    classes = np.array([2, 0])
    cases = [
        # a reduced (batch) case of softmax_ce: two rows of three
        ("softmax_ce", rows, soft, [Example(rows[0], soft[0]), Example(rows[1], soft[1])]),
        ("sparse_softmax_ce", rows, classes, [Example(rows[0], np.array(2)), Example(rows[1], np.array(0))]),
        ("sigmoid_ce", rows[0], soft[0], [Example(rows[0][i].reshape(()), soft[0][i].reshape(())) for i in range(3)]),
    ]
    from harness._values import float_hex
    from harness.scoring import _labels_text

    for family, x, z, expected in cases:
        case = WorstCase(tuple(float_hex(v) for v in np.ravel(x)), _labels_text(z), "0x1p+0", "1", "0x1p+0", 0.0,
                         "finite", replay_command(family, "tf", "float32", x, z, "mean"))
        got = examples_from_case(family, "float32", case)
        assert [e.key for e in got] == [e.key for e in expected], family


def test_replay_corpus_dedupes_skips_the_catalogue_and_counts_what_is_not_stored():
    x = Example(np.float32(1234.5).reshape(()), np.float32(0.3).reshape(()))
    y = Example(np.float32(-3.5).reshape(()), np.float32(0.25).reshape(()))
    from harness.strategies import catalogue

    in_catalogue = catalogue("sigmoid_ce", "float32")[0]
    corpus, fresh = replay_corpus([("sigmoid_ce", "float32")], stored={("sigmoid_ce", "float32"): [x]},
                                  extra={("sigmoid_ce", "float32"): [x, y, in_catalogue]})
    assert [e.key for e in corpus[("sigmoid_ce", "float32")]] == [x.key, y.key]
    assert fresh == {("sigmoid_ce", "float32"): 1}
    back = read_gate_entry(json.loads(json.dumps(gate_entry(corpus))), "b.json")
    assert [e.key for e in back[("sigmoid_ce", "float32")]] == [x.key, y.key]
    with pytest.raises(ValueError, match="b.json: its 'gate' entry"):
        read_gate_entry({"version": 7}, "b.json")


# ----------------------------------------------------------------------------------------- end to end


def test_the_baseline_written_by_the_gate_is_a_loadable_report_with_its_replay_corpus(mine):
    baseline = load_baseline(mine)
    assert [s.key for s in baseline.result.scores] == [("sigmoid_ce", "mine", "float32")]
    assert baseline.result.settings["examples"] == 20 and baseline.result.settings["speed_elements"] == 0
    assert baseline.stored is not None  # the replay corpus it was computed on
    load_json(mine.read_text(), "baseline")  # a report.json as any other


def test_unchanged_code_passes_with_identical_figures(mine, tmp_path):
    code, out, err = gate("--baseline", str(mine), "--out", str(tmp_path), "--junit", str(tmp_path / "junit.xml"),
                          "--function", "tests.gate_fixtures:stable", *MINE)
    assert code == 0, out + err
    assert "passed" in out
    # the stored replay corpus makes the comparison exact: the same figures, bit for bit
    assert accuracy(tmp_path / "report.json") == accuracy(mine)
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.find("properties/property[@name='exact']").get("value") == "true"
    assert suite.findall("testcase/failure") == []
    assert "✅ passed" in (tmp_path / "report.md").read_text()


def test_a_worse_function_under_the_same_name_fails_naming_family_candidate_and_dtype(mine, tmp_path):
    junit = tmp_path / "junit.xml"
    code, out, err = gate("--baseline", str(mine), "--out", str(tmp_path), "--junit", str(junit),
                          "--function", "tests.gate_fixtures:worse", *MINE)
    assert code == 1, out + err
    assert "regression: sigmoid_ce mine float32: max ULP 0.5 →" in out
    assert "replay: lossfuzz exact sigmoid_ce --logits=" in out
    assert "--candidate tests.gate_fixtures:worse" in out  # the replay calls the function by its spec
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert (case.get("classname"), case.get("name")) == ("sigmoid_ce", "mine[float32]")
    failure = case.find("failure")
    assert failure is not None and failure.get("message").startswith("regression: max ULP 0.5 →")
    assert "lossfuzz exact sigmoid_ce" in failure.text
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# lossfuzz gate: ❌ 1 of 1 checks got worse") and "# lossfuzz report" in report


def test_new_nonfinite_results_warn_and_fail_with_the_flag(mine, tmp_path):
    args = ("--baseline", str(mine), "--out", str(tmp_path), "--function", "tests.gate_fixtures:nan_for_huge", *MINE)
    code, out, _ = gate(*args)
    assert code == 0 and "warning: new nonfinite: sigmoid_ce mine float32: non-finite results on finite inputs 0 →" in out
    code, out, _ = gate(*args, "--fail-on-new-nonfinite")
    assert code == 1 and "new nonfinite: sigmoid_ce mine float32" in out


def test_two_gate_runs_give_identical_accuracy_figures_and_junit(mine, tmp_path):
    texts = []
    for run in ("a", "b"):
        code, _, _ = gate("--baseline", str(mine), "--out", str(tmp_path / run), "--junit", str(tmp_path / run / "j.xml"),
                          "--function", "tests.gate_fixtures:worse", *MINE)
        assert code == 1
        texts.append(((tmp_path / run / "j.xml").read_bytes(), accuracy(tmp_path / run / "report.json")))
    assert texts[0] == texts[1]


def test_forgetting_the_function_reports_it_missing_with_a_hint(mine, tmp_path):
    code, out, _ = gate("--baseline", str(mine), "--out", str(tmp_path), "--no-progress")
    assert code == 1
    assert "missing: sigmoid_ce mine float32" in out and "--function MODULE:FUNCTION" in out


def test_a_builtin_swapped_for_a_worse_implementation_fails(tmp_path, monkeypatch):
    from harness.candidates._registry import REGISTRY

    baseline = tmp_path / "baseline.json"
    common = ["--families", "sigmoid_ce", "--out", str(tmp_path / "out"), "--junit", str(tmp_path / "j.xml"), *SMALL]
    code, _, err = gate("--update-baseline", "--baseline", str(baseline), "--candidates", "naive,numpy_stable", *common)
    assert code == 0, err
    code, out, err = gate("--baseline", str(baseline), "--fail-on-new-nonfinite", *common)
    assert code == 0, out + err
    testcases = list(ET.parse(tmp_path / "j.xml").getroot().iter("testcase"))
    assert [(t.get("classname"), t.get("name")) for t in testcases] == [
        ("sigmoid_ce", "naive[float32]"), ("sigmoid_ce", "numpy_stable[float32]")]
    key = ("sigmoid_ce", "numpy_stable")
    monkeypatch.setitem(REGISTRY, key, replace(REGISTRY[key], target="tests.gate_fixtures:naive_builtin"))
    code, out, err = gate("--baseline", str(baseline), "--fail-on-new-nonfinite", *common)
    assert code == 1, out + err
    assert "sigmoid_ce numpy_stable float32" in out and "non-finite results on finite inputs 0 →" in out
    assert "sigmoid_ce naive float32" not in out  # unchanged: not listed
    failed = [t.get("name") for t in ET.parse(tmp_path / "j.xml").getroot().iter("testcase") if t.find("failure") is not None]
    assert failed == ["numpy_stable[float32]"]


def test_a_lossfuzz_run_report_serves_as_a_baseline(tmp_path):
    reports = tmp_path / "reports"
    with mock.patch.dict(cli._COMMANDS, {"gate": "harness.gate_command"}), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["run", "--families", "sigmoid_ce", "--candidates", "naive", "--dtypes", "float32",
                         "--examples", "20", "--speed-elements", "0", "--out", str(reports), "--no-progress"]) == 0
    code, out, err = gate("--baseline", str(reports / "report.json"), "--out", str(reports), "--no-progress",
                          "--fail-on-new-nonfinite")
    assert code == 0, out + err
    assert load_baseline(reports / "report.json").stored is None  # the baseline was not overwritten
    assert "does not record the inputs" in (reports / "report.md").read_text()


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "does not exist; write one with: lossfuzz gate --update-baseline"),
        ('{"tool": "lossfuzz", "schema_version": 1, "resu', "is not valid JSON"),
        ('{"tool": "lossfuzz", "schema_version": 99, "results": []}', "schema_version=99"),
        ('[1, 2, 3]', "not a lossfuzz report"),
        ('{"tool": "lossfuzz", "schema_version": 1, "results": [{"family": "sigmoid_ce"}]}', "lacks the key"),
    ],
)
def test_a_missing_or_malformed_baseline_is_one_line_and_exit_code_2(tmp_path, content, expected):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    code, _, err = gate("--baseline", str(path), "--out", str(tmp_path), *SMALL)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lossfuzz: error: baseline ") and expected in err, err
    assert "Traceback" not in err


def test_malformed_settings_and_gate_entries_are_configuration_errors(mine, tmp_path):
    data = json.loads(mine.read_text())
    for patch, expected in (({"settings": {**data["settings"], "families": ["hinge"]}}, "settings.families"),
                            ({"gate": {"version": 1, "replayed": [{"lossfuzz_corpus": 1}]}}, "gate.replayed[0]"),
                            ({"gate": []}, "'gate' entry"),
                            ({"partial": True}, "is a partial report")):
        path = tmp_path / "b.json"
        path.write_text(json.dumps({**data, **patch}))
        code, _, err = gate("--baseline", str(path), "--out", str(tmp_path), *SMALL)
        assert code == 2 and err.count("\n") == 1 and expected in err, err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--function", "tests.gate_fixtures:stable"], "--function needs --family"),
        (["--takes", "labels,logits"], "pass --function MODULE:FUNCTION"),
        (["--function", "tests.gate_fixtures:nope", "--family", "sigmoid_ce"], "has no attribute 'nope'"),
        (["--max-ulp-regression", "0.9x"], "at least 1"),
    ],
)
def test_bad_options_are_usage_errors(mine, tmp_path, argv, expected):
    code, _, err = gate("--baseline", str(mine), "--out", str(tmp_path), *argv, "--no-progress")
    assert code == 2 and expected in err, err


def test_update_baseline_over_an_existing_one_keeps_it_loadable_and_the_gate_exact(mine, tmp_path):
    copy = tmp_path / "baseline.json"
    copy.write_text(mine.read_text())
    code, out, _ = gate("--update-baseline", "--baseline", str(copy), "--out", str(tmp_path),
                        "--function", "tests.gate_fixtures:worse", *MINE)
    assert code == 0 and "wrote the baseline" in out
    assert load_baseline(copy).result.scores[0].max_ulp > 1000
    code, out, _ = gate("--baseline", str(copy), "--out", str(tmp_path / "again"), "--junit", str(tmp_path / "j.xml"),
                        "--function", "tests.gate_fixtures:worse", *MINE)
    assert code == 0, out
    assert accuracy(tmp_path / "again" / "report.json") == accuracy(copy)


# ------------------------------------------------------------------------------------- JUnit and Markdown


def test_junit_escapes_names_and_has_one_testcase_per_key():
    odd = 'a<b>&"c"\x01'
    result = compare(_run(_score(1.0, candidate=odd), _score(1.0, candidate="x", dtype="float64")),
                     _run(_score(99.0, candidate=odd), _score(1.0, candidate="x", dtype="float64")))
    root = ET.fromstring(render_junit(result).encode())
    cases = list(root.iter("testcase"))
    assert len(cases) == 2 == int(root.find("testsuite").get("tests"))
    assert cases[0].get("name") == 'a<b>&"c"\ufffd[float32]' and cases[0].find("failure") is not None
    assert cases[1].find("failure") is None and root.find("testsuite").get("failures") == "1"
    failure = cases[0].find("failure")
    assert failure.get("type") == "regression"
    assert "max ULP: baseline 1, now 99, limit 1.5 (1.5x, at least 1 ULP)" in failure.text
    assert cases[1].find("system-out").text.startswith("sigmoid_ce / x / float64: pass")


def test_junit_has_no_timings_so_equal_results_give_equal_bytes():
    def result():  # built twice from scratch: equal inputs, not the same object
        return compare(_run(_score(1.0), _score(2.0, dtype="float64")), _run(_score(99.0), _score(2.0, dtype="float64")))

    first, second = render_junit(result()), render_junit(result())
    assert first == second
    assert "time=" not in first and "timestamp" not in first


def test_the_markdown_gate_section_escapes_and_shows_the_replay_command():
    case = WorstCase(("0x1p+0",), ("0x1p-1",), "0x1p+1", "1.5", "0x1.8p+0", 1e6, "finite",
                     "lossfuzz exact sigmoid_ce --logits=0x1p+0 --labels=0x1p-1 --dtype float32 --candidate x")
    result = compare(_run(_score(1.0, candidate="x|y")), _run(_score(1e6, candidate="x|y", worst=(case,))))
    text = render_gate_markdown(result, "reports/baseline.json")
    assert "x\\|y" in text and "```sh\nlossfuzz exact sigmoid_ce" in text
    assert text.startswith("# lossfuzz gate: ❌ 1 of 1 checks got worse")
    assert all(line.count("|") - line.count("\\|") == 9 for line in text.splitlines() if line.startswith("| "))


def test_update_baseline_replaces_an_unusable_baseline(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text('{"tool": "lossfuzz", "sche')
    code, _, err = gate("--update-baseline", "--baseline", str(path), "--out", str(tmp_path), "--families",
                          "binary_ce", "--candidates", "numpy_stable", *SMALL)
    assert code == 0 and "replacing an unusable baseline" in err
    assert [s.key for s in load_baseline(path).result.scores] == [("binary_ce", "numpy_stable", "float32")]
