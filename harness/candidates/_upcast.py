"""The mixed-precision pattern as a candidate variant: half-precision inputs, the loss computed in float32, the
result cast back to the input's half format.

This is what Keras mixed precision does around a loss and what TensorFlow's softmax kernels do inside for
float16; a ``<candidate>_upcast`` variant scores the base candidate under that pattern, so a report shows
where a library lacks it (its plain row in float16/bfloat16 is far worse than its ``_upcast`` row).

Both casts are single roundings: float16 and bfloat16 widen to float32 exactly, and numpy's float32 →
float16 and ``ml_dtypes``' float32 → bfloat16 casts round to nearest even once (never through float64). The
value so produced is rounded twice from the exact loss (by the base in float32, then to the half format):
the pattern's own, usually sub-ULP, cost.
"""

from __future__ import annotations

from functools import wraps
from typing import Callable

import numpy as np

HALF_DTYPES: tuple[str, ...] = ("float16", "bfloat16")


def computed_in_float32(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``fn`` run on float32 copies of half-precision inputs (and float labels), its float32 result cast back
    once to the inputs' dtype. Other input dtypes raise :class:`~harness.candidates.Unsupported`; a result that
    is not float32 (the base changed the dtype) is returned as is, for the scorer to report."""
    from ._registry import dtype_name

    @wraps(fn)
    def upcast(inputs: np.ndarray, labels: np.ndarray, **params: float) -> np.ndarray:
        inputs, labels = np.asarray(inputs), np.asarray(labels)
        dtype_name(inputs, HALF_DTYPES)
        wide_labels = labels.astype(np.float32) if labels.dtype == inputs.dtype else labels
        out = np.asarray(fn(inputs.astype(np.float32), wide_labels, **params))
        if out.dtype != np.float32:
            return out
        with np.errstate(over="ignore"):  # a float32 loss above the half format's range rounds to inf
            return out.astype(inputs.dtype)

    return upcast
