"""The flaws of PyTorch, optax and scikit-learn losses (issue 13) in the default run (``default_run``: every
built-in in all four formats), each checked against the exact value of the oracle at the named input, which
the run scored, and replayed with the report's command.

The library's wrong value is asserted next to the oracle's exact one: when a library fixes its loss, the test
fails, and the README's findings table must change with it."""

from __future__ import annotations

import math
import shlex

import numpy as np
import pytest

import oracles
from harness.candidates import get_candidate
from harness.cli import main
from harness.reports import upcast_comparisons
from harness.scoring import replay_command
from harness.strategies import Example, catalogue

pytestmark = [pytest.mark.quality, pytest.mark.torch, pytest.mark.jax, pytest.mark.sklearn, pytest.mark.tf]

def _exact(family: str, dtype: str, reduction: str = "none", **inputs) -> float:
    return float(oracles.loss(family, **inputs, dtype=dtype, reduction=reduction).astype(np.float64).ravel()[0])


def _replays(replay: str, capsys) -> str:
    """Run a replay command (``lossfuzz exact ...``) in process; what it printed."""
    words = shlex.split(replay)
    assert words[:2] == ["lossfuzz", "exact"]
    assert main(words[1:]) == 0
    return capsys.readouterr().out


def _in_catalogue(family: str, dtype: str, inputs: np.ndarray, labels: np.ndarray) -> bool:
    """Whether the boundary catalogue (scored by every run) holds this example."""
    key = Example(inputs, labels).key
    return any(e.key == key for e in catalogue(family, dtype))


def _error(family: str, name: str, dtype: str, inputs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The candidate's value on one example and its ULP error against the exact value."""
    fam = oracles.get_family(family)
    got = get_candidate(family, name)(inputs[None], labels[None])
    exact = oracles.exact(family, **{fam.input_name: inputs[None]}, labels=labels[None], dtype=dtype)
    return float(got.astype(np.float64)[0]), float(oracles.ulp_error(got, exact, dtype)[0])


def test_torch_binary_cross_entropy_clamps_the_log_at_minus_100(default_run, capsys):
    p, z = np.float32(2.0**-149), np.float32(1.0)
    got, ulp = _error("binary_ce", "torch", "float32", np.asarray(p), np.asarray(z))
    assert got == 100.0
    assert _exact("binary_ce", "float32", probs=np.float32([p]), labels=np.float32([z])) == pytest.approx(103.27893, abs=1e-5)
    assert ulp > 4e5
    assert _in_catalogue("binary_ce", "float32", np.asarray(p), np.asarray(z))
    assert default_run.score("binary_ce", "torch", "float32").max_ulp >= ulp  # the run scored it
    printed = _replays(replay_command("binary_ce", "torch", "float32", np.asarray(p), np.asarray(z)), capsys)
    assert "torch     100.0" in printed and "exact     103.278929903431851" in printed


def test_torch_bce_with_logits_returns_zero_for_a_small_positive_loss_in_float32_and_flushes_it_in_float64(default_run, capsys):
    x, z = np.asarray(np.float32(-20.0)), np.asarray(np.float32(0.0))
    got, ulp = _error("sigmoid_ce", "torch", "float32", x, z)
    assert got == 0.0 and ulp > 8e6  # every bit lost
    assert _exact("sigmoid_ce", "float32", logits=x[None], labels=z[None]) == pytest.approx(2.0611537e-9, rel=1e-6)
    assert _in_catalogue("sigmoid_ce", "float32", x, z)
    assert default_run.score("sigmoid_ce", "torch", "float32").max_ulp >= ulp
    assert "torch     0.0" in _replays(replay_command("sigmoid_ce", "torch", "float32", x, z), capsys)
    x64, z64 = np.float64([-708.4]), np.float64([0.0])
    assert float(get_candidate("sigmoid_ce", "torch")(x64, z64)[0]) == 0.0
    exact64 = _exact("sigmoid_ce", "float64", logits=x64, labels=z64)
    assert 0 < exact64 < np.finfo(np.float64).tiny  # a subnormal, flushed to zero
    assert default_run.score("sigmoid_ce", "torch", "float64").counts["flushed_subnormal"] > 0


def test_optax_integer_label_softmax_gives_zero_for_equal_huge_logits_where_torch_gives_ln_k(default_run, capsys):
    x, c = np.float32([1e8, 1e8]), np.asarray(0)
    got, ulp = _error("sparse_softmax_ce", "optax", "float32", x, c)
    assert got == 0.0 and ulp > 1e7
    exact = _exact("sparse_softmax_ce", "float32", logits=x[None], labels=c[None])
    assert exact == pytest.approx(math.log(2), rel=1e-7)
    assert float(get_candidate("sparse_softmax_ce", "torch")(x[None], c[None])[0]) == exact
    assert "optax     0.0" in _replays(replay_command("sparse_softmax_ce", "optax", "float32", x, c), capsys)
    # the catalogue's rows of three equal huge logits (exact loss ln 3): optax 0, torch ln 3
    rows = [e for e in catalogue("sparse_softmax_ce", "float32")
            if e.inputs.size == 3 and np.isfinite(e.inputs).all() and (e.inputs == e.inputs[0]).all() and e.inputs[0] >= 1e8]
    assert rows
    for e in rows:
        got, ulp = _error("sparse_softmax_ce", "optax", "float32", e.inputs, e.labels)
        assert got == 0.0 and default_run.score("sparse_softmax_ce", "optax", "float32").max_ulp >= ulp > 9e6
        assert _error("sparse_softmax_ce", "torch", "float32", e.inputs, e.labels)[1] <= 1


def test_sklearn_log_loss_clips_a_zero_probability_to_a_finite_loss_where_the_exact_one_is_infinite(default_run, capsys):
    p, z = np.float64([0.0]), np.float64([1.0])
    got = float(get_candidate("binary_ce", "sklearn")(p, z))
    assert got == pytest.approx(-math.log(np.finfo(np.float64).eps), rel=1e-12)  # 36.04
    assert math.isinf(_exact("binary_ce", "float64", "mean", probs=p, labels=z))
    score = default_run.score("binary_ce", "sklearn", "float64")
    assert score.labels == "hard" and score.counts["raised"] == 0
    assert score.counts["finite_where_infinite"] > 0
    clipped = [w for w in score.worst if w.outcome == "finite_where_infinite"]
    assert clipped and "(finite_where_infinite)" in _replays(clipped[0].replay, capsys)
    printed = _replays(replay_command("binary_ce", "sklearn", "float64", p, z, "mean"), capsys)
    assert "exact     inf" in printed and "sklearn   36.04365338911715" in printed


def test_the_report_shows_where_the_upcast_to_float32_is_missing(default_run):
    missing = {(r.family, r.dtype, r.candidate): r.missing for r in upcast_comparisons(default_run)}
    # TensorFlow's sparse softmax kernel computes float16 in float32, bfloat16 in bfloat16
    assert missing[("sparse_softmax_ce", "float16", "tf")] is False
    assert missing[("sparse_softmax_ce", "bfloat16", "tf")] is True
    # optax's softmax losses compute in the half format itself
    for family in ("softmax_ce", "sparse_softmax_ce"):
        for dtype in ("float16", "bfloat16"):
            assert missing[(family, dtype, "optax")] is True, (family, dtype)
