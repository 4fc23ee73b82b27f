"""Gradient rows in `lossfuzz gate`, the run journal (--resume) and the pytest plugin (issue 12).

The gradient rows are real ``Score(..., quantity="gradient")`` records built here; each test makes only
the gradient differ from the loss, so that a gate, journal or plugin that keyed or judged by (family,
candidate, dtype) alone would fail it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest

from harness.campaign import Progress, Resume, run_campaign
from harness.commands.gate import Baseline, _print_summary, _scoped, gate_settings
from harness.gate import check_run
from harness.journal import Journal, read_journal
from harness.junit import render_junit
from harness.options import CheckSettings, Settings, resolve
from harness.pytest_plugin import check, judge
from harness.records import COUNTED_OUTCOMES, HISTOGRAM_BINS, RunResult, Score, WorstCase
from harness.reports.gate_markdown import render_gate_markdown


def _score(quantity="loss", max_ulp=0.5, candidate="keras_clipped", **kw) -> Score:
    counts = dict.fromkeys(COUNTED_OUTCOMES, 0)
    counts.update(kw.pop("counts", {}))
    data = dict(family="sigmoid_ce", candidate=candidate, dtype="float32", reduction="none", examples=100,
                max_ulp=max_ulp, mean_ulp=0.1, median_ulp=0.1, p99_ulp=0.5, max_bits=1.0, mean_bits=0.1,
                counts=counts, histogram=dict.fromkeys(HISTOGRAM_BINS, 0), quantity=quantity)
    data.update(kw)
    return Score(**data)


def _run(*scores: Score, settings=None) -> RunResult:
    return RunResult(settings=settings or {}, provenance={}, scores=tuple(scores), wall_seconds=0.0)


ZERO = WorstCase(("-0x1.9p+6",), ("0x1p+0",), "0x0p+0", "-1.0000000000000000000", "-0x1p+0", 1.6e7,
                 "zero_where_nonzero", "lossfuzz exact sigmoid_ce --logits=-0x1.9p+6 --labels=0x1p+0 --dtype float32"
                 " --candidate keras_clipped --gradient")
LOSS = _score("loss")
GRADIENT = _score("gradient")
VANISHING = _score("gradient", max_ulp=1.6e7, worst=(ZERO,))  # the same figures but max ULP, and a zero


# ------------------------------------------------------------------------------------------------ the gate


def test_a_regression_of_the_gradient_alone_fails_the_gate_on_the_gradient_check():
    result = check_run(_run(LOSS, GRADIENT), _run(LOSS, VANISHING))
    assert not result.passed and result.exit_code == 1
    by_quantity = {c.quantity: c for c in result.checks}
    assert set(by_quantity) == {"loss", "gradient"} and len(result.checks) == 2
    assert by_quantity["loss"].status == "pass" and not by_quantity["loss"].failed
    failing = by_quantity["gradient"]
    assert failing.status == "regression" and failing.failed and failing.key[3] == "gradient"
    assert failing.reasons[0].startswith("max ULP 0.5 → 1.6e+07") and failing.case == ZERO


def test_gradient_rows_are_judged_by_the_loss_rows_thresholds():
    relaxed = check_run(_run(LOSS, GRADIENT), _run(LOSS, VANISHING), thresholds={"max_ulp": "off"})
    assert relaxed.passed  # the one threshold that the gradient broke, set off for every row
    wider = check_run(_run(LOSS, GRADIENT), _run(LOSS, replace(GRADIENT, max_ulp=2.0)), max_ulp_regression=5.0)
    assert wider.passed  # 2 ULP is within max(5 x 0.5, 1): the loss's rule, applied to the gradient
    assert not check_run(_run(LOSS, GRADIENT), _run(LOSS, replace(GRADIENT, max_ulp=2.0))).passed  # 1.5x: not


def test_a_gradient_row_missing_now_fails_and_a_new_one_is_reported_by_its_full_key():
    missing = check_run(_run(LOSS, GRADIENT), _run(LOSS))
    assert [(c.quantity, c.status, c.failed) for c in missing.checks] == [("loss", "pass", False), ("gradient", "missing", True)]
    new = check_run(_run(LOSS), _run(LOSS, GRADIENT))
    assert [(c.quantity, c.status, c.failed) for c in new.checks] == [("loss", "pass", False), ("gradient", "new", False)]
    assert new.passed


def test_the_gate_markdown_junit_and_summary_show_the_quantity_of_every_check(capsys):
    result = check_run(_run(LOSS, GRADIENT), _run(LOSS, VANISHING))
    text = render_gate_markdown(result, "reports/baseline.json")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "keras_clipped" in line]
    assert [r.split(" | ")[4] for r in rows] == ["loss", "gradient"]
    assert rows[1].startswith("| ❌ regression |") and rows[0].startswith("| ✅ pass |")
    assert "### sigmoid_ce · keras_clipped · float32 · gradient: max ULP 0.5 → 1.6e+07" in text
    assert "--candidate keras_clipped --gradient" in text
    cases = ET.fromstring(render_junit(result).split("\n", 1)[1]).iter("testcase")
    failed = {c.get("name"): c.find("failure") is not None for c in cases}
    assert failed == {"keras_clipped[float32]": False, "keras_clipped[float32, gradient]": True}
    _print_summary(result, "reports/baseline.json", None)
    out = capsys.readouterr().out
    assert "  regression: sigmoid_ce keras_clipped float32 gradient: max ULP 0.5 → 1.6e+07" in out


def _baseline(*scores: Score, settings=None) -> Baseline:
    return Baseline(_run(*scores, settings=settings), None, "b.json")


def test_the_gate_replays_the_quantities_of_its_baseline():
    loss_only = _baseline(LOSS)  # a report of a lossfuzz without gradients: its rows are loss rows
    assert gate_settings(loss_only, resolve("gate", {"baseline": "b.json"}))[0].quantities == ("loss",)
    both = _baseline(LOSS, GRADIENT)  # a default run's report leaves the setting out (it is the default)
    assert gate_settings(both, resolve("gate", {"baseline": "b.json"}))[0].quantities == ("loss", "gradient")
    recorded = _baseline(LOSS, settings={"quantities": ["gradient"]})
    assert gate_settings(recorded, resolve("gate", {"baseline": "b.json"}))[0].quantities == ("gradient",)
    given = resolve("gate", {"baseline": "b.json", "quantities": "loss"})
    chosen, _ = gate_settings(both, given)
    assert chosen.quantities == ("loss",)
    notes: list[str] = []
    kept = _scoped(both, replace(chosen, families=("sigmoid_ce",), candidates=("keras_clipped",), dtypes=("float32",)), notes)
    assert [s.quantity for s in kept.scores] == ["loss"]
    assert notes == ["1 baseline results outside the chosen families, candidates, dtypes and quantities are not compared"]


# ------------------------------------------------------------------------------------------ journal, resume


def test_the_journal_keeps_the_loss_and_the_gradient_of_one_candidate_apart(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, {"seed": 0}, "fp")
    journal.scored(LOSS, [])
    journal.scored(VANISHING, [])
    journal.close()
    resume = read_journal(path, {"seed": 0}, "fp")
    assert set(resume.scores) == {("sigmoid_ce", "keras_clipped", "float32", "loss"),
                                  ("sigmoid_ce", "keras_clipped", "float32", "gradient")}
    assert resume.scores[("sigmoid_ce", "keras_clipped", "float32", "gradient")][0].max_ulp == 1.6e7


def test_a_resumed_campaign_takes_the_journaled_loss_score_instead_of_scoring_again():
    settings = Settings(families=("sigmoid_ce",), candidates=("numpy_stable",), dtypes=("float32",), examples=3,
                        speed_elements=0, quantities=("loss",))
    whole, _ = run_campaign(settings)
    done = replace(whole.score("sigmoid_ce", "numpy_stable", "float32"), max_ulp=123.0)  # marked: not recomputed
    scored: list[Score] = []
    resumed, _ = run_campaign(settings, resume=Resume(scores={done.key: (done, [])}),
                              progress=Progress(scored=lambda s, w: scored.append(s)))
    assert resumed.score("sigmoid_ce", "numpy_stable", "float32").max_ulp == 123.0
    assert not [s for s in scored if s.quantity == "loss"]


# ---------------------------------------------------------------------------------------------- the plugin


def _chosen(**kw) -> CheckSettings:
    return CheckSettings(family="sigmoid_ce", **kw)


def test_the_plugin_holds_each_quantity_to_the_bound():
    with pytest.raises(AssertionError) as failed:
        judge([LOSS, VANISHING], _chosen(), "my_loss")
    message = str(failed.value)
    assert message.startswith("lossfuzz: the gradient of my_loss on sigmoid_ce float32 breaks its bound (max_ulp=4,")
    assert "max ULP error 1.6e+07 > 4" in message and "--candidate keras_clipped --gradient" in message
    assert "lossfuzz: my_loss on" not in message  # the loss is within the bound
    assert judge([LOSS, VANISHING], _chosen(quantities=("loss",)), "my_loss") is LOSS
    assert judge([LOSS, GRADIENT], _chosen(), "my_loss") is LOSS
    assert judge([LOSS, GRADIENT], _chosen(quantities=("gradient",)), "my_loss") is GRADIENT
    with pytest.raises(AssertionError, match="^lossfuzz: my_loss on sigmoid_ce float32 breaks its bound"):
        judge([replace(LOSS, max_ulp=9.0), GRADIENT], _chosen(), "my_loss")


def test_a_function_without_a_gradient_is_checked_on_its_loss_with_a_warning_that_says_why():
    with pytest.warns(pytest.PytestWarning, match="my_loss: its gradient is not checked: plain numpy code, no autodiff"):
        assert judge([LOSS], _chosen(), "my_loss", gradient_note="plain numpy code, no autodiff") is LOSS


def stable(labels, logits):
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def test_check_takes_the_quantities_option():
    # the campaign a check runs scores what it checks (a loss-only check computes no gradient)
    assert _chosen(quantities=("loss",)).campaign().quantities == ("loss",)
    assert _chosen().campaign().quantities == ("loss", "gradient")
    score = check(stable, family="sigmoid_ce", dtype="float64", examples=5, quantities="loss", max_ulp=None)
    assert score.quantity == "loss" and score.candidate == "stable" and score.examples > 5000
    with pytest.raises(ValueError, match="quantity='grad' is not one of: loss, gradient"):
        check(stable, family="sigmoid_ce", quantities="loss,grad")
    with pytest.warns(pytest.PytestWarning, match="its gradient is not checked"), \
            pytest.raises(AssertionError, match=re.escape("nothing was scored (quantities gradient)")):
        check(stable, family="sigmoid_ce", dtype="float64", examples=5, quantities="gradient", max_ulp=None)
