"""``report.html``: one self-contained page (inline CSS, plots as base64 PNG data URLs).

Header and provenance, the summary table of each family (and its gradient table, for a run that scored
gradients), and per family x dtype the research plots: small multiples, one panel per candidate, of the bits
of error (Herbie's, 0 to the format's width) along a swept logit or probability (the run's :class:`Curve`
records; the gradient's curves in a figure of their own), of the bits over the (logit, label) plane (its
:class:`ErrorMap` records, sigmoid_ce), and a histogram of the errors (the gradient's apart); then every
score's worst cases with their replay commands. Every string that comes from a user or from audited code goes through
:func:`html.escape`. matplotlib is imported here only,
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
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

import oracles
from harness._records import HISTOGRAM_BINS, Curve, ErrorMap, RunResult, Score, WorstCase
from harness._values import fmt_rel

from ._common import (
    OUTCOME_WORDS,
    by_family,
    case_error,
    fmt_ulp,
    of_quantity,
    ordered_unique,
    provenance_items,
    provenance_line,
    settings_line,
    tally_sentence,
    upcast_comparisons,
    verdict,
    verdict_line,
)
from .sections import Section, Span, Table, audit_sections, gradient_section, regime_sections, score_table

__all__ = ["render_html"]

DPI = 100
# Small multiples: panels a row, and a panel's size in inches.
COLUMNS = 5
PANEL = (2.45, 1.55)
# The label settings of a sweep (hard, soft) in every panel; the error maps' colours (0 bits: light).
_LABEL_COLORS = ("#0b5394", "#e8590c", "#2b8a3e", "#862e9c")
_MAP_COLORS = colormaps["inferno_r"]
_MAP_NONFINITE = "#22b8cf"
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
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})  # (no fig.clear(): it rebuilt every tick)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colors(names: list[str]) -> dict[str, Any]:
    palette = colormaps["tab10"].colors if len(names) <= 10 else colormaps["tab20"].colors
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _format_bits(dtype: str) -> int:
    """The top of a bits-of-error axis: the width of ``dtype`` (16, 32, 64), the most bits an error can have."""
    try:
        return oracles.resolve_format(dtype).bits
    except ValueError:  # a dtype this lossfuzz does not know (a report from elsewhere): Herbie's 64
        return 64


def _panel_grid(count: int, bottom: float, right: float = 0.0) -> tuple[Any, list[Any], list[bool], list[bool]]:
    """One figure of ``count`` small panels, :data:`COLUMNS` a row; fixed margins in inches (``bottom`` for
    a legend, ``right`` for a colour bar) instead of a layout engine. Also, per panel, whether it carries
    the x and the y tick labels (the outer ones). The panels do not share axes: :func:`_ticks` gives the
    inner ones no ticks at all, since making tick objects was most of the rendering time."""
    cols = min(COLUMNS, count)
    rows = -(-count // cols)
    width, height = cols * PANEL[0] + 0.75 + right, rows * PANEL[1] + 0.35 + bottom
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.62 / width, right=1 - (0.13 + right) / width, bottom=bottom / height,
                        top=1 - 0.3 / height, wspace=0.07, hspace=0.3)
    spec = fig.add_gridspec(rows, cols)
    axes = [fig.add_subplot(spec[i // cols, i % cols]) for i in range(count)]
    return fig, axes, [i + cols >= count for i in range(count)], [i % cols == 0 for i in range(count)]


def _ticks(ax: Any, axis: str, shown: bool, ticks: Any, labels: Any = None) -> None:
    """Fixed ticks with labels on an outer panel; none on an inner one."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_minor_locator(NullLocator())
    if not shown:
        target.set_major_locator(NullLocator())
        return
    target.set_ticks(ticks, labels)
    ax.tick_params(axis=axis, labelsize=7, length=2.5, pad=1.5)


def _curve_bits(curve: Curve, name: str) -> tuple[np.ndarray, bool]:
    """Bits of error of ``name`` along ``curve`` (nan: no number), and whether they are estimated: a curve
    written before curves held bits gives ``log2(1 + ULP error)`` instead (close within a binade)."""
    if curve.bits is not None and name in curve.bits:
        return np.array([np.nan if b is None else b for b in curve.bits[name]], dtype=float), False
    ulp = np.array([np.nan if e is None else e for e in curve.errors[name]], dtype=float)
    return np.log2(1.0 + ulp), True


