"""The gradient defects of the numpy formulas, as the default campaign's gradient rows report them.

Each numpy candidate's gradient is the derivative of its formula as written (harness/candidates/_numpy.py):
what autodiff of that code gives, its clips and overflows included."""

import numpy as np
import pytest

from harness.campaign import CandidateGradient
from harness.candidates import get_candidate
from harness.records import NON_FINITE_MISTAKES
from harness.scoring import TruthCache, observe
from harness.strategies import Example, catalogue

pytestmark = [pytest.mark.quality]


def _mistakes_on_finite_inputs(score) -> int:
    return sum(score.counts[k] for k in NON_FINITE_MISTAKES) - score.counts["on_nonfinite_inputs"]


def _gradient_at(candidate: str, dtype: str, x: float, z: float):
    """(the candidate's gradient component, the comparison) at one sigmoid_ce point, scored as the campaign
    scores a gradient row."""
    t = np.dtype(dtype)
    obs = observe(CandidateGradient(get_candidate("sigmoid_ce", candidate)), [Example(np.array(x, t), np.array(z, t))],
                  TruthCache("sigmoid_ce", dtype), quantity="gradient")
    return obs.got[0][0], obs.truths[0], obs.comparisons[0]


def test_keras_clipped_sigmoid_ce_has_a_zero_gradient_where_the_exact_one_is_minus_one(default_run):
    """Keras 2's clip of sigmoid(x) to [1e-7, 1 - 1e-7]: for label 1 and x below about -16.1 the loss is
    capped and its gradient is exactly 0, so the model stops learning from its most confident mistakes."""
    score = default_run.score("sigmoid_ce", "keras_clipped", "float64", "gradient")
    assert score.quantity == "gradient" and score.failure is None
    # every catalogue point with label 1 and -709 < x < -17 (exp(-x) finite in float64, sigmoid(x) clipped)
    # is a zero where the exact gradient is about -1; the default run counts at least those
    clipped = [e for e in catalogue("sigmoid_ce", "float64") if float(e.labels) == 1.0 and -709 < float(e.inputs) < -17]
    assert any(float(e.inputs) == -100.0 for e in clipped)
    assert score.counts["zero_where_nonzero"] >= len(clipped) > 20
    assert score.regimes["hard"].counts["zero_where_nonzero"] >= len(clipped)
    got, truth, comparison = _gradient_at("keras_clipped", "float64", -100.0, 1.0)
    assert got == 0.0 and float(truth.rounded[0]) == -1.0
    assert comparison.zero_where_nonzero[0] and comparison.ulp[0] == 2.0**53
    # the loss row of the same run shows no non-finite value there: the defect is the gradient's alone
    assert _mistakes_on_finite_inputs(default_run.score("sigmoid_ce", "keras_clipped", "float64")) == 0


def test_naive_sigmoid_ce_gradients_are_not_finite_where_exp_overflows(default_run):
    for name in ("naive", "naive_rearranged"):
        score = default_run.score("sigmoid_ce", name, "float32", "gradient")
        assert _mistakes_on_finite_inputs(score) > 0, name
        # exp(100) overflows float32: naive's inf*0 and 0/inf*inf give nan; in float64 it is finite
        got, truth, _ = _gradient_at(name, "float32", -100.0, 1.0)
        assert np.isnan(got) and float(truth.rounded[0]) == -1.0
        assert _gradient_at(name, "float64", -100.0, 1.0)[0] == -1.0
    # where exp(-x) is finite but its square is not (x below -44 in float32), the naive chain gives 0 instead
    got, _, comparison = _gradient_at("naive", "float32", -50.0, 1.0)
    assert got == 0.0 and comparison.zero_where_nonzero[0]


def test_the_stable_numpy_sigmoid_gradient_is_finite_on_finite_inputs(default_run):
    """The contrast: max(x, 0) - x*z + log1p(exp(-|x|)) never overflows, and neither does its derivative."""
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        score = default_run.score("sigmoid_ce", "numpy_stable", dtype, "gradient")
        assert score.examples > 3500 and _mistakes_on_finite_inputs(score) == 0, dtype  # float16: 3996 in the catalogue
