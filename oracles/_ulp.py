"""The error metric, defined once: ULP of the exact value, fractional ULP error, bits of error, outcome classes.

Definitions, in a target format with precision ``p`` and normal exponent range ``[emin, emax]``:

- ``ulp(v)`` of an exact real ``v`` is ``2**(max(E, emin) - p + 1)`` with ``E = floor(log2|v|)``: the spacing
  of the format's numbers in the binade of ``v`` (Goldberg's definition). Below the normal range this is the
  subnormal spacing ``2**(emin - p + 1)``; for ``v = 0`` it is the smallest subnormal; above the largest
  finite value the binades are continued with the same formula (so a finite result for a finite exact value
  beyond the overflow threshold still gets a number).
- The fractional ULP error of a computed value ``c`` is ``|c - v| / ulp(v)``, computed from the exact
  value (never from its rounding); a correctly rounded result has error at most 0.5. It is evaluated with
  64-bit relative accuracy, so it is accurate to far better than 2**-30 ULP.
- Bits of error (as Herbie): ``log2(1 + n)`` where ``n`` is the number of format values strictly between
  ``c`` and the correctly rounded ``round(v)``, plus one if they differ (the ordinal distance; ``-0`` and
  ``+0`` are one point, ``±inf`` sits one step beyond ``±max``).
- Relative error (shown beside the ULP error in reports): ``|c - v| / |v|`` against the exact value, at
  64-bit precision; 0 where ``c == v`` (two zeros, equal infinities), inf where ``v == 0 != c``, nan where
  undefined (``c`` or ``v`` nan, an infinity on one side only).
- Outcomes: a ULP number is only given where both ``c`` and ``v`` are finite (``FINITE``), or where they agree
  on a non-finite value (``AGREE``, error 0: nan for nan, the same infinity, or the infinity that ``v``
  correctly rounds to). Every other pairing is its own class and gets ``nan`` as ULP error: ``NAN``
  (nan where ``v`` is finite), ``INF`` (an infinity where ``v`` is finite and does not round to it),
  ``FINITE_WHERE_INFINITE``, ``NAN_WHERE_INFINITE``, ``WRONG_INFINITY`` (the opposite infinity),
  ``NUMBER_WHERE_NAN`` (a number where the exact value is undefined) and ``UNCONVERGED`` (the oracle did not
  settle, so nothing is claimed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import mpmath
from mpmath import libmp

from ._formats import Format, resolve_format
from ._rounding import round_mpf

__all__ = [
    "ulp_exponent",
    "ulp_error",
    "bits_of_error",
    "relative_error",
    "measure",
    "measure_codes",
    "outcome_names",
    "outcome_codes",
    "OUTCOME_CODE",
    "classify",
    "ordinal",
    "OUTCOMES",
    "FINITE",
    "AGREE",
    "NAN",
    "INF",
    "FINITE_WHERE_INFINITE",
    "NAN_WHERE_INFINITE",
    "WRONG_INFINITY",
    "NUMBER_WHERE_NAN",
    "UNCONVERGED",
]

FINITE = "finite"
AGREE = "agree"
NAN = "nan"
INF = "inf"
FINITE_WHERE_INFINITE = "finite_where_infinite"
NAN_WHERE_INFINITE = "nan_where_infinite"
WRONG_INFINITY = "wrong_infinity"
NUMBER_WHERE_NAN = "number_where_nan"
UNCONVERGED = "unconverged"
OUTCOMES = (
    FINITE,
    AGREE,
    NAN,
    INF,
    FINITE_WHERE_INFINITE,
    NAN_WHERE_INFINITE,
    WRONG_INFINITY,
    NUMBER_WHERE_NAN,
    UNCONVERGED,
)
# The outcome classes as small integers (their index in OUTCOMES), for arrays of millions of values: a
# uint8 code array is 1 byte a value where the strings are 84 (:func:`measure_codes`).
OUTCOME_CODE = {name: code for code, name in enumerate(OUTCOMES)}
_OUTCOME_NAMES = np.array(OUTCOMES)


def outcome_names(codes: np.ndarray) -> np.ndarray:
    """The outcome class names (strings of :data:`OUTCOMES`) of outcome codes."""
    return _OUTCOME_NAMES[np.asarray(codes, dtype=np.intp)]


def outcome_codes(names: np.ndarray) -> np.ndarray:
    """The outcome codes (uint8, the index in :data:`OUTCOMES`) of outcome class names."""
    names = np.asarray(names)
    out = np.zeros(names.shape, dtype=np.uint8)
    for name, code in OUTCOME_CODE.items():
        out[names == name] = code
    return out


def _as_mpf(value: Any) -> tuple:
    """An exact value as an mpf tuple: mpmath numbers as they are, floats and ints exactly."""
    raw = getattr(value, "_mpf_", None)
    if raw is not None:
        return raw
    if isinstance(value, (int, np.integer)):
        return libmp.from_int(int(value))
    return libmp.from_float(float(value))


def ulp_exponent(exact: Any, dtype: Any) -> int:
    """``log2(ulp(v))`` of the exact value ``v`` in the target format (see the module docstring)."""
    fmt = resolve_format(dtype)
    v = _as_mpf(exact)
    if v == libmp.fzero:
        return fmt.quantum_min
    if v in (libmp.fnan, libmp.finf, libmp.fninf):
        raise ValueError(f"exact={exact!r} is not finite; ulp is defined for finite exact values only")
    _s, _m, exp, bc = v
    return max(exp + bc - 1, fmt.emin) - fmt.precision + 1


def _outcome(c: float, v: tuple, fmt: Format) -> str:
    if v == libmp.fnan:
        return AGREE if math.isnan(c) else NUMBER_WHERE_NAN
    if v in (libmp.finf, libmp.fninf):
        if math.isnan(c):
            return NAN_WHERE_INFINITE
        if math.isinf(c):
            return AGREE if (c > 0) == (v == libmp.finf) else WRONG_INFINITY
        return FINITE_WHERE_INFINITE
    if math.isnan(c):
        return NAN
    if math.isinf(c):
        return AGREE if round_mpf(v, fmt) == c else INF
    return FINITE


def _exacts(exact: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact values as an object array, and the oracle's statuses when ``exact`` is a ground-truth record."""
    status = getattr(exact, "status", None)
    values = getattr(exact, "exact", exact)
    return np.asarray(values, dtype=object), (None if status is None else np.asarray(status))


