"""Opt-in benchmark of issue 10's target: rendering report.html takes under 20% of the run's wall time.

The run is the default campaign (``lossfuzz run``'s settings; ``LOSSFUZZ_BENCH_FAMILIES``, a comma list,
narrows it for a quick check), measured in the same process as the render; ``extra_info`` holds both times
and their ratio. ``python ci/render_share.py OUT/report.json`` gives the same figure for a finished run."""

import os
import time
from dataclasses import replace

import pytest

from harness.campaign import Settings, run_campaign
from harness.reports.html import render_html

pytestmark = pytest.mark.bench


@pytest.mark.timeout(3600)
def test_report_html_renders_in_under_a_fifth_of_the_runs_wall_time(benchmark):
    settings = Settings()
    if os.environ.get("LOSSFUZZ_BENCH_FAMILIES"):
        settings = replace(settings, families=tuple(os.environ["LOSSFUZZ_BENCH_FAMILIES"].split(",")))
    started = time.perf_counter()
    result, _ = run_campaign(settings)
    run_seconds = time.perf_counter() - started
    page = benchmark.pedantic(render_html, args=(result,), rounds=2, iterations=1)
    render_seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(run_seconds=run_seconds, render_seconds=render_seconds,
                                share=render_seconds / run_seconds, error_maps=len(result.error_maps))
    assert page.count("<img") >= len(result.error_maps) + 1
    assert render_seconds < 0.2 * run_seconds
