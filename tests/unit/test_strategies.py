"""harness.strategies: the Hypothesis strategies reach every region that breaks a loss (large logits, the exp
overflow and underflow thresholds, subnormals, the largest finite value, ±inf/nan when asked), draw only
values representable in the dtype, and the boundary catalogue holds what it promises."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis.errors import NoSuchExample

from harness import strategies as lst

DTYPES = ("float16", "bfloat16", "float32", "float64")
NUMPY = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}
# Searching for a rare value: derandomized (the same draws every run) and generous, so it never flakes.
SEARCH = settings(max_examples=5000, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
DRAWS = settings(max_examples=100, database=None, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))


def _finfo(dtype: str):
    return ml_dtypes.finfo(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.finfo(NUMPY[dtype])


def _representable(v: float, dtype: str) -> bool:
    return math.isnan(v) or float(np.asarray(v, np.float64).astype(NUMPY[dtype])) == v


# -------------------------------------------------------------------------------------------------- logits


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logits_reach_far_beyond_100_on_both_sides(dtype):
    big = float(_finfo(dtype).max) / 4
    assert find(lst.logits(dtype), lambda v: v > 1000.0, settings=SEARCH) > 1000.0
    assert find(lst.logits(dtype), lambda v: v < -1000.0, settings=SEARCH) < -1000.0
    assert find(lst.logits(dtype), lambda v: v > big, settings=SEARCH) > big
    assert find(lst.logits(dtype), lambda v: 100.0 < v < 1e4 and v != int(v), settings=SEARCH) > 100.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_reach_the_exp_overflow_threshold_and_its_neighbours(dtype):
    overflow = math.log(float(_finfo(dtype).max))  # exp(x) is finite just below, inf just above
    specials = set(lst.special_logits(dtype))
    t = NUMPY[dtype]
    at = float(np.asarray(overflow, np.float64).astype(t))
    assert at in specials and -at in specials
    assert float(np.nextafter(t(at), t(np.inf))) in specials and float(np.nextafter(t(at), t(0))) in specials
    assert find(lst.logits(dtype), lambda v: v == at, settings=SEARCH) == at
    underflow = math.log(float(_finfo(dtype).smallest_subnormal))
    assert float(np.asarray(underflow, np.float64).astype(t)) in specials


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_logits_hold_zero_subnormals_the_smallest_normal_the_largest_value_and_the_seed_example(dtype):
    fi = _finfo(dtype)
    specials = lst.special_logits(dtype)
    assert list(specials) == sorted(specials) and len(set(specials)) == len(specials)
    for v in (0.0, float(fi.smallest_subnormal), float(fi.tiny), float(fi.max), -float(fi.max), 1.0, -1.0):
        assert v in specials, v
    assert any(0 < abs(v) < float(fi.tiny) for v in specials)  # subnormals
    if dtype in ("float32", "float64"):
        assert -810.0 in specials  # the seed's example: exp(810) overflows in float32
    assert all(math.isfinite(v) and _representable(v, dtype) for v in specials)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_are_finite_unless_infinity_or_nan_is_allowed(dtype):
    @DRAWS
    @given(lst.logits(dtype))
    def finite(v):
        assert math.isfinite(v) and _representable(v, dtype)

    finite()
    assert find(lst.logits(dtype, allow_infinity=True), lambda v: v == math.inf, settings=SEARCH) == math.inf
    assert find(lst.logits(dtype, allow_infinity=True), lambda v: v == -math.inf, settings=SEARCH) == -math.inf
    assert math.isnan(find(lst.logits(dtype, allow_nan=True), math.isnan, settings=SEARCH))
    extra = lst.special_logits(dtype, allow_infinity=True, allow_nan=True)[-3:]
    assert extra[:2] == (-math.inf, math.inf) and math.isnan(extra[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_reach_subnormals_and_the_largest_finite_value(dtype):
    fi = _finfo(dtype)
    tiny = float(fi.tiny)
    assert 0 < abs(find(lst.logits(dtype), lambda v: 0 < abs(v) < tiny, settings=SEARCH)) < tiny
    assert find(lst.logits(dtype), lambda v: v == float(fi.max), settings=SEARCH) == float(fi.max)


# -------------------------------------------------------------------------------------- labels and probs


@pytest.mark.parametrize("dtype", DTYPES)
def test_labels_are_in_the_unit_interval_and_representable(dtype):
    @DRAWS
    @given(lst.labels(dtype), lst.probabilities(dtype))
    def check(z, p):
        assert 0.0 <= z <= 1.0 and _representable(z, dtype)
        assert 0.0 <= p <= 1.0 and _representable(p, dtype)

    check()


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_labels_hold_hard_labels_and_labels_a_hair_below_one(dtype):
    fi = _finfo(dtype)
    p = int(fi.nmant) + 1
    labels = lst.special_labels(dtype)
    for v in (0.0, 1.0, 0.5, 1 - 2.0**-p, 1 - 2.0**-(p - 1), float(fi.smallest_subnormal)):
        assert v in labels, v
    assert all(0 <= v <= 1 for v in labels)
    probs = lst.special_probs(dtype)
    assert set(labels) <= set(probs) and all(0 <= v <= 1 for v in probs)


def test_hard_labels_are_only_zero_and_one():
    assert find(lst.labels("float32", soft=False), lambda z: z == 1.0, settings=SEARCH) == 1.0
    with pytest.raises(NoSuchExample):
        find(lst.labels("float32", soft=False), lambda z: 0 < z < 1, settings=SEARCH)


def test_class_counts_stay_in_range_and_reach_the_maximum():
    assert find(lst.class_counts(2, 500), lambda k: k == 500, settings=SEARCH) == 500

    @DRAWS
    @given(lst.class_counts(3, 40))
    def check(k):
        assert 3 <= k <= 40

    check()


# ------------------------------------------------------------------------------------------------ examples


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", ["sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce"])
def test_examples_have_the_family_shape_and_the_dtype(family, dtype):
    @DRAWS
    @given(lst.examples(family, dtype, max_classes=6))
    def check(e):
        assert e.inputs.dtype == np.dtype(NUMPY[dtype])
        if family in ("sigmoid_ce", "binary_ce"):
            assert e.inputs.shape == () and e.labels.shape == () and e.labels.dtype == e.inputs.dtype
        else:
            assert e.inputs.ndim == 1 and 1 <= e.inputs.shape[0] <= 6
            if family == "sparse_softmax_ce":
                assert e.labels.dtype == np.int64 and 0 <= int(e.labels) < e.inputs.shape[0]
            else:
                assert e.labels.shape == e.inputs.shape and e.labels.dtype == e.inputs.dtype
        if family == "binary_ce":
            assert 0 <= float(e.inputs) <= 1

    check()


def test_examples_with_a_fixed_class_count_always_have_it():
    @DRAWS
    @given(lst.examples("softmax_ce", "float32", classes=5))
    def check(e):
        assert e.inputs.shape == (5,)

    check()


def test_the_key_tells_equal_examples_from_different_ones():
    a = lst.Example(np.float32(1.0), np.float32(0.5))
    assert a.key == lst.Example(np.float32(1.0), np.float32(0.5)).key
    assert a.key != lst.Example(np.float64(1.0), np.float64(0.5)).key
    assert a.key != lst.Example(np.float32(1.0), np.float32(0.25)).key


# ----------------------------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_elementwise_catalogue_is_every_special_logit_with_every_special_label(dtype):
    xs = lst.special_logits(dtype, allow_infinity=True, allow_nan=True)
    zs = lst.special_labels(dtype)
    cat = lst.catalogue("sigmoid_ce", dtype)
    assert len(cat) == len(xs) * len(zs)
    pairs = {(float(e.inputs), float(e.labels)) for e in cat if not np.isnan(float(e.inputs))}
    assert pairs == {(x, z) for x in xs for z in zs if not math.isnan(x)}
    assert sum(np.isnan(float(e.inputs)) for e in cat) == len(zs)
    assert lst.catalogue("sigmoid_ce", dtype)[5].key == cat[5].key  # deterministic


def test_the_binary_catalogue_is_every_special_probability_with_every_special_label():
    cat = lst.catalogue("binary_ce", "float32")
    assert {(float(e.inputs), float(e.labels)) for e in cat} == {
        (p, z) for p in lst.special_probs("float32") for z in lst.special_labels("float32")}
    probs = {float(e.inputs) for e in cat}
    assert float(np.float32(1e-7)) in probs and float(np.float32(1 - 1e-7)) in probs  # the Keras clip points


def test_the_softmax_catalogue_rows_mirror_sigmoid_and_their_labels_are_distributions():
    cat = lst.catalogue("softmax_ce", "float32")
    rows = {tuple(e.inputs.tolist()) for e in cat}
    assert (810.0, 0.0) in rows and (-810.0, 0.0) in rows and (810.0, 810.0, 810.0) in rows
    assert any(math.isinf(v) for r in rows for v in r) and any(math.isnan(v) for r in rows for v in r)
    for e in cat:
        assert e.labels.shape == e.inputs.shape
        assert abs(float(e.labels.astype(np.float64).sum()) - 1) < 1e-6
    sparse = lst.catalogue("sparse_softmax_ce", "float32")
    assert all(0 <= int(e.labels) < e.inputs.shape[0] for e in sparse)
    # every class of every row is the target once
    per_row: dict = {}
    for e in sparse:
        per_row.setdefault(e.inputs.tobytes(), set()).add(int(e.labels))
    assert all(classes == set(range(len(classes))) for classes in per_row.values())
