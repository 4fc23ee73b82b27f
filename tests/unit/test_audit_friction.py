"""Issue 15, part 2 (audit friction): what a new user auditing scikit-learn, PyTorch, optax or Keras ran
into, each fixed and tested with stand-ins (tests/fixtures/friction_losses.py), never the libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import harness
from harness.adapters import JAX_X64_HINT, function_candidate
from harness.auditing import PER_ELEMENT, AuditVerdict, failing, verdicts
from harness.campaign import EARLY_STOP_CALLS, Settings, score_candidate
from harness.cli import main
from harness.records import CandidateFailure
from harness.scoring import MAX_CHUNKS, TruthCache
from tests.fixtures import flawed_losses as flawed

FLAWED = "tests.fixtures.flawed_losses"
MOD = "tests.fixtures.friction_losses"
ROOT = Path(__file__).resolve().parents[2]
X = np.float32([-3.0, 0.0, 2.5])
Z = np.float32([1.0, 0.0, 1.0])


def one(result) -> AuditVerdict:
    found = verdicts(result.audit)
    assert len(found) == 1
    return found[0]


def score_of(result, name: str, dtype: str = "float32"):
    return next(s for s in result.scores if s.candidate == name and s.dtype == dtype)


# ------------------------------------------------------------------------------- scikit-learn's log_loss


def test_a_log_loss_that_rejects_soft_labels_and_returns_a_float_is_audited_on_hard_labels():
    spec = f"{MOD}:sklearn_like_log_loss"
    hard = harness.audit(spec, family="binary_ce", reduction="mean", labels="hard", examples=10, compare_with=(),
                         per_element=False)
    v = one(hard)
    # a Python float is its documented type: neither not_an_array nor a "silent cast" (wrong_dtype)
    assert v.findings == {} and v.failed_calls == 0
    score = score_of(hard, spec)
    assert score.examples > 10  # the hard-label catalogue (in chunks of 8) and the search
    assert score.max_ulp is not None and score.max_ulp <= 1  # float64 mean rounded once to float32
    assert hard.settings["labels"] == "hard"
    every = harness.audit(spec, family="binary_ce", reduction="mean", examples=10, compare_with=(), per_element=False)
    assert "Unknown label type" in " ".join(f.message for f in one(every).first_findings)  # soft labels reach it


def test_hard_and_soft_label_sets_select_the_examples():
    from harness.strategies import catalogue, check_label_set, has_labels

    base = catalogue("sigmoid_ce", "float32")
    hard = [e for e in base if has_labels(e, "hard")]
    soft = [e for e in base if has_labels(e, "soft")]
    assert len(hard) + len(soft) == len(base) and hard and soft
    assert all(float(e.labels) in (0.0, 1.0) for e in hard)
    assert all(0 < float(e.labels) < 1 for e in soft)
    with pytest.raises(ValueError, match="class indices, which are never soft"):
        check_label_set("sparse_softmax_ce", "soft")
    with pytest.raises(ValueError, match="labels='firm' is not one of: all, hard, soft"):
        check_label_set("sigmoid_ce", "firm")


def test_hard_labels_reach_the_hypothesis_search_too():
    seen: list[float] = []

    def records_labels(labels, logits):
        seen.extend(np.ravel(labels).tolist())
        return flawed.stable_ce(labels, logits)

    from harness.strategies import catalogue, has_labels

    result = harness.audit(records_labels, family="sigmoid_ce", labels="hard", examples=30, compare_with=(),
                           isolate=False, shrink=False)
    hard = sum(has_labels(e, "hard") for e in catalogue("sigmoid_ce", "float32"))
    assert hard < one(result).examples <= hard + 30  # the hard part of the catalogue, then the search
    assert seen and set(seen) <= {0.0, 1.0}


def test_a_python_float_is_rounded_once_to_the_dtype_and_without_reduction_is_a_reduced_shape():
    with function_candidate(f"{MOD}:sklearn_like_log_loss", "binary_ce", reduction="mean", isolate=False) as c:
        p, z = np.float32([0.25, 0.5]), np.float32([1.0, 0.0])
        got = c(p, z)
    assert got.shape == () and got.dtype == np.float32
    assert got == np.float32(np.mean([-np.log(0.25), -np.log(0.5)]))
    with function_candidate(f"{MOD}:sklearn_like_log_loss", "binary_ce", isolate=False) as c:
        with pytest.raises(CandidateFailure, match="pass --reduction mean or sum") as info:
            c(np.float32([0.5]), np.float32([1.0]))
    assert info.value.kind == "wrong_shape"


def test_numpy_0d_arrays_and_scalars_from_reduced_functions_are_scored():
    for name in ("mean_ce_0d", "mean_stable_ce"):
        result = harness.audit(f"{MOD}:{name}", family="sigmoid_ce", reduction="mean", examples=5, compare_with=(),
                               per_element=False)
        v = one(result)
        assert v.findings == {} and v.examples > 124


# ------------------------------------------------------------------------------------------------ --takes


def test_takes_with_roles_calls_positionally_in_the_order_given():
    with function_candidate(f"{MOD}:renamed_ce", "sigmoid_ce", takes="target_z=labels,score_x=inputs", isolate=False) as c:
        assert "f(z, x)" in c.convention
        np.testing.assert_array_equal(c(X, Z), flawed.stable_ce(Z, X))
    with function_candidate(f"{MOD}:reversed_ce", "sigmoid_ce", takes="score_x=inputs,target_z=labels", isolate=False) as c:
        assert "f(x, z)" in c.convention
        np.testing.assert_array_equal(c(X, Z), flawed.stable_ce(Z, X))


def test_takes_with_one_known_name_gives_the_other_the_other_role():
    # y_true is a label name, "b" is not: b is the prediction (the issue's --takes y_true,y_proba)
    with function_candidate(f"{FLAWED}:uninferable", "sigmoid_ce", takes="y_true,b", isolate=False) as c:
        np.testing.assert_array_equal(c(X, Z), flawed.stable_ce(Z, X))
    with function_candidate(f"{FLAWED}:uninferable", "sigmoid_ce", takes="x_score,y_true", isolate=False) as c:
        np.testing.assert_array_equal(c(X, Z), flawed.stable_ce(X, Z))  # called as f(x, z): a = logits


def test_of_two_prediction_names_the_required_one_is_taken():
    with function_candidate(f"{MOD}:log_loss_signature", "binary_ce", reduction="mean", isolate=False) as c:
        assert "y_true=z, y_proba=x" in c.convention
        assert c(np.float32([0.5]), np.float32([1.0])) == np.float32(np.log(2))


def test_two_optional_prediction_names_are_named_in_the_error():
    def two_names(y_true, y_proba=None, y_pred="deprecated"):
        return y_proba

    with pytest.raises(ValueError, match="y_proba and y_pred could each be the prediction; pass --takes"):
        function_candidate(two_names, "binary_ce", isolate=False)
    with function_candidate(two_names, "binary_ce", takes="y_true,y_proba", isolate=False) as c:
        assert c(np.float32([0.25]), np.float32([1.0])) == np.float32(0.25)


@pytest.mark.parametrize("takes, words", [
    ("target_z=lables,score_x=inputs", "'target_z=lables' is not NAME=labels or NAME=inputs"),
    ("target_z=labels,score_x=labels", "one name must be =labels and the other =inputs"),
    ("a,b", "cannot tell which names the labels"),
    ("a", "give exactly two names"),
])
def test_a_bad_takes_is_one_line_showing_the_expected_form(takes, words):
    with pytest.raises(ValueError) as info:
        function_candidate(f"{MOD}:renamed_ce", "sigmoid_ce", takes=takes, isolate=False)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert "target_z=labels,score_x=inputs" in message  # the expected form


# ------------------------------------------------------------------------------------------------ --fail-on


def test_fail_on_turns_a_verdict_into_exit_code_1(tmp_path, capsys):
    common = ["--family", "sigmoid_ce", "--dtypes", "float32", "--examples", "5", "--compare", "numpy_stable",
              "--no-progress"]
    bad = [f"{FLAWED}:log_sigmoid_ce", *common]
    assert main(["audit", *bad, "--out", str(tmp_path / "a")]) == 0  # default: never
    assert main(["audit", *bad, "--out", str(tmp_path / "b"), "--fail-on", "failed"]) == 0  # PROBLEMS, not FAILED
    assert main(["audit", *bad, "--out", str(tmp_path / "c"), "--fail-on", "problems"]) == 1
    assert f"--fail-on problems: {FLAWED}:log_sigmoid_ce is BAD" in capsys.readouterr().err
    nothing = [f"{FLAWED}:returns_short_list", *common, "--inputs", "probs"]
    assert main(["audit", *nothing, "--out", str(tmp_path / "d"), "--fail-on", "failed"]) == 1
    with pytest.raises(SystemExit) as info:  # argparse's one-line error
        main(["audit", *bad, "--out", str(tmp_path / "e"), "--fail-on", "sometimes"])
    assert info.value.code == 2 and "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_the_fail_on_levels():
    def level(name: str) -> AuditVerdict:
        return AuditVerdict.from_json({"target": name, "name": name, "family": "sigmoid_ce", "level": name, "summary": ""})

    found = [level("ok"), level("bad"), level("failed")]
    assert [v.level for v in failing(found, "problems")] == ["bad", "failed"]
    assert [v.level for v in failing(found, "failed")] == ["failed"]
    assert failing(found, "never") == []


# ------------------------------------------------------------------------------------------------ early stop


def test_a_systematic_failure_stops_after_the_probe_calls_and_leads_with_the_hint(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("LOSSFUZZ_CALL_LOG", str(log))
    result = harness.audit(f"{MOD}:counting_mean_ce", family="sigmoid_ce", dtypes=("float32", "float64"),
                           examples=10, compare_with=())
    calls = len(log.read_text().splitlines())
    # per dtype and quantity: the whole catalogue once, EARLY_STOP_CALLS probes, two sweep curves, one error
    # map (the (logit, label) grid in one call); not one per example (5628). The gradient is tried too (the
    # module holds a stand-in of a jax array type, so JAX's autodiff is tried, and fails on numpy code) and
    # stops early the same way.
    assert calls <= 2 * 2 * (1 + EARLY_STOP_CALLS + 2 + 1)
    assert all(s.stopped for s in result.scores if s.quantity == "gradient")
    v = one(result)
    assert len(v.systematic) == 2
    assert v.systematic[0].startswith("float32: it looks reduced: pass --reduction mean or sum (stopped early")
    assert v.level == "failed" and v.summary.split("; ")[0].endswith("FAILED (nothing could be scored)")
    assert v.summary.split("; ")[1] == "float32: it looks reduced: pass --reduction mean or sum"
    score = score_of(result, f"{MOD}:counting_mean_ce")
    assert score.counts["raised"] == EARLY_STOP_CALLS and score.stopped.startswith("it looks reduced")
    assert any(line.startswith("systematic failure (float64: it looks reduced") for line in v.lines())


def test_jax_without_x64_is_named_with_the_setting_that_fixes_it():
    result = harness.audit(f"{MOD}:jax_like_ce", family="sigmoid_ce", dtypes=("float32", "float64"), examples=5,
                           compare_with=())
    v = one(result)
    assert score_of(result, f"{MOD}:jax_like_ce", "float32").findings == ()  # float32 is fine
    wrong = score_of(result, f"{MOD}:jax_like_ce", "float64")
    assert wrong.findings and {f.kind for f in wrong.findings} == {"wrong_dtype"}
    assert wrong.stopped is not None and wrong.stopped.startswith(JAX_X64_HINT)
    assert 'jax.config.update("jax_enable_x64", True)' in v.summary
    assert 'jax_enable_x64' in v.systematic[0]


def test_the_jax_rule_reads_the_class_module_and_leaves_other_float32_results_to_the_dtype_check():
    from harness.adapters import jax_precision_failure
    from tests.fixtures.friction_losses import ArrayImpl

    values = np.float32([1.0])
    assert jax_precision_failure(ArrayImpl(values), np.float64).kind == "wrong_dtype"
    assert jax_precision_failure(ArrayImpl(values), np.float32) is None
    assert jax_precision_failure(values, np.float64) is None  # a numpy float32: the ordinary "silent cast"


# ------------------------------------------------------------------------------------------ several functions


def test_several_functions_in_one_audit_each_with_its_verdict(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["audit", f"{FLAWED}:log_sigmoid_ce", f"{MOD}:precise_ce", "--family", "sigmoid_ce",
                 "--dtypes", "float32", "--examples", "5", "--compare", "numpy_stable", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{FLAWED}:log_sigmoid_ce (sigmoid_ce, float32):")
    assert f"\n{MOD}:precise_ce (sigmoid_ce, float32):" in printed
    data = json.loads((out / "report.json").read_text())
    found = verdicts(data["audit"])
    assert [v.name for v in found] == [f"{FLAWED}:log_sigmoid_ce", f"{MOD}:precise_ce"]
    # precise_ce beats numpy_stable, but it is audited, not a built-in to compare with
    assert found[1].worst_ulp < found[0].best_builtin.max_ulp
    assert all(v.best_builtin.candidate == "numpy_stable" for v in found)
    assert found[0].non_finite_on_finite_inputs > 0 and found[1].non_finite_on_finite_inputs == 0
    assert {r["candidate"] for r in data["results"]} == {"numpy_stable", f"{FLAWED}:log_sigmoid_ce", f"{MOD}:precise_ce"}
    md = (out / "report.md").read_text()
    assert md.count("## Verdict: ") == 2
    html = (out / "report.html").read_text()
    assert html.count("<h2") >= 2 and html.count('id="verdict"') == 1


def test_several_functions_reject_one_name_and_duplicates(tmp_path, capsys):
    assert main(["audit", f"{FLAWED}:stable_ce", f"{FLAWED}:log_sigmoid_ce", "--family", "sigmoid_ce", "--name", "x",
                 "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--name names one function" in capsys.readouterr().err
    with pytest.raises(ValueError, match="is given twice"):
        harness.audit([f"{FLAWED}:stable_ce", f"{FLAWED}:stable_ce"], family="sigmoid_ce", compare_with=(), examples=1)


# ------------------------------------------------------------------------------------------ reduced functions


def test_a_reduced_function_is_scored_on_every_catalogue_chunk_and_per_element():
    spec = f"{FLAWED}:mean_ce"
    result = harness.audit(spec, family="sigmoid_ce", reduction="mean", examples=5, compare_with=())
    reduced = score_of(result, spec)
    view = score_of(result, spec + PER_ELEMENT)
    assert reduced.examples >= 704 > MAX_CHUNKS  # 5628 catalogue examples in chunks of 8, each scored
    assert view.reduction == "none" and view.examples > 5000  # one value per element
    v = one(result)
    assert v.per_element is not None and v.per_element.examples == view.examples
    assert "per element: worst" in v.summary
    if view.reproducer is not None:  # its replay calls the reduced function on that element
        assert view.reproducer.replay.endswith(f"--reduction mean --candidate {spec}")
    only = harness.audit(spec, family="sigmoid_ce", reduction="mean", examples=5, compare_with=(), per_element=False)
    assert [(s.candidate, s.quantity) for s in only.scores] == [(spec, "loss"), (spec, "gradient")]
    assert one(only).per_element is None


def test_the_per_element_view_finds_what_a_mean_hides():
    def log_sigmoid_mean(labels, logits):
        return np.mean(flawed.log_sigmoid_ce(labels, logits))

    result = harness.audit(log_sigmoid_mean, family="sigmoid_ce", reduction="mean", examples=5, compare_with=(),
                           isolate=False, name="lsm")
    v = one(result)
    assert v.per_element.non_finite_on_finite_inputs > 0
    assert v.level == "bad"


def test_a_per_element_view_needs_a_reduced_function():
    with pytest.raises(ValueError, match="pass reduction='mean' or 'sum'"):
        function_candidate(f"{FLAWED}:stable_ce", "sigmoid_ce", per_element=True)


# ------------------------------------------------------------------------------------------------ details


def test_hypothesis_writes_nothing_into_the_working_directory(tmp_path):
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_HOME": str(tmp_path / "keras")}
    env.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)
    run = subprocess.run([sys.executable, "-m", "harness.cli", "audit", f"{FLAWED}:stable_ce", "--family", "sigmoid_ce",
                          "--dtypes", "float32", "--examples", "5", "--compare", "numpy_stable", "--out", str(out),
                          "--no-progress"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert list(cwd.iterdir()) == []  # what Hypothesis writes (its release decides what) goes under --out


def test_a_lambda_says_its_replay_is_not_available_instead_of_a_broken_command():
    result = harness.audit(lambda labels, logits: flawed.log_sigmoid_ce(labels, logits), family="sigmoid_ce",
                           examples=5, compare_with=(), name="my_lambda")
    v = one(result)
    assert v.replay_note == "the function is a lambda/local; give it a module-level name"
    assert "--candidate" not in v.reproducer.replay
    lines = v.lines()
    assert any(line.startswith("  replay: not available (the function is a lambda/local; give it a module-level name)")
               for line in lines)


def test_a_function_of_a_script_is_not_replayable_by_name(monkeypatch):
    def script_loss(labels, logits):
        return flawed.log_sigmoid_ce(labels, logits)

    script_loss.__module__, script_loss.__qualname__ = "__main__", "script_loss"
    monkeypatch.setattr(sys.modules["__main__"], "script_loss", script_loss, raising=False)
    v = one(harness.audit(script_loss, family="sigmoid_ce", examples=5, compare_with=(), isolate=False))
    assert v.replay_note.startswith("the function is defined in a script (__main__)")
    assert "__main__" not in v.reproducer.replay


def test_the_plugin_replay_line_names_the_candidate():
    from harness.pytest_plugin import check

    with pytest.raises(AssertionError) as info:
        check(f"{FLAWED}:log_sigmoid_ce", family="sigmoid_ce", examples=5)
    assert f"--candidate {FLAWED}:log_sigmoid_ce" in str(info.value)
    with pytest.raises(AssertionError) as info:
        check(lambda labels, logits: flawed.log_sigmoid_ce(labels, logits), family="sigmoid_ce", examples=5)
    message = str(info.value)
    assert "replay: not available (the function is a lambda/local" in message and "--candidate" not in message


def test_the_shrunk_reproducer_is_never_worse_than_the_reported_worst(monkeypatch):
    # Shrinking explores examples the search never scored and can end on one worse than any of them (the
    # issue: a reproducer of 1.05e6 ULP under a worst of 5.02e5). A search that saw only x = 0 and shrank to
    # x = -20 (z = 0), for a function returning 1 everywhere: the reported worst must include x = -20.
    import harness.campaign as campaign
    from harness.scoring import observe
    from harness.search import SearchResult
    from harness.strategies import Example

    def ones(labels, logits):
        return np.ones_like(logits)

    cache = TruthCache("sigmoid_ce", "float32")
    seen = Example(np.float32(0.0), np.float32(0.0))
    shrunk = Example(np.float32(-20.0), np.float32(0.0))
    monkeypatch.setattr(campaign, "search", lambda fn, *a, **k: SearchResult(observe(fn, [seen], cache),
                                                                             observe(fn, [shrunk], cache), []))
    settings = Settings(examples=1, families=("sigmoid_ce",), candidates=(), dtypes=("float32",), speed_elements=0)
    with function_candidate(ones, "sigmoid_ce", isolate=False) as c:
        score, _ = score_candidate(c, "float32", [], cache, settings)
    assert score.reproducer is not None and score.reproducer.inputs == ("-0x1.4p+4",)
    assert score.reproducer.ulp > 1e15  # exact log1p(exp(-20)) = 2.06e-9, got 1
    assert score.max_ulp == score.reproducer.ulp and score.worst[0] == score.reproducer
    assert score.examples == 2

