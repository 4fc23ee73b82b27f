"""``lossfuzz sweep FAMILY --candidate NAME[,NAME...] --dtype D --labels hard|all [--bits START:STOP]
[--quantities loss,gradient] [--workers N] [--scheduler ADDRESS] [--resume] --out DIR``: score candidates on every
bit pattern of the swept input (:mod:`harness.exhaustive`), on all local cores or a Dask cluster's workers,
journalled chunk by chunk; writes the reports of ``run``,
the error-vs-bit-pattern plot (in report.html) and a small summary."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any

from ..journal import JsonLines
from ..options import add_options, reading_input, resolve

__all__ = ["add_parser", "JOURNAL_NAME", "SUMMARY_NAMES"]

JOURNAL_NAME = "sweep-journal.jsonl"
SUMMARY_NAMES = ("summary.json", "summary.md")
_VERSION = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    import oracles

    p = sub.add_parser(
        "sweep",
        help="score candidates on every bit pattern of the input (exhaustive), on all cores",
        description="Exhaustive sweep: every bit pattern of the logit (probability for binary_ce; rows [x, 0] for"
        " the softmax families) crossed with the labels, scored against the exact oracle in chunks of 2**20 cases"
        " that are journalled (--resume after a kill). Writes report.json, report.md, report.html (with the error"
        " against the bit pattern), summary.json and summary.md into --out.",
    )
    p.add_argument("family", help=f"one of: {oracles.family_names()}")
    add_options(p, "sweep")
    p.set_defaults(handler=_sweep)


class _Journal(JsonLines):
    """``OUT/sweep-journal.jsonl``: a header with the sweep's settings, then one finished chunk per line
    (:class:`harness.journal.JsonLines`: flushed and fsync'ed), so that a killed sweep resumes with ``--resume``."""

    def __init__(self, path: Path, settings: dict[str, Any], fresh: bool) -> None:
        super().__init__(path, {"lossfuzz_sweep_journal": _VERSION, "settings": settings}, fresh)

    def chunk(self, result: Any) -> None:
        self._write({"chunk": result.to_json()})


def _differences(journal: Any, given: dict[str, Any]) -> str:
    """What differs between a journal's settings and this sweep's, as ``key: journal's value, not given
    value`` for each key (candidates name the order: a sweep's figures are listed in it)."""
    if not isinstance(journal, dict):
        return "the journal has none"
    keys = [k for k in given if journal.get(k) != given[k]] + [k for k in journal if k not in given]
    return "; ".join(f"{k}: {_setting_text(journal.get(k))}, not {_setting_text(given.get(k))}" for k in keys)


def _setting_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _read_journal(path: Path, settings: dict[str, Any]) -> dict:
    """The finished chunks of ``path``, written by a sweep with the same settings; one-line errors."""
    from .._files import parse_json, read_text
    from ..exhaustive import ChunkResult

    if not path.exists():
        raise ValueError(f"nothing to resume: {path} does not exist; run without --resume")
    lines = read_text(path, f"journal {path}").split("\n")[:-1]  # after the last newline: a cut record
    done = {}
    for number, line in enumerate(lines, start=1):
        record = parse_json(line, f"journal {path} line {number}", "delete it and run without --resume")
        if number == 1:
            if not isinstance(record, dict) or record.get("lossfuzz_sweep_journal") != _VERSION:
                raise ValueError(f"journal {path} has no lossfuzz sweep header; delete it and run without --resume")
            if record.get("settings") != settings:
                differ = _differences(record.get("settings"), settings)
                raise ValueError(f"journal {path} was written with other settings ({differ}); resume with the same"
                                 " options or run without --resume")
            continue
        try:
            result = ChunkResult.from_json(record["chunk"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"journal {path} line {number} is not a chunk record ({type(exc).__name__}); delete it"
                             " and run without --resume") from None
        done[(result.start, result.stop)] = result
    if not lines:
        raise ValueError(f"journal {path} is empty; run without --resume")
    return done


def _sweep(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .._executors import executor_for_options
    from .._records import RunResult
    from ..exhaustive import parse_bits, plan_sweep, run_sweep, summary
    from ..progress import counting_bar, stop_on_signals
    from ..provenance import provenance
    from ..reports.sweep_report import summary_markdown
    from .run import locked_out, write_reports

    options = resolve("sweep", args)
    family, dtype, labels = args.family, options["dtype"], options["labels"]
    candidates = list(options["sweep_candidates"])
    with reading_input():
        bits = parse_bits(options["bits"], dtype) if options["bits"] is not None else None
        plan = plan_sweep(family, dtype, labels, candidates, bits, quantities=options["quantities"])
    out = locked_out(options["out"])
    quantities = list(plan[0].quantities)
    settings = {"family": family, "dtype": dtype, "labels": labels, "candidates": candidates,
                "bits": [plan[0].start, plan[-1].stop], "chunks": len(plan), "quantities": quantities}
    journal_path = out / JOURNAL_NAME
    done = {}
    if options["resume"]:
        with reading_input():
            done = _read_journal(journal_path, settings)
    console = Console(stderr=True)
    total = sum(c.stop - c.start for c in plan)
    began = time.perf_counter()
    # connect (or start the local workers) before the journal is opened: a scheduler that does not answer
    # leaves an earlier journal as it was
    with executor_for_options(options) as pool:
        journal = _Journal(journal_path, settings, fresh=not options["resume"])
        try:
            with counting_bar(console, total, "patterns", enabled=options["progress"]) as advance, \
                    stop_on_signals() as stop:
                advance(sum(r.stop - r.start for r in done.values()))
                result = run_sweep(plan, pool, journal=journal.chunk, progress=lambda r: advance(r.stop - r.start),
                                   done=done, stop=stop)
        finally:
            journal.close()
    result.wall_seconds = time.perf_counter() - began
    command = shlex.join(["lossfuzz", "sweep", family, "--candidate", ",".join(candidates), "--dtype", dtype, "--labels",
                          labels, *(["--bits", options["bits"]] if options["bits"] else []), "--quantities",
                          ",".join(quantities), "--out", str(options["out"])])
    origin = provenance(0)
    facts = summary(result, command, origin)
    # the wall time is this run's: say how much of the sweep an earlier run did
    facts["chunks_from_journal"] = len(done)
    run = RunResult(partial=result.partial, settings={"sweep": settings}, provenance=origin,
                    wall_seconds=result.wall_seconds, scores=tuple(result.scores), sweep=result.to_json())
    also = {"summary.json": json.dumps(facts, indent=1, allow_nan=False) + "\n", "summary.md": summary_markdown(facts)}
    paths = write_reports(run, out, also)
    console.print(summary_markdown(facts), markup=False, highlight=False, soft_wrap=True)
    if result.partial:
        console.print(f"[bold yellow]interrupted after {result.chunks} of {result.planned} chunks: wrote partial reports"
                      f" {', '.join(str(p) for p in paths)}; finish with the same command and --resume[/]")
        return 130
    journal.close(remove=True)
    console.print(f"wrote {', '.join(str(p) for p in paths)} and {', '.join(also)} in {result.wall_seconds:.1f} s")
    return 0