def classify(computed: Any, exact: Any, dtype: Any) -> np.ndarray:
    """Outcome class of each computed value against the exact one (array of strings from :data:`OUTCOMES`).

    ``exact`` is what :func:`oracles.exact` returns (mpmath numbers), any exact reals, or a ground-truth
    record from :func:`oracles.evaluate`, whose unconverged values are classed ``UNCONVERGED``.
    """
    fmt = resolve_format(dtype)
    values, status = _exacts(exact)
    c = np.asarray(computed).astype(np.float64)
    if c.shape != values.shape:
        raise ValueError(f"computed shape {c.shape} differs from exact shape {values.shape}; pass matching arrays")
    out = np.empty(c.shape, dtype=f"<U{max(map(len, OUTCOMES))}")
    for idx in np.ndindex(c.shape):
        if status is not None and status[idx] == UNCONVERGED:
            out[idx] = UNCONVERGED
        else:
            out[idx] = _outcome(float(c[idx]), _as_mpf(values[idx]), fmt)
    return out


def ulp_error(computed: Any, exact: Any, dtype: Any) -> np.ndarray:
    """Fractional ULP error ``|c - v| / ulp(v)`` of each computed value ``c`` against the exact value ``v``.

    ``ulp(v)`` is taken in ``dtype`` as defined in the module docstring (Goldberg's ULP of the exact value,
    subnormal spacing below the normal range, the smallest subnormal for ``v = 0``). Returns float64: the
    error where both are finite, 0 where they agree on a non-finite value, and nan for every other outcome
    (see :func:`classify`), which is never a ULP number. A result too large for float64 is ``inf``.
    """
    fmt = resolve_format(dtype)
    return _ulp_errors(classify(computed, exact, fmt), computed, exact, fmt)


def _ulp_errors(outcomes: np.ndarray, computed: Any, exact: Any, fmt: Format) -> np.ndarray:
    values, _status = _exacts(exact)
    c = np.asarray(computed).astype(np.float64)
    err = np.full(c.shape, np.nan)
    for idx in np.ndindex(c.shape):
        kind = outcomes[idx]
        if kind == AGREE:
            err[idx] = 0.0
        elif kind == FINITE:
            v = _as_mpf(values[idx])
            diff = libmp.mpf_sub(libmp.from_float(float(c[idx])), v, 64, libmp.round_nearest)
            scaled = libmp.mpf_shift(libmp.mpf_abs(diff), -ulp_exponent(values[idx], fmt))
            try:
                err[idx] = libmp.to_float(scaled, strict=True)
            except OverflowError:
                err[idx] = math.inf
    return err


