"""``report.md``: a summary that fits a GitHub Actions job summary (``$GITHUB_STEP_SUMMARY``).

Title (with a PARTIAL warning for an interrupted run), one line of provenance, one table per family
(candidate x dtype), then the shrunk reproducer (or worst case) of every score with a problem, each with
its replay command. Text from candidates and users is escaped for Markdown; the worst-cases section stops
at a size budget so the page stays well under GitHub's limit.
"""

from __future__ import annotations

import re
from typing import Any

from harness._records import RunResult, Score, WorstCase

from ._common import (
    OTHER_NON_FINITE,
    by_family,
    case_error,
    fmt_bits,
    fmt_speed,
    fmt_ulp,
    non_finite,
    provenance_line,
    settings_line,
    shown_case,
    labels_note,
    tally,
    upcast_comparisons,
    verdict,
)

__all__ = ["render_markdown", "md_escape"]

# The worst-cases section stops growing past this many characters (the tables always come whole).
BUDGET = 56_000
# Inputs shown per case (the replay command always carries them all).
SHOWN_VALUES = 8

_ICONS = {"ok": "✅", "bad": "❌", "fail": "⚠️", "skip": "➖"}
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#!])")

COLUMNS = (
    ("candidate", "---"),
    ("dtype", "---"),
    ("examples", "--:"),
    ("max ULP", "--:"),
    ("p99 ULP", "--:"),
    ("mean bits", "--:"),
    ("nan", "--:"),
    ("inf", "--:"),
    ("finite where inf", "--:"),
    ("other non-finite", "--:"),
    ("flushed", "--:"),
    ("raised", "--:"),
    ("speed", "--:"),
    ("verdict", "---"),
)


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


def _count(n: int) -> str:
    return f"**{n}**" if n else "0"


def _row(s: Score) -> str:
    v = verdict(s)
    notes = [n for n in ("" if s.reduction in ("", "none") else s.reduction, labels_note(s)) if n]
    name = _md_name(s.candidate) + (f" ({_md_name(', '.join(notes))})" if notes else "")
    c = lambda key: int(s.counts.get(key, 0) or 0)  # noqa: E731
    cells = [
        name,
        _md_name(s.dtype),
        str(s.examples),
        fmt_ulp(s.max_ulp),
        fmt_ulp(s.p99_ulp),
        fmt_bits(s.mean_bits),
        _count(c("nan")),
        _count(c("inf")),
        _count(c("finite_where_infinite")),
        _count(non_finite(s, OTHER_NON_FINITE)),
        _count(c("flushed_subnormal")),
        _count(c("raised")),
        fmt_speed(s.speed),
        f"{_ICONS[v.level]} {md_escape(v.text)}",
    ]
    return "| " + " | ".join(cells) + " |"


def _values(values: tuple[str, ...]) -> str:
    shown = ", ".join(values[:SHOWN_VALUES])
    more = f" … ({len(values)} values)" if len(values) > SHOWN_VALUES else ""
    return _code_span(shown) + more if values else "—"


def _case(s: Score, what: str, case: WorstCase) -> str:
    v = verdict(s)
    lines = [
        f"### {_md_name(s.family)} · {_md_name(s.candidate)} · {_md_name(s.dtype)}: {md_escape(v.text)}",
        "",
        f"- {what.capitalize()}: inputs {_values(case.inputs)}, labels {_values(case.labels)}",
        f"- got {_code_span(case.got)}, exact {_code_span(case.exact)} (correctly rounded {_code_span(case.rounded)}):"
        f" **{md_escape(case_error(case))}**",
    ]
    if s.worst and s.worst[0] != case:
        lines.append(f"- worst error seen: {md_escape(case_error(s.worst[0]))}")
    lines += ["", _code_block(case.replay), ""]
    return "\n".join(lines)


def _audit_section(result: RunResult) -> list[str]:
    """The verdict of ``lossfuzz audit`` (the ``audit`` block), first on the page; nothing for a plain run."""
    from harness.auditing import verdicts

    if not result.audit:
        return []
    try:
        found = verdicts(result.audit)
    except (KeyError, TypeError, ValueError, AttributeError):
        return ["## Verdict", "", md_escape(result.audit.get("summary", "unreadable audit block")), ""]
    out: list[str] = []
    for v in found:
        out += _verdict_lines(v)
    return out


def _verdict_lines(v: Any) -> list[str]:
    icon = {"ok": "✅", "bad": "❌"}.get(v.level, "⚠️")
    out = [f"## Verdict: {icon} {_md_name(v.name)}", "", md_escape(v.summary), ""]
    if v.convention:
        out.append(f"- **convention**: {md_escape(v.convention)}")
    for text in v.systematic:
        out.append(f"- **systematic failure**: {md_escape(text)}")
    if v.per_element is not None:
        out.append(f"- **per element** (batches of one element): {md_escape(v.per_element['summary'])}")
    if v.sweep:
        out.append("- **along the sweeps**: " + md_escape("; ".join(v.sweep)))
    if v.where:
        out.append("- **worst cases at**: " + md_escape("; ".join(v.where)))
    if v.reproducer is not None:
        r = v.reproducer
        out.append(f"- **minimal reproducer** ({_md_name(v.reproducer_dtype)}): inputs {_values(r.inputs)}, labels"
                   f" {_values(r.labels)}: got {_code_span(r.got)}, exact {_code_span(r.exact)}: **{md_escape(case_error(r))}**")
    for f in v.first_findings:
        out.append(f"- **{_md_name(f.kind)}**: {md_escape(f.message)} (inputs {_values(f.inputs)}, labels {_values(f.labels)})")
    if v.findings_where:
        out.append("- **failed calls at**: " + md_escape("; ".join(v.findings_where)))
    if v.best_builtin is not None:
        b = v.best_builtin
        out.append(f"- **best built-in for comparison**: {_md_name(b['candidate'])}, max {fmt_ulp(b['max_ulp'])} ULP"
                   f" ({md_escape(b.get('source', ''))})")
    out.append("")
    if v.reproducer is not None:
        if v.replay_note:
            out += [f"Replay: not available ({md_escape(v.replay_note)}); the exact value:", ""]
        out += [_code_block(v.reproducer.replay), ""]
    return out


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
        out.append(f"| {_md_name(r.family)} | {_md_name(r.dtype)} | {_md_name(r.candidate)} | {_share(r.plain_share)}"
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
    out += _audit_section(result)
    out += [md_escape(provenance_line(result)), ""]
    line = settings_line(result)
    if line:
        out += [md_escape(line), ""]
    t = tally(result.scores)
    out += [
        f"**{len(result.scores)} scores: {t['ok']} ok, {t['bad']} with problems, {t['fail']} failed,"
        f" {t['skip']} unsupported or not compared.** Errors are in ULP of the exact value in the target format"
        " (0.5 = correctly rounded); ok = at most 1 ULP and no non-finite mistake. Mean bits: Herbie's bits of"
        " error. Other non-finite: nan where the exact value is infinite, the opposite infinity, or a number"
        " where it is undefined. Speed: time per element as a multiple of a memory copy.",
        "",
    ]
    if not result.scores:
        out += ["_No scores: nothing was run._", ""]
    header = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "|".join(align for _, align in COLUMNS) + "|"
    problems: list[tuple[Score, str, WorstCase]] = []
    for family, scores in by_family(result):
        out += [f"## {_md_name(family)}", "", header, rule]
        out += [_row(s) for s in scores]
        out.append("")
        for s in scores:
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
