"""The gate compares every statistic, not only max ULP (issue 11, item 8): p99 and median ULP, mean bits and
every outcome count as a rate per example, for the whole score and per regime, each against a threshold
(defaults, ``--threshold`` flags, the baseline's ``"gate"`` entry). Hand-made scores, no campaign; the
end-to-end runs are in tests/e2e/test_gate.py.
Per-regime statistics (``Score.regimes``, :class:`harness.records.RegimeScore`) are compared as the whole
score is."""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from harness import cli
from harness.commands.gate import load_baseline, thresholds_in_effect
from harness.gate import check_run, gate_entry, read_gate_entry
from harness.junit import render_junit
from harness.options import UsageError, resolve
from harness.records import NON_FINITE_MISTAKES, RegimeScore, RunResult, Score, WorstCase
from harness.reports.gate_markdown import render_gate_markdown
from harness.thresholds import DEFAULT_THRESHOLDS, Threshold, parse_thresholds, threshold_for

COUNTS = {"nan": 0, "inf": 0, "finite_where_infinite": 0, "nan_where_infinite": 0, "wrong_infinity": 0,
          "number_where_nan": 0, "flushed_subnormal": 0, "raised": 0, "unconverged": 0, "on_nonfinite_inputs": 0}
REPLAY = "lossfuzz exact sigmoid_ce --logits=0x1p+4 --labels=0x1p-1 --dtype float32 --candidate mine"


def case(ulp=1e7, outcome="finite", inputs=("0x1p+4",), replay=REPLAY) -> WorstCase:
    return WorstCase(inputs, ("0x1p-1",), "0x1p+1", "1.5", "0x1.8p+0", ulp, outcome, replay)


def score(max_ulp=1.68e7, p99=1e6, median=0.15, mean_bits=1.2, examples=5650, counts=None, **kw) -> Score:
    data = dict(family="sigmoid_ce", candidate="mine", dtype="float32", reduction="none", examples=examples,
                max_ulp=max_ulp, mean_ulp=None, median_ulp=median, p99_ulp=p99, max_bits=None, mean_bits=mean_bits,
                histogram={}, counts={**COUNTS, **(counts or {})})
    data.update(kw)
    return Score(**data)


def regime(max_ulp=2.0, median=0.3, mean_bits=0.5, examples=1000, counts=None, worst=None) -> RegimeScore:
    return RegimeScore(examples, max_ulp, max_ulp, median, None, None, mean_bits, {**COUNTS, **(counts or {})}, worst)


def run(*scores) -> RunResult:
    return RunResult(settings={}, provenance={}, scores=tuple(scores), wall_seconds=0.0)


def verdict(old, new, **kw):
    (check,) = check_run(run(old), run(new), **kw).checks
    return check


def worse(check) -> list[tuple[str, str]]:
    return [(c.regime, c.statistic) for c in check.worse]


# ---------------------------------------------------------------------------------- the two cases


def test_every_value_worse_with_the_same_max_fails_naming_median_p99_and_mean_bits():
    """Before: only max ULP was compared, so this passed with "none got worse"."""
    old = score(median=0.15, mean_bits=1.2, p99=1e3)
    new = score(median=11358.0, mean_bits=13.2, p99=1e6, worst=(case(),))
    check = verdict(old, new)
    assert (check.status, check.failed) == ("regression", True)
    assert worse(check) == [("all", "p99_ulp"), ("all", "median_ulp"), ("all", "mean_bits")]
    assert "median ULP 0.15 → 11358 (limit 1: 1.5x, at least 1 ULP)" in check.reasons
    assert "mean bits 1.2 → 13.2 (limit 2.2: +1 bit)" in check.reasons
    assert check.case.replay == REPLAY
    # each at its threshold passes: 1.5 x 1e3 = 1500 for p99, 1 ULP floor for median, +1 bit for mean bits
    assert verdict(old, score(median=1.0, mean_bits=2.2, p99=1500.0)).status == "pass"
    assert verdict(old, score(median=1.01, mean_bits=1.2, p99=1e3)).status == "regression"
    assert verdict(old, score(median=0.15, mean_bits=2.21, p99=1e3)).status == "regression"