def relative_error(computed: float, exact: Any) -> float:
    """``|c - v| / |v|`` for a computed value ``c`` and the exact value ``v`` (``mpmath.mpf``, or anything
    ``mpmath.mpf`` takes), as a float (module docstring)."""
    c, v = mpmath.mpf(float(computed)), mpmath.mpf(exact)
    if c == v:
        return 0.0
    if not (mpmath.isfinite(c) and mpmath.isfinite(v)):
        return math.nan
    if v == 0:
        return math.inf
    with mpmath.workprec(64):
        return float(abs(c - v) / abs(v))


def ordinal(values: Any, dtype: Any) -> np.ndarray:
    """Position of each value in the format's ordered set of values: ``+0`` and ``-0`` are 0, the next
    positive value is 1, and so on; ``±inf`` are one step beyond ``±max``. nan is not ordered (-> error)."""
    fmt = resolve_format(dtype)
    arr = np.asarray(values).astype(np.float64)
    if np.isnan(arr).any():
        raise ValueError("ordinal of nan is undefined; filter nan values first")
    return _ordinal_of(arr, fmt, np.ones(arr.shape, dtype=bool))


def bits_of_error(computed: Any, exact: Any, dtype: Any) -> np.ndarray:
    """Herbie's bits of error ``log2(1 + |ordinal(c) - ordinal(round(v))|)`` in ``dtype``; nan where
    :func:`ulp_error` is nan (non-finite disagreement or unconverged oracle)."""
    fmt = resolve_format(dtype)
    return _bits(classify(computed, exact, fmt), computed, exact, fmt)


def _bits(outcomes: np.ndarray, computed: Any, exact: Any, fmt: Format) -> np.ndarray:
    values, _status = _exacts(exact)
    c = np.asarray(computed).astype(np.float64)
    out = np.full(c.shape, np.nan)
    usable = (outcomes == FINITE) | (outcomes == AGREE)
    if not usable.any():
        return out
    rounded = np.array([round_mpf(_as_mpf(v), fmt) if u else 0.0 for v, u in zip(values.flat, usable.flat)])
    rounded = rounded.reshape(c.shape)
    cu, ru = np.where(usable, c, 0.0), np.where(usable, rounded, 0.0)
    cu = np.where(np.isnan(cu), 0.0, cu)
    ru = np.where(np.isnan(ru), 0.0, ru)
    distance = np.abs(ordinal(cu, fmt) - ordinal(ru, fmt)).astype(np.float64)
    out[usable] = np.log2(1.0 + distance[usable])
    return out


