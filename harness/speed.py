"""Speed of a candidate per element, with a memory copy of the same arrays as the yardstick in the same run.

Absolute seconds mean little across machines; the ratio ``candidate / copy`` is what a report compares.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

import oracles

from ._records import Speed

__all__ = ["speed_inputs", "time_candidate"]

_CLASSES = 10


def speed_inputs(family: str, dtype: str, elements: int, seed: int = 0, labels: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Arrays of ``elements`` input values for ``family`` in ``dtype``: moderate logits (or probabilities)
    and soft labels (0/1 labels when ``labels`` is ``"hard"``); row families use rows of 10 classes."""
    fam = oracles.get_family(family)
    fmt = oracles.resolve_format(dtype)
    rng = np.random.default_rng(seed)
    if fam.row_wise:
        shape = (max(1, elements // _CLASSES), _CLASSES)
    else:
        shape = (elements,)
    if fam.input_domain == "unit":  # probabilities
        x = rng.random(shape)
    else:
        x = rng.standard_normal(shape) * 8
    if fam.label_kind == "index":
        z = rng.integers(0, shape[-1], shape[:-1]).astype(np.int64)
    elif fam.row_wise:
        z = rng.random(shape)
        z = (z / z.sum(axis=-1, keepdims=True)).astype(fmt.numpy_dtype)
    else:
        z = rng.random(shape).astype(fmt.numpy_dtype)
    if labels == "hard" and z.dtype.kind == "f":
        z = (z.astype(np.float64) >= 0.5).astype(fmt.numpy_dtype)
    return x.astype(fmt.numpy_dtype), z


def _best_of(repeats: int, call: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def time_candidate(fn: Callable[[np.ndarray, np.ndarray], Any], x: np.ndarray, z: np.ndarray, repeats: int = 3) -> Speed:
    """Best-of-``repeats`` time of ``fn(x, z)`` and of copying ``x`` and ``z``, per input element."""
    with np.errstate(all="ignore"):
        fn(x, z)  # warm up: imports, tracing, XLA compilation
        candidate = _best_of(repeats, lambda: fn(x, z))
    copy = _best_of(repeats, lambda: (x.copy(), z.copy()))
    n = x.size
    return Speed(elements=n, candidate_ns_per_element=candidate / n * 1e9, copy_ns_per_element=copy / n * 1e9)