def test_zero_to_3009_nan_on_finite_inputs_fails_by_default_and_blames_no_class_twice():
    """Before: 0 → 3009 nan results passed with a warning."""
    new = score(counts={"nan": 3009}, worst=(case(ulp=None, outcome="nan"),))
    check = verdict(score(), new)
    assert (check.status, check.failed) == ("new_nonfinite", True)
    # the nan class is credited with the growth on finite inputs: one statistic says it, not two
    assert worse(check) == [("all", "nonfinite_on_finite_inputs")]
    assert check.reasons == ("non-finite results on finite inputs 0 → 3009 of 5650 examples (limit 0: rate +2% of"
                             " examples; 0 stays 0)",)
    assert check.case.outcome == "nan"
    warned = verdict(score(), new, fail_on_new_nonfinite=False)
    assert (warned.status, warned.failed) == ("new_nonfinite", False)


def test_nan_only_on_nonfinite_inputs_is_not_the_new_rule_and_fails_only_beyond_its_own_threshold():
    few = score(counts={"nan": 5, "on_nonfinite_inputs": 5})  # 5 of 5650: under 1% of the examples
    assert verdict(score(), few).status == "pass"
    many = verdict(score(), score(counts={"nan": 3009, "on_nonfinite_inputs": 3009},
                                  worst=(case(ulp=None, outcome="nan", inputs=("inf",)),)))
    assert many.status == "regression"  # a regression of limit values, not a new non-finite result
    assert worse(many) == [("all", "nan"), ("all", "on_nonfinite_inputs")]
    assert many.worse[1].case.inputs == ("inf",)  # the case on a ±inf/nan input
    assert many.worse[0].limit == pytest.approx(56.5)  # 0 + 1% of 5650


# ------------------------------------------------------------------------------------ counts as rates


def test_counts_are_compared_as_rates_per_example_and_zero_stays_zero():
    old = score(examples=1000, counts={"flushed_subnormal": 10})
    # the default: the rate may grow by 2 points of the examples: 10 of 1000 → at most 20 + 40 of 2000
    assert verdict(old, score(examples=2000, counts={"flushed_subnormal": 60})).status == "pass"
    grew = verdict(old, score(examples=2000, counts={"flushed_subnormal": 61}))
    assert worse(grew) == [("all", "flushed_subnormal")]
    assert grew.reasons == ("flushed subnormals 10 → 61 of 2000 examples (1000 in the baseline) (limit 60: rate +2% of"
                            " examples; 0 stays 0)",)
    strict = {"flushed_subnormal": "0%"}
    assert verdict(old, score(examples=2000, counts={"flushed_subnormal": 20}), thresholds=strict).status == "pass"
    assert verdict(old, score(examples=2000, counts={"flushed_subnormal": 21}), thresholds=strict).failed
    # keep0: a kind of failure the baseline never had fails from the first one, whatever the growth allowed
    for statistic in ("nonfinite_on_finite_inputs", "raised", "flushed_subnormal", "unconverged"):
        assert DEFAULT_THRESHOLDS[statistic].keep_zero
    assert verdict(score(), score(counts={"unconverged": 1})).status == "regression"
    assert verdict(score(), score(counts={"flushed_subnormal": 1})).status == "regression"
    assert verdict(score(), score(counts={"flushed_subnormal": 1}), thresholds={"flushed_subnormal": "2%"}).status == "pass"
    # every counted outcome is compared: each one grown alone (to 3.5% of the examples) is named
    for statistic in COUNTS:
        grown = {statistic: 200}
        if statistic in NON_FINITE_MISTAKES:  # on ±inf/nan inputs, so that its class's own threshold judges it
            grown["on_nonfinite_inputs"] = 200
        assert ("all", statistic) in worse(verdict(score(), score(counts=grown))), statistic


def test_the_replay_slack_counts_only_where_the_baseline_had_some():
    old, strict = score(counts={"flushed_subnormal": 10}), {"flushed_subnormal": "0%"}
    assert verdict(old, score(counts={"flushed_subnormal": 13}), slack=3, thresholds=strict).status == "pass"
    assert verdict(old, score(counts={"flushed_subnormal": 14}), slack=3, thresholds=strict).status == "regression"
    assert verdict(score(), score(counts={"flushed_subnormal": 1}), slack=50).status == "regression"
    # a class the baseline never had cannot have been counted twice: at 0% it stays 0 whatever the slack
    assert verdict(score(), score(counts={"flushed_subnormal": 1}), slack=50, thresholds=strict).status == "regression"


# ---------------------------------------------------------------------------------------- thresholds


