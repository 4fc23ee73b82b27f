"""Opt-in speed benchmark of ``accurate`` (``pytest -m bench tests/benchmarks/test_bench_accurate.py``): its time
per element over numpy_stable's, both measured in the same run on the same 10**6-element arrays (the run's
speed inputs: logits ~ N(0, 8**2), soft labels, rows of 10 classes), stored in ``extra_info["ratio_to_numpy_stable"]``.

The README quotes the figures. numpy_stable computes in the input dtype (float32 SIMD ``exp``/``log1p`` for
float32 inputs); ``accurate`` computes in float64 for half precision and float32 inputs and in double-double
for float64 inputs, so its cost is that of float64 ``exp``/``log1p`` (float32 inputs) or of a few dozen
float64 operations per value (float64 inputs)."""

import pytest

from harness.candidates import get_candidate
from harness.speed import speed_inputs, time_candidate

pytestmark = pytest.mark.bench

# Upper bounds with a margin over the ratios measured (README): half precision is within the 3x target,
# float32 and float64 are not (a float64 evaluation per value, double-double for float64).
RATIO_LIMIT = {"float16": 3.0, "bfloat16": 3.0, "float32": 10.0, "float64": 40.0}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("family", ["sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce"])
def test_accurate_against_numpy_stable_per_element(benchmark, family, dtype):
    x, z = speed_inputs(family, dtype, 1_000_000)
    accurate, stable = get_candidate(family, "accurate"), get_candidate(family, "numpy_stable")
    ratio = time_candidate(accurate, x, z).candidate_ns_per_element / time_candidate(stable, x, z).candidate_ns_per_element
    benchmark.extra_info["ratio_to_numpy_stable"] = ratio
    benchmark.pedantic(accurate, args=(x, z), rounds=1, iterations=1)
    assert ratio < RATIO_LIMIT[dtype]
