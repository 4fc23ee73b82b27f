"""The oracle's entry points: the ground-truth record and the functions built on it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import mpmath
import numpy as np

from ._family import Evaluator, Family
from ._formats import Format, resolve_format
from ._ziv import UNCONVERGED, Settled, settle

__all__ = ["FAMILIES", "REDUCTIONS", "Truth", "OracleUnconverged", "get_family", "evaluate", "loss", "gradient", "exact", "format_exact"]

# Registry: family name -> "module:attribute" of its definition, imported on first use.
FAMILIES: dict[str, str] = {
    "sigmoid_ce": "oracles._sigmoid_ce:FAMILY",
    "binary_ce": "oracles._binary_ce:FAMILY",
    "softmax_ce": "oracles._softmax_ce:FAMILY",
    "sparse_softmax_ce": "oracles._sparse_softmax_ce:FAMILY",
}
REDUCTIONS = ("none", "sum", "mean")
_WHAT = ("loss", "gradient")


class OracleUnconverged(ArithmeticError):
    """The oracle could not decide a rounding below its precision cap; nothing was guessed."""


def get_family(name: str) -> Family:
    """The family definition registered under ``name`` (``ValueError`` naming the known ones otherwise)."""
    path = FAMILIES.get(name) if isinstance(name, str) else None
    if path is None:
        raise ValueError(f"family={name!r} is not one of: {', '.join(FAMILIES)}")
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True, slots=True, eq=False)
class Truth:
    """Ground truth for one evaluation: the points and their exact, correctly rounded values.

    ``inputs``/``labels``: the points, as the float64 (or integer) arrays that were evaluated;
    ``rounded``: correctly rounded values in ``dtype`` (nan placeholders where ``status`` is
    ``unconverged``); ``exact``: object array of ``mpmath.mpf``, the exact values (closed forms) or the
    midpoints of enclosures narrower than ``2**-70`` relative; ``status``: ``exact``, ``converged``, ``nan``
    or ``unconverged`` per value; ``precision``: working bits at which each value settled (0: closed form).
    """

    family: str
    what: str
    dtype: str
    reduction: str
    inputs: np.ndarray
    labels: np.ndarray
    rounded: np.ndarray
    exact: np.ndarray
    status: np.ndarray
    precision: np.ndarray

    @property
    def converged(self) -> np.ndarray:
        """Boolean mask of values whose rounding is decided (``status != 'unconverged'``)."""
        return self.status != UNCONVERGED

    @property
    def unconverged(self) -> int:
        return int((self.status == UNCONVERGED).sum())

    def raise_if_unconverged(self) -> None:
        bad = np.argwhere(self.status == UNCONVERGED)
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            raise OracleUnconverged(
                f"{self.family} {self.what} at index {where}: rounding to {self.dtype} not decided at"
                f" {int(self.precision[where])} bits ({len(bad)} value(s)); oracles.evaluate() returns the rest"
            )


def _scale(enclosure: Any, n: int) -> Any:
    """``enclosure / n``: exact for fractions, outward-rounded for intervals, unchanged for nan and ±inf."""
    return enclosure if isinstance(enclosure, float) else enclosure / n


def _sum(enclosures: list, ctx: Any) -> Any:
    """Sum of non-negative per-example losses: nan wins, then +inf, else exact part plus interval part."""
    exact = Fraction(0)
    interval = None
    has_inf = False
    for enc in enclosures:
        if isinstance(enc, float):
            if enc != enc:
                return enc
            has_inf = True
        elif isinstance(enc, Fraction):
            exact += enc
        else:
            interval = enc if interval is None else interval + enc
    if has_inf:
        return float("inf")
    if interval is None:
        return exact
    if exact:
        interval = interval + ctx.mpf(exact.numerator) / exact.denominator
    return interval


def _reduced_loss(evaluators: list[Evaluator], reduction: str) -> Evaluator:
    n = len(evaluators)

    def evaluate(ctx: Any) -> list:
        total = _sum([ev(ctx)[0] for ev in evaluators], ctx)
        return [_scale(total, n) if reduction == "mean" else total]

    return evaluate


def _scaled(evaluator: Evaluator, n: int) -> Evaluator:
    return lambda ctx: [_scale(enc, n) for enc in evaluator(ctx)]


def evaluate(
    family: str,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any,
    dtype: Any,
    reduction: str = "none",
    what: str = "loss",
) -> Truth:
    """Exact, correctly rounded values of a family's loss (or gradient) at the given points, as a record.

    ``family``: a name from :data:`FAMILIES`; pass ``logits=`` or ``probs=`` as the family takes them
    (``binary_ce`` takes ``probs``). ``dtype``: float16, bfloat16, float32 or float64. ``reduction``:
    ``none`` (one value per example), ``sum`` or ``mean`` (the exact sum or mean of the exact per-example
    losses, rounded once; for gradients, the gradient of that reduced loss). ``what``: ``loss`` or
    ``gradient`` (shape of the inputs). Unconverged values are marked, not raised: see :class:`Truth`.
    """
    fam = get_family(family)
    fmt = resolve_format(dtype)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of: {', '.join(REDUCTIONS)}")
    if what not in _WHAT:
        raise ValueError(f"what={what!r} is not one of: {', '.join(_WHAT)}")
    given = {"logits": logits, "probs": probs}
    other = "probs" if fam.input_name == "logits" else "logits"
    if given[other] is not None:
        raise ValueError(f"{fam.name} takes {fam.input_name}=, not {other}=; pass {fam.input_name}=...")
    if given[fam.input_name] is None:
        raise ValueError(f"{fam.name} needs {fam.input_name}=...; pass the {fam.input_name} array")
    x, z = fam.prepare(given[fam.input_name], labels)
    batch = fam.batch_shape(x)
    n = int(np.prod(batch, dtype=np.int64))
    if reduction == "mean" and n == 0:
        raise ValueError(f"{fam.name}: reduction='mean' over an empty batch is undefined; pass at least one example")

    settled: list[Settled]
    if what == "loss":
        evaluators = [fam.loss(x[idx], z[idx]) for idx in np.ndindex(batch)]
        if reduction == "none":
            settled = [settle(ev, 1, fmt)[0] for ev in evaluators]
            shape = batch
        else:
            settled = settle(_reduced_loss(evaluators, reduction), 1, fmt)
            shape = ()
    else:
        width = x.shape[-1] if fam.row_wise else 1
        settled = []
        for idx in np.ndindex(batch):
            ev = fam.gradient(x[idx], z[idx])
            if reduction == "mean":
                ev = _scaled(ev, n)
            settled.extend(settle(ev, width, fmt))
        shape = x.shape
    return _record(fam, what, fmt, reduction, x, z, settled, shape)


def _record(fam: Family, what: str, fmt: Format, reduction: str, x, z, settled: list[Settled], shape) -> Truth:
    rounded = np.array([s.rounded for s in settled], dtype=np.float64).reshape(shape)
    exact_values = np.empty(len(settled), dtype=object)
    for i, s in enumerate(settled):
        exact_values[i] = mpmath.mp.make_mpf(s.exact)
    status = np.array([s.status for s in settled], dtype="<U11").reshape(shape)
    precision = np.array([s.precision for s in settled], dtype=np.int64).reshape(shape)
    return Truth(
        family=fam.name,
        what=what,
        dtype=fmt.name,
        reduction=reduction,
        inputs=x,
        labels=z,
        rounded=rounded.astype(fmt.numpy_dtype),
        exact=exact_values.reshape(shape),
        status=status,
        precision=precision,
    )


def _array_api(what: str) -> Callable[..., np.ndarray]:
    def function(family: str, *, logits: Any = None, probs: Any = None, labels: Any, dtype: Any, reduction: str = "none") -> np.ndarray:
        truth = evaluate(family, logits=logits, probs=probs, labels=labels, dtype=dtype, reduction=reduction, what=what)
        truth.raise_if_unconverged()
        return truth.rounded

    return function


loss = _array_api("loss")
loss.__name__ = loss.__qualname__ = "loss"
loss.__doc__ = """The loss correctly rounded to ``dtype`` (numpy array in ``dtype``); arguments as :func:`evaluate`.

Raises :class:`OracleUnconverged` if any value could not be settled (never returns a guess)."""

gradient = _array_api("gradient")
gradient.__name__ = gradient.__qualname__ = "gradient"
gradient.__doc__ = """The gradient with respect to ``logits`` (``probs`` for ``binary_ce``) of the loss with the
given ``reduction``, each component correctly rounded to ``dtype``; arguments as :func:`evaluate`."""


def exact(
    family: str,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any,
    dtype: Any = "float64",
    reduction: str = "none",
    what: str = "loss",
) -> np.ndarray:
    """Exact values as an object array of ``mpmath.mpf`` (closed forms exactly; otherwise within ``2**-70``
    relative, and on the right side of every rounding boundary of ``dtype``), for error measurement."""
    truth = evaluate(family, logits=logits, probs=probs, labels=labels, dtype=dtype, reduction=reduction, what=what)
    truth.raise_if_unconverged()
    return truth.exact



def format_exact(value: Any, digits: int = 20) -> str:
    """An exact value as decimal text with ``digits`` significant digits (``inf``, ``-inf``, ``nan`` as such)."""
    return mpmath.nstr(value, digits, strip_zeros=False, min_fixed=-4, max_fixed=digits)
