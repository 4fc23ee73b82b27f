"""The "Gate" section on top of ``report.md`` for ``lossfuzz gate``: pass/fail, what got worse, how to replay.

Text only (the command writes the file): a headline, the thresholds, a table of the checks (each with its
quantity: the loss, or the gradient) that failed or warn (all of them when there are few), the passing ones folded in a ``<details>`` block, and for every
failure a table of the statistics that got worse (statistic, regime, baseline → now, limit, threshold) with
the case behind each and its replay command. Fits a GitHub Actions job summary.
"""

from __future__ import annotations

from harness.gate import Check, Comparison, GateResult

from ._common import case_error, fmt_ulp
from .markdown import _code_block, _code_span, _md_name, md_escape

__all__ = ["render_gate_markdown"]

_ICON = {"pass": "✅", "new": "🆕", "new_nonfinite": "⚠️", "regression": "❌", "missing": "❌"}
_WORDS = {"pass": "pass", "new": "new", "new_nonfinite": "new non-finite", "regression": "regression", "missing": "missing"}
_HEADER = ["| | family | candidate | dtype | quantity | max ULP: baseline → now | limit | non-finite on finite inputs |"
           " what changed |", "|---|---|---|---|---|--:|--:|--:|---|"]
_WORSE_HEADER = ["| statistic | regime | baseline → now | limit | threshold |", "|---|---|--:|--:|---|"]
# Rows shown in the open table before the passing ones are folded away.
_OPEN_ROWS = 12


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _row(c: Check) -> str:
    icon = "❌" if c.failed else _ICON[c.status]
    cells = [
        f"{icon} {_WORDS[c.status]}",
        _md_name(c.family),
        _md_name(c.candidate),
        _md_name(c.dtype),
        _md_name(c.quantity),
        f"{fmt_ulp(c.old_max_ulp)} → {fmt_ulp(c.new_max_ulp)}",
        fmt_ulp(c.limit),
        f"{_count(c.old_nonfinite)} → {_count(c.new_nonfinite)}",
        md_escape(c.summary),
    ]
    return "| " + " | ".join(cells) + " |"


def render_gate_markdown(result: GateResult, baseline: str = "the baseline", *, updated: str | None = None) -> str:
    """The gate section (Markdown) for ``result`` against the baseline named ``baseline``; ``updated``: the
    path a new baseline was written to, if one was."""
    failures, warnings = result.failures, result.warnings
    tally = result.tally()
    if updated is not None:
        head = f"# lossfuzz gate: baseline written to {_code_span(updated)}"
    elif failures:
        head = f"# lossfuzz gate: ❌ {len(failures)} of {len(result.checks)} checks got worse"
    else:
        head = f"# lossfuzz gate: ✅ passed ({len(result.checks)} checks)"
    nonfinite = "fail the gate" if result.fail_on_new_nonfinite else "are a warning (--allow-new-nonfinite)"
    out = [
        head,
        "",
        f"Against {_code_span(baseline)}: a regression is a statistic of the whole score or of a regime that grew"
        f" beyond its threshold ({md_escape(result.threshold_summary())}), a candidate that no longer runs, or a"
        f" key missing from this run. More non-finite results on finite inputs {nonfinite}. Speed is not compared.",
        "",
        f"**{tally['pass']} pass, {tally['regression']} regression, {tally['missing']} missing,"
        f" {tally['new_nonfinite']} new non-finite, {tally['new']} new.**",
        "",
    ]
    if not result.exact:
        out += ["> The baseline does not record the inputs its figures were computed on (a `lossfuzz run` report, or"
                " a corpus was added): its worst cases are replayed and outcome counts may grow by the number of"
                " inputs replayed without counting as worse. Write the baseline with `lossfuzz gate"
                " --update-baseline` for exact comparisons.", ""]
    out += [f"> {md_escape(note)}" for note in result.notes]
    if result.notes:
        out.append("")
    flagged = [c for c in result.checks if c.failed or c.status in ("new_nonfinite", "missing", "regression")]
    others = [c for c in result.checks if c not in flagged]
    if len(result.checks) <= _OPEN_ROWS:
        flagged, others = list(result.checks), []
    if flagged:
        out += _HEADER + [_row(c) for c in flagged] + [""]
    if others:
        out += [f"<details><summary>{len(others)} other checks</summary>", "", *_HEADER, *(_row(c) for c in others),
                "", "</details>", ""]
    shown = [c for c in failures + warnings if c.case is not None or c.worse]
    if shown:
        out += ["## What got worse", ""]
        for c in shown:
            out += [f"### {_md_name(c.family)} · {_md_name(c.candidate)} · {_md_name(c.dtype)} · {_md_name(c.quantity)}:"
                    f" {md_escape(c.summary)}", ""]
            if c.worse:
                out += _WORSE_HEADER + [_worse_row(w) for w in c.worse] + [""]
            if c.case is not None:
                out += _case_lines(c.case_label, c.case)
            cases = [c.case]
            for w in c.worse:
                if w.case is not None and all(w.case is not k for k in cases):
                    cases.append(w.case)
                    out += _case_lines(f"{w.words}: worst case", w.case)
    return "\n".join(out).rstrip("\n") + "\n"


def _worse_row(c: Comparison) -> str:
    cells = [md_escape(c.words.split(": ", 1)[-1]), _md_name(c.regime), md_escape(c.change), c.shown_limit,
             md_escape(str(c.threshold))]
    return "| " + " | ".join(cells) + " |"


def _case_lines(label: str, case) -> list[str]:
    return [
        f"- {md_escape(label[:1].upper() + label[1:])}: inputs {_code_span(', '.join(case.inputs[:8]))}{' …' if len(case.inputs) > 8 else ''},"
        f" labels {_code_span(', '.join(case.labels[:8]))}{' …' if len(case.labels) > 8 else ''}",
        f"- got {_code_span(case.got)}, exact {_code_span(case.exact)} (correctly rounded"
        f" {_code_span(case.rounded)}): **{md_escape(case_error(case))}**",
        "",
        _code_block(case.replay),
        "",
    ]
