"""Gradient defects of the framework candidates (issue 12), each measured against the exact gradient of
:func:`oracles.gradient` at the named inputs, as the gradient rows of a run score them: ULP error, a zero
gradient where the correctly rounded exact one is a nonzero normal number (``zero_where_nonzero``), a finite
nonzero gradient of the wrong sign (``wrong_sign``), a non-finite gradient where the exact one is finite.

The library's value is asserted next to the oracle's: when a library changes, the test fails and the
README's findings table must change with it. TensorFlow's own gradient is the control: within a few ULP on
hard labels in the moderate range, where the others fail."""

from __future__ import annotations

import numpy as np
import pytest

import oracles
from harness.candidates import get_candidate

pytestmark = [pytest.mark.quality, pytest.mark.tf, pytest.mark.torch, pytest.mark.jax]

SMALLEST_NORMAL_F32 = float(np.finfo(np.float32).tiny)


def _exact(family: str, dtype: str, reduction: str = "none", params=None, **inputs) -> np.ndarray:
    """The correctly rounded exact gradient, as float64 values."""
    return oracles.gradient(family, **inputs, dtype=dtype, reduction=reduction, params=params).astype(np.float64)


def _zero_where_nonzero(got: np.ndarray, exact: np.ndarray, smallest_normal: float) -> np.ndarray:
    return (got == 0) & (np.abs(exact) >= smallest_normal)


def test_tf_sigmoid_ce_float32_gradient_is_within_a_few_ulp_on_hard_labels_for_moderate_logits():
    # 1201 logits in [-20, 20] (a uniform grid and both signs of a log grid from 1e-6), labels 0 and 1
    grid = np.concatenate([np.linspace(-20, 20, 801), np.logspace(-6, np.log10(20), 200),
                           -np.logspace(-6, np.log10(20), 200)])
    x, z = (a.ravel().astype(np.float32) for a in np.meshgrid(grid, [0.0, 1.0]))
    exact = oracles.exact("sigmoid_ce", logits=x, labels=z, dtype="float32", what="gradient")
    for name in ("tf", "tf_xla", "keras_from_logits"):
        got = get_candidate("sigmoid_ce", name).gradient(x, z)
        assert got.dtype == np.float32
        assert np.max(oracles.ulp_error(got, exact, "float32")) <= 4.0, name  # measured: 2.64 (tf), 2.14 (tf_xla)
    # torch computes sigmoid(x) - z: for z = 1 it rounds to 0 from x = 16.64 on (exact -5.9e-8 there)
    torch_got = get_candidate("sigmoid_ce", "torch").gradient(x, z)
    assert np.max(oracles.ulp_error(torch_got, exact, "float32")) > 1e7
    confident = (z == 1) & (x >= 16.7)
    assert confident.sum() > 50 and np.all(torch_got[confident] == 0)
    assert np.all(_exact("sigmoid_ce", "float32", logits=x[confident], labels=z[confident]) <= -SMALLEST_NORMAL_F32)


def test_tf_keeps_the_small_gradient_of_a_confident_correct_logit_that_torch_and_keras_lose():
    x, z = np.float32([25.0, 50.0, 80.0]), np.float32([1.0, 1.0, 1.0])
    exact = _exact("sigmoid_ce", "float32", logits=x, labels=z)
    np.testing.assert_allclose(exact, [-1.3887944e-11, -1.9287499e-22, -1.8048513e-35], rtol=1e-7)
    tf = get_candidate("sigmoid_ce", "tf").gradient(x, z)
    assert np.max(oracles.ulp_error(tf, oracles.exact("sigmoid_ce", logits=x, labels=z, dtype="float32",
                                                      what="gradient"), "float32")) <= 4.0
    for name in ("torch", "keras"):
        got = get_candidate("sigmoid_ce", name).gradient(x, z)
        assert np.all(_zero_where_nonzero(got, exact, SMALLEST_NORMAL_F32)), name


