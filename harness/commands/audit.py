"""``lossfuzz audit SPEC [SPEC ...] --family F``: score third-party losses like built-in candidates, with verdicts.

Writes report.json (with an ``audit`` block), report.md and report.html into ``--out`` (default
``reports/audit``) and prints the verdicts (one per SPEC, scored side by side in one run). Exit code 0
when the audit completed, whatever it found, unless ``--fail-on problems|failed`` (default ``never``)
is met by a verdict: then 1, so that an audit can gate CI; 2 for bad input (one line on stderr); 3 for
an internal error (a bug); 130 when interrupted by Ctrl-C or SIGTERM (partial reports, each verdict saying
it stopped). An audit whose ``--budget`` ran out writes its reports and verdicts (PROBLEMS: stopped before
the end) with the usual exit code. Hypothesis keeps its files under ``--out/.hypothesis``, never in the
working directory.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Iterator

import oracles

from ..options import AuditSettings, UsageError, add_options, import_from_cwd, resolve, settings
from .run import locked_out, write_reports

__all__ = ["add_parser"]


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
    add_options(p, "audit")
    p.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..auditing import audit, failing, verdicts
    from .._text import printable
    from ..progress import progress_bar, stop_on_signals

    options = resolve("audit", args)
    if options["family"] is None:
        raise UsageError(f"pass --family: the loss family the function computes ({', '.join(oracles.FAMILIES)})")
    chosen = settings(AuditSettings, "audit", args)
    import_from_cwd()  # `lossfuzz audit mymodule:f` finds modules of the current folder
    if chosen.name is not None and len(args.spec) > 1:
        raise UsageError(f"--name names one function; {len(args.spec)} SPECs were given (each is named by its spec)")
    out = locked_out(options["out"])
    err = Console(stderr=True, soft_wrap=True)
    with _hypothesis_home(out / ".hypothesis"), progress_bar(err, enabled=options["progress"], transient=True) as bar, \
            stop_on_signals() as stop:
        result = audit(args.spec, chosen, progress=bar.hooks(stop=stop))
        interrupted = stop()
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
    met = failing(found, options["fail_on"])
    if met:
        err.print(printable(f"--fail-on {options['fail_on']}: {', '.join(f'{v.name} is {v.level.upper()}' for v in met)}"),
                  markup=False, highlight=False)
        return 1
    return 0


@contextlib.contextmanager
def _hypothesis_home(folder: Path) -> Iterator[None]:
    """Hypothesis' caches go with the reports, not into the working directory (restored afterwards)."""
    from hypothesis.configuration import set_hypothesis_home_dir, storage_directory

    current = storage_directory(intent_to_write=False)
    previous = getattr(current, "home_directory", current)  # a plain Path before hypothesis 6.13x
    set_hypothesis_home_dir(folder)
    try:
        yield
    finally:
        set_hypothesis_home_dir(previous)
