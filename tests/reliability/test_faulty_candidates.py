"""Faulty candidates side by side with a good one: each fault is a finding with its input, the good
candidate's figures are untouched, and the run completes."""

import ctypes

import numpy as np
import pytest

from harness.adapters import function_candidate
from harness.campaign import Settings, run_campaign

# Runs workers that hang (sleeps_forever, timeout 0.5 s): a worker ignoring its timeout fails here, not hangs.
pytestmark = pytest.mark.timeout(300)

SETTINGS = Settings(families=("sigmoid_ce",), candidates=("numpy_stable",), dtypes=("float32",), examples=10,
                    speed_elements=0, shrink=False)


def segfaults(labels, logits):
    if np.any(logits < -1e30):
        ctypes.string_at(0)  # reads address 0: SIGSEGV in the worker
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def returns_none(labels, logits):
    return None


def wrong_shape(labels, logits):
    return np.zeros(logits.shape + (2,), logits.dtype)


def raises(labels, logits):
    raise RuntimeError("<b>boom</b>")


FAULTS = {
    "tests.fixtures.flawed_losses:sleeps_forever": "timeout",
    "tests.fixtures.flawed_losses:aborts": "crashed",
    "tests.fixtures.flawed_losses:returns_short_list": "not_an_array",
    "tests.fixtures.flawed_losses:returns_float64": "wrong_dtype",
    "tests.fixtures.flawed_losses:allocates_too_much": "out_of_memory",
    "tests.reliability.test_faulty_candidates:segfaults": "crashed",
    "tests.reliability.test_faulty_candidates:returns_none": "not_an_array",
    "tests.reliability.test_faulty_candidates:wrong_shape": "wrong_shape",
    "tests.reliability.test_faulty_candidates:raises": "raised",
}


@pytest.fixture(scope="module")
def runs():
    faulty = [function_candidate(spec, "sigmoid_ce", takes="labels,logits", name=spec.split(":")[1], timeout=0.5,
                                 memory_mb=256) for spec in FAULTS]
    try:
        together, _ = run_campaign(SETTINGS, extra=faulty)
    finally:
        for c in faulty:
            c.close()
    alone, _ = run_campaign(SETTINGS)
    return together, alone


@pytest.mark.parametrize("spec", list(FAULTS))
def test_each_fault_is_a_finding_with_its_input(runs, spec):
    together, _ = runs
    score = together.score("sigmoid_ce", spec.split(":")[1], "float32")
    kinds = {f.kind for f in score.findings}
    assert FAULTS[spec] in kinds, (kinds, score.failure)
    assert all(f.inputs and f.labels for f in score.findings)
    assert score.counts["raised"] >= len(score.findings) > 0


def test_the_good_candidate_is_scored_exactly_as_without_the_faulty_ones(runs):
    together, alone = runs
    a = together.score("sigmoid_ce", "numpy_stable", "float32").to_json()
    b = alone.score("sigmoid_ce", "numpy_stable", "float32").to_json()
    a.pop("speed"), b.pop("speed")
    assert a == b
    assert not together.partial


def test_a_candidate_that_fails_only_sometimes_keeps_its_other_results(runs):
    together, _ = runs
    score = together.score("sigmoid_ce", "segfaults", "float32")
    stable = together.score("sigmoid_ce", "numpy_stable", "float32")
    # the same formula as numpy_stable, crashing only where a logit is below -1e30
    crashed = [f for f in score.findings if f.kind == "crashed"]
    assert crashed and all(float.fromhex(x) < -1e30 for f in crashed for x in f.inputs)
    assert score.examples + score.counts["raised"] == stable.examples
    assert score.max_ulp == stable.max_ulp
