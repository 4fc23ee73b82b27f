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


# ============================================================================================== gradients
#
# ``<formula>_grad``: the derivative of each formula above with respect to its inputs, AS WRITTEN: what
# reverse-mode autodiff of that very numpy code gives (the chain rule run backwards through each operation,
# every factor evaluated in the input dtype, the forward intermediates as numpy computed them). So the
# formula's own numerical faults reach the gradient: ``exp`` overflow makes ``inf`` factors, and ``0 * inf``
# or ``0 / 0`` in the chain gives nan, exactly where autodiff of the formula would; a clip has derivative 0
# outside its window (the vanishing gradient); a ``where`` sends a zero cotangent into the branch it did not
# select, whose own derivative may still be ``0/0`` (the where-masked nan of ``xlogy``).
#
# The conventions at kinks are those of the numpy-API autodiff systems, JAX (``jax.numpy``) and HIPS
# autograd, which agree on them:
# - ``maximum(a, b)`` / ``minimum(a, b)``: derivative 1 to the argument equal to the result, 0 to the other,
#   0.5 to each at a tie (JAX's ``_balanced_eq``, autograd's ``balanced_eq``); so ``d max(x, 0)/dx`` is 1
#   for x > 0, 0 for x < 0 and 0.5 at x = 0, and 0 at a nan x (nan == nan is false). TensorFlow's Maximum
#   gradient gives the whole 1 to x at the tie instead (``x >= y``): not a numpy convention, not used here.
# - ``abs(x)``: ``sign(x)`` (0 at 0, as JAX; nan at nan).
# - ``max(x, axis)`` (the row shift): the cotangent split evenly among the maxima (JAX's reduce_max rule).
# - ``where(c, a, b)``: the cotangent goes to the selected branch, 0 to the other (both JAX and autograd).


def _balanced(x: np.ndarray, ans: np.ndarray, other: np.ndarray, t: type) -> np.ndarray:
    """Derivative of ``maximum(x, other)`` (or ``minimum``) with respect to ``x``, ``ans`` its result:
    1 where ``x`` is the result alone, 0.5 at a tie, 0 where ``other`` is (or the result is nan)."""
    return np.where(x == ans, np.where(other == ans, t(0.5), t(1)), t(0))


def _clip_vjp(p: np.ndarray, t: type, g: np.ndarray) -> np.ndarray:
    """Backward through :func:`_clip` (``minimum(maximum(p, eps), 1 - eps)``): ``g`` times each derivative."""
    eps, top = t(KERAS_EPSILON), t(1) - t(KERAS_EPSILON)
    low = np.maximum(p, eps)
    high = np.minimum(low, top)
    return g * _balanced(low, high, top, t) * _balanced(p, low, eps, t)


def _tf_formula_vjp(x: np.ndarray, z: np.ndarray, t: type) -> np.ndarray:
    """Derivative of :func:`_tf_formula` with respect to ``x``: ``max'(x, 0) - z + (1/(1 + e)) * e * -sign(x)``,
    ``e = exp(-abs(x))``, each factor as autodiff of ``log(1 + exp(-abs(x)))`` takes it."""
    e = np.exp(-np.abs(x))
    d_exp = (t(1) / (t(1) + e)) * e  # d log(1 + e) = 1/(1 + e), then through exp: times e
    return _balanced(x, np.maximum(x, t(0)), t(0), t) - z + (-d_exp) * np.sign(x)


def _logit_vjp(p: np.ndarray, t: type, dl: np.ndarray) -> np.ndarray:
    """Backward through ``l = log(p / (1 - p))``: ``dr = dl / r``, then ``r = p / q``, ``q = 1 - p``:
    ``dr / q`` through the numerator and ``dr * p / q**2`` through the denominator (``dq/dp = -1``)."""
    q = t(1) - p
    dr = dl / (p / q)
    return dr / q + dr * p / (q * q)


def _sigmoid_vjp(x: np.ndarray, t: type, ds: np.ndarray) -> np.ndarray:
    """Backward through ``s = 1 / (1 + exp(-x))``: ``dd = -ds / d**2`` (``d = 1 + e``), then through
    ``e = exp(-x)``: ``dx = -(dd * e)``. ``e`` overflows for very negative x: ``d**2`` is inf and a zero
    ``ds`` meets an infinite ``e`` (``0 * inf = nan``), as in autodiff of the formula."""
    e = np.exp(-x)
    d = t(1) + e
    dd = -ds / (d * d)
    return -(dd * e)


def _row_max_vjp(x: np.ndarray, dm: np.ndarray) -> np.ndarray:
    """Backward through ``m = max(x, axis=-1, keepdims=True)``: ``dm`` split evenly among the maxima."""
    at = (x == np.max(x, axis=-1, keepdims=True)).astype(x.dtype)
    return at * (dm / np.sum(at, axis=-1, keepdims=True))


