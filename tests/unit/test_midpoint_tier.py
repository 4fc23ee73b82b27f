"""The narrow formats' second fast tier (:func:`oracles._fast.certify_double_double`, module docstring of
:mod:`oracles._fast`, "Midpoints"): values the float64 tier leaves undecided because they lie at or within
``2**-50`` of a midpoint of the format, or a hair from a power of two, are decided from a double-double
estimate with the Ziv path's bits and the Ziv path's ULP errors."""

from __future__ import annotations

import numpy as np
import pytest

import oracles
from oracles import _fast
from oracles._api import _evaluate
from oracles._formats import FORMATS

from .test_fast_oracle import _assert_same

pytestmark = pytest.mark.timeout(600)


def _sweep_leftovers(family: str, dtype: str, what: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` (input, label) pairs of the format, with every label in [0, 1], that the float64 tier
    finds eligible but cannot decide: those a ``--labels all`` sweep hands to the second tier."""
    fam, fmt = oracles.get_family(family), FORMATS[dtype]
    rng = np.random.default_rng(seed)
    one = int(np.array(1.0, fmt.numpy_dtype).view(fmt.uint_dtype))
    patterns = rng.integers(0, 1 << 16, 400_000)
    if family == "binary_ce":  # probabilities: the patterns in [0, 1]
        patterns = rng.integers(0, one + 1, 400_000)
    x = patterns.astype(fmt.uint_dtype).view(fmt.numpy_dtype)
    z = rng.integers(0, one + 1, x.size).astype(fmt.uint_dtype).view(fmt.numpy_dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        x64, z64 = x.astype(np.float64), z.astype(np.float64)
    est = _fast.estimate(fam, what, x64, z64, fmt)
    _rounded, accepted = _fast.certify(est, fmt)
    left = np.flatnonzero(np.broadcast_to(est.eligible, accepted.shape) & ~accepted)
    left = rng.permutation(left)[:n]
    return x[left], z[left]


# (not binary_ce's losses: the float64 tier decides every one of its float16 sample, all but a few dozen in
# bfloat16; nor its float16 gradients, whose leftovers are exact rationals on a power of two: the Ziv path's)
@pytest.mark.parametrize(("family", "dtype", "what"), [
    ("sigmoid_ce", "float16", "loss"), ("sigmoid_ce", "float16", "gradient"), ("sigmoid_ce", "bfloat16", "loss"),
    ("sigmoid_ce", "bfloat16", "gradient"), ("binary_ce", "bfloat16", "gradient")])
def test_values_the_float64_tier_leaves_are_decided_fast_with_the_ziv_paths_bits_and_errors(family, dtype, what):
    x, z = _sweep_leftovers(family, dtype, what, 400, seed=len(family) + len(dtype))
    assert x.size >= 300, x.size  # the float64 tier leaves hundreds of such values in these samples
    _assert_same(family, dtype, what, x, z)
    kw = {"probs" if family == "binary_ce" else "logits": x, "labels": z, "dtype": dtype, "what": what}
    auto, ziv = _evaluate(family, **kw), _evaluate(family, **kw, path="ziv")
    decided = float(np.mean(auto.fast))
    # the second tier decides nearly all (before it, none: these are the first tier's leftovers); the rest
    # are exact rationals at a midpoint (binary_ce's gradient) or a hair from a power of two
    assert decided > (0.5 if (family, what) == ("binary_ce", "gradient") else 0.9), decided
    fmt = FORMATS[dtype]
    rounded = np.asarray(auto.rounded, dtype=np.float32)
    for off in (np.nextafter(rounded, np.float32(np.inf)), np.nextafter(rounded, np.float32(-np.inf))):
        candidate = off.astype(fmt.numpy_dtype)
        _o, from_fast, _b = oracles.measure(candidate, auto, dtype)
        _o, from_ziv, _b = oracles.measure(candidate, ziv, dtype)
        assert np.array_equal(np.isnan(from_fast), np.isnan(from_ziv))
        both = ~np.isnan(from_ziv)
        assert np.allclose(from_fast[both], from_ziv[both], rtol=2.0**-14, atol=2.0**-14)


def test_a_loss_a_vanishing_term_above_a_midpoint_rounds_up_on_the_fast_path():
    # float16: 31744 * (1 - 2**-7) = 31496 is the midpoint between 31488 and 31504, and the loss exceeds
    # it by log1p(exp(-31744)), which no double-double holds: sigmoid_ce's proven bound decides it
    x, z = np.array([31744.0, -72.5], np.float16), np.array([2.0**-7, 2.0**-24], np.float16)
    auto = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float16")
    assert auto.fast.all()
    assert float(auto.rounded[0]) == 31504.0
    _assert_same("sigmoid_ce", "float16", "loss", x, z)


def test_a_loss_a_hair_below_a_power_of_two_keeps_the_binade_below_as_its_approximation():
    # bfloat16: x = 2**73 and z = 2**-66: the loss is 2**73 - 2**7 (plus a vanishing term), inside the
    # binade below 2**73 and rounding to 2**73; z = 0: a vanishing term above 2**73
    fmt = FORMATS["bfloat16"]
    x = np.array([2.0**73, 2.0**73], fmt.numpy_dtype)
    z = np.array([2.0**-66, 0.0], fmt.numpy_dtype)
    auto = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="bfloat16")
    assert auto.fast.all()
    assert np.asarray(auto.rounded, np.float64).tolist() == [2.0**73, 2.0**73]
    assert auto.approx[0] < 2.0**73 <= auto.approx[1]  # each in its exact value's binade
    _assert_same("sigmoid_ce", "bfloat16", "loss", x, z)
    # a candidate one bfloat16 step below: its error in the binade below (2**65 a ULP: about 1 ULP) and
    # in 2**73's (2**66 a ULP: 0.5)
    below = np.array([2.0**73 - 2.0**65] * 2, fmt.numpy_dtype)  # one bfloat16 step below 2**73
    _o, ulp, _b = oracles.measure(below, auto, "bfloat16")
    _o, ulp_ziv, _b = oracles.measure(below, _evaluate("sigmoid_ce", logits=x, labels=z, dtype="bfloat16", path="ziv"),
                                      "bfloat16")
    assert np.allclose(ulp, ulp_ziv, rtol=2.0**-20)
    assert ulp[0] > 0.99 and ulp[1] == pytest.approx(0.5)


def _estimate(hi, lo, delta, above=None, below=None) -> _fast.Estimate:
    arr = lambda v: np.array(v, dtype=np.float64)  # noqa: E731
    return _fast.Estimate(arr(hi), arr(delta), np.ones(len(hi), bool), arr(lo),
                          above=None if above is None else arr(above), below=None if below is None else arr(below))


def test_certify_double_double_rounds_a_midpoint_to_the_side_its_tail_or_bound_proves():
    fmt = FORMATS["float16"]
    mid = 1.0 + 2.0**-11  # between 1 and 1 + 2**-10
    tiny = 2.0**-80
    rounded, ok, _hi, _lo = _fast.certify_double_double(
        _estimate([mid, mid, mid, mid, mid], [tiny, -tiny, tiny / 2**30, 0.0, 0.0], [tiny / 4, tiny / 4, tiny / 4, 2.0**-200, 2.0**-200],
                  above=[-np.inf, -np.inf, -np.inf, mid, -np.inf], below=[np.inf, np.inf, np.inf, np.inf, mid]), fmt)
    assert ok.tolist() == [True, True, False, True, True]  # the third: its tail inside its bound
    assert rounded[[0, 1, 3, 4]].tolist() == [1.0 + 2.0**-10, 1.0, 1.0 + 2.0**-10, 1.0]


def test_certify_double_double_rejects_a_power_of_two_it_cannot_place_and_a_tail_beyond_a_float64_gap():
    fmt = FORMATS["float16"]
    one = 1.0
    rounded, ok, hi, lo = _fast.certify_double_double(
        _estimate([one, one, one, 1.5], [0.0, -(2.0**-70), 2.0**-70, 2.0**-52], [2.0**-80] * 4), fmt)
    # 1 with the tail inside its bound: the exact value's binade is unknown; below 1 and above 1: decided,
    # rounding to 1, the one below kept as 1 - 2**-53 plus a tail (the binade below); a tail beyond the gap
    assert ok.tolist() == [False, True, True, False]
    assert rounded[1] == rounded[2] == 1.0
    assert hi[1] == np.nextafter(1.0, 0.0) and lo[1] + (hi[1] - 1.0) == -(2.0**-70)
    assert hi[2] == 1.0 and lo[2] == 2.0**-70
