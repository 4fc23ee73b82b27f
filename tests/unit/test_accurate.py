"""``accurate`` (harness.candidates.accurate) holds up: within 2 ULP of the oracle, with no non-finite mistake,
in every family and format, on random points over the whole range, on the known hard points, on dense
grids of every float16/bfloat16 input, and at the limit values; gradients within their stated bound.

Every comparison is against the oracle (``oracles.evaluate``, measured by ``harness.metrics.compare``), never
against another candidate."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import oracles
from harness.candidates import accurate, get_candidate
from harness.metrics import compare
from tests.crosscheck import points

DTYPES = ("float16", "bfloat16", "float32", "float64")
FAMILIES = ("sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce")
LOSS = {f: getattr(accurate, f) for f in FAMILIES}
GRAD = {f: getattr(accurate, f + "_grad") for f in FAMILIES}
ULP_BOUND = 2.0
OK = ("finite", "agree")  # outcomes without a non-finite mistake (oracles._ulp)


def _np_dtype(dtype: str):
    return oracles.resolve_format(dtype).numpy_dtype


def _input_kw(family: str, x):
    return {oracles.get_family(family).input_name: x}


def _measure(family: str, dtype: str, x, z, what: str = "loss"):
    """(outcome, ulp, truth) of ``accurate``'s loss or gradient at (x, z), against the oracle."""
    fn = LOSS[family] if what == "loss" else GRAD[family]
    got = fn(x, z)
    assert got.dtype == _np_dtype(dtype)
    truth = oracles.evaluate(family, **_input_kw(family, x), labels=z, dtype=dtype, what=what)
    assert got.shape == truth.rounded.shape
    cmp = compare(truth, got)
    return cmp.outcome, cmp.ulp, truth, got


def _assert_within(family, dtype, x, z, bound=ULP_BOUND):
    outcome, ulp, truth, got = _measure(family, dtype, x, z)
    wrong = ~np.isin(outcome, OK)
    assert not wrong.any(), f"non-finite mistakes: {outcome[wrong][:5]} at {np.asarray(x).reshape(outcome.size, -1)[wrong][:3]}"
    finite = outcome == "finite"
    worst = np.nanmax(ulp[finite]) if finite.any() else 0.0
    i = int(np.nanargmax(np.where(finite, ulp, -1))) if finite.any() else 0
    assert worst <= bound, f"{family} {dtype}: {worst:.3g} ULP at inputs {np.asarray(x).reshape(outcome.size, -1)[i]}, labels {np.asarray(z).reshape(outcome.size, -1)[i] if np.ndim(z) else z}"
    return worst


# -------------------------------------------------------------------------------------- the whole range


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_accurate_is_within_two_ulp_on_random_points_over_the_whole_range(family, dtype):
    # tests/crosscheck/points: log-uniform magnitudes over every binade (subnormals too), ±max, thresholds of
    # exp, ±inf and nan, soft/tiny/subnormal labels, ties, dominant logits, labels that do not sum to 1
    for seed in (1, 2):
        for x, z in points.points(family, dtype, 3000, seed=seed) + points.structured(family, dtype, 600, seed=seed):
            _assert_within(family, dtype, x, z)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_the_campaign_scores_accurate_within_two_ulp_with_no_non_finite_mistake(family, dtype):
    from harness.campaign import Settings, score_candidate  # noqa: F401  (the campaign's own scoring path)
    from harness.records import NON_FINITE_MISTAKES
    from harness.campaign import run_campaign

    result, _ = run_campaign(Settings(seed=7, examples=40, families=(family,), candidates=("accurate", "numpy_stable"),
                                      dtypes=(dtype,), speed_elements=0))
    score = result.score(family, "accurate", dtype)
    assert score.examples > 100
    assert sum(score.counts[k] for k in NON_FINITE_MISTAKES) == 0
    assert score.max_ulp <= ULP_BOUND
    # the same examples tell numpy_stable apart where it has a weakness the campaign's catalogue shows
    if family == "sigmoid_ce" and dtype in ("float32", "float64"):
        assert result.score(family, "numpy_stable", dtype).max_ulp > 1000


# ------------------------------------------------------------------------------------ the known hard points


