"""``report.html``: one self-contained page (inline CSS, plots as base64 PNG data URLs).

Header and provenance, the summary table of each family, and per family x dtype the research plot (ULP
error of each candidate along a swept logit or probability, from the run's :class:`Curve` records) and a
histogram of the errors; then every score's worst cases with their replay commands. Every string that
comes from a user or from audited code goes through :func:`html.escape`. matplotlib is imported here only,
through :class:`matplotlib.figure.Figure` (no pyplot, no GUI backend); this module itself is imported only
when a report is rendered (:data:`harness.reports.WRITERS`), so ``import harness`` never loads matplotlib.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Iterable

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter, NullLocator

from harness._records import HISTOGRAM_BINS, Curve, RunResult, Score, WorstCase
from harness._values import fmt_rel

from ._common import (
    OUTCOME_WORDS,
    by_family,
    case_error,
    count_verdicts,
    fmt_ulp,
    ordered_unique,
    provenance_items,
    provenance_line,
    settings_line,
    upcast_comparisons,
    verdict,
)
from .sections import Section, Span, Table, audit_sections, regime_sections, score_table

__all__ = ["render_html"]

DPI = 100
# Exact results (0 ULP) are drawn at this error so that a log axis can show them.
FLOOR = 1e-3
SHOWN_VALUES = 16

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1280px;
padding:0 24px 48px;color:#1f2328;background:#fff}
h1{margin:24px 0 4px}h2{margin-top:36px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{margin:24px 0 8px}
.prov{color:#57606a;margin:4px 0}
.partial{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px;margin:12px 0;font-weight:600}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;vertical-align:top}
th{background:#f6f8fa;text-align:left;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.hot{color:#cf222e;font-weight:600}
td.v-ok{background:#dafbe1}td.v-bad{background:#ffebe9}td.v-fail{background:#fff8c5}td.v-skip{color:#57606a}
p.v-ok{background:#dafbe1}p.v-bad{background:#ffebe9}p.v-fail{background:#fff8c5}
table.kv td:first-child{color:#57606a;white-space:nowrap}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
td code{word-break:break-all}
pre{background:#f6f8fa;padding:8px;border-radius:6px;white-space:pre-wrap;word-break:break-all}
.plots{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.plots img{max-width:100%;height:auto;border:1px solid #eaeef2}
details{margin:6px 0}summary{cursor:pointer}
.muted{color:#57606a}
nav a{margin-right:12px}
"""


def _e(value: Any) -> str:
    """Escaped text for element content and quoted attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def _mpl(text: Any) -> str:
    """Text safe for matplotlib (no mathtext from a ``$`` in a candidate's name)."""
    return str(text).replace("$", r"\$")


# ---------------------------------------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colors(names: list[str]) -> dict[str, Any]:
    palette = colormaps["tab10"].colors if len(names) <= 10 else colormaps["tab20"].colors
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


_STYLES = ("-", "--", "-.", ":")


def _x_axis(ax: Any, curve: Curve, x: np.ndarray) -> None:
    """A logit axis for probabilities strictly inside (0, 1), else a symmetric-log axis over ``x``."""
    if curve.x_name == "probability" and x.size and x.min() > 0 and x.max() < 1:
        ax.set_xscale("logit")
        ticks, labels = _logit_ticks(x)
        ax.set_xticks(ticks, labels)
        ax.xaxis.set_minor_locator(NullLocator())
    else:
        positive = np.abs(x[np.isfinite(x) & (x != 0)])
        ax.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1.0, linscale=0.25)
        ax.set_xticks(_symlog_ticks(x))
        ax.set_xlim(-float(positive.max()) * 1.5 if positive.size else -1, float(positive.max()) * 1.5 if positive.size else 1)


