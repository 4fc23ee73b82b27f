"""The research plots: bits of error in the sweeps, the error map over (logit, label), their records (journaled,
resumed, round-tripped), and report.html's small multiples (one panel per candidate, 0 to the format's bits)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

import oracles
from harness.campaign import Resume, Settings, run_campaign
from harness.candidates import candidates
from harness.journal import Journal, read_journal
from harness.records import Curve, ErrorMap, RunResult
from harness.reports import html as report_html
from harness.reports.json_report import load_json, render_json
from harness.sweep import error_map, error_map_grid, sweep

NUMPY = ("naive", "numpy_stable")


def _chosen(family: str = "sigmoid_ce"):
    return [c for c in candidates(family=family) if c.name in NUMPY]


def _bits(candidate, x, z, dtype: str) -> np.ndarray:
    """Bits of error straight from the oracle's definition (oracles.bits_of_error on mpmath exact values)."""
    fmt = oracles.resolve_format(dtype)
    x, z = np.asarray(x).astype(fmt.numpy_dtype), np.asarray(z).astype(fmt.numpy_dtype)
    with np.errstate(all="ignore"):
        got = np.asarray(candidate(x, z))
    return oracles.bits_of_error(got, oracles.exact("sigmoid_ce", logits=x, labels=z, dtype=dtype), dtype)


@pytest.fixture(scope="module")
def float32_map() -> ErrorMap:
    return error_map("sigmoid_ce", "float32", _chosen())


# ------------------------------------------------------------------------------------------------ sweeps


def test_sweep_curves_hold_herbies_bits_beside_the_ulp_error():
    (hard, soft) = sweep("sigmoid_ce", "float32", _chosen())
    stable = {c.name: c for c in _chosen()}["numpy_stable"]
    for curve, z in ((hard, 1.0), (soft, 0.9999)):
        assert set(curve.bits) == set(curve.errors) == set(NUMPY)
        for name in NUMPY:
            assert [b is None for b in curve.bits[name]] == [e is None for e in curve.errors[name]]
        expected = _bits(stable, curve.x, np.full(len(curve.x), z), "float32")
        assert np.allclose(np.array(curve.bits["numpy_stable"], dtype=float), expected, atol=1e-9)
    # the soft-label cancellation shows in bits: many bits at large logits, none on the hard label
    big = np.array(soft.x) > 1e3
    assert max(np.array(soft.bits["numpy_stable"])[big]) > 8 and max(np.array(hard.bits["numpy_stable"])[big]) <= 1


# -------------------------------------------------------------------------------------------- error maps


def test_the_error_map_holds_each_candidates_bits_at_logit_i_and_label_j(float32_map):
    m = float32_map
    x, z = error_map_grid("float32")
    assert (m.x, m.y, m.x_name, m.y_name) == (tuple(x), tuple(z), "logit", "label")
    assert z[0] == 0 and z[-1] == 1 and 0.999999 < z[-2] < 1 and len(x) >= 60 and len(z) >= 30
    stable = {c.name: c for c in _chosen()}["numpy_stable"]
    rng = np.random.default_rng(0)
    picks = [(len(x) - 1, len(z) - 2), (0, 0)] + [(int(i), int(j)) for i, j in zip(rng.integers(0, len(x), 20), rng.integers(0, len(z), 20))]
    expected = _bits(stable, [x[i] for i, _ in picks], [z[j] for _, j in picks], "float32")
    got = [m.bits["numpy_stable"][j][i] for i, j in picks]  # rows are labels, columns logits
    assert np.allclose(got, np.round(expected, 1), atol=1e-9)


def test_the_error_map_shows_where_soft_labels_cancel(float32_map):
    bits = np.array(float32_map.bits["numpy_stable"], dtype=float)
    x, z = np.array(float32_map.x), np.array(float32_map.y)
    hard = np.isin(z, (0.0, 1.0))
    assert np.nanmax(bits[hard]) <= 2  # within a couple of format numbers on 0/1 labels
    assert np.nanmax(bits[np.ix_(z > 0.999, x > 100)]) > 8  # max(x, 0) - x*z cancels: many bits lost
    naive = float32_map.bits["naive"]
    assert naive[0][0] is None  # exp(-x) overflows at x = -1e4: a non-finite result has no number
    assert all(0 <= b <= 32 for row in float32_map.bits["numpy_stable"] for b in row)


def test_only_sigmoid_ce_with_every_label_gets_an_error_map():
    assert error_map("binary_ce", "float32", _chosen("binary_ce")) is None
    assert error_map("sigmoid_ce", "float32", _chosen(), label_set="hard") is None


