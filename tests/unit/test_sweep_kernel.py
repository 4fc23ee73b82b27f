"""The sweep's compiled figures pass (:mod:`harness._sweep_kernel`, through ``harness.exhaustive._figures_of``)
against a plain transcription of the figures' definitions (the numpy passes it replaced, per regime masks,
``math.fsum`` for the sums), on adversarial comparisons: every outcome class, ties for the largest error,
0 and inf errors, runs of one regime a few cases long, gradient rows (two values a case) and buckets that
no value reaches; and the quantile key against ``floor(64 * log2(u))`` taken in 200-bit arithmetic."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import oracles
from harness._records import COUNTED_OUTCOMES, HISTOGRAM_BINS, HISTOGRAM_EDGES, NON_FINITE_MISTAKES
from harness._sweep_kernel import ZERO_KEY, quantile_key
from harness.exhaustive import _WORST_PER_CHUNK, _figures_of
from harness.metrics import Comparison
from oracles import OUTCOME_CODE

REGIMES = ("special", "tiny", "confident", "hard", "soft")


def exact_key(u: float) -> int:
    """``floor(64 * log2(u))`` in 200-bit arithmetic: ``u = m * 2**E`` exactly, and ``log2(m)`` is 0 or
    irrational for ``1 <= m < 2``, so its floor is decided far above the working precision's error."""
    if u == 0.0:
        return -ZERO_KEY
    if math.isinf(u):
        return ZERO_KEY
    m, e = math.frexp(u)
    m, e = m * 2, e - 1
    if m == 1.0:
        return 64 * e
    with mpmath.workprec(200):
        return 64 * e + int(mpmath.floor(64 * mpmath.log(mpmath.mpf(m), 2)))


def hard_errors() -> np.ndarray:
    """Powers of two, the bin edges ``2**(k/64)`` rounded both ways and their float64 neighbours, the
    subnormal range, the largest floats, values just below ``2**24`` (a rounded ``log2`` puts them in the
    next bin)."""
    values = [0.0, math.inf, 5e-324, 1e-320, 2.0**-1022, 2.0**-1022 - 5e-324, 1.7976931348623157e308, 0.5, 1.0]
    with mpmath.workprec(200):
        for k in range(-64 * 1074, 64 * 1024, 997):
            edge = mpmath.mpf(2) ** (mpmath.mpf(k) / 64)
            near = float(edge)
            values += [near, math.nextafter(near, 0), math.nextafter(near, math.inf)]
        for j in range(64):
            edge = float(mpmath.mpf(2) ** (mpmath.mpf(j) / 64))
            for scale in (2.0**-1070, 2.0**-3, 1.0, 2.0**24, 2.0**900):
                v = edge * scale
                values += [v, math.nextafter(v, 0), math.nextafter(v, math.inf)]
    values += [math.nextafter(2.0**24, 0) - i * 2.0**-29 for i in range(5)]
    return np.array([v for v in values if v >= 0 and (math.isfinite(v) or v == math.inf)])


def test_the_quantile_key_is_floor_of_64_log2_exactly_on_bin_edges_and_subnormals():
    values = hard_errors()
    got = [quantile_key(float(u), int(p)) for u, p in zip(values, values.view(np.int64))]
    want = [exact_key(float(u)) for u in values]
    wrong = [(float(u), g, w) for u, g, w in zip(values, got, want) if g != w]
    assert not wrong, wrong[:5]


