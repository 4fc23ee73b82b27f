"""The framework candidates' gradients (``<loss>_grad`` beside each loss: TensorFlow eager and XLA,
``tf.compat.v1.losses``, Keras, PyTorch, optax, every focal candidate, and the ``_upcast`` variants of the
framework ones) against the exact gradient of :func:`oracles.gradient` on easy points.

Easy points: moderate logits (probabilities away from 0 and 1) with labels for which ``sigmoid(x) - z`` (or
``softmax - z``) does not cancel, so every correct implementation is within a few ULP. A wrong sign, a
missing ``1/n`` of a mean, a gradient with respect to the labels instead of the inputs, or a dtype cast
are each off by far more than :data:`FEW_ULP` there (or fail the dtype check)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import oracles
from harness.candidates import candidates
from harness.candidates._registry import ALL_DTYPES

pytestmark = [pytest.mark.tf, pytest.mark.torch, pytest.mark.jax]

# "A few ULP": the largest error measured on these points is 4.7 ULP (keras_from_logits focal, float64).
FEW_ULP = 8.0
# The modules whose gradients this file covers (gradscore's numpy formulas and `accurate` are tested apart).
_FRAMEWORK_MODULES = ("harness.candidates._tf", "harness.candidates._keras", "harness.candidates._torch",
                      "harness.candidates._optax", "harness.candidates._focal")
# Gradients that are defective on the easy points themselves, asserted as findings in
# tests/quality/test_framework_gradient_defects.py instead: tf.compat.v1.losses scales a float64 gradient
# by 1/n rounded to float32 (log_loss computes all of it in float32); log_loss adds epsilon = 1e-7 to p.
KNOWN_DEFECTS = {*((f, "tf_v1_losses", "float64") for f in ("sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce")),
                 ("binary_ce", "tf_v1_losses", "float32")}


def _dtype(name: str) -> np.dtype:
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def easy_points(family: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of ``family`` where no correct gradient cancels: 5 examples (or 2 rows of 3 classes),
    not a power of two, so that a missing 1/n of a mean is not a mere exponent shift."""
    t = _dtype(dtype)
    if family in ("sigmoid_ce", "focal"):
        return np.array([-3.0, -0.5, -1.5, 0.25, -2.0]).astype(t), np.array([0, 1, 0, 1, 1]).astype(t)
    if family == "binary_ce":
        return np.array([0.1, 0.3, 0.5, 0.8, 0.9]).astype(t), np.array([0, 1, 0.25, 1, 0]).astype(t)
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.5], [1.0, 1.5, -2.0]]).astype(t)
    if family == "softmax_ce":
        return x, np.array([[0, 1, 0], [1, 0, 0], [0.25, 0, 0.75]]).astype(t)
    return x, np.array([1, 0, 2])


def _framework_cases() -> list:
    cases = []
    for c in candidates():
        if not c.has_gradient or not c.target.startswith(_FRAMEWORK_MODULES):
            continue
        for dtype in c.dtypes:
            if (c.family, c.name, dtype) not in KNOWN_DEFECTS:
                cases.append(pytest.param(c, dtype, id=f"{c.family}-{c.name}-{dtype}"))
    return cases


CASES = _framework_cases()


def test_every_framework_candidate_has_its_gradient_beside_its_loss():
    framework = [c for c in candidates() if c.target.startswith(_FRAMEWORK_MODULES)]
    assert {c.family for c in framework} == set(oracles.FAMILIES)
    for c in framework:
        assert c.has_gradient, c
        assert callable(c.load_gradient()), c  # module:function_grad imports
    assert len(CASES) + len(KNOWN_DEFECTS) == sum(len(c.dtypes) for c in framework)


