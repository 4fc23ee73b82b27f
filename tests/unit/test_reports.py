"""The report writers: report.json round-trips and is strict, report.md fits a job summary, report.html is
one self-contained page with plots, and nothing a candidate or user names can inject markup."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import fields, replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.records import COUNTED_OUTCOMES, HISTOGRAM_BINS, Curve, RunResult, Score, Speed, WorstCase
from harness.reports import WRITERS, file_name, fmt_speed, fmt_ulp, render, verdict
from harness.reports.html import render_html
from harness.reports.json_report import load_json, render_json
from harness.reports.markdown import md_escape, render_markdown

ROOT = Path(__file__).resolve().parents[2]
EVIL = "<script>alert(1)</script>"
ESCAPED_EVIL = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _case(inputs=("-0x1.fffffep+127",), labels=("0x0p+0",), got="nan", exact="3.0092732889822590245e-1477",
          rounded="0x0p+0", ulp=None, outcome="nan", candidate="naive") -> WorstCase:
    return WorstCase(
        inputs=tuple(inputs), labels=tuple(labels), got=got, exact=exact, rounded=rounded, ulp=ulp, outcome=outcome,
        replay=f"lossfuzz exact sigmoid_ce --logits={','.join(inputs)} --labels={labels[0]} --dtype float32 --candidate {candidate}",
    )


def _score(candidate="naive", family="sigmoid_ce", dtype="float32", **kw) -> Score:
    counts = dict.fromkeys(COUNTED_OUTCOMES, 0)
    counts.update(kw.pop("counts", {}))
    histogram = dict.fromkeys(HISTOGRAM_BINS, 0)
    histogram.update(kw.pop("histogram", {"exact": 90, "<=1": 10}))
    base = dict(
        family=family, candidate=candidate, dtype=dtype, reduction="none", examples=100,
        max_ulp=0.75, mean_ulp=0.125, median_ulp=0.0, p99_ulp=0.5, max_bits=1.0, mean_bits=0.25,
        histogram=histogram, counts=counts, source=f"{candidate}: a test formula",
    )
    base.update(kw)
    return Score(**base)


def _scores() -> tuple[Score, ...]:
    return (
        # Inaccurate and non-finite, with a shrunk reproducer and a worse worst case.
        _score(
            "naive", examples=5658, max_ulp=15281188.933383245, mean_ulp=71234.5, median_ulp=0.71875,
            p99_ulp=13809440.422948414, max_bits=29.6, mean_bits=3.705404655463746,
            histogram={"exact": 1341, "<=1": 378, "<=4": 234, "<=1024": 247, "more": 429},
            counts={"nan": 151, "inf": 2878, "flushed_subnormal": 6},
            worst=(_case(), _case(inputs=("0x1.000002p+4",), got="0x1.0f1aacp-19", exact="1.0662093838366817476e-6",
                                  rounded="0x1.1e355ap-20", ulp=8388607.078621472, outcome="finite")),
            reproducer=_case(inputs=("0x1p+4",), got="0x1p-20", exact="1.1253517471925911451e-7",
                             rounded="0x1.e355bcp-24", ulp=1234567.5, outcome="finite"),
            speed=Speed(10_000, 3.2, 1.0),
        ),
        # Accurate everywhere.
        _score("numpy_stable", speed=Speed(10_000, 2.5, 0.5)),
        _score("numpy_stable", dtype="float64", max_ulp=0.5, p99_ulp=0.5),
        # An infinite ULP error, a finite value where the exact one is infinite.
        _score("keras_clipped", max_ulp=math.inf, mean_ulp=math.inf, p99_ulp=8.5e37,
               counts={"finite_where_infinite": 40}, worst=(_case(got="0x1.fffffcp-24", outcome="finite_where_infinite", ulp=None),)),
        # Rejects the dtype: no statistics at all.
        _score("tf", dtype="bfloat16", examples=0, max_ulp=None, mean_ulp=None, median_ulp=None, p99_ulp=None,
               max_bits=None, mean_bits=None, histogram={}, unsupported=True),
        # Could not run; its name, source and failure message are hostile.
        _score(EVIL, examples=0, max_ulp=None, mean_ulp=None, median_ulp=None, p99_ulp=None, max_bits=None,
               mean_bits=None, histogram={}, failure=f"ImportError: no module {EVIL} | <b>bold</b>", source=EVIL,
               worst=(_case(candidate=EVIL),)),
        _score("pipe|name", family="softmax_ce", max_ulp=2.0, p99_ulp=1.5),
    )


def _curves() -> tuple[Curve, ...]:
    x = (-1e4, -100.0, -1.0, -0.01, 0.01, 1.0, 100.0, 1e4)
    return (
        Curve("sigmoid_ce", "float32", "z = 1", "logit", x, {
            "naive": (None, None, 0.25, 0.0, 0.0, 0.5, 3.0e6, None),
            "numpy_stable": (0.0, 0.25, 0.5, 0.0, 0.0, 0.25, 0.5, 0.0),
            EVIL: (1e30, 1e9, 0.5, 0.0, 0.0, 0.5, 1e9, 1e30),
            "dollar$name$": (0.5,) * 8,
        }),
        Curve("sigmoid_ce", "float32", "z = 0.9999", "logit", x, {"naive": (None,) * 8, "numpy_stable": (0.0,) * 8}),
        Curve("binary_ce", "float32", "z = 1", "probability", (1e-30, 1e-5, 0.5, 1 - 1e-7), {"naive": (0.5, None, 0.0, 2.0)}),
    )


def _result(partial: bool = False, scores: tuple[Score, ...] | None = None, curves: tuple[Curve, ...] | None = None) -> RunResult:
    return RunResult(
        settings={"seed": 7, "examples": 30, "families": ["sigmoid_ce", "softmax_ce"], "candidates": ["naive"],
                  "dtypes": ["float32", "float64"], "speed_elements": 10000, "shrink": True},
        provenance={"seed": 7, "versions": {"numpy": "2.4.6", "mpmath": "1.4.1", "hypothesis": "6.170.15",
                                            "tensorflow": None, "tensorflow-cpu": "2.21.0", "keras": "3.15.1"},
                    "python": "3.11.7", "mpmath_backend": "gmpy",
                    "machine": {"machine": "x86_64", "cpus": 2, "numpy_simd": {"baseline": ["X86_V2"], "found": ["X86_V3"]}},
                    "git_commit": "890eab388fb8e9a1fd417a5fa2e6e57b36d81068"},
        scores=_scores() if scores is None else scores,
        wall_seconds=12.5,
        partial=partial,
        curves=_curves() if curves is None else curves,
    )


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(_result(partial=True))


# ------------------------------------------------------------------------------------------------ registry


def test_each_report_kind_has_a_file_name_and_a_renderer():
    assert {kind: name for kind, (name, _) in WRITERS.items()} == {"json": "report.json", "md": "report.md", "html": "report.html"}
    assert file_name("md") == "report.md"
    r = _result(curves=())
    assert render(r, "json") == render_json(r)
    assert render(r, "md") == render_markdown(r)


def test_an_unknown_report_kind_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown report kind 'pdf'; choose from json, md, html"):
        render(_result(), "pdf")


def test_importing_harness_reports_does_not_import_matplotlib():
    code = (
        "import sys, harness.reports, harness.reports.json_report, harness.reports.markdown\n"
        "heavy = [m for m in ('matplotlib', 'tensorflow', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------------ JSON


def test_the_json_report_round_trips_every_field():
    r = _result(partial=True)
    back = RunResult.from_json(json.loads(render_json(r)))
    for f in fields(RunResult):
        if f.name not in ("scores", "curves"):
            assert getattr(back, f.name) == getattr(r, f.name), f.name
    assert len(back.scores) == len(r.scores)
    for got, want in zip(back.scores, r.scores):
        for f in fields(Score):
            assert getattr(got, f.name) == getattr(want, f.name), (want.candidate, f.name)
    assert back.curves == r.curves
    assert back == r


def test_the_json_report_is_strict_json_with_inf_as_a_string_and_no_nan():
    text = render_json(_result())
    assert text.endswith("}\n")

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    data = json.loads(text, parse_constant=refuse)
    clipped = next(s for s in data["results"] if s["candidate"] == "keras_clipped")
    assert clipped["max_ulp"] == "inf" and clipped["p99_ulp"] == 8.5e37
    assert "NaN" not in text and "Infinity" not in text


def test_a_nan_statistic_is_written_as_null():
    r = _result(scores=(_score(mean_ulp=math.nan),), curves=())
    assert json.loads(render_json(r))["results"][0]["mean_ulp"] is None


def test_the_json_report_has_the_keys_other_tools_rely_on():
    data = json.loads(render_json(_result()))
    assert list(data)[:8] == ["schema_version", "tool", "partial", "settings", "provenance", "wall_seconds", "results", "curves"]
    assert data["schema_version"] == 2 and data["tool"] == "lossfuzz" and data["partial"] is False
    for s in data["results"]:
        for key in ("family", "candidate", "dtype", "examples", "max_ulp", "mean_ulp", "median_ulp", "p99_ulp",
                    "nan", "inf", "finite_where_infinite", "unsupported", "worst", "counts", "histogram", "speed", "quantity"):
            assert key in s, key
        assert set(s["counts"]) == set(COUNTED_OUTCOMES)
    naive = data["results"][0]
    assert naive["nan"] == 151 and naive["inf"] == 2878 and naive["speed"]["ratio"] == 3.2
    assert naive["reproducer"]["ulp"] == 1234567.5
    assert data["curves"][0]["errors"]["naive"][:3] == [None, None, 0.25]


def test_max_ulp_is_a_number_or_inf_and_null_only_when_nothing_was_compared():
    for s in json.loads(render_json(_result()))["results"]:
        if s["max_ulp"] is None:
            assert s["examples"] == 0 and (s["unsupported"] or s["failure"])
        else:
            assert s["max_ulp"] == "inf" or isinstance(s["max_ulp"], (int, float))


def test_every_json_key_is_documented_in_the_schema():
    schema = (ROOT / "reports" / "SCHEMA.md").read_text()
    data = json.loads(render_json(_result()))
    keys = set(data) | set(data["settings"]) | set(data["provenance"]) | set(data["curves"][0])
    for s in data["results"]:
        keys |= set(s) | set(s["counts"]) | set(s["histogram"]) | set(s["speed"] or {})
        for w in s["worst"]:
            keys |= set(w)
    missing = sorted(k for k in keys if f"`{k}`" not in schema)
    assert not missing, f"undocumented in reports/SCHEMA.md: {missing}"


def test_a_truncated_report_gives_a_one_line_value_error():
    text = render_json(_result())
    with pytest.raises(ValueError) as info:
        load_json(text[: len(text) // 2])
    message = str(info.value)
    assert "\n" not in message
    assert re.fullmatch(r"report\.json is not valid JSON \(line \d+, column \d+: .+\); regenerate it", message), message


def test_an_empty_or_nan_laden_report_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^report\.json is not valid JSON \(line 1, column 1: Expecting value\)"):
        load_json("")
    with pytest.raises(ValueError, match="not valid JSON") as info:
        load_json(render_json(_result()).replace('"inf"', "NaN", 1))
    assert "\n" not in str(info.value)


def test_a_report_from_another_schema_version_or_missing_keys_is_refused_in_one_line():
    data = json.loads(render_json(_result()))
    with pytest.raises(ValueError, match="schema_version=3 is not one this lossfuzz reads") as info:
        load_json(json.dumps({**data, "schema_version": 3}))
    assert "\n" not in str(info.value)
    del data["results"][0]["counts"]
    with pytest.raises(ValueError, match="lacks the key 'counts'"):
        load_json(json.dumps(data))


def test_load_json_reads_back_what_render_json_wrote():
    r = _result()
    assert load_json(render_json(r)) == r


# ------------------------------------------------------------------------------------------------ Markdown


def test_compact_numbers_read_as_in_the_tables():
    assert [fmt_ulp(v) for v in (None, 0.0, 0.5, 0.75, 12.345, 4096.0, 15281188.9, 8.5e37, math.inf)] == [
        "—", "0", "0.5", "0.75", "12.3", "4096", "1.53e+07", "8.5e+37", "inf"]
    assert fmt_speed(Speed(100, 3.2, 1.0)) == "3.2x copy" and fmt_speed(None) == "—"


def test_the_verdict_names_the_problem():
    by_name = {(s.candidate, s.dtype): verdict(s) for s in _scores()}
    assert by_name[("numpy_stable", "float32")].text == "ok"
    assert by_name[("naive", "float32")].text == "non-finite results, inaccurate"
    assert by_name[("keras_clipped", "float32")].level == "bad"
    assert by_name[("tf", "bfloat16")].text == "unsupported"
    assert by_name[(EVIL, "float32")].text.startswith("failed: ImportError")
    assert by_name[("pipe|name", "float32")].text == "inaccurate"


def test_the_markdown_has_a_table_row_per_candidate_and_dtype_with_its_max_ulp():
    md = render_markdown(_result())
    # the same 16 columns as the HTML table; figures above 1 ULP and non-zero counts in bold
    assert "| naive | float32 | 5658 | **1.53e+07** | **1.38e+07** | 71234 | 0.719 | 3.71 | **151** | **2878** | 0 | 0 | **6** | 0 | 3.2x copy |" in md
    assert "| numpy_stable | float64 | 100 | 0.5 |" in md
    assert "| keras_clipped | float32 | 100 | **inf** | **8.5e+37** |" in md
    assert re.search(r"^\| tf \| bfloat16 \| 0 \| — \|.*unsupported \|$", md, re.M)
    assert md.index("## sigmoid_ce") < md.index("## softmax_ce")


def test_the_markdown_shows_provenance_on_one_line():
    md = render_markdown(_result())
    line = next(line for line in md.splitlines() if line.startswith("seed 7"))
    for part in ("commit 890eab388fb8", "numpy 2.4.6", "tensorflow 2.21.0", "keras 3.15.1", "mpmath 1.4.1 (gmpy)",
                 "hypothesis 6.170.15", "numpy SIMD X86\\_V2 X86\\_V3", "wall 12.5 s"):
        assert part in line
    # a report written before the SIMD targets were recorded: no such part
    old = _result()
    old.provenance["machine"].pop("numpy_simd")
    assert "SIMD" not in render_markdown(old)
    assert "uncommitted" not in md
    # code changed since the commit: the commit alone does not say what ran
    dirty = _result()
    dirty.provenance["git_dirty"] = True
    assert "commit 890eab388fb8 with uncommitted changes" in render_markdown(dirty)


def test_the_markdown_warns_about_partial_results_only_when_partial():
    assert "PARTIAL" in render_markdown(_result(partial=True)).split("## ")[0]
    assert "PARTIAL" not in render_markdown(_result(partial=False))


def test_pipes_and_markup_in_markdown_cells_are_escaped():
    md = render_markdown(_result())
    row = next(line for line in md.splitlines() if line.startswith("| pipe"))
    assert row.startswith("| pipe\\|name | float32 |")
    assert len(re.split(r"(?<!\\)\|", row)) == 16 + 2  # 16 cells, no extra column
    outside_code = re.sub(r"```.*?```", "", md, flags=re.S)
    assert EVIL not in outside_code and "\\<script\\>alert(1)\\</script\\>" in outside_code
    assert md_escape("a|b <i>") == "a\\|b \\<i\\>"


def test_the_markdown_worst_cases_give_the_reproducer_and_its_replay_command():
    md = render_markdown(_result())
    section = md.split("## Worst cases", 1)[1]
    naive = section.split("### sigmoid_ce · naive · float32", 1)[1].split("###", 1)[0]
    assert "Shrunk reproducer: inputs `0x1p+4`" in naive
    assert "got `0x1p-20`, exact `1.1253517471925911451e-7`" in naive and "1.23e+06 ULP" in naive
    assert "worst error seen: no ULP number: nan where the exact value is finite" in naive
    assert "```sh\nlossfuzz exact sigmoid_ce --logits=0x1p+4 --labels=0x0p+0 --dtype float32 --candidate naive\n```" in naive
    assert "numpy_stable" not in section  # no problem, no worst case shown


def test_the_markdown_stays_small_for_a_large_run():
    many = tuple(
        replace(_scores()[0], candidate=f"cand{i}", dtype=dtype,
                worst=tuple(_case(inputs=tuple(f"0x1.{j:06x}p+{i}" for j in range(200))) for _ in range(10)),
                reproducer=_case(inputs=tuple(f"0x1.{j:06x}p+{i}" for j in range(200))))
        for i in range(36) for dtype in ("float32", "float64")
    )
    md = render_markdown(_result(scores=many, curves=()))
    assert len(md.encode()) < 60_000
    assert len(re.findall(r"^\| cand\d+ \|", md, re.M)) == 72
    assert "more scores with problems: see report.html or report.json" in md


# ------------------------------------------------------------------------------------------------ HTML


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_html_page_embeds_png_plots(page):
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<img src="data:image/png;base64,') >= 3  # curves and histogram of sigmoid_ce, curve of binary_ce
    assert "Bits of error along the swept logit" in page and "Bits of error along the swept probability" in page


def test_the_html_page_escapes_every_name_and_message(page):
    assert ESCAPED_EVIL in page
    assert EVIL not in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    parser = _Tags()
    parser.feed(page)
    assert "script" not in {tag for tag, _ in parser.tags}


def test_the_html_page_is_self_contained(page):
    parser = _Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag not in ("link", "script", "iframe")
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:image/png;base64,", "#")), (tag, value)


def test_the_html_page_has_the_tables_warning_and_worst_cases(page):
    assert "PARTIAL RESULTS" in page
    assert re.search(r'<td title="naive: a test formula"><code>naive</code></td><td>float32</td>', page)
    assert '<td class="n hot">1.53e+07</td>' in page
    assert "shrunk reproducer" in page
    assert "lossfuzz exact sigmoid_ce --logits=0x1p+4 --labels=0x0p+0 --dtype float32 --candidate naive" in page
    assert "commit 890eab388fb8" in page and "tensorflow 2.21.0" in page


def test_the_html_page_renders_without_curves_or_scores():
    bare = render_html(_result(scores=(), curves=()))
    assert "0 scores" in bare and "<img" not in bare
    hist_only = render_html(_result(scores=_scores()[:2], curves=()))
    assert hist_only.count('<img src="data:image/png;base64,') == 1


def test_the_html_page_lists_every_worst_case_of_a_score_in_order_after_its_reproducer(page):
    naive = page.split("<code>sigmoid_ce</code> · <code>naive</code> · float32", 1)[1].split("</details>", 1)[0]
    assert "(3 cases; worst no ULP number" in naive  # the reproducer and both worst cases
    labels = re.findall(r"<td class=\"muted\">(shrunk reproducer|worst #\d+)</td>", naive)
    assert labels == ["shrunk reproducer", "worst #1", "worst #2"]
    first = naive.index("--logits=-0x1.fffffep+127 --labels=0x0p+0")
    second = naive.index("--logits=0x1.000002p+4 --labels=0x0p+0")
    assert naive.index("--logits=0x1p+4") < first < second
    assert "<code>0x1.0f1aacp-19</code>" in naive and "<code>0x1.1e355ap-20</code>" in naive
    clipped = page.split("<code>sigmoid_ce</code> · <code>keras_clipped</code> · float32", 1)[1].split("</details>", 1)[0]
    assert re.findall(r"<td class=\"muted\">(shrunk reproducer|worst #\d+)</td>", clipped) == ["worst #1"]


def test_reports_show_the_statistics_summarize_computes_from_a_real_comparison():
    import numpy as np

    from harness.candidates import get_candidate
    from harness.metrics import summarize
    from harness.scoring import TruthCache, observe
    from harness.strategies import catalogue

    examples = catalogue("sigmoid_ce", "float32")
    comparison = observe(get_candidate("sigmoid_ce", "numpy_stable"), examples, TruthCache("sigmoid_ce", "float32")).merged()
    stats = summarize(comparison)
    score = Score(family="sigmoid_ce", candidate="numpy_stable", dtype="float32", reduction="none",
                  source="numpy_stable: log1p form", **stats)
    measured = np.sort(comparison.ulp[~np.isnan(comparison.ulp)])
    assert score.max_ulp == measured[-1] and score.p99_ulp == measured[int(np.ceil(0.99 * (measured.size - 1)))]
    assert score.examples == len(examples) == sum(score.histogram.values()) + sum(
        score.counts[k] for k in ("nan", "inf", "finite_where_infinite", "nan_where_infinite", "wrong_infinity",
                                  "number_where_nan"))
    result = _result(scores=(score,), curves=())
    assert load_json(render_json(result), "report.json").scores == (score,)
    row = next(line for line in render_markdown(result).splitlines() if line.startswith("| numpy_stable"))
    assert f"| **{fmt_ulp(score.max_ulp)}** |" in row and f"| **{fmt_ulp(score.p99_ulp)}** |" in row
    assert f">{fmt_ulp(score.max_ulp)}</td>" in render_html(result)