def test_threshold_texts_parse_to_their_kinds_and_back():
    table = parse_thresholds(["median_ulp=2x,4ulp", "p99_ulp=3X", "max_ulp=8ulp", "soft.max_ulp=off",
                              "mean_bits=2bits", "all.mean_bits=+0.5", "nan=0.5%", "raised=0%", "unconverged=3%,keep0"])
    assert table["median_ulp"] == Threshold("ulp", factor=2.0, floor=4.0)
    assert table["p99_ulp"] == Threshold("ulp", factor=3.0, floor=1.0)  # the floor left out: the default's
    assert table["max_ulp"] == Threshold("ulp", factor=1.5, floor=8.0)
    assert table["soft.max_ulp"].off and table["all.mean_bits"].growth == 0.5
    assert table["mean_bits"].growth == 2.0 and table["nan"].growth == 0.005 and table["raised"].growth == 0
    assert table["unconverged"] == Threshold("rate", growth=0.03, keep_zero=True) and not table["nan"].keep_zero
    assert {k: parse_thresholds({k: t.spec})[k] for k, t in table.items()} == table  # spec parses back
    # the cascade: REGIME.STAT, else STAT, else the default; all.STAT only for the whole score
    assert threshold_for(table, "soft", "max_ulp").off and threshold_for(table, "hard", "max_ulp").floor == 8.0
    assert threshold_for(table, "all", "mean_bits").growth == 0.5 and threshold_for(table, "hard", "mean_bits").growth == 2
    assert threshold_for({}, "tiny", "inf") == DEFAULT_THRESHOLDS["inf"]


def test_thresholds_move_each_limit():
    old, new = score(median=0.15, mean_bits=1.2), score(median=11358.0, mean_bits=13.2)
    assert verdict(old, new, thresholds={"median_ulp": "1e5x", "mean_bits": "12bits"}).status == "pass"
    assert worse(verdict(old, new, thresholds={"median_ulp": "off"})) == [("all", "mean_bits")]
    assert verdict(score(), score(counts={"flushed_subnormal": 56}), thresholds={"flushed_subnormal": "1%"}).status == "pass"
    assert verdict(score(), score(counts={"flushed_subnormal": 57}), thresholds={"flushed_subnormal": "1%"}).failed
    result = check_run(run(score(max_ulp=10.0)), run(score(max_ulp=25.0)), max_ulp_regression="3x")
    assert result.passed and result.max_ulp_regression == 3.0


@pytest.mark.parametrize(
    "flag, expected",
    [
        ("max_ulp", "'max_ulp' is not [REGIME.]STATISTIC=VALUE; pass e.g. --threshold max_ulp=2x"),
        ("medain_ulp=2x", "--threshold medain_ulp=2x: 'medain_ulp' is not a statistic the gate compares; one of: max_ulp,"),
        ("max_ulp=fast", "--threshold max_ulp=fast: 'fast' is not a threshold for max_ulp; write a factor and/or a floor,"
                         " e.g. 2x, 4ulp or 2x,4ulp, or off"),
        ("soft.median_ulp=2", "--threshold soft.median_ulp=2: '2' is not a threshold for median_ulp"),
        ("max_ulp=0.5x", "the factor must be at least 1x"),
        ("max_ulp=2x,3x", "is not a threshold for max_ulp"),
        ("nan=5", "--threshold nan=5: '5' is not a threshold for nan; write a growth in percent of the examples, e.g. 0.5%"),
        ("nan=150%", "at most 100%"),
        ("nan=2%,keep", "or 2%,keep0 (and a count of 0 stays 0)"),
        ("mean_bits=lots", "'lots' is not a threshold for mean_bits; write a number of bits, e.g. 1bits"),
        ("so-ft.max_ulp=2x", "'so-ft' is not a regime name; write REGIME.STATISTIC"),
    ],
)
def test_bad_threshold_flags_are_one_line_usage_errors_before_any_work(flag, expected, tmp_path):
    with pytest.raises(UsageError) as info:
        resolve("gate", {"thresholds": [flag]})
    assert expected in str(info.value) and "\n" not in str(info.value)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["gate", "--baseline", str(tmp_path / "none.json"), "--threshold", flag])
    # exit 2 with the threshold's error, not the missing baseline's: checked before anything is read or run
    assert code == 2 and expected in err.getvalue() and err.getvalue().count("\n") == 1, err.getvalue()