def test_soft_labels_near_one_at_a_large_logit_where_the_tf_form_cancels():
    x = np.array([1e4, -1e4, 3e4, 12345.678], np.float32)
    z = np.array([0.9999, 1e-4, 0.99999, 0.999], np.float32)
    worst = _assert_within("sigmoid_ce", "float32", x, z, bound=0.5)  # one rounding of a float64 value
    assert worst <= 0.5
    got = accurate.sigmoid_ce(x[:1], z[:1])
    assert abs(float(got[0]) - 1.000166) < 1e-6  # numpy_stable and TF give 1.0 here (README)
    for dtype in DTYPES:
        t = _np_dtype(dtype)
        big = np.array([1e4, -1e4, 60000.0, 3e38 if dtype != "float16" else 6e4], np.float64).astype(t)
        labels = np.array([0.9999, 1e-4, 0.75, 0.5]).astype(t)
        _assert_within("sigmoid_ce", dtype, big, labels)


@pytest.mark.parametrize("dtype", DTYPES)
def test_confident_correct_rows_keep_their_relative_accuracy(dtype):
    # [20, 0] with the label on 20: the loss log1p(exp(-20)) = 2.06e-9 is log of a sum near 1 in the usual form
    t = _np_dtype(dtype)
    x = np.array([[20.0, 0.0], [0.0, 20.0], [40.0, 0.0], [100.0, 0.0], [80.0, -5.0], [10.0, 0.0]]).astype(t)
    hot = np.array([0, 1, 0, 0, 0, 0])
    z = np.eye(2)[hot].astype(t)
    _assert_within("softmax_ce", dtype, x, z)
    _assert_within("sparse_softmax_ce", dtype, x, hot)
    # the tiny losses are not flushed: [10, 0] loses 4.5e-5, a subnormal in float16; [20, 0] 2.06e-9, which
    # float16 rounds to 0 but every other format keeps
    loss = accurate.sparse_softmax_ce(x, hot).astype(np.float64)
    exact = oracles.loss("sparse_softmax_ce", logits=x, labels=hot, dtype=dtype).astype(np.float64)
    assert loss[5] > 0 and ((loss > 0) == (exact > 0)).all()
    if dtype == "float64":
        rel = abs(loss[0] - float(mpmath.log1p(mpmath.exp(-20)))) / loss[0]
        assert rel < 2**-52


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_a_hair_from_a_rounding_midpoint_round_to_the_right_side(dtype):
    # tests/unit/test_oracle_hard_points: x = -a, z = 3/4 gives the midpoint 3a/4 plus exp(-a): a rounding
    # decided on the wrong side is 0.5 ULP off, which 2 ULP allows; here every value must be within 1 ULP
    # and the sum a*w + log1p(exp(-a)) must not lose the tail (the correct rounding is the upper neighbour)
    p = oracles.resolve_format(dtype).precision
    a = (1 << p) // 3 + 1
    xs, zs = [], []
    for k in range(40):
        xs += [-(a + k), a + k]
        zs += [0.75, 0.25]
    t = _np_dtype(dtype)
    x, z = np.array(xs, np.float64).astype(t), np.array(zs).astype(t)
    assert _assert_within("sigmoid_ce", dtype, x, z, bound=1.0) <= 1.0
    for family in ("sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce"):
        for x, z in points.structured(family, dtype, 2000, seed=5):
            assert _assert_within(family, dtype, x, z, bound=1.0) <= 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_subnormal_results_are_not_flushed(dtype):
    fmt = oracles.resolve_format(dtype)
    t = _np_dtype(dtype)
    # sigmoid_ce(x, 1) = log1p(exp(-x)) ~ exp(-x): pick x so that the loss spans the subnormal range
    lo, hi = -math.log(float(fmt.min_normal)), -math.log(float(fmt.min_subnormal))
    x = np.linspace(lo, hi + 0.5, 400).astype(t)
    z = np.ones_like(x)
    outcome, ulp, truth, got = _measure("sigmoid_ce", dtype, x, z)
    exact = np.asarray(truth.rounded, np.float64)
    subnormal = (exact > 0) & (exact < float(fmt.min_normal))
    assert subnormal.sum() > 100
    assert (got.astype(np.float64)[subnormal] > 0).all()
    assert np.nanmax(ulp) <= ULP_BOUND
    # binary_ce(p, 0) = -log1p(-p) ~ p for a subnormal p
    p = (np.arange(1, 200) * float(fmt.min_subnormal)).astype(t)
    _assert_within("binary_ce", dtype, p, np.zeros_like(p))
    # rows of subnormal labels: the loss is a sum of K subnormal products (float64: each one's double-double
    # tail underflows unless the row is rescaled, 3.7 ULP measured without it)
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((2000, 16)) * 3).astype(t)
    z = (rng.integers(1, 50, (2000, 16)) * float(fmt.min_subnormal) * rng.random((2000, 1))).astype(t)
    _assert_within("softmax_ce", dtype, x, z)
    # a confident-correct row whose other 15 terms exp(x_i - m) are each a few subnormal ULP: their sum, the
    # loss and the gradient at the maximum are subnormal; rounding each term first costs 3.1 ULP (measured)
    edge = -math.log(float(fmt.min_subnormal))
    x = np.concatenate([np.zeros((500, 1)), -(edge - 3.0 + 2.0 * rng.random((500, 15)))], axis=1).astype(t)
    hot = np.zeros(500, np.int64)
    _assert_within("sparse_softmax_ce", dtype, x, hot)
    _assert_within("softmax_ce", dtype, x, np.eye(16)[hot].astype(t))
    outcome, ulp, truth, got = _measure("sparse_softmax_ce", dtype, x, hot, what="gradient")
    assert np.isin(outcome, OK).all() and np.nanmax(ulp) <= ULP_BOUND


