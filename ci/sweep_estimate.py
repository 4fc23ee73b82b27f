"""Time a few chunks of a sweep's plan in one process and estimate the whole sweep's wall time on N workers
(what a chunk costs, before committing the cores for an hour).

Usage::

    python ci/sweep_estimate.py FAMILY DTYPE LABELS QUANTITIES CANDIDATES [WORKERS]
    python ci/sweep_estimate.py softmax_ce float32 hard loss naive,numpy_stable,tf,torch 2

``CANDIDATES``: a comma list, or ``all`` (``ci/run_sweeps.py``'s ``sweepable``: every available
per-example candidate of the family and dtype). Only chunks that hold cases count (``binary_ce``'s
probabilities are a few of the patterns: the others' chunks are empty). One chunk is run first (imports,
compilation), then the chunks at 1/5, 1/2 and 4/5 of them are timed; prints each one's oracle paths and
seconds, the mean, and ``mean * chunks / WORKERS`` (default 2).
"""

from __future__ import annotations

import sys
import time

import oracles
from harness import exhaustive
from run_sweeps import sweepable  # (ci/ is this script's directory, first on sys.path)


def main(argv: list[str]) -> None:
    family, dtype, labels, quantities, names = argv[:5]
    workers = int(argv[5]) if len(argv) > 5 else 2
    if names == "all":
        names = ",".join(sweepable(family, dtype))
    plan = exhaustive.plan_sweep(family, dtype, labels, names.split(","), quantities=quantities.split(","))
    if oracles.get_family(family).input_domain == "unit":  # probabilities: most chunks keep no pattern
        plan = [c for c in plan if exhaustive.chunk_inputs(c)[2].size]
    exhaustive.sweep_chunk(plan[len(plan) // 3])
    timed = [plan[len(plan) // 5], plan[len(plan) // 2], plan[(4 * len(plan)) // 5]]
    began = time.perf_counter()
    for chunk in timed:
        result = exhaustive.sweep_chunk(chunk)
        print(f"chunk {chunk.start:#x}:{chunk.stop:#x}: {result.cases:,} cases, paths {result.paths}, {result.seconds:.2f} s")
    mean = (time.perf_counter() - began) / len(timed)
    print(f"{family} {dtype} --labels {labels} --quantities {quantities} --candidate {names}: {mean:.2f} s a chunk;"
          f" {len(plan)} chunks on {workers} workers: about {mean * len(plan) / workers:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
