"""`lossfuzz audit` and harness.audit: deliberately flawed functions (tests/fixtures/flawed_losses.py) are
audited and each flaw is found; hangs are cut, crashes reported, the run completes, no worker is left."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import numpy as np
import pytest

import harness
from harness.adapters import function_candidate
from harness.auditing import AuditVerdict, audit, describe_region
from harness.cli import main
from harness.isolation import Worker
from harness.records import CandidateFailure
from tests.conftest import child_processes
from tests.fixtures import flawed_losses as flawed

MOD = "tests.fixtures.flawed_losses"
FAST = dict(examples=10, dtypes=("float32",), compare_with=("numpy_stable",))


@pytest.fixture(autouse=True)
def no_worker_left_behind():
    # stricter than the suite-wide guard: an audit's workers must also be reaped (no zombie left)
    before = set(child_processes())
    yield
    assert multiprocessing.active_children() == []
    left = [(pid, state) for pid, state in child_processes().items() if pid not in before]
    assert left == [], f"worker processes left behind: {left}"


def verdict(result) -> AuditVerdict:
    assert result.audit is not None
    return AuditVerdict.from_json(result.audit)


def mine(result, name: str):
    return [s for s in result.scores if s.candidate == name]


X = np.float32([-3.0, 0.0, 2.5])
Z = np.float32([1.0, 0.25, 0.0])


# ------------------------------------------------------------------------------------------- the flaws


def test_log_of_sigmoid_is_found_with_a_shrunk_reproducer_and_where_it_breaks():
    result = audit(f"{MOD}:log_sigmoid_ce", family="sigmoid_ce", **FAST)
    v = verdict(result)
    assert v.level == "bad"
    assert v.non_finite_on_finite_inputs > 0
    assert v.worst_ulp is not None and v.worst_ulp > 1e5
    assert v.reproducer is not None and v.reproducer.outcome in ("nan", "inf")
    assert v.reproducer.replay.startswith("lossfuzz exact sigmoid_ce --logits=")
    assert f"--candidate {MOD}:log_sigmoid_ce" in v.reproducer.replay
    assert any("non-finite" in s for s in v.sweep)  # e.g. logit from -1e+04 to -91.6 (z = 1): non-finite
    assert any(s.startswith("logit from -1e+04") and s.endswith("non-finite") for s in v.sweep)
    assert v.best_builtin is not None and v.best_builtin.candidate == "numpy_stable"
    assert "PROBLEMS" in v.summary and "best built-in: numpy_stable" in v.summary
    assert "numpy_stable" in {s.candidate for s in result.scores}


def test_clipping_with_eps_1e_15_in_float32_is_found():
    result = audit(f"{MOD}:clipped_bce", family="binary_ce", **FAST)
    v = verdict(result)
    assert v.level == "bad"
    # 1 - 1e-15 rounds to 1 in float32 (no upper clip: nan/inf), and the floor 1e-15 caps -log(p) for p < 1e-15
    assert v.non_finite_on_finite_inputs > 0
    assert v.worst_ulp > 1e6
    assert any(s.startswith("probability from 1e-30") for s in v.sweep)
    assert v.best_builtin.candidate == "numpy_stable" and v.best_builtin.max_ulp <= 4


def test_a_function_that_sleeps_forever_is_cut_by_the_timeout_and_the_audit_completes():
    result = audit(f"{MOD}:sleeps_forever", family="sigmoid_ce", timeout=0.5, **{**FAST, "examples": 5})
    v = verdict(result)
    assert not result.partial
    assert v.level == "failed" and v.findings.get("timeout", 0) > 0
    first = v.first_findings[0]
    assert first.kind == "timeout" and "0.5 s" in first.message and first.inputs and first.labels
    # thousands of examples, but consecutive hangs trip the worker (most calls are refused at once, not waited
    # for) and 20 probes that all time out stop the dtype there: a systematic failure
    assert any("not run" in f.message for f in mine(result, f"{MOD}:sleeps_forever")[0].findings)
    assert mine(result, f"{MOD}:sleeps_forever")[0].counts["raised"] == 20
    assert len(v.systematic) == 1 and "failed alike (timeout)" in v.systematic[0]


def test_an_abort_is_a_crash_finding_with_the_signal():
    result = audit(f"{MOD}:aborts", family="sigmoid_ce", **FAST)
    v = verdict(result)
    assert v.findings.get("crashed", 0) > 0
    assert "SIGABRT" in v.first_findings[0].message
    assert not result.partial


def test_a_list_of_the_wrong_length_is_not_an_array():
    v = verdict(audit(f"{MOD}:returns_short_list", family="binary_ce", inputs="probs", **FAST))  # short catalogue
    assert set(v.findings) == {"not_an_array"}
    assert "list" in v.first_findings[0].message


def test_float64_for_float32_inputs_is_a_wrong_dtype():
    v = verdict(audit(f"{MOD}:returns_float64", family="binary_ce", inputs="probs", **FAST))
    assert set(v.findings) == {"wrong_dtype"}
    assert "float64" in v.first_findings[0].message


def test_raising_on_some_inputs_is_a_finding_and_the_other_inputs_are_still_scored():
    result = audit(f"{MOD}:raises_on_negative", family="sigmoid_ce", **FAST)
    v = verdict(result)
    assert v.findings.get("raised", 0) > 0
    assert "ValueError: negative logits are not supported" in v.first_findings[0].message
    assert all(float.fromhex(x) < 0 for f in v.first_findings for x in f.inputs if x not in ("nan", "inf", "-inf"))
    score = mine(result, f"{MOD}:raises_on_negative")[0]
    assert score.examples > 1000  # the non-negative logits were scored
    assert score.max_ulp is not None


def test_running_out_of_memory_under_the_limit_is_a_finding():
    def allocates_a_gib(labels, logits):
        big = np.ones(2**30, dtype=np.uint8)
        return big[: logits.size].astype(logits.dtype)

    with function_candidate(allocates_a_gib, "sigmoid_ce", memory_mb=256) as c:
        with pytest.raises(CandidateFailure) as info:
            c(X, Z)
    assert info.value.kind == "out_of_memory" and "256 MiB" in str(info.value)


def test_a_reduced_result_without_reduction_says_which_flag_to_pass():
    with function_candidate(f"{MOD}:mean_ce", "sigmoid_ce") as c:
        with pytest.raises(CandidateFailure, match="pass --reduction mean or sum") as info:
            c(X, Z)
    assert info.value.kind == "wrong_shape"
    with function_candidate(f"{MOD}:mean_ce", "sigmoid_ce", reduction="mean") as c:
        assert c(X, Z).shape == ()


# ----------------------------------------------------------------------------------------- conventions


def test_torch_style_input_target_is_inferred():
    with function_candidate(f"{MOD}:torch_style", "sigmoid_ce") as c:
        assert "input=x" in c.convention and "target=z" in c.convention
        np.testing.assert_array_equal(c(X, Z), flawed.stable_ce(Z, X))


def test_keras_style_y_true_y_pred_with_kwargs():
    with function_candidate(f"{MOD}:keras_style", "sigmoid_ce", kwargs={"from_logits": True}) as c:
        assert "y_true=z, y_pred=x" in c.convention
        np.testing.assert_array_equal(c(X, Z), flawed.stable_ce(Z, X))
    with function_candidate(f"{MOD}:keras_style", "sigmoid_ce") as c:  # without the kwargs it raises
        with pytest.raises(CandidateFailure, match="from_logits=True") as info:
            c(X, Z)
    assert info.value.kind == "raised"


def test_a_loss_object_made_from_its_class():
    with function_candidate(f"{MOD}:LossObject()", "sigmoid_ce") as c:
        assert c.name == f"{MOD}:LossObject()"
        np.testing.assert_array_equal(c(X, Z), flawed.stable_ce(Z, X))


def test_a_function_of_probabilities_gets_sigmoid_of_the_logits():
    with function_candidate(f"{MOD}:clipped_bce", "sigmoid_ce", inputs="probs", isolate=False) as c:
        assert "sigmoid(logits)" in c.convention
        got = c(np.float32([0.0]), np.float32([1.0]))
        assert got.dtype == np.float32 and abs(float(got[0]) - np.log(2)) < 1e-6
    with pytest.raises(ValueError, match="binary_ce gives the function probabilities"):
        function_candidate(f"{MOD}:stable_ce", "binary_ce", inputs="logits")


def test_an_uninferable_signature_is_a_one_line_error_naming_the_flag():
    with pytest.raises(ValueError) as info:
        function_candidate(f"{MOD}:uninferable", "sigmoid_ce")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot tell how to call {MOD}:uninferable(a, b)")
    assert "--takes labels,logits" in message
    with function_candidate(f"{MOD}:uninferable", "sigmoid_ce", takes="labels,logits", isolate=False) as c:
        np.testing.assert_array_equal(c(X, Z), flawed.stable_ce(Z, X))
    with pytest.raises(ValueError, match="cannot tell which names the labels"):
        function_candidate(f"{MOD}:uninferable", "sigmoid_ce", takes="a,b")


@pytest.mark.parametrize(
    "spec, words",
    [
        ("no_such_package.losses:f", "does not import: No module named 'no_such_package'"),
        (f"{MOD}:no_such_function", "has no attribute 'no_such_function'"),
        ("numpy:pi", "not callable"),
        ("numpy.log", "is not of the form 'package.module:function'"),
        (f"{MOD}:LossObject", f"pass '{MOD}:LossObject()'"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, words):
    with pytest.raises(ValueError) as info:
        function_candidate(spec, "sigmoid_ce")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_the_python_api_takes_a_callable_even_a_lambda():
    assert callable(harness.audit)  # the function (its module is harness.auditing)
    result = harness.audit(lambda labels, logits: flawed.stable_ce(labels, logits), family="sigmoid_ce",
                           name="my_lambda", examples=5, compare_with=())
    v = verdict(result)
    assert v.name == "my_lambda" and v.examples > 1000
    assert [(s.candidate, s.quantity) for s in result.scores] == [("my_lambda", "loss"), ("my_lambda", "gradient")]
    assert v.best_builtin is None
    score = result.scores[0]
    assert all("--candidate" not in w.replay for w in score.worst)  # a lambda cannot be imported again


@pytest.mark.tf
def test_a_tensorflow_function_gets_tensors_and_returns_numpy():
    with function_candidate("tensorflow:nn.sigmoid_cross_entropy_with_logits", "sigmoid_ce", isolate=False) as c:
        assert "labels=z, logits=x" in c.convention and "tensorflow" in c.convention
        got = c(X, Z)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_allclose(got, flawed.stable_ce(Z, X), rtol=1e-6)


# ----------------------------------------------------------------------------------------- isolation


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_worker_survives_crashes_and_hangs_and_leaves_nothing(method):
    worker = Worker(flawed.aborts, timeout=5, method=method, trip_after=0)
    with pytest.raises(CandidateFailure, match="SIGABRT") as info:
        worker(X, Z)
    assert info.value.kind == "crashed"
    worker.call = flawed.sleeps_forever  # the next call starts a fresh worker
    worker.timeout = 0.3
    with pytest.raises(CandidateFailure) as info:
        worker(X, Z)
    assert info.value.kind == "timeout"
    worker.call, worker.timeout = flawed.stable_ce, 30
    np.testing.assert_array_equal(worker(Z, X), flawed.stable_ce(Z, X))
    pid = worker.pid
    assert worker.starts == 3
    worker.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_consecutive_timeouts_trip_the_worker_and_a_probe_resets_it():
    calls = {"n": 0}

    def hangs_then_works(labels, logits):
        if logits[0] < 0:
            time.sleep(60)
        return flawed.stable_ce(labels, logits)

    worker = Worker(hangs_then_works, timeout=0.2, method="fork", trip_after=2)
    negative, positive = np.float32([-1.0]), np.float32([1.0])
    for _ in range(2):
        with pytest.raises(CandidateFailure, match="timed out"):
            worker(Z[:1], negative)
    started = time.perf_counter()
    with pytest.raises(CandidateFailure, match="not run") as info:
        worker(Z[:1], positive)  # refused at once
    assert info.value.kind == "timeout" and time.perf_counter() - started < 0.1
    while True:  # refused until the probe, which answers and resets it
        calls["n"] += 1
        try:
            worker(Z[:1], positive)
            break
        except CandidateFailure as exc:
            assert "not run" in str(exc)
    assert calls["n"] <= 11
    assert worker(Z[:1], positive).shape == (1,)
    worker.close()


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_audit_writes_the_three_reports_with_the_verdict_and_exits_0(tmp_path, capsys):
    out = tmp_path / "audit"
    code = main(["audit", f"{MOD}:keras_style", "--family", "sigmoid_ce", "--kwargs", '{"from_logits": true}',
                 "--dtypes", "float32", "--examples", "10", "--compare", "numpy_stable", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{MOD}:keras_style (sigmoid_ce, float32):")
    assert "best built-in for comparison: numpy_stable" in printed
    data = json.loads((out / "report.json").read_text())
    assert data["audit"]["target"] == f"{MOD}:keras_style"
    assert data["audit"]["convention"].startswith("called as f(y_true=z, y_pred=x, **kwargs)")
    assert {r["candidate"] for r in data["results"]} == {"numpy_stable", f"{MOD}:keras_style"}
    replay = data["audit"]["reproducer"]["replay"]
    assert replay.endswith(f"--candidate {MOD}:keras_style --kwargs '{{\"from_logits\":true}}'")
    md = (out / "report.md").read_text()
    assert md.startswith("# lossfuzz audit\n\n## Verdict: ❌ tests.fixtures.flawed_losses:keras_style")
    html = (out / "report.html").read_text()
    assert '<h2 id="verdict">' in html and html.index('id="verdict"') < html.index('class="prov"')
    # the replay command of the report runs the function again
    code = main(["exact", *__import__("shlex").split(replay)[2:]])
    assert code == 0
    assert f"{MOD}:keras_style" in capsys.readouterr().out


def test_cli_audit_bad_spec_exits_2_with_one_line(tmp_path, capsys):
    code = main(["audit", "no_such_package.losses:f", "--family", "sigmoid_ce", "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("lossfuzz: error: 'no_such_package.losses:f' does not import")
    assert main(["audit", f"{MOD}:uninferable", "--family", "sigmoid_ce", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "pass --takes labels,logits" in capsys.readouterr().err


def test_cli_audit_needs_one_family(tmp_path, capsys):
    assert main(["audit", f"{MOD}:stable_ce", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "pass --family" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- the verdict


def test_regions_are_decades_and_label_kinds():
    assert describe_region("sigmoid_ce", ["-0x1.4p+5"], ["0x1p+0"]) == "logit between -1e2 and -1e1, label 1"
    assert describe_region("sigmoid_ce", ["inf"], ["0x1.fffcp-1"]) == "logit = +inf, soft label near 1"
    assert describe_region("binary_ce", ["0x1p-60"], ["0x0p+0"]) == "probability between 1e-19 and 1e-18, label 0"
    assert describe_region("sparse_softmax_ce", ["0x1p+10", "0x0p+0"], ["1"]) == "rows with largest logit between 1e3 and 1e4"


def test_the_verdict_round_trips_through_the_report_json():
    from harness.reports.json_report import load_json, render_json

    result = audit(f"{MOD}:clipped_bce", family="binary_ce", **FAST)
    back = load_json(render_json(result))
    assert back.audit == json.loads(json.dumps(result.audit))
    assert AuditVerdict.from_json(back.audit) == verdict(result)
