"""``report.md``: a summary that fits a GitHub Actions job summary (``$GITHUB_STEP_SUMMARY``).

Title (with a PARTIAL warning for an interrupted run), one line of provenance, the candidate x regime
matrix of each family (the lead; the gradient's after the loss's), one table per family (candidate x dtype)
and, for a run that scored gradients, its gradient table (candidates without a gradient named with the
reason), then the shrunk reproducer (or worst case) of every score with a problem, each with
its replay command. Text from candidates and users is escaped for Markdown; the worst-cases section stops
at a size budget so the page stays well under GitHub's limit.
"""

from __future__ import annotations

import re

from harness._records import RunResult, Score, WorstCase
from harness._values import fmt_rel

from ._common import (
    by_family,
    case_error,
    case_where,
    fmt_ulp,
    of_quantity,
    provenance_line,
    settings_line,
    shown_case,
    tally_sentence,
    upcast_comparisons,
    verdict,
    verdict_line,
)
from .sections import Section, Span, Table, audit_sections, gradient_section, regime_sections, score_table

__all__ = ["render_markdown", "md_escape"]

# The worst-cases section stops growing past this many characters (the tables always come whole).
BUDGET = 56_000
# Inputs shown per case (the replay command always carries them all).
SHOWN_VALUES = 8

_ICONS = {"ok": "✅", "bad": "❌", "fail": "⚠️", "skip": "➖"}
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#!])")

def md_escape(text: object) -> str:
    """Text safe inside a Markdown table cell or paragraph: one line, Markdown and HTML characters escaped
    (``|`` included, so a cell never splits), ``&`` as an entity."""
    flat = " ".join(str(text).split())
    flat = flat.replace("&", "&amp;")
    return _SPECIAL.sub(lambda m: "\\" + m.group(1), flat)


def _md_name(text: object) -> str:
    """Like :func:`md_escape`, but ``_`` stays readable (GitHub does not emphasize inside words)."""
    flat = " ".join(str(text).split()).replace("&", "&amp;")
    return re.sub(r"([\\`*\[\]<>|~#!])", lambda m: "\\" + m.group(1), flat)


def _code_span(text: object) -> str:
    flat = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat else ""
    # A pipe splits a table cell even inside a code span; these spans are not in tables, but stay safe.
    return f"{fence}{pad}{flat}{pad}{fence}"


def _code_block(text: str, info: str = "sh") -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def _keep_spaces(text: str, escaped: str) -> str:
    """``escaped`` with the leading and trailing space of ``text`` kept (spans are joined as they are)."""
    if not text.strip():
        return " " if text else ""
    return (" " if text[0].isspace() else "") + escaped + (" " if text[-1].isspace() else "")


def _span(span: Span) -> str:
    if span.style == "name":
        return _keep_spaces(span.text, _md_name(span.text))
    if span.style == "code":
        return _code_span(span.text)
    if span.style == "strong":
        return f"**{md_escape(span.text)}**"
    if span.style == "values":
        return _values(span.values)
    return _keep_spaces(span.text, md_escape(span.text))


def _spans(spans: tuple[Span, ...]) -> str:
    return "".join(_span(s) for s in spans)


def render_table(table: Table) -> list[str]:
    """A section's table as Markdown lines: numeric columns right-aligned, figures that show a problem in
    bold, verdict cells with their icon."""
    out = ["| " + " | ".join(c.name for c in table.columns) + " |",
           "|" + "|".join("--:" if c.numeric else "---" for c in table.columns) + "|"]
    for row in table.rows:
        cells = []
        for cell in row:
            body = _spans(cell.spans)
            if cell.level is not None:
                body = f"{_ICONS[cell.level]} {body}"
            cells.append(f"**{body}**" if cell.hot else body)
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_section(section: Section) -> list[str]:
    """A section as Markdown lines: heading, lead paragraph, bullets for items, table, code blocks."""
    title = section.title
    icon = f"{_ICONS[section.level]} " if section.level is not None else ""  # before the subject: "Verdict: ✅ name"
    out = ["## " + _spans(title[:-1]) + icon + _span(title[-1]), ""]
    if section.lead:
        out += [md_escape(section.lead), ""]
    for item in section.items:
        out.append(f"- **{md_escape(item.label)}**: " + "; ".join(_spans(line) for line in item.lines))
    if section.items:
        out.append("")
    if section.table is not None:
        out += render_table(section.table) + [""]
    for intro, code in section.code:
        if intro:
            out += [md_escape(intro), ""]
        out += [_code_block(code), ""]
    return out


def _values(values: tuple[str, ...]) -> str:
    shown = ", ".join(values[:SHOWN_VALUES])
    more = f" … ({len(values)} values)" if len(values) > SHOWN_VALUES else ""
    return _code_span(shown) + more if values else "—"


