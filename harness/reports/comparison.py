"""The table of ``lossfuzz compare`` in three formats: Markdown (pull requests, READMEs), a self-contained HTML
page, and a LaTeX ``tabular`` (papers; needs ``\\usepackage{booktabs}``).

Each renderer turns a :class:`harness.comparison.SideBySide` into text and touches no file. The reports are
lettered A, B, C … in the table (A is the base), with a legend naming their files. A ``quantity`` column
(loss or gradient) is shown when a report has gradient rows (tables of loss-only reports stay as they were).
Per report: max ULP,
p99 ULP, mean bits and non-finite mistakes; per later report a column "vs A" with the row's mark
(regression, improvement; see :mod:`harness.comparison` for the rules) and the figures that moved.
Every name from a report is escaped for its format (Markdown, HTML, LaTeX special characters).
"""

from __future__ import annotations

import html
import string
from typing import Callable

from harness.comparison import Delta, Figures, SideBySide

from ._common import fmt_ulp
from .markdown import _md_name, md_escape

__all__ = ["RENDERERS", "render_markdown", "render_html", "render_latex", "latex_escape", "letters"]

_FIGURES = ("max ULP", "p99 ULP", "mean bits", "non-finite")
_KEYS = ("family", "candidate", "dtype", "regime")


def _keys(table: SideBySide) -> tuple[str, ...]:
    """The key columns: :data:`_KEYS`, with ``quantity`` before ``regime`` when any row is not a loss row."""
    if all(r.quantity == "loss" for r in table.rows):
        return _KEYS
    return ("family", "candidate", "dtype", "quantity", "regime")