def measure(computed: Any, exact: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`classify`, :func:`ulp_error` and :func:`bits_of_error` together, classifying only once.

    For a ground-truth record, the values its fast path decided are measured over whole arrays from the
    fast path's estimate (:func:`_measure_estimated`); the others value by value from the exact values.
    """
    codes, ulp, bits = measure_codes(computed, exact, dtype)
    return outcome_names(codes), ulp, bits


def measure_codes(computed: Any, exact: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`measure` with the outcomes as codes (uint8: :data:`OUTCOME_CODE`), for large batches."""
    fmt = resolve_format(dtype)
    fast = getattr(exact, "fast", None)
    if fast is None or not np.any(fast):
        outcomes = classify(computed, exact, fmt)
        return outcome_codes(outcomes), _ulp_errors(outcomes, computed, exact, fmt), _bits(outcomes, computed, exact, fmt)
    native = np.asarray(computed)
    c = native.astype(np.float64)
    if c.shape != fast.shape:
        raise ValueError(f"computed shape {c.shape} differs from exact shape {fast.shape}; pass matching arrays")
    flat_fast = np.ravel(fast)
    cf = c.ravel()
    if flat_fast.all():  # all fast (a large batch, typically): no masked copies of the arrays
        o, u, b = _measure_estimated(cf, np.ravel(exact.approx), np.ravel(exact.approx_low),
                                     np.ravel(exact.rounded), fmt, native.ravel())
        return o.reshape(c.shape), u.reshape(c.shape), b.reshape(c.shape)
    outcomes = np.empty(cf.size, dtype=np.uint8)
    ulp = np.full(cf.size, np.nan)
    bits = np.full(cf.size, np.nan)
    rest = ~flat_fast
    if rest.any():
        # the Ziv path's values only: the fast ones are never made into mpmath numbers here (Truth.exact)
        settled = getattr(exact, "settled_exact", None)
        sub = _Values(np.ravel(exact.exact if settled is None else settled)[rest], np.ravel(exact.status)[rest])
        o = classify(cf[rest], sub, fmt)
        outcomes[rest], ulp[rest], bits[rest] = outcome_codes(o), _ulp_errors(o, cf[rest], sub, fmt), _bits(o, cf[rest], sub, fmt)
    o, u, b = _measure_estimated(cf[flat_fast], np.ravel(exact.approx)[flat_fast], np.ravel(exact.approx_low)[flat_fast],
                                 np.ravel(exact.rounded)[flat_fast], fmt, native.ravel()[flat_fast])
    outcomes[flat_fast], ulp[flat_fast], bits[flat_fast] = o, u, b
    return outcomes.reshape(c.shape), ulp.reshape(c.shape), bits.reshape(c.shape)


class _Values:
    """Exact values and statuses, shaped like a ground-truth record for :func:`classify`."""

    def __init__(self, exact: np.ndarray, status: np.ndarray) -> None:
        self.exact, self.status = exact, status


def _measure_estimated(c: np.ndarray, hi: np.ndarray, lo: np.ndarray, rounded: np.ndarray, fmt: Format,
                       native: np.ndarray | None = None):
    """The metric for values whose exact value ``v`` is finite and nonzero, rounds to the finite ``rounded``,
    and is known as ``hi + lo`` within ``2**-40 |v|`` (``2**-80`` for float64) with the same ULP (the fast
    path's certificate: one normal binade, or both below ``2**(emin+1)``). Outcome codes: ``NAN`` for nan,
    ``INF`` for an infinity (``v`` does not round to one), else ``FINITE``.
    ``ulp(v) = 2**(max(floor(log2|hi|), emin) - p + 1)``; ``c - hi`` is
    formed exactly (Knuth's two-sum) and ``lo`` subtracted, so the error is accurate to a few ``2**-52``
    relative plus the estimate's distance from ``v`` (at most ``2**-16`` ULP in float32). ``native``: the
    computed values in the format itself (``c`` is their float64 copy), read for the ordinal distance."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(c)
        outcomes = np.where(finite, np.uint8(OUTCOME_CODE[FINITE]),
                            np.where(np.isnan(c), np.uint8(OUTCOME_CODE[NAN]), np.uint8(OUTCOME_CODE[INF])))
        s = c - hi
        bb = s - c
        tail = (c - (s - bb)) + (-hi - bb)
        diff = s + (tail - lo)
        # the quantum of v's binade, 2**(max(E, emin) - p + 1): subnormal values share the smallest one
        # (an estimate of exactly 0: a positive value below half the smallest subnormal, also that quantum)
        binade = np.where(hi == 0, fmt.emin, np.frexp(hi)[1] - 1)
        shift = (fmt.precision - 1 - np.maximum(binade, fmt.emin)).astype(np.int32)  # int32: fast ldexp
        ulp = np.where(finite, np.ldexp(np.abs(diff), shift), np.nan)
        mine = native if native is not None and native.dtype == fmt.numpy_dtype else c
        distance = np.abs(_ordinal_of(mine, fmt, finite) - _ordinal_of(rounded, fmt, finite)).astype(np.float64)
        bits = np.where(finite, np.log2(1.0 + distance), np.nan)
    return outcomes, ulp, bits


def _ordinal_of(values: np.ndarray, fmt: Format, keep: np.ndarray) -> np.ndarray:
    """:func:`ordinal` of ``values`` (float64, or already in the format) where ``keep``, 0 elsewhere (nan
    and infinities included), in the format's own signed integer width, as int64."""
    native = values if values.dtype == fmt.numpy_dtype else values.astype(fmt.numpy_dtype)
    signed = native.view(_SIGNED[fmt.bits])
    magnitude = signed & np.array((1 << (fmt.bits - 1)) - 1, dtype=signed.dtype)
    return np.where(keep, np.where(signed < 0, -magnitude.astype(np.int64), magnitude), 0)


_SIGNED = {16: np.int16, 32: np.int32, 64: np.int64}