def comparison(seed: int, n_cases: int, per: int) -> tuple[Comparison, np.ndarray, np.ndarray]:
    """A synthetic chunk comparison: ``n_cases`` cases of ``per`` values; each case's regime (runs of 1 to
    40 cases) and bucket (ascending in two label blocks, skipping some buckets)."""
    rng = np.random.default_rng(seed)
    n = n_cases * per
    pool = np.concatenate([[0.0, 0.25, 0.5, 0.75, 1.0, 3.0, 4.0, 5.0, 1024.0, 2000.0, 2.0**79, 2.0**90, math.inf],
                           rng.choice(hard_errors()[hard_errors() < 2.0**100], 200)])
    ulp = np.where(rng.random(n) < 0.5, rng.choice(pool, n), rng.exponential(3.0, n))
    bits = np.where(rng.random(n) < 0.4, 0.0, np.log2(1 + ulp))
    codes = np.full(n, OUTCOME_CODE["finite"], dtype=np.uint8)
    unmeasured = rng.random(n) < 0.15
    codes[unmeasured] = rng.integers(1, len(oracles.OUTCOMES), int(unmeasured.sum()))
    ulp[unmeasured] = np.nan
    bits[unmeasured] = np.nan
    runs = np.repeat(rng.integers(0, len(REGIMES), n_cases), rng.integers(1, 40, n_cases))[:n_cases]
    half = n_cases // 2
    buckets = np.sort(rng.choice(np.arange(0, 3 * half), half, replace=False)) // 2 + 7
    bucket = np.concatenate([buckets, buckets[: n_cases - half]])
    c = Comparison(ulp=ulp, bits=bits, codes=codes, flushed=rng.random(n) < 0.05, finite_input=rng.random(n) < 0.8,
                   zero_where_nonzero=rng.random(n) < 0.03, wrong_sign=rng.random(n) < 0.03)
    return c, runs.astype(np.int8), bucket


def reference(c: Comparison, case_regime: np.ndarray, bucket: np.ndarray, per: int):
    """The definitions, with masks: per regime its statistics, per bucket its figures, the picked values."""
    regime = np.repeat(case_regime, per)
    value_bucket = np.repeat(bucket, per)
    measured = ~np.isnan(c.ulp)
    mistake = np.isin(c.codes, [OUTCOME_CODE[m] for m in NON_FINITE_MISTAKES])
    stats = {}
    for r, name in enumerate(REGIMES):
        m = regime == r
        if not m.any():
            continue
        mm = m & measured
        u, b = c.ulp[mm], c.bits[mm]
        counts = dict.fromkeys(COUNTED_OUTCOMES, 0)
        for outcome in COUNTED_OUTCOMES:
            if outcome in OUTCOME_CODE:
                counts[outcome] = int(np.count_nonzero(m & ~measured & (c.codes == OUTCOME_CODE[outcome])))
        counts["flushed_subnormal"] = int(np.count_nonzero(m & c.flushed))
        counts["zero_where_nonzero"] = int(np.count_nonzero(m & c.zero_where_nonzero))
        counts["wrong_sign"] = int(np.count_nonzero(m & c.wrong_sign))
        counts["on_nonfinite_inputs"] = int(np.count_nonzero(m & mistake & ~c.finite_input))
        inexact = u[b != 0]
        edges = (0.0,) + HISTOGRAM_EDGES + (math.inf,)
        hist = [int(np.count_nonzero(b == 0))] + [int(np.count_nonzero((inexact > lo) & (inexact <= hi)))
                                                  for lo, hi in zip(edges[:-1], edges[1:])]
        hist[1] += int(np.count_nonzero(inexact == 0))  # (an inexact value with a 0 ULP error cannot occur)
        keys: dict[str, int] = {}
        for v in u.tolist():
            k = exact_key(v)
            key = "zero" if k == -ZERO_KEY else "inf" if k == ZERO_KEY else str(k)
            keys[key] = keys.get(key, 0) + 1
        stats[name] = {"cases": int(m.sum()), "measured": int(mm.sum()), "sum_ulp": math.fsum(u.tolist()),
                       "max_ulp": float(u.max()) if u.size else None, "bits_measured": int(mm.sum()),
                       "sum_bits": math.fsum(b.tolist()), "max_bits": float(b.max()) if b.size else None,
                       "counts": counts, "histogram": dict(zip(HISTOGRAM_BINS, hist)), "quantiles": keys}
    first, last = int(bucket.min()), int(bucket.max())
    plot = {"first": first, "min": [], "max": [], "sum": [], "count": [], "non_finite": []}
    for k in range(first, last + 1):
        m = value_bucket == k
        u = c.ulp[m & measured]
        plot["min"].append(float(u.min()) if u.size and not math.isinf(u.min()) else None)
        plot["max"].append(float(u.max()) if u.size and not math.isinf(u.max()) else None)
        plot["sum"].append(math.fsum(u.tolist()))
        plot["count"].append(int(u.size))
        plot["non_finite"].append(int(np.count_nonzero(m & mistake)))
    picked = set()
    for r in range(len(REGIMES)):
        members = np.flatnonzero(regime == r)
        mine = members[measured[members]]
        if mine.size:
            picked.add(int(mine[np.argmax(c.ulp[mine])]))
        wrong = members[mistake[members]]
        if wrong.size:
            picked.add(int(wrong[0]))
    sev = np.where(measured, np.minimum(c.ulp, 2.0**79), np.where(c.codes == OUTCOME_CODE["unconverged"], -1.0, 2.0**80))
    top = np.flatnonzero(sev > 0.5)
    picked |= set(top[np.argsort(-sev[top], kind="stable")][:_WORST_PER_CHUNK].tolist())
    return stats, plot, sorted(picked)


