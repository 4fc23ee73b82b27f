"""Loss functions for the gate and plugin tests: a stable one and worse ones of sigmoid_ce.

``stable``: the TF docs' stable form evaluated in float64 and rounded once to the input dtype (within 1 ULP
in float32 everywhere on finite inputs). ``worse``: the same form in the input dtype with ``log(1 + e)``
instead of ``log1p(e)`` (``log(1 + exp(-x))`` is 0 for x > 17 in float32: millions of ULP, never
non-finite). ``naive``: the textbook formula through ``sigmoid``, inf/nan for large |x|.

``nan_for_huge``: ``stable`` with nan for |x| > 1e30 (finite inputs). ``every_value_worse``: ``worse`` with every
value 2^-10 too large (issue 11: the gate compared only max ULP).

Each takes ``(labels, logits)`` as TensorFlow does; the ``*_builtin`` ones follow the built-in candidate
convention ``fn(inputs, labels)``.
"""

import numpy as np


def stable(labels, logits):
    x = np.asarray(logits)
    z = np.asarray(labels, dtype=np.float64)
    w = x.astype(np.float64)
    with np.errstate(all="ignore"):
        loss = np.maximum(w, 0) - w * z + np.log1p(np.exp(-np.abs(w)))
    return loss.astype(x.dtype)


def worse(labels, logits):
    x = np.asarray(logits)
    z = np.asarray(labels).astype(x.dtype)
    with np.errstate(all="ignore"):
        return (np.maximum(x, 0) - x * z + np.log(1 + np.exp(-np.abs(x)))).astype(x.dtype)


def naive(labels, logits):
    x = np.asarray(logits)
    z = np.asarray(labels).astype(x.dtype)
    one = x.dtype.type(1)
    with np.errstate(all="ignore"):
        p = one / (one + np.exp(-x))
        return (-(z * np.log(p) + (one - z) * np.log(one - p))).astype(x.dtype)


def stable_builtin(inputs, labels):
    return stable(labels, inputs)


def worse_builtin(inputs, labels):
    return worse(labels, inputs)


def naive_builtin(inputs, labels):
    return naive(labels, inputs)


def nan_for_huge(labels, logits):
    """``stable``, but nan for finite |x| > 1e30: no ULP error grows, non-finite results on finite inputs
    appear (and nothing changes on ±inf inputs, whose regime, ``special``, would show a regression of its own)."""
    x = np.asarray(logits)
    loss = stable(labels, logits)
    with np.errstate(all="ignore"):
        huge = np.isfinite(x) & (np.abs(x.astype(np.float64)) > 1e30)
        return np.where(huge, x.dtype.type(np.nan), loss).astype(x.dtype)


def every_value_worse(labels, logits):
    """``worse`` times (1 + 2^-10): every value about 2^13 ULP off in float32 (the median and the mean bits
    grow), while the max stays the 1.7e7 ULP of the losses ``worse`` returns as 0 (0 times anything is 0)."""
    loss = worse(labels, logits)
    with np.errstate(over="ignore"):
        scaled = loss * loss.dtype.type(1 + 2.0 ** -10)
    # near the largest float the product overflows: keep those finite, so no non-finite result is new
    return np.where(np.isfinite(loss) & ~np.isfinite(scaled), np.finfo(loss.dtype).max, scaled).astype(loss.dtype)
