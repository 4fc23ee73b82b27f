"""How often the gate's default thresholds call a search's noise a regression.

    python ci/gate_noise.py BASELINE.json RUN.json [RUN.json ...]

Each RUN is a ``lossfuzz run`` report of the same code with another ``--seed``: every family x candidate x
dtype is searched anew (as when a candidate's code changes), while the boundary catalogue stays the same.
Prints, per run, how many checks fail and, per statistic, how many times it got worse beyond its default
threshold (the gate's own :func:`harness.gate.check_run`, without replay slack). The README's figures for the
gate's defaults come from this script.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from harness.gate import check_run
from harness.reports.json_report import load_json


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    base = load_json(Path(argv[0]).read_text(), argv[0])
    for path in argv[1:]:
        result = check_run(base, load_json(Path(path).read_text(), path))
        by_statistic: collections.Counter = collections.Counter()
        for check in result.checks:
            for c in check.worse:
                by_statistic[c.statistic] += 1
        failed = len(result.failures)
        only_max = sum(1 for c in result.checks if any(w.statistic == "max_ulp" for w in c.worse)
                       or c.status == "missing")
        print(f"{path}: {failed} of {len(result.checks)} checks fail ({only_max} on max ULP alone, the rule before);"
              f" by statistic: {dict(by_statistic.most_common())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
