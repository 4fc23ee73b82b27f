"""Outcomes counted once (harness.outcomes) and report sections defined once (harness.reports.sections):
the gate, the audit verdict, the reports and the terminal summary agree on every non-finite kind, and the
Markdown and HTML writers render the same columns and the same verdict items."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from harness.auditing import audit_verdict
from harness.gate import nonfinite_on_finite_inputs
from harness.outcomes import tally_outcomes
from harness.records import COUNTED_OUTCOMES, NON_FINITE_MISTAKES, HISTOGRAM_BINS, RunResult, Score, WorstCase
from harness.reports import verdict
from harness.reports.html import render_html
from harness.reports.markdown import render_markdown
from harness.reports.sections import SCORE_COLUMNS, audit_sections


def _score(candidate: str = "f", **counts: int) -> Score:
    return Score(family="sigmoid_ce", candidate=candidate, dtype="float32", reduction="none", examples=100,
                 max_ulp=0.5, mean_ulp=0.1, median_ulp=0.1, p99_ulp=0.5, max_bits=0.0, mean_bits=0.0,
                 counts={**dict.fromkeys(COUNTED_OUTCOMES, 0), **counts},
                 histogram={**dict.fromkeys(HISTOGRAM_BINS, 0), "exact": 90})


def _summary_cell(score: Score) -> str:
    from harness.commands.run import _cell  # the terminal summary's cell (a command is a face: imported here only)

    return _cell(score)


@pytest.mark.parametrize("kind", NON_FINITE_MISTAKES)
def test_every_non_finite_kind_counts_alike_in_gate_audit_reports_and_terminal(kind):
    score = _score(**{kind: 3})
    assert tally_outcomes(score).non_finite == 3
    assert nonfinite_on_finite_inputs(score) == 3
    assert verdict(score).text == "non-finite results"
    v = audit_verdict(RunResult(settings={}, provenance={}, scores=(score,), wall_seconds=0.0), "f")
    assert (v.non_finite, v.non_finite_on_finite_inputs, v.level) == (3, 3, "bad")
    assert _summary_cell(score) == "0.5 (3 nan/inf)"  # it once counted nan, inf and finite_where_infinite only


def test_mistakes_on_nonfinite_inputs_are_told_apart_everywhere():
    score = _score(nan=2, wrong_infinity=3, on_nonfinite_inputs=5, raised=4)
    tally = tally_outcomes(score)
    assert (tally.non_finite, tally.on_finite_inputs, tally.raised) == (5, 0, 4)
    assert nonfinite_on_finite_inputs(score) == 0
    assert verdict(score).text == "non-finite results on ±inf/nan inputs only, raised on 4"
    v = audit_verdict(RunResult(settings={}, provenance={}, scores=(score,), wall_seconds=0.0), "f")
    assert (v.non_finite, v.non_finite_on_finite_inputs, v.failed_calls) == (5, 0, 4)


# ------------------------------------------------------------------------------------ sections


def _md_header(md: str) -> list[str]:
    line = next(line for line in md.splitlines() if line.startswith("| candidate |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def _html_header(page: str) -> list[str]:
    head = re.search(r"<table><thead><tr>(.*?)</tr></thead>", page).group(1)
    return re.findall(r"<th>(.*?)</th>", head)


def test_the_markdown_and_html_score_tables_have_the_same_columns():
    result = RunResult(settings={}, provenance={}, scores=(_score(number_where_nan=2),), wall_seconds=1.0)
    md, page = render_markdown(result), render_html(result)
    names = [c.name for c in SCORE_COLUMNS]
    assert _md_header(md) == names
    assert [h.replace("&gt;", ">") for h in _html_header(page)] == names
    assert len(names) == 16
    row = next(line for line in md.splitlines() if line.startswith("| f |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[names.index("other non-finite")] == "**2**"
    assert re.search(r'<td class="n hot">2</td>', page)


def _audited() -> RunResult:
    case = WorstCase(("0x1p+0",), ("0x0p+0",), "nan", "1.3132616875182228340", "0x1.502b84p+0", None, "nan",
                     "lossfuzz exact sigmoid_ce --logits=0x1p+0 --labels=0x0p+0 --dtype float32 --candidate m:f")
    mine = _score(nan=1)
    mine = replace(mine, worst=(case,), reproducer=case)
    builtin = _score("numpy_stable")
    result = RunResult(settings={}, provenance={}, scores=(mine, builtin), wall_seconds=1.0)
    v = audit_verdict(result, "f", target="m:f", convention="called as f(z, x)", replay_note="a lambda")
    return replace(result, audit=v.to_json())


def test_the_audit_section_has_the_same_items_in_markdown_and_html():
    result = _audited()
    (section,) = audit_sections(result)
    labels = [item.label for item in section.items]
    assert labels == ["convention", "worst cases at", "minimal reproducer (float32)", "best built-in for comparison"]
    md, page = render_markdown(result), render_html(result)
    assert [m for m in re.findall(r"^- \*\*(.*?)\*\*:", md, re.M)] == labels
    assert re.findall(r'<table class="kv"><tbody>(.*?)</tbody>', page)[0].count("<tr>") == len(labels)
    for label in labels:
        assert f"<tr><td>{label}</td>" in page
    # the replay: its note and its command in both
    assert "Replay: not available (a lambda); the exact value:" in md
    assert "<p>Replay: not available (a lambda); the exact value:</p>" in page
    verdict_md = md.split("## sigmoid")[0]  # the verdict comes first; the score tables and worst cases follow
    assert verdict_md.count("```sh\nlossfuzz exact sigmoid_ce --logits=0x1p+0") == 1
    assert "<pre>lossfuzz exact sigmoid_ce --logits=0x1p+0" in page.split('<p class="prov">')[0]
