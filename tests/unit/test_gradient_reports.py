"""Gradient rows in the reports, the gradient sweeps and `lossfuzz compare` (issue 12, the report side).

The gradient rows here are real ``Score(..., quantity="gradient")`` records built by the tests (the campaign
that produces them is scored elsewhere); the sweeps run real candidates against ``oracles.evaluate(...,
what="gradient")``. Loss-only reports are checked against what the code before gradients rendered.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

from harness.candidates import Candidate, get_candidate
from harness.comparison import compare_reports
from harness.records import COUNTED_OUTCOMES, HISTOGRAM_BINS, Curve, RegimeScore, RunResult, Score, WorstCase
from harness.reports import render
from harness.reports.comparison import render_markdown as compare_markdown
from harness.reports.markdown import md_escape
from harness.sweep import sweep

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LOSS_ONLY = FIXTURES / "loss_only"
_PNG = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def _score(candidate="naive", family="sigmoid_ce", dtype="float32", quantity="loss", **kw) -> Score:
    counts = dict.fromkeys(COUNTED_OUTCOMES, 0)
    counts.update(kw.pop("counts", {}))
    histogram = dict.fromkeys(HISTOGRAM_BINS, 0)
    histogram.update(kw.pop("histogram", {"exact": 90, "<=1": 10}))
    data = dict(family=family, candidate=candidate, dtype=dtype, reduction="none", examples=100, max_ulp=0.5,
                mean_ulp=0.125, median_ulp=0.0, p99_ulp=0.5, max_bits=1.0, mean_bits=0.25, counts=counts,
                histogram=histogram, source=f"{candidate}: a test formula", quantity=quantity)
    data.update(kw)
    return Score(**data)


def _block(max_ulp, examples=50, **counts) -> RegimeScore:
    return RegimeScore(examples, max_ulp, max_ulp, 0.0, 0.1, 1.0, 0.1, {**dict.fromkeys(COUNTED_OUTCOMES, 0), **counts})


def _result(*scores: Score, curves=(), quantities=None) -> RunResult:
    settings = {"seed": 0, "examples": 10, "families": ["sigmoid_ce"], "dtypes": ["float32"]}
    if quantities is not None:
        settings["quantities"] = list(quantities)
    return RunResult(settings=settings, provenance={"seed": 0}, scores=scores, wall_seconds=1.0, curves=tuple(curves))


def _section(markdown: str, heading: str) -> str:
    """The text of the Markdown section whose heading line is ``heading``, up to the next ``## ``."""
    start = markdown.index(heading + "\n")
    end = markdown.find("\n## ", start + len(heading))
    return markdown[start:] if end < 0 else markdown[start:end]


