"""The error metric, defined once: ULP of the exact value, fractional ULP error, bits of error, outcome classes.

Definitions, in a target format with precision ``p`` and normal exponent range ``[emin, emax]``:

- ``ulp(v)`` of an exact real ``v`` is ``2**(max(E, emin) - p + 1)`` with ``E = floor(log2|v|)``: the spacing
  of the format's numbers in the binade of ``v`` (Goldberg's definition). Below the normal range this is the
  subnormal spacing ``2**(emin - p + 1)``; for ``v = 0`` it is the smallest subnormal; above the largest
  finite value the binades are continued with the same formula (so a finite result for a finite exact value
  beyond the overflow threshold still gets a number).
- The fractional ULP error of a computed value ``c`` is ``|c - v| / ulp(v)``, computed from the exact
  value (never from its rounding); a correctly rounded result has error at most 0.5. Value by value it is
  evaluated at 64 bits from the exact value; over whole arrays (the values of a ground-truth record with a
  float copy, :func:`estimate_frame`) in float64 from that copy, within ``2**-52`` of itself plus the copy's
  distance from ``v`` (a fast-path estimate: at most ``2**-16`` ULP in float32, ``2**-27`` in float64; a Ziv
  value: ``2**-70`` relative, as the value-by-value path reads it; see :func:`_measure_estimated`). A value
  a hair from a histogram edge (0.5, 1) may fall on either side.
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
from typing import Any, NamedTuple

import numpy as np
import mpmath
from mpmath import libmp

from ._formats import Format, resolve_format
from ._rounding import round_mpf
from ._ziv import NAN as NAN_STATUS, UNCONVERGED as UNCONVERGED_STATUS

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
    return _signed_ordinals(arr, fmt).astype(np.int64)


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
    distance = _ordinal_distance(_signed_ordinals(cu, fmt), _signed_ordinals(ru, fmt))
    out[usable] = np.log2(1.0 + distance[usable])
    return out


def measure(computed: Any, exact: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`classify`, :func:`ulp_error` and :func:`bits_of_error` together, classifying only once.

    For a ground-truth record, the values its fast path decided and the Ziv path's finite nonzero values
    are measured over whole arrays from a float copy of them (:func:`estimate_frame`,
    :func:`_measure_estimated`); the others value by value from the exact values.
    """
    codes, ulp, bits = measure_codes(computed, exact, dtype)
    return outcome_names(codes), ulp, bits