def _x_scale(curve: Curve, x: np.ndarray) -> tuple[Any, str, list[float], list[str]]:
    """How a sweep's input is drawn on a linear axis (matplotlib's own logit and symlog scales transform every
    point at draw time, most of the drawing cost): the function that maps the input there, the axis label,
    and ticks (in input units) with their labels. Probabilities strictly inside (0, 1) as logits; anything
    else as ``asinh(x / s)``, ``s`` the smallest magnitude swept: linear near 0, logarithmic beyond."""
    if curve.x_name == "probability" and x.size and x.min() > 0 and x.max() < 1:
        ticks, labels = _logit_ticks(x, 5)
        return (lambda v: np.log(v) - np.log1p(-v)), "probability (logit scale)", ticks, labels
    finite = np.abs(x[np.isfinite(x) & (x != 0)])
    scale = float(finite.min()) if finite.size else 1.0
    ticks = _symlog_ticks(x)
    return (lambda v: np.arcsinh(np.asarray(v, dtype=float) / scale)), f"{curve.x_name} (symmetric log scale)", ticks, [_tick_text(t) for t in ticks]


def _tick_text(value: float) -> str:
    """Short text of a tick at a power of ten (``-1e4``, ``100``, ``0.01``) or 0."""
    if value == 0:
        return "0"
    exponent = round(math.log10(abs(value)))
    sign = "−" if value < 0 else ""
    return f"{sign}{abs(value):g}" if -2 <= exponent <= 2 else f"{sign}1e{exponent}"


