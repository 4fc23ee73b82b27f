"""Compiled (numba) pass from one candidate's comparison on a sweep chunk to the chunk's mergeable figures
(:mod:`harness.exhaustive`): per regime the counts, sums, maxima, histogram and quantile bins; per bucket
of the error-vs-bit-pattern plot the min, max, sum and count of the ULP errors and the non-finite mistakes;
and the indices of the values the chunk keeps as reproducers.

Why compiled: as numpy passes these were a masked copy per regime and a dozen reductions each, a
``log2`` over every error for the quantile bins, and reshapes and ``reduceat`` passes for the buckets:
about 45 ms of a ``2**20``-case chunk whose candidate (``numpy_stable``) takes 13 ms. One loop reads each
value once.

What it computes is :mod:`harness.exhaustive`'s definition of the figures, value by value:

- a value is *measured* where its ULP error is a number (``ulp`` not nan; its bits of error are then a
  number too); the others are counted by outcome class; *mistakes* are the outcome classes of
  :data:`harness._records.NON_FINITE_MISTAKES`;
- sums of ULP errors and of bits of error are compensated (Neumaier): the terms are non-negative, so the
  float64 result is within ``u*S + n*u**2*S`` of the exact sum ``S`` of ``n`` terms (``u = 2**-53``), about
  one rounding where a plain running sum can lose ``n*u*S``; an infinite term makes the sum inf (nan
  cannot occur: nan errors are not measured);
- the histogram: ``exact`` where the bits of error are 0, else the first of
  :data:`harness._records.HISTOGRAM_EDGES` the ULP error does not exceed, ``more`` above the last;
- the quantile bin of a ULP error ``u``: ``floor(64 * log2(u))``, exactly (:func:`quantile_key`: no
  ``log2`` is taken, whose rounding put values a hair below ``2**24`` in the bin of ``2**24``), the keys
  ``-ZERO_KEY`` for 0 and ``ZERO_KEY`` for inf;
- reproducers: per regime the first value with its largest ULP error and its first mistake; overall the
  ``k`` values of largest severity above 0.5 (the first ones among equals), severity as
  :func:`harness.metrics.severity` ranks values (the ULP error capped at ``2**79``; a value without a ULP
  number ``2**80``, an unconverged one -1).

``tests/unit/test_sweep_kernel.py`` holds it to a numpy transcription of these definitions on adversarial
comparisons (ties, infinities, every outcome, gradient rows, buckets without a value).

Compiled on first use and cached on disk beside this file, as :mod:`oracles._kernels`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["ZERO_KEY", "TALLY", "chunk_figures", "quantile_key"]

_JIT = dict(nogil=True, cache=True, error_model="numpy")

ZERO_KEY = 2**17  # beyond 64 * 1075: the quantile key of a 0 (negated: of an inf) ULP error
# columns of the integer tallies per regime; the outcome counts and the histogram follow them
TALLY = ("cases", "measured", "flushed_subnormal", "zero_where_nonzero", "wrong_sign", "on_nonfinite_inputs")


@numba.njit(**_JIT)
def _neumaier_add(total, compensation, x):
    """Neumaier's step: ``x`` added to the compensated sum ``total + compensation``; returns the new pair.
    Fast2Sum, led by the operand of larger magnitude, gives the rounding error of ``total + x`` exactly;
    once the sum is infinite it stays so and the compensation is left as it was (``inf - inf`` would make
    it nan)."""
    t = total + x
    if math.isfinite(t):
        compensation += (total - t) + x if abs(total) >= abs(x) else (x - t) + total
    return t, compensation


@numba.njit(**_JIT)
def _two_sum_into(total, index, s, c):
    """Add the compensated sum ``s + c`` into ``total[index]`` (a sum) and ``total[index + 1]`` (its
    compensation): Neumaier's step on ``s``, ``c`` carried over."""
    total[index], total[index + 1] = _neumaier_add(total[index], total[index + 1], s)
    total[index + 1] += c


