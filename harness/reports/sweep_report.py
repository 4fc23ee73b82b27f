"""What a sweep writes beside report.json/.md/.html: the error-vs-bit-pattern plot (SVG) and its summary in
Markdown. Each function returns text; the command writes it (:mod:`harness.commands.sweep`)."""

from __future__ import annotations

import io
from typing import Any, Mapping

import numpy as np

from ._common import fmt_ulp

__all__ = ["bit_pattern_svg", "summary_markdown"]


def bit_pattern_svg(family: str, dtype: str, labels: str, buckets: Mapping[str, Mapping[str, list]]) -> str | None:
    """The error against the swept input's bit pattern: one panel per candidate, the min, mean and max
    fractional ULP error per bucket of patterns (log axis; 0 drawn at the bottom), and a mark at the top of
    every bucket with a non-finite mistake. None without buckets."""
    if not buckets:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(buckets)
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.2 * len(names) + 0.6), squeeze=False, sharex=True)
    floor = 1e-3
    for ax, name in zip(axes[:, 0], names):
        b = buckets[name]
        x = np.asarray(b["x"], dtype=np.float64)
        for key, style in (("max", dict(color="tab:red", lw=0.9)), ("mean", dict(color="tab:blue", lw=0.9)),
                           ("min", dict(color="tab:green", lw=0.7))):
            y = np.array([np.nan if v is None else max(v, floor) for v in b[key]], dtype=np.float64)
            ax.step(x, y, where="post", label=key, **style)
        bad = np.asarray(b["non_finite"]) > 0
        top = max([v for v in b["max"] if v is not None] + [1.0]) * 4
        if bad.any():
            ax.plot(x[bad], np.full(int(bad.sum()), top), "x", color="black", ms=3, label="non-finite")
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, top * 3)
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        ax.set_ylabel("ULP error")
        ax.set_title(f"{name}", fontsize=9, loc="left")
        ax.grid(alpha=0.2)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncols=4)
    last = axes[-1, 0]
    last.set_xlabel(f"bit pattern of the {'probability' if family == 'binary_ce' else 'logit'} ({dtype})")
    last.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"0x{int(v):x}"))
    fig.suptitle(f"{family} in {dtype}, labels {labels}: ULP error per bucket of bit patterns (min, mean, max)", fontsize=10)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The summary of a sweep (:func:`harness.exhaustive.summary`) as a Markdown table."""
    lines = [f"# lossfuzz sweep: {summary['family']} in {summary['dtype']}, labels {summary['labels']}", "",
             f"{summary['cases']:,} cases (bit patterns {summary['bits'][0]:#x}:{summary['bits'][1]:#x}),"
             f" {summary['wall_seconds']:.1f} s wall; oracle values fast/Ziv: {summary['paths'].get('fast', 0):,}/"
             f"{summary['paths'].get('ziv', 0):,}" + (" (PARTIAL)" if summary["partial"] else ""), "",
             f"`{summary['command']}`", "",
             "| candidate | max ULP | at input (label) | non-finite mistakes (finite inputs / ±inf, nan inputs) |"
             " correctly rounded |",
             "|---|--:|---|--:|--:|"]
    for name, row in summary["candidates"].items():
        if row.get("unsupported"):
            lines.append(f"| {name} | unsupported | | | |")
            continue
        at = f"{row['max_ulp_input']} ({row['max_ulp_label']})" if row.get("max_ulp_input") else ""
        share = row["correctly_rounded"] / row["examples"] if row["examples"] else 0.0
        lines.append(f"| {name} | {fmt_ulp(row['max_ulp'])} | {at} | {row['non_finite_on_finite_inputs']:,} /"
                     f" {row['non_finite_on_nonfinite_inputs']:,} | {share:.4%} ({row['correctly_rounded']:,}) |")
    return "\n".join(lines) + "\n"
