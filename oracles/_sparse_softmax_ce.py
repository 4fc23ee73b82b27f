"""``sparse_softmax_ce``: softmax cross-entropy with an integer class index.

Definition (one example: logits ``x[0..K-1]`` exactly as given, class index ``c`` with ``0 <= c < K``)::

    L(x, c) = logsumexp(x) - x[c]

which is ``softmax_ce`` with the one-hot label of ``c``: the evaluation, the limit values at infinite
logits and the nan rule are those of :mod:`oracles._softmax_ce`. Gradient: ``softmax(x) - onehot(c)``.
A class index outside ``[0, K)`` or a non-integer label is a ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._family import ROW_REGIMES, Evaluator, Family, as_float_array, index_text
from ._fast import Estimate
from ._softmax_ce import fast_row_gradient, fast_row_loss, row_gradient, row_loss


def _one_hot(index: int, k: int) -> np.ndarray:
    z = np.zeros(k)
    z[index] = 1.0
    return z


class SparseSoftmaxCE(Family):
    name = "sparse_softmax_ce"
    input_name = "logits"
    row_wise = True
    label_kind = "index"
    definition = "logsumexp(x) - x[c] over the last axis, c an integer class index"
    regimes = ROW_REGIMES[:-1]  # special, tiny, confident (confident-correct rows), hard (no soft: a class index)
    benign = (((-1.0, 0.5, 2.0, 0.25), (0.0, 1.5, -0.5, 1.0), (1.75, -2.0, 0.75, 0.0)), (1, 2, 3))

    def prepare(self, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        x = as_float_array(self.name, "logits", inputs)
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"{self.name}: logits shape {x.shape} has no class axis; pass logits of shape [..., K], K >= 1")
        c = np.asarray(labels)
        if c.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: labels have dtype {c.dtype.name!r}; pass integer class indices")
        if c.shape != x.shape[:-1]:
            raise ValueError(
                f"{self.name}: labels shape {c.shape} does not match logits shape {x.shape} without its class"
                f" axis {x.shape[:-1]}; pass one class index per row"
            )
        k = x.shape[-1]
        bad = np.flatnonzero((c < 0) | (c >= k))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{self.name}: labels{index_text(c.shape, i)} = {int(c.flat[i])} is outside [0, {k}) ({bad.size} such"
                f" value{'s' if bad.size > 1 else ''}); class indices must be in [0, K) for K = {k} classes"
            )
        return x, c.astype(np.int64)

    def loss(self, x: np.ndarray, c: int) -> Evaluator:
        return row_loss(x, _one_hot(int(c), x.size))

    def gradient(self, x: np.ndarray, c: int) -> Evaluator:
        return row_gradient(x, _one_hot(int(c), x.size))

    def fast_loss(self, x: np.ndarray, c: np.ndarray, precise: bool = False) -> Estimate:
        return fast_row_loss(x, _one_hot_rows(c, x.shape[-1]), precise)

    def fast_gradient(self, x: np.ndarray, c: np.ndarray, precise: bool = False) -> Estimate:
        return fast_row_gradient(x, _one_hot_rows(c, x.shape[-1]), precise)


def _one_hot_rows(c: np.ndarray, k: int) -> np.ndarray:
    return (np.asarray(c)[..., None] == np.arange(k)).astype(np.float64)


FAMILY = SparseSoftmaxCE()