@pytest.mark.parametrize("per", [1, 2])
@pytest.mark.parametrize("seed", range(3))
def test_the_compiled_figures_equal_their_definition_on_adversarial_comparisons(seed, per):
    c, case_regime, bucket = comparison(seed, 6000, per)
    stats, plot, picked = _figures_of(c, case_regime, list(REGIMES), bucket, per)
    want_stats, want_plot, want_picked = reference(c, case_regime, bucket, per)
    assert list(stats) == list(want_stats)  # the regimes present, in the family's order
    for name, want in want_stats.items():
        got = stats[name]
        for key in ("sum_ulp", "sum_bits"):  # compensated: within a rounding or two of the exact sum
            assert got.pop(key) == pytest.approx(want.pop(key), rel=4e-16, abs=0), (name, key)
        assert got == want, name
    for key in ("min", "max", "count", "non_finite", "first"):
        assert plot[key] == want_plot[key], key
    assert plot["sum"] == pytest.approx(want_plot["sum"], rel=1e-13)
    assert picked == want_picked


def test_the_worst_values_are_the_first_of_equals_and_unconverged_values_never_rank():
    n = 40
    ulp = np.full(n, 3.0)
    ulp[[5, 9, 17, 30, 33]] = 7.0  # five ties for the largest error: the first four are kept
    codes = np.full(n, OUTCOME_CODE["finite"], dtype=np.uint8)
    ulp[2] = np.nan
    codes[2] = OUTCOME_CODE["unconverged"]
    c = Comparison(ulp=ulp, bits=np.where(np.isnan(ulp), np.nan, 1.0), codes=codes, flushed=np.zeros(n, bool),
                   finite_input=np.ones(n, bool))
    stats, _plot, picked = _figures_of(c, np.full(n, 3, dtype=np.int8), list(REGIMES), np.zeros(n, dtype=np.int64), 1)
    assert picked == [5, 9, 17, 30]
    assert stats["hard"]["counts"]["unconverged"] == 1 and stats["hard"]["max_ulp"] == 7.0


def test_values_within_half_an_ulp_are_never_listed_among_the_worst():
    n = 30
    ulp = np.full(n, 0.5)
    ulp[20] = 0.75
    c = Comparison(ulp=ulp, bits=np.ones(n), codes=np.full(n, OUTCOME_CODE["finite"], dtype=np.uint8),
                   flushed=np.zeros(n, bool), finite_input=np.ones(n, bool))
    _stats, _plot, picked = _figures_of(c, np.full(n, 4, dtype=np.int8), list(REGIMES), np.zeros(n, dtype=np.int64), 1)
    assert picked == [20]