def _table_rows(section: str) -> list[list[str]]:
    """The cells of each body row of the first table in ``section``."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]


# A loss row within 0.5 ULP and a gradient row of the same candidate with a vanishing gradient.
LOSS = _score("keras_clipped", max_ulp=0.5)
ZERO = WorstCase(("-0x1.9p+6",), ("0x1p+0",), "0x0p+0", "-1.0000000000000000000", "-0x1p+0", 3.5e7,
                 "zero_where_nonzero", "lossfuzz exact sigmoid_ce --logits=-0x1.9p+6 --labels=0x1p+0 --dtype float32"
                 " --candidate keras_clipped --gradient")
GRADIENT = _score("keras_clipped", quantity="gradient", max_ulp=3.5e7, p99_ulp=2.0e7,
                  counts={"zero_where_nonzero": 7, "wrong_sign": 2}, worst=(ZERO,),
                  regimes={"hard": _block(3.5e7, zero_where_nonzero=7), "soft": _block(0.5)})


# ------------------------------------------------------------------------------------------ loss-only reports


def test_a_loss_only_report_renders_exactly_as_before_gradients_were_scored():
    # tests/fixtures/loss_only: a real run (2 families, 5 candidates with an _upcast variant, 2 dtypes, regimes,
    # curves) and its report.md/report.html as commit 1cc8368 rendered them (the plots' PNG data elided).
    result = RunResult.from_json(json.loads((LOSS_ONLY / "report.json").read_text()))
    assert all(s.quantity == "loss" for s in result.scores) and result.curves
    assert render(result, "md") == (LOSS_ONLY / "report.md").read_text()
    assert _PNG.sub("data:image/png;base64,…", render(result, "html")) == (LOSS_ONLY / "report.html").read_text()


def test_a_run_with_quantities_loss_renders_the_tables_it_rendered_before():
    result = RunResult.from_json(json.loads((LOSS_ONLY / "report.json").read_text()))
    loss_only = replace(result, settings={**result.settings, "quantities": ["loss"]})
    assert render(loss_only, "md") == (LOSS_ONLY / "report.md").read_text()
    page = _PNG.sub("data:image/png;base64,…", render(loss_only, "html"))
    # the one addition: the setting itself, in the provenance and settings list
    assert page.replace("\n<tr><td>settings.quantities</td><td>loss</td></tr>", "", 1) == (LOSS_ONLY / "report.html").read_text()


# ------------------------------------------------------------------------------------------ gradient tables


def test_the_gradient_table_shows_the_gradient_rows_figures_and_the_loss_table_the_loss_rows():
    md = render(_result(LOSS, GRADIENT), "md")
    (loss_row,) = _table_rows(_section(md, "## sigmoid_ce"))
    (gradient_row,) = _table_rows(_section(md, "## sigmoid_ce: gradient"))
    assert loss_row[0] == gradient_row[0] == "keras_clipped"
    assert loss_row[3] == "0.5" and "3.5e+07" not in "|".join(loss_row)
    assert gradient_row[3] == "**3.5e+07**" and gradient_row[4] == "**2e+07**"
    head = [line for line in _section(md, "## sigmoid_ce: gradient").splitlines() if line.startswith("| candidate")][0]
    columns = [c.strip() for c in head.strip("|").split(" | ")]
    # the counts only a gradient has, in their own columns, next to the other outcome counts
    assert gradient_row[columns.index("zero where nonzero")] == "**7**"
    assert gradient_row[columns.index("wrong sign")] == "**2**"
    assert "zero where nonzero" not in _section(md, "## sigmoid_ce").split("## sigmoid_ce: gradient")[0]


def test_the_verdict_lines_say_gradient_apart_and_the_tallies_count_each_quantity():
    md = render(_result(LOSS, GRADIENT), "md")
    assert "**1 scores: 1 ok, 0 with problems, 0 failed, 0 unsupported or not compared.**" in md
    assert "**Gradient: 1 scores: 0 ok, 1 with problems, 0 failed, 0 unsupported or not compared.**" in md
    (heading,) = [line for line in md.splitlines() if line.startswith("### sigmoid")]
    assert heading.startswith("### sigmoid_ce · keras_clipped · float32: gradient: inaccurate, 7 zero where nonzero, 2 wrong sign")
    page = render(_result(LOSS, GRADIENT), "html")
    assert "<b>Gradient: 1 scores: 0 ok, 1 with problems" in page
    assert '<span class="v-bad">gradient: inaccurate, 7 zero where nonzero, 2 wrong sign' in page


def test_the_gradient_regime_matrix_follows_the_loss_one_with_the_gradients_figures():
    loss = replace(LOSS, regimes={"hard": _block(0.25), "soft": _block(0.5)})
    md = render(_result(loss, GRADIENT), "md")
    assert md.index("## sigmoid_ce by regime") < md.index("## sigmoid_ce gradient by regime")
    (row,) = _table_rows(_section(md, "## sigmoid_ce gradient by regime"))
    assert row[:2] == ["float32", "keras_clipped"]
    assert row[2] == "**3.5e+07 (7 zero where nonzero)**" and row[3] == "0.5"
    (loss_row,) = _table_rows(_section(md, "## sigmoid_ce by regime"))
    assert loss_row[2:4] == ["0.25", "0.5"]
    assert "sigmoid_ce</code> gradient by regime" in render(_result(loss, GRADIENT), "html")


def test_a_candidate_without_a_gradient_shows_its_gradient_note():
    sklearn = get_candidate("binary_ce", "sklearn")
    assert sklearn.gradient_note  # the registry's reason, shown as is
    scores = (_score("accurate", family="binary_ce"), _score("accurate", family="binary_ce", quantity="gradient"),
              _score("sklearn", family="binary_ce", reduction="mean"))
    md = render(_result(*scores), "md")
    section = _section(md, "## binary_ce: gradient")
    assert f"- **no gradient**: sklearn: {md_escape(sklearn.gradient_note)}" in section
    assert [r[0] for r in _table_rows(section)] == ["accurate"]
    page = render(_result(*scores), "html")
    assert f"<code>sklearn</code>: {html.escape(sklearn.gradient_note)}" in page


def test_a_run_that_asked_for_gradients_says_so_even_where_none_was_scored():
    md = render(_result(_score("naive"), quantities=("loss", "gradient")), "md")
    assert "- **no gradient**: naive: no gradient scored in this run" in _section(md, "## sigmoid_ce: gradient")
    assert "gradient" not in render(_result(_score("naive"), quantities=("loss",)), "md")


def test_an_unsupported_gradient_row_says_why():
    row = _score("sklearn", family="binary_ce", quantity="gradient", unsupported=True, examples=0, max_ulp=None,
                 failure="scikit-learn's log_loss is a metric with no autodiff")
    md = render(_result(_score("sklearn", family="binary_ce"), row), "md")
    (cells,) = _table_rows(_section(md, "## binary_ce: gradient"))
    assert cells[-1] == "➖ unsupported: scikit-learn's log\\_loss is a metric with no autodiff"


# ------------------------------------------------------------------------------------------ gradient sweeps


def _test_candidate(name: str, family: str, target: str, **kw) -> Candidate:
    return Candidate(name, family, f"tests.fixtures.broken_gradients:{target}", ("float32", "float64"), **kw)


def test_gradient_curves_compare_each_candidates_gradient_with_the_exact_gradient():
    chosen = [get_candidate("sigmoid_ce", "accurate"), _test_candidate("vanishing", "sigmoid_ce", "sigmoid_ce")]
    curves = sweep("sigmoid_ce", "float32", chosen, quantities=("loss", "gradient"))
    assert [c.quantity for c in curves] == ["loss", "loss", "gradient", "gradient"]  # the loss curves first
    for curve in curves:
        good = [e for e in curve.errors["accurate"] if e is not None]
        assert len(good) == len(curve.x) and max(good) <= 1.0
    hard = next(c for c in curves if c.quantity == "gradient" and c.label == "z = 1")
    # The zero gradient: at x = -1e4 the exact gradient sigmoid(x) - 1 is -1, so 0 is many ULP off; the loss
    # of the same candidate is accurate there (a sweep that compared with the loss would see no error).
    at = hard.x.index(min(hard.x))
    assert hard.errors["vanishing"][at] > 1e6
    loss = next(c for c in curves if c.quantity == "loss" and c.label == "z = 1")
    assert loss.errors["vanishing"][at] <= 1.0


def test_a_row_familys_gradient_curve_reads_the_swept_logits_component():
    chosen = [get_candidate("softmax_ce", "accurate"), _test_candidate("first_only", "softmax_ce", "softmax_ce")]
    curves = sweep("softmax_ce", "float32", chosen, quantities=("gradient",))
    assert curves and all(c.quantity == "gradient" for c in curves)
    for curve in curves:
        for name in ("accurate", "first_only"):
            errors = curve.errors[name]
            assert len(errors) == len(curve.x) and all(e is not None and e <= 1.0 for e in errors), name


def test_a_candidate_without_a_gradient_or_whose_gradient_raises_is_skipped_with_a_note():
    chosen = [get_candidate("sigmoid_ce", "accurate"),
              _test_candidate("noted", "sigmoid_ce", "sigmoid_ce", gradient_note="a metric, no autodiff"),
              _test_candidate("raises", "sigmoid_ce", "raising")]
    curves = sweep("sigmoid_ce", "float32", chosen, quantities=("loss", "gradient"))
    for curve in curves:
        if curve.quantity == "loss":
            assert set(curve.errors) == {"accurate", "noted", "raises"} and not curve.skipped
        else:
            assert set(curve.errors) == {"accurate"}
            assert curve.skipped == {"noted": "no gradient: a metric, no autodiff",
                                     "raises": "gradient raised FloatingPointError: this gradient always raises"}


def test_loss_only_sweeps_are_the_curves_they_were():
    chosen = [get_candidate("sigmoid_ce", "accurate")]
    curves = sweep("sigmoid_ce", "float32", chosen)
    assert [c.quantity for c in curves] == ["loss", "loss"]
    data = curves[0].to_json()
    assert "quantity" not in data and "skipped" not in data  # the JSON of a loss curve keeps its form
    assert Curve.from_json(data) == curves[0]
    gradient = sweep("sigmoid_ce", "float32", chosen, quantities=("gradient",))[0]
    assert gradient.to_json()["quantity"] == "gradient" and Curve.from_json(gradient.to_json()) == gradient


def test_the_html_page_draws_the_gradient_curves_in_their_own_figure_with_the_skipped_notes():
    x = (-100.0, -1.0, 1.0, 100.0)
    curves = (Curve("sigmoid_ce", "float32", "z = 1", "logit", x, {"accurate": (0.5, 0.0, 0.0, 0.5)}),
              Curve("sigmoid_ce", "float32", "z = 1", "logit", x, {"accurate": (0.25, 0.0, 0.0, 0.25)},
                    quantity="gradient", skipped={"naive": "gradient raised ValueError: no"}))
    page = render(_result(LOSS, GRADIENT, curves=curves), "html")
    assert page.count('alt="Bits of error along the swept input, sigmoid_ce in float32"') == 1
    assert page.count('alt="Bits of error of the gradient along the swept input, sigmoid_ce in float32"') == 1
    assert "Not drawn: <code>naive</code> (gradient raised ValueError: no)." in page
    assert page.count('alt="Gradient error histogram, sigmoid_ce in float32"') == 1


# ------------------------------------------------------------------------------------------ compare


def test_compare_keys_rows_by_quantity_and_marks_a_gradient_regression_on_its_own_row():
    before = _result(LOSS, replace(GRADIENT, max_ulp=0.5, counts=dict.fromkeys(COUNTED_OUTCOMES, 0), regimes={}))
    after = _result(LOSS, replace(GRADIENT, regimes={}))
    table = compare_reports([before, after], ["a.json", "b.json"])
    marks = {r.key: r.deltas[0].mark for r in table.rows}
    assert marks == {("sigmoid_ce", "keras_clipped", "float32", "loss", "all"): "same",
                     ("sigmoid_ce", "keras_clipped", "float32", "gradient", "all"): "regression"}
    md = compare_markdown(table)
    assert "| family | candidate | dtype | quantity | regime |" in md
    rows = {tuple(r[:5]): r for r in _table_rows(md[md.index("| family"):])}
    assert rows[("sigmoid_ce", "keras_clipped", "float32", "gradient", "all")][-1].startswith("**worse**: max ULP 0.5 → 3.5e+07")


def test_compare_tables_of_loss_only_reports_have_no_quantity_column():
    a, b = _result(LOSS), _result(replace(LOSS, max_ulp=0.75))
    md = compare_markdown(compare_reports([a, b], ["a", "b"]))
    assert "| family | candidate | dtype | regime | max ULP A |" in md and "quantity" not in md
