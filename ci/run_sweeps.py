"""Run the committed sweeps of ``reports/sweeps/``: for each family and dtype, ``lossfuzz sweep`` over every
available per-example candidate (hard-labels-only and reduced ones cannot be swept), then copy its small
``summary.json``/``summary.md`` (with the command's whole wall time and the load average) to
``reports/sweeps/FAMILY-DTYPE-LABELS/``.

Usage::

    python ci/run_sweeps.py [LABELS [FAMILIES [DTYPES [CANDIDATES [QUANTITIES]]]]]   # comma lists; default:
    python ci/run_sweeps.py hard sigmoid_ce,binary_ce,softmax_ce,sparse_softmax_ce float16,bfloat16 all loss,gradient

(``all`` for CANDIDATES: every available one.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness.candidates import candidates

ROOT = Path(__file__).resolve().parents[1]


def sweepable(family: str, dtype: str) -> list[str]:
    """The candidates a sweep of ``family`` in ``dtype`` takes here: per-example ones that take every label
    and ``dtype``, whose library is installed."""
    return [c.name for c in candidates(family) if c.reduction == "none" and c.labels == "all" and c.available()
            and dtype in c.dtypes]


def main(argv: list[str]) -> int:
    labels = argv[0] if argv else "hard"
    families = argv[1].split(",") if len(argv) > 1 else ["sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce"]
    dtypes = argv[2].split(",") if len(argv) > 2 else ["float16", "bfloat16"]
    only = argv[3].split(",") if len(argv) > 3 and argv[3] != "all" else None
    quantities = argv[4] if len(argv) > 4 else "loss,gradient"
    for family in families:
        for dtype in dtypes:
            names = [n for n in sweepable(family, dtype) if only is None or n in only]
            out = Path(f"/tmp/sweeps/{family}-{dtype}-{labels}")
            shutil.rmtree(out, ignore_errors=True)
            command = [sys.executable, "-m", "harness.cli", "sweep", family, "--candidate", ",".join(names), "--dtype",
                       dtype, "--labels", labels, "--quantities", quantities, "--out", str(out), "--no-progress"]
            began = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            wall = time.perf_counter() - began
            print(family, dtype, labels, done.returncode, f"{wall:.1f} s", flush=True)
            if done.returncode != 0:
                print(done.stderr[-2000:], flush=True)
                continue
            dest = ROOT / "reports" / "sweeps" / f"{family}-{dtype}-{labels}"
            dest.mkdir(parents=True, exist_ok=True)
            facts = json.loads((out / "summary.json").read_text())
            facts["command_wall_seconds"] = round(wall, 1)  # the whole command: worker start, imports, reports
            facts["load_average"] = round(os.getloadavg()[0], 1)
            (dest / "summary.json").write_text(json.dumps(facts, indent=1) + "\n")
            shutil.copy(out / "summary.md", dest / "summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
