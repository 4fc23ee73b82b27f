"""The regression gate's decisions without running a campaign: thresholds, outcome slack, missing and new
keys, worst cases turned back into examples, the replay corpus, JUnit XML and the Markdown gate section.

The end-to-end runs of `lossfuzz gate` are in tests/e2e/test_gate.py."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from harness.gate import (
    check_run,
    examples_from_case,
    gate_entry,
    nonfinite_on_finite_inputs,
    parse_factor,
    read_gate_entry,
    replay_corpus,
    ulp_limit,
)
from harness.junit import render_junit
from harness.records import RunResult, Score, WorstCase
from harness.reports.gate_markdown import render_gate_markdown
from harness.scoring import replay_command
from harness.strategies import Example


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
    (check,) = check_run(_run(old), _run(new), **kw).checks
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


def test_new_nonfinite_counts_only_finite_inputs_and_fails_unless_allowed():
    old = _score(counts={"nan": 5, "on_nonfinite_inputs": 5})
    assert nonfinite_on_finite_inputs(old) == 0
    same_limits = _score(counts={"nan": 6, "on_nonfinite_inputs": 6})  # one more mistake, on a ±inf/nan input
    assert _verdict(old, same_limits).status == "pass"  # within the 1%-of-examples default of those classes
    new = _score(counts={"nan": 6, "on_nonfinite_inputs": 5})
    fail = _verdict(old, new)  # the default since issue 11: new non-finite results on finite inputs fail
    assert (fail.status, fail.failed) == ("new_nonfinite", True)
    assert "non-finite results on finite inputs 0 → 1" in fail.summary
    warn = _verdict(old, new, fail_on_new_nonfinite=False)
    assert (warn.status, warn.failed) == ("new_nonfinite", False)


def test_slack_absorbs_double_counted_replays_but_zero_must_stay_zero():
    old = _score(counts={"inf": 10})
    strict = {"nonfinite_on_finite_inputs": "0%"}  # no growth allowed beyond the slack (the default allows 2%)
    assert _verdict(old, _score(counts={"inf": 13}), thresholds=strict, slack=3).status == "pass"
    assert _verdict(old, _score(counts={"inf": 14}), thresholds=strict, slack=3).status == "new_nonfinite"
    assert _verdict(_score(), _score(counts={"inf": 1}), fail_on_new_nonfinite=True,
                    slack={("sigmoid_ce", "float32"): 50}).failed
    assert _verdict(_score(), _score(counts={"raised": 1})).status == "regression"


def test_missing_new_unsupported_and_unscorable_keys():
    result = check_run(_run(_score(candidate="mine"), _score(candidate="naive")), _run(_score(candidate="naive"),
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


# ------------------------------------------------------------------------------------- JUnit and Markdown


def test_junit_escapes_names_and_has_one_testcase_per_key():
    odd = 'a<b>&"c"\x01'
    result = check_run(_run(_score(1.0, candidate=odd), _score(1.0, candidate="x", dtype="float64")),
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
        return check_run(_run(_score(1.0), _score(2.0, dtype="float64")), _run(_score(99.0), _score(2.0, dtype="float64")))

    first, second = render_junit(result()), render_junit(result())
    assert first == second
    assert "time=" not in first and "timestamp" not in first


def test_the_markdown_gate_section_escapes_and_shows_the_replay_command():
    case = WorstCase(("0x1p+0",), ("0x1p-1",), "0x1p+1", "1.5", "0x1.8p+0", 1e6, "finite",
                     "lossfuzz exact sigmoid_ce --logits=0x1p+0 --labels=0x1p-1 --dtype float32 --candidate x")
    result = check_run(_run(_score(1.0, candidate="x|y")), _run(_score(1e6, candidate="x|y", worst=(case,))))
    text = render_gate_markdown(result, "reports/baseline.json")
    assert "x\\|y" in text and "```sh\nlossfuzz exact sigmoid_ce" in text
    assert text.startswith("# lossfuzz gate: ❌ 1 of 1 checks got worse")
    # every row has its table's columns: the checks' table (9, the quantity among them) and the table of what got worse (5)
    pipes = [line.count("|") - line.count("\\|") for line in text.splitlines() if line.startswith("| ")]
    assert pipes == [10, 10, 6, 6], pipes
