"""Report sections defined once: what a section says (title, columns, rows, items), built from a result;
the Markdown and HTML writers only render it (:mod:`harness.reports.markdown`, :mod:`harness.reports.html`).

Text is plain here; each writer escapes it for its format. A :class:`Span` is a piece of inline text
with a style (``text``, ``name``: an identifier, ``code``, ``strong``, ``muted``, ``values``: a list of
hex values the writer shortens to what fits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import oracles
from harness._records import NON_FINITE_MISTAKES, RegimeScore, RunResult, Score
from harness._values import fmt_ulp
from harness.auditing import AuditVerdict, verdicts

from ._common import (GRADIENT_COUNTS, OTHER_NON_FINITE, by_family, case_error, count, fmt_bits, fmt_speed, has_gradients,
                      labels_note, missing_gradients, ordered_unique, verdict)

__all__ = ["Span", "Cell", "Column", "Table", "Item", "Section", "SCORE_COLUMNS", "GRADIENT_COLUMNS", "score_table",
           "GRADIENT_LEAD", "gradient_section", "ALL_REGIMES", "regime_matrix", "regime_sections", "audit_sections"]


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


# The gradient table: the loss table's columns and, after the non-finite ones, the counts only a gradient has.
_AFTER_NON_FINITE = SCORE_COLUMNS.index(Column("other non-finite", True)) + 1
GRADIENT_COLUMNS: tuple[Column, ...] = (SCORE_COLUMNS[:_AFTER_NON_FINITE]
                                        + tuple(Column(words, True) for words in GRADIENT_COUNTS.values())
                                        + SCORE_COLUMNS[_AFTER_NON_FINITE:])


def _over_one(value: float | None) -> bool:
    return value is not None and not value <= 1


def _score_row(s: Score) -> tuple[Cell, ...]:
    v = verdict(s)
    notes = [n for n in ("" if s.reduction in ("", "none") else s.reduction, labels_note(s)) if n]
    name = (Span(s.candidate, "name"),) + ((Span(f" ({', '.join(notes)})", "muted"),) if notes else ())
    counts = [count(s, (k,)) for k in ("nan", "inf", "finite_where_infinite")]
    counts += [count(s, OTHER_NON_FINITE)]
    counts += [count(s, (k,)) for k in GRADIENT_COUNTS] if s.quantity == "gradient" else []
    counts += [count(s, ("flushed_subnormal",)), count(s, ("raised",))]
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
    """The summary table of one family's scores of one quantity: one row per candidate x dtype,
    :data:`SCORE_COLUMNS` (:data:`GRADIENT_COLUMNS` for gradient rows)."""
    gradient = any(s.quantity == "gradient" for s in scores)
    return Table(GRADIENT_COLUMNS if gradient else SCORE_COLUMNS, tuple(_score_row(s) for s in scores))


GRADIENT_LEAD = (
    "The gradient with respect to the inputs (logits; probabilities for binary_ce), each component against the"
    " exact, correctly rounded gradient: ULP figures and bits are per component (a reduced candidate's gradient"
    " is that of its sum or mean). Zero where nonzero: ±0 where the exact gradient rounds to a nonzero normal"
    " number (a vanishing gradient: training stops learning there); wrong sign: a finite nonzero component of"
    " the opposite sign. Bold: above 1 ULP, or a count that is not 0.")


def gradient_section(result: RunResult, family: str, scores: Sequence[Score], lead: bool = True) -> Section | None:
    """The gradient table of one family (``scores``: its gradient rows), with :data:`GRADIENT_LEAD` when
    ``lead``, and an item naming each candidate without a gradient and why (its ``gradient_note``); None for
    a run that did not score gradients."""
    if not has_gradients(result, family):
        return None
    missing = missing_gradients(result, family)
    items = (Item("no gradient", tuple((Span(name, "name"), text(f": {note}")) for name, note in missing)),) if missing else ()
    return Section((Span(family, "name"), text(": gradient")), lead=GRADIENT_LEAD if lead else "", items=items,
                   table=score_table(scores) if scores else None)


# ------------------------------------------------------------------------------------------ regime matrix

ALL_REGIMES = "all"  # the pseudo-regime of the whole score


def _regime_cell(block: Score | RegimeScore | None) -> Cell:
    """A matrix cell: the max ULP, or the count of non-finite mistakes first when there are any, and the
    flushed subnormals; hot above 1 ULP or with a non-finite mistake; the rest in the tooltip."""
    if block is None:
        return Cell((Span("—", "muted"),))
    non_finite = count(block, NON_FINITE_MISTAKES)
    flushed = count(block, ("flushed_subnormal",))
    body = f"{non_finite} non-finite" + (f", max {fmt_ulp(block.max_ulp)}" if block.max_ulp is not None else "") \
        if non_finite else fmt_ulp(block.max_ulp)
    if flushed:
        body += f" ({flushed} flushed)"
    gradient = [f"{count(block, (key,))} {words}" for key, words in GRADIENT_COUNTS.items() if count(block, (key,))]
    if gradient:  # a gradient's vanishing or wrong-sign components (never on a loss)
        body += f" ({', '.join(gradient)})"
    title = (f"{block.examples} examples; max {fmt_ulp(block.max_ulp)} ULP, p99 {fmt_ulp(block.p99_ulp)},"
             f" mean bits {fmt_bits(block.mean_bits)}; {non_finite} non-finite, {flushed} flushed subnormals")
    return Cell((text(body),), hot=non_finite > 0 or bool(gradient) or _over_one(block.max_ulp), title=title)


def regime_matrix(scores: Sequence[Score]) -> Table | None:
    """One family's candidate x regime matrix: a row per scored candidate x dtype (dtypes in run order,
    candidates in run order within each), a column per regime (the union of the rows' regimes, in the
    family's order) and ``all`` (the whole score); each cell :func:`_regime_cell`. None when no score has
    per-regime figures (a report written before them)."""
    rows = [s for s in scores if not s.unsupported and s.examples and s.regimes]
    if not rows:
        return None
    names = ordered_unique(name for s in rows for name in s.regimes)
    dtypes = {d: i for i, d in enumerate(ordered_unique(s.dtype for s in rows))}
    rows.sort(key=lambda s: dtypes[s.dtype])  # stable: candidates keep their order within a dtype
    columns = (Column("dtype"), Column("candidate")) + tuple(Column(n, True) for n in names) + (Column(ALL_REGIMES, True),)
    table_rows = []
    for s in rows:
        notes = [n for n in ("" if s.reduction in ("", "none") else s.reduction, labels_note(s)) if n]
        name = (Span(s.candidate, "name"),) + ((Span(f" ({', '.join(notes)})", "muted"),) if notes else ())
        table_rows.append((Cell((text(s.dtype),)), Cell(name, title=s.source),
                           *(_regime_cell(s.regimes.get(n)) for n in names), _regime_cell(s)))
    return Table(columns, tuple(table_rows))


def _regime_legend(families: Sequence[str]) -> str:
    docs: dict[str, str] = {}
    for family in families:
        try:
            declared = oracles.get_family(family).regimes
        except (KeyError, ValueError):  # a family this lossfuzz does not know (a report from elsewhere)
            continue
        for r in declared:
            docs.setdefault(r.name, r.doc)
    return "; ".join(f"{name}: {doc}" for name, doc in docs.items())


def regime_sections(result: RunResult) -> list[Section]:
    """The candidate x regime matrices, one per family and quantity (:func:`regime_matrix`: the loss's, then
    the gradient's), the first with the legend; none for a report without per-regime figures. The reports
    lead with them."""
    out = []
    for family, scores in by_family(result):
        for quantity in ("loss", "gradient"):
            table = regime_matrix([s for s in scores if s.quantity == quantity])
            if table is not None:
                out.append((family, quantity, table))
    if not out:
        return []
    lead = ("Max ULP error per regime (each family's documented partition of its examples; all = the whole"
            " score). A cell with non-finite mistakes shows their count first; flushed: nonzero subnormal results"
            " returned as 0. Bold: above 1 ULP or non-finite. Regimes: " + _regime_legend([f for f, _, _ in out]) + ".")
    return [Section((Span(family, "name"), text(" by regime" if quantity == "loss" else " gradient by regime")),
                    lead=lead if i == 0 else "", table=table)
            for i, (family, quantity, table) in enumerate(out)]


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
