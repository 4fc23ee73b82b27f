"""Gradient scoring: the numpy formulas' derivatives as written, the two sign-and-zero counts, gradient
rows in the campaign (base and visited examples, reduced candidates per chunk, failures as rows), the
``quantities`` option, and the replay of a gradient case."""

from __future__ import annotations

import shlex

import numpy as np
import pytest

import oracles
from harness.campaign import (Progress, Resume, Settings, gradient_units, run_campaign, score_gradient, score_loss,
                              score_rows)
from harness.candidates import Candidate, candidates, get_candidate
from harness.candidates._registry import ALL_DTYPES
from harness.cli import main
from harness.metrics import compare, sign_mistakes, summarize
from harness.options import UsageError, quantity_list
from harness.scoring import Observations, TruthCache, batches
from harness.strategies import Example, catalogue

NUMPY = [c for c in candidates() if c.target.startswith("harness.candidates._numpy:")]
_FIXTURES = "tests.fixtures.gradient_losses"


def _benign(family: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs away from every overflow, clip window and cancellation: where any faithful derivative of a
    formula is close to the exact gradient (a wrong or missing term is off by O(1)). Logits within ±3:
    the unshifted softmax's backward squares ``sum(exp(x))``, which overflows float16 above 256."""
    rng = np.random.default_rng(7)
    t = oracles.resolve_format(dtype).numpy_dtype
    if family == "binary_ce":
        return rng.uniform(0.05, 0.95, 64).astype(t), rng.uniform(0, 1, 64).astype(t)
    if family == "sigmoid_ce":
        return rng.uniform(-5, 5, 64).astype(t), rng.uniform(0, 1, 64).astype(t)
    x = rng.uniform(-3, 3, (16, 4)).astype(t)
    if family == "softmax_ce":
        return x, rng.dirichlet(np.ones(4), 16).astype(t)
    return x, rng.integers(0, 4, 16)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("candidate", [c for c in NUMPY if not c.upcast], ids=str)
def test_numpy_gradients_are_the_derivative_of_their_formula_on_benign_inputs(candidate, dtype):
    x, z = _benign(candidate.family, dtype)
    got = candidate.gradient(x, z)
    assert got.dtype == x.dtype and got.shape == x.shape
    fam = oracles.get_family(candidate.family)
    exact = oracles.gradient(candidate.family, **{fam.input_name: x}, labels=z, dtype="float64").astype(np.float64)
    eps = 2.0 ** (1 - oracles.resolve_format(dtype).precision)
    error = np.abs(got.astype(np.float64) - exact) / (1 + np.abs(exact))
    assert error.max() <= 64 * eps, f"{candidate} {dtype}: off by {error.max():.3g} relative"


def test_the_stable_sigmoid_gradient_takes_the_numpy_autodiff_tie_convention_at_zero():
    """max(x, 0) has derivative 1/2 at x = 0 (JAX, autograd), which makes the formula's gradient exactly
    sigmoid(0) - z; TensorFlow's Maximum convention (all of it to x) would give 1 - z."""
    z = np.array([0.0, 0.25, 1.0])
    got = get_candidate("sigmoid_ce", "numpy_stable").gradient(np.zeros(3), z)
    np.testing.assert_array_equal(got, 0.5 - z)


def test_a_clip_has_zero_derivative_outside_its_window():
    clipped = get_candidate("sigmoid_ce", "keras_clipped")
    x = np.array([-20.0, -15.0, 20.0])
    z = np.array([1.0, 1.0, 0.0])
    got = clipped.gradient(x, z)
    assert got[0] == 0 and got[2] == 0  # sigmoid(-20) < 1e-7 and 1 - sigmoid(20) < 1e-7: clipped
    assert got[1] == pytest.approx(-1 + 1 / (1 + np.exp(15)), rel=1e-6)  # inside the window: the true slope
    p = np.array([1e-9, 0.5])
    np.testing.assert_array_equal(get_candidate("binary_ce", "keras_clipped").gradient(p, np.ones(2))[0], 0.0)


def test_autodiff_of_the_formula_goes_through_its_overflow_and_its_where():
    rearranged = get_candidate("sigmoid_ce", "naive_rearranged")
    x = np.array([-100.0], dtype=np.float32)
    assert np.isnan(rearranged.gradient(x, np.ones(1, np.float32))[0])  # exp(100) = inf in float32: inf * 0
    assert rearranged.gradient(x.astype(np.float64), np.ones(1))[0] == -1.0  # finite in float64
    stable_bce = get_candidate("binary_ce", "numpy_stable")
    p, z = np.array([0.0, 1.0, 0.5]), np.array([0.0, 1.0, 0.0])
    got = stable_bce.gradient(p, z)
    assert np.isnan(got[0]) and np.isnan(got[1])  # where() sends a zero cotangent into log(0): 0/0
    assert got[2] == 2.0


def test_sign_mistakes_follow_their_definitions():
    f32 = oracles.resolve_format("float32")
    subnormal = 2.0**-130
    rounded = np.array([1.0, -1.0, subnormal, 1.0, np.inf, 0.0, 1.0, -2.0, 3.0])
    got = np.array([0.0, -0.0, 0.0, -1.0, 1.0, -1.0, np.nan, -2.0, -np.inf])
    zero, wrong = sign_mistakes(got, rounded, f32.min_normal)
    assert zero.tolist() == [True, True, False, False, False, False, False, False, False]
    assert wrong.tolist() == [False, False, False, True, False, False, False, False, False]


def test_the_sign_counts_are_the_gradients_a_loss_underflowing_to_zero_is_not_counted():
    """naive_rearranged sigmoid_ce at x = 20, z = 1 (float32): log(1 + exp(-20)) rounds to log(1) = 0 where
    the exact loss 2.06e-9 is normal; the loss row keeps that in its ULP error (and the tiny regime is not it), never in
    zero_where_nonzero, so loss gates keep their meaning."""
    x, z = np.array([20.0], np.float32), np.array([1.0], np.float32)
    loss = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float32")
    got = get_candidate("sigmoid_ce", "naive_rearranged")(x, z)
    assert got[0] == 0 and float(loss.rounded[0]) > 1e-9
    c = compare(loss, got)
    assert not c.zero_where_nonzero.any() and c.ulp[0] > 1e6


def test_gradient_components_take_their_examples_regime_and_input_finiteness():
    x = np.array([[np.inf, 0.0], [1.0, 2.0]], dtype=np.float32)
    z = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    loss = oracles.evaluate("softmax_ce", logits=x, labels=z, dtype="float32")
    grad = oracles.evaluate("softmax_ce", logits=x, labels=z, dtype="float32", what="gradient")
    got = np.zeros_like(x)  # every component 0: a zero where the exact one is normal, or right
    from harness.metrics import example_regimes

    c = compare(grad, got, example_regimes(loss))
    assert c.regime.tolist() == ["special", "special", "hard", "hard"]
    assert c.finite_input.tolist() == [False, False, True, True]
    assert c.zero_where_nonzero.tolist() == [False, False, True, True]
    stats = summarize(c, ["special", "tiny", "confident", "hard", "soft"])
    assert stats["counts"]["zero_where_nonzero"] == 2 and stats["regimes"]["hard"].counts["zero_where_nonzero"] == 2


def _settings(**kw) -> Settings:
    return Settings(**{"families": ("sigmoid_ce",), "dtypes": ("float32",), "speed_elements": 0, "examples": 20, **kw})


def test_the_gradient_row_scores_the_base_and_every_example_the_loss_search_visited():
    candidate = get_candidate("sigmoid_ce", "numpy_stable")
    base = catalogue("sigmoid_ce", "float32")
    cache = TruthCache("sigmoid_ce", "float32")
    settings = _settings()
    loss, _worst, visited = score_loss(candidate, "float32", base, cache, settings)
    base_unit, extra = gradient_units(base, visited, "none")
    assert len(base_unit) == len(base) and len(extra) > 0
    assert len({e.key for e in extra}) == len(extra) and not {e.key for e in extra} & {e.key for e in base}
    row = score_gradient(candidate, "float32", base, visited, cache, settings)
    assert row.quantity == "gradient" and row.key == ("sigmoid_ce", "numpy_stable", "float32", "gradient")
    assert row.examples + row.counts["unconverged"] == len(base) + len(extra)
    assert sum(row.histogram.values()) + sum(row.counts[k] for k in ("nan", "inf")) <= row.examples


def test_a_reduced_candidate_is_scored_on_the_gradient_of_its_mean_per_chunk():
    mean = Candidate("mean_fixture", "sigmoid_ce", f"{_FIXTURES}:sigmoid_mean", ALL_DTYPES, "mean")
    # hard labels, moderate logits: where the accurate gradient the fixture divides is within 2 ULP
    base = [e for e in catalogue("sigmoid_ce", "float64") if abs(float(e.inputs)) <= 30 and float(e.labels) in (0.0, 1.0)]
    settings = _settings(dtypes=("float64",))
    row = score_gradient(mean, "float64", base, Observations(), TruthCache("sigmoid_ce", "float64"), settings)
    chunks = batches(base, "mean", settings.max_chunks)
    assert row.failure is None and row.reduction == "mean"
    assert row.examples + row.counts["unconverged"] == sum(len(c) for c in chunks)  # every component of every chunk
    assert row.max_ulp is not None and row.max_ulp <= 2.0


def test_a_gradient_that_cannot_be_loaded_or_does_not_exist_is_a_failure_row_not_a_crash():
    base = catalogue("sigmoid_ce", "float32")[:50]
    cache = TruthCache("sigmoid_ce", "float32")
    broken = Candidate("broken", "sigmoid_ce", f"{_FIXTURES}:sigmoid_without_gradient", ALL_DTYPES)
    row = score_gradient(broken, "float32", base, Observations(), cache, _settings())
    assert row.quantity == "gradient" and row.examples == 0
    assert row.failure.startswith("gradient could not be loaded: AttributeError")
    noted = Candidate("noted", "sigmoid_ce", f"{_FIXTURES}:sigmoid_without_gradient", ALL_DTYPES,
                      gradient_note="a metric, no autodiff")
    assert score_gradient(noted, "float32", base, Observations(), cache, _settings()).failure == "a metric, no autodiff"
    rows, _ = score_rows(broken, "float32", base, cache, _settings())
    assert [r.quantity for r in rows] == ["loss", "gradient"] and rows[0].failure is None and rows[0].examples > 0


def test_a_gradient_that_raises_on_some_inputs_gives_findings_and_scores_the_rest():
    raising = Candidate("raising", "sigmoid_ce", f"{_FIXTURES}:sigmoid_raising", ALL_DTYPES)
    base = catalogue("sigmoid_ce", "float64")
    below = sum(float(e.inputs) < -50 for e in base)
    row = score_gradient(raising, "float64", base, Observations(), TruthCache("sigmoid_ce", "float64"), _settings())
    assert below > 0
    assert row.counts["raised"] == below and len(row.findings) == min(below, 20)
    assert row.findings[0].kind == "raised" and "refuses logits below -50" in row.findings[0].message
    assert row.examples + row.counts["unconverged"] == len(base) - below


def test_quantities_are_read_once_in_order_and_a_bad_one_is_a_one_line_error(capsys):
    assert quantity_list("gradient,loss") == ("loss", "gradient")
    assert quantity_list("gradient") == ("gradient",)
    assert quantity_list("all") == ("loss", "gradient")
    with pytest.raises(UsageError, match=r"^quantity='grad' is not one of: loss, gradient$"):
        quantity_list("loss,grad")
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--quantities", "loss,grad", "--no-progress"])
    assert exit_.value.code == 2
    assert "quantity='grad' is not one of: loss, gradient" in capsys.readouterr().err


def test_a_campaign_scores_the_quantities_asked_for():
    settings = _settings(candidates=("numpy_stable", "naive"), examples=5, shrink=False)
    both, _ = run_campaign(settings)
    assert [(s.candidate, s.quantity) for s in both.scores] == [
        ("naive", "loss"), ("naive", "gradient"), ("numpy_stable", "loss"), ("numpy_stable", "gradient")]
    assert both.score("sigmoid_ce", "naive", "float32", "gradient").examples > 0
    loss_only, _ = run_campaign(Settings(**{**{f: getattr(settings, f) for f in settings.__slots__}, "quantities": ("loss",)}))
    assert [s.quantity for s in loss_only.scores] == ["loss", "loss"]
    assert loss_only.settings["quantities"] == ["loss"] and "quantities" not in both.settings
    gradient_only, _ = run_campaign(Settings(**{**{f: getattr(settings, f) for f in settings.__slots__}, "quantities": ("gradient",)}))
    assert [s.quantity for s in gradient_only.scores] == ["gradient", "gradient"]
    assert gradient_only.scores[0].examples + gradient_only.scores[0].counts["unconverged"] == len(catalogue("sigmoid_ce", "float32"))


def test_a_resumed_campaign_takes_both_finished_rows_and_scores_nothing_again():
    settings = _settings(candidates=("numpy_stable",), examples=5, shrink=False)
    first, _ = run_campaign(settings)
    resume = Resume(scores={s.key: (s, []) for s in first.scores})
    scored = []
    again, _ = run_campaign(settings, resume=resume, progress=Progress(scored=lambda score, worst: scored.append(score)))
    assert scored == [] and again.scores == first.scores
    partial = Resume(scores={s.key: (s, []) for s in first.scores if s.quantity == "loss"})
    run_campaign(settings, resume=partial, progress=Progress(scored=lambda score, worst: scored.append(score)))
    assert [s.quantity for s in scored] == ["loss", "gradient"]  # a missing row: both scored again


def test_a_gradient_case_replays_with_the_candidates_gradient(capsys):
    candidate = get_candidate("sigmoid_ce", "keras_clipped")
    example = Example(np.array(-100.0), np.array(1.0))
    row = score_gradient(candidate, "float64", [example], Observations(), TruthCache("sigmoid_ce", "float64"), _settings())
    (case,) = row.worst
    assert case.outcome == "zero_where_nonzero" and case.component == 0 and float.fromhex(case.got) == 0.0
    words = shlex.split(case.replay)
    assert words[:2] == ["lossfuzz", "exact"] and "--gradient" in words
    assert main(words[1:]) == 0
    out = capsys.readouterr().out
    assert "sigmoid_ce gradient" in out and "exact     -1.0000000000000000000" in out
    assert "keras_clipped -0.0" in out
