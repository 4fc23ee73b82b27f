"""The compiled loops (:mod:`oracles._kernels`) against a plain numpy transcription of what they carry out
(:func:`oracles._fast.certify` for formats narrower than float64, :func:`oracles._ulp._measure_estimated`),
bit for bit, on adversarial values: format values, rounding midpoints and their float64 neighbours, binade
edges, the subnormal and overflow ranges, zeros of both signs, nan and infinities; bounds from nothing to
far too wide; proven bounds on powers of two.

The numpy transcriptions below are the code these loops replaced, kept as the reference."""

from __future__ import annotations

import numpy as np
import pytest

from oracles import _fast, _ulp
from oracles._formats import FORMATS, Format
from oracles._ulp import OUTCOME_CODE, EstimateFrame

NARROW = ("float16", "bfloat16", "float32")
SEEDS = range(4)
N = 200_000


# ------------------------------------------------------------------------------ numpy transcriptions


def certify_reference(estimate: _fast.Estimate, fmt: Format) -> tuple[np.ndarray, np.ndarray]:
    v, delta = estimate.value, estimate.delta
    bounded = estimate.above is not None or estimate.below is not None
    with np.errstate(all="ignore"):
        bound = delta * _fast.FINAL_MARGIN + _fast.ABSOLUTE_FLOOR
        lo = np.nextafter(v - bound, -np.inf)
        hi = np.nextafter(v + bound, np.inf)
        ok = estimate.eligible & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(v) & np.isfinite(delta)
        lo_r, hi_r = lo, hi
        if bounded:
            if estimate.above is not None:
                lo_r = np.maximum(lo, estimate.above)
                lo = np.maximum(lo, np.nextafter(estimate.above, np.inf))
            if estimate.below is not None:
                hi_r = np.minimum(hi, estimate.below)
                hi = np.minimum(hi, np.nextafter(estimate.below, -np.inf))
            ok &= lo <= hi
        ok &= (lo > 0) | (hi < 0)
        lo_r = np.where(ok, lo_r, 1.0)
        hi_r = np.where(ok, hi_r, 1.0)
        r_lo, e_lo = _fast.round_to_format(lo_r, fmt)
        r_hi, e_hi = _fast.round_to_format(hi_r, fmt)
        if bounded:
            e_lo = np.frexp(np.where(ok, lo, 1.0))[1].astype(np.int64) - 1
            e_hi = np.frexp(np.where(ok, hi, 1.0))[1].astype(np.int64) - 1
        ok &= (np.maximum(e_lo, fmt.emin) == np.maximum(e_hi, fmt.emin)) & (e_hi <= fmt.emax)
        ok &= (r_lo == r_hi) & (np.abs(r_lo) <= fmt.max_finite)
        ok &= bound <= _fast.MAX_RELATIVE_BOUND * np.abs(v)
        rounded = np.where(ok, r_lo, np.nan)
        tiny = ~ok & estimate.eligible & (bound <= _fast.MAX_RELATIVE_BOUND * fmt.min_subnormal)
        positive = estimate.positive if estimate.above is None else (estimate.positive | (estimate.above >= 0))
        if np.any(positive):
            top = np.nextafter(v + bound, np.inf)
            zero = tiny & positive & np.isfinite(top) & (v >= 0) & (top < fmt.min_subnormal / 2)
            rounded = np.where(zero, 0.0, rounded)
            ok = ok | zero
        if estimate.below is not None:
            bottom = np.nextafter(v - bound, -np.inf)
            zero = tiny & (estimate.below <= 0) & np.isfinite(bottom) & (v <= 0) & (bottom > -fmt.min_subnormal / 2)
            rounded = np.where(zero, -0.0, rounded)
            ok = ok | zero
    return rounded, ok


def measure_reference(c: np.ndarray, frame: EstimateFrame, fmt: Format, native: np.ndarray):
    finite = np.isfinite(c)
    outcomes = np.full(c.shape, OUTCOME_CODE["finite"], dtype=np.uint8)
    with np.errstate(all="ignore"):
        diff = c - frame.hi
        if frame.lo is not None:
            diff -= frame.lo
        ulp = np.ldexp(np.abs(diff), frame.shift)
        over = np.isinf(diff) & finite
        if over.any():
            half = c[over] * 0.5 - frame.hi[over] * 0.5 - (0.0 if frame.lo is None else frame.lo[over] * 0.5)
            ulp[over] = np.ldexp(np.abs(half), frame.shift[over] + 1)
        mine = native if native.dtype == fmt.numpy_dtype else c
        bits = np.log2(1.0 + _ulp._ordinal_distance(_ulp._signed_ordinals(mine, fmt), frame.rounded))
    wrong = ~finite
    outcomes[wrong] = np.where(np.isnan(c[wrong]), OUTCOME_CODE["nan"], OUTCOME_CODE["inf"])
    ulp[wrong] = np.nan
    bits[wrong] = np.nan
    return outcomes, ulp, bits


