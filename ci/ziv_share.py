"""How many of a sweep's oracle values take the Ziv path, on random chunks of its plan (the fast tiers'
figure in the README).

Usage::

    python ci/ziv_share.py FAMILY DTYPE LABELS [CHUNKS [QUANTITIES [SEED]]]
    python ci/ziv_share.py sigmoid_ce float16 all 12 loss,gradient 1

Picks ``CHUNKS`` (default 12) chunks of ``harness.exhaustive.plan_sweep`` at random (``numpy`` generator,
``SEED``, default 1), evaluates each chunk's cases with ``oracles.evaluate`` for each quantity, and prints
the values per path, the Ziv path's share and the seconds taken (one process).
"""

from __future__ import annotations

import sys
import time

import numpy as np

import oracles
from harness import exhaustive


def main(argv: list[str]) -> None:
    family, dtype, labels = argv[:3]
    count = int(argv[3]) if len(argv) > 3 else 12
    quantities = argv[4].split(",") if len(argv) > 4 else ["loss"]
    seed = int(argv[5]) if len(argv) > 5 else 1
    plan = exhaustive.plan_sweep(family, dtype, labels, ["numpy_stable"])
    picks = sorted(np.random.default_rng(seed).choice(len(plan), min(count, len(plan)), replace=False).tolist())
    name = oracles.get_family(family).input_name
    paths = {"fast": 0, "ziv": 0}
    began = time.perf_counter()
    for i in picks:
        inputs, labels_of, _patterns = exhaustive.chunk_inputs(plan[i])
        for what in quantities:
            truth = oracles.evaluate(family, **{name: inputs}, labels=labels_of, dtype=dtype, what=what)
            for path, n in truth.path_counts.items():
                paths[path] += n
    total = paths["fast"] + paths["ziv"]
    print(f"{family} {dtype} --labels {labels} {','.join(quantities)}: chunks {picks}; fast {paths['fast']:,},"
          f" Ziv {paths['ziv']:,} ({100 * paths['ziv'] / max(total, 1):.4f}%); {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
