"""The error metric: ULP of the exact value, fractional ULP error, bits of error and outcome classes."""

import math

import mpmath
import numpy as np
import pytest

import oracles
from oracles import OUTCOMES, bits_of_error, classify, ordinal, ulp_error, ulp_exponent


def test_ulp_of_the_exact_value_uses_its_binade_subnormal_spacing_and_min_subnormal_for_zero():
    assert ulp_exponent(1.0, "float32") == -23
    assert ulp_exponent(1.9999, "float32") == -23
    assert ulp_exponent(0.5, "float32") == -24
    assert ulp_exponent(2.0**-130, "float32") == -149  # subnormal: fixed spacing
    assert ulp_exponent(0.0, "float32") == -149
    assert ulp_exponent(0.0, "float16") == -24
    assert ulp_exponent(0.0, "bfloat16") == -133
    assert ulp_exponent(2.0**200, "float32") == 200 - 23  # binades continue beyond the overflow threshold


def test_ulp_error_of_tensorflow_style_result_for_a_soft_label_near_one():
    exact = oracles.exact("sigmoid_ce", logits=np.float32(1e4), labels=np.float32(0.9999), dtype="float32")
    err = ulp_error(np.float32(1.0), exact, "float32")
    # (1.000165939... - 1) / 2**-23
    assert float(err) == pytest.approx(1392.0, abs=1e-6)  # 1 - fl32(0.9999) = 1392 * 2**-27, times 1e4


def test_correctly_rounded_values_are_within_half_an_ulp():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(300) * 10.0 ** rng.integers(-5, 5, 300)).astype(np.float32)
    z = rng.random(300).astype(np.float32)
    for dtype in ["float16", "bfloat16", "float32", "float64"]:
        truth = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype=dtype)
        err = ulp_error(truth.rounded, truth.exact, dtype)
        assert np.nanmax(err) <= 0.5
        assert (bits_of_error(truth.rounded, truth, dtype) == 0).all()


def test_ulp_error_for_an_exact_zero_uses_the_smallest_subnormal():
    assert float(ulp_error(np.float32(2.0**-149 * 3), np.array(mpmath.mpf(0)), "float32")) == 3.0


def test_outcomes_are_classified_not_given_ulp_numbers():
    exact = np.array([mpmath.mpf(1), mpmath.mpf(1), mpmath.inf, mpmath.inf, mpmath.nan, mpmath.inf, mpmath.mpf(1e39), mpmath.nan, mpmath.inf])
    computed = np.array([np.nan, np.inf, 5.0, np.nan, 1.0, -np.inf, np.inf, np.nan, np.inf], np.float32)
    kinds = classify(computed, exact, "float32").tolist()
    assert kinds == [
        "nan",
        "inf",
        "finite_where_infinite",
        "nan_where_infinite",
        "number_where_nan",
        "wrong_infinity",
        "agree",  # 1e39 rounds to +inf in float32
        "agree",
        "agree",
    ]
    err = ulp_error(computed, exact, "float32")
    assert np.isnan(err[:6]).all() and (err[6:] == 0).all()
    assert set(kinds) <= set(OUTCOMES)


def test_unconverged_oracle_values_are_classed_unconverged(monkeypatch):
    from oracles import _ziv

    monkeypatch.setattr(_ziv, "START_PRECISION", 8)
    monkeypatch.setattr(_ziv, "MAX_PRECISION", 16)
    from oracles._api import _evaluate  # the Ziv path forced: the fast path would decide 1.0 at once

    truth = _evaluate("sigmoid_ce", logits=[1.0, np.inf], labels=[0.5, 1.0], dtype="float32", path="ziv")
    assert truth.status.tolist() == ["unconverged", "exact"]
    assert truth.precision[0] == 16 and truth.unconverged == 1
    assert classify(np.float32([0.9, 0.0]), truth, "float32").tolist() == ["unconverged", "finite"]
    with pytest.raises(oracles.OracleUnconverged, match=r"not decided at 16 bits"):
        truth.raise_if_unconverged()


def test_bits_of_error_count_format_values_between():
    exact = np.array([mpmath.mpf(1), mpmath.mpf(1)])
    computed = np.array([1.0, 1.0 + 3 * 2.0**-23], np.float32)
    assert bits_of_error(computed, exact, "float32").tolist() == [0.0, 2.0]  # log2(1 + 3)


def test_ordinal_is_monotone_across_zero_subnormals_and_infinity():
    values = np.array([-np.inf, -1.0, -(2.0**-149), -0.0, 0.0, 2.0**-149, 1.0, np.inf], np.float32)
    o = ordinal(values, "float32")
    assert o[3] == o[4] == 0 and o[5] == 1 and o[2] == -1
    assert np.all(np.diff(o[[0, 1, 2, 4, 5, 6, 7]]) > 0)
    assert o[7] == 0x7F800000