@pytest.mark.parametrize("candidate, dtype", CASES)
def test_framework_gradient_agrees_with_the_exact_gradient_on_easy_points(candidate, dtype):
    x, z = easy_points(candidate.family, dtype)
    got = candidate.gradient(x, z)
    assert got.dtype == _dtype(dtype)  # never cast, by us or the framework
    assert got.shape == x.shape
    key = oracles.get_family(candidate.family).input_name
    exact = oracles.exact(candidate.family, **{key: x}, labels=z, dtype=dtype, reduction=candidate.reduction,
                          what="gradient")
    errors = oracles.ulp_error(got, exact, dtype)
    assert np.all(np.isfinite(errors))
    assert np.max(errors) <= FEW_ULP, (candidate.name, dtype, got, exact)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_a_mean_candidate_gradient_is_the_per_example_gradient_over_n(dtype):
    # tf.compat.v1.losses (mean over 5 elements / 3 rows) against the per-example tf gradient, divided by n
    from harness.candidates import get_candidate

    for family in ("sigmoid_ce", "softmax_ce", "sparse_softmax_ce"):
        x, z = easy_points(family, dtype)
        mean = get_candidate(family, "tf_v1_losses").gradient(x, z).astype(np.float64)
        each = get_candidate(family, "tf").gradient(x, z).astype(np.float64)
        n = oracles.get_family(family).batch_shape(x)[0]
        np.testing.assert_allclose(mean * n, each, rtol=4 * float(ml_dtypes.finfo(_dtype(dtype)).eps))


@pytest.mark.parametrize("name", ["tf", "torch", "optax"])
def test_an_upcast_gradient_is_computed_in_float32_and_rounded_once(name):
    # float16: the base gradient in float32, rounded once to float16: within half an ULP plus the float32 error
    from harness.candidates import get_candidate

    x, z = easy_points("sigmoid_ce", "float16")
    got = get_candidate("sigmoid_ce", name + "_upcast").gradient(x, z)
    base = get_candidate("sigmoid_ce", name).gradient(x.astype(np.float32), z.astype(np.float32))
    assert got.dtype == np.float16
    assert np.array_equal(got, base.astype(np.float16))


def test_focal_numpy_gradients_take_gamma_and_the_kink_convention_at_zero():
    # x = 0 is where numpy_stable's max(x, 0) and |x| have kinks: with a tie of max split in halves and
    # sign(0) = 0 (PyTorch's convention) its derivative there is the true one; TensorFlow's (the whole tie
    # to x) would give d sp(x)/dx = 1 instead of 1/2, far from the exact gradient
    from harness.candidates import get_candidate

    for gamma in (0.5, 2.0, 3.0):
        x, z = np.float64([0.0, 0.0, -1.0, 2.5]), np.float64([1.0, 0.0, 0.5, 0.25])
        exact = oracles.exact("focal", logits=x, labels=z, dtype="float64", what="gradient", params={"gamma": gamma})
        got = get_candidate("focal", "numpy_stable").gradient(x, z, gamma=gamma)
        assert got.dtype == np.float64
        assert np.max(oracles.ulp_error(got, exact, "float64")) <= FEW_ULP, (gamma, got)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_a_gradient_refuses_bad_inputs_as_its_loss_does(dtype):
    from harness.candidates import Unsupported, get_candidate

    x, z = easy_points("sigmoid_ce", dtype)
    with pytest.raises(Unsupported, match="int32"):
        get_candidate("sigmoid_ce", "torch").gradient(x.astype(np.int32), z)
    other = np.float64 if dtype != "float64" else np.float32
    for name in ("tf", "keras", "torch", "optax"):
        with pytest.raises(TypeError, match="labels dtype"):
            get_candidate("sigmoid_ce", name).gradient(x, z.astype(other))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_upcast_gradient_refuses_full_precision(dtype):
    from harness.candidates import Unsupported, get_candidate

    x, z = easy_points("sigmoid_ce", dtype)
    for name in ("tf_upcast", "torch_upcast", "optax_upcast"):
        with pytest.raises(Unsupported, match=dtype):
            get_candidate("sigmoid_ce", name).gradient(x, z)
