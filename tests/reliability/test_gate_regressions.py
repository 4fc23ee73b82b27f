"""The gate sees every regression (issue 11, item 8): before, only max ULP was compared, so a function worse
on every value but with the same max passed with "none got worse", and new nan results on finite inputs
passed with a warning. End to end through `lossfuzz gate` on sigmoid_ce float32 (20 Hypothesis examples)."""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import cli

ARGS = ["--family", "sigmoid_ce", "--name", "mine", "--dtypes", "float32", "--examples", "20", "--no-progress"]


def gate(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["gate", *argv, *ARGS])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """A baseline of ``worse``: max ULP 1.68e7 already (tiny losses returned as 0), median 0.19 ULP."""
    folder = tmp_path_factory.mktemp("gate")
    code, _ = gate("--update-baseline", "--baseline", str(folder / "b.json"), "--out", str(folder),
                   "--function", "tests.gate_fixtures:worse")
    assert code == 0
    return folder / "b.json"


def test_every_value_worse_with_the_same_max_fails_naming_median_and_mean_bits(baseline, tmp_path):
    before = json.loads(baseline.read_text())["results"][0]
    code, out = gate("--baseline", str(baseline), "--out", str(tmp_path), "--junit", str(tmp_path / "j.xml"),
                     "--function", "tests.gate_fixtures:every_value_worse")
    after = json.loads((tmp_path / "report.json").read_text())["results"][0]
    assert after["max_ulp"] == pytest.approx(before["max_ulp"], rel=1e-12)  # the one figure compared before
    assert after["median_ulp"] > 1000 * before["median_ulp"] and after["mean_bits"] > before["mean_bits"] + 5
    assert code == 1, out
    assert "regression: sigmoid_ce mine float32: median ULP " in out
    assert any(line.startswith("    mean bits ") and "(limit " in line for line in out.splitlines()), out
    assert "max ULP" not in out.split("regression:")[1].split("replay:")[0]  # the max is not blamed
    assert "nonfinite" not in out and "non-finite" not in out  # nothing else got worse
    failure = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase/failure")
    assert "median_ulp [all]: " in failure.text and "mean_bits [all]: " in failure.text


def test_new_nan_results_on_finite_inputs_fail_by_default(baseline, tmp_path):
    code, out = gate("--baseline", str(baseline), "--out", str(tmp_path), "--function", "tests.gate_fixtures:nan_for_huge")
    assert code == 1 and "new nonfinite: sigmoid_ce mine float32: non-finite results on finite inputs 0 → " in out
    assert "replay: lossfuzz exact sigmoid_ce --logits=" in out
