"""Loss formulas as their authors wrote them, in numpy, evaluated IN the input dtype.

No upcasting: every constant is made in the input dtype (with ``ml_dtypes.bfloat16`` a Python float scalar
would promote the array to float32, and ``np.clip`` promotes too, so neither is used). Overflow, underflow
and invalid operations run silently (``np.errstate(all="ignore")``): an ``inf`` or ``nan`` result is a
finding for the scorer, not an error. Labels must have the inputs' dtype (``int64`` class indices for
``sparse_softmax_ce``).
"""

from __future__ import annotations

from functools import wraps
from typing import Callable

import numpy as np

from ._registry import dtype_name

KERAS_EPSILON = 1e-7  # keras.backend.epsilon()


def _checked(kind: str) -> Callable[[Callable], Callable]:
    """Wrap a formula ``fn(inputs, labels, t)`` (``t`` the dtype's scalar type) with the input checks of its
    kind: ``elementwise`` (labels like inputs), ``rows`` (a class axis, labels like inputs) or ``sparse``
    (a class axis, integer class indices of the batch shape)."""

    def decorate(fn: Callable) -> Callable:
        @wraps(fn)
        def wrapper(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
            inputs, labels = np.asarray(inputs), np.asarray(labels)
            dtype_name(inputs)
            if kind != "elementwise" and inputs.ndim < 1:
                raise ValueError("logits need a class axis (shape [..., K])")
            if kind == "sparse":
                if not np.issubdtype(labels.dtype, np.integer):
                    raise TypeError(f"class indices must be integers, got {labels.dtype.name}")
                if labels.shape != inputs.shape[:-1]:
                    raise ValueError(f"class indices shape {labels.shape} differs from logits batch shape {inputs.shape[:-1]}")
                labels = labels.astype(np.int64, copy=False)
            else:
                if labels.dtype != inputs.dtype:
                    raise TypeError(f"labels dtype {labels.dtype.name} differs from inputs dtype {inputs.dtype.name}")
                if labels.shape != inputs.shape:
                    raise ValueError(f"labels shape {labels.shape} differs from inputs shape {inputs.shape}")
            with np.errstate(all="ignore"):
                return np.asarray(fn(inputs, labels, inputs.dtype.type))

        return wrapper

    return decorate


_elementwise, _rows, _sparse = _checked("elementwise"), _checked("rows"), _checked("sparse")


def _clip(p: np.ndarray, t: type) -> np.ndarray:
    """Keras' clip to ``[eps, 1 - eps]`` with both bounds rounded to the dtype (as ``_to_tensor`` did)."""
    eps = t(KERAS_EPSILON)
    return np.minimum(np.maximum(p, eps), t(1) - eps)


def _tf_formula(x: np.ndarray, z: np.ndarray, t: type) -> np.ndarray:
    """``max(x, 0) - x*z + log(1 + exp(-abs(x)))`` exactly as the TF docs write it (``log``, not ``log1p``)."""
    return np.maximum(x, t(0)) - x * z + np.log(t(1) + np.exp(-np.abs(x)))


def _take(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.take_along_axis(x, c[..., None], axis=-1)[..., 0]


def _one_hot(c: np.ndarray, k: int, t: type) -> np.ndarray:
    return (c[..., None] == np.arange(k)).astype(t)


# ----------------------------------------------------------------------------------------------- sigmoid_ce


@_elementwise
def sigmoid_naive(x, z, t):
    s = t(1) / (t(1) + np.exp(-x))
    return z * -np.log(s) + (t(1) - z) * -np.log(t(1) - s)


@_elementwise
def sigmoid_naive_rearranged(x, z, t):
    return x * (t(1) - z) + np.log(t(1) + np.exp(-x))


@_elementwise
def sigmoid_keras_clipped(x, z, t):
    p = _clip(t(1) / (t(1) + np.exp(-x)), t)
    logits = np.log(p / (t(1) - p))
    return _tf_formula(logits, z, t)


@_elementwise
def sigmoid_numpy_stable(x, z, t):
    return np.maximum(x, t(0)) - x * z + np.log1p(np.exp(-np.abs(x)))


# ------------------------------------------------------------------------------------------------ binary_ce


@_elementwise
def binary_naive(p, z, t):
    return -(z * np.log(p) + (t(1) - z) * np.log(t(1) - p))


@_elementwise
def binary_keras_clipped(p, z, t):
    p = _clip(p, t)
    logits = np.log(p / (t(1) - p))
    return _tf_formula(logits, z, t)


def _xlogy(w: np.ndarray, y: np.ndarray, t: type) -> np.ndarray:
    """``w * log(y)`` with ``0 * log(y) = 0`` unless ``y`` is nan (scipy.special.xlogy's convention)."""
    return np.where((w == t(0)) & ~np.isnan(y), t(0), w * np.log(y))


def _xlog1py(w: np.ndarray, y: np.ndarray, t: type) -> np.ndarray:
    """``w * log1p(y)`` with ``0 * log1p(y) = 0`` unless ``y`` is nan (scipy.special.xlog1py's convention)."""
    return np.where((w == t(0)) & ~np.isnan(y), t(0), w * np.log1p(y))


@_elementwise
def binary_numpy_stable(p, z, t):
    return -(_xlogy(z, p, t) + _xlog1py(t(1) - z, -p, t))


# ----------------------------------------------------------------------------------------------- softmax_ce


def _softmax_unshifted(x: np.ndarray) -> np.ndarray:
    e = np.exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def _keras_probabilities(x: np.ndarray, t: type) -> np.ndarray:
    """Shifted softmax, renormalized (``p /= sum(p)``) and clipped, as Keras 2's categorical_crossentropy."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    p = e / np.sum(e, axis=-1, keepdims=True)
    p = p / np.sum(p, axis=-1, keepdims=True)
    return _clip(p, t)


@_rows
def softmax_naive(x, z, t):
    return -np.sum(z * np.log(_softmax_unshifted(x)), axis=-1)


@_rows
def softmax_naive_rearranged(x, z, t):
    return -np.sum(z * (x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))), axis=-1)


@_rows
def softmax_keras_clipped(x, z, t):
    return -np.sum(z * np.log(_keras_probabilities(x, t)), axis=-1)


@_rows
def softmax_numpy_stable(x, z, t):
    y = x - np.max(x, axis=-1, keepdims=True)
    return -np.sum(z * (y - np.log(np.sum(np.exp(y), axis=-1, keepdims=True))), axis=-1)


# ---------------------------------------------------------------------------------------- sparse_softmax_ce


@_sparse
def sparse_naive(x, c, t):
    return -np.log(_take(_softmax_unshifted(x), c))


@_sparse
def sparse_naive_rearranged(x, c, t):
    return np.log(np.sum(np.exp(x), axis=-1)) - _take(x, c)


@_sparse
def sparse_keras_clipped(x, c, t):
    z = _one_hot(c, x.shape[-1], t)
    return -np.sum(z * np.log(_keras_probabilities(x, t)), axis=-1)


@_sparse
def sparse_numpy_stable(x, c, t):
    m = np.max(x, axis=-1, keepdims=True)
    return np.log(np.sum(np.exp(x - m), axis=-1)) - (_take(x, c) - m[..., 0])