@numba.njit(**_JIT)
def quantile_key(u: float, pattern: int) -> int:
    """The quantile bin of a ULP error ``u >= 0`` whose float64 bit pattern is ``pattern``: ``-ZERO_KEY``
    for 0, ``ZERO_KEY`` for inf, else ``floor(64 * log2(u))`` exactly. For ``u = m * 2**E`` (``1 <= m <
    2``) that is ``64 * E`` plus the number of ``j`` in ``1..63`` with ``2**(j/64) <= m``. Each
    ``2**(j/64)`` is irrational, so ``m >= 2**(j/64)`` exactly when ``m`` is at or above ``2**(j/64)``
    rounded up to float64, which for one exponent compares 52-bit mantissa fields as integers
    (:data:`_MANTISSAS`). The top 8 bits of ``m``'s field give the count at the start of its 1/256-wide
    interval (:data:`_START`); the ``2**(j/64)`` are more than ``1/256`` apart, so at most one more lies
    inside it (one comparison). A subnormal ``u`` is normalised by ``math.frexp`` first. Zero and inf
    are selected at the end, not branched on: in a sweep exact values (0) and others come in any order."""
    exponent = ((pattern >> 52) & 0x7FF) - 1023
    mantissa = pattern & _MANTISSA_MASK
    if exponent == -1023 and pattern != 0:  # subnormal (rare)
        m, e = math.frexp(u)  # u = m * 2**e, 1/2 <= m < 1
        exponent, mantissa = e - 1, _pattern_of(m * 2.0) & _MANTISSA_MASK
    j = _START[mantissa >> 44]
    j += mantissa >= _MANTISSAS[j + 1]
    key = 64 * exponent + j
    return -ZERO_KEY if pattern == 0 else ZERO_KEY if exponent == 1024 else key


@numba.njit(**_JIT)
def _pattern_of(x: float) -> int:
    """The bit pattern of a float64 as an int64."""
    return np.array([x]).view(np.int64)[0]


@numba.njit(**_JIT)
def chunk_figures(ulp, ulp_patterns, bits, codes, flushed, finite_input, zero_marks, wrong_marks, has_marks,
                  case_regime, case_bucket, per, first_bucket, mistake, unconverged_code, edges, tally, sums,
                  quantiles, bucket_low, bucket_high, bucket_sum, bucket_count, bucket_mistakes, regime_worst,
                  regime_mistake, top_index, top_severity):
    """One pass over the values of a chunk (module docstring). Inputs, per value: ``ulp`` (with its bit
    patterns, ``ulp_patterns``: the same memory as int64), ``bits`` (float64), ``codes`` (outcome codes),
    ``flushed``, ``finite_input`` and, where ``has_marks``, ``zero_marks``/``wrong_marks`` (bool); per
    case (``per`` consecutive values each): ``case_regime`` (the regime's index) and ``case_bucket`` (the
    plot bucket, from ``first_bucket``); ``mistake``: per outcome code, whether it is a non-finite mistake;
    ``edges``: the histogram's.

    Outputs, zeroed by the caller: ``tally[r]`` (int64: :data:`TALLY`, then one count per outcome code of
    the unmeasured values, then the histogram's ``len(edges) + 2`` bins), ``sums[r]`` (float64: sum and
    compensation of ULP errors, of bits of error, then max ULP and max bits, which start at -inf),
    ``quantiles[r, key + ZERO_KEY]`` (int32 counts), the buckets' ``low``/``high`` (start at ±inf),
    ``sum``, ``count``, ``mistakes``; ``regime_worst[r]``/``regime_mistake[r]`` (value indices, start at
    -1); ``top_index``/``top_severity`` (start at -1 and -inf): the worst values, in order.

    The values are taken in runs of cases with one regime and one bucket, each run's figures in local
    variables (registers, where array elements that may alias would go through memory on every value)
    and added to the outputs at its end."""
    n_cases = case_regime.size
    start = 0
    while start < n_cases:
        r, b = case_regime[start], case_bucket[start]
        stop = start + 1
        while stop < n_cases and case_regime[stop] == r and case_bucket[stop] == b:
            stop += 1
        _run(start * per, stop * per, r, b - first_bucket, ulp, ulp_patterns, bits, codes, flushed, finite_input,
             zero_marks, wrong_marks, has_marks, mistake, unconverged_code, edges, tally, sums, quantiles,
             bucket_low, bucket_high, bucket_sum, bucket_count, bucket_mistakes, regime_worst, regime_mistake,
             top_index, top_severity)
        start = stop


