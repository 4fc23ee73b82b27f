"""Ziv's strategy: evaluate an enclosure of the exact value, raise the precision until the rounding is decided.

A family evaluates each output value as an *enclosure* at a working precision ``p`` given by a private
mpmath interval context:

- an interval (``ivmpf``) certain to contain the exact real value, from mpmath's outward-rounded interval
  arithmetic;
- a :class:`fractions.Fraction`, when the value is known in closed form (exact zeros, rational gradients,
  limits such as ``0`` at ``x=+inf, z=1``);
- a ``float`` ``nan``/``±inf``, for nan inputs and infinite limit values.

:func:`settle` raises ``p`` (96 bits, then doubling) until both ends of the interval round to the same value
of the target format, lie in the same binade (so the ULP of the exact value is known), and are within
``2**-70`` of each other relatively (20 correct significant digits for reports). Only then is the rounding
the correct rounding of the exact value. At :data:`MAX_PRECISION` bits it stops and reports the value as
unconverged with the precision reached: never a guess, never nan.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator, Sequence, Union

from mpmath import libmp
from mpmath.ctx_iv import MPIntervalContext

from ._formats import Format
from ._rounding import exponent_of, float_key, nudge, round_mpf, round_rational

__all__ = [
    "Enclosure",
    "Settled",
    "settle",
    "interval_context",
    "workprec",
    "START_PRECISION",
    "MAX_PRECISION",
    "EXACT",
    "CONVERGED",
    "NAN",
    "UNCONVERGED",
]

START_PRECISION = 96
MAX_PRECISION = 1 << 16
_REL_WIDTH_BITS = 70

EXACT = "exact"  # closed form (including limit values), rounded once from the exact rational
CONVERGED = "converged"  # interval evaluation settled by Ziv's strategy
NAN = "nan"  # the exact value is undefined (nan input)
UNCONVERGED = "unconverged"  # precision cap reached before the rounding was decided

Enclosure = Union["object", Fraction, float]  # ivmpf | Fraction | float (nan/±inf)

_local = threading.local()


@contextmanager
def workprec(ctx: MPIntervalContext, prec: int) -> Iterator[MPIntervalContext]:
    """Scope a private context's working precision (mpmath's interval context has no ``workprec``)."""
    saved = ctx.prec
    ctx.prec = prec
    try:
        yield ctx
    finally:
        ctx.prec = saved


def interval_context() -> MPIntervalContext:
    """This thread's private interval context (never mpmath's global one)."""
    ctx = getattr(_local, "iv", None)
    if ctx is None:
        ctx = _local.iv = MPIntervalContext()
    return ctx


@dataclass(frozen=True, slots=True)
class Settled:
    """One settled output value.

    ``rounded``: the correctly rounded value as a float (exactly representable in the target format);
    ``exact``: an mpf tuple of the exact value (exact for closed forms, else the midpoint of an interval of
    relative width below ``2**-70``); ``status``: one of ``exact``, ``converged``, ``nan``,
    ``unconverged``; ``precision``: the working precision in bits at which it settled (or was abandoned).
    """

    rounded: float
    exact: tuple
    status: str
    precision: int


def _fraction_to_mpf(value: Fraction) -> tuple:
    num, den = value.numerator, value.denominator
    if den & (den - 1) == 0:  # dyadic: exact
        return libmp.from_man_exp(num, -(den.bit_length() - 1))
    return libmp.mpf_div(libmp.from_int(num), libmp.from_int(den), 256, libmp.round_nearest)


def _closed(value: Fraction | float, fmt: Format) -> Settled:
    if isinstance(value, Fraction):
        rounded = round_rational(value.numerator, value.denominator, fmt)
        return Settled(rounded, _fraction_to_mpf(value), EXACT, 0)
    if math.isnan(value):
        return Settled(math.nan, libmp.fnan, NAN, 0)
    return Settled(value, libmp.from_float(value), EXACT, 0)


def _decide(interval, fmt: Format, prec: int) -> Settled | None:
    """Settle an enclosure ``[lo, hi]`` of an irrational value, if its rounding is decided.

    Every value a family encloses in an interval is irrational (a dyadic or rational value is returned in
    closed form instead), so the exact value lies in the *open* interval ``(lo, hi)``. This matters: for
    ``x = -6035051, z = 0.75`` (float32) the loss is ``4526288.25 + exp(-6035051)``, whose enclosure keeps the
    midpoint ``4526288.25`` as lower end at any practical precision, yet every value above it rounds up.
    The inside of the interval is probed at :func:`nudge`-d points, which no rounding boundary, power of two
    or zero separates from the ends.
    """
    lo, hi = interval._mpi_
    if lo == hi:  # a point interval is the exact value itself
        return Settled(round_mpf(lo, fmt), lo, CONVERGED, prec)
    if lo in _SPECIAL or hi in _SPECIAL:
        return None
    inner_lo, inner_hi = nudge(lo, fmt, up=True), nudge(hi, fmt, up=False)
    r_lo, r_hi = round_mpf(inner_lo, fmt), round_mpf(inner_hi, fmt)
    if float_key(r_lo) != float_key(r_hi):
        return None
    e_lo, e_hi = exponent_of(inner_lo), exponent_of(inner_hi)
    if e_lo is None or e_hi is None or e_lo != e_hi or inner_lo[0] != inner_hi[0]:
        return None
    width = libmp.mpf_sub(hi, lo, 32, libmp.round_ceiling)
    if exponent_of(width) > e_lo - _REL_WIDTH_BITS:
        return None
    mid = libmp.mpf_shift(libmp.mpf_add(lo, hi, prec + 8, libmp.round_nearest), -1)
    return Settled(r_lo, mid, CONVERGED, prec)


_SPECIAL = (libmp.fnan, libmp.finf, libmp.fninf)


def settle(evaluate: Callable[[MPIntervalContext], Sequence[Enclosure]], count: int, fmt: Format) -> list[Settled]:
    """Settle ``count`` output values computed together by ``evaluate(ctx)`` (e.g. a row's gradient).

    ``evaluate`` is called with the private interval context at the working precision and returns one
    enclosure per output. Values decided at one precision are kept; the rest are re-evaluated at twice
    the precision, up to :data:`MAX_PRECISION`.
    """
    ctx = interval_context()
    done: list[Settled | None] = [None] * count
    prec = START_PRECISION
    while True:
        with workprec(ctx, prec):
            enclosures = evaluate(ctx)
        pending = False
        for i, enc in enumerate(enclosures):
            if done[i] is not None:
                continue
            if isinstance(enc, (Fraction, float)):
                done[i] = _closed(enc, fmt)
                continue
            done[i] = _decide(enc, fmt, prec)
            if done[i] is None:
                if prec >= MAX_PRECISION:
                    lo, hi = enc._mpi_
                    mid = libmp.mpf_shift(libmp.mpf_add(lo, hi, prec + 8, libmp.round_nearest), -1)
                    done[i] = Settled(math.nan, mid, UNCONVERGED, prec)
                else:
                    pending = True
        if not pending:
            return done  # type: ignore[return-value]
        prec *= 2
