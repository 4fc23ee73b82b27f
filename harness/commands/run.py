"""``lossfuzz run``: the main job. Fuzz every chosen candidate, write report.json/.md/.html and the corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import Settings, add_options, reading_input, resolve, settings
from ..outcomes import tally_outcomes

__all__ = ["add_parser", "write_reports", "read_corpus", "writable_dir"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="fuzz every built-in candidate against the exact oracle and write reports",
        description="Score candidates of every loss family in every dtype against the exact oracle: boundary"
        " catalogue, corpus replay, Hypothesis search with target(), shrinking, timing. Writes report.json,"
        " report.md and report.html into --out, and keeps the worst cases in --out/corpus for the next run.",
    )
    add_options(p, "run")
    p.set_defaults(handler=_run)


def read_corpus(folder: Path) -> dict:
    """The corpus files in ``folder`` (none: empty); a damaged file is a one-line :class:`UsageError` naming it."""
    from ..corpus import corpus_from_json

    corpus: dict = {}
    if not folder.is_dir():
        return corpus
    for path in sorted(folder.glob("*.json")):
        with reading_input():
            family, dtype, examples = corpus_from_json(path.read_text(encoding="utf-8"), str(path))
        corpus[(family, dtype)] = examples
    return corpus


def writable_dir(path: str | Path) -> Path:
    """``path`` created if needed and checked writable; a one-line :class:`UsageError` otherwise."""
    from .._files import ensure_writable_dir

    with reading_input():
        return ensure_writable_dir(path)


def write_reports(result, out: Path) -> list[Path]:
    """Render every report kind and write each atomically into ``out``."""
    from .._files import write_atomic
    from ..reports import WRITERS, render

    return [write_atomic(out / name, render(result, kind)) for kind, (name, _path) in WRITERS.items()]


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .._files import write_atomic
    from ..campaign import run_campaign
    from ..corpus import corpus_file_name, corpus_to_json
    from ..journal import JOURNAL_NAME, Journal, corpus_fingerprint, read_journal
    from ..progress import progress_bar, stop_on_signals

    options = resolve("run", args)
    out = writable_dir(options["out"])
    corpus_dir = out / "corpus"
    corpus = read_corpus(corpus_dir) if options["use_corpus"] else {}
    chosen = settings(Settings, "run", args)
    fingerprint = corpus_fingerprint(corpus)
    journal_path = out / JOURNAL_NAME
    resume = None
    if options["resume"]:
        with reading_input():
            resume = read_journal(journal_path, chosen.to_json(), fingerprint)
    journal = Journal(journal_path, chosen.to_json(), fingerprint, fresh=resume is None)
    console = Console(stderr=True)
    with progress_bar(console, enabled=options["progress"]) as bar, stop_on_signals() as stop:
        hooks = bar.hooks(scored=journal.scored, swept=journal.swept, mapped=journal.mapped, stop=stop)
        result, new_corpus = run_campaign(chosen, corpus, hooks, resume=resume)
        bar.finish()
    paths = write_reports(result, out)
    if result.partial:
        journal.close()
        _summary(console, result)
        console.print(f"[bold yellow]interrupted: wrote partial reports {', '.join(str(p) for p in paths)};"
                      f" finish with the same command and --resume[/]")
        return 130
    if options["use_corpus"]:  # only a finished run updates the corpus (a resumed run must start from the same one)
        writable_dir(corpus_dir)
        for (family, dtype), examples in new_corpus.items():
            write_atomic(corpus_dir / corpus_file_name(family, dtype), corpus_to_json(family, dtype, examples))
    journal.close(remove=True)
    _summary(console, result)
    console.print(f"wrote {', '.join(str(p) for p in paths)} in {result.wall_seconds:.1f} s")
    return 0


def _summary(console, result) -> None:
    from rich.table import Table

    table = Table(title="lossfuzz: max ULP error per candidate (nan/inf: non-finite results where the exact loss is finite)")
    dtypes = list(dict.fromkeys(s.dtype for s in result.scores))
    table.add_column("family")
    table.add_column("candidate")
    for d in dtypes:
        table.add_column(d, justify="right")
    rows: dict = {}
    for s in result.scores:
        rows.setdefault((s.family, s.candidate), {})[s.dtype] = s
    for (family, candidate), by_dtype in rows.items():
        cells = []
        for d in dtypes:
            s = by_dtype.get(d)
            cells.append(_cell(s))
        table.add_row(family, candidate, *cells)
    console.print(table)


def _cell(s) -> str:
    if s is None:
        return ""
    if s.unsupported:
        return "unsupported"
    if s.failure and s.max_ulp is None:
        return "failed"
    text = "-" if s.max_ulp is None else f"{s.max_ulp:.3g}"
    bad = tally_outcomes(s).non_finite  # all six non-finite mistakes (it once counted three)
    return f"{text} ({bad} nan/inf)" if bad else text


