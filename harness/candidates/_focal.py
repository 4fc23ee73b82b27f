"""Candidates of the ``focal`` family (sigmoid focal loss with logits, :mod:`oracles._focal`), and their
declarations (:data:`CANDIDATES`, read by :mod:`harness.candidates._registry` through
``oracles._focal.Focal.candidates_module``).

Every function is called ``fn(logits, labels, gamma=...)``: logits and labels as numpy arrays of one float
dtype and shape, ``gamma`` a Python float (the candidate registry always passes it). numpy formulas
compute in the input dtype (``gamma`` made a scalar of that dtype); TensorFlow/Keras and JAX/optax are
imported inside the calls only.

- ``naive``: the definition as written, ``p = 1/(1 + exp(-x))``, ``-(z*(1-p)**g*log p + (1-z)*p**g*log(1-p))``:
  ``exp(-x)`` overflows for very negative logits and ``1 - p`` rounds to 0 for logits above ~17 (float32).
- ``numpy_stable``: log-sigmoid forms, as the oracle evaluates (``l = log1p(exp(-|x|))``,
  ``sp(x) = max(x, 0) + l``, ``sp(-x) = max(-x, 0) + l``, weights ``exp(-g*sp)``).
- ``keras_from_logits``: ``keras.losses.binary_focal_crossentropy(z, x, gamma=g, from_logits=True)`` (alpha
  balancing and label smoothing off, their defaults): ``p = sigmoid(x)``, Keras' probability
  cross-entropy (``p`` clipped to ``[1e-7, 1 - 1e-7]``), times ``(1 - p_t)**g`` with ``p_t = z*p + (1-z)*(1-p)``.
  For hard labels that weight is ours; for soft labels it is a different function (one weight for both
  terms), so the candidate is declared ``labels="hard"``: scored on 0/1 labels only.
- ``optax``: ``optax.sigmoid_focal_loss(x, z, alpha=None, gamma=g)``: ``sigmoid_binary_cross_entropy`` times
  ``(1 - p_t)**g``, the same soft-label convention as Keras, so also ``labels="hard"``; skipped (reported as
  needing ``lossfuzz[jax]``) where optax is not installed.

Each function ``f`` has its gradient ``f_grad`` (same arguments; d loss / d logits, the logits' shape).
The numpy ones are the derivative of the formula as written, in the input dtype: reverse-mode autodiff of
those very operations, step by step (each intermediate's adjoint, in the order a tape replays them), so
what overflows or cancels in the formula does in its gradient too (``naive``: ``1 - p`` rounds to 0 above
x ~ 17 in float32, and ``p**g / (1 - p)`` is then inf times a zero weight: nan for label 1). Where the
formula has a kink, the convention is PyTorch's: ``max(a, b)`` gives each side half the gradient at a tie
(JAX does the same; TensorFlow gives all of it to the first argument) and ``abs`` has derivative
``sign(0) = 0`` at 0 (TensorFlow too; JAX takes 1); for ``numpy_stable`` at x = 0 these give the true
derivative of ``sp(x)`` (1/2). Keras and optax are differentiated by their own autodiff (a TensorFlow tape;
``jax.vjp`` with a cotangent of ones, the gradient of the sum of the per-example losses).
"""

from __future__ import annotations

from functools import wraps
from typing import Callable

import numpy as np

from ._registry import dtype_name

FAMILY = "focal"
_HERE = "harness.candidates._focal"

# (name, target, reduction, needs, source, labels) of each built-in candidate of the family.
CANDIDATES: tuple[tuple[str, str, str, tuple[str, ...], str, str], ...] = (
    ("naive", f"{_HERE}:focal_naive", "none", (),
     "Lin et al. 2017 as written: p = 1/(1+exp(-x)), -(z*(1-p)**g*log(p) + (1-z)*p**g*log(1-p)), numpy", "all"),
    ("numpy_stable", f"{_HERE}:focal_numpy_stable", "none", (),
     "log-sigmoid forms in numpy: z*exp(-g*sp(x))*sp(-x) + (1-z)*exp(-g*sp(-x))*sp(x), sp(t) = max(t,0) + log1p(exp(-|t|))", "all"),
    ("keras_from_logits", f"{_HERE}:focal_keras_from_logits", "none", ("keras", "tensorflow"),
     "keras.losses.binary_focal_crossentropy(z, x, gamma=g, from_logits=True): clipped BCE * (1-p_t)**g; hard labels only", "hard"),
    ("optax", f"{_HERE}:focal_optax", "none", ("jax", "optax"),
     "optax.sigmoid_focal_loss(x, z, alpha=None, gamma=g): sigmoid_binary_cross_entropy * (1-p_t)**g; hard labels only", "hard"),
)


def _elementwise(fn: Callable) -> Callable:
    """``fn(x, z, g, t)`` (``t`` the dtype's scalar type, ``g = t(gamma)``) with the input checks."""

    @wraps(fn)
    def wrapper(inputs: np.ndarray, labels: np.ndarray, gamma: float = 2.0) -> np.ndarray:
        inputs, labels = np.asarray(inputs), np.asarray(labels)
        dtype_name(inputs)
        if labels.dtype != inputs.dtype:
            raise TypeError(f"labels dtype {labels.dtype.name} differs from inputs dtype {inputs.dtype.name}")
        if labels.shape != inputs.shape:
            raise ValueError(f"labels shape {labels.shape} differs from inputs shape {inputs.shape}")
        t = inputs.dtype.type
        with np.errstate(all="ignore"):
            return np.asarray(fn(inputs, labels, t(gamma), t))

    return wrapper


