"""Reductions along the last axis of row batches, for the narrow rows of a sweep.

numpy reduces along a contiguous last axis of a few elements with a per-row inner loop: for a million
two-class rows ``x.max(axis=-1)`` takes about 40 ms and ``x.sum(axis=-1)`` 20 ms, against 1 ms for the
same operations as elementwise passes over the columns. For rows of fewer than :data:`NARROW` elements
these functions are those column passes; wider rows go to numpy's reduction unchanged.

**Same results as numpy, to the bit.** For rows this narrow numpy's sum is the sequential
``((0.0 + a[0]) + a[1]) + ...`` (its pairwise summation starts at 8 elements), which :func:`row_sum` carries
out in the same order, from the same ``+0.0`` (so a row of ``-0.0`` sums to ``+0.0``, as numpy's); ``max``
and ``argmax`` propagate nan and pick the first maximum as numpy's do; ``all``/``any`` are exact.
``tests/unit/test_rows.py`` holds each to numpy's reduction on adversarial rows (signed zeros, ±inf, nan,
ties, subnormals) of every narrow width.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NARROW", "row_all", "row_any", "row_argmax", "row_max", "row_sum"]

# rows of fewer elements take column passes: from 5 elements numpy's max reduction (an unrolled loop) may
# return the other zero of a tie between -0.0 and +0.0, and from 8 its sum is pairwise
NARROW = 5
_SEQUENTIAL = (np.dtype(np.float32), np.dtype(np.float64))  # (float16 sums accumulate otherwise)


def _columns(a: np.ndarray) -> int:
    return a.shape[-1] if a.ndim else 0


def _narrow(a: np.ndarray) -> bool:
    return a.ndim >= 1 and 1 <= a.shape[-1] < NARROW


def _finish(out: np.ndarray, keepdims: bool) -> np.ndarray:
    return out[..., None] if keepdims else out


def row_sum(a: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``a.sum(axis=-1, keepdims=keepdims)``, bit for bit (see the module docstring); of a boolean array,
    the count of True per row."""
    a = np.asarray(a)
    if a.dtype == bool and _narrow(a):  # a count per row (numpy's int64), exact in any order
        out = a[..., 0].astype(np.int64)
    elif not _narrow(a) or a.dtype not in _SEQUENTIAL:
        return a.sum(axis=-1, keepdims=keepdims)
    else:
        out = a[..., 0] + a.dtype.type(0.0)  # numpy's sequential sum starts from +0.0
    for j in range(1, _columns(a)):
        out += a[..., j]
    return _finish(out, keepdims)


def row_max(a: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``a.max(axis=-1, keepdims=keepdims)``, bit for bit: nan if the row holds one."""
    a = np.asarray(a)
    if not _narrow(a):
        return a.max(axis=-1, keepdims=keepdims)
    out = a[..., 0].copy()
    for j in range(1, _columns(a)):
        np.maximum(out, a[..., j], out=out)
    return _finish(out, keepdims)


def row_argmax(a: np.ndarray) -> np.ndarray:
    """``np.argmax(a, axis=-1)``: the index of each row's first maximum, or of its first nan."""
    a = np.asarray(a)
    if not _narrow(a) or a.dtype.kind != "f":
        return np.argmax(a, axis=-1)
    best = a[..., 0].copy()
    at = np.zeros(best.shape, dtype=np.intp)
    seen_nan = np.isnan(best)
    for j in range(1, _columns(a)):
        col = a[..., j]
        with np.errstate(invalid="ignore"):
            take = ~seen_nan & ((col > best) | np.isnan(col))  # a nan wins once, then nothing does
        at[take] = j
        best = np.where(take, col, best)
        seen_nan |= np.isnan(col)
    return at


def row_all(a: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``a.all(axis=-1, keepdims=keepdims)`` of a boolean array."""
    return _fold_mask(a, keepdims, np.logical_and, "all")


def row_any(a: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``a.any(axis=-1, keepdims=keepdims)`` of a boolean array."""
    return _fold_mask(a, keepdims, np.logical_or, "any")


def _fold_mask(a: np.ndarray, keepdims: bool, op: np.ufunc, method: str) -> np.ndarray:
    a = np.asarray(a)
    if not _narrow(a) or a.dtype != bool:
        return getattr(a, method)(axis=-1, keepdims=keepdims)
    out = a[..., 0].copy()
    for j in range(1, _columns(a)):
        op(out, a[..., j], out=out)
    return _finish(out, keepdims)
