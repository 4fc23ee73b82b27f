"""Opt-in speed benchmark of ``lossfuzz sweep`` (``pytest -m bench tests/benchmarks/test_bench_sweep.py``).

One run measures, on the same arrays: a sweep of ``2**LOSSFUZZ_BENCH_SWEEP_BITS`` float32 bit patterns (default
``2**26``, the issue's slice; fewer on a loaded machine, scaled honestly: every figure below is per case or a
ratio) crossed with the hard labels {0, 1} for ``numpy_stable`` (the oracle's ground truth once per chunk,
the candidate called on each chunk of 2**20 cases, scoring, per-bucket figures, worst cases) against
``numpy_stable`` alone on the same chunks' arrays, in one of the sweep's worker processes (the same allocator settings); the sweep on 1 worker process and on 2. ``extra_info``:
``ratio_to_numpy_stable`` (1-worker sweep time over the candidate alone), ``cases_per_second_per_core``
(1 worker and 2 workers), ``speedup_1_to_2_workers``, and the share of the chunk time the oracle takes
(``oracle_share``, from an in-process chunk timed piece by piece).

The issue's goal is a ratio of at most 10 and a speed-up of at least 1.8. The assertions below are
regression bounds over the figures measured (README), not that goal. The ratio depends on the machine as
much as on the sweep: the sweep's floor is the oracle's float64 ``exp`` and ``log1p`` (the C library's on
every machine), while ``numpy_stable``'s float32 formula ran 2.3 ns a case on one machine and 12-15 ns on
another (``extra_info["cpu_simd"]``: the widest vector extension the CPU reports), which moved the ratio
from 50 to about 10 with nearly the same sweep.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import oracles
from harness.candidates import get_candidate
from harness._executors import executor_for
from harness.exhaustive import Chunk, chunk_inputs, plan_sweep, run_sweep, sweep_chunk

pytestmark = pytest.mark.bench

BITS = int(os.environ.get("LOSSFUZZ_BENCH_SWEEP_BITS", "26"))
START = 0x3F000000 - (1 << (BITS - 1))  # logits around 0.5 .. 2 and their neighbours, one sign
RATIO_LIMIT = 150.0  # regression bound, 3x the 50x measured (the goal, 10x, is not met: see the module docstring)
SPEEDUP_FLOOR = 1.2  # regression bound on a shared 2-core machine (the goal: 1.8)


def cpu_simd() -> str:
    """The widest x86 vector extension in ``/proc/cpuinfo``'s flags (numpy's float32 loops use it), else
    ``"unknown"``: the ratio's provenance."""
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        return "unknown"
    return next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "unknown")


def timed_sweep(plan: list[Chunk], workers: int) -> tuple[float, float]:
    """Seconds of the sweep of ``plan`` on ``workers`` local processes, and of ``numpy_stable`` alone on the
    same chunks' arrays in one of those processes (the same allocator settings, harness._executors)."""
    with executor_for(None, workers) as pool:
        # start the workers and import what a chunk needs before the clock starts
        warm = Chunk(plan[0].family, plan[0].dtype, plan[0].labels, plan[0].candidates, plan[0].start,
                     plan[0].start + 1, plan[0].origin, plan[0].bucket_width)
        list(pool.map(sweep_chunk, [warm] * workers))
        alone = pool.submit(candidate_alone, plan).result()
        began = time.perf_counter()
        result = run_sweep(plan, pool)
        seconds = time.perf_counter() - began
    assert not result.partial and result.cases == 2 * (1 << BITS)
    return seconds, alone


def candidate_alone(plan: list[Chunk]) -> float:
    """Seconds ``numpy_stable`` takes on the chunks' arrays, summed over the calls (the arrays are made
    untimed)."""
    fn = get_candidate("sigmoid_ce", "numpy_stable").load()
    total = 0.0
    for chunk in plan:
        x, z, _patterns = chunk_inputs(chunk)
        began = time.perf_counter()
        fn(x, z)
        total += time.perf_counter() - began
    return total


def oracle_share(chunk: Chunk) -> float:
    x, z, _p = chunk_inputs(chunk)
    sweep_chunk(chunk)  # load the compiled loops (oracles._kernels) in this process first
    began = time.perf_counter()
    oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32")
    oracle = time.perf_counter() - began
    began = time.perf_counter()
    sweep_chunk(chunk)
    return oracle / (time.perf_counter() - began)


@pytest.mark.timeout(3600)
def test_sweep_of_float32_patterns_against_numpy_stable_alone(benchmark):
    plan = plan_sweep("sigmoid_ce", "float32", "hard", ["numpy_stable"], (START, START + (1 << BITS)))
    cases = 2 * (1 << BITS)
    # a speed-up from 1 to 2 workers needs a second idle core: with other jobs on the cores it measures them
    idle_cores = (os.cpu_count() or 1) - os.getloadavg()[0]
    one, alone = benchmark.pedantic(timed_sweep, args=(plan, 1), rounds=1, iterations=1)
    two, _ = timed_sweep(plan, 2)
    ratio, speedup = one / alone, one / two
    benchmark.extra_info.update({
        "cases": cases,
        "numpy_stable_seconds": alone,
        "sweep_seconds_1_worker": one,
        "sweep_seconds_2_workers": two,
        "ratio_to_numpy_stable": ratio,
        "cases_per_second_per_core_1_worker": cases / one,
        "cases_per_second_per_core_2_workers": cases / two / 2,
        "speedup_1_to_2_workers": speedup,
        "oracle_share": oracle_share(plan[0]),
        "load_average": os.getloadavg()[0],
        "idle_cores_at_start": idle_cores,
        "cpu_simd": cpu_simd(),
    })
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in benchmark.extra_info.items()})
    assert ratio < RATIO_LIMIT
    if idle_cores >= 1.5:  # the measurement's precondition (extra_info says whether it held)
        assert speedup > SPEEDUP_FLOOR
    assert np.isfinite(alone) and alone > 0