# --------------------------------------------------------------------------- dense grids in half precision


def _all_finite(dtype: str) -> np.ndarray:
    bits = np.arange(1 << 16, dtype=np.uint16)
    values = bits.view(_np_dtype(dtype))
    return values[np.isfinite(values.astype(np.float64))]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_half_precision_logit_with_a_set_of_labels_is_within_two_ulp(dtype):
    t = _np_dtype(dtype)
    x = _all_finite(dtype)
    labels = np.array([0.0, 1.0, 0.5, 0.25, 0.75, 0.9999, 1e-4, 0.1, 0.9, 2.0**-14, 1 - 2.0**-8, 1 / 3]).astype(t)
    xx = np.repeat(x, labels.size)
    zz = np.tile(labels, x.size)
    assert xx.size > 600_000
    _assert_within("sigmoid_ce", dtype, xx, zz)
    # the same logits as the first entry of a two-class row against 0: softmax([x, 0]) is sigmoid(x)
    rows = np.stack([x, np.zeros_like(x)], axis=1)
    _assert_within("sparse_softmax_ce", dtype, rows, np.zeros(x.size, np.int64))
    _assert_within("sparse_softmax_ce", dtype, rows, np.ones(x.size, np.int64))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_half_precision_probability_with_a_set_of_labels_is_within_two_ulp(dtype):
    t = _np_dtype(dtype)
    x = _all_finite(dtype)
    p = x[(x.astype(np.float64) >= 0) & (x.astype(np.float64) <= 1)]
    labels = np.array([0.0, 1.0, 0.5, 0.9999, 1e-4, 0.3, 2.0**-14]).astype(t)
    _assert_within("binary_ce", dtype, np.repeat(p, labels.size), np.tile(labels, p.size))


# ------------------------------------------------------------------------------------------- limit values


