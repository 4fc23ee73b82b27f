"""Compiled (numba) loops for the two array passes every value of a large batch goes through: certifying a
fast-path estimate's rounding (:func:`oracles._fast.certify`) and measuring a computed value against a
ground-truth record's float copy (:func:`oracles._ulp._measure_estimated`).

Why compiled: each was a few dozen numpy passes over the batch (about 35 and 25 ms per ``2**20`` values,
most of an exhaustive sweep's chunk), and one loop does the same work in one pass. What they compute is
defined where they are called, with its proof; these loops carry it out operation for operation, in the
same order and in float64 (numba does not reassociate or contract ``a * b + c`` into a fused multiply-add
without ``fastmath``, which is not used), so every decision and every float64 result is the one the
definition gives; the one exception is the bits of error, ``log2(1 + n)``, taken with the C library's
``log2`` where numpy has its own (each within one float64 ulp, and they differ in that last bit on a few
values in ten thousand). ``tests/unit/test_kernels.py`` holds them to a plain numpy transcription of the
definitions on millions of adversarial values, bit for bit.

Compiled on first use and cached on disk beside this file (numba's ``cache=True``; where that folder is
not writable, numba's user-wide cache), so ``import oracles`` stays light and a worker process loads the
machine code instead of compiling it again.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["certify_narrow", "measure_estimated", "quantum_shifts"]

_JIT = dict(nogil=True, cache=True, error_model="numpy")


@intrinsic
def _bits_of(typingctx, x):
    """The bit pattern of a float64 as an int64 (a register move)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _float_of(typingctx, b):
    """The float64 whose bit pattern is the int64 ``b``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


_EXPONENT_MASK = 0x7FF


@numba.njit(**_JIT)
def _next_up(x: float) -> float:
    """``numpy.nextafter(x, inf)``: the next float64 above ``x`` (``inf`` and nan stay; ``-inf`` gives ``-max``)."""
    if x != x or x == math.inf:
        return x
    if x == 0.0:
        return _float_of(np.int64(1))  # the smallest subnormal, from either zero
    b = _bits_of(x)
    return _float_of(b + 1 if b > 0 else b - 1)  # a negative pattern moves toward zero as it decreases


@numba.njit(**_JIT)
def _next_down(x: float) -> float:
    """``numpy.nextafter(x, -inf)``."""
    return -_next_up(-x)


@numba.njit(**_JIT)
def _binade(w: float) -> int:
    """``frexp(w)[1] - 1``: ``floor(log2|w|)`` of a nonzero finite float64 (``-1`` for zero)."""
    field = (_bits_of(w) >> 52) & _EXPONENT_MASK
    if field == 0 or field == _EXPONENT_MASK:  # zero, subnormal, inf or nan: rare, left to libm
        return math.frexp(w)[1] - 1
    return field - 1023


@numba.njit(**_JIT)
def _ldexp(x: float, k: int) -> float:
    """``math.ldexp(x, k)``: ``x * 2**k`` correctly rounded; where ``2**k`` is a normal float64 that is
    one multiplication (a product by a power of two is exact or rounds once, as ldexp does)."""
    if -1022 <= k <= 1023:
        return x * _float_of(np.int64(k + 1023) << 52)
    return math.ldexp(x, k)


@numba.njit(**_JIT)
def _round_to_format(w: float, precision: int, emin: int) -> tuple[float, int]:
    """``oracles._fast.round_to_format`` of one finite float64: ``(rounded, E)``."""
    e = _binade(w)
    shift = precision - 1 - max(e, emin)
    return _ldexp(np.rint(_ldexp(w, shift)), -shift), e


@numba.njit(**_JIT)
def _maximum(a: float, b: float) -> float:
    """``numpy.maximum`` of two float64: nan if either is nan."""
    if a != a or b != b:
        return math.nan
    return a if a >= b else b


@numba.njit(**_JIT)
def _minimum(a: float, b: float) -> float:
    """``numpy.minimum`` of two float64: nan if either is nan."""
    if a != a or b != b:
        return math.nan
    return a if a <= b else b


@numba.njit(**_JIT)
def certify_narrow(v, delta, eligible, above, below, has_above, has_below, positive, precision, emin, emax,
                   max_finite, min_subnormal, final_margin, absolute_floor, max_relative_bound, rounded, ok):
    """:func:`oracles._fast.certify` for a format narrower than float64, value by value, into ``rounded``
    and ``ok``. ``above``/``below`` are read only where ``has_above``/``has_below`` (else any array);
    ``positive``: the estimate's flag (a bool for every value)."""
    bounded = has_above or has_below
    for i in range(v.size):
        vi, di = v[i], delta[i]
        bound = di * final_margin + absolute_floor
        lo = _next_down(vi - bound)
        hi = _next_up(vi + bound)
        good = eligible[i] and math.isfinite(lo) and math.isfinite(hi) and math.isfinite(vi) and math.isfinite(di)
        lo_r, hi_r = lo, hi
        if has_above:
            lo_r = _maximum(lo, above[i])
            lo = _maximum(lo, _next_up(above[i]))
        if has_below:
            hi_r = _minimum(hi, below[i])
            hi = _minimum(hi, _next_down(below[i]))
        if bounded:
            good = good and lo <= hi
        good = good and (lo > 0 or hi < 0)
        if not good:
            lo_r = hi_r = 1.0
        r_lo, e_lo = _round_to_format(lo_r, precision, emin)
        r_hi, e_hi = _round_to_format(hi_r, precision, emin)
        if bounded:
            e_lo = _binade(lo if good else 1.0)
            e_hi = _binade(hi if good else 1.0)
        good = good and max(e_lo, emin) == max(e_hi, emin) and e_hi <= emax
        good = good and r_lo == r_hi and abs(r_lo) <= max_finite
        good = good and bound <= max_relative_bound * abs(vi)
        out = r_lo if good else math.nan
        tiny = (not good) and eligible[i] and bound <= max_relative_bound * min_subnormal
        # proven positive (negative) and wholly below half the smallest subnormal in magnitude: +0 (-0)
        if tiny and (positive or (has_above and above[i] >= 0)):
            top = _next_up(vi + bound)
            if math.isfinite(top) and vi >= 0 and top < min_subnormal / 2:
                out, zero_plus = 0.0, True
            else:
                zero_plus = False
        else:
            zero_plus = False
        if tiny and has_below and below[i] <= 0:
            bottom = _next_down(vi - bound)
            if math.isfinite(bottom) and vi <= 0 and bottom > -min_subnormal / 2:
                out, zero_plus = -0.0, True
        rounded[i] = out
        ok[i] = good or zero_plus


