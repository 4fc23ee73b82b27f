"""The certified fast path (:mod:`oracles._fast`, :mod:`oracles._dd`): same bits as the Ziv path, and the
assumptions its bound rests on, measured.

Default tier: per family x dtype, 10^4 loss values (random points over the whole float range, points a hair
from rounding midpoints and from powers of two) and 2000 gradient values, each compared bit for bit, value
and status, with the Ziv path forced on the same points; sums and means, also over batches with limit,
nan and -inf examples mixed in; numpy's exp/log1p/log measured on 10^5 points each. ``-m slow``: every
fast-path acceptance among 10^6 loss and 10^5 gradient points per family x dtype checked against the Ziv
path, and 10^6 points per numpy function.
"""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
import pytest

import oracles
from oracles import _dd, _fast, _kernels
from oracles._api import _evaluate
from oracles._formats import FORMATS
from oracles._rounding import round_mpf

from ..crosscheck import points as P

DTYPES = P.DTYPES
FAMILIES = P.FAMILIES
SLOW_POINTS = int(os.environ.get("LOSSFUZZ_FAST_POINTS", 1_000_000))


def _key(family: str) -> str:
    return "probs" if family == "binary_ce" else "logits"


def _bits(values: np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    return np.where(np.isnan(a), np.nan, a).view(np.uint64)  # one nan; -0.0 and +0.0 differ


def _assert_same(family, dtype, what, x, z, reduction="none") -> dict:
    """Fast (auto) and Ziv (forced) evaluations agree bit for bit in rounded value and in status."""
    kw = {_key(family): x, "labels": z, "dtype": dtype, "what": what, "reduction": reduction}
    fast = _evaluate(family, **kw)
    ziv = _evaluate(family, **kw, path="ziv")
    assert ziv.path_counts["fast"] == 0
    differ = (_bits(fast.rounded) != _bits(ziv.rounded)) | (fast.status != ziv.status)
    if differ.any():
        where = np.argwhere(differ)[0] if differ.ndim else ()
        where = tuple(int(i) for i in where)
        row = where[: x.ndim - 1] if family in ("softmax_ce", "sparse_softmax_ce") else where
        raise AssertionError(
            f"{int(differ.sum())} {family} {what} {dtype} values differ; first at {where}: inputs"
            f" {np.asarray(x[row]).tolist()} labels {np.asarray(z[row]).tolist()}: fast"
            f" {float(fast.rounded[where])!r} ({fast.status[where]}) vs Ziv {float(ziv.rounded[where])!r}"
            f" ({ziv.status[where]})"
        )
    return fast.path_counts


def _binade_edges(family: str, dtype: str, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Points whose loss is a hair above a power of two (``|x| * w = 2**k`` plus ``log1p(exp(-|x|))``) and
    whose gradient is a hair below one (``1 - z = 2**-j`` minus ``sigmoid(-x)``), and for the other
    families inputs that put ``p``, ``1 - p`` or the logit gap at powers of two."""
    fi = P.info(dtype)
    rng = np.random.default_rng(seed)
    j = rng.integers(1, min(fi.p, 20), n)
    k = rng.integers(4, max(5, min(fi.emax - 1, 60)), n)
    if family == "sigmoid_ce":
        x = np.ldexp(1.0, k) * np.where(rng.random(n) < 0.5, 1.0, -1.0)
        z = np.where(x > 0, 1.0 - np.ldexp(1.0, -j), np.ldexp(1.0, -j))
        # |x| * 3/4 a midpoint of the format (|x| has p bits, odd), plus log1p(exp(-|x|)): with |x| in
        # [2**6, 2**6 * 4/3) the term sits 2**-100 to 2**-130 relative above the midpoint, inside the
        # double-double error for float64, far below it for the others
        m = 2 * rng.integers(1 << (fi.p - 2), (1 << (fi.p + 1)) // 6, n) + 1  # odd, p bits, 3m has p + 1
        xm = np.ldexp(m.astype(np.float64), 6 - (fi.p - 1)) * np.where(rng.random(n) < 0.5, 1.0, -1.0)
        zm = np.where(xm > 0, 0.25, 0.75)
        return [(fi.cast(x), fi.cast(z)), (fi.cast(xm), fi.cast(zm))]
    if family == "binary_ce":
        p = np.where(rng.random(n) < 0.5, np.ldexp(1.0, -j), 1.0 - np.ldexp(1.0, -j))
        z = np.where(rng.random(n) < 0.5, rng.integers(0, 5, n) / 4.0, np.ldexp(1.0, -j))
        return [(fi.cast(p), fi.cast(z))]
    x = np.stack([np.ldexp(1.0, k), np.zeros(n), -np.ldexp(1.0, k)], axis=1)
    if family == "softmax_ce":
        z = np.stack([np.zeros(n), np.ldexp(1.0, -j), rng.integers(0, 5, n) / 4.0], axis=1)
        return [(fi.cast(x), fi.cast(z))]
    return [(fi.cast(x), rng.integers(0, 3, n))]


def _blocks(family: str, dtype: str, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` points in all: 60% over the whole float range, 20% a hair from midpoints, 20% binade edges."""
    random = P.points(family, dtype, n - 2 * (n // 5), seed=seed)
    hard = P.structured(family, dtype, n // 5, seed=seed + 1)
    return random + hard + _binade_edges(family, dtype, n // 5, seed + 2)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_fast_path_gives_the_same_bits_and_statuses_as_the_ziv_path(family, dtype):
    seed = P.seed_for("fast", family, dtype)
    fast = 0
    for x, z in _blocks(family, dtype, 10_000, seed):
        fast += _assert_same(family, dtype, "loss", x, z)["fast"]
    for x, z in _blocks(family, dtype, 2_000, seed + 7):
        _assert_same(family, dtype, "gradient", x, z)
    assert fast > 2_000  # the fast path did decide a good share (the comparison is not vacuous)


def _subnormal_results(family: str, dtype: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points whose exact loss (and gradient) is a subnormal of ``dtype``, just above ``2**emin``, or
    rounds to zero: ``exp(-t)`` for ``t`` from ``-log(2**emin) - 2`` to 40 past ``-log(smallest subnormal)``."""
    fi = P.info(dtype)
    rng = np.random.default_rng(seed)
    past = 0 if family == "binary_ce" else 40  # a probability below the smallest subnormal would be 0
    t = rng.uniform(-(fi.emin + 1) * np.log(2), -(fi.emin - fi.p + 1) * np.log(2) + past, n)
    if family == "sigmoid_ce":  # label 1 and logit t: log1p(exp(-t)); label 0 and logit -t likewise
        sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        return fi.cast(t * sign), fi.cast((sign > 0).astype(np.float64))
    if family == "binary_ce":  # label 0 and a tiny probability p: -log1p(-p) = p + ...
        return fi.cast(np.exp(-t)), fi.cast(np.zeros(n))
    x = fi.cast(np.stack([t / 2, -t / 2], axis=1))  # confident-correct rows: log1p(exp(-t))
    return x, (fi.cast(np.tile([1.0, 0.0], (n, 1))) if family == "softmax_ce" else np.zeros(n, dtype=np.int64))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("family", FAMILIES)
def test_fast_path_decides_subnormal_results_with_the_ziv_paths_bits(family, dtype):
    x, z = _subnormal_results(family, dtype, 3_000, P.seed_for("fast-subnormal", family, dtype))
    decided = _assert_same(family, dtype, "loss", x, z)["fast"]
    _assert_same(family, dtype, "gradient", x, z)
    assert decided > 1_000  # the subnormal acceptance is exercised, not just refused
    # and the errors measured from the fast estimates are the Ziv path's (one subnormal quantum as ULP)
    kw = {_key(family): x, "labels": z, "dtype": dtype}
    fast, ziv = _evaluate(family, **kw), _evaluate(family, **kw, path="ziv")
    r = np.asarray(fast.rounded, dtype=np.float64)
    for computed in (r, r * 3, np.zeros_like(r)):  # correct, 3 times too big, flushed to zero
        computed = computed.astype(fast.rounded.dtype)
        o1, u1, b1 = oracles.measure(computed, fast, dtype)
        o2, u2, b2 = oracles.measure(computed, ziv, dtype)
        assert (o1 == o2).all() and np.array_equal(b1, b2, equal_nan=True)
        finite = ~np.isnan(u2)
        assert np.allclose(u1[finite], u2[finite], rtol=1e-9, atol=2.0**-16)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("family", ["sigmoid_ce", "softmax_ce", "sparse_softmax_ce"])
def test_losses_far_below_the_smallest_subnormal_round_to_plus_zero_on_the_fast_path(family, dtype):
    """Confident-correct examples whose loss ``exp(-t)`` underflows even float64 (``t`` up to 1e30): the
    family proves the loss positive, so the fast path decides +0, with the Ziv path's bits."""
    fi = P.info(dtype)
    rng = np.random.default_rng(P.seed_for("fast-zero", family, dtype))
    top = 6e4 if dtype == "float16" else 1e30  # float16's largest finite value is 65504
    t = fi.cast(np.exp(rng.uniform(np.log(120.0), np.log(top), 2_000))).astype(np.float64)
    if family == "sigmoid_ce":
        sign = np.where(rng.random(t.size) < 0.5, 1.0, -1.0)
        x, z = fi.cast(t * sign), fi.cast((sign > 0).astype(np.float64))
    else:
        x = fi.cast(np.stack([t, np.zeros_like(t)], axis=1))
        z = fi.cast(np.tile([1.0, 0.0], (t.size, 1))) if family == "softmax_ce" else np.zeros(t.size, dtype=np.int64)
    counts = _assert_same(family, dtype, "loss", x, z)
    assert counts["fast"] > 1_900
    kw = {_key(family): x, "labels": z, "dtype": dtype}
    fast, ziv = _evaluate(family, **kw), _evaluate(family, **kw, path="ziv")
    smallest = fi.np_dtype.type(np.ldexp(1.0, fi.emin - fi.p + 1))
    for computed in (np.zeros(fast.rounded.shape), np.full(fast.rounded.shape, smallest)):  # right; 1 quantum off
        computed = computed.astype(fast.rounded.dtype)
        o1, u1, b1 = oracles.measure(computed, fast, dtype)
        o2, u2, b2 = oracles.measure(computed, ziv, dtype)
        assert (o1 == o2).all() and np.array_equal(b1, b2) and np.allclose(u1, u2, rtol=1e-9, atol=2.0**-16)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_fast_path_agrees_with_ziv_on_sum_and_mean_reductions(family, dtype):
    rng = np.random.default_rng(P.seed_for("fast-reduced", family, dtype))
    fi = P.info(dtype)
    decided = 0
    for i in range(12):
        n = int(rng.integers(1, 40))
        if family in ("sigmoid_ce", "binary_ce"):
            x = fi.cast(rng.random(n) if family == "binary_ce" else rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4))
            z = fi.cast(rng.random(n))
        else:
            x = fi.cast(rng.standard_normal((n, 5)) * 10)
            z = fi.cast(rng.random((n, 5))) if family == "softmax_ce" else rng.integers(0, 5, n)
        for reduction in ("sum", "mean"):
            decided += _assert_same(family, dtype, "loss", x, z, reduction)["fast"]
        _assert_same(family, dtype, "gradient", x, z, "mean")
    assert decided > 12


def _special_examples(family: str, kind: str, k: int) -> tuple[list, list]:
    """Examples the family marks ineligible, whose loss the Ziv path has in closed form (``zero``: exactly
    0, ``inf``: +inf, ``nan``) or not (``open``: a softmax row with a -inf logit under a zero label)."""
    inf, nan = np.inf, np.nan
    if family == "sigmoid_ce":
        return {"zero": ([inf, -inf], [1.0, 0.0]), "inf": ([inf], [0.5]), "nan": ([nan], [0.5]), "open": ([], [])}[kind]
    if family == "binary_ce":
        return {"zero": ([0.0, 1.0], [0.0, 1.0]), "inf": ([0.0], [0.5]), "nan": ([nan], [0.5]), "open": ([], [])}[kind]
    row = lambda *v, pad=0.0: list(v) + [pad] * (k - len(v))  # noqa: E731
    if family == "softmax_ce":
        return {"zero": ([row(inf, 1.0), row(3.0, pad=-inf)], [row(1.0, 0.0), row(0.5, 0.0)]),
                "inf": ([row(-inf, 2.0)], [row(0.25, 0.5)]), "nan": ([row(nan, 1.0)], [row(0.5, 0.5)]),
                "open": ([row(-inf, 2.0, 1.0)], [row(0.0, 0.5, 0.5)])}[kind]
    return {"zero": ([row(inf, 1.0), row(3.0, pad=-inf)], [0, 0]), "inf": ([row(-inf, 2.0)], [0]),
            "nan": ([row(nan, 1.0)], [1]), "open": ([row(-inf, 2.0, 1.0)], [1])}[kind]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_fast_path_agrees_with_ziv_on_reductions_whose_examples_include_non_finite_ones(family, dtype):
    """Sums and means over batches mixing random examples with limit examples (loss 0 or +inf at infinite
    inputs), nan examples and ineligible examples without a closed form: the fast path decides the batches
    whose extra terms are exact zeros, and gives the Ziv path's nan and +inf; every value and status is
    the Ziv path's."""
    rng = np.random.default_rng(P.seed_for("fast-reduced-special", family, dtype))
    fi = P.info(dtype)
    k = 4
    decided_with_limits = 0
    for i in range(16):
        n = int(rng.integers(2, 20))
        if family in ("sigmoid_ce", "binary_ce"):
            x = list(rng.random(n) if family == "binary_ce" else rng.standard_normal(n) * 10.0)
            z = list(rng.random(n))
        else:
            x = [list(r) for r in rng.standard_normal((n, k)) * 10]
            z = [list(r) for r in rng.random((n, k))] if family == "softmax_ce" else list(rng.integers(0, k, n))
        kinds = [["zero"], ["zero", "inf"], ["zero", "nan", "inf"], ["zero", "open"]][i % 4]
        for kind in kinds:
            sx, sz = _special_examples(family, kind, k)
            for ex, ez in zip(sx, sz):
                at = int(rng.integers(0, len(x) + 1))
                x.insert(at, ex)
                z.insert(at, ez)
        xa = fi.cast(np.array(x, dtype=np.float64))
        za = np.array(z) if family == "sparse_softmax_ce" else fi.cast(np.array(z, dtype=np.float64))
        for reduction in ("sum", "mean"):
            counts = _assert_same(family, dtype, "loss", xa, za, reduction)
            if kinds == ["zero"]:
                decided_with_limits += counts["fast"]
    assert decided_with_limits >= 6  # the zero limit terms did not send these batches to the Ziv path


def test_reduced_estimate_adds_closed_form_terms_inside_its_bound():
    """A closed-form rational term joins the fast sum (float64 and double-double) inside the stated bound;
    an ineligible term without one, or no eligible term, gives no estimate."""
    from fractions import Fraction

    fam = oracles.get_family("sigmoid_ce")
    x = np.array([1.5, np.inf, -3.25, np.inf, 0.75])
    z = np.array([0.25, 0.5, 0.125, 0.5, 1.0])
    extra = {1: Fraction(3, 7), 3: Fraction(10**20 + 1, 3)}
    with mpmath.workprec(300):
        exact = sum(mpmath.mpf(v) for v in oracles.exact("sigmoid_ce", logits=x[[0, 2, 4]], labels=z[[0, 2, 4]], dtype="float64"))
        exact += sum(mpmath.mpf(f.numerator) / f.denominator for f in extra.values())
        for dtype in ("float32", "float64"):
            for reduction, divisor in (("sum", 1), ("mean", 5)):
                made = _fast.reduced_estimate(fam, x, z, reduction, FORMATS[dtype], extra.get)
                value = mpmath.mpf(float(made.value[0])) + (mpmath.mpf(float(made.low[0])) if made.low is not None else 0)
                error = abs(value - exact / divisor)
                assert error <= made.delta[0]
                assert error > 0 or dtype == "float64"  # float64 sums of these terms are not exact
    assert _fast.reduced_estimate(fam, x, z, "sum", FORMATS["float32"], lambda i: None) is None
    assert _fast.reduced_estimate(fam, x, z, "sum", FORMATS["float32"], None) is None
    only_limits = np.array([np.inf, -np.inf])
    assert _fast.reduced_estimate(fam, only_limits, np.array([1.0, 0.0]), "sum", FORMATS["float32"], lambda i: Fraction(0)) is None
    assert _fast.reduced_estimate(fam, x, z, "sum", FORMATS["float32"], lambda i: math.nan) != _fast.reduced_estimate(fam, x, z, "sum", FORMATS["float32"], lambda i: math.nan)  # nan
    assert _fast.reduced_estimate(fam, x, z, "sum", FORMATS["float32"], lambda i: math.inf) == math.inf


def _assert_accepted_same(family, dtype, what, x, z) -> int:
    """Every value the fast path accepted equals, bit for bit and in status, the Ziv path's value at the same
    example; returns how many examples that covered. The values the fast path left undecided were settled
    by the Ziv path itself (the same code), so they are not computed a second time."""
    kw = {_key(family): x, "labels": z, "dtype": dtype, "what": what}
    fast = _evaluate(family, **kw)
    rows = family in ("softmax_ce", "sparse_softmax_ce")
    per_example = fast.fast[..., 0] if (rows and what == "gradient") else fast.fast  # a row is decided whole
    picked = np.flatnonzero(per_example.reshape(-1))
    if picked.size == 0:
        return 0
    xs, zs = x[picked], z[picked]
    ziv = _evaluate(family, **{**kw, _key(family): xs, "labels": zs}, path="ziv")
    got = fast.rounded[picked]
    status = fast.status[picked]
    differ = (_bits(got) != _bits(ziv.rounded)) | (status != ziv.status)
    if differ.any():
        where = tuple(int(i) for i in np.argwhere(differ)[0])
        raise AssertionError(
            f"{int(differ.sum())} accepted {family} {what} {dtype} values differ; first at example"
            f" {int(picked[where[0]])}: inputs {np.asarray(xs[where[0]]).tolist()} labels {np.asarray(zs[where[0]]).tolist()}:"
            f" fast {float(got[where])!r} ({status[where]}) vs Ziv {float(ziv.rounded[where])!r} ({ziv.status[where]})"
        )
    return int(picked.size)


@pytest.mark.slow
@pytest.mark.timeout(12 * 3600)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_fast_path_acceptances_are_the_ziv_paths_bits_at_a_million_points(family, dtype):
    """``LOSSFUZZ_FAST_POINTS`` (default 10^6) loss points and a tenth as many gradient points per family x
    dtype, 60% over the whole float range, 20% a hair from rounding midpoints, 20% at binade edges: every
    value the fast path accepts is the Ziv path's, bit for bit. Cost: the Ziv path on the accepted values
    (sigmoid_ce float32: 396 s for the 1.1 * 10^6 points on a loaded 2-core machine; README), so a few
    hours for all sixteen on one core; pytest-xdist (``-n``), where installed, spreads them over cores."""
    seed = P.seed_for("fast-slow", family, dtype)
    step = 20_000
    checked = 0
    for what, total in (("loss", SLOW_POINTS), ("gradient", max(1, SLOW_POINTS // 10))):
        for start in range(0, total, step):
            for x, z in _blocks(family, dtype, min(step, total - start), seed + start + (0 if what == "loss" else 7)):
                checked += _assert_accepted_same(family, dtype, what, x, z)
    assert checked > SLOW_POINTS // 4  # the fast path accepted a good share: the comparison is not vacuous


# ---------------------------------------------------------------------------------------------------------
# The decision itself
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_rounding_of_float64_values_is_a_single_correct_rounding_in_numpy_and_in_the_compiled_loop(dtype):
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(3)
    # values between format numbers, on midpoints, and a float64 step either side of midpoints; normal
    # ones, and subnormal ones (integer multiples of the smallest subnormal, one quantum for the range)
    normal = np.ldexp(rng.integers(1 << (fmt.precision - 1), 1 << fmt.precision, 4000).astype(np.float64),
                      rng.integers(fmt.emin, fmt.emax - fmt.precision, 4000))
    subnormal = np.ldexp(rng.integers(1, 1 << (fmt.precision - 1), 2000).astype(np.float64), fmt.quantum_min)
    base = np.concatenate([normal, subnormal])
    quantum = np.ldexp(1.0, np.maximum(np.frexp(base)[1] - 1, fmt.emin) - fmt.precision + 1)
    mid = base + quantum / 2
    w = np.concatenate([mid, np.nextafter(mid, 0), np.nextafter(mid, np.inf), base + quantum * rng.random(base.size)])
    w = np.concatenate([w, -w])
    rounded, _e = _fast.round_to_format(w, fmt)
    expected = np.array([round_mpf(mpmath.mpf(float(v))._mpf_, fmt) for v in w])
    assert np.array_equal(rounded, expected)
    # the compiled loop's own rounding (what certify carries out), against mpmath directly too
    compiled = np.array([_kernels._round_to_format(float(v), fmt.precision, fmt.emin)[0] for v in w])
    assert np.array_equal(compiled, expected)


def test_certify_rejects_enclosures_across_a_midpoint_a_binade_edge_or_out_of_range():
    fmt = FORMATS["float32"]
    one_plus = 1 + 2.0**-23
    mid = 1 + 2.0**-24  # midpoint between 1 and the next float32
    cases = {
        "inside": (1.0 + 2.0**-30, 2.0**-45, True),
        "inside, but the bound above 2**-40 relative": (1.0 + 2.0**-25, 2.0**-39, False),
        "across a midpoint": (mid, 2.0**-45, False),
        "just below a midpoint, bound reaching it": (mid - 2.0**-45, 2.0**-44, False),
        "across 2**0": (1.0, 2.0**-45, False),
        "subnormal result, inside": (2.0**-130 + 2.0**-152, 2.0**-175, True),
        "subnormal result, across a subnormal midpoint": (2.0**-130 + 2.0**-150, 2.0**-175, False),
        "subnormal result, bound above 2**-40 relative": (2.0**-130, 2.0**-160, False),
        "across 2**emin, one quantum on both sides": (2.0**-126 + 2.0**-170, 2.0**-169, True),
        "rounds to zero": (2.0**-152, 2.0**-195, True),
        "rounds to minus zero": (-(2.0**-152), 2.0**-195, True),
        "above the overflow threshold": (3.5e38, 1e20, False),
        "negative, inside": (-one_plus, 2.0**-45, True),
    }
    value = np.array([c[0] for c in cases.values()])
    delta = np.array([c[1] for c in cases.values()])
    rounded, accepted = _fast.certify(_fast.Estimate(value, delta, np.ones(len(cases), bool)), fmt)
    assert dict(zip(cases, accepted.tolist())) == {name: c[2] for name, c in cases.items()}
    assert rounded[0] == 1.0 and rounded[-1] == -one_plus
    assert rounded[list(cases).index("subnormal result, inside")] == 2.0**-130
    assert rounded[list(cases).index("across 2**emin, one quantum on both sides")] == 2.0**-126
    zeros = rounded[[list(cases).index("rounds to zero"), list(cases).index("rounds to minus zero")]]
    assert zeros.tolist() == [0.0, 0.0] and np.signbit(zeros).tolist() == [False, True]


def test_certify_rounds_a_proven_positive_value_below_half_the_smallest_subnormal_to_plus_zero():
    fmt = FORMATS["float32"]  # smallest subnormal 2**-149
    value = np.array([0.0, 2.0**-1010, 2.0**-151, 2.0**-150, 0.0])
    delta = np.array([2.0**-1000, 0.0, 2.0**-195, 0.0, 2.0**-1000])
    eligible = np.array([True, True, True, True, False])
    for positive, expected in ((True, [True, True, True, False, False]), (False, [False, False, True, False, False])):
        rounded, accepted = _fast.certify(_fast.Estimate(value, delta, eligible, positive=positive), fmt)
        assert accepted.tolist() == expected  # 2**-150 is the tie: refused (the Ziv path decides it)
        assert np.all(rounded[accepted] == 0.0) and not np.signbit(rounded[accepted]).any()


def test_certify_decides_values_a_proven_bound_keeps_inside_a_power_of_two():
    fmt = FORMATS["float32"]
    inf = np.inf
    cases = {  # value, delta, above, below: accepted?, rounded
        "just below 1, proven below 1": (1.0, 2.0**-52, -inf, 1.0, True, 1.0),
        "just below 1, no bound": (1.0, 2.0**-52, -inf, inf, False, None),
        "just above -1, proven above -1": (-1.0, 2.0**-52, -1.0, inf, True, -1.0),
        "just above 1/2, proven above 1/2": (0.5, 2.0**-53, 0.5, inf, True, 0.5),
        "below 1 but the enclosure reaches the midpoint below": (1 - 2.0**-25, 2.0**-50, -inf, 1.0, False, None),
        "proven negative, within half the smallest subnormal of 0": (0.0, 0.0, -inf, 0.0, True, -0.0),
        "proven positive, within half the smallest subnormal of 0": (0.0, 0.0, 0.0, inf, True, 0.0),
        "bounds that exclude the whole enclosure": (1.0, 2.0**-52, 2.0, inf, False, None),
    }
    column = lambda k: np.array([c[k] for c in cases.values()])  # noqa: E731
    estimate = _fast.Estimate(column(0), column(1), np.ones(len(cases), bool), above=column(2), below=column(3))
    rounded, accepted = _fast.certify(estimate, fmt)
    assert dict(zip(cases, accepted.tolist())) == {name: c[4] for name, c in cases.items()}
    for i, (name, c) in enumerate(cases.items()):
        if c[4]:
            assert rounded[i] == c[5] and np.signbit(rounded[i]) == np.signbit(c[5]), name
    # the approximation kept is moved inside the bounds, so the exact value's binade is read from it
    approx = _fast.approximation(estimate)
    assert approx[0] == np.nextafter(1.0, 0) and approx[2] == np.nextafter(-1.0, 0) and approx[3] == np.nextafter(0.5, 1)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("family", ["sigmoid_ce", "softmax_ce", "binary_ce"])
def test_every_bfloat16_hard_label_gradient_takes_the_fast_path_with_the_ziv_paths_bits_and_errors(family):
    # every bfloat16 pattern (rows [x, 0] for softmax; the probabilities for binary_ce) with labels 0 and 1:
    # nearly all decided on the fast path (the proven bounds: gradients just inside 1, -1, 1/2 and 0), with
    # the Ziv path's bits, and the ULP errors of values one ULP off measured from the estimate as from Ziv
    fmt = FORMATS["bfloat16"]
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(fmt.numpy_dtype)
    with np.errstate(invalid="ignore"):  # widening a bfloat16 nan
        finite = np.isfinite(x.astype(np.float64))
    for label in (0, 1):
        if family == "sigmoid_ce":
            inputs, labels, kept = x, np.full(x.shape, label, fmt.numpy_dtype), finite
        elif family == "softmax_ce":
            inputs = np.stack([x, np.zeros_like(x)], axis=1)
            labels = np.tile(np.array([1 - label, label], fmt.numpy_dtype), (x.size, 1))
            kept = np.repeat(finite, 2)
        else:
            with np.errstate(invalid="ignore"):
                inputs = x[(x.astype(np.float64) >= 0) & (x.astype(np.float64) <= 1)]
            labels, kept = np.full(inputs.shape, label, fmt.numpy_dtype), np.ones(inputs.size, bool)
        kw = {_key(family): inputs, "labels": labels, "dtype": "bfloat16", "what": "gradient"}
        fast = _evaluate(family, **kw)
        ziv = _evaluate(family, **kw, path="ziv")
        assert (_bits(fast.rounded) == _bits(ziv.rounded)).all() and (fast.status == ziv.status).all()
        decided = np.ravel(fast.fast)[kept].mean()
        # binary_ce's gradient -1/p at p = 2**-k is exactly -2**k, a power of two: the Ziv path's (1% of these)
        assert decided > (0.985 if family == "binary_ce" else 0.995), decided
        rounded = np.asarray(fast.rounded, dtype=np.float32)
        for off in (np.nextafter(rounded, np.float32(np.inf)), np.nextafter(rounded, np.float32(-np.inf))):
            candidate = off.astype(fmt.numpy_dtype)
            _o, from_fast, _b = oracles.measure(candidate, fast, "bfloat16")
            _o, from_ziv, _b = oracles.measure(candidate, ziv, "bfloat16")
            both = ~np.isnan(from_ziv)
            assert np.array_equal(np.isnan(from_fast), np.isnan(from_ziv))
            assert np.allclose(from_fast[both], from_ziv[both], rtol=2.0**-14, atol=2.0**-14)


def test_certify_float64_checks_the_double_double_tail_against_the_half_gaps():
    fmt = FORMATS["float64"]
    half_ulp = 2.0**-53  # half the gap above 1.5
    hi = np.full(4, 1.5)
    lo = np.array([half_ulp * 0.5, half_ulp, half_ulp * 0.999, -half_ulp * 0.5])
    delta = np.array([2.0**-80, 0.0, half_ulp * 0.01, 2.0**-80])
    rounded, accepted = _fast.certify(_fast.Estimate(hi, delta, np.ones(4, bool), lo), fmt)
    assert accepted.tolist() == [True, False, False, True]
    assert rounded[0] == 1.5


# ---------------------------------------------------------------------------------------------------------
# The assumptions, measured
# ---------------------------------------------------------------------------------------------------------


def _numpy_points(name: str, n: int, seed: int) -> np.ndarray:
    """Arguments over the ranges the fast path uses, log-uniform and uniform mixed."""
    rng = np.random.default_rng(seed)
    half = n // 2
    if name == "exp":  # normal results only (the bound's floor covers subnormal ones)
        return np.concatenate([-rng.random(half) * 708, np.ldexp(rng.random(n - half), -rng.integers(0, 1000, n - half)) * -1])
    if name == "log1p":  # t in (-1/2, 1e3], tiny t too
        return np.concatenate([rng.random(half) * 1.5 - 0.5, np.ldexp(rng.random(n - half) + 1, -rng.integers(-9, 1020, n - half))])
    return np.concatenate([rng.random(half), np.ldexp(rng.random(n - half) + 1, -rng.integers(1, 1022, n - half))])  # log, (0, 1]


def _numpy_ulp_errors(name: str, t: np.ndarray) -> np.ndarray:
    """``|numpy(t) - f(t)| / ulp(f(t))`` in float64 units, ``f`` evaluated by mpmath at 120 bits."""
    got = getattr(np, name)(t)
    f = getattr(mpmath, name)
    out = np.empty(t.size)
    with mpmath.workprec(120):
        for i, (ti, gi) in enumerate(zip(t.tolist(), got.tolist())):
            exact = f(mpmath.mpf(ti))
            e = max(int(mpmath.floor(mpmath.log(abs(exact), 2))), -1022) - 52 if exact else -1074
            out[i] = float(abs(mpmath.mpf(gi) - exact) * mpmath.mpf(2) ** -e)
    return out


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["exp", "log1p", "log"])
def test_numpy_functions_are_within_the_assumed_ulps_on_a_hundred_thousand_points(name):
    errors = _numpy_ulp_errors(name, _numpy_points(name, 100_000, seed=11))
    assert errors.max() <= _fast.NUMPY_ULPS, f"numpy.{name} is off by {errors.max():.3g} ulp > {_fast.NUMPY_ULPS}"


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
@pytest.mark.parametrize("name", ["exp", "log1p", "log"])
def test_numpy_functions_are_within_the_assumed_ulps_on_a_million_points(name):
    errors = _numpy_ulp_errors(name, _numpy_points(name, 1_000_000, seed=12))
    assert errors.max() <= _fast.NUMPY_ULPS, f"numpy.{name} is off by {errors.max():.3g} ulp > {_fast.NUMPY_ULPS}"


def test_double_double_functions_stay_inside_their_stated_bounds():
    rng = np.random.default_rng(5)
    x = np.concatenate([-rng.random(3000) * 708, rng.standard_normal(1000) * 1e-3, rng.random(500) * 0.7])
    hi, lo = _dd.exp(x, np.zeros_like(x))
    t = np.concatenate([rng.random(1500), rng.random(1000) * 2**-7, -rng.random(1000) * 0.5, rng.random(500) * 1e3])
    th, tl, tb = _dd.log1p(t, np.zeros_like(t))
    p = np.concatenate([rng.random(1500) * 0.5, np.ldexp(1.0, -rng.integers(1, 1074, 500))])
    ph, pl, pb = _dd.log(p)
    with mpmath.workprec(200):
        for xi, h, l in zip(x.tolist(), hi.tolist(), lo.tolist()):
            exact = mpmath.exp(xi)
            # relative, barring underflow of the tail (absolute, far below the fast path's floor)
            assert abs(mpmath.mpf(h) + l - exact) <= _dd.EXP_ERROR * exact + 2.0**-1060, xi
        for ti, h, l, b in zip(t.tolist(), th.tolist(), tl.tolist(), tb.tolist()):
            assert abs(mpmath.mpf(h) + l - mpmath.log1p(ti)) <= b, ti
        for pi, h, l, b in zip(p.tolist(), ph.tolist(), pl.tolist(), pb.tolist()):
            assert abs(mpmath.mpf(h) + l - mpmath.log(pi)) <= b, pi


# ---------------------------------------------------------------------------------------------------------
# Statistics, exact digits, the public functions
# ---------------------------------------------------------------------------------------------------------


def test_evaluate_counts_the_values_each_path_decided():
    truth = oracles.evaluate("sigmoid_ce", logits=np.float32([1.0, -3.5, np.inf, np.nan]), labels=np.float32([0.5, 0.25, 1, 0]),
                             dtype="float32")
    assert truth.path_counts == {"fast": 2, "ziv": 2}
    assert truth.fast.tolist() == [True, True, False, False]
    assert truth.status.tolist() == ["converged", "converged", "exact", "nan"]


def test_a_single_float64_example_goes_to_the_ziv_path_first_unless_it_is_a_wide_row():
    # one value or a narrow row: the Ziv path settles it faster than double-double's fixed cost; a wide row
    # costs the Ziv path one mpmath exp per class, so the fast path takes it (measured in oracles._api)
    rng = np.random.default_rng(3)
    one = oracles.evaluate("sigmoid_ce", logits=np.float64([2.5]), labels=np.float64([0.25]), dtype="float64")
    narrow = oracles.evaluate("softmax_ce", logits=rng.standard_normal((1, 3)), labels=np.float64([[0.2, 0.3, 0.5]]),
                              dtype="float64")
    wide = oracles.evaluate("sparse_softmax_ce", logits=rng.standard_normal((1, 50)), labels=np.int64([7]),
                            dtype="float64")
    assert (one.path_counts, narrow.path_counts, wide.path_counts) == ({"fast": 0, "ziv": 1}, {"fast": 0, "ziv": 1},
                                                                       {"fast": 1, "ziv": 0})
    ziv = oracles._api._evaluate("sparse_softmax_ce", logits=wide.inputs, labels=wide.labels, dtype="float64", path="ziv")
    assert ziv.rounded.tobytes() == wide.rounded.tobytes()


def test_random_float32_inputs_almost_never_fall_back():
    rng = np.random.default_rng(9)
    x = rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[np.isfinite(x)]
    z = rng.random(x.size).astype(np.float32)
    truth = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32")
    assert truth.path_counts["ziv"] <= 1e-4 * x.size, truth.path_counts


def test_exact_value_of_a_fast_value_is_the_ziv_paths_twenty_digits():
    x, z = np.float32([1e4, -2.5, 0.75]), np.float32([0.9999, 0.5, 1.0])
    fast = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32")
    ziv = _evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32", path="ziv")
    assert fast.fast.all()
    for i in range(3):
        assert oracles.format_exact(fast.exact_value(i)) == oracles.format_exact(ziv.exact[i])
    # a gradient row of softmax_ce, and a mean gradient
    xs, zs = np.float32([[1, 2, 3], [0, -1, 4]]), np.float32([[0.5, 0.25, 0.25], [1, 0, 0]])
    for reduction in ("none", "mean"):
        g = oracles.evaluate("softmax_ce", logits=xs, labels=zs, dtype="float64", what="gradient", reduction=reduction)
        gz = _evaluate("softmax_ce", logits=xs, labels=zs, dtype="float64", what="gradient", reduction=reduction, path="ziv")
        assert g.fast.all()
        assert [oracles.format_exact(g.exact_value((1, k))) for k in range(3)] == [oracles.format_exact(v) for v in gz.exact[1]]


def test_the_fast_estimate_in_truth_exact_is_within_the_certified_enclosure():
    rng = np.random.default_rng(2)
    x, z = (rng.standard_normal(500) * 20).astype(np.float32), rng.random(500).astype(np.float32)
    fast = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32")
    ziv = _evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32", path="ziv")
    rel = np.array([float(abs(a - b) / abs(b)) for a, b in zip(fast.exact, ziv.exact)])
    assert rel.max() < 2.0**-45 and math.isfinite(rel.max())


@pytest.mark.parametrize(("family", "dtype"), [("sigmoid_ce", "float32"), ("sigmoid_ce", "float64"), ("softmax_ce", "float16"),
                                                ("binary_ce", "bfloat16")])
def test_measure_from_fast_estimates_matches_measure_from_ziv_exact_values(family, dtype):
    rng = np.random.default_rng(4)
    fi = P.info(dtype)
    if family == "softmax_ce":
        x, z, what = fi.cast(rng.standard_normal((300, 4)) * 5), fi.cast(rng.random((300, 4))), "gradient"
    else:
        x = fi.cast(rng.random(1000) if family == "binary_ce" else rng.standard_normal(1000) * 30)
        z, what = fi.cast(rng.random(1000)), "loss"
    kw = {_key(family): x, "labels": z, "dtype": dtype, "what": what}
    fast, ziv = _evaluate(family, **kw), _evaluate(family, **kw, path="ziv")
    assert fast.path_counts["fast"] > 0.9 * fast.fast.size
    r = np.asarray(fast.rounded, dtype=np.float64)
    noise = rng.random(r.shape)
    for computed in (r, r * (1 + 1e-3), np.where(noise < 0.1, np.nan, r), np.where(noise < 0.1, -np.inf, r * (1 - 2e-7))):
        computed = computed.astype(fast.rounded.dtype)
        o1, u1, b1 = oracles.measure(computed, fast, dtype)
        o2, u2, b2 = oracles.measure(computed, ziv, dtype)
        assert (o1 == o2).all()
        assert np.array_equal(np.isnan(u1), np.isnan(u2)) and np.array_equal(b1, b2, equal_nan=True)
        finite = ~np.isnan(u2)
        assert np.allclose(u1[finite], u2[finite], rtol=1e-12, atol=2.0**-16)


def test_large_batches_stream_through_loss_with_the_same_values_and_errors():
    rng = np.random.default_rng(8)
    n = (1 << 18) + 12_345  # two chunks of oracles.loss's streaming
    x = (rng.standard_normal(n) * 40).astype(np.float32)
    x[[5, n - 3]] = [np.inf, np.nan]
    z = rng.random(n).astype(np.float32)
    streamed = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32")
    assert streamed.dtype == np.float32 and streamed.shape == (n,)
    whole = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32").rounded
    assert np.array_equal(_bits(streamed), _bits(whole))
    z[n - 7] = 1.5  # in the second chunk: the message names the index in the whole array
    with pytest.raises(ValueError, match=rf"labels\[{n - 7}\] = 1.5 is outside \[0, 1\]"):
        oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32")
    rows = 90_000  # 270 000 elements: streamed too
    xs, zs = x[: 3 * rows].reshape(rows, 3), rng.random((rows, 3)).astype(np.float32)
    g = oracles.gradient("softmax_ce", logits=xs, labels=zs, dtype="bfloat16")
    assert g.shape == (rows, 3)
    assert np.array_equal(_bits(g[:500]), _bits(oracles.evaluate("softmax_ce", logits=xs[:500], labels=zs[:500], dtype="bfloat16",
                                                                 what="gradient").rounded))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("what", ["loss", "gradient"])
def test_examples_with_a_nan_are_decided_in_one_pass_as_the_ziv_path_settles_them(family, what, monkeypatch):
    # a batch of ordinary examples with nan put in inputs and (float) labels: the record is the Ziv path's,
    # status, precision and exact value included, and measuring nan and non-nan candidate values against it
    # gives the value-by-value metric's outcomes, ULP errors and bits
    dtype = "float32"
    rng = np.random.default_rng(7)
    n, k = 64, 3
    if family in ("softmax_ce", "sparse_softmax_ce"):
        x = rng.normal(size=(n, k)).astype(np.float32)
        x[::3, 1] = np.nan
        z = rng.integers(0, k, n) if family == "sparse_softmax_ce" else np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
        if family == "softmax_ce":
            z[1::5, 0] = np.nan
    else:
        x = (rng.random(n) if family == "binary_ce" else rng.normal(size=n) * 4).astype(np.float32)
        z = rng.random(n).astype(np.float32)
        x[::3], z[1::5] = np.nan, np.nan
    kw = {_key(family): x, "labels": z, "dtype": dtype, "what": what}
    ziv = _evaluate(family, **kw, path="ziv")
    one_by_one = oracles._api._settle_example

    def no_nan_examples(fam, what_, fmt, xi, zi, divisor):
        assert not np.isnan(np.asarray(xi, dtype=np.float64)).any() and not np.isnan(np.asarray(zi, dtype=np.float64)).any()
        return one_by_one(fam, what_, fmt, xi, zi, divisor)

    monkeypatch.setattr(oracles._api, "_settle_example", no_nan_examples)  # none goes to the Ziv path
    fast = _evaluate(family, **kw)
    assert (fast.status == "nan").sum() >= n // 3  # the nan rule was exercised
    assert np.array_equal(_bits(fast.rounded), _bits(ziv.rounded))
    assert np.array_equal(fast.status, ziv.status)
    nan = fast.status == "nan"
    assert np.array_equal(fast.precision[nan], ziv.precision[nan])  # 0: a closed form
    assert all(mpmath.isnan(v) for v in np.ravel(fast.exact[nan]))
    candidate = np.where(rng.random(fast.rounded.shape) < 0.5, np.float32(np.nan), np.asarray(fast.rounded, np.float32))
    candidate = np.where(np.isnan(candidate) & ~nan, np.float32(1.0), candidate).astype(np.float32)
    candidate[nan & (rng.random(nan.shape) < 0.5)] = np.float32(2.5)  # a number where the exact value is nan
    got = oracles.measure(candidate, fast, dtype)
    reference = (oracles.classify(candidate, ziv, dtype), oracles.ulp_error(candidate, ziv, dtype),
                 oracles.bits_of_error(candidate, ziv, dtype))
    assert np.array_equal(got[0], reference[0])
    assert {"agree", "number_where_nan"} <= set(np.ravel(got[0])[np.ravel(nan)].tolist())
    for mine, theirs in zip(got[1:], reference[1:]):
        assert np.array_equal(np.isnan(mine), np.isnan(theirs)) and np.allclose(mine[~np.isnan(mine)], theirs[~np.isnan(theirs)])