def _plot_errors(ax: Any, x: np.ndarray, errs: tuple[float | None, ...], i: int, name: str, count: int, color: Any) -> bool:
    """One candidate's errors (``i`` of ``count``) on ``ax``: a line, dots where no line passes, and × at the
    top of the axis where the result has no ULP number. True when there was such a point."""
    y = np.array([np.nan if e is None else e for e in errs], dtype=float)
    missing = ~np.isfinite(y)
    shown = np.where(missing, np.nan, np.maximum(y, FLOOR))
    ax.plot(x, shown, _STYLES[i % len(_STYLES)], color=color, lw=1.6, label=_mpl(name), zorder=3 + count - i)
    ok = ~np.isnan(shown)
    alone = ok & ~np.r_[False, ok[:-1]] & ~np.r_[ok[1:], False]  # no line through it: a dot
    if alone.any():
        ax.plot(x[alone], shown[alone], "o", color=color, ms=3, zorder=3 + count - i)
    if missing.any():
        # Non-finite mistakes have no ULP number: marked at the top of the axis.
        ax.plot(x[missing], np.full(missing.sum(), 0.985 - 0.02 * (i % 3)), "x", color=color,
                ms=5, mew=1.3, transform=ax.get_xaxis_transform(), clip_on=False, zorder=10)
    return bool(missing.any())


def _y_axis_and_labels(ax: Any, curve: Curve, top: float) -> None:
    """Decade ticks, the 0.5 ULP line, the exact floor, grid, axis label and panel title."""
    ax.set_yticks(_decade_ticks(FLOOR, top))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axhline(0.5, color="0.35", lw=0.8, ls=(0, (1, 2)), zorder=1)
    ax.text(0.99, 0.5, "0.5 ULP ", transform=ax.get_yaxis_transform(), va="bottom", ha="right",
            fontsize=7, color="0.35")
    ax.text(0.01, FLOOR, " exact (0 ULP)", transform=ax.get_yaxis_transform(), va="bottom", ha="left",
            fontsize=7, color="0.35")
    ax.grid(True, which="major", lw=0.4, alpha=0.5)
    ax.set_xlabel(_mpl(curve.x_name) + (" (logit scale)" if ax.get_xscale() == "logit" else " (symmetric log scale)"))
    ax.set_title(_mpl(f"{curve.family} · {curve.dtype} · {curve.label}"), fontsize=10)


def _curve_figure(curves: list[Curve], colors: dict[str, Any]) -> str | None:
    """One panel per label setting: ULP error (log) against the swept input; None if nothing to draw."""
    curves = [c for c in curves if c.x and c.errors]
    if not curves:
        return None
    names = ordered_unique(n for c in curves for n in c.errors)
    finite = [e for c in curves for errs in c.errors.values() for e in errs if e is not None and math.isfinite(e)]
    top = min(1e308, max([10.0] + [e * 30 for e in finite if e > 0]))
    width = max(7.0, 5.4 * len(curves))
    fig = Figure(figsize=(width, 4.0), layout="constrained")
    axes = fig.subplots(1, len(curves), sharey=True, squeeze=False)[0]
    any_missing = False
    for ax, curve in zip(axes, curves):
        x = np.asarray(curve.x, dtype=float)
        ax.set_yscale("log")
        ax.set_ylim(FLOOR / 2, top)
        ax.set_autoscaley_on(False)  # fixed limits: no margins computed past the float64 range
        _x_axis(ax, curve, x)
        for i, name in enumerate(names):
            errs = curve.errors.get(name)
            if errs is not None and len(errs) == x.size:
                any_missing |= _plot_errors(ax, x, errs, i, name, len(names), colors.get(name, "0.5"))
        _y_axis_and_labels(ax, curve, top)
    axes[0].set_ylabel("error (ULP of the exact value)")
    handles = [Line2D([], [], color=colors.get(n, "0.5"), ls=_STYLES[i % len(_STYLES)], lw=1.6, label=_mpl(n)) for i, n in enumerate(names)]
    if any_missing:
        handles.append(Line2D([], [], color="0.2", marker="x", ls="none", label="non-finite result (no ULP), at top"))
    fig.legend(handles=handles, loc="outside lower center", ncol=max(1, min(len(handles), int(width / 1.8))), fontsize=8, frameon=False)
    return _png(fig)


