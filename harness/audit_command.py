"""``lossfuzz audit SPEC [SPEC ...] --family F``: score third-party losses like built-in candidates, with verdicts.

Writes report.json (with an ``audit`` block), report.md and report.html into ``--out`` (default
``reports/audit``) and prints the verdicts (one per SPEC, scored side by side in one run). Exit code 0
when the audit completed, whatever it found, unless ``--fail-on problems|failed`` (default ``never``)
is met by a verdict: then 1, so that an audit can gate CI; 2 for bad input (one line on stderr); 130
when interrupted by Ctrl-C or SIGTERM (partial reports, each verdict saying it stopped). An audit whose
``--budget`` ran out writes its reports and verdicts (PROBLEMS: stopped before the end) with the usual
exit code. Hypothesis keeps its files under ``--out/.hypothesis``, never in the
working directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from ._records import LABEL_SETS
from .auditing import FAIL_ON
from .options import AUDIT_OPTIONS, FUNCTION_OPTIONS, RUN_OPTIONS, add_options, candidate_list

__all__ = ["add_parser"]

_AUDIT_OUT = os.path.join("reports", "audit")


def _run_options() -> tuple:
    """--seed, --examples, --dtypes, --out and --speed-elements of ``lossfuzz run``, with audit defaults."""
    wanted = {"--seed", "--examples", "--dtypes", "--out", "--speed-elements"}
    out = []
    for o in RUN_OPTIONS:
        if o.flag not in wanted:
            continue
        if o.flag == "--out":
            o = dataclasses.replace(o, default=_AUDIT_OUT, help=f"folder for report.json, report.md and report.html (default {_AUDIT_OUT}/)")
        elif o.flag == "--speed-elements":
            o = dataclasses.replace(o, default=0, help="array size for timing the function against a memory copy; 0 (the default) skips timing")
        out.append(o)
    return tuple(out)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="fuzz a third-party loss function (module:function) against the exact oracle and report a verdict",
        description="Score any importable loss callable (numpy, TensorFlow, PyTorch, JAX) exactly like a built-in"
        " candidate: boundary catalogue, Hypothesis search, shrinking, sweeps, next to built-ins for comparison."
        " SPEC is 'package.module:function', 'package.module:Class()' (an instance made with no arguments, then"
        " called) or 'package.module:obj.method'. The function runs in a worker process with a per-call timeout"
        " and a memory limit: exceptions, hangs, crashes and wrong results are findings, and the audit goes on."
        " Writes report.json (with an 'audit' verdict block), report.md and report.html.",
    )
    p.add_argument("spec", metavar="SPEC", nargs="+", help="the loss to audit: package.module:function (or :Class(),"
                   " :obj.method); several are scored side by side, one verdict each")
    add_options(p, FUNCTION_OPTIONS)
    add_options(p, _run_options())
    add_options(p, AUDIT_OPTIONS)
    p.add_argument("--labels", dest="labels", choices=LABEL_SETS, default="all",
                   help="labels to score on: all (default), hard (0/1 only: for code that rejects soft labels, such"
                   " as scikit-learn's log_loss) or soft")
    p.add_argument("--fail-on", dest="fail_on", choices=tuple(FAIL_ON), default="never",
                   help="exit 1 when a verdict is PROBLEMS or FAILED (problems), FAILED only (failed), or never"
                   " (default: exit 0 whatever the verdict)")
    p.add_argument("--no-per-element", dest="per_element", action="store_false",
                   help="with --reduction mean|sum, skip the per-element view (one call per element on batches of one)")
    p.add_argument("--compare", dest="compare", type=candidate_list, default=None, metavar="LIST",
                   help="built-in candidates to score next to it (default numpy_stable,tf; those the family lacks"
                   " or whose library is missing are left out)")
    p.add_argument("--no-shrink", dest="shrink", action="store_false", help="skip shrinking the worst case")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hypothesis.configuration import set_hypothesis_home_dir, storage_directory

    from ._files import ensure_writable_dir
    from .auditing import DEFAULT_COMPARE, audit, failing, verdicts
    from .cli import UsageError
    from ._text import printable
    from .progress import progress_bar, stop_on_signals
    from .run_command import write_reports

    if not args.family:
        raise UsageError("pass --family: the loss family the function computes (sigmoid_ce, binary_ce, softmax_ce,"
                         " sparse_softmax_ce)")
    if len(args.family) != 1:
        raise UsageError(f"--family {','.join(args.family)}: audit one family at a time")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # `lossfuzz audit mymodule:f` finds modules of the current folder
    if args.name is not None and len(args.spec) > 1:
        raise UsageError(f"--name names one function; {len(args.spec)} SPECs were given (each is named by its spec)")
    out = ensure_writable_dir(args.out)
    err = Console(stderr=True, soft_wrap=True)
    current = storage_directory(intent_to_write=False)
    previous_home = getattr(current, "home_directory", current)  # a plain Path before hypothesis 6.13x
    set_hypothesis_home_dir(out / ".hypothesis")  # Hypothesis' caches go with the reports, not into the cwd
    try:
        with progress_bar(err, enabled=args.progress, transient=True) as bar, stop_on_signals() as stop:
            result = audit(
                args.spec,
                family=args.family[0],
                dtypes=args.dtypes,
                takes=args.takes,
                inputs=args.inputs,
                reduction=args.reduction,
                kwargs=args.kwargs,
                name=args.name,
                seed=args.seed,
                examples=args.examples,
                compare_with=args.compare if args.compare is not None else DEFAULT_COMPARE,
                timeout=args.timeout,
                memory_mb=args.memory_mb,
                speed_elements=args.speed_elements,
                shrink=args.shrink,
                progress=bar.hooks(stop=stop),
                labels=args.labels,
                per_element=args.per_element,
                budget=args.budget,
            )
            interrupted = stop()
    finally:
        set_hypothesis_home_dir(previous_home)
    paths = write_reports(result, out)
    found = verdicts(result.audit)
    console = Console(highlight=False, soft_wrap=True)
    for i, verdict in enumerate(found):
        if i:
            console.print("")
        for line in verdict.lines():
            console.print(printable(line), markup=False)  # names, messages and output of untrusted code, escaped
    err.print(f"wrote {', '.join(str(p) for p in paths)} in {result.wall_seconds:.1f} s", markup=False, highlight=False)
    if interrupted:  # Ctrl-C or SIGTERM (as `lossfuzz run`): partial reports, exit 130
        err.print("[bold yellow]interrupted: the reports are partial[/]")
        return 130
    met = failing(found, args.fail_on)
    if met:
        err.print(printable(f"--fail-on {args.fail_on}: {', '.join(f'{v.name} is {v.level.upper()}' for v in met)}"),
                  markup=False, highlight=False)
        return 1
    return 0