@_elementwise
def focal_naive(x: np.ndarray, z: np.ndarray, g, t) -> np.ndarray:
    one = t(1)
    p = one / (one + np.exp(-x))
    return -(z * (one - p) ** g * np.log(p) + (one - z) * p**g * np.log(one - p))


@_elementwise
def focal_numpy_stable(x: np.ndarray, z: np.ndarray, g, t) -> np.ndarray:
    zero, one = t(0), t(1)
    tail = np.log1p(np.exp(-np.abs(x)))
    sp_x = np.maximum(x, zero) + tail  # -log(1 - p)
    sp_neg_x = np.maximum(-x, zero) + tail  # -log(p)
    return z * np.exp(-g * sp_x) * sp_neg_x + (one - z) * np.exp(-g * sp_neg_x) * sp_x


@_elementwise
def focal_naive_grad(x: np.ndarray, z: np.ndarray, g, t) -> np.ndarray:
    one = t(1)
    # forward, as focal_naive computes it
    e = np.exp(-x)
    u = one + e
    p = one / u
    q = one - p
    log_p, log_q = np.log(p), np.log(q)
    w_p, w_q = q**g, p**g  # the weights of log p and log(1 - p)
    # backward: loss = -(z * w_p * log_p + (1 - z) * w_q * log_q)
    a, b = -z, -(one - z)
    d_w_p, d_log_p = a * log_p, a * w_p
    d_w_q, d_log_q = b * log_q, b * w_q
    d_q = d_w_p * (g * q ** (g - one)) + d_log_q / q
    d_p = d_w_q * (g * p ** (g - one)) + d_log_p / p - d_q
    d_u = -(d_p / u) / u  # p = 1 / u
    return -(d_u * e)  # u = 1 + exp(-x)


def _kink_max(a: np.ndarray, t) -> np.ndarray:
    """d max(a, 0) / d a: 1 above 0, 0 below, 1/2 at the tie (PyTorch's and JAX's convention)."""
    return np.where(a > t(0), t(1), np.where(a == t(0), t(0.5), t(0)))


@_elementwise
def focal_numpy_stable_grad(x: np.ndarray, z: np.ndarray, g, t) -> np.ndarray:
    zero, one = t(0), t(1)
    # forward, as focal_numpy_stable computes it
    w = np.exp(-np.abs(x))
    tail = np.log1p(w)
    sp_x = np.maximum(x, zero) + tail
    sp_neg_x = np.maximum(-x, zero) + tail
    weight_x, weight_neg_x = np.exp(-g * sp_x), np.exp(-g * sp_neg_x)
    # backward: loss = z * weight_x * sp_neg_x + (1 - z) * weight_neg_x * sp_x
    a, b = z, one - z
    d_sp_x = a * sp_neg_x * weight_x * -g + b * weight_neg_x
    d_sp_neg_x = a * weight_x + b * sp_x * weight_neg_x * -g
    d_tail = d_sp_x + d_sp_neg_x
    d_abs = -(d_tail / (one + w) * w)  # tail = log1p(exp(-|x|))
    return d_sp_x * _kink_max(x, t) - d_sp_neg_x * _kink_max(-x, t) + d_abs * np.sign(x)


def _focal_inputs(inputs: np.ndarray, labels: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    name = dtype_name(inputs)
    if labels.dtype != inputs.dtype:
        raise TypeError(f"labels dtype {labels.dtype.name} differs from inputs dtype {inputs.dtype.name}")
    return name, inputs, labels


_KERAS_FOCAL = "keras.losses.binary_focal_crossentropy(from_logits=True)"


def _keras_focal(gamma: float) -> Callable:
    from ._backend import keras, tensorflow

    tf, K = tensorflow(), keras()

    def loss(x, z):  # means over the added last axis of 1
        return K.losses.binary_focal_crossentropy(tf.expand_dims(z, -1), tf.expand_dims(x, -1), gamma=gamma, from_logits=True)

    return loss


def focal_keras_from_logits(inputs: np.ndarray, labels: np.ndarray, gamma: float = 2.0) -> np.ndarray:
    from ._backend import dtype_rejections_as_unsupported, tensorflow

    name, inputs, labels = _focal_inputs(inputs, labels)
    tf = tensorflow()
    with dtype_rejections_as_unsupported(_KERAS_FOCAL, name):
        return np.asarray(_keras_focal(gamma)(tf.constant(inputs), tf.constant(labels)).numpy())


def focal_keras_from_logits_grad(inputs: np.ndarray, labels: np.ndarray, gamma: float = 2.0) -> np.ndarray:
    from ._keras import _gradient

    return _gradient(_KERAS_FOCAL, _keras_focal(gamma), _focal_inputs, inputs, labels)


def focal_optax(inputs: np.ndarray, labels: np.ndarray, gamma: float = 2.0) -> np.ndarray:
    from ._optax import _call, optax

    _focal_inputs(inputs, labels)
    return _call(lambda x, z: optax.sigmoid_focal_loss(x, z, alpha=None, gamma=gamma), inputs, labels)


def focal_optax_grad(inputs: np.ndarray, labels: np.ndarray, gamma: float = 2.0) -> np.ndarray:
    from ._optax import _grad_call, optax

    _focal_inputs(inputs, labels)
    return _grad_call(lambda x, z: optax.sigmoid_focal_loss(x, z, alpha=None, gamma=gamma), inputs, labels)
