"""Gradient sweeps (``lossfuzz sweep --quantities``): each candidate's gradient scored per component on every
case, with the figures of scoring the same inputs through the oracles directly, a slice with a known answer
(Keras' clip gives a vanishing gradient on every case), unsupported gradients, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

import oracles
from harness import cli
from harness.candidates import get_candidate
from harness.exhaustive import chunk_inputs, plan_sweep, run_sweep, summary
from harness.metrics import compare, example_regimes

from .test_exhaustive import InOrder

pytestmark = pytest.mark.timeout(300)


def sweep(family, dtype, names, bits, quantities=("loss", "gradient"), chunk_cases=1 << 11):
    plan = plan_sweep(family, dtype, "hard", names, bits, chunk_cases=chunk_cases, quantities=quantities)
    return plan, run_sweep(plan, InOrder())


@pytest.mark.parametrize("family,dtype,bits", [("sigmoid_ce", "float16", None),
                                               ("sparse_softmax_ce", "bfloat16", (0x4000, 0x4800)),
                                               ("softmax_ce", "float16", (0x4800, 0x5000))])
def test_gradient_figures_equal_those_of_scoring_every_component_through_the_oracles(family, dtype, bits):
    names = ["naive", "numpy_stable"]
    plan, result = sweep(family, dtype, names, bits)
    assert len(plan) > 1 and [s.quantity for s in result.scores] == ["loss", "loss", "gradient", "gradient"]
    inputs = [chunk_inputs(c) for c in plan]
    x = np.concatenate([i[0] for i in inputs])
    z = np.concatenate([i[1] for i in inputs])
    patterns = np.concatenate([i[2] for i in inputs])
    fam = oracles.get_family(family)
    loss = oracles.evaluate(family, **{fam.input_name: x}, labels=z, dtype=dtype)
    exact = oracles.evaluate(family, **{fam.input_name: x}, labels=z, dtype=dtype, what="gradient")
    for score in result.scores[2:]:
        got = get_candidate(family, score.candidate).load_gradient()(x, z)
        c = compare(exact, got, regimes=example_regimes(loss))
        measured = c.ulp[~np.isnan(c.ulp)]
        assert score.examples == exact.rounded.size == got.size  # one value per component
        assert score.max_ulp == measured.max()
        assert score.mean_ulp == pytest.approx(measured.mean(), rel=1e-12)
        for kind in ("nan", "inf", "finite_where_infinite", "number_where_nan"):
            assert score.counts[kind] == int(np.count_nonzero(c.outcome == kind)), kind
        assert score.counts["zero_where_nonzero"] == int(c.zero_where_nonzero.sum())
        assert score.counts["wrong_sign"] == int(c.wrong_sign.sum())
        assert score.histogram["exact"] == int(np.count_nonzero((c.bits == 0) & ~np.isnan(c.ulp)))
        for regime, r in score.regimes.items():  # each component in its case's regime
            assert r.examples == int(np.count_nonzero(c.regime == regime)), regime
        # the plot: each component in its case's bucket of patterns, the bucket's max over them
        plot = result.gradient_buckets[score.candidate]
        per = c.ulp.size // patterns.size
        bucket = np.repeat((patterns - plan[0].origin) // plan[0].bucket_width, per)
        top = np.full(len(plot["max"]), -np.inf)
        has = ~np.isnan(c.ulp)
        np.maximum.at(top, bucket[has], c.ulp[has])
        assert plot["max"] == [None if v == -np.inf else float(v) for v in top]
        row = summary(result, "cmd")["gradients"][score.candidate]
        assert row["correctly_rounded"] == score.histogram["exact"] and row["examples"] == score.examples
        if score.max_ulp > 0.5:  # the case shown replays with the max error
            top = max((w for w in score.worst if w.ulp is not None), key=lambda w: w.ulp)
            assert top.ulp == score.max_ulp
    # the loss rows are unchanged by scoring the gradient too
    _plan, alone = sweep(family, dtype, names, bits, quantities=("loss",))
    assert [s.to_json() for s in alone.scores] == [s.to_json() for s in result.scores[:2]]


def test_keras_clip_gives_a_vanishing_gradient_on_every_case_of_a_confident_slice():
    # float32 logits from -18 down (20 000 patterns): keras_clipped's sigmoid is clipped to 1e-7 there, so its
    # gradient is 0 for both labels, where the exact one is about -1 (label 1) or exp(x) > 1e-16 (label 0)
    _plan, result = sweep("sigmoid_ce", "float32", ["keras_clipped", "numpy_stable"], (0xC1900000, 0xC1900000 + 20000),
                          quantities=("gradient",))
    clipped, stable = result.scores
    assert clipped.quantity == "gradient" and clipped.examples == 40000
    assert clipped.counts["zero_where_nonzero"] == 40000
    assert stable.counts["zero_where_nonzero"] == 0 and stable.max_ulp <= 4  # the control
    assert result.gradient_buckets and not result.buckets  # the plot draws what was scored
    facts = summary(result, "cmd")
    assert facts["candidates"] == {} and facts["gradients"]["keras_clipped"]["zero_where_nonzero"] == 40000


def test_a_candidate_without_a_gradient_gets_an_unsupported_row_with_its_note(monkeypatch):
    from harness.candidates import Candidate

    monkeypatch.setattr(Candidate, "gradient_note", "no autodiff here", raising=False)
    _plan, result = sweep("sigmoid_ce", "float16", ["numpy_stable"], (0x3C00, 0x3D00))
    loss, gradient = result.scores
    assert not loss.unsupported and gradient.unsupported and gradient.failure == "no autodiff here"
    assert summary(result, "")["gradients"]["numpy_stable"] == {"unsupported": True, "note": "no autodiff here"}


def test_unknown_quantities_are_a_one_line_error():
    with pytest.raises(ValueError, match="quantities='hessian'.*one of: loss, gradient"):
        plan_sweep("sigmoid_ce", "float16", "hard", ["naive"], None, quantities=("hessian",))


def test_the_command_scores_the_gradient_and_resumes_only_with_the_same_quantities(tmp_path, capsys, monkeypatch):
    import contextlib

    from harness import _executors

    # chunks in this process (a spawned pool's resource tracker would outlive the test)
    monkeypatch.setattr(_executors, "executor_for_options", lambda options: contextlib.nullcontext(InOrder()))
    out = tmp_path / "s"
    argv = ["sweep", "sigmoid_ce", "--candidate", "numpy_stable", "--dtype", "bfloat16", "--bits", "0x4000:0x4100",
            "--workers", "1", "--no-progress", "--out", str(out)]
    assert cli.main(argv + ["--quantities", "gradient"]) == 0
    facts = json.loads((out / "summary.json").read_text())
    assert facts["quantities"] == ["gradient"] and facts["candidates"] == {}
    assert facts["gradients"]["numpy_stable"]["examples"] == 2 * 0x100
    assert "--quantities gradient" in facts["command"]
    text = (out / "summary.md").read_text()
    assert "## Gradient (per component)" in text and "## Loss" not in text  # no empty table
    report = json.loads((out / "report.json").read_text())
    assert {r["quantity"] for r in report["results"]} == {"gradient"} and "gradient_buckets" in report["sweep"]
    html = (out / "report.html").read_text()
    assert 'id="bit-patterns"' in html
    # a journal of a loss-only sweep does not resume a gradient sweep
    (out / "sweep-journal.jsonl").write_text(json.dumps({"lossfuzz_sweep_journal": 1, "settings": {
        "family": "sigmoid_ce", "dtype": "bfloat16", "labels": "hard", "candidates": ["numpy_stable"],
        "bits": [0x4000, 0x4100], "chunks": 1, "quantities": ["loss"]}}) + "\n")
    capsys.readouterr()
    assert cli.main(argv + ["--quantities", "gradient", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings (quantities: loss, not gradient)" in err[0]
    # the same candidates in another order: named, both orders shown
    (out / "sweep-journal.jsonl").write_text(json.dumps({"lossfuzz_sweep_journal": 1, "settings": {
        "family": "sigmoid_ce", "dtype": "bfloat16", "labels": "hard", "candidates": ["naive", "numpy_stable"],
        "bits": [0x4000, 0x4100], "chunks": 1, "quantities": ["gradient"]}}) + "\n")
    assert cli.main(argv[:3] + ["numpy_stable,naive"] + argv[4:] + ["--quantities", "gradient", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings (candidates: naive,numpy_stable, not numpy_stable,naive)" in err[0], err