def test_ulp_error_is_inf_when_too_large_for_float64():
    err = ulp_error(np.float64(1e300), np.array(mpmath.mpf("1e-300")), "float64")
    assert math.isinf(float(err))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_a_sign_flipped_huge_value_is_about_bits_plus_one_bits_wrong_on_both_metric_paths(dtype):
    # ordinal(+max) - ordinal(-max) is about 2**bits: in float64 that exceeds int64 and once wrapped to a
    # few bits less; in float64 c - v overflows, which the fast path's two-sum once turned to a nan ULP error
    fmt = oracles.resolve_format(dtype)
    huge = fmt.max_finite * 0.75  # the difference of -huge and huge exceeds max
    truth = oracles.evaluate("sigmoid_ce", logits=np.array([-huge, 1.0]), labels=np.array([1.0, 0.0]), dtype=dtype)
    assert truth.fast[0], "the fast path decides x = -huge, z = 1 (loss = huge, rounded)"
    computed = -np.asarray(truth.rounded, dtype=np.float64).astype(fmt.numpy_dtype)
    slow = bits_of_error(computed, truth.exact, dtype), ulp_error(computed, truth.exact, dtype)
    _outcomes, ulp, bits = oracles.measure(computed, truth, dtype)
    o = int(ordinal(np.float64(huge), dtype))
    assert bits[0] == slow[0][0] == pytest.approx(math.log2(1 + 2 * o), rel=1e-15)
    assert bits[0] > fmt.bits - 2.1
    rounded = float(np.asarray(truth.rounded, dtype=np.float64)[0])
    expected_ulp = float((mpmath.mpf(rounded) + huge) / 2 ** ulp_exponent(huge, dtype))  # |c - v|, v = huge + e**-huge
    assert ulp[0] == pytest.approx(expected_ulp, rel=2**-40) and slow[1][0] == pytest.approx(expected_ulp, rel=2**-40)


def test_measure_is_classify_ulp_error_and_bits_of_error_in_one_pass():
    exact = oracles.exact("sigmoid_ce", logits=np.float32([1e4, -810.0, 0.0, np.inf]),
                          labels=np.float32([0.9999, 1.0, 0.5, 0.5]), dtype="float32")
    computed = np.float32([1.0, np.inf, 0.6931472, np.nan])
    outcomes, ulp, bits = oracles.measure(computed, exact, "float32")
    assert outcomes.tolist() == classify(computed, exact, "float32").tolist()
    np.testing.assert_array_equal(ulp, ulp_error(computed, exact, "float32"))
    np.testing.assert_array_equal(bits, bits_of_error(computed, exact, "float32"))


def test_an_mpmath_exact_value_is_used_with_all_its_bits_not_through_a_float():
    with mpmath.workprec(120):
        exact = mpmath.mpf(1) + mpmath.mpf(2) ** -80  # not a float64 number
    assert float(ulp_error(np.float32([1.0]), [exact], "float32")[0]) == 2.0**-57  # 2**-80 / 2**-23


def test_bits_of_error_are_zero_where_computed_and_exact_agree_on_a_non_finite_value_and_nan_elsewhere():
    computed = np.float32([np.nan, np.inf, np.nan, 1.0])
    exact = [math.nan, math.inf, 1.0, math.inf]
    assert classify(computed, exact, "float32").tolist() == ["agree", "agree", "nan", "finite_where_infinite"]
    bits = bits_of_error(computed, exact, "float32")
    assert bits[:2].tolist() == [0.0, 0.0] and np.isnan(bits[2:]).all()


def test_bad_arguments_of_the_metric_are_one_line_errors_naming_the_problem():
    with pytest.raises(ValueError, match=r"^exact=inf is not finite; ulp is defined for finite exact values only$"):
        ulp_exponent(math.inf, "float32")
    with pytest.raises(ValueError, match=r"^computed shape \(2,\) differs from exact shape \(3,\); pass matching arrays$"):
        ulp_error(np.float32([1.0, 2.0]), [1.0, 2.0, 3.0], "float32")
    with pytest.raises(ValueError, match=r"^ordinal of nan is undefined; filter nan values first$"):
        ordinal([math.nan], "float32")


@pytest.mark.parametrize("family", ["sigmoid_ce", "softmax_ce"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_ziv_path_values_measured_from_their_float_copy_agree_with_the_value_by_value_metric(family, dtype):
    from oracles._api import _evaluate
    from oracles._ulp import _Values, _bits, _ulp_errors, outcome_codes

    rng = np.random.default_rng(5)
    if family == "sigmoid_ce":
        x = rng.standard_normal(120) * 10.0 ** rng.integers(-300, 300, 120)
        z = rng.choice([0.0, 1.0, 0.3, 0.9999], 120)
    else:
        x = rng.standard_normal((40, 3)) * 10.0 ** rng.integers(-5, 5, (40, 1))
        z = rng.dirichlet(np.ones(3), 40)
    fmt = oracles.resolve_format(dtype)
    for what in ("loss", "gradient"):
        truth = _evaluate(family, logits=x, labels=z, dtype=dtype, what=what, path="ziv")
        r = np.asarray(truth.rounded, dtype=np.float64)
        finite_nonzero = (np.isfinite(r) & (r != 0)).ravel()
        assert truth.estimate_frame(dtype).usable[finite_nonzero].all()  # these take the vectorised path
        for computed in (r, r * (1 + 2.0**-7), -r, r * 1e3, np.where(rng.random(r.shape) < 0.2, np.inf, r)):
            with np.errstate(over="ignore"):  # r * 1e3 beyond the format: inf, a case of its own
                c = computed.astype(fmt.numpy_dtype)
            codes, ulp, bits = oracles.measure_codes(c, truth, dtype)
            one_by_one = _Values(truth.exact.ravel(), truth.status.ravel())
            names = classify(c.ravel(), one_by_one, dtype)
            assert codes.ravel().tolist() == outcome_codes(names).tolist()
            np.testing.assert_array_equal(bits.ravel(), _bits(names, c.ravel(), one_by_one, fmt))
            expected = _ulp_errors(names, c.ravel(), one_by_one, fmt)
            np.testing.assert_allclose(ulp.ravel(), expected, rtol=2.0**-40, atol=2.0**-40)
