"""Correct rounding of exact values into a target format, with integers only.

An exact value reaches this module in one of two exact forms: a binary mpf tuple ``(sign, man, exp, bc)``
from mpmath (value ``(-1)**sign * man * 2**exp``, any exponent) or a rational ``num/den``. Rounding is
round-to-nearest, ties-to-even, straight into the target format: the quantum is ``2**(max(E, emin)-p+1)``
where ``E = floor(log2|v|)``, so subnormals are rounded at their fixed spacing, and a value at or above
``(2 - 2**-p) * 2**emax`` (the midpoint between the largest finite value and ``2**(emax+1)``) overflows to
infinity. Nothing is ever rounded to an intermediate format first, so there is no double rounding.

The result is a Python ``float`` holding the rounded value exactly: every value of float16, bfloat16,
float32 and float64 is a float64 value, so converting it to the target dtype afterwards is exact.
"""

from __future__ import annotations

import math

from mpmath import libmp

from ._formats import Format

__all__ = ["round_mpf", "round_rational", "float_key", "exponent_of", "nudge"]

_FNAN, _FINF, _FNINF, _FZERO = libmp.fnan, libmp.finf, libmp.fninf, libmp.fzero


def _round_scaled(sign: int, r: int, q: int, fmt: Format) -> float:
    """Return ``(-1)**sign * r * 2**q`` after the overflow check (``r`` already rounded)."""
    if r and r.bit_length() - 1 + q > fmt.emax:
        return -math.inf if sign else math.inf
    value = math.ldexp(float(r), q) if r else 0.0
    return -value if sign else value


def round_mpf(value: tuple, fmt: Format) -> float:
    """Round an mpmath mpf tuple correctly (nearest, ties to even) into ``fmt``; return it as ``float``.

    Special tuples map to ``nan``/``±inf``; zero keeps no sign (mpf has no negative zero), so ``+0.0``.
    """
    if value == _FZERO:
        return 0.0
    if value == _FNAN:
        return math.nan
    if value == _FINF:
        return math.inf
    if value == _FNINF:
        return -math.inf
    sign, man, exp, bc = value
    e_lead = exp + bc - 1  # value lies in [2**e_lead, 2**(e_lead+1))
    if e_lead > fmt.emax:
        return -math.inf if sign else math.inf
    if e_lead < fmt.quantum_min - 1:  # below half the smallest subnormal: rounds to zero
        return -0.0 if sign else 0.0
    q = max(e_lead, fmt.emin) - fmt.precision + 1
    shift = q - exp
    if shift <= 0:
        return _round_scaled(sign, man << -shift, q, fmt)
    r = man >> shift
    rem = man & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    if rem > half or (rem == half and r & 1):
        r += 1
    return _round_scaled(sign, r, q, fmt)


def round_rational(num: int, den: int, fmt: Format) -> float:
    """Round ``num/den`` (``den > 0``) correctly (nearest, ties to even) into ``fmt``; return a ``float``."""
    if den <= 0:
        raise ValueError(f"den={den} must be positive")
    if num == 0:
        return 0.0
    sign = 1 if num < 0 else 0
    a = -num if sign else num
    e_lead = a.bit_length() - den.bit_length()
    # Make e_lead = floor(log2(a/den)): a/den >= 2**e_lead must hold.
    if (a << max(0, -e_lead)) < (den << max(0, e_lead)):
        e_lead -= 1
    if e_lead > fmt.emax:
        return -math.inf if sign else math.inf
    if e_lead < fmt.quantum_min - 1:
        return -0.0 if sign else 0.0
    q = max(e_lead, fmt.emin) - fmt.precision + 1
    # r = round(a / (den * 2**q))
    if q >= 0:
        n, d = a, den << q
    else:
        n, d = a << -q, den
    r, rem = divmod(n, d)
    twice = 2 * rem
    if twice > d or (twice == d and r & 1):
        r += 1
    return _round_scaled(sign, r, q, fmt)


def float_key(value: float) -> tuple[float, bool]:
    """Identity of a rounded value that tells ``-0.0`` from ``+0.0`` and treats every nan as equal."""
    if value != value:
        return (math.inf, True)
    return (value, math.copysign(1.0, value) < 0)


def exponent_of(value: tuple) -> int | None:
    """``floor(log2|v|)`` of a finite nonzero mpf tuple; ``None`` for zero and specials."""
    if value in (_FZERO, _FNAN, _FINF, _FNINF):
        return None
    _sign, _man, exp, bc = value
    return exp + bc - 1


def nudge(value: tuple, fmt: Format, up: bool) -> tuple:
    """A value strictly between ``value`` and every rounding boundary, power of two and zero beyond it.

    Moves a finite mpf tuple by ``2**(min(exp, q - 1) - 2)``, where ``2**exp`` is its lowest set bit and
    ``2**q`` its quantum in ``fmt``: rounding boundaries (format values and midpoints) are multiples of
    ``2**(q-1)`` and powers of two above ``value`` are multiples of ``2**exp``, so none lies between the two.
    Used to round the inside of an open interval ``(lo, hi)``.
    """
    if value == _FZERO:
        k = fmt.quantum_min - 3
    else:
        _sign, _man, exp, bc = value
        q = max(exp + bc - 1, fmt.emin) - fmt.precision + 1
        k = min(exp, q - 1) - 2
    step = libmp.from_man_exp(1 if up else -1, k)
    return libmp.mpf_add(value, step, 0)
