"""Regimes tell implementations apart (issue 10): TensorFlow's sigmoid_ce in float32 is within 4 ULP on hard
labels, more than 1000 ULP off on soft ones (``max(x, 0) - x*z`` cancels), and flushes subnormal results
to 0 (regime ``tiny``): in report.json and at the top of report.md.

A small seeded run (the boundary catalogue and 30 Hypothesis examples, tf only) keeps it to seconds; the
figures hold for any seed, since the catalogue alone reaches every regime."""

from __future__ import annotations

import json

import pytest

from harness.campaign import Settings, run_campaign
from harness.reports.json_report import render_json
from harness.reports.markdown import render_markdown

pytestmark = [pytest.mark.quality, pytest.mark.tf]


@pytest.fixture(scope="module")
def tf_run():
    settings = Settings(families=("sigmoid_ce",), candidates=("tf",), dtypes=("float32",), examples=30,
                        speed_elements=0, shrink=False, seed=7)
    result, _corpus = run_campaign(settings)
    return result


def test_tf_sigmoid_ce_float32_is_accurate_on_hard_labels_only_and_flushes_tiny_losses_in_report_json(tf_run):
    (row,) = [r for r in json.loads(render_json(tf_run))["results"] if r["quantity"] == "loss"]
    regimes = row["regimes"]
    assert list(regimes) == ["special", "tiny", "hard", "soft"]
    assert regimes["hard"]["max_ulp"] <= 4
    assert regimes["soft"]["max_ulp"] > 1000
    assert regimes["tiny"]["counts"]["flushed_subnormal"] > 0
    assert regimes["tiny"]["worst"]["outcome"] == "flushed_subnormal" and regimes["tiny"]["worst"]["got"] == "0x0p+0"
    # the hard-label figure is what the whole score's 1e7 hid
    assert row["max_ulp"] > 1e6 and row["max_ulp"] == max(r["max_ulp"] for r in regimes.values())
    soft = regimes["soft"]["worst"]
    assert soft["ulp"] == regimes["soft"]["max_ulp"] and soft["rel_error"] > 0 and soft["replay"].startswith("lossfuzz exact")
    assert soft in row["worst"]  # the example behind the figure is listed


def test_report_md_leads_with_the_regime_matrix_showing_it(tf_run):
    md = render_markdown(tf_run)
    lead = md[md.index("## sigmoid_ce by regime"):md.index("## sigmoid_ce\n")]
    assert md.index("## sigmoid_ce by regime") < md.index("## sigmoid_ce\n")  # before every score table
    header = next(line for line in lead.splitlines() if line.startswith("| dtype"))
    row = next(line for line in lead.splitlines() if line.startswith("| float32 | tf |"))
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip().strip("*") for c in row.strip("|").split("|")]))
    assert float(cells["hard"]) <= 4
    assert float(cells["soft"]) > 1000
    assert "flushed)" in cells["tiny"]
