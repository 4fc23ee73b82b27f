"""What a sweep writes beside report.json/.md/.html (whose HTML page draws the error-vs-bit-pattern plot from
``RunResult.sweep``): its summary in Markdown. Returns text; the command writes it (:mod:`harness.commands.sweep`)."""

from __future__ import annotations

from typing import Any, Mapping

from ._common import fmt_ulp

__all__ = ["summary_markdown"]


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The summary of a sweep (:func:`harness.exhaustive.summary`) as Markdown: a table per quantity the sweep
    scored (the loss, the gradient's components), none for one it did not."""
    lines = [f"# lossfuzz sweep: {summary['family']} in {summary['dtype']}, labels {summary['labels']}", "",
             f"{summary['cases']:,} cases (bit patterns {summary['bits'][0]:#x}:{summary['bits'][1]:#x}),"
             f" {summary['wall_seconds']:.1f} s wall"
             + (f" (this run; {summary['chunks_from_journal']:,} of {summary['chunks']:,} chunks came from the journal"
                " of an earlier one)" if summary.get("chunks_from_journal") else "")
             + f"; oracle values fast/Ziv: {summary['paths'].get('fast', 0):,}/"
             f"{summary['paths'].get('ziv', 0):,}" + (" (PARTIAL)" if summary["partial"] else ""), "",
             f"`{summary['command']}`"]
    machines = summary.get("machines") or []
    if len(machines) == 1:
        lines += ["", f"Ran on {machines[0]} (numpy's float32 results depend on its SIMD targets)."]
    elif machines:
        lines += ["", f"Chunks ran on {len(machines)} different numpy builds or SIMD targets, so the figures mix"
                      f" them: {'; '.join(machines)}."]
    # numpy is named on the line above, with its targets
    environment = [", ".join(f"{name} {version}" for name, version in (summary.get("versions") or {}).items()
                             if name != "numpy")]
    if summary.get("git_commit"):
        dirty = " with uncommitted changes" if summary.get("git_dirty") else ""
        environment.append(f"lossfuzz at `{summary['git_commit'][:7]}`{dirty}")
    if any(environment):
        lines += ["", "With " + "; ".join(part for part in environment if part) + "."]
    quantities = summary.get("quantities", ("loss",))
    tables = [("Loss", summary["candidates"], "")] if "loss" in quantities else []
    if "gradients" in summary:
        tables.append(("Gradient (per component)", summary["gradients"], " zero where nonzero / wrong sign |"))
    for title, rows, extra in tables:
        lines += ["", f"## {title}", "",
                  "| candidate | max ULP | at input (label) | non-finite mistakes (finite inputs / ±inf, nan inputs) |"
                  " correctly rounded |" + extra, "|---|--:|---|--:|--:|" + ("--:|" if extra else "")]
        for name, row in rows.items():
            if row.get("unsupported"):
                lines.append(f"| {name} | unsupported{': ' + row['note'] if row.get('note') else ''} | | | |"
                             + (" |" if extra else ""))
                continue
            at = f"{row['max_ulp_input']} ({row['max_ulp_label']})" if row.get("max_ulp_input") else ""
            share = row["correctly_rounded"] / row["examples"] if row["examples"] else 0.0
            lines.append(f"| {name} | {fmt_ulp(row['max_ulp'])} | {at} | {row['non_finite_on_finite_inputs']:,} /"
                         f" {row['non_finite_on_nonfinite_inputs']:,} | {share:.4%} ({row['correctly_rounded']:,}) |"
                         + (f" {row['zero_where_nonzero']:,} / {row['wrong_sign']:,} |" if extra else ""))
    return "\n".join(lines) + "\n"
