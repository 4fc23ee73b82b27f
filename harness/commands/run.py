"""``lossfuzz run``: the main job. Fuzz every chosen candidate, write report.json/.md/.html and the corpus."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from ..options import Settings, add_options, reading_input, resolve, settings
from ..outcomes import tally_outcomes

__all__ = ["add_parser", "write_reports", "read_corpus", "writable_dir", "locked_out"]


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
    from .._files import read_text
    from ..corpus import corpus_from_json

    corpus: dict = {}
    if not folder.is_dir():
        return corpus
    for path in sorted(folder.glob("*.json")):
        with reading_input():
            family, dtype, examples = corpus_from_json(read_text(path, f"corpus file {path}"), str(path))
        corpus[(family, dtype)] = examples
    return corpus


def writable_dir(path: str | Path) -> Path:
    """``path`` created if needed and checked writable; a one-line :class:`UsageError` otherwise."""
    from .._files import ensure_writable_dir

    with reading_input():
        return ensure_writable_dir(path)


def locked_out(path: str | Path) -> Path:
    """The ``--out`` folder (as :func:`writable_dir`), locked for this command: a second run on it fails in
    one line naming the folder and the holder's pid, without touching its files."""
    from .._files import lock_folder

    out = writable_dir(path)
    with reading_input():
        lock_folder(out)
    return out


def write_reports(result, out: Path, also: dict[str, str] | None = None) -> list[Path]:
    """Render every report kind and write them, with ``also`` (path in ``out`` -> text: the corpus), into
    ``out`` as one set swapped in whole; SIGINT or SIGTERM while rendering abandons the set (the previous
    one stays), while swapping finishes it (:func:`harness._files.abandon_on_signals`)."""
    from .._files import abandon_on_signals, write_set
    from ..reports import WRITERS, render

    with abandon_on_signals():
        texts = {name: render(result, kind) for kind, (name, _path) in WRITERS.items()}
        paths = write_set(out, {**texts, **(also or {})})
    return paths[:len(texts)]


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..campaign import cell_count, run_campaign
    from ..corpus import corpus_file_name, corpus_to_json
    from ..journal import JOURNAL_NAME, Journal, corpus_fingerprint, read_journal
    from ..progress import progress_bar, stop_on_signals

    options = resolve("run", args)
    out = locked_out(options["out"])
    corpus_dir = out / "corpus"
    corpus = read_corpus(corpus_dir) if options["use_corpus"] else {}
    chosen = settings(Settings, "run", args)
    fingerprint = corpus_fingerprint(corpus)
    journal_path = out / JOURNAL_NAME
    resume = None
    if options["resume"]:
        with reading_input():
            resume = read_journal(journal_path, chosen.to_json(), fingerprint)
    # Connected before the journal is opened: a scheduler that cannot be reached leaves an earlier journal whole.
    cluster = contextlib.ExitStack()
    executor = None
    # local processes only when there is more than one cell to share out (a one-cell run gains nothing from a pool)
    workers = min(options["workers"] or os.cpu_count() or 1, cell_count(chosen))
    if options["scheduler"] is not None or workers > 1:
        from .._executors import executor_for

        executor = cluster.enter_context(executor_for(options["scheduler"], workers))
    journal = Journal(journal_path, chosen.to_json(), fingerprint, fresh=resume is None)
    console = Console(stderr=True)
    with cluster, progress_bar(console, enabled=options["progress"]) as bar, stop_on_signals() as stop:
        hooks = bar.hooks(scored=journal.scored, swept=journal.swept, mapped=journal.mapped, stop=stop)
        result, new_corpus = run_campaign(chosen, corpus, hooks, resume=resume, executor=executor)
        if result.partial and executor is not None:
            from .._executors import abandon

            abandon(executor)  # the cells still running would be dropped: do not wait for them
        bar.finish()
    # Only a finished run updates the corpus (a resumed run must start from the same one); it goes in with
    # the reports, as one set.
    also = {} if result.partial or not options["use_corpus"] else {
        f"corpus/{corpus_file_name(family, dtype)}": corpus_to_json(family, dtype, examples)
        for (family, dtype), examples in new_corpus.items()}
    try:
        paths = write_reports(result, out, also)
    finally:
        journal.close()
    if result.partial:
        _summary(console, result)
        console.print(f"[bold yellow]interrupted: wrote partial reports {', '.join(str(p) for p in paths)};"
                      f" finish with the same command and --resume[/]")
        return 130
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
    for s in (s for s in result.scores if s.quantity == "loss"):
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


