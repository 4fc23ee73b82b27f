"""Correct rounding into the target formats: ties, subnormals, overflow, and agreement with IEEE casts."""

import math

import ml_dtypes
import numpy as np
import pytest
from mpmath import libmp

from oracles import FORMATS, round_mpf, round_rational

F32 = FORMATS["float32"]


def exact(value: float) -> tuple:
    return libmp.from_float(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1 + 2.0**-24, 1.0),  # halfway, ties to even (down)
        (1 + 3 * 2.0**-24, 1 + 2.0**-22),  # halfway, ties to even (up)
        (4526288.25, 4526288.0),  # the midpoint itself: even neighbour
        (-(1 + 2.0**-24), -1.0),
    ],
)
def test_float32_halfway_cases_round_to_even(value, expected):
    assert round_mpf(exact(value), F32) == expected


def test_a_value_just_above_a_midpoint_is_not_lost_by_rounding_through_float64():
    # 4526288.25 + 2**-80 is not a float64; rounding it to float64 first gives the midpoint, then 4526288.0.
    above = libmp.mpf_add(exact(4526288.25), libmp.from_man_exp(1, -80), 0)
    assert round_mpf(above, F32) == 4526288.5
    assert float(np.float32(libmp.to_float(above))) == 4526288.0  # the double rounding we avoid


def test_float32_subnormal_normal_boundary():
    min_normal, min_sub = 2.0**-126, 2.0**-149
    assert round_mpf(exact(min_normal), F32) == min_normal
    assert round_mpf(exact(min_normal - min_sub), F32) == min_normal - min_sub  # largest subnormal
    assert round_mpf(exact(min_normal - min_sub / 2), F32) == min_normal  # tie between them: even is 2**-126
    assert round_mpf(exact(min_sub / 2), F32) == 0.0  # half the smallest subnormal ties to zero
    assert round_mpf(exact(min_sub / 2 + 2.0**-200), F32) == min_sub
    assert round_mpf(exact(min_sub * 1.5), F32) == 2 * min_sub  # 1.5 ties to even (2)
    assert math.copysign(1, round_mpf(exact(-(2.0**-160)), F32)) == -1  # underflow keeps the sign


def test_float32_overflow_threshold_is_the_midpoint_above_max():
    fmax = F32.max_finite
    threshold = (2 - 2.0**-24) * 2.0**127
    assert round_mpf(exact(fmax), F32) == fmax
    assert round_mpf(exact(threshold), F32) == math.inf  # tie goes to the even "2**128"
    below = libmp.mpf_sub(exact(threshold), libmp.from_man_exp(1, 60), 0)
    assert round_mpf(below, F32) == fmax
    assert round_mpf(exact(-threshold), F32) == -math.inf


@pytest.mark.parametrize("name", ["float16", "float32"])
def test_rounding_float64_values_matches_numpy_ieee_casts(name):
    # A float64 value is exact, and numpy's float64 -> float16/float32 cast is a single IEEE rounding.
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**63, size=20000, dtype=np.uint64)
    values = bits.view(np.float64)
    values = values[np.isfinite(values)]
    # Concentrate on the target's range: scale exponents into it.
    fmt = FORMATS[name]
    values = np.ldexp(np.frexp(values)[0], rng.integers(fmt.quantum_min - 3, fmt.emax + 3, size=values.size))
    with np.errstate(over="ignore"):
        expected = values.astype(name).astype(np.float64)
    got = np.array([round_mpf(exact(float(v)), fmt) for v in values])
    assert np.array_equal(got, expected), values[got != expected][:5]


def test_bfloat16_rounding_is_a_single_rounding_of_the_exact_value():
    fmt = FORMATS["bfloat16"]
    # Just above the bfloat16 midpoint between 1 and 1 + 2**-7, and below float32's resolution there:
    # rounding through float32 first would land on the midpoint and then round to even (1.0).
    value = 1 + 2.0**-8 + 2.0**-30
    assert round_mpf(exact(value), fmt) == 1 + 2.0**-7
    assert round_mpf(exact(1 + 2.0**-8 - 2.0**-30), fmt) == 1.0  # just below it
    assert round_mpf(exact(1 + 2.0**-8), fmt) == 1.0  # the midpoint itself: to even
    assert round_mpf(exact(1 + 3 * 2.0**-8), fmt) == 1 + 2 * 2.0**-7  # the next midpoint: to even, upwards
    # From float32 values (exact in float64) a cast is a single rounding, and we agree with ml_dtypes.
    rng = np.random.default_rng(3)
    values = rng.standard_normal(5000).astype(np.float32) * np.float32(2.0) ** rng.integers(-140, 120, 5000)
    expected = values.astype(ml_dtypes.bfloat16).astype(np.float64)
    got = np.array([round_mpf(exact(float(v)), fmt) for v in values])
    assert np.array_equal(got, expected)


def test_rationals_round_correctly_including_thirds_and_subnormals():
    f64 = FORMATS["float64"]
    assert round_rational(1, 3, f64) == 1 / 3
    assert round_rational(-2, 3, f64) == -2 / 3
    assert round_rational(1, 3 * 2**1074, f64) == 0.0  # 1/3 of the smallest subnormal
    assert round_rational(2, 3 * 2**1074, f64) == 5e-324  # 2/3 of it rounds up
    assert round_rational(10**400, 1, f64) == math.inf
    with pytest.raises(ValueError, match="den=0"):
        round_rational(1, 0, f64)