def letters(count: int) -> list[str]:
    """Column labels of ``count`` reports: A, B, … Z, then A2, B2 …"""
    return [string.ascii_uppercase[i % 26] + (str(i // 26 + 1) if i >= 26 else "") for i in range(count)]


def _cells(f: Figures | None) -> list[str]:
    """A report's figures of one row as text: ``—`` throughout when missing, ``not scored`` when unscored."""
    if f is None:
        return ["—"] * len(_FIGURES)
    if not f.scored:
        return ["not scored", "", "", ""]
    bits = "—" if f.mean_bits is None else f"{f.mean_bits:.1f}"
    return [fmt_ulp(f.max_ulp), fmt_ulp(f.p99_ulp), bits, str(f.non_finite)]


def _delta_text(d: Delta) -> tuple[str, str]:
    """(mark word, what moved) of a delta: ``("worse", "max ULP 0.5 → 3; …")``; a regression lists what got
    worse first, then what got better."""
    if d.mark == "regression":
        return "worse", "; ".join(d.worse) + (f" (better: {'; '.join(d.better)})" if d.better else "")
    if d.mark == "improvement":
        return "better", "; ".join(d.better)
    return ("missing", "") if d.mark == "missing" else ("", "")


def _summary(table: SideBySide) -> str:
    later = len(table.names) - 1
    return (f"{len(table.rows)} rows ({' x '.join(_keys(table))}; regime all is the whole score);"
            f" against A: {table.regressions} regressions, {table.improvements} improvements"
            f" over {later} report{'s' if later != 1 else ''} (worse: max or p99 ULP above max({table.factor:g} x A,"
            f" 1 ULP), mean bits up by more than 1, non-finite mistakes new or their share up {table.factor:g}x;"
            " better: the reverse)"
            + "".join(f"; {label} ran with other libraries or SIMD targets than A ({'; '.join(changes)}), which can"
                      " move figures by themselves" for label, changes in zip(letters(later + 1)[1:], table.elsewhere)
                      if changes))


# ------------------------------------------------------------------------------------------ Markdown


def render_markdown(table: SideBySide) -> str:
    """The comparison as a Markdown table with a legend of the reports."""
    labels = letters(len(table.names))
    keys = _keys(table)
    out = ["# lossfuzz compare", ""]
    out += [f"- **{label}**{' (base)' if i == 0 else ''}: {md_escape(name)}" for i, (label, name) in enumerate(zip(labels, table.names))]
    out += ["", md_escape(_summary(table)), ""]
    head = list(keys) + [f"{fig} {label}" for label in labels for fig in _FIGURES] + [f"{label} vs {labels[0]}" for label in labels[1:]]
    align = ["---"] * len(keys) + ["--:"] * (len(_FIGURES) * len(labels)) + ["---"] * (len(labels) - 1)
    out += ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for row in table.rows:
        cells = [_md_name(getattr(row, k)) for k in keys]
        cells += [md_escape(c) for f in row.figures for c in _cells(f)]
        for d in row.deltas:
            word, moved = _delta_text(d)
            cells.append((f"**{word}**" if d.mark == "regression" else word) + (f": {md_escape(moved)}" if moved else ""))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- HTML

_CSS = ("body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1f2328}table{border-collapse:collapse;font-size:13px}"
        "th,td{border:1px solid #d0d7de;padding:3px 8px;vertical-align:top}th{background:#f6f8fa;text-align:left}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
        "td.regression{background:#ffebe9}td.improvement{background:#dafbe1}td.missing{color:#57606a}.muted{color:#57606a}")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_html(table: SideBySide) -> str:
    """The comparison as a self-contained HTML page: regressions red, improvements green."""
    labels = letters(len(table.names))
    keys = _keys(table)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>lossfuzz compare</title>',
           f"<style>{_CSS}</style></head><body>", "<h1>lossfuzz compare</h1>", "<ul>"]
    out += [f"<li><b>{label}</b>{' (base)' if i == 0 else ''}: <code>{_e(name)}</code></li>"
            for i, (label, name) in enumerate(zip(labels, table.names))]
    out += ["</ul>", f'<p class="muted">{_e(_summary(table))}</p>', "<table><thead><tr>"]
    out += [f'<th rowspan="2">{k}</th>' for k in keys]
    out += [f'<th colspan="{len(_FIGURES)}">{label}</th>' for label in labels]
    out += [f'<th rowspan="2">{_e(label)} vs {_e(labels[0])}</th>' for label in labels[1:]]
    out += ["</tr><tr>"] + [f"<th>{fig}</th>" for _ in labels for fig in _FIGURES] + ["</tr></thead><tbody>"]
    for row in table.rows:
        cells = [f"<td><code>{_e(getattr(row, k))}</code></td>" for k in keys]
        cells += [f'<td class="n">{_e(c)}</td>' for f in row.figures for c in _cells(f)]
        for d in row.deltas:
            word, moved = _delta_text(d)
            text = f"<b>{_e(word)}</b>" + (f": {_e(moved)}" if moved else "") if word else ""
            cells.append(f'<td class="{d.mark}">{text}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------- LaTeX

_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "→": r"$\to$", "—": "---", "×": r"$\times$"}


def latex_escape(text: object) -> str:
    """Text safe in a LaTeX table cell: the ten special characters (and < >, which OT1 fonts misprint)
    escaped, → and — as LaTeX; one line."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in " ".join(str(text).split()))


def render_latex(table: SideBySide) -> str:
    """The comparison as a LaTeX ``table`` with a booktabs ``tabular`` (``\\usepackage{booktabs}``)."""
    labels = letters(len(table.names))
    keys = _keys(table)
    later = labels[1:]
    spec = "l" * len(keys) + "rrrr" * len(labels) + "l" * len(later)
    out = ["% lossfuzz compare; needs \\usepackage{booktabs}", "\\begin{table}", "\\centering", "\\small",
           f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    groups = [f"\\multicolumn{{{len(_FIGURES)}}}{{c}}{{{label}}}" for label in labels]
    out.append(" & ".join([""] * len(keys) + groups + [f"{label} vs {labels[0]}" for label in later]) + " \\\\")
    rules = [f"\\cmidrule(lr){{{len(keys) + 1 + i * len(_FIGURES)}-{len(keys) + (i + 1) * len(_FIGURES)}}}" for i in range(len(labels))]
    out.append(" ".join(rules))
    out.append(" & ".join(list(keys) + [latex_escape(f) for _ in labels for f in _FIGURES] + [""] * len(later)) + " \\\\")
    out.append("\\midrule")
    for row in table.rows:
        cells = [latex_escape(getattr(row, k)) for k in keys]
        cells += [latex_escape(c) for f in row.figures for c in _cells(f)]
        for d in row.deltas:
            word, moved = _delta_text(d)
            text = (f"\\textbf{{{word}}}" if d.mark == "regression" else word) + (f": {latex_escape(moved)}" if moved else "")
            cells.append(text)
        out.append(" & ".join(cells) + " \\\\")
    legend = "; ".join(f"{label}{' (base)' if i == 0 else ''}: \\texttt{{{latex_escape(name)}}}"
                       for i, (label, name) in enumerate(zip(labels, table.names)))
    out += ["\\bottomrule", "\\end{tabular}", f"\\caption{{lossfuzz compare. {legend}. {latex_escape(_summary(table))}.}}",
            "\\end{table}"]
    return "\n".join(out) + "\n"


# format -> renderer (the formats of `lossfuzz compare --format`, harness.options.COMPARE_FORMATS)
RENDERERS: dict[str, Callable[[SideBySide], str]] = {"md": render_markdown, "html": render_html, "latex": render_latex}