def _decade_ticks(low: float, high: float, most: int = 9) -> list[float]:
    """Powers of ten within ``[low, high]`` at a round stride of decades, at most ``most`` of them, 10**0
    among them (matplotlib's LogLocator overflows near the top of the float64 range)."""
    lo, hi = math.ceil(math.log10(low)), math.floor(math.log10(high))
    for step in (1, 2, 3, 5, 10, 20, 25, 50, 100, 200):
        ticks = [10.0**k for k in range(math.ceil(lo / step) * step, hi + 1, step)]
        if len(ticks) <= most:
            return ticks
    return [10.0**lo, 10.0**hi]


def _symlog_ticks(x: Any) -> list[float]:
    """Major ticks of a symmetric-log axis over ``x``: 0 and powers of ten on both sides (every other one
    when the range spans many decades)."""
    mags = np.abs(np.asarray(x, dtype=float))
    mags = mags[(mags > 0) & np.isfinite(mags)]
    if not mags.size:
        return [0.0]
    lo, hi = int(math.floor(math.log10(mags.min()))), int(math.ceil(math.log10(mags.max())))
    step = 2 if hi - lo > 6 else 1
    powers = [10.0**k for k in range(hi, lo - 1, -step)]
    return [-p for p in powers] + [0.0] + powers[::-1]


def _logit_ticks(x: Any) -> tuple[list[float], list[str]]:
    """Ticks of a logit (probability) axis over ``x``: ``10**-k`` below one half, ``1 - 10**-k`` above, and
    0.5; chosen outwards from 0.5 at least a ninth of the axis apart (in logit units) so labels never collide."""
    x = np.asarray(x, dtype=float)
    lo, hi = float(x.min()), float(x.max())
    logit = lambda p: math.log(p) - math.log1p(-p)  # noqa: E731
    gap = (logit(hi) - logit(lo)) / 9 if hi > lo else 1.0
    below = [(10.0**-k, f"1e-{k}") for k in range(1, 400) if 10.0**-k >= lo * (1 - 1e-6) and 10.0**-k > 0]
    above = [(1 - 10.0**-k, f"1-1e-{k}") for k in range(1, 17) if 1 - 10.0**-k <= hi * (1 + 1e-12)]
    ticks = [(0.5, "0.5")]
    for side in (below, above):
        last = 0.0
        for t, label in side:
            if abs(logit(t) - last) >= gap:
                ticks.append((t, label))
                last = logit(t)
    ticks.sort()
    return [t for t, _ in ticks], [label for _, label in ticks]