def test_a_campaign_keeps_its_error_maps_journals_and_resumes_them(tmp_path):
    settings = Settings(families=("sigmoid_ce",), candidates=NUMPY, dtypes=("float32",), examples=3, speed_elements=0,
                        shrink=False)
    result, _ = run_campaign(settings)
    (m,) = result.error_maps
    assert (m.family, m.dtype, set(m.bits)) == ("sigmoid_ce", "float32", set(NUMPY))
    assert load_json(render_json(result)) == result  # the record round-trips, None and all
    assert "error_maps" not in replace(result, error_maps=()).to_json()  # absent when empty (old readers, old files)
    journal = Journal(tmp_path / "journal.jsonl", settings.to_json(), "fp")
    journal.mapped(m)
    journal.close()
    resumed = read_journal(tmp_path / "journal.jsonl", settings.to_json(), "fp")
    assert resumed.maps == {("sigmoid_ce", "float32"): m}
    # a resumed campaign takes the journaled map as it is
    marked = replace(m, bits={"from the journal": m.bits["naive"]})
    again, _ = run_campaign(settings, resume=Resume(maps={("sigmoid_ce", "float32"): marked}))
    assert again.error_maps == (marked,)


# ------------------------------------------------------------------------------------------ report.html


@pytest.fixture()
def drawn(monkeypatch) -> list:
    """The figures report.html encodes, in order."""
    figures: list = []
    monkeypatch.setattr(report_html, "_png", lambda fig: figures.append(fig) or "data:image/png;base64,")
    return figures


def _panels(fig) -> list:
    return [ax for ax in fig.axes if ax.get_title()]


def test_sweeps_are_small_multiples_one_panel_per_candidate_in_bits(drawn):
    x = (-1e4, -1.0, 0.01, 1e4)
    curves = [Curve("sigmoid_ce", "float64", "z = 1", "logit", x, {"a": (0.5, 0.0, 3.0, None), "b": (0.0,) * 4},
                    {"a": (1.0, 0.0, 2.0, None), "b": (0.0,) * 4}),
              Curve("sigmoid_ce", "float64", "z = 0.9", "logit", x, {"a": (0.0,) * 4, "b": (9.0,) * 4},
                    {"a": (0.0,) * 4, "b": (3.5,) * 4})]
    png, estimated = report_html._curve_figure(curves, "float64")
    (fig,) = drawn
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["a", "b"] and not estimated
    for ax in panels:
        assert ax.get_ylim()[1] == pytest.approx(64 * 1.06)  # float64: 0 to 64 bits, as Herbie
    ys = [list(line.get_ydata()) for line in panels[1].lines if len(line.get_ydata()) == 4]
    assert [0.0] * 4 in ys and [3.5] * 4 in ys  # its own two label settings, in bits
    marks = [line for line in panels[0].lines if line.get_marker() == "x"]
    assert len(marks) == 1 and list(marks[0].get_ydata()) == pytest.approx([64 * 1.02])  # the non-finite result


def test_curves_of_reports_before_bits_are_estimated_and_said_so(drawn):
    old = Curve("sigmoid_ce", "float32", "z = 1", "logit", (-1.0, 1.0), {"a": (3.0, None)})
    _png, estimated = report_html._curve_figure([old], "float32")
    assert estimated
    ys = [list(line.get_ydata()) for line in _panels(drawn[0])[0].lines if len(line.get_ydata()) == 2]
    assert any(y[0] == pytest.approx(2.0) and math.isnan(y[1]) for y in ys)  # log2(1 + 3)
    page = report_html.render_html(RunResult(settings={}, provenance={}, wall_seconds=1.0, scores=(), curves=(old,)))
    assert "estimated as log2(1 + ULP error)" in page


def test_the_error_map_is_one_heat_map_per_candidate_on_one_colour_scale(drawn, float32_map):
    page = report_html.render_html(RunResult(settings={}, provenance={}, wall_seconds=1.0, scores=(), curves=(),
                                             error_maps=(float32_map,)))
    assert "Bits of error over the (logit, label) plane" in page
    (fig,) = drawn
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == list(float32_map.bits)
    for ax, name in zip(panels, float32_map.bits):
        (image,) = ax.get_images()
        data = image.get_array()
        assert image.get_clim() == (0, 32)
        expected = np.array([[np.nan if b is None else b for b in row] for row in float32_map.bits[name]])
        assert data.shape == expected.shape
        assert np.array_equal(np.ma.filled(data, np.nan), expected, equal_nan=True)