def _divide_by_sum_vjp(num: np.ndarray, total: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Backward through ``num / total`` with ``total = sum(num, axis=-1, keepdims=True)``: ``g / total``
    through the numerator, plus ``sum(-g * num / total**2)`` through the sum, back to every ``num``."""
    return g / total + np.sum(-g * num / (total * total), axis=-1, keepdims=True)


def _softmax_unshifted_vjp(x: np.ndarray, dsm: np.ndarray) -> np.ndarray:
    """Backward through :func:`_softmax_unshifted` (``e / sum(e)``, ``e = exp(x)``): then times ``e``."""
    e = np.exp(x)
    return _divide_by_sum_vjp(e, np.sum(e, axis=-1, keepdims=True), dsm) * e


def _keras_probabilities_vjp(x: np.ndarray, t: type, dpc: np.ndarray) -> np.ndarray:
    """Backward through :func:`_keras_probabilities`: the clip, the renormalisation ``p / sum(p)``, the
    softmax ``e / sum(e)``, ``e = exp(y)``, and the shift ``y = x - max(x)``."""
    y = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(y)
    p = e / np.sum(e, axis=-1, keepdims=True)
    p2 = p / np.sum(p, axis=-1, keepdims=True)
    dp = _divide_by_sum_vjp(p, np.sum(p, axis=-1, keepdims=True), _clip_vjp(p2, t, dpc))
    dy = _divide_by_sum_vjp(e, np.sum(e, axis=-1, keepdims=True), dp) * e
    return dy + _row_max_vjp(x, -np.sum(dy, axis=-1, keepdims=True))


# --- sigmoid_ce (d/dx; exact: sigmoid(x) - z)


@_elementwise
def sigmoid_naive_grad(x, z, t):
    """``z*-log(s) + (1-z)*-log(1-s)``: ``ds = -z/s + (1-z)/(1-s)``, then back through the sigmoid
    (:func:`_sigmoid_vjp`). ``s`` rounds to 0 or 1 at large ``|x|``: ``-z/0`` or ``0/0`` make it non-finite."""
    s = t(1) / (t(1) + np.exp(-x))
    return _sigmoid_vjp(x, t, -z / s + (t(1) - z) / (t(1) - s))


@_elementwise
def sigmoid_naive_rearranged_grad(x, z, t):
    """``x*(1-z) + log(1 + exp(-x))``: ``(1 - z) + -(e * (1/(1 + e)))``, ``e = exp(-x)``; where ``e``
    overflows (x below about -88.7 in float32) that is ``inf * 0``: nan."""
    e = np.exp(-x)
    return (t(1) - z) + -(e * (t(1) / (t(1) + e)))


@_elementwise
def sigmoid_keras_clipped_grad(x, z, t):
    """Keras' clipped form: the TF formula's derivative in ``l`` (:func:`_tf_formula_vjp`), back through
    ``l = log(p/(1-p))``, the clip (0 outside ``[eps, 1 - eps]``: the vanishing gradient of confident
    logits, ``|x|`` above about 16.1), and the sigmoid (where ``exp(-x)`` overflows, the clip's 0 meets
    an infinite factor: nan)."""
    s = t(1) / (t(1) + np.exp(-x))
    p = _clip(s, t)
    dl = _tf_formula_vjp(np.log(p / (t(1) - p)), z, t)
    return _sigmoid_vjp(x, t, _clip_vjp(s, t, _logit_vjp(p, t, dl)))


@_elementwise
def sigmoid_numpy_stable_grad(x, z, t):
    """``max(x, 0) - x*z + log1p(exp(-abs(x)))``: ``max'(x, 0) - z + (1/(1+e)) * e * -sign(x)``,
    ``e = exp(-abs(x))``; at x = 0 that is ``0.5 - z`` (the tie convention), which is exact."""
    e = np.exp(-np.abs(x))
    d_abs = -((t(1) / (t(1) + e)) * e)
    return _balanced(x, np.maximum(x, t(0)), t(0), t) - z + d_abs * np.sign(x)


# --- binary_ce (d/dp; exact: (p - z) / (p (1 - p)))


@_elementwise
def binary_naive_grad(p, z, t):
    """``-(z*log(p) + (1-z)*log(1-p))``: ``-(z/p) + (1-z)/(1-p)``; at p = 0 with z = 0 (p = 1 with z = 1)
    the zero weight times ``1/0`` is ``0/0``: nan."""
    return -z / p + (t(1) - z) / (t(1) - p)


@_elementwise
def binary_keras_clipped_grad(p, z, t):
    """Keras' clipped form on probabilities: the TF formula's derivative in ``l``, back through
    ``l = log(p/(1-p))`` and the clip (0 for p outside ``[eps, 1 - eps]``)."""
    pc = _clip(p, t)
    dl = _tf_formula_vjp(np.log(pc / (t(1) - pc)), z, t)
    return _clip_vjp(p, t, _logit_vjp(pc, t, dl))


@_elementwise
def binary_numpy_stable_grad(p, z, t):
    """``-(xlogy(z, p) + xlog1py(1-z, -p))`` with the ``where`` of :func:`_xlogy`: the branch not taken
    still gets a zero cotangent, and the derivative of ``log`` there is ``0/0``: nan at p = 0, z = 0 (and
    ``log1p``'s at p = 1, z = 1), where the exact gradient is 1 (-1): the where-masked nan of autodiff."""
    keep_log = ~((z == t(0)) & ~np.isnan(p))  # cotangent 1 into w*log(y) only where where() took it
    keep_log1p = ~(((t(1) - z) == t(0)) & ~np.isnan(-p))
    g_log = np.where(keep_log, -t(1), t(0)) * z  # d(-(w*log y)) / d(log y) = -w, masked by the where
    g_log1p = np.where(keep_log1p, -t(1), t(0)) * (t(1) - z)
    return g_log / p + -(g_log1p / (t(1) + -p))  # d log(y)/dy = 1/y; y = -p: d log1p(y)/dy = 1/(1+y), times -1


# --- softmax_ce (d/dx_j; exact: softmax(x)_j * sum(z) - z_j)


@_rows
def softmax_naive_grad(x, z, t):
    """``-sum(z*log(e/sum(e)))``, ``e = exp(x)`` unshifted: ``dsm = -z/sm``, back through the softmax.
    ``exp`` overflows for logits above about 88.7 (float32): inf/inf = nan."""
    return _softmax_unshifted_vjp(x, -z / _softmax_unshifted(x))


@_rows
def softmax_naive_rearranged_grad(x, z, t):
    """``-sum(z*(x - log(sum(exp(x)))))``: ``-z + (sum(z) / S) * e``, ``S = sum(e)``, ``e = exp(x)``."""
    e = np.exp(x)
    return -z + (np.sum(z, axis=-1, keepdims=True) / np.sum(e, axis=-1, keepdims=True)) * e


@_rows
def softmax_keras_clipped_grad(x, z, t):
    """Keras 2's categorical form: ``dpc = -z/pc``, back through the clip (0 for probabilities outside
    ``[eps, 1 - eps]``), the renormalisation, the shifted softmax and the max shift."""
    return _keras_probabilities_vjp(x, t, -z / _keras_probabilities(x, t))


@_rows
def softmax_numpy_stable_grad(x, z, t):
    """``-sum(z*(y - log(sum(exp(y)))))``, ``y = x - max(x)``: ``dy = -z + (sum(z)/S) * exp(y)``, plus the
    max shift's ``-sum(dy)`` on the row's maxima (0 in exact arithmetic, a rounding residue here)."""
    y = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(y)
    dy = -z + (np.sum(z, axis=-1, keepdims=True) / np.sum(e, axis=-1, keepdims=True)) * e
    return dy + _row_max_vjp(x, -np.sum(dy, axis=-1, keepdims=True))


# --- sparse_softmax_ce (d/dx_j; exact: softmax(x)_j - [j == c])


@_sparse
def sparse_naive_grad(x, c, t):
    """``-log(sm[c])``, ``sm = e/sum(e)`` unshifted: ``-1/sm[c]`` into class c, back through the softmax."""
    z = _one_hot(c, x.shape[-1], t)
    sm = _softmax_unshifted(x)
    return _softmax_unshifted_vjp(x, z * (-t(1) / _take(sm, c))[..., None])


@_sparse
def sparse_naive_rearranged_grad(x, c, t):
    """``log(sum(exp(x))) - x[c]``: ``(1/S) * e - onehot(c)``, ``S = sum(e)`` unshifted."""
    e = np.exp(x)
    return (t(1) / np.sum(e, axis=-1, keepdims=True)) * e - _one_hot(c, x.shape[-1], t)


@_sparse
def sparse_keras_clipped_grad(x, c, t):
    """Keras 2's categorical form on ``one_hot(c)``: as :func:`softmax_keras_clipped_grad`."""
    z = _one_hot(c, x.shape[-1], t)
    return _keras_probabilities_vjp(x, t, -z / _keras_probabilities(x, t))


@_sparse
def sparse_numpy_stable_grad(x, c, t):
    """``log(sum(exp(x - m))) - (x[c] - m)``: ``dy = e/S`` (``e = exp(x - m)``), ``-1`` into class c, and
    ``1 - sum(dy)`` on the row's maxima (``m`` is used twice: in the shift and in ``+ m``)."""
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    dy = (t(1) / np.sum(e, axis=-1, keepdims=True)) * e
    return dy - _one_hot(c, x.shape[-1], t) + _row_max_vjp(x, t(1) - np.sum(dy, axis=-1, keepdims=True))
