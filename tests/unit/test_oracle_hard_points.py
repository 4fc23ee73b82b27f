"""The oracle at the points where a non-rigorous enclosure, a float64 intermediate or a rounding decided from
the wrong side shows: exact values a hair from a rounding midpoint, in every format, asserted bit for bit.

The expected bits come from arithmetic done here (the value is a midpoint plus a term of known sign far
below half an ULP, so it rounds to a known neighbour) or from the independent arb/MPFR reference oracle of
tests/crosscheck (a few hundred points; the cross-check itself runs ten thousand per family and format)."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import oracles
from oracles._api import _evaluate
from tests.crosscheck import points as P
from tests.crosscheck.reference_oracle import reference_gradient, reference_loss

DTYPES = ("float16", "bfloat16", "float32", "float64")
NUMPY = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}


def _precision(dtype: str) -> int:
    return oracles.resolve_format(dtype).precision


def _quantum(v: Fraction, dtype: str) -> Fraction:
    """The spacing of the format's numbers at |v| (normal range)."""
    e = math.floor(math.log2(abs(v)))
    while Fraction(2) ** e > abs(v):
        e -= 1
    while Fraction(2) ** (e + 1) <= abs(v):
        e += 1
    return Fraction(2) ** (e - _precision(dtype) + 1)


def _bits(values, dtype: str) -> list[str]:
    """Values as hex floats after a round trip through the dtype (the dtype holds them exactly)."""
    arr = np.asarray(values).astype(NUMPY[dtype]).astype(np.float64)
    return [float(v).hex() for v in arr.ravel()]


# ------------------------------------------------------------------------- a midpoint plus exp(-|x|)


def _midpoint_logit(dtype: str) -> tuple[int, Fraction, Fraction]:
    """An odd integer a (exact in dtype) with 3a/4 a rounding midpoint whose lower neighbour is even, so that
    a tie rounded to even goes down while the exact loss ``3a/4 + log1p(exp(-a))`` must go up."""
    p = _precision(dtype)
    a = (1 << p) // 3 + 1
    while True:
        a += a % 2 == 0
        v = Fraction(3 * a, 4)
        q = _quantum(v, dtype)
        lower = (v // q) * q
        if v - lower == q / 2 and (lower / q) % 2 == 0:
            return a, lower, lower + q
        a += 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_midpoint_plus_exp_of_minus_a_large_logit_rounds_up_in_every_format(dtype):
    a, lower, upper = _midpoint_logit(dtype)
    t = NUMPY[dtype]
    # x = -a, z = 3/4 gives a*z + log1p(exp(-a)); x = +a, z = 1/4 gives a*(1 - z) + the same
    x = np.array([-a, a], t)
    z = np.array([0.75, 0.25], t)
    assert [float(v) for v in x.astype(np.float64)] == [-a, a]
    got = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype=dtype)
    assert _bits(got, dtype) == [float(upper).hex()] * 2, (a, float(lower), float(upper))


def test_the_float32_example_of_the_readme_rounds_to_4526288_point_5():
    got = oracles.loss("sigmoid_ce", logits=np.float32([-6035051.0]), labels=np.float32([0.75]), dtype="float32")
    assert got.tolist() == [4526288.5]


# ------------------------------------------------------------------ the gradient at a subnormal logit


def _subnormal_logits(dtype: str) -> list[float]:
    """x = (4m + 2) * 2**emin_sub for a few m, both signs: x/4 is an exact midpoint between subnormals."""
    tiny = float(oracles.resolve_format(dtype).min_subnormal)
    ms = (0, 1, 2, 3, 10, 11)
    return [s * (4 * m + 2) * tiny for m in ms for s in (1.0, -1.0)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_sigmoid_gradient_at_a_subnormal_logit_with_label_one_half_rounds_toward_zero(dtype):
    # sigmoid(x) - 1/2 = x/4 - x**3/48 + ...: a midpoint between two subnormals, moved toward zero by far less
    # than half an ULP; the correct rounding is the neighbour toward zero whatever the parity (ties-to-even
    # would go up for odd m, and an enclosure that misses the cubic term decides either way).
    tiny = float(oracles.resolve_format(dtype).min_subnormal)
    xs = _subnormal_logits(dtype)
    t = NUMPY[dtype]
    x = np.array(xs, t)
    assert x.astype(np.float64).tolist() == xs
    got = oracles.gradient("sigmoid_ce", logits=x, labels=np.full(x.shape, 0.5, t), dtype=dtype)
    expected = [math.copysign(math.floor(abs(v) / tiny / 4) * tiny, v) for v in xs]
    assert _bits(got, dtype) == [float(v).hex() for v in np.array(expected, t).astype(np.float64)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_sigmoid_gradient_at_a_large_logit_with_a_tiny_label_rounds_below_the_midpoint(dtype):
    # x large, z = 2**-(p+1): the gradient (1 - z) - sigmoid(-x) is the midpoint 1 - 2**-(p+1) between 1 - 2**-p
    # and 1, minus sigmoid(-x), far below half an ULP: it rounds down to 1 - 2**-p (a tie would go up to 1).
    p = _precision(dtype)
    t = NUMPY[dtype]
    x = np.array([256.0, 300.0], t)
    z = np.array([2.0 ** -(p + 1)] * 2, t)
    got = oracles.gradient("sigmoid_ce", logits=x, labels=z, dtype=dtype)
    assert _bits(got, dtype) == [(1 - 2.0**-p).hex()] * 2


# -------------------------------------------------------- against the independent arb/MPFR reference


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", P.FAMILIES)
def test_the_oracle_agrees_bit_for_bit_with_the_arb_reference_at_hard_and_random_points(family, dtype):
    blocks = P.structured(family, dtype, 60, seed=11) + P.points(family, dtype, 60, seed=12)
    for x, z in blocks:
        kind = "probs" if family == "binary_ce" else "logits"
        for what, ours, reference in (("loss", oracles.loss, reference_loss), ("gradient", oracles.gradient, reference_gradient)):
            got = ours(family, **{kind: x}, labels=z, dtype=dtype)
            want = reference(family, x, z, dtype)
            assert _bits(got, dtype) == _bits(want, dtype), (what, family, dtype)


def test_a_float64_soft_label_is_subtracted_exactly_not_in_float64():
    # 1 - z is not a float64 number for these labels: the loss x*(1 - z) + log1p(exp(-x)) must use the exact
    # difference (a float64 intermediate moves about one value in eight by one ULP here).
    rng = np.random.default_rng(7)
    x = rng.uniform(1.0, 64.0, 200)
    z = rng.uniform(0.0, 0.5, 200)
    inexact = np.array([Fraction(1) - Fraction(v) != Fraction(1.0 - v) for v in z])
    assert inexact.sum() > 100
    want = reference_loss("sigmoid_ce", x, z, "float64")
    # both paths: the fast path decides most of these, so the Ziv path (the ground truth it is checked
    # against) is forced too
    for path in ("auto", "ziv"):
        got = _evaluate("sigmoid_ce", logits=x, labels=z, dtype="float64", path=path).rounded
        assert _bits(got, "float64") == _bits(want, "float64"), path
