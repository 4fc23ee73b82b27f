"""Opt-in oracle speed benchmarks (``pytest -m bench tests/benchmarks``): the certified fast path against a
plain per-point (per-row) mpmath loop at 113 bits, which does not even certify its rounding. Figures are
ratios of per-value times measured in one run, stored in pytest-benchmark's ``extra_info``; the share of
values that fell back to the Ziv path is stored beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import mpmath
import numpy as np
import pytest

import oracles

pytestmark = pytest.mark.bench

LOOP_POINTS = 1_000  # the mpmath loop is timed on this many points (rows: 20)
FAST_POINTS = 1_000_000


def _random_bits_float32(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite float32 values from uniformly random bit patterns (the whole range, both signs)."""
    x = rng.integers(0, 2**32, 2 * n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return x[np.isfinite(x)][:n]


def _inputs(family: str, dtype: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.random(n).astype(dtype)
    if family == "sigmoid_ce":
        x = _random_bits_float32(rng, n).astype(dtype) if dtype == "float32" else rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64)
        x = x[np.isfinite(x)] if dtype == "float64" else x
        return x, z[: x.size]
    return rng.random(n).astype(dtype), z  # binary_ce: probabilities


def _mpmath_loop(family: str, x: np.ndarray, z: np.ndarray) -> list:
    """The loss at each point at 113 bits, by mpmath, no certification (the same formulas as the oracle)."""
    out = []
    with mpmath.workprec(113):
        for xi, zi in zip(x.tolist(), z.tolist()):
            if family == "sigmoid_ce":
                a = abs(xi)
                w = 1 - mpmath.mpf(zi) if xi >= 0 else mpmath.mpf(zi)
                out.append(a * w + mpmath.log1p(mpmath.exp(-a)))
            else:
                out.append(-(zi * mpmath.log(xi) + (1 - mpmath.mpf(zi)) * mpmath.log1p(-xi)))
    return out


def _per_value(fn, count: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / count


@pytest.mark.parametrize(
    ("family", "dtype", "at_least"),
    [("sigmoid_ce", "float32", 100), ("binary_ce", "float32", 100), ("sigmoid_ce", "float64", 10), ("binary_ce", "float64", 10)],
)
def test_fast_oracle_against_a_per_point_mpmath_loop(benchmark, family, dtype, at_least):
    x, z = _inputs(family, dtype, FAST_POINTS)
    key = "probs" if family == "binary_ce" else "logits"
    loop = _per_value(lambda: _mpmath_loop(family, x[:LOOP_POINTS], z[:LOOP_POINTS]), LOOP_POINTS, repeat=1)
    fast = _per_value(lambda: oracles.loss(family, **{key: x}, labels=z, dtype=dtype), x.size)
    truth = oracles.evaluate(family, **{key: x[:200_000]}, labels=z[:200_000], dtype=dtype)
    ziv_share = truth.path_counts["ziv"] / truth.fast.size
    benchmark.extra_info.update(ratio_to_mpmath_loop=loop / fast, ns_per_value=fast * 1e9, ziv_share=ziv_share)
    benchmark.pedantic(oracles.loss, args=(family,), kwargs={key: x[:100_000], "labels": z[:100_000], "dtype": dtype}, rounds=3)
    assert loop / fast >= at_least, f"{family} {dtype}: {loop / fast:.1f}x a per-point mpmath loop, below {at_least}x"
    assert ziv_share < 1e-4, f"{family} {dtype}: {ziv_share:.2e} of random values fell back to the Ziv path"


def _mpmath_rows(x: np.ndarray, z: np.ndarray) -> list:
    """softmax cross-entropy per row at 113 bits by mpmath: ``S * logsumexp(x) - sum z_i x_i``, uncertified."""
    out = []
    with mpmath.workprec(113):
        for row, labels in zip(x.tolist(), z.tolist()):
            m = max(row)
            lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in row))
            out.append(mpmath.fsum(labels) * lse - mpmath.fsum(zi * v for zi, v in zip(labels, row)))
    return out


def test_fast_softmax_oracle_on_rows_of_a_thousand_classes_against_a_per_row_mpmath_loop(benchmark):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2_000, 1_000)) * 5).astype(np.float32)
    z = rng.random((2_000, 1_000)).astype(np.float32)
    loop = _per_value(lambda: _mpmath_rows(x[:20], z[:20]), 20, repeat=1)
    fast = _per_value(lambda: oracles.loss("softmax_ce", logits=x, labels=z, dtype="float32"), x.shape[0])
    truth = oracles.evaluate("softmax_ce", logits=x, labels=z, dtype="float32")
    benchmark.extra_info.update(ratio_to_mpmath_loop=loop / fast, us_per_row=fast * 1e6, ziv_share=truth.path_counts["ziv"] / x.shape[0])
    benchmark.pedantic(oracles.loss, args=("softmax_ce",), kwargs={"logits": x[:200], "labels": z[:200], "dtype": "float32"}, rounds=3)
    assert loop / fast >= 70, f"softmax_ce float32, K=1000: {loop / fast:.1f}x a per-row mpmath loop, below 70x"
    assert truth.path_counts["ziv"] == 0


_MEMORY_CHILD = """
import json, resource, sys, time
import numpy as np
import oracles
n = int(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.standard_normal(n, dtype=np.float32) * np.float32(20)
z = rng.random(n, dtype=np.float32)
start = time.perf_counter()
out = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32")
print(json.dumps({"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "finite": bool(np.isfinite(out).all()),
                  "seconds": time.perf_counter() - start}))
"""


def test_a_hundred_million_elements_peak_under_two_gigabytes(benchmark):
    """The whole process's peak resident memory (inputs 800 MB, result 400 MB included) for 10^8 float32
    sigmoid_ce losses at random logits and labels, measured in a fresh interpreter."""
    n = 100_000_000
    done = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(n)], capture_output=True, text=True, timeout=1800, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    benchmark.extra_info.update(peak_bytes=report["peak_bytes"], seconds=report["seconds"])
    benchmark.pedantic(lambda: None, rounds=1)
    assert report["finite"]
    assert report["peak_bytes"] < 2 * 2**30, f"peak {report['peak_bytes'] / 2**30:.2f} GiB for 10^8 elements"
