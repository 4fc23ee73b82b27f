"""Opt-in benchmark (``pytest -m bench tests/benchmarks/test_bench_regimes.py``): what per-regime statistics
add to scoring. 10^5 sigmoid_ce float32 examples (logits over seven decades, half of them with soft labels,
100 infinite), scored as ``numpy_stable`` computes them: ``compare`` (which classifies each example with
``Family.regimes_of``) and ``summarize`` with the family's regimes, against ``summarize`` of the same
comparison unclassified (``regime=None``: no per-regime statistics) and the classification alone. The
ratios, measured in one run, are in ``extra_info``."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

import oracles
from harness.candidates import get_candidate
from harness.metrics import compare, summarize

pytestmark = pytest.mark.bench

EXAMPLES = 100_000


def _best(fn, repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_bench_per_regime_statistics_against_the_whole_scores(benchmark):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(EXAMPLES) * 10.0 ** rng.integers(-3, 4, EXAMPLES)).astype(np.float32)
    x[:50], x[50:100] = np.inf, -np.inf
    z = np.where(rng.random(EXAMPLES) < 0.5, rng.integers(0, 2, EXAMPLES), rng.random(EXAMPLES)).astype(np.float32)
    truth = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32")
    got = get_candidate("sigmoid_ce", "numpy_stable")(x, z)
    family = oracles.get_family("sigmoid_ce")
    order = [r.name for r in family.regimes]
    classified = compare(truth, got)
    plain = dataclasses.replace(classified, regime=None)
    stats = benchmark(summarize, classified, order)
    assert sum(r.examples for r in stats["regimes"].values()) == stats["examples"] == EXAMPLES
    classify = _best(lambda: family.regimes_of(truth.inputs, truth.labels, "float32", truth.rounded, truth.exact))
    scoring = _best(lambda: compare(truth, got))
    with_regimes, without = _best(lambda: summarize(classified, order)), _best(lambda: summarize(plain))
    benchmark.extra_info.update({
        "examples": EXAMPLES,
        "classify_ms": classify * 1e3,
        "compare_ms": scoring * 1e3,
        "summarize_with_regimes_ms": with_regimes * 1e3,
        "summarize_without_regimes_ms": without * 1e3,
        "scoring_with_over_without": (scoring + with_regimes) / (scoring - classify + without),
    })