def _specials(family: str, dtype: str):
    t = _np_dtype(dtype)
    inf, nan = np.inf, np.nan
    if family == "sigmoid_ce":
        x = [inf, inf, inf, -inf, -inf, -inf, nan, 1.0, nan, 0.0]
        z = [1.0, 0.0, 0.5, 0.0, 1.0, 0.5, 0.5, nan, nan, 0.0]
        return np.array(x).astype(t), np.array(z).astype(t)
    if family == "binary_ce":
        p = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, nan, 0.5, 0.0, 1.0]
        z = [0.0, 1.0, 0.5, 1.0, 0.0, 0.5, 0.5, nan, 1e-4, 0.9999]
        return np.array(p).astype(t), np.array(z).astype(t)
    x = np.array([[inf, 3.0], [inf, inf], [inf, 3.0], [-inf, -inf], [-inf, 2.0], [-inf, 2.0], [nan, 1.0],
                  [1.0, 2.0], [inf, -inf], [-inf, -inf], [-inf, inf]]).astype(t)
    if family == "softmax_ce":
        # the last row: the gradient S - z_1 at the +inf logit is the tiny label z_0 (S computed as a rounded
        # sum would give 0)
        tiny = float(oracles.resolve_format(dtype).min_normal)
        z = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.5, 0.25], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0],
                      [nan, 1.0], [0.75, 0.0], [0.0, 0.0], [tiny, 1.0]]).astype(t)
        return x, z
    return x, np.array([0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_limit_values_on_infinite_and_nan_inputs_are_the_oracles(family, dtype):
    x, z = _specials(family, dtype)
    outcome, ulp, truth, got = _measure(family, dtype, x, z)
    assert np.isin(outcome, OK).all(), list(zip(outcome, got.astype(np.float64), np.asarray(truth.rounded, np.float64)))
    assert np.nanmax(np.where(outcome == "finite", ulp, 0.0)) <= ULP_BOUND
    # and their gradients: the limit of the gradient, exactly (closed forms)
    outcome, ulp, truth, got = _measure(family, dtype, x, z, what="gradient")
    assert np.isin(outcome, OK).all(), list(zip(outcome.ravel(), got.astype(np.float64).ravel()))
    assert np.nanmax(np.where(outcome == "finite", ulp, 0.0)) <= ULP_BOUND


def test_a_few_limit_values_spelled_out():
    f32 = np.float32
    got = accurate.sigmoid_ce(np.array([np.inf, np.inf, -np.inf], f32), np.array([1, 0.5, 0], f32))
    assert got.tolist() == [0.0, np.inf, 0.0]
    got = accurate.binary_ce(np.array([0, 0, 1], f32), np.array([0, 0.5, 1], f32))
    assert got.tolist() == [0.0, np.inf, 0.0]
    got = accurate.softmax_ce(np.array([[np.inf, np.inf], [np.inf, 3.0]], f32), np.array([[1, 0], [1, 0]], f32))
    assert got.tolist() == [pytest.approx(math.log(2)), 0.0]
    got = accurate.sparse_softmax_ce(np.array([[-np.inf, 1.0], [-np.inf, -np.inf]]), np.array([0, 1]))
    assert got[0] == np.inf and got[1] == pytest.approx(math.log(2))


# ------------------------------------------------------------------------------------------------ gradients


def _gradient_excess(family, dtype, x, z):
    """How far each gradient value is beyond its bound, in units of the allowed error (<= 1 passes):
    ``|g~ - g| <= 2 ulp(g) + 2**-c * s`` with ``s`` the larger side of the difference and ``c`` 48 for
    float64 evaluation (half precision, float32), 55 for double-double (float64), as the module docstring
    proves; binary_ce has no difference (its bound is 2 ULP alone)."""
    outcome, ulp, truth, got = _measure(family, dtype, x, z, what="gradient")
    assert np.isin(outcome, OK).all(), f"non-finite gradient mistakes: {np.unique(outcome)}"
    g = np.asarray(truth.rounded, np.float64).ravel()
    finite = outcome.ravel() == "finite"
    if family == "binary_ce":
        side = np.zeros_like(g)
    elif family == "sigmoid_ce":
        xs, zs = x.astype(np.float64).ravel(), z.astype(np.float64).ravel()
        with np.errstate(over="ignore"):
            side = np.maximum(1 / (1 + np.exp(-xs)), zs)
    else:
        zz = z.astype(np.float64) if family == "softmax_ce" else np.eye(x.shape[-1])[z]
        side = np.maximum(np.abs(g) + zz.ravel(), zz.ravel())  # S*softmax_i = g + z_i
    rel = 2.0**-55 if dtype == "float64" else 2.0**-48
    allowed_ulps = ULP_BOUND + rel * side / _ulp_of(g, dtype)
    return np.where(finite, ulp.ravel() / allowed_ulps, 0.0), ulp.ravel(), finite


def _ulp_of(g: np.ndarray, dtype: str) -> np.ndarray:
    fmt = oracles.resolve_format(dtype)
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.abs(g)))
    e = np.maximum(np.where(np.isfinite(e), e, fmt.emin), fmt.emin)
    return np.ldexp(1.0, (e - fmt.precision + 1).astype(int))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_are_within_two_ulp_or_their_stated_cancellation_bound(family, dtype):
    for x, z in points.points(family, dtype, 2000, seed=3) + points.structured(family, dtype, 400, seed=3):
        excess, ulp, finite = _gradient_excess(family, dtype, x, z)
        assert excess.max() <= 1.0, f"{family} {dtype}: gradient error {ulp[np.argmax(excess)]:.3g} ULP beyond its bound"
    # away from cancellation the bound is plain 2 ULP: hard labels, moderate logits
    t = _np_dtype(dtype)
    rng = np.random.default_rng(4)
    if family in ("sigmoid_ce", "binary_ce"):
        x = (rng.random(2000) if family == "binary_ce" else rng.standard_normal(2000) * 10).astype(t)
        z = (rng.random(2000) < 0.5).astype(t)
    else:
        x = (rng.standard_normal((500, 5)) * 5).astype(t)
        c = rng.integers(0, 5, 500)
        z = np.eye(5)[c].astype(t) if family == "softmax_ce" else c
    outcome, ulp, truth, got = _measure(family, dtype, x, z, what="gradient")
    assert np.isin(outcome, OK).all()
    assert np.nanmax(ulp) <= ULP_BOUND