def _histogram_figure(scores: list[Score], colors: dict[str, Any]) -> str | None:
    """Grouped bars: share of examples per error bin, one bar per candidate; None if nothing was compared."""
    scores = [s for s in scores if s.examples > 0]
    if not scores:
        return None
    bins = list(HISTOGRAM_BINS) + ["no ULP"]
    labels = ["exact", "≤0.5", "≤1", "≤4", "≤1024", ">1024", "no ULP\n(non-finite,\nraised)"]
    fig = Figure(figsize=(max(6.0, 1.0 + 0.2 * len(scores) * len(bins)), 3.4), layout="constrained")
    ax = fig.subplots()
    width = 0.84 / len(scores)
    centers = np.arange(len(bins))
    for i, s in enumerate(scores):
        counts = [int(s.histogram.get(b, 0) or 0) for b in HISTOGRAM_BINS]
        counts.append(max(0, s.examples - sum(counts)))
        share = 100.0 * np.asarray(counts, dtype=float) / s.examples
        ax.bar(centers - 0.42 + width * (i + 0.5), share, width, color=colors.get(s.candidate, "0.5"),
               label=_mpl(s.candidate), edgecolor="white", linewidth=0.3)
    ax.set_xticks(centers, labels[: len(bins)], fontsize=8)
    ax.set_xlabel("error (ULP)")
    ax.set_ylabel("% of examples")
    ax.set_ylim(0, 100)
    ax.grid(True, axis="y", lw=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    s0 = scores[0]
    ax.set_title(_mpl(f"{s0.family} · {s0.dtype}: error histogram"), fontsize=10)
    ax.legend(fontsize=8, ncol=min(len(scores), 3), frameon=False, loc="upper right")
    return _png(fig)


# ---------------------------------------------------------------------------------------------- tables


def _num(text: str, hot: bool = False) -> str:
    return f'<td class="n{" hot" if hot else ""}">{_e(text)}</td>'


def _span(span: Span) -> str:
    if span.style in ("name", "code"):
        return f"<code>{_e(span.text)}</code>"
    if span.style == "strong":
        return f"<b>{_e(span.text)}</b>"
    if span.style == "muted":
        return f'<span class="muted">{_e(span.text)}</span>'
    if span.style == "values":
        return _values(span.values)
    return _e(span.text)


def _spans(spans: tuple[Span, ...]) -> str:
    return "".join(_span(s) for s in spans)


def render_table(table: Table) -> str:
    """A section's table: numeric cells right-aligned, figures that show a problem in red, verdict cells
    coloured by level, a cell's title as its tooltip."""
    rows = ["<table><thead><tr>" + "".join(f"<th>{_e(c.name)}</th>" for c in table.columns) + "</tr></thead><tbody>"]
    for row in table.rows:
        cells = []
        for column, cell in zip(table.columns, row):
            classes = (["n"] if column.numeric else []) + (["hot"] if cell.hot else [])
            classes += [f"v-{cell.level}"] if cell.level is not None else []
            attrs = (f' class="{" ".join(classes)}"' if classes else "") + (f' title="{_e(cell.title)}"' if cell.title else "")
            cells.append(f"<td{attrs}>{_spans(cell.spans)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def render_section(section: Section, anchor: str = "") -> str:
    """A section as HTML: heading, lead paragraph (coloured by level), items as a key-value table, table,
    code blocks."""
    where = f' id="{anchor}"' if anchor else ""
    out = [f"<h2{where}>{_spans(section.title)}</h2>"]
    if section.lead:
        style = f' class="v-{section.level}" style="padding:6px 10px;border-radius:6px"' if section.level else ""
        out.append(f"<p{style}>{_e(section.lead)}</p>")
    if section.items:
        rows = "".join(f"<tr><td>{_e(i.label)}</td><td>{'<br>'.join(_spans(line) for line in i.lines)}</td></tr>"
                       for i in section.items)
        out.append(f'<table class="kv"><tbody>{rows}</tbody></table>')
    if section.table is not None:
        out.append(render_table(section.table))
    for intro, code in section.code:
        if intro:
            out.append(f"<p>{_e(intro)}</p>")
        out.append(f"<pre>{_e(code)}</pre>")
    return "\n".join(out)


def _values(values: Iterable[str]) -> str:
    values = tuple(values)
    if not values:
        return '<span class="muted">—</span>'
    shown = ", ".join(values[:SHOWN_VALUES])
    more = f' <span class="muted">… ({len(values)} values)</span>' if len(values) > SHOWN_VALUES else ""
    return f"<code>{_e(shown)}</code>{more}"


def _cases_table(cases: list[tuple[str, WorstCase]]) -> str:
    head = ("", "inputs", "labels", "got", "exact", "rounded", "ULP", "rel. error", "outcome", "replay")
    rows = ["<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for what, case in cases:
        outcome = OUTCOME_WORDS.get(case.outcome, case.outcome)
        rows.append(
            "<tr>"
            f'<td class="muted">{_e(what)}</td>'
            f"<td>{_values(case.inputs)}</td>"
            f"<td>{_values(case.labels)}</td>"
            f"<td><code>{_e(case.got)}</code></td>"
            f"<td><code>{_e(case.exact)}</code></td>"
            f"<td><code>{_e(case.rounded)}</code></td>"
            f"{_num(fmt_ulp(case.ulp), case.ulp is None or not case.ulp <= 1)}"
            f"{_num(fmt_rel(case.rel_error))}"
            f'<td title="{_e(outcome)}">{_e(case.outcome)}</td>'
            f"<td><code>{_e(case.replay)}</code></td>"
            "</tr>"
        )
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _worst_section(s: Score) -> str:
    v = verdict(s)
    cases: list[tuple[str, WorstCase]] = []
    if s.reproducer is not None:
        cases.append(("shrunk reproducer", s.reproducer))
    behind = {}  # the case behind each regime's figure: named in the list, or added after it (at most 0.5 ULP)
    for name, r in s.regimes.items():
        if r.worst is not None:
            behind.setdefault(r.worst, []).append(name)
    cases.extend((f"worst #{i + 1}" + (f" (worst of {', '.join(behind[w])})" if w in behind else ""), w)
                 for i, w in enumerate(s.worst))
    cases.extend((f"worst of {', '.join(names)}", w) for w, names in behind.items() if w not in s.worst)
    if not cases and not s.failure:
        return ""
    summary = (
        f"<code>{_e(s.family)}</code> · <code>{_e(s.candidate)}</code> · {_e(s.dtype)}: "
        f'<span class="v-{v.level}">{_e(v.text)}</span> <span class="muted">({len(cases)} cases'
        + (f"; worst {_e(case_error(s.worst[0]))}" if s.worst else "")
        + ")</span>"
    )
    body = []
    if s.source:
        body.append(f'<p class="muted">{_e(s.source)}</p>')
    if s.failure:
        body.append(f"<pre>{_e(s.failure)}</pre>")
    if cases:
        body.append(_cases_table(cases))
    return f"<details><summary>{summary}</summary>\n" + "\n".join(body) + "\n</details>"


# ---------------------------------------------------------------------------------------------- page


def _mixed_precision_section(result: RunResult) -> list[str]:
    """Each candidate next to its ``_upcast`` variant in float16/bfloat16 (see the Markdown report)."""
    rows = upcast_comparisons(result)
    if not rows:
        return []
    share = lambda v: "—" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    out = ['<h2 id="mixed-precision">Mixed precision: where the upcast is missing</h2>',
           '<p class="muted">Each candidate on float16/bfloat16 inputs next to its <code>_upcast</code> variant (inputs'
           " cast to float32, the loss computed there and cast back once). Share: examples above 1 ULP.</p>",
           "<table><thead><tr><th>family</th><th>dtype</th><th>candidate</th><th>share &gt; 1 ULP</th><th>with upcast</th>"
           "<th>max ULP</th><th>with upcast</th><th>computes in</th></tr></thead><tbody>"]
    for r in rows:
        where = {True: "the half format (no upcast)", False: "float32 (or as accurate)", None: "—"}[r.missing]
        out.append(f"<tr><td>{_e(r.family)}</td><td>{_e(r.dtype)}</td><td><code>{_e(r.candidate)}</code></td>"
                   f"<td>{share(r.plain_share)}</td><td>{share(r.upcast_share)}</td><td>{_e(fmt_ulp(r.plain.max_ulp))}</td>"
                   f"<td>{_e(fmt_ulp(r.upcast.max_ulp))}</td><td>{_e(where)}</td></tr>")
    return out + ["</tbody></table>"]


def _head(result: RunResult) -> list[str]:
    """From the doctype to the PARTIAL warning."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>lossfuzz report{' (PARTIAL)' if result.partial else ''}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>lossfuzz report</h1>",
    ]
    if result.partial:
        out.append(
            f'<div class="partial">⚠ PARTIAL RESULTS: the run was interrupted; only the {len(result.scores)}'
            " scores finished before it stopped are shown.</div>"
        )
    return out


def _overview(result: RunResult) -> list[str]:
    """Provenance and settings in a line each, the tally of verdicts with the legend, every provenance entry."""
    t = count_verdicts(result.scores)
    out = [f'<p class="prov">{_e(provenance_line(result))}</p>']
    line = settings_line(result)
    if line:
        out.append(f'<p class="prov">{_e(line)}</p>')
    out.append(
        f"<p><b>{len(result.scores)} scores: {t['ok']} ok, {t['bad']} with problems, {t['fail']} failed,"
        f" {t['skip']} unsupported or not compared.</b> Errors are in ULP of the exact value in the target format"
        " (0.5 = correctly rounded); ok = at most 1 ULP and no non-finite mistake. Mean bits: Herbie's bits of"
        " error. Other non-finite: nan where the exact value is infinite, the opposite infinity, or a number where"
        " it is undefined. Speed: time per element as a multiple of a memory copy of the same arrays.</p>"
    )
    out.append("<details><summary>Provenance and settings</summary><table class=\"kv\"><tbody>")
    out.extend(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in provenance_items(result))
    out.append("</tbody></table></details>")
    return out


def _plots(result: RunResult, family: str, dtype: str, scores: list[Score], colors: dict[str, Any]) -> list[str]:
    """The research plot and the histogram of one family x dtype, with their caption; nothing to draw: []."""
    curves = [c for c in result.curves if c.family == family and c.dtype == dtype]
    curve_png = _curve_figure(curves, colors)
    hist_png = _histogram_figure([s for s in scores if s.dtype == dtype], colors)
    if not curve_png and not hist_png:
        return []
    out = [f"<h3>{_e(family)} · {_e(dtype)}</h3>"]
    if curves:
        labels = "; ".join(c.label for c in curves)
        out.append(
            f'<p class="muted">ULP error along the swept {_e(curves[0].x_name)} ({_e(labels)}); exact results'
            f" are drawn at {FLOOR:g} ULP, and non-finite results (no ULP number) as × at the top.</p>"
        )
    out.append('<div class="plots">')
    if curve_png:
        out.append(f'<img src="{curve_png}" alt="{_e(f"ULP error along the swept input, {family} in {dtype}")}">')
    if hist_png:
        out.append(f'<img src="{hist_png}" alt="{_e(f"Error histogram, {family} in {dtype}")}">')
    out.append("</div>")
    return out


def _families(result: RunResult, groups: list[tuple[str, list[Score]]], colors: dict[str, Any]) -> list[str]:
    """The navigation, then per family its score table and the plots of each dtype."""
    families = ordered_unique([f for f, _ in groups] + [c.family for c in result.curves])
    out = []
    if families:
        out.append("<nav>" + "".join(f'<a href="#family-{i}">{_e(f)}</a>' for i, f in enumerate(families))
                   + '<a href="#worst">worst cases</a></nav>')
    scores_of = dict(groups)
    for i, family in enumerate(families):
        scores = scores_of.get(family, [])
        out.append(f'<h2 id="family-{i}">{_e(family)}</h2>')
        if scores:
            out.append(render_table(score_table(scores)))
        dtypes = ordered_unique([s.dtype for s in scores] + [c.dtype for c in result.curves if c.family == family])
        for dtype in dtypes:
            out += _plots(result, family, dtype, scores, colors)
    return out


def render_html(result: RunResult) -> str:
    """The self-contained HTML page of ``result``."""
    groups = by_family(result)
    names = ordered_unique([s.candidate for s in result.scores] + [n for c in result.curves for n in c.errors])
    out = _head(result)
    out.extend(render_section(s, "verdict" if i == 0 else "") for i, s in enumerate(audit_sections(result)))
    out += _overview(result)
    out.extend(render_section(s) for s in regime_sections(result))  # the lead: candidate x regime per family
    out += _families(result, groups, _colors(names))
    out.extend(_mixed_precision_section(result))
    out.append('<h2 id="worst">Worst cases</h2>')
    out.append(
        '<p class="muted">Per score: the Hypothesis-shrunk reproducer and the worst errors seen (inputs and labels as'
        " hex floats). Each replay command prints the exact value and the candidate's.</p>"
    )
    sections = [x for x in (_worst_section(s) for _f, scores in groups for s in scores) if x]
    out.extend(sections or ['<p class="muted">None.</p>'])
    out.append("</body></html>")
    return "\n".join(out) + "\n"
