"""The pytest plugin (entry point pytest11 "lossfuzz"), run the way users run it: pytest in a subprocess
(pytester) on a user's test file, with the plugin found through its entry point."""

from __future__ import annotations

import subprocess
import sys

pytest_plugins = ["pytester"]

LOSSES = '''
import sys

import numpy as np
import pytest


def stable_loss(labels, logits):
    """The stable form in float64, rounded once: within 1 ULP in float32."""
    x = np.asarray(logits)
    w, z = x.astype(np.float64), np.asarray(labels, dtype=np.float64)
    with np.errstate(all="ignore"):
        return (np.maximum(w, 0) - w * z + np.log1p(np.exp(-np.abs(w)))).astype(x.dtype)


def naive_loss(labels, logits):
    """The textbook formula: exp(-x) overflows, nan and inf on finite inputs."""
    x = np.asarray(logits)
    z = np.asarray(labels)
    with np.errstate(all="ignore"):
        p = 1 / (1 + np.exp(-x))
        return (-(z * np.log(p) + (1 - z) * np.log(1 - p))).astype(x.dtype)
'''


def run(pytester, body: str, *args: str):
    pytester.makepyfile(test_user=LOSSES + body)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", *args)


def test_the_fixture_passes_a_stable_loss_and_fails_a_naive_one_with_the_reproducer(pytester):
    result = run(pytester, '''
def test_stable(lossfuzz):
    score = lossfuzz.check(stable_loss, family="sigmoid_ce", dtype="float32", max_ulp=4, examples=15)
    assert score.max_ulp <= 1 and score.examples > 1000


def test_naive(lossfuzz):
    lossfuzz.check(naive_loss, family="sigmoid_ce", dtype="float32", max_ulp=4, examples=15)


def test_no_heavy_imports():
    assert not {"tensorflow", "keras", "matplotlib"} & set(sys.modules)
''')
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "lossfuzz: naive_loss on sigmoid_ce float32 breaks its bound (max_ulp=4, allow_nonfinite=False)" in out
    assert "non-finite results on finite inputs" in out and "max ULP error" in out
    result.stdout.fnmatch_lines([
        "*shrunk reproducer:*",
        "*logits  -0x1.fffffep+127*",  # the input in hex
        "*labels  0x0p+0*",
        "*got     nan*",
        "*exact   *(correctly rounded 0x0p+0)*",
        "*error   no ULP number: nan where the exact value is finite*",
        "*replay: lossfuzz exact sigmoid_ce --logits=-0x1.fffffep+127 --labels=0x0p+0 --dtype float32 --candidate test_user:naive_loss",
    ])


def test_the_marker_sets_the_bound_and_with_fn_checks_before_the_test(pytester):
    result = run(pytester, '''
@pytest.mark.lossfuzz(family="sigmoid_ce", dtype="float32", max_ulp=4, examples=15)
def test_marker_defaults(lossfuzz):
    lossfuzz.check(stable_loss)


@pytest.mark.lossfuzz(fn=naive_loss, family="sigmoid_ce", max_ulp=1e9, allow_nonfinite=True, examples=15)
def test_marker_fn_loose_bound_passes():
    pass


@pytest.mark.lossfuzz(fn=naive_loss, family="sigmoid_ce", max_ulp=4, examples=15)
def test_marker_fn_fails():
    raise RuntimeError("the body does not run when the bound fails")
''')
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "FAILED test_user.py::test_marker_fn_fails - AssertionError" in out
    assert "lossfuzz: naive_loss on sigmoid_ce float32 breaks its bound (max_ulp=4" in out
    assert "the body does not run" not in out
    assert "ULP" in out and "0x" in out


def test_options_come_from_the_shared_run_options(pytester):
    result = run(pytester, '''
def test_options(request, lossfuzz):
    assert request.config.getoption("lossfuzz_examples") == 7
    assert request.config.getoption("lossfuzz_seed") == 3
    score = lossfuzz.check(stable_loss, family="sigmoid_ce")
    assert score.max_ulp <= 1
''', "--lossfuzz-examples", "7", "--lossfuzz-seed", "3")
    result.assert_outcomes(passed=1)
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--lossfuzz-examples", "-3")
    assert bad.ret != 0 and "-3 is negative" in bad.stderr.str()


def test_the_ini_file_sets_the_defaults_and_the_command_line_overrides_it(pytester):
    pytester.makeini("[pytest]\nlossfuzz_examples = 7\nlossfuzz_seed = 3\n")
    result = run(pytester, '''
def test_resolved(lossfuzz, monkeypatch):
    import harness.pytest_plugin as plugin

    monkeypatch.setattr(plugin, "check_settings", lambda fn, chosen: chosen)
    chosen = lossfuzz.check(stable_loss, family="sigmoid_ce")
    print("RESOLVED", chosen.examples, chosen.seed, chosen.max_ulp)
''', "-s", "--lossfuzz-seed", "11")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*RESOLVED 7 11 4.0*"])  # examples from the ini file, seed from the command line


def test_importing_the_plugin_does_not_import_tensorflow_keras_or_matplotlib():
    code = ("import sys, harness.pytest_plugin, harness.gate, harness.commands.gate, harness.junit;"
            "heavy = {'tensorflow', 'keras', 'matplotlib'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_plugin_is_registered_through_the_pytest11_entry_point():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "lossfuzz"]
    assert ep.value == "harness.pytest_plugin"
