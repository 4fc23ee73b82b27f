"""`lossfuzz gate` end to end: baselines, exit codes 0/1/2, JUnit XML and reports (the gate's decisions on
hand-made scores are in tests/unit/test_gate_compare.py).

End to end on sigmoid_ce float32 with 20 Hypothesis examples and no timing: a user function through
--function (tests/gate_fixtures.py, always under --name mine so every variant is the same candidate key) and
the built-in numpy_stable with its registry entry swapped for a worse implementation.
"""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from harness import cli
from harness.commands.gate import load_baseline
from harness.reports.json_report import load_json

SMALL = ["--dtypes", "float32", "--examples", "20", "--no-progress"]
MINE = ["--family", "sigmoid_ce", "--name", "mine", *SMALL]


def gate(*argv: str) -> tuple[int, str, str]:
    """Run `lossfuzz gate ...` in process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["gate", *argv])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def accuracy(path: Path) -> list[dict]:
    rows = json.loads(path.read_text())["results"]
    for row in rows:
        row.pop("speed")
        row.setdefault("quantity", "loss")  # a version-1 row is a loss row
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


def test_the_baseline_written_by_the_gate_is_a_loadable_report_with_its_replay_corpus(mine):
    baseline = load_baseline(mine)
    loss, gradient = baseline.result.scores
    assert (loss.key, gradient.key) == (("sigmoid_ce", "mine", "float32", "loss"), ("sigmoid_ce", "mine", "float32", "gradient"))
    assert gradient.unsupported and "no autodiff" in gradient.failure  # plain numpy code: its gradient is not scored
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


def test_a_baseline_written_by_the_previous_version_gates_unchanged_code_with_identical_figures(tmp_path):
    """tests/fixtures/v1/baseline.json: written by `lossfuzz gate --update-baseline` before the records were
    serialised generically (tests.gate_fixtures:worse under --name mine)."""
    old = Path(__file__).resolve().parents[1] / "fixtures" / "v1" / "baseline.json"
    code, out, err = gate("--baseline", str(old), "--out", str(tmp_path), "--function", "tests.gate_fixtures:worse", *MINE)
    assert code == 0 and "none got worse" in out, out + err
    written = json.loads(old.read_text())["provenance"]["versions"]
    now = json.loads((tmp_path / "report.json").read_text())["provenance"]["versions"]
    # Identical figures are promised for the same code *and* library versions: the search draws its inputs
    # through Hypothesis and the exact values come from mpmath/numpy (`tox -e oldest` runs older ones).
    if all(now.get(k) == written.get(k) for k in ("hypothesis", "numpy", "mpmath", "gmpy2", "ml_dtypes")):
        # Keys added since (per-regime figures, relative errors) aside; the worst-case list now keeps each
        # regime's worst case (issue 10), so of the previous list it keeps the non-finite ones first, in order.
        (row,), (was,) = accuracy(tmp_path / "report.json"), accuracy(old)
        row.pop("regimes")
        assert row.pop("quantity") == was.pop("quantity", "loss") == "loss"  # version 1 scored losses only; so does its replay
        assert row["counts"].pop("zero_where_nonzero") == row["counts"].pop("wrong_sign") == 0  # gradient counts
        cases = [{k: v for k, v in c.items() if k != "rel_error"} for c in row.pop("worst")]
        row["reproducer"].pop("rel_error", None)
        listed = was.pop("worst")
        assert row == was
        non_finite = [c for c in cases if c["ulp"] is None]
        assert non_finite == listed[: len(non_finite)] and len(cases) == len(listed)
    else:
        assert [(r["family"], r["candidate"], r["dtype"]) for r in accuracy(tmp_path / "report.json")] == \
               [(r["family"], r["candidate"], r["dtype"]) for r in accuracy(old)]


def test_a_worse_function_under_the_same_name_fails_naming_family_candidate_and_dtype(mine, tmp_path):
    junit = tmp_path / "junit.xml"
    code, out, err = gate("--baseline", str(mine), "--out", str(tmp_path), "--junit", str(junit),
                          "--function", "tests.gate_fixtures:worse", *MINE)
    assert code == 1, out + err
    assert "regression: sigmoid_ce mine float32: max ULP 0.5 →" in out
    assert "replay: lossfuzz exact sigmoid_ce --logits=" in out
    assert "--candidate tests.gate_fixtures:worse" in out  # the replay calls the function by its spec
    (case,) = [c for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") == "mine[float32]"]
    assert case.get("classname") == "sigmoid_ce"
    failure = case.find("failure")
    assert failure is not None and failure.get("message").startswith("regression: max ULP 0.5 →")
    assert "lossfuzz exact sigmoid_ce" in failure.text
    report = (tmp_path / "report.md").read_text()
    # of 2 checks: the loss, and the gradient (not scored for plain numpy code, in the baseline and now)
    assert report.startswith("# lossfuzz gate: ❌ 1 of 2 checks got worse") and "# lossfuzz report" in report


def test_every_statistic_that_got_worse_is_named_with_its_limit_and_threshold(mine, tmp_path):
    code, out, _ = gate("--baseline", str(mine), "--out", str(tmp_path), "--function", "tests.gate_fixtures:worse", *MINE)
    assert code == 1
    lines = out.splitlines()
    # beside max ULP: p99 ULP, mean bits and the flushed subnormals of log(1 + e) got worse too
    assert any(line.startswith("    p99 ULP 0.495 → 1.37e+07 (limit 1: 1.5x, at least 1 ULP)") for line in lines), out
    assert any(line.startswith("    mean bits ") and line.endswith("(limit 1: +1 bit)") for line in lines), out
    assert any(line.startswith("    flushed subnormals 0 → ") for line in lines), out
    report = (tmp_path / "report.md").read_text()
    assert "| p99 ULP | all | 0.495 → 1.37e+07 | 1 | 1.5x, at least 1 ULP |" in report


# (flushed subnormals: 34 of the 178 examples of the `tiny` regime, compared per regime as a rate)
LOOSE = ("max_ulp=off", "p99_ulp=off", "mean_bits=5bits", "flushed_subnormal=50%")


def test_thresholds_from_flags_and_from_the_baseline_decide_the_verdict(mine, tmp_path):
    worse = ("--out", str(tmp_path), "--function", "tests.gate_fixtures:worse", *MINE)
    flags = [arg for t in LOOSE for arg in ("--threshold", t)]
    code, out, err = gate("--baseline", str(mine), *flags, *worse)
    assert code == 0 and "none got worse" in out and "set: max_ulp=off" in out, out + err
    # the same thresholds in the baseline's "gate" entry
    data = json.loads(mine.read_text())
    data["gate"]["thresholds"] = {t.split("=")[0]: t.split("=")[1] for t in LOOSE}
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps(data))
    code, out, err = gate("--baseline", str(loose), *worse)
    assert code == 0 and "none got worse" in out, out + err
    # a flag replaces the baseline's threshold of the same key, and only that one
    code, out, err = gate("--baseline", str(loose), "--threshold", "max_ulp=1.5x", *worse)
    assert code == 1 and "regression: sigmoid_ce mine float32: max ULP 0.5 → 1.68e+07 (limit 1" in out, out + err
    assert not any(line.startswith(("    p99 ULP", "    mean bits", "    flushed")) for line in out.splitlines()), out


def test_update_baseline_keeps_the_thresholds_set(mine, tmp_path):
    copy = tmp_path / "baseline.json"
    copy.write_text(mine.read_text())
    args = ("--baseline", str(copy), "--out", str(tmp_path), "--function", "tests.gate_fixtures:stable", *MINE)
    assert gate("--update-baseline", "--threshold", "median_ulp=3x", "--threshold", "soft.nan=2%", *args)[0] == 0
    assert json.loads(copy.read_text())["gate"]["thresholds"] == {"median_ulp": "3x,1ulp", "soft.nan": "2%"}
    assert gate("--update-baseline", "--threshold", "nan=0.5%", *args)[0] == 0  # flags add to the baseline's
    assert json.loads(copy.read_text())["gate"]["thresholds"] == {"median_ulp": "3x,1ulp", "soft.nan": "2%",
                                                                 "nan": "0.5%"}
    assert load_baseline(copy).thresholds["median_ulp"].factor == 3.0


def test_new_nonfinite_results_fail_by_default_and_warn_when_allowed(mine, tmp_path):
    args = ("--baseline", str(mine), "--out", str(tmp_path), "--function", "tests.gate_fixtures:nan_for_huge", *MINE)
    code, out, _ = gate(*args)
    assert code == 1 and "  new nonfinite: sigmoid_ce mine float32: non-finite results on finite inputs 0 →" in out
    code, out, _ = gate(*args, "--fail-on-new-nonfinite")  # the old flag: what is now the default
    assert code == 1 and "new nonfinite: sigmoid_ce mine float32" in out
    code, out, _ = gate(*args, "--allow-new-nonfinite")
    assert code == 0 and "warning: new nonfinite: sigmoid_ce mine float32: non-finite results on finite inputs 0 →" in out


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
        ("sigmoid_ce", "naive[float32]"), ("sigmoid_ce", "naive[float32, gradient]"),
        ("sigmoid_ce", "numpy_stable[float32]"), ("sigmoid_ce", "numpy_stable[float32, gradient]")]
    key = ("sigmoid_ce", "numpy_stable")
    monkeypatch.setitem(REGISTRY, key, replace(REGISTRY[key], target="tests.gate_fixtures:naive_builtin"))
    code, out, err = gate("--baseline", str(baseline), "--fail-on-new-nonfinite", *common)
    assert code == 1, out + err
    assert "sigmoid_ce numpy_stable float32" in out and "non-finite results on finite inputs 0 →" in out
    assert "sigmoid_ce naive float32" not in out  # unchanged: not listed
    failed = [t.get("name") for t in ET.parse(tmp_path / "j.xml").getroot().iter("testcase") if t.find("failure") is not None]
    # the loss row, and the gradient row if the swapped-in code's gradient differs too: numpy_stable's only
    assert failed[0] == "numpy_stable[float32]" and all(name.startswith("numpy_stable[") for name in failed)


def test_a_lossfuzz_run_report_serves_as_a_baseline(tmp_path):
    reports = tmp_path / "reports"
    with contextlib.redirect_stderr(io.StringIO()):
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


def test_update_baseline_replaces_an_unusable_baseline(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text('{"tool": "lossfuzz", "sche')
    code, _, err = gate("--update-baseline", "--baseline", str(path), "--out", str(tmp_path), "--families",
                          "binary_ce", "--candidates", "numpy_stable", *SMALL)
    assert code == 0 and "replacing an unusable baseline" in err
    assert [s.key for s in load_baseline(path).result.scores] == [("binary_ce", "numpy_stable", "float32", q)
                                                                  for q in ("loss", "gradient")]
