"""harness.search (seeded Hypothesis exploration and shrinking) and harness.sweep (the error along one input)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import oracles
from harness.candidates import get_candidate
from harness.metrics import severity
from harness.scoring import TruthCache
from harness.search import search
from harness.sweep import sweep, sweep_points


def _correctly_rounded(x, z):
    """A perfect candidate: the oracle itself, called as the candidates are, (logits, labels)."""
    return oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32")


def _worst(result) -> float:
    return float(max(severity(c).max(initial=0.0) for c in result.observations.comparisons))


# -------------------------------------------------------------------------------------------------- search


def test_the_same_seed_explores_the_same_examples_and_another_seed_others():
    naive = get_candidate("sigmoid_ce", "naive")
    runs = [search(naive, "sigmoid_ce", "float32", TruthCache("sigmoid_ce", "float32"), seed=s, max_examples=30,
                   shrink=False) for s in (3, 3, 4)]
    keys = [[tuple(e.key for e in g) for g in r.observations.groups] for r in runs]
    assert keys[0] == keys[1] and keys[0] != keys[2]
    a, b = runs[0].observations.merged(), runs[1].observations.merged()
    np.testing.assert_array_equal(a.ulp, b.ulp)
    assert len(keys[0]) <= 30


def test_search_finds_the_naive_overflow_and_shrinks_it_to_a_reproducer_at_least_half_as_bad():
    naive = get_candidate("sigmoid_ce", "naive")
    result = search(naive, "sigmoid_ce", "float32", TruthCache("sigmoid_ce", "float32"), seed=0, max_examples=60)
    worst = _worst(result)
    assert worst == 2.0**80  # a nan or inf where the exact loss is finite
    assert result.minimal is not None and len(result.minimal.groups) == 1
    (comparison,) = result.minimal.comparisons
    assert severity(comparison).max() >= worst / 2
    (example,) = result.minimal.groups[0]
    x, z = float(example.inputs), float(example.labels)
    got = naive(np.float32([x]), np.float32([z]))
    assert not np.isfinite(got[0])  # the reproducer really breaks the candidate
    assert np.isfinite(oracles.loss("sigmoid_ce", logits=np.float32([x]), labels=np.float32([z]), dtype="float32")[0])


def test_a_correctly_rounded_candidate_has_no_reproducer_and_at_most_half_an_ulp():
    result = search(_correctly_rounded, "sigmoid_ce", "float32", TruthCache("sigmoid_ce", "float32"), seed=0,
                    max_examples=30)
    assert result.minimal is None and result.findings == []
    merged = result.observations.merged()
    assert merged.outcome.size > 0 and np.nanmax(merged.ulp) <= 0.5
    assert (merged.bits[~np.isnan(merged.bits)] == 0).all()


def test_shrinking_can_be_turned_off():
    naive = get_candidate("sigmoid_ce", "naive")
    result = search(naive, "sigmoid_ce", "float32", TruthCache("sigmoid_ce", "float32"), seed=0, max_examples=30,
                    shrink=False)
    assert result.minimal is None and _worst(result) == 2.0**80


def test_inputs_a_candidate_raises_on_are_findings_and_the_search_goes_on():
    def fails_on_negative_logits(x, z):
        if np.any(x < 0):
            raise ValueError("negative logit")
        return get_candidate("sigmoid_ce", "numpy_stable")(x, z)

    result = search(fails_on_negative_logits, "sigmoid_ce", "float32", TruthCache("sigmoid_ce", "float32"), seed=1,
                    max_examples=40, shrink=False)
    assert result.findings and all(f.kind == "raised" and "negative logit" in f.message for f in result.findings)
    assert all(float.fromhex(v) < 0 for f in result.findings for v in f.inputs)
    scored = [float(e.inputs) for g in result.observations.groups for e in g]
    assert scored and all(v >= 0 or math.isnan(v) for v in scored)


def test_a_reduced_candidate_is_searched_on_batches_of_one_shape():
    def numpy_mean(x, z):
        return np.mean(get_candidate("sigmoid_ce", "numpy_stable")(x, z)).astype(x.dtype)

    result = search(numpy_mean, "sigmoid_ce", "float32", TruthCache("sigmoid_ce", "float32"), reduction="mean",
                    seed=0, max_examples=20, shrink=False)
    assert result.observations.groups
    for group, truth in zip(result.observations.groups, result.observations.truths):
        assert 1 <= len(group) <= 8 and len({e.inputs.shape for e in group}) == 1
        assert truth.reduction == "mean" and truth.rounded.shape == ()


# --------------------------------------------------------------------------------------------------- sweep


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_the_logit_sweep_is_symmetric_log_spaced_and_representable(dtype):
    name, x = sweep_points("sigmoid_ce", dtype)
    assert name == "logit"
    assert (np.diff(x) > 0).all() and np.array_equal(x, -x[::-1])
    positive = x[x > 0]
    assert positive[0] == pytest.approx(1e-3, rel=1e-2) and positive[-1] == pytest.approx(1e4, rel=1e-2)
    t = oracles.resolve_format(dtype).numpy_dtype
    assert np.array_equal(x.astype(t).astype(np.float64), x)
    if dtype == "float64":
        assert x.size == 160 and np.allclose(np.diff(np.log10(positive)), 7 / 79)


def test_the_probability_sweep_covers_tiny_probabilities_and_probabilities_near_one():
    name, p = sweep_points("binary_ce", "float32")
    assert name == "probability"
    assert ((p > 0) & (p < 1)).all() and (np.diff(p) > 0).all()
    assert p[0] == pytest.approx(1e-30, rel=1e-6) and 1 - p[-1] == pytest.approx(1e-7, rel=0.2)


def test_sweep_curves_hold_each_candidates_ulp_error_at_each_point():
    chosen = [get_candidate("sigmoid_ce", n) for n in ("naive", "numpy_stable")]
    curves = sweep("sigmoid_ce", "float32", chosen)
    assert [c.label for c in curves] == ["z = 1", "z = 0.9999"]
    hard = curves[0]
    x = np.array(hard.x, np.float32)
    z = np.ones_like(x)
    exact = oracles.exact("sigmoid_ce", logits=x, labels=z, dtype="float32")
    for name in ("naive", "numpy_stable"):
        got = get_candidate("sigmoid_ce", name)(x, z)
        expected = oracles.ulp_error(got, exact, "float32")
        assert [None if math.isnan(e) else e for e in expected.tolist()] == list(hard.errors[name]), name
    assert hard.errors["naive"][0] is None  # x = -1e4: -log(sigmoid) = -log(0) = inf, the exact loss is 1e4
    assert max(hard.errors["numpy_stable"]) <= 4  # measured 2.04: within a few ULP on hard labels


def test_the_sweep_skips_reduced_candidates_and_gives_sparse_one_curve():
    chosen = [get_candidate("sparse_softmax_ce", n) for n in ("naive", "numpy_stable", "tf_v1_losses")]
    curves = sweep("sparse_softmax_ce", "float32", chosen)
    assert len(curves) == 1 and curves[0].label == "class 0 of [x, 0]"
    assert set(curves[0].errors) == {"naive", "numpy_stable"}
