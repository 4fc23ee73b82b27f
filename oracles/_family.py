"""What every loss family shares: input checking, and the interval helpers the families evaluate with.

A family (one module each: ``_sigmoid_ce``, ``_binary_ce``, ``_softmax_ce``, ``_sparse_softmax_ce``) defines
the exact real-valued loss and gradient of its inputs, taken exactly as the floats given, including the
limit values at infinite inputs. It returns, per example, a function of a private interval context that
gives one enclosure per output value (see :mod:`oracles._ziv`).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np

from ._fast import Estimate
from ._ziv import CONVERGED, Enclosure, workprec

__all__ = ["Family", "Evaluator", "as_float_array", "check_same_shape", "check_unit_interval", "index_text", "log1p", "log", "exp"]

Evaluator = Callable[[Any], Sequence[Enclosure]]

_EXACT_FLOAT_KINDS = {"float16", "bfloat16", "float32", "float64"}


class Family:
    """A loss family: its inputs, its exact loss and gradient. Subclasses fill in the class attributes."""

    name: str = ""
    input_name: str = "logits"  # or "probs"
    row_wise: bool = False  # True: the last axis holds the K classes of one example
    label_kind: str = "soft"  # "soft": floats in [0, 1]; "index": integer class in [0, K)
    definition: str = ""
    # Status of the values the fast path decides (that of the Ziv path for the same values).
    fast_status: dict[str, str] = {"loss": CONVERGED, "gradient": CONVERGED}

    def prepare(self, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """Check and convert the inputs; return (float64 inputs, labels) or raise a one-line ValueError."""
        raise NotImplementedError

    def batch_shape(self, inputs: np.ndarray) -> tuple[int, ...]:
        """Shape of the per-example losses (``reduction='none'``)."""
        return inputs.shape[:-1] if self.row_wise else inputs.shape

    def loss(self, x: Any, z: Any) -> Evaluator:
        """Evaluator of the loss of one example (one output)."""
        raise NotImplementedError

    def gradient(self, x: Any, z: Any) -> Evaluator:
        """Evaluator of the gradient of one example's loss with respect to its inputs (one output per input)."""
        raise NotImplementedError

    def fast_loss(self, x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate | None:
        """Float64 estimates of the per-example losses of a batch, with error bounds (see
        :mod:`oracles._fast`), double-double ones if ``precise`` (float64 targets); ``None``: no fast
        path, every value goes to the Ziv path."""
        return None

    def fast_gradient(self, x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate | None:
        """Estimates of the gradient components of a batch (shape of ``x``), as :meth:`fast_loss`."""
        return None

    def __repr__(self) -> str:
        return f"<family {self.name}>"


def as_float_array(family: str, name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array holding exactly the values given; integers must be exact in float64."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{family}: {name} could not be read as an array ({exc}); pass a numeric array") from None
    kind = arr.dtype.name
    if kind in _EXACT_FLOAT_KINDS:
        return arr.astype(np.float64)
    if arr.dtype.kind in "iub":
        out = arr.astype(np.float64)
        if arr.dtype.kind != "b" and arr.size and not np.array_equal(out.astype(arr.dtype), arr):
            raise ValueError(f"{family}: {name} holds integers not exact in float64; pass floats")
        return out
    raise ValueError(
        f"{family}: {name} has dtype {arr.dtype.name!r}; pass float16, bfloat16, float32, float64 or integers"
    )


def index_text(shape: tuple[int, ...], flat: int) -> str:
    return "[" + ", ".join(str(i) for i in np.unravel_index(flat, shape)) + "]" if shape else ""


def check_unit_interval(family: str, name: str, arr: np.ndarray, meaning: str) -> None:
    """Raise ``ValueError`` naming the first value of ``arr`` outside [0, 1] (nan is allowed: it propagates)."""
    bad = np.flatnonzero((arr < 0) | (arr > 1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{family}: {name}{index_text(arr.shape, i)} = {float(arr.flat[i])!r} is outside [0, 1]"
            f" ({bad.size} such value{'s' if bad.size > 1 else ''}); {meaning}"
        )


def check_same_shape(family: str, a_name: str, a: np.ndarray, b_name: str, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{family}: {a_name} shape {a.shape} differs from {b_name} shape {b.shape}; pass arrays of one shape"
        )


def log1p(ctx: Any, t: Any) -> Any:
    """Rigorous enclosure of ``log(1 + t)`` for an interval ``t`` in ``(-1/2, inf)`` not straddling 0.

    For ``|t| < 2**-prec`` the series gives ``t - t**2 <= log1p(t) <= t``; otherwise ``1 + t`` is formed
    with enough extra bits that the logarithm keeps the context's relative accuracy.
    """
    if t.a == 0 and t.b == 0:
        return ctx.mpf(0)
    prec = ctx.prec
    mag = ctx.mag(max(abs(t.a), abs(t.b)))
    if mag < -prec:
        return ctx.mpf([(t - t * t).a, t.b])
    with workprec(ctx, prec + max(0, -mag) + 16):
        return log(ctx, 1 + t)


def exp(ctx: Any, t: Any) -> Any:
    """Rigorous enclosure of ``exp(t)`` for an interval ``t``: mpmath's, widened by two units in the last place.

    mpmath's ``mpf_exp`` rounds an approximation carrying a few guard bits in the requested direction; when
    that approximation happens to be representable it is returned as exact for both directions, so the
    interval ``exp`` is a point that misses the true value. This is systematic for tiny arguments, where
    ``exp(-t)`` is ``1 - t`` up to a ``t**2/2`` below the guard bits (a ``sigmoid_ce`` gradient at a subnormal
    logit with label 1/2, ``x/4`` plus a tiny cubic term, was rounded to the wrong side of a midpoint).
    ``exp(0) = 1`` stays exact.
    """
    e = ctx.exp(t)
    if t.a == 0 and t.b == 0:
        return e
    return _widened(ctx, e)


def log(ctx: Any, t: Any) -> Any:
    """Rigorous enclosure of ``log(t)`` for an interval ``t > 0``: mpmath's, widened like :func:`exp` (its
    ``mpf_log`` rounds a guard-bit approximation the same way). ``log(1) = 0`` stays exact."""
    value = ctx.log(t)
    if t.a == 1 and t.b == 1:
        return value
    return _widened(ctx, value)


def _widened(ctx: Any, value: Any) -> Any:
    """``value`` times ``[1 - 2**(1-prec), 1 + 2**(1-prec)]`` (outward-rounded)."""
    factor = _WIDENING.get((id(ctx), ctx.prec))
    if factor is None:  # the same interval at each precision: made once (it keeps its context alive)
        factor = _WIDENING[(id(ctx), ctx.prec)] = 1 + ctx.mpf([-1, 1]) * ctx.mpf(2) ** (1 - ctx.prec)
    return value * factor


_WIDENING: dict = {}