def _case(s: Score, what: str, case: WorstCase) -> str:
    lines = [
        f"### {_md_name(s.family)} · {_md_name(s.candidate)} · {_md_name(s.dtype)}: {md_escape(verdict_line(s))}",
        "",
        f"- {what.capitalize()}: inputs {_values(case.inputs)}, labels {_values(case.labels)}",
        f"- got {_code_span(case.got)}, exact {_code_span(case.exact)} (correctly rounded {_code_span(case.rounded)}):"
        f" **{md_escape(case_error(case))}**" + (f", relative error {fmt_rel(case.rel_error)}" if case.rel_error is not None else ""),
    ]
    if s.worst and s.worst[0] != case:
        lines.append(f"- worst error seen: {md_escape(case_error(s.worst[0]))}")
    behind = [f"{md_escape(name)}: {md_escape(case_error(r.worst))} at {_code_span(case_where(r.worst))}"
              for name, r in s.regimes.items() if r.worst is not None and r.worst != case and _shows_problem(r.worst)]
    if behind:
        lines.append("- worst per regime (all in report.html and report.json, with replay commands): " + "; ".join(behind))
    lines += ["", _code_block(case.replay), ""]
    return "\n".join(lines)


def _shows_problem(case: WorstCase) -> bool:
    return case.ulp is None or case.ulp > 1


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _mixed_precision_section(result: RunResult) -> list[str]:
    """Each candidate next to its ``_upcast`` variant in float16/bfloat16: where the upcast is missing."""
    rows = upcast_comparisons(result)
    if not rows:
        return []
    out = [
        "## Mixed precision: where the upcast is missing", "",
        "Each candidate on float16/bfloat16 inputs next to its `_upcast` variant (inputs cast to float32, the loss"
        " computed there and cast back once, as Keras mixed precision does). Share: examples above 1 ULP.", "",
        "| family | dtype | candidate | share > 1 ULP | with upcast | max ULP | with upcast | computes in |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        where = {True: "❌ the half format (no upcast)", False: "✅ float32 (or as accurate)", None: "—"}[r.missing]
        name = _md_name(r.candidate) + (" (gradient)" if r.plain.quantity == "gradient" else "")
        out.append(f"| {_md_name(r.family)} | {_md_name(r.dtype)} | {name} | {_share(r.plain_share)}"
                   f" | {_share(r.upcast_share)} | {fmt_ulp(r.plain.max_ulp)} | {fmt_ulp(r.upcast.max_ulp)} | {where} |")
    return out + [""]


def render_markdown(result: RunResult) -> str:
    """The Markdown report of ``result`` (GitHub-flavoured; tables, no images)."""
    out: list[str] = ["# lossfuzz report" if not result.audit else "# lossfuzz audit", ""]
    if result.partial:
        out += [
            f"> ⚠️ **PARTIAL RESULTS**: the run was interrupted; only the {len(result.scores)} scores finished"
            " before it stopped are shown.",
            "",
        ]
    for section in audit_sections(result):
        out += render_section(section)
    out += [md_escape(provenance_line(result)), ""]
    line = settings_line(result)
    if line:
        out += [md_escape(line), ""]
    gradients = of_quantity(result.scores, "gradient")
    out += [
        f"**{tally_sentence(of_quantity(result.scores, 'loss'))}** Errors are in ULP of the exact value in the target format"
        " (0.5 = correctly rounded); ok = at most 1 ULP and no non-finite mistake. Mean bits: Herbie's bits of"
        " error. Other non-finite: nan where the exact value is infinite, the opposite infinity, or a number"
        " where it is undefined. Speed: time per element as a multiple of a memory copy.",
        "",
    ]
    if gradients:
        out += [f"**Gradient: {md_escape(tally_sentence(gradients))}** The gradient with respect to the inputs, scored"
                " component by component in the same way (its tables follow each family's loss table).", ""]
    for section in regime_sections(result):  # the lead: candidate x regime per family
        out += render_section(section)
    if not result.scores:
        out += ["_No scores: nothing was run._", ""]
    problems: list[tuple[Score, str, WorstCase]] = []
    lead = True  # the gradient sections' lead is said once
    for family, scores in by_family(result):
        losses = of_quantity(scores, "loss")
        if losses:
            out += render_section(Section((Span(family, "name"),), table=score_table(losses)))
        section = gradient_section(result, family, of_quantity(scores, "gradient"), lead)
        if section is not None:
            out += render_section(section)
            lead = False
        for s in losses + of_quantity(scores, "gradient"):
            shown = shown_case(s)
            if shown is not None and verdict(s).level in ("bad", "fail"):
                problems.append((s, *shown))
    out += _mixed_precision_section(result)
    if problems:
        out += ["## Worst cases", "", "Replay any of them with the command below it (prints the exact value and the candidate's).", ""]
        size = sum(len(x) + 1 for x in out)
        for i, (s, what, case) in enumerate(problems):
            block = _case(s, what, case)
            if size + len(block) > BUDGET:
                left = len(problems) - i
                out += [f"_{left} more score{'s' if left != 1 else ''} with problems: see report.html or report.json._", ""]
                break
            out.append(block)
            size += len(block) + 1
    return "\n".join(out).rstrip("\n") + "\n"
