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


def focal_keras_from_logits(inputs: np.ndarray, labels: np.ndarray, gamma: float = 2.0) -> np.ndarray:
    from ._backend import dtype_rejections_as_unsupported, keras, tensorflow

    inputs, labels = np.asarray(inputs), np.asarray(labels)
    name = dtype_name(inputs)
    if labels.dtype != inputs.dtype:
        raise TypeError(f"labels dtype {labels.dtype.name} differs from inputs dtype {inputs.dtype.name}")
    tf, K = tensorflow(), keras()
    with dtype_rejections_as_unsupported("keras.losses.binary_focal_crossentropy(from_logits=True)", name):
        out = K.losses.binary_focal_crossentropy(tf.expand_dims(tf.constant(labels), -1), tf.expand_dims(tf.constant(inputs), -1),
                                                 gamma=gamma, from_logits=True)  # means over the added last axis of 1
        return np.asarray(out.numpy())


def focal_optax(inputs: np.ndarray, labels: np.ndarray, gamma: float = 2.0) -> np.ndarray:
    from ._optax import _call, optax

    inputs, labels = np.asarray(inputs), np.asarray(labels)
    dtype_name(inputs)
    if labels.dtype != inputs.dtype:
        raise TypeError(f"labels dtype {labels.dtype.name} differs from inputs dtype {inputs.dtype.name}")
    return _call(lambda x, z: optax.sigmoid_focal_loss(x, z, alpha=None, gamma=gamma), inputs, labels)
