"""`lossfuzz compare`: reports side by side, rows marked by the rules of harness.comparison, three formats,
one-line errors for bad input."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from harness.campaign import Settings, run_campaign
from harness.cli import main
from harness.comparison import ALL_REGIME, compare_reports
from harness.records import COUNTED_OUTCOMES, HISTOGRAM_BINS, SCHEMA_VERSION, RegimeScore, RunResult, Score
from harness.reports.comparison import RENDERERS, latex_escape, render_html, render_latex, render_markdown
from harness.reports import fmt_ulp
from harness.reports.json_report import render_json
from harness.options import COMPARE_FORMATS

SMALL = Settings(families=("sigmoid_ce",), candidates=("naive", "numpy_stable"), dtypes=("float32",), examples=8,
                 speed_elements=0, shrink=False)
ODD = "my_loss$&%#{}~^\\"  # LaTeX's special characters in a candidate name


@pytest.fixture(scope="module")
def two_runs() -> tuple[RunResult, RunResult]:
    a, _ = run_campaign(SMALL)
    b, _ = run_campaign(replace(SMALL, seed=1))
    return a, b


def _score(candidate: str = "numpy_stable", dtype: str = "float32", **kw) -> Score:
    counts = dict.fromkeys(COUNTED_OUTCOMES, 0)
    counts.update(kw.pop("counts", {}))
    base = dict(family="sigmoid_ce", candidate=candidate, dtype=dtype, reduction="none", examples=1000,
                max_ulp=0.5, mean_ulp=0.2, median_ulp=0.2, p99_ulp=0.5, max_bits=1.0, mean_bits=0.1,
                counts=counts, histogram=dict.fromkeys(HISTOGRAM_BINS, 0))
    base.update(kw)
    return Score(**base)


def _result(*scores: Score) -> RunResult:
    return RunResult(settings={}, provenance={}, wall_seconds=1.0, scores=scores)


def _mark(a: Score, b: Score) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    (row,) = compare_reports([_result(a), _result(b)], ["a", "b"]).rows
    (d,) = row.deltas
    return d.mark, d.worse, d.better


# ------------------------------------------------------------------------------------------- two real runs


def test_two_runs_with_different_seeds_are_put_side_by_side_with_their_own_figures(two_runs):
    a, b = two_runs
    table = compare_reports([a, b], ["seed0.json", "seed1.json"])
    # each score's row, then one row per regime it has, in the family's order (B's regimes may add rows)
    keys = [r.key for r in table.rows]
    expected = [key for s in a.scores for key in [(*s.key, ALL_REGIME)] + [(*s.key, name) for name in s.regimes]]
    assert [k for k in keys if k in set(expected)] == expected and len(expected) > 2 * len(a.scores)
    for row in table.rows:
        for result, figures in zip((a, b), row.figures):
            score = result.score(row.family, row.candidate, row.dtype, row.quantity)
            if row.regime != ALL_REGIME:
                score = score.regimes.get(row.regime)
                if score is None:
                    assert figures is None  # a regime this run did not reach: shown as missing
                    continue
            assert (figures.max_ulp, figures.p99_ulp, figures.mean_bits) == (score.max_ulp, score.p99_ulp, score.mean_bits)
            assert figures.non_finite == sum(score.counts[k] for k in ("nan", "inf", "finite_where_infinite", "nan_where_infinite",
                                                                      "wrong_infinity", "number_where_nan"))
    text = render_markdown(table)
    assert "seed0.json" in text and "seed1.json" in text
    # the runs score gradients too, so a quantity column stands before the regime
    (line,) = [line for line in text.splitlines() if line.startswith("| sigmoid_ce | naive | float32 | loss | all |")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    for i, result in enumerate((a, b)):
        naive = result.score("sigmoid_ce", "naive", "float32")
        assert cells[5 + 4 * i] == fmt_ulp(naive.max_ulp) and cells[8 + 4 * i] == str(sum(
            naive.counts[k] for k in ("nan", "inf", "finite_where_infinite", "nan_where_infinite", "wrong_infinity",
                                      "number_where_nan")))


def test_a_report_against_itself_marks_nothing_and_exits_0(two_runs, tmp_path, capsys):
    a, _ = two_runs
    path = tmp_path / "a.json"
    path.write_text(render_json(a))
    assert main(["compare", str(path), str(path)]) == 0
    out = capsys.readouterr().out
    assert "0 regressions, 0 improvements" in out
    assert "worse" not in out.split("better: the reverse)")[1]


def test_a_regression_injected_into_one_report_is_marked_and_exits_1(two_runs, tmp_path, capsys):
    a, _ = two_runs
    broken = replace(a, scores=tuple(replace(s, max_ulp=1e9, p99_ulp=1e8) if (s.candidate, s.quantity) == ("numpy_stable", "loss")
                                     else s for s in a.scores))
    (tmp_path / "a.json").write_text(render_json(a))
    (tmp_path / "b.json").write_text(render_json(broken))
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    lines = capsys.readouterr().out.splitlines()
    (stable,) = [line for line in lines if line.startswith("| sigmoid_ce | numpy_stable | float32 | loss | all |")]
    assert stable.rstrip(" |").split("| ")[-1].startswith("**worse**: max ULP")
    assert "→ 1e+09" in stable and "p99 ULP" in stable
    (naive,) = [line for line in lines if line.startswith("| sigmoid_ce | naive | float32 | loss | all |")]
    assert "worse" not in naive and "better" not in naive
    # the same injection the other way round is an improvement, exit 0
    assert main(["compare", str(tmp_path / "b.json"), str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    (stable,) = [line for line in out.splitlines() if line.startswith("| sigmoid_ce | numpy_stable | float32 | loss | all |")]
    assert "| better: max ULP 1e+09 → " in stable and "1 improvements" in out


# -------------------------------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("old, new, mark", [
    (0.4, 0.9, "same"),          # below the 1 ULP floor: rounding noise
    (100.0, 149.0, "same"),      # within 1.5x
    (100.0, 151.0, "regression"),
    (151.0, 100.0, "improvement"),
    (0.5, 2.0, "regression"),
    (math.inf, math.inf, "same"),
    (1e30, math.inf, "regression"),
    (3.0, None, "regression"),   # the figure disappeared: every value non-finite
    (None, 3.0, "improvement"),
])
def test_max_ulp_is_worse_above_the_gates_limit(old, new, mark):
    assert _mark(_score(max_ulp=old, p99_ulp=0.5), _score(max_ulp=new, p99_ulp=0.5))[0] == mark


def test_mean_bits_and_non_finite_mistakes_are_marked_beyond_their_tolerance():
    assert _mark(_score(mean_bits=1.0), _score(mean_bits=1.9))[0] == "same"
    assert _mark(_score(mean_bits=1.0), _score(mean_bits=2.2)) == ("regression", ("mean bits 1.0 → 2.2",), ())
    nan = lambda n: {"nan": n}  # noqa: E731
    assert _mark(_score(), _score(counts=nan(1))) == ("regression", ("non-finite 0 → 1",), ())
    assert _mark(_score(counts=nan(10)), _score(counts=nan(14)))[0] == "same"  # share up 1.4x: other inputs drawn
    assert _mark(_score(counts=nan(10)), _score(counts=nan(16)))[0] == "regression"
    assert _mark(_score(counts=nan(10)), _score(counts=nan(16), examples=2000))[0] == "same"  # same share
    assert _mark(_score(counts=nan(10)), _score())[0] == "improvement"


def test_worse_wins_over_better_and_both_are_listed():
    mark, worse, better = _mark(_score(max_ulp=1e6, mean_bits=1.0), _score(max_ulp=0.5, mean_bits=5.0))
    assert (mark, worse, better) == ("regression", ("mean bits 1.0 → 5.0",), ("max ULP 1e+06 → 0.5",))


def test_a_candidate_no_longer_scored_is_a_regression_and_rows_in_one_report_only_are_missing():
    a = _result(_score("numpy_stable"), _score("tf"))
    b = _result(_score("numpy_stable", examples=0, max_ulp=None, p99_ulp=None, mean_bits=None, unsupported=True),
                _score("torch"))
    table = compare_reports([a, b], ["a", "b"])
    marks = {r.candidate: r.deltas[0].mark for r in table.rows}
    assert marks == {"numpy_stable": "regression", "tf": "missing", "torch": "missing"}
    assert [r.candidate for r in table.rows] == ["numpy_stable", "tf", "torch"]  # the base's order, then the new
    assert table.rows[1].figures[1] is None and table.rows[2].figures[0] is None
    assert "| — | — | — | — |" in render_markdown(table)


def test_per_regime_rows_follow_the_whole_score_and_are_compared_alone():
    """Score.regimes (name -> RegimeScore, a score's attribute names) gives a row per regime after the whole."""
    def regime(examples: int, max_ulp: float, p99_ulp: float, mean_bits: float) -> RegimeScore:
        return RegimeScore(examples, max_ulp, p99_ulp, None, None, None, mean_bits, dict.fromkeys(COUNTED_OUTCOMES, 0))

    def scored(soft_max: float) -> Score:
        return _score(max_ulp=max(2.0, soft_max),
                      regimes={"hard": regime(500, 2.0, 1.0, 0.5), "soft": regime(400, soft_max, 10.0, 3.0)})
    table = compare_reports([_result(scored(1392.0)), _result(scored(1.7e7))], ["a", "b"])
    assert [r.regime for r in table.rows] == ["all", "hard", "soft"]
    assert [r.deltas[0].mark for r in table.rows] == ["regression", "same", "regression"]
    assert table.rows[2].figures[1].max_ulp == 1.7e7


def test_fewer_than_two_reports_is_a_value_error():
    with pytest.raises(ValueError, match="at least 2 reports"):
        compare_reports([_result(_score())], ["a"])


# ------------------------------------------------------------------------------------------------ formats


def _odd_table():
    a = _result(_score(ODD), _score("<script>x</script>"))
    b = _result(_score(ODD, max_ulp=50.0), _score("<script>x</script>"))
    return compare_reports([a, b], ["runs/a_1.json", "runs/b|2.json"])


def test_every_format_renders_and_the_formats_are_the_commands_choices():
    assert tuple(RENDERERS) == COMPARE_FORMATS
    table = _odd_table()
    for fmt, render in RENDERERS.items():
        text = render(table)
        assert "worse" in text and "50" in text, fmt


def test_a_report_from_other_libraries_or_simd_targets_is_said_in_every_format():
    here = {"versions": {"numpy": "2.4.6"}, "machine": {"numpy_simd": {"baseline": ["X86_V2"], "found": ["X86_V3"]}}}
    there = {"versions": {"numpy": "2.4.6"},
             "machine": {"numpy_simd": {"baseline": ["X86_V2"], "found": ["X86_V3", "X86_V4"]}}}
    a, b = (replace(_result(_score()), provenance=p) for p in (there, here))
    table = compare_reports([a, b, a], ["x86_v4.json", "x86_v3.json", "again.json"])
    assert table.elsewhere == (("numpy SIMD X86_V2 X86_V3 X86_V4 → X86_V2 X86_V3",), ())
    for fmt, render in RENDERERS.items():
        text = render(table)
        assert "B ran with other libraries or SIMD targets than A" in text and "C ran" not in text, fmt
        assert "V4" in text and "V2" in text, fmt  # escaped per format (X86\_V4 in Markdown)
    assert "ran with other" not in RENDERERS["md"](compare_reports([a, a], ["a", "b"]))


def test_latex_escapes_its_special_characters():
    assert latex_escape(ODD) == r"my\_loss\$\&\%\#\{\}\textasciitilde{}\textasciicircum{}\textbackslash{}"
    text = render_latex(_odd_table())
    assert latex_escape(ODD) in text and ODD not in text
    assert r"runs/a\_1.json" in text and r"\textless{}script\textgreater{}" in text
    body = text.split("\\midrule")[1].split("\\bottomrule")[0]
    for line in body.strip().splitlines():  # every row has as many cells as the header says
        assert line.count(" & ") == 4 + 4 * 2 + 1 - 1, line


def test_html_and_markdown_escape_names():
    page = render_html(_odd_table())
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert 'class="regression"' in page
    md = render_markdown(_odd_table())
    assert "runs/b\\|2.json" in md  # a pipe would split the table
    for line in md.splitlines():
        if line.startswith("| sigmoid_ce"):
            assert line.count(" | ") == 4 + 4 * 2 + 1 - 1 + 0, line


# ---------------------------------------------------------------------------------------------- bad input


def _report(tmp_path: Path, name: str = "a.json") -> Path:
    path = tmp_path / name
    path.write_text(render_json(_result(_score())))
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: [str(_report(d))], "compare needs at least 2 report.json files, got 1"),
    (lambda d: [str(_report(d)), str(d / "nope.json")], "nope.json does not exist"),
    (lambda d: [str(_report(d)), str(d)], "is a folder"),
    (lambda d: [str(_report(d)), _write(d / "x.json", '{"hello": 1}')], "not a lossfuzz report"),
    (lambda d: [str(_report(d)), _write(d / "t.json", '{"tool": "lossfuzz", "resu')], "is not valid JSON"),
    (lambda d: [str(_report(d)), _write(d / "new.json", json.dumps({**json.loads(render_json(_result(_score()))),
                                                                    "schema_version": SCHEMA_VERSION + 1}))],
     f"schema_version={SCHEMA_VERSION + 1} is not one this lossfuzz reads"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    assert main(["compare", *make(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_out_writes_the_file_in_the_format_asked(tmp_path, capsys):
    a = _report(tmp_path)
    out = tmp_path / "table.tex"
    assert main(["compare", str(a), str(a), "--format", "latex", "--out", str(out)]) == 0
    assert out.read_text().startswith("% lossfuzz compare") and "\\begin{tabular}" in out.read_text()
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(a), str(a), "--format", "pdf"])
    assert exit_.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err