@numba.njit(**_JIT)
def measure_estimated(c, raw, sign_bit, hi, lo, has_lo, shift, rounded, finite_code, nan_code, inf_code,
                      outcomes, ulp, bits):
    """:func:`oracles._ulp._measure_estimated` value by value, into ``outcomes``, ``ulp`` and ``bits``:
    ``c`` the computed values in float64, ``raw`` their bit patterns in the format as signed integers (int16,
    int32 or int64; ``sign_bit`` = bits - 1), folded to ordinals as ``oracles._ulp._signed_ordinals`` does, ``hi``/``lo``/``shift``/``rounded`` the frame's (``lo`` read only where
    ``has_lo``; ``rounded`` as float64 below 64 bits, int64 for 64-bit formats)."""
    for i in range(c.size):
        ci = c[i]
        if not math.isfinite(ci):
            outcomes[i] = nan_code if ci != ci else inf_code
            ulp[i] = math.nan
            bits[i] = math.nan
            continue
        outcomes[i] = finite_code
        diff = ci - hi[i]
        if has_lo:
            diff -= lo[i]
        if math.isinf(diff):  # float64 targets: c - hi beyond float64 (-max against max): taken halved
            half = ci * 0.5 - hi[i] * 0.5 - (lo[i] * 0.5 if has_lo else 0.0)
            ulp[i] = _ldexp(abs(half), shift[i] + 1)
        else:
            ulp[i] = _ldexp(abs(diff), shift[i])
        s = np.int64(raw[i])  # sign extended: the fold below is the same in any wider width
        m = s >> sign_bit
        ordinal = (s ^ (m & ((np.int64(1) << sign_bit) - 1))) - m
        d = _distance(ordinal, rounded[i])
        bits[i] = d if d <= 1.0 else math.log2(1.0 + d)  # log2(1) = 0 and log2(2) = 1 exactly


@numba.njit(**_JIT)
def _distance(a, b) -> float:
    """``oracles._ulp._ordinal_distance`` of one pair of signed ordinals (``b`` may be a float64 holding
    an integer): ``|a - b|`` as float64, taken in uint64, larger minus smaller, which is exact modulo
    ``2**64`` and below it (64-bit formats: ``+max`` against ``-max`` is about ``2**64``); below 64 bits
    the difference is under ``2**33``, exact in float64."""
    ai, bi = np.int64(a), np.int64(b)
    d = np.uint64(ai) - np.uint64(bi) if ai >= bi else np.uint64(bi) - np.uint64(ai)
    return float(d)


@numba.njit(**_JIT)
def quantum_shifts(hi, precision, emin, shift):
    """``shift = p - 1 - max(E, emin)`` of each float64 ``hi`` (``E = floor(log2|hi|)``, taken as ``emin``
    for ``hi == 0``) into the int32 ``shift``: ``ulp = 2**-shift`` (:func:`oracles._ulp.estimate_frame`)."""
    for i in range(hi.size):
        e = emin if hi[i] == 0.0 else _binade(hi[i])
        shift[i] = precision - 1 - max(e, emin)