def _curve_figure(curves: list[Curve], dtype: str) -> tuple[str, bool] | None:
    """Small multiples: one panel per candidate, bits of error (0 to the format's width) against the swept
    input, one line per label setting; None if nothing to draw. Also whether bits were estimated."""
    curves = [c for c in curves if c.x and c.errors]
    if not curves:
        return None
    names = ordered_unique(n for c in curves for n in c.errors)
    top = _format_bits(dtype)
    fig, axes, show_x, show_y = _panel_grid(len(names), bottom=0.75)
    estimated = any_missing = False
    first = curves[0]
    to_axis, xlabel, xticks, xlabels = _x_scale(first, np.asarray(first.x, dtype=float))
    ticks_at = [float(to_axis(t)) for t in xticks]
    span = to_axis(np.asarray(first.x, dtype=float))
    margin = 0.02 * float(span.max() - span.min())
    grid = [[(float(span.min()) - margin, level), (float(span.max()) + margin, level)] for level in range(top // 4, top, top // 4)]
    grid += [[(t, -top), (t, 2 * top)] for t in ticks_at]
    for ax, name, sx, sy in zip(axes, names, show_x, show_y):
        ax.set_xlim(float(span.min()) - margin, float(span.max()) + margin)
        ax.set_ylim(-0.03 * top, 1.06 * top)
        _ticks(ax, "x", sx, ticks_at, xlabels)
        _ticks(ax, "y", sy, range(0, top + 1, top // 4))
        # the grid as one collection (tick objects and one line per level cost more); the 1-bit line
        ax.add_collection(LineCollection(grid, colors="0.9", linewidths=0.5, zorder=0), autolim=False)
        ax.axhline(1, color="0.55", lw=0.6, ls=(0, (1, 2)), zorder=1)
        for k, curve in enumerate(curves):
            if name not in curve.errors or len(curve.errors[name]) != len(curve.x):
                continue
            y, guessed = _curve_bits(curve, name)
            estimated |= guessed
            any_missing |= _plot_bits(ax, to_axis(np.asarray(curve.x, dtype=float)), y, top * (1.02 - 0.05 * k),
                                      _LABEL_COLORS[k % len(_LABEL_COLORS)])
        ax.set_title(_mpl(name), fontsize=8, pad=2)
    fig.supylabel("bits of error", fontsize=8, x=0.08 / fig.get_figwidth())
    handles = [Line2D([], [], color=_LABEL_COLORS[k % len(_LABEL_COLORS)], lw=1.4, label=_mpl(c.label)) for k, c in enumerate(curves)]
    if any_missing:
        handles.append(Line2D([], [], color="0.2", marker="x", ls="none", label="non-finite result (no number), at top"))
    handles.append(Line2D([], [], color="0.55", lw=0.6, ls=(0, (1, 2)), label="1 bit: one format number off"))
    fig.text(0.5, 0.32 / fig.get_figheight(), _mpl(xlabel), ha="center", fontsize=8)
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False, borderaxespad=0.1)
    return _png(fig), estimated


def _plot_bits(ax: Any, x: np.ndarray, y: np.ndarray, top: float, color: Any) -> bool:
    """One candidate's bits along one sweep: a line, dots where no line passes, × at ``top`` (near the top
    of the axis) where the result has no number. True when there was such a point."""
    missing = np.isnan(y)
    ax.plot(x, y, "-", color=color, lw=1.1, zorder=3)
    ok = ~missing
    alone = ok & ~np.r_[False, ok[:-1]] & ~np.r_[ok[1:], False]  # no line through it: a dot
    if alone.any():
        ax.plot(x[alone], y[alone], "o", color=color, ms=2.5, zorder=3)
    if missing.any():
        ax.plot(x[missing], np.full(missing.sum(), top), "x", color=color, ms=3.5, mew=1.0, clip_on=False, zorder=4)
    return bool(missing.any())


def _index_ticks(values: np.ndarray, wanted: list[tuple[float, str]], transform: Any) -> tuple[list[float], list[str]]:
    """Ticks of an image axis whose pixels are the grid ``values``: each wanted value inside the grid's
    range at its position interpolated in ``transform`` space (in which the grid is about evenly spaced)."""
    t = transform(values)
    ticks, labels = [], []
    for value, label in wanted:
        if values.min() <= value <= values.max():
            ticks.append(float(np.interp(transform(np.float64(value)), t, np.arange(values.size))))
            labels.append(label)
    return ticks, labels


def _label_ticks(z: np.ndarray) -> tuple[list[float], list[str]]:
    """Ticks of the label axis of an error map: its rows are 0, labels spaced evenly in logit, and 1."""
    inner = z[(z > 0) & (z < 1)]
    logit = lambda v: np.log(v) - np.log1p(-v)  # noqa: E731
    wanted = [(1e-4, "1e-4"), (0.5, "0.5"), (1 - 1e-4, "1−1e-4")]
    ticks, labels = _index_ticks(inner, wanted, logit) if inner.size > 1 else ([], [])
    offset = int(z[0] == 0)
    ticks = [t + offset for t in ticks]
    if z[0] == 0:
        ticks, labels = [0.0] + ticks, ["0"] + labels
    if z[-1] == 1:
        ticks, labels = ticks + [z.size - 1.0], labels + ["1"]
    keep = [i for i in range(len(ticks)) if all(abs(ticks[i] - ticks[j]) >= 2.5 for j in range(i))]
    return [ticks[i] for i in keep], [labels[i] for i in keep]


def _map_figure(emap: ErrorMap) -> str | None:
    """Small multiples of an error map: one heat map per candidate of the bits of error over the (logit,
    label) plane, one colour scale (0 to the format's width), non-finite results in blue; None if empty."""
    names = [n for n, rows in emap.bits.items() if len(rows) == len(emap.y)]
    if not names or not emap.x or not emap.y:
        return None
    top = _format_bits(emap.dtype)
    x, z = np.asarray(emap.x, dtype=float), np.asarray(emap.y, dtype=float)
    fig, axes, show_x, show_y = _panel_grid(len(names), bottom=0.55, right=0.75)
    cmap = _MAP_COLORS.with_extremes(bad=_MAP_NONFINITE)
    scale = float(np.abs(x[x != 0]).min()) if (x != 0).any() else 1.0
    xticks = _index_ticks(x, [(v, _tick_text(v)) for v in _symlog_ticks(x)], lambda v: np.arcsinh(v / scale))
    yticks = _label_ticks(z)
    image = None
    for ax, name, sx, sy in zip(axes, names, show_x, show_y):
        data = np.array([[np.nan if b is None else b for b in row] for row in emap.bits[name]], dtype=float)
        image = ax.imshow(np.ma.masked_invalid(data), origin="lower", aspect="auto", interpolation="nearest",
                          cmap=cmap, vmin=0, vmax=top)
        ax.set_title(_mpl(name), fontsize=8, pad=2)
        _ticks(ax, "x", sx, *xticks)
        _ticks(ax, "y", sy, *yticks)
    width, height = fig.get_figwidth(), fig.get_figheight()
    cax = fig.add_axes((1 - 0.62 / width, 0.55 / height, 0.12 / width, 1 - 0.85 / height))
    bar = fig.colorbar(image, cax=cax, ticks=range(0, top + 1, top // 4))
    bar.ax.tick_params(labelsize=7)
    bar.set_label("bits of error", fontsize=8)
    fig.supylabel(_mpl(f"{emap.y_name} z"), fontsize=8, x=0.08 / width)
    fig.text(0.5, 0.3 / height, _mpl(f"{emap.x_name} (symmetric log scale)"), ha="center", fontsize=8)
    fig.legend(handles=[Patch(color=_MAP_NONFINITE, label="non-finite result (no number)")], loc="lower right",
               fontsize=8, frameon=False, borderaxespad=0.1)
    return _png(fig)


def _symlog_ticks(x: Any) -> list[float]:
    """Major ticks of a symmetric-log axis over ``x``: 0 and powers of ten on both sides, every third decade
    from 10**0 outwards (small panels: labels apart, none at the very ends)."""
    mags = np.abs(np.asarray(x, dtype=float))
    mags = mags[(mags > 0) & np.isfinite(mags)]
    if not mags.size:
        return [0.0]
    lo, hi = int(math.floor(math.log10(mags.min()))), int(math.floor(math.log10(mags.max())))
    # every third decade from 10**0 (or the largest one) inwards, past the smallest: small panels, labels apart
    top = min(hi, max(lo + 1, 3 * (hi // 3)))
    powers = [10.0**k for k in range(top, lo, -3)] or [10.0**hi]
    return [-p for p in powers] + [0.0] + powers[::-1]


def _logit_ticks(x: Any, most: int = 9) -> tuple[list[float], list[str]]:
    """Ticks of a logit (probability) axis over ``x``: ``10**-k`` below one half, ``1 - 10**-k`` above, and
    0.5; chosen outwards from 0.5 at least a ``most``-th of the axis apart (in logit units) so labels never collide."""
    x = np.asarray(x, dtype=float)
    lo, hi = float(x.min()), float(x.max())
    logit = lambda p: math.log(p) - math.log1p(-p)  # noqa: E731
    gap = (logit(hi) - logit(lo)) / most if hi > lo else 1.0
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


def _histogram_figure(scores: list[Score], colors: dict[str, Any], what: str = "error histogram") -> str | None:
    """Grouped bars: share of examples per error bin, one bar per candidate; None if nothing was compared."""
    scores = [s for s in scores if s.examples > 0]
    if not scores:
        return None
    bins = list(HISTOGRAM_BINS) + ["no ULP"]
    labels = ["exact", "≤0.5", "≤1", "≤4", "≤1024", ">1024", "no ULP\n(non-finite,\nraised)"]
    width, height = max(6.0, 1.0 + 0.2 * len(scores) * len(bins)), 3.4
    fig = Figure(figsize=(width, height))  # fixed margins: a layout engine cost more than the drawing
    fig.subplots_adjust(left=0.6 / width, right=1 - 0.15 / width, bottom=0.95 / height, top=1 - 0.3 / height)
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
    ax.set_title(_mpl(f"{s0.family} · {s0.dtype}: {what}"), fontsize=10)
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


def render_section(section: Section, anchor: str = "", heading: str = "h2") -> str:
    """A section as HTML: heading (``heading``: h2, or h3 inside a family), lead paragraph (coloured by level),
    items as a key-value table, table, code blocks."""
    where = f' id="{anchor}"' if anchor else ""
    out = [f"<{heading}{where}>{_spans(section.title)}</{heading}>"]
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
        f'<span class="v-{v.level}">{_e(verdict_line(s))}</span> <span class="muted">({len(cases)} cases'
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
        gradient = " (gradient)" if r.plain.quantity == "gradient" else ""
        out.append(f"<tr><td>{_e(r.family)}</td><td>{_e(r.dtype)}</td><td><code>{_e(r.candidate)}</code>{gradient}</td>"
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
    gradients = of_quantity(result.scores, "gradient")
    out = [f'<p class="prov">{_e(provenance_line(result))}</p>']
    line = settings_line(result)
    if line:
        out.append(f'<p class="prov">{_e(line)}</p>')
    out.append(
        f"<p><b>{_e(tally_sentence(of_quantity(result.scores, 'loss')))}</b> Errors are in ULP of the exact value in the target format"
        " (0.5 = correctly rounded); ok = at most 1 ULP and no non-finite mistake. Mean bits: Herbie's bits of"
        " error. Other non-finite: nan where the exact value is infinite, the opposite infinity, or a number where"
        " it is undefined. Speed: time per element as a multiple of a memory copy of the same arrays.</p>"
    )
    if gradients:
        out.append(f"<p><b>Gradient: {_e(tally_sentence(gradients))}</b> The gradient with respect to the inputs, scored"
                   " component by component in the same way (its tables follow each family's loss table).</p>")
    out.append("<details><summary>Provenance and settings</summary><table class=\"kv\"><tbody>")
    out.extend(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in provenance_items(result))
    out.append("</tbody></table></details>")
    return out


def _curves_caption(curves: list[Curve], dtype: str, estimated: bool) -> str:
    """What a figure of sweeps shows: the loss's or the gradient's bits of error, and the candidates left out."""
    top = _format_bits(dtype)
    labels = "; ".join(c.label for c in curves)
    what = ("the gradient's component at the swept input" if curves[0].quantity == "gradient" else "")
    skipped = {name: why for c in curves for name, why in c.skipped.items()}
    return (
        f'<p class="muted">Bits of error{" of the gradient" if what else ""} along the swept {_e(curves[0].x_name)}'
        f" ({_e(labels)}), one panel per candidate{f' ({what})' if what else ''}: Herbie's log2(1 + n), n the"
        f" {_e(dtype)} numbers between the result and the correctly rounded value, counting one of them; 0 is"
        f" correctly rounded, {top} the worst an error can be in {_e(dtype)}. Non-finite results (no number) are ×"
        " at the top."
        + (" This report predates bits in the sweeps: they are estimated as log2(1 + ULP error)." if estimated else "")
        + (" Not drawn: " + "; ".join(f"<code>{_e(n)}</code> ({_e(why)})" for n, why in skipped.items()) + "." if skipped else "")
        + "</p>"
    )


def _plots(result: RunResult, family: str, dtype: str, scores: list[Score], colors: dict[str, Any]) -> list[str]:
    """The plots of one family x dtype (the sweeps' small multiples, the gradient's in their own figure, the
    error map, the histograms) with their captions; nothing to draw: []."""
    swept = [c for c in result.curves if c.family == family and c.dtype == dtype]
    figures = []
    for quantity in ("loss", "gradient"):
        curves = [c for c in swept if c.quantity == quantity]
        drawn = _curve_figure(curves, dtype)
        if drawn:
            figures.append((curves, *drawn))
        elif any(c.skipped for c in curves):  # nothing to draw: still say which candidates were left out, and why
            figures.append((curves, None, False))
    maps = [(m, _map_figure(m)) for m in result.error_maps if m.family == family and m.dtype == dtype]
    maps = [(m, png) for m, png in maps if png]
    histograms = [(what, _histogram_figure([s for s in of_quantity(scores, q) if s.dtype == dtype], colors, what))
                  for q, what in (("loss", "error histogram"), ("gradient", "gradient error histogram"))]
    histograms = [(what, png) for what, png in histograms if png]
    if not figures and not maps and not histograms:
        return []
    top = _format_bits(dtype)
    out = [f"<h3>{_e(family)} · {_e(dtype)}</h3>"]
    for curves, curve_png, estimated in figures:
        out.append(_curves_caption(curves, dtype, estimated))
        if curve_png is not None:
            what = "Bits of error along the swept input" if curves[0].quantity == "loss" else "Bits of error of the gradient along the swept input"
            out.append(f'<div class="plots"><img src="{curve_png}" alt="{_e(f"{what}, {family} in {dtype}")}"></div>')
    for m, png in maps:
        out.append(
            f'<p class="muted">Bits of error over the ({_e(m.x_name)}, {_e(m.y_name)}) plane, one panel per candidate'
            f" ({len(m.x)} x {len(m.y)} points, the label axis spaced evenly in logit between 0 and 1): light is"
            f" correctly rounded, dark is {top} bits; blue: a non-finite result. Where an implementation computes"
            " max(x, 0) − x·z, soft labels near 1 cancel at large positive logits.</p>"
        )
        out.append(f'<div class="plots"><img src="{png}" alt="{_e(f"Bits of error over logit and label, {family} in {dtype}")}"></div>')
    for what, hist_png in histograms:
        title = "Error histogram" if what == "error histogram" else "Gradient error histogram"
        out.append(f'<div class="plots"><img src="{hist_png}" alt="{_e(f"{title}, {family} in {dtype}")}"></div>')
    return out


def _bit_pattern_figure(sweep: dict[str, Any]) -> str | None:
    """The error against the swept input's bit pattern (``RunResult.sweep``): one panel per candidate (and
    one per candidate's gradient, over its components, when the sweep scored it), the
    min, mean and max fractional ULP error per bucket of patterns on a log axis (0 drawn at the bottom),
    and × at the top of each bucket with a non-finite mistake."""
    buckets = dict(sweep.get("buckets") or {})
    buckets.update((f"{name} (gradient)", b) for name, b in (sweep.get("gradient_buckets") or {}).items())
    if not buckets:
        return None
    names = list(buckets)
    fig = Figure(figsize=(9, 1.9 * len(names) + 0.7))
    floor = 1e-3
    axes = fig.subplots(len(names), 1, squeeze=False, sharex=True)[:, 0]
    for ax, name in zip(axes, names):
        b = buckets[name]
        x = np.asarray(b["x"], dtype=np.float64)
        tops = [v for v in b["max"] if v is not None]
        top = max(max(tops, default=1.0), 1.0) * 4
        for key, color, width in (("max", "tab:red", 0.9), ("mean", "tab:blue", 0.9), ("min", "tab:green", 0.7)):
            y = np.array([np.nan if v is None else max(v, floor) for v in b[key]], dtype=np.float64)
            ax.step(x, y, where="post", color=color, lw=width, label=key)
        bad = np.asarray(b["non_finite"]) > 0
        if bad.any():
            ax.plot(x[bad], np.full(int(bad.sum()), top), "x", color="black", ms=3, label="non-finite")
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, top * 3)
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        ax.set_ylabel("ULP error", fontsize=8)
        ax.set_title(_mpl(name), fontsize=9, loc="left")
    axes[0].legend(loc="upper right", fontsize=7, ncols=4)
    axes[-1].set_xlabel(f"bit pattern of the swept input ({_mpl(sweep.get('dtype', ''))})", fontsize=8)
    start, stop = sweep["bits"]
    from matplotlib.ticker import MultipleLocator

    # ticks on round hex patterns: a power of two, 4 to 8 of them over the range
    axes[-1].xaxis.set_major_locator(MultipleLocator(2 ** max(0, (max(stop - start, 2) // 4).bit_length() - 1)))
    axes[-1].xaxis.set_major_formatter(lambda v, _pos: f"0x{int(v):x}")
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.35 / fig.get_figheight(), bottom=0.55 / fig.get_figheight(), hspace=0.35)
    return _png(fig)


def _sweep_section(result: RunResult) -> list[str]:
    """A sweep's error-vs-bit-pattern plot (``lossfuzz sweep``); nothing for other reports."""
    sweep = result.sweep
    png = _bit_pattern_figure(sweep) if sweep else None
    if not png:
        return []
    start, stop = sweep["bits"]
    return [
        '<h2 id="bit-patterns">Error by bit pattern</h2>',
        f'<p class="muted">Exhaustive sweep of {_e(sweep["family"])} in {_e(sweep["dtype"])}, labels'
        f" {_e(sweep['labels'])}: {sweep['cases']:,} cases, the bit patterns 0x{start:x} to 0x{stop:x} of the swept"
        " input in buckets of consecutive patterns; per bucket the smallest, mean and largest ULP error of each"
        " candidate (0 drawn at the bottom; 0.5 dotted), × at the top where a bucket holds a non-finite mistake.</p>",
        f'<div class="plots"><img src="{png}" alt="{_e("Error by bit pattern of the swept input")}"></div>',
    ]


def _families(result: RunResult, groups: list[tuple[str, list[Score]]], colors: dict[str, Any]) -> list[str]:
    """The navigation, then per family its score table and the plots of each dtype."""
    plotted = list(result.curves) + list(result.error_maps)
    families = ordered_unique([f for f, _ in groups] + [c.family for c in plotted])
    out = []
    if families:
        out.append("<nav>" + "".join(f'<a href="#family-{i}">{_e(f)}</a>' for i, f in enumerate(families))
                   + '<a href="#worst">worst cases</a></nav>')
    scores_of = dict(groups)
    lead = True  # the gradient sections' lead is said once
    for i, family in enumerate(families):
        scores = scores_of.get(family, [])
        out.append(f'<h2 id="family-{i}">{_e(family)}</h2>')
        losses = of_quantity(scores, "loss")
        if losses:
            out.append(render_table(score_table(losses)))
        section = gradient_section(result, family, of_quantity(scores, "gradient"), lead)
        if section is not None:
            out.append(render_section(section, heading="h3"))
            lead = False
        dtypes = ordered_unique([s.dtype for s in scores] + [c.dtype for c in plotted if c.family == family])
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
    out += _sweep_section(result)
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