def test_keras_on_probabilities_has_a_zero_gradient_outside_its_clip_window():
    # the example: x = -100, z = 1 is a confident mistake, exact gradient -1; Keras clips
    # sigmoid(x) = 3.7e-44 to 1e-7, and a clip has derivative 0 outside its window: the model stops learning
    keras = get_candidate("sigmoid_ce", "keras")
    x, z = np.float32([-100.0, 20.0, -25.0]), np.float32([1.0, 0.0, 0.0])
    exact = _exact("sigmoid_ce", "float32", logits=x, labels=z)
    np.testing.assert_allclose(exact, [-1.0, 1.0, 1.3887944e-11], rtol=1e-7)  # sigmoid(20) rounds to 1: clipped too
    got = keras.gradient(x, z)
    assert got.tolist() == [0.0, 0.0, 0.0]
    assert np.all(_zero_where_nonzero(got, exact, SMALLEST_NORMAL_F32))
    # binary_ce on the probabilities themselves: p = 1e-8 (below the window), z = 0: exact 1/(1 - p) = 1
    p, zp = np.float32([1e-8, 0.0]), np.float32([0.0, 0.0])
    assert get_candidate("binary_ce", "keras").gradient(p, zp).tolist() == [0.0, 0.0]
    assert _exact("binary_ce", "float32", probs=p, labels=zp).tolist() == [1.0, 1.0]


def test_keras_categorical_crossentropy_on_probabilities_gets_the_sign_of_a_soft_label_gradient_wrong():
    # x = [-10, 0, 10], z = [0.5, 0.5, 0]: softmax(x)[0] = 2e-9 is clipped to 1e-7, so the term of z[0] no longer
    # pulls x[0] up; what is left (the renormalization) pushes it down: +1.03e-9 where the exact gradient is -0.5
    x, z = np.float32([[-10.0, 0.0, 10.0]]), np.float32([[0.5, 0.5, 0.0]])
    got = get_candidate("softmax_ce", "keras").gradient(x, z)
    exact = _exact("softmax_ce", "float32", logits=x, labels=z)
    assert exact[0, 0] == -0.5
    assert 0 < got[0, 0] < 1e-8  # finite, nonzero, of the wrong sign: counted in wrong_sign
    assert abs(got[0, 2] - exact[0, 2]) > 0.49  # and x[2] gets half of its exact gradient, 0.99995
    tf = get_candidate("softmax_ce", "tf").gradient(x, z)
    assert np.max(oracles.ulp_error(tf, oracles.exact("softmax_ce", logits=x, labels=z, dtype="float32",
                                                      what="gradient"), "float32")) <= 4.0


def test_torch_binary_cross_entropy_gradient_clamps_its_denominator_at_1e_12():
    # PyTorch's backward is (p - z) / max(p * (1 - p), 1e-12): p = 2^-100, z = 1 gives -1e12, exact -1/p = -2^100;
    # at p = 0, z = 0 (and p = 1, z = 1) the numerator is 0: gradient 0 where the exact one is 1 (-1)
    p, z = np.float32([2.0**-100, 0.0, 1.0]), np.float32([1.0, 0.0, 1.0])
    got = get_candidate("binary_ce", "torch").gradient(p, z)
    exact = _exact("binary_ce", "float32", probs=p, labels=z)
    assert exact.tolist() == [-(2.0**100), 1.0, -1.0]
    assert got[0] == np.float32(-1e12)
    assert got[1:].tolist() == [0.0, 0.0]
    assert np.all(_zero_where_nonzero(got[1:], exact[1:], SMALLEST_NORMAL_F32))


@pytest.mark.parametrize("family, inputs, labels", [
    ("sigmoid_ce", [0.5, -1.0, 2.0], [0.0, 1.0, 1.0]),
    ("softmax_ce", [[0.5, -1.0, 2.0], [0.0, 0.25, -0.5], [1.0, 1.5, -2.0]], [[0, 1, 0], [1, 0, 0], [0.25, 0, 0.75]]),
])
def test_tf_v1_losses_scales_a_float64_gradient_by_a_float32_one_over_n(family, inputs, labels):
    # tf.compat.v1.losses' mean computes in float32 (compute_weighted_loss): the float64 gradient is the
    # per-example one times float32(1/3), 1.7e8 to 2.7e8 ULP of float64 off
    x, z = np.float64(inputs), np.float64(labels)
    got = get_candidate(family, "tf_v1_losses").gradient(x, z)
    assert got.dtype == np.float64  # the dtype is kept: only the precision is lost
    each = get_candidate(family, "tf").gradient(x, z)
    # the per-example backward fed float32(1/3) = 0.3333333432674408 as its output gradient (to 2 ulp of float64)
    np.testing.assert_allclose(got, each * np.float64(np.float32(1 / 3)), rtol=2.0**-51)
    exact = oracles.exact(family, logits=x, labels=z, dtype="float64", what="gradient", reduction="mean")
    assert np.min(oracles.ulp_error(got, exact, "float64")) > 1e8