# ----------------------------------------------------------------------------------- adversarial values


def format_values(rng: np.random.Generator, fmt: Format, n: int) -> np.ndarray:
    """Random values of the format (every bit pattern equally likely, nan and infinities included), as float64."""
    patterns = rng.integers(0, 1 << fmt.bits, size=n, dtype=np.uint64).astype(fmt.uint_dtype)
    with np.errstate(invalid="ignore"):
        return patterns.view(fmt.numpy_dtype).astype(np.float64)


def hard_values(rng: np.random.Generator, fmt: Format, n: int) -> np.ndarray:
    """Values where rounding is decided on a hair: format values, the midpoints between neighbours, those
    moved by a few float64 steps, powers of two, the edges of the subnormal and overflow ranges, zeros,
    values below half the smallest subnormal, float64 extremes, nan and infinities."""
    base = format_values(rng, fmt, n)
    with np.errstate(all="ignore"):
        quantum = np.ldexp(1.0, np.maximum(np.frexp(base)[1] - 1, fmt.emin) - fmt.precision + 1)
        special = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, fmt.min_subnormal, fmt.min_subnormal / 2,
                            fmt.min_subnormal / 4, fmt.min_normal, fmt.max_finite, np.ldexp(1.0, fmt.emax + 1),
                            fmt.max_finite + np.ldexp(1.0, fmt.emax - fmt.precision), 1e-300, 2.0**-1010, 1e300])
        kind = rng.integers(0, 6, size=n)
        values = np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
            [base, base + quantum / 2, np.ldexp(1.0, rng.integers(fmt.quantum_min - 3, fmt.emax + 2, size=n)),
             special[rng.integers(0, special.size, size=n)], base + quantum * rng.random(n)],
            base - quantum / 2)
        steps = rng.integers(-3, 4, size=n) * (rng.random(n) < 0.5)
        for _ in range(3):  # move some by up to three float64 steps either way
            values = np.where(steps > 0, np.nextafter(values, np.inf), np.where(steps < 0, np.nextafter(values, -np.inf), values))
            steps = steps - np.sign(steps)
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        return np.where(kind == 3, values, values * sign)


def adversarial_estimate(rng: np.random.Generator, fmt: Format, n: int, bounds: str) -> _fast.Estimate:
    v = hard_values(rng, fmt, n)
    with np.errstate(all="ignore"):
        relative = np.abs(v) * np.ldexp(1.0, -rng.integers(20, 70, size=n))
        choices = [relative, np.zeros(n), np.full(n, 2.0**-1000), np.full(n, 2.0**-1100), np.abs(v) * rng.random(n),
                   np.full(n, np.nan), np.full(n, np.inf), np.ldexp(1.0, -rng.integers(120, 200, size=n))]
        delta = np.choose(rng.integers(0, len(choices), size=n) * (rng.random(n) < 0.6), choices)
        eligible = rng.random(n) < 0.9

        def bound(direction: float) -> np.ndarray:
            np.seterr(all="ignore")  # (inside the errstate above: overflowing neighbours are wanted)
            edge = np.ldexp(np.sign(v) * 1.0, np.frexp(v)[1] - (direction < 0))  # a power of two beside v
            options = [np.full(n, -direction * np.inf), edge, v, np.nextafter(v, direction * np.inf),
                       np.nextafter(v, -direction * np.inf), np.zeros(n), np.full(n, np.nan), hard_values(rng, fmt, n)]
            return np.choose(rng.integers(0, len(options), size=n), options)

    above = bound(-1.0) if bounds in ("above", "both") else None
    below = bound(1.0) if bounds in ("below", "both") else None
    return _fast.Estimate(v, delta, eligible, positive=bool(rng.random() < 0.5), above=above, below=below)