# ------------------------------------------------------------------------------ the building blocks of float64


def test_double_double_exp_and_log1p_are_far_inside_their_stated_bounds():
    rng = np.random.default_rng(6)
    y = np.concatenate([-rng.random(400) * 745, rng.uniform(-0.4, 0.4, 200), -np.ldexp(1.0, -rng.integers(1, 1000, 100))])
    yl = rng.uniform(-1, 1, y.size) * np.abs(y) * 2.0**-53  # a tail, as m - x_i has
    h, l = accurate._exp_dd(y, yl)
    worst = 0.0
    with mpmath.workprec(200):
        for a, b, c, d in zip(h.tolist(), l.tolist(), y.tolist(), yl.tolist()):
            exact = mpmath.exp(mpmath.mpf(c) + mpmath.mpf(d))
            if exact > mpmath.mpf(2) ** -1000:
                worst = max(worst, float(abs((mpmath.mpf(a) + b) / exact - 1)))
    assert worst < 2.0**-57
    t = np.concatenate([rng.random(300) * 5, np.ldexp(1.0, -rng.integers(1, 1000, 200)), -rng.random(200) * 0.5])
    h, l = accurate._log1p_dd(t, np.zeros_like(t))
    worst = 0.0
    with mpmath.workprec(200):
        for a, b, c in zip(h.tolist(), l.tolist(), t.tolist()):
            exact = mpmath.log1p(mpmath.mpf(c))
            if exact != 0:
                worst = max(worst, float(abs((mpmath.mpf(a) + b) / exact - 1)))
    assert worst < 2.0**-56
    p = np.concatenate([rng.random(300) * 0.5, np.ldexp(1.0, -rng.integers(1, 1074, 200))])
    h, l = accurate._log_dd(p)
    worst = 0.0
    with mpmath.workprec(200):
        for a, b, c in zip(h.tolist(), l.tolist(), p.tolist()):
            worst = max(worst, float(abs((mpmath.mpf(a) + b) / mpmath.log(mpmath.mpf(c)) - 1)))
    assert worst < 2.0**-56


def test_the_candidate_is_registered_for_every_family_and_in_the_default_run():
    from harness.options import Settings

    assert "accurate" in Settings().candidates
    for family in FAMILIES:
        candidate = get_candidate(family, "accurate")
        assert candidate.load() is LOSS[family]
        assert candidate.dtypes == DTYPES and not candidate.needs


def test_bad_input_is_a_one_line_error_naming_it():
    with pytest.raises(TypeError, match="labels dtype float64 differs from inputs dtype float32"):
        accurate.sigmoid_ce(np.zeros(3, np.float32), np.zeros(3))
    with pytest.raises(TypeError, match="dtype='int64' is not supported"):
        accurate.softmax_ce(np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="class indices shape"):
        accurate.sparse_softmax_ce(np.zeros((2, 3)), np.zeros(3, np.int64))


def test_blocks_give_the_values_of_one_call():
    # the block loop (harness.candidates.accurate._blocks) must not change a value: compare a large call with
    # the same rows evaluated one block at a time
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((50_000, 3)) * 20).astype(np.float64)
    z = rng.random((50_000, 3))
    whole = accurate.softmax_ce(x, z)
    parts = np.concatenate([accurate.softmax_ce(x[i : i + 1000], z[i : i + 1000]) for i in range(0, 50_000, 1000)])
    assert whole.shape == (50_000,) and np.array_equal(whole, parts)
    g = accurate.softmax_ce_grad(x, z)
    assert g.shape == x.shape and np.array_equal(g[:1000], accurate.softmax_ce_grad(x[:1000], z[:1000]))


def test_a_float64_loss_a_hair_above_max_rounds_to_max_not_to_inf():
    # found by tests/crosscheck/points (seed 30): the exact loss is max + 0.074 ULP; the leading parts of the
    # double-double sum overflowed although the value rounds to max (the sums now run at half scale there)
    x = np.array([[float.fromhex(v) for v in ("-0x1p-1022", "0x1.9p+6", "0x1p+0", "0x1.fffffffffffffp+1023", "0x1p+0", "0x1p+0",
                                               "-0x1.fffffffffffffp+1023")]])
    small, big = float.fromhex("0x1.767dce434a9b1p-10"), float.fromhex("0x1.fb9c869536203p-1")
    z = np.array([[small, small, small, small, big, small, small]])
    got = accurate.softmax_ce(x, z)
    assert got[0] == np.finfo(np.float64).max
    _assert_within("softmax_ce", "float64", x, z)
