"""The oracle's share of a profile of ``lossfuzz run`` (issue 8's figure).

Usage::

    python -m cProfile -o run.prof -m harness.cli run --workers 1 --out /tmp/x --no-progress
    python ci/oracle_share.py run.prof

Share = the sum, over functions of ``oracles/``, of the cumulative time of their calls made from ``harness/``
code, divided by the cumulative time of ``harness.campaign.run_campaign``. Calls from oracles to oracles are
inside those cumulative times, so nothing is counted twice. Prints the figure and the 15 largest terms.
``--workers 1``: a run's cells go to worker processes otherwise, which the profile does not see.
"""

from __future__ import annotations

import pstats
import sys


def main(path: str) -> None:
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]  # (file, line, function) -> (cc, nc, tt, ct, callers)
    total = None
    oracle = 0.0
    rows = []
    for (file, _line, function), (_cc, _nc, _tt, cumulative, callers) in stats.items():
        if function == "run_campaign" and file.endswith("harness/campaign.py"):
            total = cumulative
        if "/oracles/" in file:
            for (caller_file, _cl, caller), (_c, _n, _t, from_caller) in callers.items():
                if "/harness/" in caller_file:
                    oracle += from_caller
                    rows.append((from_caller, function, file.rsplit("/", 1)[-1], caller, caller_file.rsplit("/", 1)[-1]))
    if total is None:
        raise SystemExit(f"{path}: no harness/campaign.py:run_campaign in this profile; profile `lossfuzz run`")
    if not any(function == "score_rows" for (_file, _line, function) in stats):
        raise SystemExit(f"{path}: no cell was scored in the profiled process; profile `lossfuzz run --workers 1`")
    print(f"run_campaign {total:.1f} s, oracles called from harness {oracle:.1f} s = {100 * oracle / total:.1f}%")
    for seconds, function, module, caller, caller_module in sorted(rows, reverse=True)[:15]:
        print(f"  {seconds:7.1f}  {module}:{function}  <- {caller_module}:{caller}")


if __name__ == "__main__":
    main(sys.argv[1])