def test_the_gate_help_shows_the_threshold_forms():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main(["gate", "--help"])  # a bare % in an option's help breaks argparse's formatting
    text = " ".join(out.getvalue().split())
    assert "--threshold [REGIME.]STATISTIC=VALUE" in text and "(e.g. 0.5%: the rate per example" in text


def test_thresholds_in_the_baseline_are_read_and_flags_replace_them_key_by_key(tmp_path):
    data = run(score()).to_json()
    entry = gate_entry({}, parse_thresholds(["median_ulp=1e5x", "mean_bits=12bits"]))
    assert entry["thresholds"] == {"median_ulp": "100000x,1ulp", "mean_bits": "12bits"}
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({**data, "gate": entry}))
    baseline = load_baseline(path)
    assert baseline.thresholds == parse_thresholds(["median_ulp=1e5x", "mean_bits=12bits"])
    options = resolve("gate", {"baseline": str(path), "thresholds": ["mean_bits=3bits"]})
    table = thresholds_in_effect(baseline, options)
    assert table["median_ulp"].factor == 1e5 and table["mean_bits"].growth == 3.0
    # the baseline's thresholds judge the run: every value worse passes with them, fails without
    old, new = score(median=0.15, mean_bits=1.2), score(median=11358.0, mean_bits=13.2)
    assert verdict(old, new, thresholds=baseline.thresholds).status == "pass"
    assert verdict(old, new, thresholds=table).status == "regression"
    # an entry of thresholds only (no replay corpus): a report of `lossfuzz run` with thresholds added
    assert read_gate_entry({"version": 1, "thresholds": {"max_ulp": "2x"}}, "b.json") is None
    # an older baseline, without thresholds: the defaults
    path.write_text(json.dumps({**data, "gate": gate_entry({})}))
    assert load_baseline(path).thresholds == {}


@pytest.mark.parametrize("entry, expected", [
    ({"thresholds": {"max_ulp": "fast"}}, "gate.thresholds max_ulp=fast: 'fast' is not a threshold for max_ulp"),
    ({"thresholds": ["max_ulp=2x"]}, "gate.thresholds is not an object"),
])
def test_a_bad_threshold_in_the_baseline_is_a_one_line_error_naming_it(tmp_path, entry, expected):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({**run(score()).to_json(), "gate": {"version": 1, "replayed": [], **entry}}))
    with pytest.raises(UsageError) as info:
        load_baseline(path)
    assert str(info.value).startswith(f"baseline {path}: ") and expected in str(info.value)


def test_max_ulp_regression_and_a_max_ulp_threshold_together_are_refused():
    options = resolve("gate", {"baseline": "b.json", "thresholds": ["max_ulp=2x"], "max_ulp_regression": "3x"})
    with pytest.raises(UsageError, match="pass one"):
        thresholds_in_effect(None, options)
    both = resolve("gate", {"baseline": "b.json", "fail_on_new_nonfinite": True, "allow_new_nonfinite": True})
    with pytest.raises(UsageError, match="contradict"):
        thresholds_in_effect(None, both)


# ------------------------------------------------------------------------------------------ per regime


def test_each_regime_is_compared_like_the_whole_score_with_its_own_thresholds():
    soft_case = case(ulp=2e3, replay=REPLAY.replace("0x1p-1", "0x1.8p-1"))
    old = score(regimes={"hard": regime(2.0), "soft": regime(40.0)})
    new = score(regimes={"hard": regime(2.0), "soft": regime(2e3, worst=soft_case)})
    check = verdict(old, new)  # the whole score is the same: only the soft regime got worse
    assert (check.status, check.failed) == ("regression", True)
    assert worse(check) == [("soft", "max_ulp"), ("soft", "p99_ulp")]
    assert check.reasons[0] == "soft: max ULP 40 → 2000 (limit 60: 1.5x, at least 1 ULP)"
    assert check.worse[0].case is soft_case  # the regime's worst case, with its replay command
    assert verdict(old, new, thresholds={"soft.max_ulp": "100x", "soft.p99_ulp": "100x"}).status == "pass"
    assert verdict(old, new, thresholds={"max_ulp": "100x", "p99_ulp": "100x"}).status == "pass"  # every regime
    assert not verdict(old, new, thresholds={"all.max_ulp": "100x", "all.p99_ulp": "100x"}).status == "pass"
    assert verdict(old, new, thresholds={"hard.max_ulp": "100x", "hard.p99_ulp": "100x"}).failed


