"""The harness finds the defects the seeds describe, in the default campaign's report."""

import numpy as np
import pytest

import oracles
from harness.records import NON_FINITE_MISTAKES
from harness.candidates import get_candidate
from harness.metrics import compare
from harness.scoring import TruthCache, observe
from harness.strategies import Example, catalogue

pytestmark = [pytest.mark.quality, pytest.mark.tf]


def _mistakes_on_finite_inputs(score) -> int:
    """Non-finite results (nan, inf and the rest of NON_FINITE_MISTAKES) on examples whose inputs are all finite."""
    return sum(score.counts[k] for k in NON_FINITE_MISTAKES) - score.counts["on_nonfinite_inputs"]


def test_naive_sigmoid_ce_returns_inf_or_nan_on_a_large_share_of_float32_inputs(default_run):
    score = default_run.score("sigmoid_ce", "naive", "float32")
    assert _mistakes_on_finite_inputs(score) / score.examples > 0.25
    # both ways to fail: -log(sigmoid) = -log(0) is inf where z = 1, and 0 * -log(0) is nan where z = 0
    assert score.counts["inf"] > 0 and score.counts["nan"] > 0
    # the seed's x = -810: exp(810) overflows, the rearranged form gives inf
    x = np.array([-810.0], np.float32)
    z = np.array([0.0], np.float32)
    assert np.isinf(get_candidate("sigmoid_ce", "naive_rearranged")(x, z)).all()
    assert float(oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32")[0]) == 0.0


def test_keras_clipped_caps_the_loss_near_minus_log_eps_and_is_off_by_millions_of_ulp(default_run):
    score = default_run.score("sigmoid_ce", "keras_clipped", "float32")
    assert score.max_ulp > 1e6
    x = np.array([-100.0], np.float32)
    z = np.array([1.0], np.float32)
    got = get_candidate("sigmoid_ce", "keras_clipped")(x, z)
    assert abs(float(got[0]) - 16.118) < 0.01  # -log(1e-7) = 16.118...
    exact = oracles.exact("sigmoid_ce", logits=x, labels=z, dtype="float32")
    assert float(oracles.ulp_error(got, exact, "float32")[0]) > 1e6


@pytest.mark.parametrize("candidate", ["tf", "numpy_stable"])
def test_stable_sigmoid_ce_is_within_a_few_ulp_for_hard_labels_in_float32(candidate):
    hard = [e for e in catalogue("sigmoid_ce", "float32") if float(e.labels) in (0.0, 1.0) and np.isfinite(float(e.inputs))]
    obs = observe(get_candidate("sigmoid_ce", candidate), hard, TruthCache("sigmoid_ce", "float32"))
    comparison = obs.merged()
    counted = ~comparison.flushed  # flushed subnormals are their own category (TF's CPU kernels flush to zero)
    assert (comparison.outcome[counted] == "finite").all()
    assert np.nanmax(comparison.ulp[counted]) <= 4.0


@pytest.mark.parametrize("candidate", ["tf", "numpy_stable"])
def test_stable_sigmoid_ce_loses_over_a_thousand_ulp_for_soft_labels_near_one(default_run, candidate):
    assert default_run.score("sigmoid_ce", candidate, "float32").max_ulp > 1000
    x = np.array([1e4], np.float32)
    z = np.array([0.9999], np.float32)
    got = get_candidate("sigmoid_ce", candidate)(x, z)
    assert float(got[0]) == 1.0
    truth = TruthCache("sigmoid_ce", "float32").truth([Example(x[0], z[0])], "none")
    assert abs(float(truth.rounded[0]) - 1.000166) < 1e-6
    assert float(compare(truth, got).ulp[0]) > 1000


def test_naive_softmax_ce_overflows_near_logit_1000_and_tf_does_not(default_run):
    rows = np.array([[1000.0, 0.0], [1000.0, 999.0], [-1000.0, 1000.0]], np.float32)
    labels = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], np.float32)
    naive = get_candidate("softmax_ce", "naive")(rows, labels)
    tf = get_candidate("softmax_ce", "tf")(rows, labels)
    exact = oracles.loss("softmax_ce", logits=rows, labels=labels, dtype="float32")
    assert np.isnan(naive).all()  # exp(1000) = inf, inf / inf = nan: softmax itself is nan, not just its log
    assert np.isfinite(tf).all()
    assert np.nanmax(oracles.ulp_error(tf, oracles.exact("softmax_ce", logits=rows, labels=labels, dtype="float32"), "float32")) <= 4
    assert np.isfinite(exact).all()
    naive_score = default_run.score("softmax_ce", "naive", "float32")
    assert naive_score.counts["nan"] > 0 and _mistakes_on_finite_inputs(naive_score) > 0


def test_every_family_candidate_and_dtype_of_the_default_run_has_a_score(default_run):
    from harness.candidates import candidates

    keys = {s.key for s in default_run.scores}
    expected = {(c.family, c.name, d) for c in candidates() if c.family in oracles.default_families() for d in c.dtypes}
    # every built-in in each dtype it declares (the _upcast variants: float16/bfloat16), a loss and a gradient row
    assert keys == {(*k, q) for k in expected for q in ("loss", "gradient")}
    assert {d for _f, _c, d, _q in keys} == {"float16", "bfloat16", "float32", "float64"}
    measured = [s for s in default_run.scores if not s.unsupported and s.failure is None]
    assert all(s.max_ulp is not None for s in measured)
    # a reduced candidate scores one value per batch: sklearn's hard-label catalogue of binary_ce makes ~10
    assert all(s.examples >= (60 if s.labels == "hard" else 100) for s in measured)
    # scikit-learn rejects bfloat16, and its log_loss has no gradient in any dtype
    assert sorted(s.key for s in default_run.scores if s.unsupported) == sorted(
        [("binary_ce", "sklearn", "bfloat16", "loss")] + [("binary_ce", "sklearn", d, "gradient") for d in oracles.FORMATS])
