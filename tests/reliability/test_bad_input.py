"""Bad input wherever a user types: one line saying what is wrong and how to fix it, exit code 2, no
traceback unless --debug."""

import subprocess
import sys

import pytest

CASES = {
    "unknown family": (["run", "--families", "hinge"], "family='hinge' is not one of"),
    "unknown dtype": (["run", "--dtypes", "float24"], "dtype='float24' is not one of: float16, bfloat16, float32, float64"),
    "unknown candidate": (["run", "--candidates", "pytorch"], "candidate='pytorch' is not one of"),
    "negative examples": (["run", "--examples", "-3"], "-3 is negative"),
    "unknown reduction": (["exact", "sigmoid_ce", "--logits", "1", "--labels", "0", "--reduction", "avg"], "reduction='avg' is not one of: none, sum, mean"),
    "label outside [0, 1]": (["exact", "sigmoid_ce", "--logits", "1,2", "--labels", "0.5,1.5"], "labels[1] = 1.5 is outside [0, 1]"),
    "class index out of range": (["exact", "sparse_softmax_ce", "--logits", "1,2,3", "--labels", "3"], "labels = 3 is outside [0, 3)"),
    # issue 11, item 12: these were "cannot reshape array of size 1 into shape (2,)" and an exit 0 with no values
    "too few class indices": (["exact", "sparse_softmax_ce", "--logits", "1,2;3,4", "--labels", "1"],
                              "--labels '1' has 1 class indices; sparse_softmax_ce needs one per row of --logits (2;"),
    "no values at all": (["exact", "sigmoid_ce", "--logits", ",", "--labels", ","], "logits ',': rows must be non-empty"),
    "mismatched shapes": (["exact", "sigmoid_ce", "--logits", "1,2", "--labels", "0"], "logits shape (2,) differs from labels shape (1,)"),
    "not a number": (["exact", "sigmoid_ce", "--logits", "one", "--labels", "0"], "logits 'one' is not a number"),
    "wrong input keyword": (["exact", "binary_ce", "--logits", "0.5", "--labels", "0"], "binary_ce takes --probs"),
    "unknown candidate of a family": (["exact", "binary_ce", "--probs", "0.5", "--labels", "0", "--candidate", "tf"], "candidate='tf' is not one of"),
    "a function that does not import": (["audit", "no_such_module:loss", "--family", "sigmoid_ce"], "does not import"),
    "a function that is not there": (["audit", "tests.fixtures.flawed_losses:no_such_loss", "--family", "sigmoid_ce"], "no_such_loss"),
    "malformed --kwargs": (["audit", "tests.fixtures.flawed_losses:keras_style", "--family", "sigmoid_ce", "--kwargs", "{from_logits: true"], "is not valid JSON"),
    "--kwargs not an object": (["audit", "tests.fixtures.flawed_losses:keras_style", "--family", "sigmoid_ce", "--kwargs", "[1]"], "is not a JSON object"),
    "an uninferable calling convention": (["audit", "tests.fixtures.flawed_losses:uninferable", "--family", "sigmoid_ce"], "pass --takes"),
    "a missing baseline": (["gate", "--baseline", "/nonexistent/baseline.json"], "baseline"),
    "non-writable reports folder": (["run", "--out", "/proc/lossfuzz-reports", "--families", "sigmoid_ce"], "pass --out DIR with a writable folder"),
}


def lossfuzz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_line_exit_code_2_and_no_traceback(case):
    args, expected = CASES[case]
    result = lossfuzz(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("lossfuzz: error: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = lossfuzz("--debug", "exact", "sigmoid_ce", "--logits", "1", "--labels", "2")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "labels[0] = 2.0 is outside [0, 1]" in result.stderr
