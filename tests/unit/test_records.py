"""Records serialised from their fields: one policy for missing and unknown keys, a schema version, and the
files the previous version wrote (tests/fixtures/v1: a report, an audit report, a gate baseline) still read.

The fixtures were written by lossfuzz before records were serialised generically (commit 55424f6); reading
them and writing them again must give the same text, key for key.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.auditing import AuditVerdict, BestBuiltin, PerElementView, verdicts
from harness.gate import Check, GateResult, check_run, read_gate_entry
from harness.outcomes import Tally
from harness.records import SCHEMA_VERSION, Curve, Finding, RunResult, Score, Speed, WorstCase
from harness.reports.json_report import load_json, render_json

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "v1"


def _score(**changes) -> dict:
    data = json.loads((V1 / "report.json").read_text())["results"][0]
    return {**data, **changes}


# ------------------------------------------------------------------------------------ previous version


@pytest.mark.parametrize("name", ["report.json", "audit_report.json"])
def test_a_version_1_report_reads_as_loss_rows_and_writes_back_the_same_figures(name):
    text = (V1 / name).read_text()
    result = load_json(text, name)
    assert result.scores and result.scores[0].family
    assert {s.quantity for s in result.scores} == {"loss"}  # version 1 scored losses only
    written = json.loads(render_json(result))
    assert written["schema_version"] == SCHEMA_VERSION == 2
    assert all(row.pop("quantity") == "loss" for row in written["results"])
    old = json.loads(text)
    # same keys, same order, same numbers ("inf" stays a string), apart from the version
    assert {**written, "schema_version": 1} == old and list(written) == list(old)


def test_the_previous_versions_audit_block_reads_as_typed_records():
    result = load_json((V1 / "audit_report.json").read_text())
    (v,) = verdicts(result.audit)
    assert v.level == "bad" and v.non_finite == 28 and v.non_finite_on_finite_inputs == 28
    assert isinstance(v.best_builtin, BestBuiltin) and v.best_builtin.candidate == "numpy_stable"
    assert isinstance(v.best_builtin.max_ulp, float) and v.best_builtin.max_ulp > 1
    assert v.reproducer is not None and v.reproducer.exact == "inf"  # a string field stays a string
    assert v.to_json() == result.audit


def test_the_previous_versions_gate_baseline_reads_with_its_replay_corpus():
    text = (V1 / "baseline.json").read_text()
    result = load_json(text, "baseline.json")  # its "gate" entry is a key the record does not know: ignored
    assert [s.candidate for s in result.scores] == ["mine"] and result.scores[0].max_ulp > 1e6
    corpus = read_gate_entry(json.loads(text)["gate"], "baseline.json")
    assert list(corpus) == [("sigmoid_ce", "float32")] and len(corpus[("sigmoid_ce", "float32")]) == 1
    # the gate against it, with the same figures now: every check passes
    assert check_run(result, result).passed


# ------------------------------------------------------------------------------------ missing and unknown


def test_a_missing_key_without_a_default_is_one_line_naming_the_record_and_key():
    data = _score()
    del data["histogram"]
    with pytest.raises(ValueError, match=r"^Score record lacks the key 'histogram'; regenerate") as info:
        Score.from_json(data)
    assert "\n" not in str(info.value)


def test_a_missing_key_with_a_default_takes_the_default():
    data = _score()
    for key in ("labels", "findings", "reproducer", "source", "stopped"):
        data.pop(key, None)
    score = Score.from_json(data)
    assert (score.labels, score.findings, score.reproducer, score.source, score.stopped) == ("all", (), None, "", None)


def test_unknown_keys_are_ignored_and_derived_keys_are_not_read():
    data = _score(future_key={"x": 1}, nan=999)  # "nan" is a derived shortcut of counts.nan
    score = Score.from_json(data)
    assert score == Score.from_json(_score())
    assert score.counts["nan"] != 999
    assert Speed.from_json({"elements": 10, "candidate_ns_per_element": 2.0, "copy_ns_per_element": 1.0, "ratio": 7}).ratio == 2.0


def test_a_value_of_the_wrong_type_is_one_line_naming_the_key():
    with pytest.raises(ValueError, match=r"^Score.examples is '12', not a JSON integer"):
        Score.from_json(_score(examples="12"))
    with pytest.raises(ValueError, match=r"^WorstCase.ulp is 'big', not a number"):
        Score.from_json(_score(worst=[{**_score()["worst"][0], "ulp": "big"}]))
    with pytest.raises(ValueError, match=r"^Score.worst is 3, not an array"):
        Score.from_json(_score(worst=3))


def test_infinite_numbers_round_trip_as_the_string_inf():
    score = Score.from_json(_score(max_ulp="inf", mean_ulp=None))
    assert score.max_ulp == float("inf") and score.mean_ulp is None
    assert score.to_json()["max_ulp"] == "inf" and score.to_json()["mean_ulp"] is None


def test_the_schema_version_is_written_and_newer_versions_are_refused():
    data = json.loads((V1 / "report.json").read_text())
    assert json.loads(render_json(RunResult.from_json(data)))["schema_version"] == SCHEMA_VERSION
    for version in (SCHEMA_VERSION + 1, 0, None, "1"):
        with pytest.raises(ValueError, match=rf"schema_version={version!r} is not one this lossfuzz reads"):
            RunResult.from_json({**data, "schema_version": version})


def test_a_run_written_without_an_audit_block_has_none_and_an_audit_run_keeps_it():
    data = json.loads((V1 / "report.json").read_text())
    assert "audit" not in data and RunResult.from_json(data).audit is None
    assert "audit" not in RunResult.from_json(data).to_json()


# ------------------------------------------------------------------------------------ fields listed once


def test_the_audit_verdicts_json_keys_are_its_field_names_in_order():
    result = load_json((V1 / "audit_report.json").read_text())
    (v,) = verdicts(result.audit)
    shown = [f.name for f in dataclasses.fields(AuditVerdict)
             if not (f.metadata.get("omit_default") and getattr(v, f.name) == f.default)]
    assert list(v.to_json()) == shown and "stopped" not in shown  # (left out while default)
    assert AuditVerdict.from_json(v.to_json()) == v


def test_a_verdict_needs_only_its_identity_level_and_summary():
    v = AuditVerdict.from_json({"target": "m:f", "name": "f", "family": "sigmoid_ce", "level": "ok", "summary": "s"})
    assert (v.reduction, v.examples, v.best_builtin, v.per_element) == ("none", 0, None, None)
    with pytest.raises(ValueError, match="AuditVerdict record lacks the key 'level'"):
        AuditVerdict.from_json({"target": "m:f", "name": "f", "family": "sigmoid_ce", "summary": "s"})


@pytest.mark.parametrize("cls", [RunResult, Score, WorstCase, Finding, Speed, Curve, AuditVerdict, BestBuiltin,
                                 PerElementView, Check, GateResult, Tally])
def test_results_that_outlive_a_run_are_frozen_and_slotted(cls):
    params = cls.__dataclass_params__
    assert params.frozen and "__slots__" in vars(cls)
