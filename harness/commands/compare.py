"""``lossfuzz compare A.json B.json [C.json ...]``: reports side by side, marking regressions and improvements.

The rules are in :mod:`harness.comparison`, the three formats in :mod:`harness.reports.comparison`; this
module reads the reports, prints the table or writes it to ``--out`` (atomically), and sets the exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..options import UsageError, add_options, reading_input, resolve

__all__ = ["add_parser", "EXIT_SAME", "EXIT_REGRESSION"]

EXIT_SAME, EXIT_REGRESSION = 0, 1

_DESCRIPTION = """\
Put two or more report.json files side by side: one row per family x candidate x dtype x regime (regime "all"
is the whole score; the per-regime rows come from reports that have them), with per report the max ULP, p99
ULP, mean bits of error and non-finite mistakes, and per later report its delta against the first (A).
Worse: a max or p99 ULP figure above max(FACTOR x A, 1 ULP) (or gone: every value non-finite), mean bits up
by more than 1, non-finite mistakes where A had none or their share of the examples up FACTOR x, or a row A
scored that is no longer scored. Better: the reverse. A row with anything worse is a regression; with
something better and nothing worse, an improvement. Rows absent from a report are shown as missing.
Use cases: one library version against another, before and after a patch, one library against another."""

_EPILOG = """\
exit codes: 0 no regression marked, 1 at least one regression marked (the table is written either way),
2 bad input (a missing file, not a lossfuzz report, a newer schema, fewer than 2 reports), 3 internal error.

examples:
  lossfuzz compare old/report.json new/report.json                     # Markdown on standard output
  lossfuzz compare tf220.json tf221.json --format html --out compare.html
  lossfuzz compare a.json b.json c.json --format latex --out table.tex"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="reports side by side with deltas against the first; exit 1 when a regression is marked",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("reports", nargs="*", metavar="REPORT", help="report.json files (two or more); the first is the base")
    add_options(p, "compare")
    p.set_defaults(handler=_compare)


def read_report(path: str):
    """A report from ``path``; a one-line ``ValueError`` naming the file when it is missing, a folder,
    unreadable, not a lossfuzz report, or of a newer schema."""
    from .._files import read_text
    from ..reports.json_report import load_json

    p = Path(path)
    if not p.exists():
        raise ValueError(f"report {path} does not exist; pass the report.json of a lossfuzz run")
    if p.is_dir():
        hint = f"; pass {p / 'report.json'}" if (p / "report.json").exists() else ""
        raise ValueError(f"report {path} is a folder{hint}")
    # the one safe reader: a regular file of bounded size, UTF-8 (never /dev/zero or a FIFO)
    return load_json(read_text(p, f"report {path}"), f"report {path}")


def _compare(args: argparse.Namespace) -> int:
    from .._files import write_atomic
    from ..comparison import compare_reports
    from ..reports.comparison import RENDERERS

    options = resolve("compare", args)
    if len(args.reports) < 2:
        raise UsageError(f"compare needs at least 2 report.json files, got {len(args.reports)};"
                         " e.g. lossfuzz compare old/report.json new/report.json")
    with reading_input():
        results = [read_report(path) for path in args.reports]
    table = compare_reports(results, args.reports, options["max_ulp_regression"])
    text = RENDERERS[options["format"]](table)
    if options["out"]:
        with reading_input():
            write_atomic(Path(options["out"]), text)
        print(f"wrote {options['out']}: {table.regressions} regressions, {table.improvements} improvements", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_REGRESSION if table.regressions else EXIT_SAME
