"""The HTML report's share of a run's wall time (issue 10's figure: under 20%).

Usage::

    lossfuzz run --out /tmp/x --no-progress
    python ci/render_share.py /tmp/x/report.json [REPEATS]

Renders ``report.html`` from the run's ``report.json`` REPEATS times (default 3, after loading the report and
importing matplotlib) and prints the best wall and CPU seconds, and the wall time over the run's own
``wall_seconds`` (the campaign, as recorded in the report). CPU seconds are the steadier figure on a shared
machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(path: str, repeats: int = 3) -> None:
    from harness.reports.html import render_html
    from harness.reports.json_report import load_json

    result = load_json(Path(path).read_text(encoding="utf-8"), path)
    wall, cpu = [], []
    for _ in range(repeats):
        started, used = time.perf_counter(), time.process_time()
        page = render_html(result)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    print(f"report.html: {min(wall):.2f} s wall, {min(cpu):.2f} s CPU (best of {repeats}), {len(page) / 1e6:.2f} MB;"
          f" the run took {result.wall_seconds:.1f} s: {100 * min(wall) / result.wall_seconds:.1f}% of it")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 3)