def test_regime_counts_are_rates_and_new_nonfinite_in_a_regime_fails():
    old = score(regimes={"tiny": regime(examples=100)})
    flushed = score(regimes={"tiny": regime(examples=100, counts={"flushed_subnormal": 7})})
    assert worse(verdict(old, flushed)) == [("tiny", "flushed_subnormal")]
    nan = score(regimes={"tiny": regime(examples=100, counts={"nan": 1})})
    check = verdict(old, nan)
    assert (check.status, check.failed) == ("new_nonfinite", True)
    assert check.reasons == ("tiny: non-finite results on finite inputs 0 → 1 of 100 examples (limit 0: rate +2% of"
                             " examples; 0 stays 0)",)


def test_a_regime_gone_or_new_is_noted_and_a_threshold_of_no_regime_is_said():
    old = score(regimes={"soft": regime(40.0)})
    new = score(regimes={"hard": regime(1e9)})
    check = verdict(old, new)
    assert check.status == "pass" and any("regime soft: 1000 examples in the baseline, none now" in r for r in check.reasons)
    result = check_run(run(old), run(old), thresholds={"sfot.max_ulp": "2x"})
    assert result.notes == ("threshold sfot.max_ulp: no result has a regime 'sfot'; it was not used",)
    # a baseline written before regimes existed: only the whole score is compared
    assert verdict(score(), new).status == "pass"


def test_a_baseline_from_another_numpy_or_simd_target_is_noted_and_the_verdicts_stay_the_same():
    here = {"versions": {"lossfuzz": "0.2.0", "numpy": "2.4.6", "torch": None},
            "machine": {"numpy_simd": {"baseline": ["X86_V2"], "found": ["X86_V3"]}}}
    there = {"versions": {"lossfuzz": "0.1.0", "numpy": "2.4.5", "torch": "2.13.0"},
             "machine": {"numpy_simd": {"baseline": ["X86_V2"], "found": ["X86_V3", "X86_V4"]}}}
    old, new = score(max_ulp=3.3), score(max_ulp=2.9)
    result = check_run(replace(run(old), provenance=there), replace(run(new), provenance=here))
    assert result.notes == ("the baseline ran elsewhere (numpy 2.4.5 → 2.4.6; numpy SIMD X86_V2 X86_V3 X86_V4 →"
                            " X86_V2 X86_V3): a candidate's figures can change with these, not only with its code",)
    assert [c.status for c in result.checks] == [c.status for c in check_run(run(old), run(new)).checks]
    # the same machine and versions, or a report that does not say: nothing to note
    assert check_run(replace(run(old), provenance=here), replace(run(new), provenance=here)).notes == ()
    assert check_run(run(old), replace(run(new), provenance=here)).notes == ()


# ---------------------------------------------------------------------------------- what the reports say


def test_markdown_and_junit_name_each_statistic_regime_change_limit_threshold_and_replay():
    soft_case = case(ulp=2e3, replay=REPLAY.replace("0x1p-1", "0x1.8p-1"))
    old = score(median=0.15, regimes={"soft": regime(40.0)})
    new = score(median=11358.0, worst=(case(),), regimes={"soft": regime(2e3, worst=soft_case)})
    result = check_run(run(old), run(new), thresholds={"mean_bits": "2bits"})
    text = render_gate_markdown(result, "b.json")
    assert "| median ULP | all | 0.15 → 11358 | 1 | 1.5x, at least 1 ULP |" in text
    assert "| max ULP | soft | 40 → 2000 | 60 | 1.5x, at least 1 ULP |" in text
    assert f"```sh\n{REPLAY}\n```" in text and f"```sh\n{soft_case.replay}\n```" in text
    assert "set: mean\\_bits=2bits" in text  # escaped: _ is emphasis in Markdown
    root = ET.fromstring(render_junit(result).encode())
    failure = root.find("testsuite/testcase/failure").text
    assert f"median_ulp [all]: 0.15 → 11358, limit 1 (1.5x, at least 1 ULP); replay: {REPLAY}" in failure
    assert f"max_ulp [soft]: 40 → 2000, limit 60 (1.5x, at least 1 ULP); replay: {soft_case.replay}" in failure
    assert root.find("testsuite/properties/property[@name='threshold.mean_bits']").get("value") == "2bits"
