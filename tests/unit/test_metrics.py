"""harness.metrics: per-example comparison with the ground truth and the summary statistics of a score.

Every expected figure here is computed independently in the test (sorted lists, plain Python), never by
calling numpy's statistics the way the code under test does."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pytest

import oracles
from harness.records import COUNTED_OUTCOMES, HISTOGRAM_BINS
from harness.metrics import Comparison, compare, severity, summarize
from harness.scoring import TruthCache
from harness.strategies import Example


def _comparison(ulp, bits=None, outcome=None, flushed=None, finite_input=None) -> Comparison:
    ulp = np.asarray(ulp, dtype=np.float64)
    n = ulp.size
    if bits is None:  # 0 bits only where the error is 0, else some positive number
        bits = np.where(np.isnan(ulp), np.nan, np.where(ulp == 0, 0.0, 1.0))
    if outcome is None:
        outcome = np.where(np.isnan(ulp), "nan", "finite")
    return Comparison(
        ulp=ulp,
        bits=np.asarray(bits, dtype=np.float64),
        codes=np.asarray(outcome, dtype=object),  # names: Comparison converts them to codes
        flushed=np.zeros(n, bool) if flushed is None else np.asarray(flushed, bool),
        finite_input=np.ones(n, bool) if finite_input is None else np.asarray(finite_input, bool),
    )


def _higher_percentile(values: list[float], q: int) -> float:
    """The smallest sample at or above the q-th percentile position (numpy's method='higher'), by hand."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    return ordered[math.ceil(position)]


# ----------------------------------------------------------------------------------------------- summarize


def test_summary_statistics_equal_values_computed_by_hand():
    errors = [0.25 * k for k in range(1, 201)]  # 0.25 .. 50, in a scrambled order
    scrambled = [errors[(37 * i) % 200] for i in range(200)]
    bits = [math.log2(1 + k) for k in range(200)]
    stats = summarize(_comparison(scrambled, bits=bits))
    assert stats["examples"] == 200
    assert stats["max_ulp"] == 50.0
    assert stats["mean_ulp"] == pytest.approx(statistics.fmean(errors), rel=1e-15)
    assert stats["median_ulp"] == statistics.median(errors) == 25.125
    assert stats["p99_ulp"] == _higher_percentile(errors, 99) == 49.75  # 199 * 0.99 = 197.01: the 199th value
    assert stats["max_bits"] == max(bits)
    assert stats["mean_bits"] == pytest.approx(statistics.fmean(bits), rel=1e-15)


def test_the_mean_and_median_of_errors_near_the_float64_maximum_are_finite_not_inf():
    # ULP errors of float64 results reach 1e300 and more; np.mean and np.median overflowed to inf (with a
    # RuntimeWarning once per default run)
    errors = [1e308, 1.5e308, 0.5, 1e308]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = summarize(_comparison(errors, bits=[64.0] * 4))
    assert stats["mean_ulp"] == pytest.approx(8.75e307, rel=1e-15)  # (1 + 1.5 + 1) * 1e308 / 4
    assert stats["median_ulp"] == 1e308  # (1e308 + 1e308) / 2
    assert math.isfinite(stats["mean_ulp"]) and stats["mean_bits"] == 64.0


@pytest.mark.parametrize("n", [1, 2, 7, 100, 101, 1000])
def test_p99_is_the_smallest_sample_at_or_above_the_99th_percentile(n):
    errors = [float(k * k) for k in range(1, n + 1)]
    stats = summarize(_comparison(errors[::-1]))
    assert stats["p99_ulp"] == _higher_percentile(errors, 99)
    if n >= 100:
        assert stats["p99_ulp"] >= errors[int(0.98 * n)]  # far above the bottom of the distribution


def test_p99_of_mostly_exact_results_with_a_few_large_errors_is_large():
    errors = [0.0] * 980 + [1e6] * 20  # 2% of the examples are off by a million ULP
    assert summarize(_comparison(errors))["p99_ulp"] == 1e6


def test_histogram_bins_include_their_upper_bound_exactly():
    ulp = [0.0, 0.5, np.nextafter(0.5, 1), 1.0, np.nextafter(1.0, 2), 4.0, np.nextafter(4.0, 5), 1024.0,
           np.nextafter(1024.0, 2048), math.inf]
    stats = summarize(_comparison(ulp))
    assert stats["histogram"] == {"exact": 1, "<=0.5": 1, "<=1": 2, "<=4": 2, "<=1024": 2, "more": 2}
    assert list(stats["histogram"]) == list(HISTOGRAM_BINS)


def test_exact_means_zero_bits_of_error_not_a_small_ulp_error():
    # A correctly rounded value 0.3 ULP from the exact one is exact (0 bits); a value 0.3 ULP off that is not
    # the correctly rounded one (an exact value a hair from a midpoint) lands in <=0.5.
    stats = summarize(_comparison([0.3, 0.3, 0.0], bits=[0.0, 1.0, 0.0]))
    assert stats["histogram"]["exact"] == 2 and stats["histogram"]["<=0.5"] == 1


def test_outcomes_are_counted_by_name_and_unconverged_values_are_not_examples():
    outcome = ["finite", "agree", "nan", "nan", "inf", "finite_where_infinite", "nan_where_infinite",
               "wrong_infinity", "number_where_nan", "unconverged", "unconverged", "finite"]
    ulp = [1.5, 0.0, *[math.nan] * 8, 3.0]
    finite_input = [True] * 5 + [False, False, True, True, True, True, True]
    flushed = [True] + [False] * 11
    stats = summarize(_comparison(ulp, outcome=outcome, flushed=flushed, finite_input=finite_input))
    assert stats["examples"] == 10
    assert stats["counts"] == {
        "nan": 2, "inf": 1, "finite_where_infinite": 1, "nan_where_infinite": 1, "wrong_infinity": 1,
        "number_where_nan": 1, "flushed_subnormal": 1, "raised": 0, "unconverged": 2, "on_nonfinite_inputs": 2,
        "zero_where_nonzero": 0, "wrong_sign": 0,
    }
    assert list(stats["counts"]) == list(COUNTED_OUTCOMES)
    assert stats["max_ulp"] == 3.0 and stats["mean_ulp"] == 1.5  # over the three values that have a ULP number
    assert sum(stats["histogram"].values()) == 3


def test_a_score_without_any_ulp_number_has_no_statistics_rather_than_zeros():
    stats = summarize(_comparison([math.nan, math.nan]))
    assert [stats[k] for k in ("max_ulp", "mean_ulp", "median_ulp", "p99_ulp", "max_bits", "mean_bits")] == [None] * 6
    assert stats["counts"]["nan"] == 2 and stats["examples"] == 2
    assert summarize(_comparison([]))["examples"] == 0


def test_an_infinite_ulp_error_is_the_maximum_and_lands_in_more():
    stats = summarize(_comparison([0.5, math.inf]))
    assert stats["max_ulp"] == math.inf and stats["histogram"]["more"] == 1


# ------------------------------------------------------------------------------------------------ compare


def _truth(xs, zs, dtype="float32"):
    t = oracles.resolve_format(dtype).numpy_dtype
    examples = [Example(np.asarray(x, t), np.asarray(z, t)) for x, z in zip(xs, zs)]
    return TruthCache("sigmoid_ce", dtype).truth(examples, "none")


def test_compare_measures_each_value_against_the_correctly_rounded_truth():
    truth = _truth([1.0, -810.0, np.inf, np.nan], [0.5, 1.0, 0.0, 0.5])
    exact = truth.rounded.astype(np.float32)
    got = exact.copy()
    got[0] = np.nextafter(exact[0], np.float32(np.inf))  # one float32 step up
    got[1] = np.inf  # the exact loss is 810
    c = compare(truth, got)
    assert c.outcome.tolist() == ["finite", "inf", "agree", "agree"]
    assert 0.5 < c.ulp[0] <= 1.5 and c.bits[0] == 1.0  # one step from the correctly rounded value
    assert np.isnan(c.ulp[1]) and c.ulp[2] == 0.0
    assert c.finite_input.tolist() == [True, True, False, False]


def test_a_subnormal_flushed_to_zero_is_flagged_and_a_correct_subnormal_is_not():
    # x = 100, z = 1: the loss log1p(exp(-100)) ~ 3.7e-44 is a float32 subnormal.
    truth = _truth([100.0, 100.0, 1.0], [1.0, 1.0, 1.0])
    rounded = truth.rounded.astype(np.float32)
    assert 0 < rounded[0] < np.finfo(np.float32).tiny
    got = np.array([0.0, rounded[1], 0.0], np.float32)  # flushed; right; zero where the loss is 0.31
    assert compare(truth, got).flushed.tolist() == [True, False, False]


def test_a_reduced_batch_has_finite_inputs_only_if_every_input_is_finite():
    t = np.float32
    examples = [Example(t(1.0), t(0.5)), Example(t(np.inf), t(1.0))]
    cache = TruthCache("sigmoid_ce", "float32")
    truth = cache.truth(examples, "mean")
    c = compare(truth, np.asarray(truth.rounded, np.float32))
    assert c.finite_input.tolist() == [False]
    assert c.ulp[0] <= 0.5 and c.bits.tolist() == [0.0]  # correctly rounded: within half an ULP, 0 bits


def test_severity_ranks_nonfinite_mistakes_above_every_error_and_unconverged_values_last():
    c = _comparison([3.0, math.nan, 1e30, math.inf, 0.0], outcome=["finite", "nan", "finite", "finite", "unconverged"])
    assert severity(c).tolist() == [3.0, 2.0**80, 2.0**79, 2.0**79, -1.0]  # finite errors are capped at 2**79


def test_a_comparison_is_a_frozen_slotted_record():
    c = _comparison([1.0])
    with pytest.raises(AttributeError):
        c.ulp = np.zeros(1)  # type: ignore[misc]
    assert not hasattr(c, "__dict__")


def test_an_exact_zero_returned_as_zero_is_not_a_flushed_subnormal():
    # x = +inf, z = 1: the exact loss is 0 (a limit value), and 0 is right, not a flushed subnormal.
    truth = _truth([np.inf, 100.0], [1.0, 1.0])
    c = compare(truth, np.zeros(2, np.float32))
    assert c.outcome.tolist() == ["finite", "finite"] and c.flushed.tolist() == [False, True]


def test_softmax_rows_have_finite_inputs_unless_one_of_their_logits_is_not_finite():
    t = np.float32
    rows = [Example(np.array(r, t), np.array([1.0, 0.0, 0.0], t)) for r in ([1.0, 2.0, 3.0], [1.0, np.inf, 0.0],
                                                                         [0.0, 0.0, np.nan])]
    truth = TruthCache("softmax_ce", "float32").truth(rows, "none")
    c = compare(truth, np.asarray(truth.rounded, np.float32))
    assert c.finite_input.tolist() == [True, False, False]
