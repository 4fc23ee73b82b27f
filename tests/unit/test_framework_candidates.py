"""PyTorch, optax and scikit-learn candidates, the mixed-precision ``_upcast`` variants and hard-label-only
candidates: how they are called, what they may not change (JAX's global x64 flag, dtypes, bits), and how
the campaign and the reports treat them."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import oracles
from harness.records import RunResult, Score
from harness.campaign import DEFAULT_DTYPES, Settings, labels_scored, run_campaign, score_candidate
from harness.candidates import Unsupported, get_candidate
from harness.candidates._upcast import computed_in_float32
from harness.reports import upcast_comparisons
from harness.reports.markdown import render_markdown
from harness.scoring import TruthCache
from harness.strategies import Example, catalogue, has_labels

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------- the upcast wrapper


@pytest.mark.parametrize("half, step", [(np.float16, 2.0**-10), (ml_dtypes.bfloat16, 2.0**-7)], ids=["float16", "bfloat16"])
def test_upcast_gives_the_base_float32_inputs_and_rounds_its_float32_result_once_to_nearest_even(half, step):
    seen = {}

    def base(x, z):
        seen["dtypes"] = (x.dtype, z.dtype)
        seen["values"] = (x.astype(np.float64).tolist(), z.astype(np.float64).tolist())
        # 1 + step/2 is a tie (to even: 1); a hair above it rounds up; 1 + 3*step/2 is a tie rounding up to even
        return np.array([1 + step / 2, 1 + step / 2 + 2.0**-20, 1 + 3 * step / 2], np.float32)

    x = np.array([0.5, -3.0, 7.0], half)
    z = np.array([0.25, 1.0, 0.0], half)
    got = computed_in_float32(base)(x, z)
    assert seen["dtypes"] == (np.float32, np.float32)
    assert seen["values"] == ([0.5, -3.0, 7.0], [0.25, 1.0, 0.0])
    assert got.dtype == np.dtype(half)
    assert got.astype(np.float64).tolist() == [1.0, 1 + step, 1 + 2 * step]


def test_upcast_refuses_full_precision_inputs_and_passes_a_changed_dtype_through_for_the_scorer():
    wrapped = computed_in_float32(lambda x, z: x.astype(np.float64))
    with pytest.raises(Unsupported, match="float32"):
        wrapped(np.float32([1.0]), np.float32([0.0]))
    assert wrapped(np.float16([1.0]), np.float16([0.0])).dtype == np.float64  # reported as wrong_dtype, not hidden
    sparse = computed_in_float32(lambda x, c: np.float32(c))  # class indices are passed as they are
    assert sparse(np.float16([[1.0, 2.0]]), np.array([1])).tolist() == [1.0]


def test_an_upcast_variant_scores_the_stable_formula_to_within_one_half_ulp_where_the_plain_one_is_off():
    # float16 sigmoid_ce with a soft label near 1: max(x, 0) - x*z cancels in float16 (128 to 511 ULP), not
    # in float32, whose result rounds once to within half an ULP of float16
    x, z = np.float16([5.0, 12.0, 100.0]), np.float16([0.999, 0.999, 0.999])
    exact = oracles.exact("sigmoid_ce", logits=x, labels=z, dtype="float16")
    upcast = get_candidate("sigmoid_ce", "numpy_stable_upcast")(x, z)
    plain = get_candidate("sigmoid_ce", "numpy_stable")(x, z)
    assert upcast.dtype == np.float16
    assert np.max(oracles.ulp_error(upcast, exact, "float16")) <= 0.5 + 2.0**-12
    assert np.min(oracles.ulp_error(plain, exact, "float16")) > 100


# ------------------------------------------------------------------------------------------------ PyTorch


@pytest.mark.torch
def test_torch_tensors_carry_every_bfloat16_and_float16_bit_pattern_both_ways_unchanged():
    from harness.candidates._backend import torch_array, torch_tensor

    for half, bits in ((ml_dtypes.bfloat16, np.uint16), (np.float16, np.uint16)):
        every = np.arange(2**16, dtype=np.uint32).astype(bits).view(half)
        back = torch_array(torch_tensor(every))
        assert back.dtype == np.dtype(half)
        assert np.array_equal(back.view(bits), every.view(bits))


@pytest.mark.torch
def test_torch_softmax_candidates_flatten_the_batch_axes_and_reshape_back():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8
    z = np.full((2, 3, 4), 0.25, np.float32)
    got = get_candidate("softmax_ce", "torch")(x, z)
    assert got.shape == (2, 3)
    exact = oracles.loss("softmax_ce", logits=x, labels=z, dtype="float32")
    assert np.max(oracles.ulp_error(got, oracles.exact("softmax_ce", logits=x, labels=z, dtype="float32"), "float32")) <= 4
    c = np.array([[0, 1, 2], [3, 0, 1]])
    assert get_candidate("sparse_softmax_ce", "torch")(x, c).shape == (2, 3)
    assert exact.shape == (2, 3)


# --------------------------------------------------------------------------------------------------- optax


@pytest.mark.jax
def test_optax_runs_float64_in_x64_mode_and_leaves_jax_32_bit_for_everything_after():
    import jax
    import jax.numpy as jnp

    before = jax.config.jax_enable_x64
    assert before is False  # JAX's default; the test would prove nothing otherwise
    candidate = get_candidate("sigmoid_ce", "optax")
    x64 = candidate(np.float64([1e-3, -40.0]), np.float64([0.5, 0.0]))
    assert x64.dtype == np.float64
    exact = oracles.exact("sigmoid_ce", logits=np.float64([1e-3, -40.0]), labels=np.float64([0.5, 0.0]), dtype="float64")
    assert np.max(oracles.ulp_error(x64, exact, "float64")) <= 4  # computed in 64 bits, not 32 widened
    assert jax.config.jax_enable_x64 is False
    assert jnp.asarray(np.float64([1.0])).dtype == jnp.float32  # a later JAX user still gets 32 bits
    assert candidate(np.float32([0.5]), np.float32([0.5])).dtype == np.float32
    assert get_candidate("sparse_softmax_ce", "optax")(np.float64([[1.0, 2.0]]), np.array([1])).dtype == np.float64
    assert jax.config.jax_enable_x64 is False


@pytest.mark.jax
def test_the_x64_scope_also_holds_when_the_candidate_raises():
    import jax

    from harness.candidates import _optax

    with pytest.raises(ZeroDivisionError):
        with _optax.x64():
            assert jax.config.jax_enable_x64 is True
            raise ZeroDivisionError
    assert jax.config.jax_enable_x64 is False


# ------------------------------------------------------------------------------------------- scikit-learn


@pytest.mark.sklearn
def test_sklearn_log_loss_is_a_mean_over_hard_labels_that_rejects_bfloat16_and_soft_labels():
    candidate = get_candidate("binary_ce", "sklearn")
    p, z = np.float32([0.25, 0.5, 0.875]), np.float32([1.0, 0.0, 1.0])
    got = candidate(p, z)
    assert got.shape == () and got.dtype == np.float32
    exact = oracles.exact("binary_ce", probs=p, labels=z, dtype="float32", reduction="mean")
    assert float(oracles.ulp_error(got, exact, "float32")) <= 4
    with pytest.raises(Unsupported, match="bfloat16"):
        candidate(p.astype(ml_dtypes.bfloat16), z.astype(ml_dtypes.bfloat16))
    with pytest.raises(ValueError):
        candidate(p, np.float32([0.5, 0.0, 1.0]))


# ------------------------------------------------------------------------------------ hard-label candidates


def test_labels_scored_narrows_the_run_label_set_to_the_candidate_own():
    hard = get_candidate("binary_ce", "sklearn")
    every = get_candidate("binary_ce", "numpy_stable")
    assert [labels_scored(hard, a) for a in ("all", "hard", "soft")] == ["hard", "hard", None]
    assert [labels_scored(every, a) for a in ("all", "hard", "soft")] == ["all", "hard", "soft"]
    with pytest.raises(ValueError, match="labels='soft' is not one of: all, hard"):
        dataclasses.replace(every, labels="soft")


@pytest.mark.sklearn
def test_a_hard_label_candidate_is_scored_on_hard_labels_only_and_its_score_says_so():
    candidate = get_candidate("binary_ce", "sklearn")
    base = catalogue("binary_ce", "float64")
    assert any(not has_labels(e, "hard") for e in base)  # the catalogue has soft labels it must skip
    settings = Settings(examples=10, speed_elements=0)
    score, _ = score_candidate(candidate, "float64", base, TruthCache("binary_ce", "float64"), settings)
    assert score.labels == "hard"
    assert score.counts["raised"] == 0 and not score.findings  # log_loss raises on every soft label
    assert score.examples > 0
    assert score.worst and all(float.fromhex(label) in (0.0, 1.0) for w in score.worst for label in w.labels)
    soft = dataclasses.replace(settings, labels="soft")
    skipped, _ = score_candidate(candidate, "float64", base, TruthCache("binary_ce", "float64"), soft)
    assert skipped.examples == 0 and "hard labels only" in skipped.failure


def test_the_score_labels_round_trip_through_json_and_show_in_the_markdown_row():
    score = Score(family="binary_ce", candidate="sklearn", dtype="float32", reduction="mean", examples=3, max_ulp=0.5,
                  mean_ulp=0.1, median_ulp=0.0, p99_ulp=0.5, max_bits=1.0, mean_bits=0.1,
                  histogram={"exact": 3, "<=0.5": 0, "<=1": 0, "<=4": 0, "<=1024": 0, "more": 0},
                  counts={k: 0 for k in ("nan", "inf", "finite_where_infinite", "nan_where_infinite", "wrong_infinity",
                                          "number_where_nan", "flushed_subnormal", "raised", "unconverged",
                                          "on_nonfinite_inputs")},
                  labels="hard")
    data = score.to_json()
    assert data["labels"] == "hard"
    assert Score.from_json(data).labels == "hard"
    del data["labels"]
    assert Score.from_json(data).labels == "all"  # a report written before the key
    result = RunResult(settings={}, provenance={}, scores=(score,), wall_seconds=1.0)
    assert "| sklearn (mean, hard labels only) | float32 |" in render_markdown(result)


# ------------------------------------------------------------------------------------- campaign and report


def test_the_default_run_covers_the_four_formats_and_upcast_variants_only_the_half_ones():
    assert DEFAULT_DTYPES == ("float16", "bfloat16", "float32", "float64")
    assert Settings().dtypes == DEFAULT_DTYPES
    from harness.options import options_for

    assert next(o for o in options_for("run") if o.flag == "--dtypes").default == DEFAULT_DTYPES
    result, _ = run_campaign(Settings(examples=2, families=("sigmoid_ce",), candidates=("numpy_stable", "numpy_stable_upcast"),
                                      dtypes=DEFAULT_DTYPES, speed_elements=0, shrink=False))
    keys = [(s.candidate, s.dtype) for s in result.scores if s.quantity == "loss"]
    assert keys == [("numpy_stable", "float16"), ("numpy_stable_upcast", "float16"), ("numpy_stable", "bfloat16"),
                    ("numpy_stable_upcast", "bfloat16"), ("numpy_stable", "float32"), ("numpy_stable", "float64")]
    assert [(s.candidate, s.dtype) for s in result.scores if s.quantity == "gradient"] == keys  # each beside its loss
    comparisons = {(c.dtype, c.candidate): c for c in upcast_comparisons(result) if c.plain.quantity == "loss"}
    assert set(comparisons) == {("float16", "numpy_stable"), ("bfloat16", "numpy_stable")}
    # the stable formula in float16 itself loses bits that the float32 computation keeps
    assert comparisons[("float16", "numpy_stable")].missing is True
    assert comparisons[("float16", "numpy_stable")].upcast_share < comparisons[("float16", "numpy_stable")].plain_share
    text = render_markdown(result)
    assert "## Mixed precision: where the upcast is missing" in text
    assert "| sigmoid_ce | float16 | numpy_stable |" in text
    from harness.reports.html import render_html

    page = render_html(result)
    assert '<h2 id="mixed-precision">' in page and "<td>the half format (no upcast)</td>" in page


def test_importing_harness_and_its_plugin_imports_no_framework():
    code = ("import sys, harness, harness.pytest_plugin, harness.cli;"
            " print(*[m in sys.modules for m in ('tensorflow', 'torch', 'jax', 'optax', 'sklearn')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False"] * 5


def test_hard_labels_in_the_search_are_zero_or_one():
    from hypothesis import given, settings as hsettings

    from harness.search import _strategy

    @hsettings(max_examples=50, database=None, deadline=None)
    @given(_strategy("binary_ce", "float32", "mean", "hard"))
    def check(batch: list[Example]) -> None:
        assert all(has_labels(e, "hard") for e in batch)

    check()