def measure_codes(computed: Any, exact: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`measure` with the outcomes as codes (uint8: :data:`OUTCOME_CODE`), for large batches."""
    fmt = resolve_format(dtype)
    frame = exact.estimate_frame(fmt) if hasattr(exact, "estimate_frame") else None  # a ground-truth record
    if frame is None:
        outcomes = classify(computed, exact, fmt)
        return outcome_codes(outcomes), _ulp_errors(outcomes, computed, exact, fmt), _bits(outcomes, computed, exact, fmt)
    native = np.asarray(computed)
    c = native.astype(np.float64)
    shape = np.shape(exact.rounded)
    if c.shape != shape:
        raise ValueError(f"computed shape {c.shape} differs from exact shape {shape}; pass matching arrays")
    cf = c.ravel()
    if frame.usable.all():  # a large batch, typically: no masked copies of the arrays
        o, u, b = _measure_estimated(cf, frame, fmt, native.ravel())
        return o.reshape(c.shape), u.reshape(c.shape), b.reshape(c.shape)
    usable = frame.usable
    outcomes = np.empty(cf.size, dtype=np.uint8)
    ulp = np.full(cf.size, np.nan)
    bits = np.full(cf.size, np.nan)
    rest = ~usable
    status = np.ravel(exact.status)
    undefined = rest & (status == NAN_STATUS)
    if undefined.any():  # an exact nan, over whole arrays: agree (error 0, bits 0) where c is nan too
        agree = undefined & np.isnan(cf)
        outcomes[undefined] = OUTCOME_CODE[NUMBER_WHERE_NAN]
        outcomes[agree] = OUTCOME_CODE[AGREE]
        ulp[agree] = 0.0
        bits[agree] = 0.0
        rest &= ~undefined
    # the other values one by one (exact zeros, non-finite and unconverged values, extreme exponents): the
    # Ziv path's values only, so the fast ones are never made into mpmath numbers here (Truth.exact)
    settled = getattr(exact, "settled_exact", None)
    sub = _Values(np.ravel(exact.exact if settled is None else settled)[rest], status[rest])
    o = classify(cf[rest], sub, fmt)
    outcomes[rest], ulp[rest], bits[rest] = outcome_codes(o), _ulp_errors(o, cf[rest], sub, fmt), _bits(o, cf[rest], sub, fmt)
    o, u, b = _measure_estimated(cf[usable], frame.take(usable), fmt, native.ravel()[usable])
    outcomes[usable], ulp[usable], bits[usable] = o, u, b
    return outcomes.reshape(c.shape), ulp.reshape(c.shape), bits.reshape(c.shape)


class _Values:
    """Exact values and statuses, shaped like a ground-truth record for :func:`classify`."""

    def __init__(self, exact: np.ndarray, status: np.ndarray) -> None:
        self.exact, self.status = exact, status


class EstimateFrame(NamedTuple):
    """What measuring against a ground-truth record's values in float arithmetic needs of the record alone,
    flat, made once however many candidates are measured (:meth:`oracles.Truth.estimate_frame`): ``usable``,
    the values measured from the estimate ``hi + lo`` (``lo`` None where it is 0 throughout), ``shift`` =
    ``p - 1 - max(E, emin)`` with ``E`` the estimate's binade (``ulp(v) = 2**-shift``), and ``rounded`` the
    correctly rounded values' ordinals (:func:`_signed_ordinals`; as float64 below 64 bits, see
    :func:`_ordinal_distance`). Entries not ``usable`` hold meaningless numbers."""

    usable: np.ndarray
    hi: np.ndarray
    lo: np.ndarray | None
    shift: np.ndarray
    rounded: np.ndarray

    def take(self, mask: np.ndarray) -> "EstimateFrame":
        return EstimateFrame(self.usable[mask], self.hi[mask], None if self.lo is None else self.lo[mask],
                             self.shift[mask], self.rounded[mask])


# Ziv-path values measured from a double-double copy (estimate_frame): nonzero, with a binade exponent in
# this range, so that hi is a normal float64 and hi + lo holds the value to 2**-105 relative
_COPIED_EXPONENTS = (-1000, 1020)


def estimate_frame(exact: Any, dtype: Any) -> EstimateFrame:
    """The :class:`EstimateFrame` of a ground-truth record (``fast``, ``approx``, ``approx_low``,
    ``settled_exact``, ``status``, ``rounded``), in ``dtype``. Usable: the values the fast path decided
    (their estimate, within ``2**-40`` relative, ``2**-80`` for float64, in the exact value's binade), and
    the Ziv path's finite nonzero values of a finite rounding, copied as ``hi`` = the value truncated to
    float64 (so in its binade: powers of two are float64 numbers) plus ``lo`` = the rest rounded: the Ziv
    value is within ``2**-70`` of the exact one, as the value-by-value path measures from, and the copy
    within ``2**-105`` of it."""
    from . import _kernels  # numba, compiled on first use

    fmt = resolve_format(dtype)
    usable = np.ravel(np.asarray(exact.fast, dtype=bool))
    hi = np.ravel(np.asarray(exact.approx, dtype=np.float64))
    lo = np.ravel(np.asarray(exact.approx_low, dtype=np.float64))
    rounded = np.ravel(np.asarray(exact.rounded))
    if not usable.all():  # copies to fill in (a record's own arrays are left as they are)
        usable, hi, lo = usable.copy(), hi.copy(), lo.copy()
        settled = np.ravel(exact.settled_exact)
        status = np.ravel(exact.status)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(rounded.astype(np.float64))
        low_e, high_e = _COPIED_EXPONENTS
        for i in np.flatnonzero(~usable & finite & (status != UNCONVERGED_STATUS) & (status != NAN_STATUS)).tolist():
            v = _as_mpf(settled[i])
            if v[1] == 0 or v in (libmp.finf, libmp.fninf, libmp.fnan):  # zero, or not finite
                continue
            if not low_e < v[2] + v[3] - 1 < high_e:
                continue
            top = libmp.mpf_pos(v, 53, libmp.round_down)  # toward zero: in v's binade
            hi[i] = libmp.to_float(top)
            lo[i] = libmp.to_float(libmp.mpf_sub(v, top, 53, libmp.round_nearest))
            usable[i] = True
        hi[~usable] = 1.0  # placeholders, never read
    # the quantum of v's binade, 2**(max(E, emin) - p + 1): subnormal values share the smallest one (an
    # estimate of exactly 0: a positive value below half the smallest subnormal, also that quantum);
    # int32: the compiled measure reads it as ldexp's exponent
    shift = np.empty(hi.size, dtype=np.int32)
    _kernels.quantum_shifts(np.ascontiguousarray(hi), fmt.precision, fmt.emin, shift)
    used = bool(np.any(usable & (lo != 0)))  # a tail: double-double estimates (float64), Ziv values
    ordinals = _signed_ordinals(rounded, fmt)
    return EstimateFrame(usable, hi, lo if used else None, shift,
                         ordinals if fmt.bits == 64 else ordinals.astype(np.float64))


def _measure_estimated(c: np.ndarray, frame: EstimateFrame, fmt: Format, native: np.ndarray):
    """The metric for values whose exact value ``v`` is finite and nonzero, rounds to the finite ``rounded``,
    and is known as ``hi + lo`` within ``2**-40 |v|`` (``2**-80`` for float64; ``2**-70`` for a Ziv value) with
    the same ULP (the fast path's certificate: one normal binade, or both below ``2**(emin+1)``; a Ziv value's
    copy is truncated into its binade), given as ``frame``
    (:class:`EstimateFrame`). Outcome codes: ``NAN`` for nan, ``INF`` for an infinity (``v`` does not round
    to one), else ``FINITE``. ``ulp(v) = 2**(max(floor(log2|hi|), emin) - p + 1)``, and the error is
    ``|(c - hi) - lo| / ulp(v)``. Its accuracy: ``c - hi`` is exact where ``hi/2 <= c <= 2 hi`` (Sterbenz),
    and elsewhere ``|c - hi| >= |hi|/2 > |lo|`` and its rounding is ``2**-53`` of itself; subtracting
    ``lo`` adds another ``2**-53`` of the result; scaling by a power of two is exact (a difference beyond
float64, only possible for float64 targets, is taken halved). So the figure is
    within ``2**-52`` of itself plus the estimate's distance from ``v`` (at most ``2**-16`` ULP in float32).
    ``native``: the computed values in the format itself (``c`` is their float64 copy), read for the
    ordinal distance. Carried out value by value in one compiled loop (:func:`oracles._kernels.measure_estimated`)."""
    from . import _kernels  # numba, compiled on first use: `import oracles` stays light

    mine = native if native.dtype == fmt.numpy_dtype else c.astype(fmt.numpy_dtype)
    outcomes = np.empty(c.size, dtype=np.uint8)
    ulp = np.empty(c.size)
    bits = np.empty(c.size)
    _kernels.measure_estimated(
        np.ascontiguousarray(c, dtype=np.float64), np.ascontiguousarray(mine).view(_SIGNED[fmt.bits]), fmt.bits - 1,
        frame.hi, frame.lo if frame.lo is not None else frame.hi, frame.lo is not None, frame.shift, frame.rounded,
        OUTCOME_CODE[FINITE], OUTCOME_CODE[NAN], OUTCOME_CODE[INF], outcomes, ulp, bits)
    return outcomes, ulp, bits


def _signed_ordinals(values: np.ndarray, fmt: Format) -> np.ndarray:
    """:func:`ordinal` of ``values`` (float64, or already in the format) in the format's own signed integer
    width: the sign-magnitude bit pattern ``s`` folded to two's complement as ``(s ^ (m & 0x7f..f)) - m``
    with ``m = s >> (bits - 1)`` (0, or -1 for a set sign bit), which gives ``-magnitude`` for a negative
    value and 0 for both zeros. nan patterns give numbers that order nothing: callers mask them."""
    native = values if values.dtype == fmt.numpy_dtype else values.astype(fmt.numpy_dtype)
    signed = native.view(_SIGNED[fmt.bits])
    sign = signed >> (fmt.bits - 1)
    return (signed ^ (sign & signed.dtype.type((1 << (fmt.bits - 1)) - 1))) - sign


def _ordinal_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a - b|`` of two arrays of :func:`_signed_ordinals` as float64 (``b`` may be given as float64). Up
    to 32 bits the ordinals and their difference (below ``2**33``) are exact in float64. For 64-bit formats
    the difference can exceed int64 (``+max`` against ``-max`` is about ``2**64``): it is taken in uint64,
    larger minus smaller, which is exact modulo ``2**64`` and below it."""
    if a.dtype == np.int64:
        ua, ub = a.view(np.uint64), b.view(np.uint64)
        return np.where(a >= b, ua - ub, ub - ua).astype(np.float64)
    out = np.array(a, dtype=np.float64)  # an array even for 0-d input (numpy scalars have no out=)
    np.subtract(out, b, out=out)
    return np.abs(out, out=out)


_SIGNED = {16: np.int16, 32: np.int32, 64: np.int64}