def test_tf_v1_log_loss_gradient_is_float32_work_in_a_float64_array_and_off_by_its_epsilon_in_float32():
    p, z = np.array([0.1, 0.3, 0.5, 0.8, 0.9]), np.array([0.0, 1.0, 0.25, 1.0, 0.0])
    v1 = get_candidate("binary_ce", "tf_v1_losses")
    got64 = v1.gradient(p, z)
    exact64 = oracles.exact("binary_ce", probs=p, labels=z, dtype="float64", what="gradient", reduction="mean")
    assert got64.dtype == np.float64 and np.min(oracles.ulp_error(got64, exact64, "float64")) > 1e6
    # float32: -z/(p + eps) + (1 - z)/(1 - p + eps), eps = 1e-7: 17 ULP at p = 0.9, z = 0 (1 - p = 0.1)
    p32, z32 = p.astype(np.float32), z.astype(np.float32)
    got32 = v1.gradient(p32, z32)
    exact32 = oracles.exact("binary_ce", probs=p32, labels=z32, dtype="float32", what="gradient", reduction="mean")
    assert 8 < np.max(oracles.ulp_error(got32, exact32, "float32")) < 64


def test_focal_gradients_are_nan_at_confident_logits_except_the_stable_forms():
    # the naive formula: exp(-x) overflows at x = -100 and 1 - p rounds to 0 at x = 20 (float32): nan;
    # Keras' focal loss with gamma < 1: d (1 - p_t)**gamma at p_t = 1 is inf, times 0: nan at x = 20, z = 1;
    # optax's and our numpy_stable stay finite and right there
    x, z = np.float32([-100.0, 20.0, -20.0, 20.0]), np.float32([0.0, 1.0, 0.0, 1.0])
    exact = _exact("focal", "float32", logits=x, labels=z, params={"gamma": 0.5})
    assert np.all(np.isfinite(exact))
    naive = get_candidate("focal", "naive").gradient(x, z, gamma=0.5)
    assert np.isnan(naive[0]) and np.isnan(naive[1])
    keras = get_candidate("focal", "keras_from_logits").gradient(x, z, gamma=0.5)
    assert np.all(np.isnan(keras[1:]))
    exact_bits = oracles.exact("focal", logits=x, labels=z, dtype="float32", what="gradient", params={"gamma": 0.5})
    for name in ("optax", "numpy_stable"):
        got = get_candidate("focal", name).gradient(x, z, gamma=0.5)
        assert np.all(np.isfinite(got)), name
        assert np.max(oracles.ulp_error(got, exact_bits, "float32")) <= 4.0, name


def test_float16_gradients_of_keras_and_torch_are_nan_where_the_exact_one_is_finite():
    # Keras on probabilities, float16: sigmoid(-16) = 1.1e-7 is below the clip's lower bound; the gradient
    # comes back nan (exact 1.19e-7, the loss itself -0.0); TensorFlow's own op stays right there
    x, z = np.float16([-15.8515625, -16.0]), np.float16([0.0, 0.0])
    exact = oracles.exact("sigmoid_ce", logits=x, labels=z, dtype="float16", what="gradient")
    assert np.all(np.isnan(get_candidate("sigmoid_ce", "keras").gradient(x, z)))
    assert np.max(oracles.ulp_error(get_candidate("sigmoid_ce", "tf").gradient(x, z), exact, "float16")) <= 1.0
    # PyTorch's binary_cross_entropy, float16: its clamp 1e-12 of the denominator underflows to 0, so p = 0,
    # z = 0 (and p = 1, z = 1) give 0/0 = nan where the exact gradient is 1 (-1)
    p, zp = np.float16([0.0, 1.0]), np.float16([0.0, 1.0])
    assert _exact("binary_ce", "float16", probs=p, labels=zp).tolist() == [1.0, -1.0]
    assert np.all(np.isnan(get_candidate("binary_ce", "torch").gradient(p, zp)))