def same_floats(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit (zeros keep their sign), any nan equal to any nan."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64)))


# ---------------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("dtype", NARROW)
@pytest.mark.parametrize("bounds", ["none", "above", "below", "both"])
def test_compiled_certify_decides_every_adversarial_estimate_as_the_numpy_transcription(dtype, bounds):
    fmt = FORMATS[dtype]
    for seed in SEEDS:
        estimate = adversarial_estimate(np.random.default_rng([seed, fmt.bits, len(bounds)]), fmt, N, bounds)
        rounded, ok = _fast.certify(estimate, fmt)
        expected_rounded, expected_ok = certify_reference(estimate, fmt)
        assert np.array_equal(ok, expected_ok), (seed, np.flatnonzero(ok != expected_ok)[:5])
        assert same_floats(np.where(ok, rounded, np.nan), np.where(expected_ok, expected_rounded, np.nan)), seed
        assert 0.02 < ok.mean() < 0.98  # both outcomes are exercised


def test_compiled_certify_takes_a_gradient_estimates_broadcast_eligibility_and_shape():
    fmt = FORMATS["float32"]
    v = np.array([[1.0 + 2.0**-30, 2.5], [3.0, 1.0 + 2.0**-24]])
    estimate = _fast.Estimate(v, np.full(v.shape, 2.0**-45), np.broadcast_to(np.array([[True], [False]]), v.shape))
    rounded, ok = _fast.certify(estimate, fmt)
    assert ok.tolist() == [[True, True], [False, False]] and rounded[0].tolist() == [1.0, 2.5]


def frame_for(rng: np.random.Generator, fmt: Format, n: int, tail: bool) -> EstimateFrame:
    exact = hard_values(rng, fmt, n)
    exact = np.where(np.isfinite(exact) & (exact != 0), exact, 1.0)  # the frame holds finite nonzero values
    with np.errstate(all="ignore"):
        hi = exact
        lo = np.where(rng.random(n) < 0.5, hi * np.ldexp(1.0, -rng.integers(54, 80, size=n)), 0.0) if tail else None
        binade = np.frexp(hi)[1] - 1
        shift = (fmt.precision - 1 - np.maximum(binade, fmt.emin)).astype(np.int32)
        rounded = _fast.round_to_format(hi, fmt)[0] if fmt.precision < 53 else hi
        rounded = np.where(np.abs(rounded) <= fmt.max_finite, rounded, np.sign(rounded) * fmt.max_finite)
    ordinals = _ulp._signed_ordinals(rounded, fmt)
    return EstimateFrame(np.ones(n, bool), hi, lo, shift, ordinals if fmt.bits == 64 else ordinals.astype(np.float64))


def computed_near(rng: np.random.Generator, fmt: Format, frame: EstimateFrame, n: int) -> np.ndarray:
    """A candidate's values: the exact rounding moved by a few format steps, zeros, flipped signs, the
    format's extremes, nan and infinities, other format values."""
    with np.errstate(all="ignore"):
        near = frame.hi.astype(fmt.numpy_dtype)
        for _ in range(3):
            move = rng.integers(-1, 2, size=n)
            near = np.where(move > 0, np.nextafter(near, near.dtype.type(np.inf)) if fmt.name != "bfloat16" else near,
                            np.where(move < 0, near * near.dtype.type(0.5), near))
        options = [near.astype(np.float64), -near.astype(np.float64), np.zeros(n), np.full(n, -0.0),
                   np.full(n, np.nan), np.full(n, np.inf), np.full(n, -np.inf), np.full(n, fmt.max_finite),
                   np.full(n, -fmt.max_finite), format_values(rng, fmt, n)]
        return np.choose(rng.integers(0, len(options), size=n) * (rng.random(n) < 0.5), options)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("tail", [False, True])
@pytest.mark.parametrize("native", ["format", "float64"])
def test_compiled_measure_gives_the_numpy_transcriptions_outcomes_ulp_errors_and_bits(dtype, tail, native):
    fmt = FORMATS[dtype]
    for seed in SEEDS:
        rng = np.random.default_rng([seed, fmt.bits, tail, len(native)])
        frame = frame_for(rng, fmt, N, tail)
        c = computed_near(rng, fmt, frame, N)
        given = c.astype(fmt.numpy_dtype) if native == "format" else c
        c64 = given.astype(np.float64)
        outcomes, ulp, bits = _ulp._measure_estimated(c64, frame, fmt, given)
        expected = measure_reference(c64, frame, fmt, given)
        assert np.array_equal(outcomes, expected[0]), seed
        assert same_floats(ulp, expected[1]), (seed, np.flatnonzero(~((ulp == expected[1]) | np.isnan(ulp)))[:5])
        # bits of error: log2 from the C library against numpy's own (each within a float64 ulp of the truth)
        assert np.array_equal(np.isnan(bits), np.isnan(expected[2])), seed
        assert np.all(np.abs(bits - expected[2])[~np.isnan(bits)] <= np.spacing(expected[2][~np.isnan(bits)])), seed
        assert np.count_nonzero((bits != expected[2]) & ~np.isnan(bits)) < N // 1000  # nearly all bit for bit
        assert 0 < np.count_nonzero(ulp > 1e6) and 0 < np.count_nonzero(ulp <= 0.5)  # far and near both exercised
