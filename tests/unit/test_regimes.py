"""Regimes in scoring and reports (issue 10): the vectorised classification agrees with the per-example
definition, per-regime statistics equal hand-computed ones, they survive JSON, every regime's worst case is
listed whatever non-finite mistakes rank above it, and the reports lead with the candidate x regime matrix.

Expected figures are computed here by hand (plain Python over the example lists), never with the code under test.
"""

from __future__ import annotations

import json
import math
import statistics
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import oracles
from harness.metrics import Comparison, compare, summarize
from harness.records import COUNTED_OUTCOMES, HISTOGRAM_BINS, NON_FINITE_MISTAKES, RegimeScore, RunResult, Score, WorstCase
from harness.reports import verdict
from harness.reports.html import render_html
from harness.reports.json_report import load_json, render_json
from harness.reports.markdown import render_markdown
from harness.reports.sections import regime_matrix, regime_sections
from harness.scoring import TruthCache, batches, listed_cases, observe
from oracles import relative_error
from harness.strategies import Example, catalogue
from oracles._family import CONFIDENT, HARD, SOFT, SPECIAL, TINY

# ------------------------------------------------------------------------------------ classification


def _per_example(fam, truth) -> list[str]:
    """The regime of each example by the per-example definition (Family.regime), one call each."""
    x, z = truth.inputs, truth.labels
    return [fam.regime(x[i], z[i], truth.dtype, truth.exact[i]) for i in range(truth.rounded.size)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("family", sorted(oracles.FAMILIES))
def test_the_batch_classification_agrees_with_the_per_example_one_on_the_whole_catalogue(family, dtype):
    fam = oracles.get_family(family)
    cache = TruthCache(family, dtype)
    seen: set[str] = set()
    for group in batches([e for e in catalogue(family, dtype) if not e.params], "none"):  # one row width each
        truth = cache.truth(group, "none")
        batch = fam.regimes_of(truth.inputs, truth.labels, dtype, truth.rounded, truth.exact)
        one_by_one = _per_example(fam, truth)
        assert batch.tolist() == one_by_one
        seen |= set(one_by_one)
    declared = {r.name for r in fam.regimes}
    assert seen <= declared
    # the catalogue reaches every regime the family declares (probabilities are never ±inf: no special
    # for binary_ce; soft labels need float labels; confident rows need a format where 2**-p is normal)
    assert seen >= declared - ({SPECIAL} if fam.input_domain == "unit" else set())


def test_an_exact_loss_a_hair_below_the_smallest_normal_is_tiny_though_it_rounds_to_it():
    # mean of -log(1-p) over p = 2**-126, 2**-126, 2**-126 - 2**-149: 2**-126 - 2**-149/3 + O(2**-252), which
    # rounds up to 2**-126 (the smallest normal: the distance is under half the subnormal spacing 2**-149)
    fam = oracles.get_family("binary_ce")
    p = np.float32([2.0**-126, 2.0**-126, 2.0**-126 - 2.0**-149])
    z = np.float32([0, 0, 0])
    truth = oracles.evaluate("binary_ce", probs=p, labels=z, dtype="float32", reduction="mean")
    assert float(truth.rounded) == 2.0**-126 and truth.exact_value(0) < mpmath.mpf(2) ** -126
    assert fam.regime(p, z, "float32", truth.exact_value(0)) == TINY
    assert fam.regimes_of(p[None], z[None], "float32", truth.rounded, [truth.exact_value(0)]).tolist() == [TINY]
    # without the exact value, the rounded one cannot tell (documented: counted as not below)
    assert fam.regimes_of(p[None], z[None], "float32", truth.rounded).tolist() == [HARD]


@pytest.mark.parametrize("family, x, z, expected", [
    ("sigmoid_ce", [1.0, np.inf, 2.0], [1.0, 0.0, 0.5], SPECIAL),  # one special input makes the batch special
    ("sigmoid_ce", [1.0, -3.0], [1.0, 0.0], HARD),
    ("sigmoid_ce", [1.0, -3.0], [1.0, 0.25], SOFT),  # one soft label makes it soft
    ("sigmoid_ce", [200.0, 300.0], [1.0, 1.0], TINY),  # the reduced loss is below the smallest normal
    ("softmax_ce", [[20.0, 0.0], [21.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]], CONFIDENT),  # mean 1.4e-9 < 2**-24
])
def test_a_reduced_batch_is_one_example_classified_as_a_whole(family, x, z, expected):
    fam = oracles.get_family(family)
    xs, zs = np.float32(x), np.float32(z)
    truth = oracles.evaluate(family, logits=xs, labels=zs, dtype="float32", reduction="mean")
    c = compare(truth, truth.rounded.copy())
    assert c.regime.tolist() == [expected]
    assert fam.regime(xs, zs, "float32", truth.exact_value(0)) == expected


# ------------------------------------------------------------------------------------ statistics


def _comparison(ulp, regime, outcome=None, flushed=None, finite_input=None) -> Comparison:
    ulp = np.asarray(ulp, dtype=np.float64)
    n = ulp.size
    if outcome is None:
        outcome = np.where(np.isnan(ulp), "nan", "finite")
    return Comparison(
        ulp=ulp,
        bits=np.where(np.isnan(ulp), np.nan, np.log2(1 + ulp)),
        codes=np.asarray(outcome),  # names: Comparison converts them to codes
        flushed=np.zeros(n, bool) if flushed is None else np.asarray(flushed, bool),
        finite_input=np.ones(n, bool) if finite_input is None else np.asarray(finite_input, bool),
        regime=np.asarray(regime),
    )


def _higher_percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[math.ceil((len(ordered) - 1) * q / 100)]


def test_regime_statistics_equal_those_computed_by_hand_over_each_regimes_examples():
    nan = math.nan
    rows = [  # (regime, ulp, outcome, flushed, finite input)
        ("soft", 1392.0, "finite", False, True), ("hard", 0.25, "finite", False, True),
        ("special", nan, "nan_where_infinite", False, False), ("soft", 3.5, "finite", False, True),
        ("tiny", 2.0**23, "finite", True, True), ("hard", 1.75, "finite", False, True),
        ("special", 0.0, "agree", False, False), ("soft", nan, "nan", False, True),
        ("hard", 0.5, "finite", False, True), ("tiny", 0.0, "finite", False, True),
        ("hard", nan, "unconverged", False, True), ("special", nan, "nan", False, False),
    ] + [("hard", 0.125 * k, "finite", False, True) for k in range(40)]
    c = _comparison([r[1] for r in rows], [r[0] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                    [r[4] for r in rows])
    stats = summarize(c, ["special", "tiny", "hard", "soft"])
    assert list(stats["regimes"]) == ["special", "tiny", "hard", "soft"]  # the family's order, not appearance
    for name, block in stats["regimes"].items():
        mine = [r for r in rows if r[0] == name]
        measured = [r[1] for r in mine if not math.isnan(r[1])]
        assert isinstance(block, RegimeScore) and block.worst is None  # (scoring adds the worst case)
        assert block.examples == len(mine) - sum(r[2] == "unconverged" for r in mine)
        assert block.max_ulp == max(measured)
        assert block.mean_ulp == pytest.approx(statistics.fmean(measured), rel=1e-15)
        assert block.median_ulp == statistics.median(measured)
        assert block.p99_ulp == _higher_percentile(measured, 99)
        assert block.max_bits == pytest.approx(math.log2(1 + max(measured)), rel=1e-15)
        assert block.counts == {
            **{k: sum(r[2] == k for r in mine) for k in COUNTED_OUTCOMES},
            "flushed_subnormal": sum(r[3] for r in mine),
            "raised": 0,
            "on_nonfinite_inputs": sum(r[2] in NON_FINITE_MISTAKES and not r[4] for r in mine),
        }
    assert stats["regimes"]["special"].counts["on_nonfinite_inputs"] == 2
    assert stats["regimes"]["hard"].examples == 43 and stats["regimes"]["hard"].max_ulp == 4.875
    # the regimes partition the score: examples and every count add up to the whole
    assert sum(b.examples for b in stats["regimes"].values()) == stats["examples"]
    for k in COUNTED_OUTCOMES:
        assert sum(b.counts[k] for b in stats["regimes"].values()) == stats["counts"][k], k


def test_a_regime_without_examples_is_left_out_and_an_unclassified_comparison_has_none():
    c = _comparison([0.5, 3.0], ["hard", "hard"])
    assert list(summarize(c, ["special", "tiny", "hard", "soft"])["regimes"]) == ["hard"]
    unclassified = Comparison(c.ulp, c.bits, c.outcome, c.flushed, c.finite_input)
    assert summarize(unclassified)["regimes"] == {}
    assert summarize(unclassified)["max_ulp"] == 3.0


# ------------------------------------------------------------------------------------ JSON


def _case(ulp=1392.0, rel=1.659e-4, inputs=("0x1.388p+13",), labels=("0x1.fff2e4p-1",), outcome="finite") -> WorstCase:
    return WorstCase(inputs=inputs, labels=labels, got="0x1p+0", exact="1.0001659393310546875", rounded="0x1.000aep+0",
                     ulp=ulp, outcome=outcome, rel_error=rel,
                     replay="lossfuzz exact sigmoid_ce --logits=0x1.388p+13 --labels=0x1.fff2e4p-1 --dtype float32 --candidate tf")


def _block(max_ulp, worst=None, examples=10, **counts) -> RegimeScore:
    return RegimeScore(examples=examples, max_ulp=max_ulp, p99_ulp=max_ulp, median_ulp=0.25, mean_ulp=0.5,
                       max_bits=3.0, mean_bits=0.5, counts={**dict.fromkeys(COUNTED_OUTCOMES, 0), **counts}, worst=worst)


def _score(candidate="tf", dtype="float32", family="sigmoid_ce", regimes=None, max_ulp=1392.0, **counts) -> Score:
    regimes = {
        "special": _block(0.0, _case(None, None, ("-inf",), ("0x0p+0",), "nan"), nan=2, on_nonfinite_inputs=2),
        "tiny": _block(8388605.3, _case(8388605.3, 1.0, ("-0x1.5d58a2p+6",), ("0x1p-149",), "flushed_subnormal"), flushed_subnormal=83),
        "hard": _block(1.74, _case(1.74, 1.1e-7, ("-0x1.000002p+4",), ("0x0p+0",))),
        "soft": _block(max_ulp, _case(max_ulp, 1.659e-4)),
    } if regimes is None else regimes
    return Score(family=family, candidate=candidate, dtype=dtype, reduction="none", examples=40, max_ulp=max_ulp,
                 mean_ulp=1.0, median_ulp=0.25, p99_ulp=3.0, max_bits=10.0, mean_bits=0.5,
                 counts={**dict.fromkeys(COUNTED_OUTCOMES, 0), **counts}, histogram=dict.fromkeys(HISTOGRAM_BINS, 0),
                 worst=tuple(r.worst for r in regimes.values() if r.worst is not None), regimes=regimes,
                 source="test")


def test_regimes_and_the_relative_error_survive_json_and_are_left_out_where_absent():
    score = _score(nan=2, on_nonfinite_inputs=2, flushed_subnormal=83)
    data = json.loads(json.dumps(score.to_json()))
    assert list(data["regimes"]) == ["special", "tiny", "hard", "soft"]
    assert data["regimes"]["soft"]["worst"]["rel_error"] == 1.659e-4 and data["regimes"]["hard"]["max_ulp"] == 1.74
    assert "rel_error" not in data["regimes"]["special"]["worst"]  # a non-finite mistake has none
    assert list(data["regimes"]["tiny"]) == ["examples", "max_ulp", "p99_ulp", "median_ulp", "mean_ulp", "max_bits",
                                             "mean_bits", "counts", "worst"]
    assert Score.from_json(data) == score
    old = {k: v for k, v in data.items() if k != "regimes"}
    assert Score.from_json(old).regimes == {} and "regimes" not in Score.from_json(old).to_json()
    infinite = WorstCase.from_json({**_case().to_json(), "rel_error": "inf"})
    assert infinite.rel_error == math.inf and infinite.to_json()["rel_error"] == "inf"


def test_the_relative_error_is_against_the_exact_value():
    v = mpmath.mpf("1.0001659393310546875")
    expected = (Fraction("1.0001659393310546875") - 1) / Fraction("1.0001659393310546875")
    assert relative_error(np.float32(1.0), v) == pytest.approx(float(expected), rel=1e-15)
    assert relative_error(np.float32(0.0), mpmath.mpf(0)) == 0.0
    assert relative_error(np.float32(2.0**-149), mpmath.mpf(0)) == math.inf
    assert relative_error(np.float32(np.inf), mpmath.inf) == 0.0
    assert math.isnan(relative_error(np.float32(np.nan), mpmath.mpf(1)))


# ------------------------------------------------------------------------------------ worst cases


def _nan_on_special(x, z):
    """Correct where every input is finite except soft labels (a deliberate 2**-10 relative error there,
    the loss scaled) and a 4 ULP error on hard labels; nan on every ±inf logit."""
    exact = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32").astype(np.float64)
    soft = (z != 0) & (z != 1)
    out = np.where(soft, exact * (1 + 2.0**-10), exact)
    hard = ~soft & (exact > 0.5)
    out = np.where(hard, exact + 4 * np.spacing(np.float32(exact)).astype(np.float64), out)
    return np.where(np.isfinite(x), out, np.nan).astype(np.float32)


def test_nan_on_special_inputs_never_crowds_the_finite_worst_case_of_a_regime_out_of_the_list():
    special = [Example(np.float32(s * np.inf), np.float32(z)) for s in (1, -1) for z in (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)]
    finite = [Example(np.float32(x), np.float32(z)) for x in (-2.0, 0.5, 3.0) for z in (0.0, 1.0, 0.5)]
    cache = TruthCache("sigmoid_ce", "float32")
    obs = observe(_nan_on_special, special + finite, cache)
    stats = summarize(obs.merged(), ["special", "tiny", "hard", "soft"])
    assert stats["counts"]["nan"] + stats["counts"]["nan_where_infinite"] == 12  # more than the list holds
    worst, behind = listed_cases(obs, "sigmoid_ce", "nan_on_special", "float32", "none")
    assert len(worst) == 10
    assert set(behind) == {"special", "hard", "soft"}
    for name in ("hard", "soft"):
        case = behind[name]
        assert case.ulp == stats["regimes"][name].max_ulp > 1  # the example behind the regime's figure
        assert case in worst  # and it is listed
        assert case.rel_error is not None and case.rel_error > 0
    assert behind["soft"].ulp == stats["max_ulp"]  # the score's own max_ulp is listed too
    assert behind["special"].outcome in NON_FINITE_MISTAKES and behind["special"] in worst
    assert [w.ulp is None for w in worst] == sorted((w.ulp is None for w in worst), reverse=True)  # worst first
    for case in (behind["soft"], behind["hard"]):  # |c - v| / |v| against the exact value, not the rounded one
        x, z = (np.float32(float.fromhex(t)) for t in (case.inputs[0], case.labels[0]))
        v = oracles.exact("sigmoid_ce", logits=np.float32([x]), labels=np.float32([z]), dtype="float32")[0]
        c = mpmath.mpf(float.fromhex(case.got))
        assert case.rel_error == pytest.approx(float(abs(c - v) / v), rel=1e-9)
    assert behind["soft"].rel_error == pytest.approx(2.0**-10, rel=1e-3)  # the injected relative error


def test_the_campaign_gives_each_regime_its_worst_case_and_the_audit_rewrites_its_replay():
    from harness.auditing import rewrite_score_replays
    from harness.campaign import Settings, score_candidate
    from harness.candidates import get_candidate

    candidate = get_candidate("sigmoid_ce", "numpy_stable")
    base = [e for e in catalogue("sigmoid_ce", "float32")][::5]
    settings = Settings(families=("sigmoid_ce",), dtypes=("float32",), examples=5, speed_elements=0, shrink=False)
    score, _ = score_candidate(candidate, "float32", base, TruthCache("sigmoid_ce", "float32"), settings)
    assert list(score.regimes) == [r for r in ("special", "tiny", "hard", "soft") if r in score.regimes]
    assert sum(r.examples for r in score.regimes.values()) == score.examples
    assert max(r.max_ulp for r in score.regimes.values() if r.max_ulp is not None) == score.max_ulp
    for r in score.regimes.values():
        assert r.worst is not None and (r.worst.ulp == r.max_ulp or r.worst.outcome in NON_FINITE_MISTAKES)
        if r.worst.ulp is not None and r.worst.ulp > 0.5:
            assert r.worst in score.worst
    moved = rewrite_score_replays(score, ["--candidate", "pkg.mod:fn"])
    assert all(r.worst.replay.endswith("--candidate pkg.mod:fn") for r in moved.regimes.values())


# ------------------------------------------------------------------------------------ reports


def _result(*scores) -> RunResult:
    return RunResult(settings={"seed": 0}, provenance={"seed": 0}, wall_seconds=1.0, scores=tuple(scores))


def test_the_matrix_shows_per_regime_the_max_ulp_or_the_non_finite_count_hot_when_bad():
    tf = _score(nan=2, on_nonfinite_inputs=2, flushed_subnormal=83)
    fine = _score("accurate", regimes={"hard": _block(0.5), "soft": _block(0.75)}, max_ulp=0.75)
    old = _score("old", regimes={}, max_ulp=3.0)  # a score written before regimes: no row
    tf64 = _score(dtype="float64", regimes={"hard": _block(0.5)}, max_ulp=0.5)
    table = regime_matrix([tf, tf64, fine, old])
    assert [c.name for c in table.columns] == ["dtype", "candidate", "special", "tiny", "hard", "soft", "all"]
    texts = [["".join(s.text for s in cell.spans) for cell in row] for row in table.rows]
    assert [t[:2] for t in texts] == [["float32", "tf"], ["float32", "accurate"], ["float64", "tf"]]  # by dtype
    assert texts[0][2:] == ["2 non-finite, max 0", "8.39e+06 (83 flushed)", "1.74", "1392", "2 non-finite, max 1392 (83 flushed)"]
    assert [cell.hot for cell in table.rows[0][2:]] == [True, True, True, True, True]
    assert texts[1][2:] == ["—", "—", "0.5", "0.75", "0.75"] and not any(cell.hot for cell in table.rows[1][2:])
    assert regime_matrix([old]) is None


def test_report_md_and_html_lead_with_the_regime_matrix():
    result = _result(_score(nan=2, on_nonfinite_inputs=2, flushed_subnormal=83))
    md = render_markdown(result)
    matrix, table = md.index("## sigmoid_ce by regime"), md.index("## sigmoid_ce\n")
    assert md.index("scores:") < matrix < table  # right after the summary, before the score tables
    assert "| float32 | tf | **2 non-finite, max 0** | **8.39e+06 (83 flushed)** | **1.74** | **1392** |" in md
    page = render_html(result)
    assert page.index("by regime</h2>") < page.index('id="family-0"')
    assert regime_sections(_result(_score(regimes={}))) == []  # an old report: no matrix


def test_the_verdict_speaks_per_regime_with_where_the_worst_case_is():
    v = verdict(_score(nan=2, on_nonfinite_inputs=2, flushed_subnormal=83))
    assert v.level == "bad"
    assert v.text == ("non-finite results on ±inf/nan inputs only, inaccurate: 2 non-finite on ±inf/nan inputs"
                      " (else exact); 8.39e+06 ULP on tiny losses (83 flushed to 0), at x=-87.3366, z=1.4013e-45;"
                      " 1.74 ULP on hard labels, at x=-16, z=0; 1392 ULP on soft labels, at x=10000, z=0.9999")
    fine = _score("accurate", regimes={"hard": _block(0.5), "soft": _block(0.75)}, max_ulp=0.75)
    assert verdict(fine).text == "ok"


def test_every_worst_case_shown_in_html_has_its_relative_error_and_names_the_regime_behind_it():
    page = render_html(_result(_score(nan=2, on_nonfinite_inputs=2, flushed_subnormal=83)))
    assert "<th>rel. error</th>" in page and '<td class="n">0.000166</td>' in page
    assert "(worst of soft)" in page and "(worst of tiny)" in page and "(worst of hard)" in page
    assert load_json(render_json(_result(_score()))).scores[0].regimes["soft"].worst.rel_error == 1.659e-4