@numba.njit(**_JIT)
def _run(first, last, r, b, ulp, ulp_patterns, bits, codes, flushed, finite_input, zero_marks, wrong_marks,
         has_marks, mistake, unconverged_code, edges, tally, sums, quantiles, bucket_low, bucket_high, bucket_sum,
         bucket_count, bucket_mistakes, regime_worst, regime_mistake, top_index, top_severity):
    """The values ``first <= i < last``, all in regime ``r`` and bucket ``b`` (see :func:`chunk_figures`)."""
    n_outcomes = mistake.size
    hist0 = len(TALLY) + n_outcomes
    n_edges = edges.size
    k = top_index.size
    # a value enters the worst only above the last of them (strictly: the first of equals stays) and above 0.5
    gate = max(0.5, top_severity[k - 1])
    measured = flushes = zeros = wrongs = on_nonfinite = mistakes = 0
    sum_ulp = comp_ulp = sum_bits = comp_bits = 0.0
    max_bits = worst_ulp = -math.inf
    low = math.inf
    worst = first_mistake = -1
    # Branches on the data (exact or not, which bin) are written as selects: taken at random they cost
    # more than the rest of the loop.
    for i in range(first, last):
        u = ulp[i]
        code = codes[i]
        flushes += flushed[i]
        if has_marks:
            zeros += zero_marks[i]
            wrongs += wrong_marks[i]
        if mistake[code]:
            mistakes += 1
            on_nonfinite += not finite_input[i]
            if first_mistake < 0:
                first_mistake = i
        if u != u:  # no ULP number: counted by its outcome class
            tally[r, len(TALLY) + code] += 1
            severity = -1.0 if code == unconverged_code else 2.0**80
        else:
            measured += 1
            sum_ulp, comp_ulp = _neumaier_add(sum_ulp, comp_ulp, u)
            v = bits[i]
            sum_bits, comp_bits = _neumaier_add(sum_bits, comp_bits, v)
            max_bits = max(max_bits, v)
            low = min(low, u)
            if u > worst_ulp:  # strictly: the first value with the largest error
                worst_ulp, worst = u, i
            inexact = v != 0.0
            above = 0  # the edges the error exceeds (a loop over the edges, not a branch on the value)
            for j in range(n_edges):
                above += u > edges[j]
            tally[r, hist0 + inexact * (1 + above)] += 1
            quantiles[r, quantile_key(u, ulp_patterns[i]) + ZERO_KEY] += 1
            severity = min(u, 2.0**79)
        if severity > gate:
            j = k - 1
            while j > 0 and top_severity[j - 1] < severity:
                top_severity[j] = top_severity[j - 1]
                top_index[j] = top_index[j - 1]
                j -= 1
            top_severity[j] = severity
            top_index[j] = i
            gate = max(0.5, top_severity[k - 1])
    tally[r, 0] += last - first
    tally[r, 1] += measured
    tally[r, 2] += flushes
    tally[r, 3] += zeros
    tally[r, 4] += wrongs
    tally[r, 5] += on_nonfinite
    _two_sum_into(sums[r], 0, sum_ulp, comp_ulp)
    _two_sum_into(sums[r], 2, sum_bits, comp_bits)
    sums[r, 4] = max(sums[r, 4], worst_ulp)
    sums[r, 5] = max(sums[r, 5], max_bits)
    if worst >= 0 and (regime_worst[r] < 0 or worst_ulp > ulp[regime_worst[r]]):
        regime_worst[r] = worst
    if first_mistake >= 0 and regime_mistake[r] < 0:
        regime_mistake[r] = first_mistake
    bucket_low[b] = min(bucket_low[b], low)
    bucket_high[b] = max(bucket_high[b], worst_ulp)
    bucket_sum[b] += sum_ulp + comp_ulp if math.isfinite(sum_ulp) else sum_ulp
    bucket_count[b] += measured
    bucket_mistakes[b] += mistakes


def _thresholds() -> tuple[np.ndarray, np.ndarray]:
    """:func:`quantile_key`'s tables: the 52-bit mantissa fields of ``2**(j/64)`` rounded up to float64 for
    ``j = 0..63`` and ``2**52`` for ``j = 64`` (above every field), and per ``i < 256`` the number of ``j``
    in ``1..63`` with ``2**(j/64) <= 1 + i/256``."""
    import mpmath

    out = []
    with mpmath.workprec(200):
        for j in range(65):
            exact = mpmath.mpf(2) ** (mpmath.mpf(j) / 64)
            near = float(exact)
            out.append(near if near >= exact else math.nextafter(near, math.inf))
    start = [sum(1 for j in range(1, 64) if out[j] <= 1 + i / 256) for i in range(256)]
    fields = np.array(out[:64]).view(np.int64) & _MANTISSA_MASK
    return np.append(fields, np.int64(1) << 52), np.array(start, dtype=np.int64)


_MANTISSA_MASK = (1 << 52) - 1
_MANTISSAS, _START = _thresholds()
# the bins' width is harness.exhaustive's (its percentiles read these keys); the tables above are built for 64
from .exhaustive import QUANTILE_BINS_PER_OCTAVE  # noqa: E402 - (loaded already: exhaustive imports this module lazily)

if QUANTILE_BINS_PER_OCTAVE != 64:
    raise ImportError(f"QUANTILE_BINS_PER_OCTAVE={QUANTILE_BINS_PER_OCTAVE}: harness._sweep_kernel's quantile_key is"
                      " built for 64 bins per octave; rebuild its tables for the new width")
