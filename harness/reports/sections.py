"""Report sections defined once: what a section says (title, columns, rows, items), built from a result;
the Markdown and HTML writers only render it (:mod:`harness.reports.markdown`, :mod:`harness.reports.html`).

Text is plain here; each writer escapes it for its format. A :class:`Span` is a piece of inline text
with a style (``text``, ``name``: an identifier, ``code``, ``strong``, ``muted``, ``values``: a list of
hex values the writer shortens to what fits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness._records import RunResult, Score
from harness._values import fmt_ulp
from harness.auditing import AuditVerdict, verdicts

from ._common import OTHER_NON_FINITE, case_error, count, fmt_bits, fmt_speed, labels_note, verdict

__all__ = ["Span", "Cell", "Column", "Table", "Item", "Section", "SCORE_COLUMNS", "score_table", "audit_sections"]


@dataclass(frozen=True, slots=True)
class Span:
    """Inline text: ``text`` in ``style`` (see the module docstring); ``values`` for the ``values`` style."""

    text: str = ""
    style: str = "text"
    values: tuple[str, ...] = ()


def text(value: object) -> Span:
    return Span(str(value))


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell: its spans; ``hot``: a figure that shows a problem (bold, red); ``level``: a verdict
    level (``ok``, ``bad``, ``fail``, ``skip``) for a verdict cell; ``title``: a tooltip (HTML only)."""

    spans: tuple[Span, ...]
    hot: bool = False
    level: str | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    numeric: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True, slots=True)
class Item:
    """A labelled entry of a section (a bullet in Markdown, a row of a key-value table in HTML): ``lines``
    of spans (joined with ``; `` in Markdown, line breaks in HTML)."""

    label: str
    lines: tuple[tuple[Span, ...], ...]


@dataclass(frozen=True, slots=True)
class Section:
    """``title`` (spans) with a verdict ``level`` (or None), a ``lead`` paragraph, ``items``, a ``table``,
    and ``code`` blocks after them, each with the sentence that introduces it ("" for none)."""

    title: tuple[Span, ...]
    level: str | None = None
    lead: str = ""
    items: tuple[Item, ...] = ()
    table: Table | None = None
    code: tuple[tuple[str, str], ...] = ()


# ------------------------------------------------------------------------------------------- score tables

SCORE_COLUMNS: tuple[Column, ...] = (
    Column("candidate"),
    Column("dtype"),
    Column("examples", True),
    Column("max ULP", True),
    Column("p99 ULP", True),
    Column("mean ULP", True),
    Column("median ULP", True),
    Column("mean bits", True),
    Column("nan", True),
    Column("inf", True),
    Column("finite where inf", True),
    Column("other non-finite", True),
    Column("flushed", True),
    Column("raised", True),
    Column("speed", True),
    Column("verdict"),
)


def _over_one(value: float | None) -> bool:
    return value is not None and not value <= 1


def _score_row(s: Score) -> tuple[Cell, ...]:
    v = verdict(s)
    notes = [n for n in ("" if s.reduction in ("", "none") else s.reduction, labels_note(s)) if n]
    name = (Span(s.candidate, "name"),) + ((Span(f" ({', '.join(notes)})", "muted"),) if notes else ())
    counts = [count(s, (k,)) for k in ("nan", "inf", "finite_where_infinite")]
    counts += [count(s, OTHER_NON_FINITE), count(s, ("flushed_subnormal",)), count(s, ("raised",))]
    return (
        Cell(name, title=s.source),
        Cell((text(s.dtype),)),
        Cell((text(s.examples),)),
        Cell((text(fmt_ulp(s.max_ulp)),), hot=_over_one(s.max_ulp)),
        Cell((text(fmt_ulp(s.p99_ulp)),), hot=_over_one(s.p99_ulp)),
        Cell((text(fmt_ulp(s.mean_ulp)),)),
        Cell((text(fmt_ulp(s.median_ulp)),)),
        Cell((text(fmt_bits(s.mean_bits)),)),
        *(Cell((text(n),), hot=n > 0) for n in counts),
        Cell((text(fmt_speed(s.speed)),)),
        Cell((text(v.text),), level=v.level),
    )


def score_table(scores: Sequence[Score]) -> Table:
    """The summary table of one family's scores: one row per candidate x dtype, :data:`SCORE_COLUMNS`."""
    return Table(SCORE_COLUMNS, tuple(_score_row(s) for s in scores))


# ------------------------------------------------------------------------------------------- audit verdict


def _joined(texts: Sequence[str]) -> tuple[tuple[Span, ...], ...]:
    return tuple((text(t),) for t in texts)


def _verdict_items(v: AuditVerdict) -> list[Item]:
    items = []
    if v.convention:
        items.append(Item("convention", ((text(v.convention),),)))
    items += [Item("systematic failure", ((text(t),),)) for t in v.systematic]
    if v.per_element is not None:
        items.append(Item("per element (batches of one element)", ((text(v.per_element.summary),),)))
    if v.sweep:
        items.append(Item("along the sweeps", _joined(v.sweep)))
    if v.where:
        items.append(Item("worst cases at", _joined(v.where)))
    if v.reproducer is not None:
        r = v.reproducer
        items.append(Item(f"minimal reproducer ({v.reproducer_dtype})", ((
            text("inputs "), Span(style="values", values=r.inputs), text(", labels "),
            Span(style="values", values=r.labels), text(": got "), Span(r.got, "code"), text(", exact "),
            Span(r.exact, "code"), text(": "), Span(case_error(r), "strong")),)))
    for f in v.first_findings:
        items.append(Item(f.kind, ((text(f"{f.message} (inputs "), Span(style="values", values=f.inputs),
                                    text(", labels "), Span(style="values", values=f.labels), text(")")),)))
    if v.findings_where:
        items.append(Item("failed calls at", _joined(v.findings_where)))
    if v.best_builtin is not None:
        b = v.best_builtin
        items.append(Item("best built-in for comparison", ((Span(b.candidate, "name"),
                          text(f", max {fmt_ulp(b.max_ulp)} ULP "), Span(f"({b.source})", "muted")),)))
    return items


def verdict_section(v: AuditVerdict) -> Section:
    """The verdict on one audited function: its summary, then what it found (see AuditVerdict.lines)."""
    code: tuple[tuple[str, str], ...] = ()
    if v.reproducer is not None:
        intro = f"Replay: not available ({v.replay_note}); the exact value:" if v.replay_note else ""
        code = ((intro, v.reproducer.replay),)
    level = {"ok": "ok", "bad": "bad"}.get(v.level, "fail")
    return Section((text("Verdict: "), Span(v.name, "name")), level, v.summary, tuple(_verdict_items(v)), None, code)


def audit_sections(result: RunResult) -> list[Section]:
    """The verdicts of ``lossfuzz audit`` (the ``audit`` block), first on the page; none for a plain run;
    a block that cannot be read shows its summary only."""
    if not result.audit:
        return []
    try:
        found = verdicts(result.audit)
    except (KeyError, TypeError, ValueError, AttributeError):
        return [Section((text("Verdict"),), None, str(result.audit.get("summary", "unreadable audit block")))]
    return [verdict_section(v) for v in found]
