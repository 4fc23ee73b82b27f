"""Opt-in speed benchmarks (``tox -e bench`` or ``pytest -m bench``): figures are ratios to a memory copy
of the same arrays, measured in the same run, stored in pytest-benchmark's ``extra_info``."""

import numpy as np
import pytest

import oracles
from harness.candidates import get_candidate
from harness.speed import speed_inputs, time_candidate

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("name", ["naive", "numpy_stable"])
def test_numpy_candidates_per_element_against_a_memory_copy(benchmark, name):
    x, z = speed_inputs("sigmoid_ce", "float32", 1_000_000)
    candidate = get_candidate("sigmoid_ce", name)
    ratio = time_candidate(candidate, x, z).ratio
    benchmark.extra_info["ratio_to_copy"] = ratio
    benchmark(candidate, x, z)
    assert ratio < 200  # a numpy formula over 10^6 elements is a few passes over memory, not thousands


def test_oracle_throughput_on_a_thousand_float32_points(benchmark):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(1000) * 30).astype(np.float32)
    z = rng.random(1000).astype(np.float32)
    result = benchmark(oracles.loss, "sigmoid_ce", logits=x, labels=z, dtype="float32")
    assert result.dtype == np.float32 and np.isfinite(result).all()
