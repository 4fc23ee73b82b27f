"""Exhaustive sweeps (harness.exhaustive): the input sets, a slice with a known answer, figures equal to those of
scoring the same inputs through the oracles directly, chunk merging in plan order, and bad input."""

from __future__ import annotations

import math
import threading
from concurrent.futures import Executor, Future

import numpy as np
import pytest

import oracles
from harness import cli
from harness.candidates import get_candidate
from harness.exhaustive import (Chunk, chunk_inputs, parse_bits, plan_sweep, run_sweep, summary,
                                sweep_chunk)


class InOrder(Executor):
    """Runs each chunk when submitted, in this process."""

    def __init__(self) -> None:
        self.calls = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        self.calls.append(args[0])
        return future


def sweep(family, dtype, labels, names, bits, chunk_cases=1 << 20, executor=None):
    plan = plan_sweep(family, dtype, labels, names, bits, chunk_cases=chunk_cases)
    return plan, run_sweep(plan, executor or InOrder())


# ----------------------------------------------------------------------------------------------- input sets


def test_hard_labels_cross_every_pattern_of_the_range_with_0_and_1():
    (chunk,) = plan_sweep("sigmoid_ce", "float32", "hard", ["naive"], (0x3F800000, 0x3F800010))
    x, z, patterns = chunk_inputs(chunk)
    assert x.dtype == np.float32 and z.dtype == np.float32
    assert x.view(np.uint32).tolist() == list(range(0x3F800000, 0x3F800010)) * 2
    assert z.tolist() == [0.0] * 16 + [1.0] * 16
    assert patterns.tolist() == list(range(0x3F800000, 0x3F800010)) * 2


def test_all_labels_are_every_label_of_the_format_in_the_unit_interval():
    (chunk,) = plan_sweep("sigmoid_ce", "bfloat16", "all", ["naive"], (0x4000, 0x4001))
    _x, z, _p = chunk_inputs(chunk)
    z64 = z.astype(np.float64)
    # bfloat16: patterns 0 .. 0x3F80 (1.0), each once; -0 is not a second label
    assert z.size == 0x3F80 + 1 and z64.min() == 0.0 and z64.max() == 1.0 and np.unique(z64).size == z.size
    assert not np.signbit(z64).any()


def test_binary_ce_sweeps_the_probabilities_of_the_format_only():
    plan = plan_sweep("binary_ce", "float16", "hard", ["numpy_stable"], None)
    kept = np.concatenate([chunk_inputs(c)[0] for c in plan]).astype(np.float64)
    # float16 patterns 0 .. 0x3C00 (1.0) and -0 (0x8000), with both labels
    assert kept.size == 2 * (0x3C00 + 1 + 1)
    assert ((kept >= 0) & (kept <= 1)).all()


@pytest.mark.parametrize("family", ["softmax_ce", "sparse_softmax_ce"])
def test_softmax_families_sweep_rows_x_0_with_label_0_and_label_1(family):
    (chunk,) = plan_sweep(family, "float16", "hard", ["numpy_stable"], (0x3C00, 0x3C02))
    x, z, _p = chunk_inputs(chunk)
    assert x.astype(np.float64).tolist() == [[1.0, 0.0], [1.0009765625, 0.0]] * 2
    if family == "sparse_softmax_ce":
        assert z.tolist() == [0, 0, 1, 1]
    else:
        assert z.astype(np.float64).tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]


def test_infinity_and_nan_patterns_are_counted_apart_in_the_special_regime():
    _plan, result = sweep("sigmoid_ce", "float16", "hard", ["numpy_stable"], (0x7800, 0x8000))
    (score,) = result.scores
    # 0x7C00 .. 0x7FFF: +inf and the positive nans (1024 patterns), with two labels each
    assert score.regimes["special"].examples == 2 * 1024
    assert score.examples == 2 * 0x800
    # numpy_stable gives nan at +inf with z = 1 (inf - inf), where the limit is 0: counted on non-finite inputs
    assert score.counts["on_nonfinite_inputs"] >= 1
    assert sum(score.regimes["special"].counts[k] for k in ("nan", "inf", "number_where_nan", "finite_where_infinite",
                                                           "nan_where_infinite", "wrong_infinity")) \
        == score.counts["on_nonfinite_inputs"]


# ------------------------------------------------------------------------------------------- known answers


def test_naive_on_the_logits_where_exp_of_minus_x_overflows_is_non_finite_on_every_case():
    # float32 logits from -89.0 down (exp(-x) > 3.4e38 overflows for x < -88.72): 2**16 patterns x 2 labels
    bits = (0xC2B20000, 0xC2B20000 + (1 << 16))
    x = np.arange(*bits, dtype=np.uint32).view(np.float32)
    assert np.isfinite(x).all() and (x < -88.73).all()
    _plan, result = sweep("sigmoid_ce", "float32", "hard", ["naive", "numpy_stable"], bits)
    naive, stable = result.scores
    cases = 2 * (1 << 16)
    assert naive.examples == stable.examples == cases
    assert naive.max_ulp is None  # no case has a ULP number
    assert naive.counts["inf"] + naive.counts["nan"] == cases  # inf for z = 1, 0 * inf = nan for z = 0
    assert naive.counts["on_nonfinite_inputs"] == 0
    # the control: the stable formula has no non-finite case there and is within a few ULP
    assert stable.counts["inf"] + stable.counts["nan"] == 0 and stable.max_ulp < 4


@pytest.mark.parametrize("family,dtype,bits", [("sigmoid_ce", "float32", (0x41000000, 0x41000000 + 20000)),
                                               ("sigmoid_ce", "float16", None),
                                               ("binary_ce", "bfloat16", None),
                                               ("sparse_softmax_ce", "float16", (0x4000, 0x7000))])
def test_figures_equal_those_of_scoring_the_same_inputs_through_the_oracles_directly(family, dtype, bits):
    names = ["naive", "numpy_stable"]
    plan, result = sweep(family, dtype, "hard", names, bits, chunk_cases=1 << 13)  # several chunks merged
    assert len(plan) > 2
    inputs = [chunk_inputs(c) for c in plan]
    x = np.concatenate([i[0] for i in inputs])
    z = np.concatenate([i[1] for i in inputs])
    fam = oracles.get_family(family)
    truth = oracles.evaluate(family, **{fam.input_name: x}, labels=z, dtype=dtype)
    for score, name in zip(result.scores, names):
        got = get_candidate(family, name).load()(x, z)
        outcome, ulp, bits_ = oracles.measure(got, truth, dtype)
        measured = ulp[~np.isnan(ulp)]
        assert score.examples == x.shape[0]
        assert score.max_ulp == measured.max()
        assert score.mean_ulp == pytest.approx(measured.mean(), rel=1e-12)
        for kind in ("nan", "inf", "finite_where_infinite", "number_where_nan"):
            assert score.counts[kind] == int(np.count_nonzero(outcome == kind)), kind
        exactly = int(np.count_nonzero((bits_ == 0) & ~np.isnan(ulp)))
        assert score.histogram["exact"] == exactly
        assert score.counts["raised"] == 0 and score.counts["unconverged"] == int(np.count_nonzero(outcome == "unconverged"))
        assert summary(result, "cmd")["candidates"][name]["correctly_rounded"] == exactly
        # percentiles from the log bins: at least the exact one, at most 2**(1/64) above it
        for got_q, q in ((score.median_ulp, 50), (score.p99_ulp, 99)):
            exact_q = float(np.percentile(measured, q, method="higher"))
            assert exact_q <= got_q <= max(exact_q * 2 ** (1 / 64), 0.0), q
        # the worst case shown is the first with the max ULP error, and replays with that error
        top = max((w for w in score.worst if w.ulp is not None), key=lambda w: w.ulp, default=None)
        if score.max_ulp > 0.5:
            assert top is not None and top.ulp == score.max_ulp


def test_chunks_are_merged_in_plan_order_whatever_order_they_finish_in():
    class LastFirst(Executor):
        """Holds the four chunks submitted, then finishes them last first, one at a time: the next one only
        after the sweep has journalled the last, so each wait sees exactly one finished chunk."""

        def __init__(self) -> None:
            self.calls, self.journalled = [], threading.Semaphore(0)

        def submit(self, fn, /, *args, **kwargs):
            future: Future = Future()
            self.calls.append((future, fn, args))
            if len(self.calls) == 4:
                threading.Thread(target=self._finish, daemon=True).start()
            return future

        def _finish(self) -> None:
            for future, fn, args in reversed(self.calls):
                future.set_result(fn(*args))
                self.journalled.acquire(timeout=60)

    plan = plan_sweep("sigmoid_ce", "float16", "hard", ["naive", "numpy_stable"], (0x4800, 0x5000), chunk_cases=1 << 10)
    assert len(plan) == 4
    finished, executor = [], LastFirst()

    def journal(result):
        finished.append(result)
        executor.journalled.release()

    reversed_run = run_sweep(plan, executor, journal=journal, in_flight=4)
    assert [r.start for r in finished] == [c.start for c in reversed(plan)]  # they did finish last first
    straight = run_sweep(plan, InOrder())
    for a, b in zip(reversed_run.scores, straight.scores):
        assert a.to_json() == b.to_json()
    assert reversed_run.buckets == straight.buckets


def test_a_resumed_sweep_runs_only_the_missing_chunks_and_gives_the_same_figures():
    plan = plan_sweep("sigmoid_ce", "float16", "hard", ["numpy_stable"], (0x3000, 0x3800), chunk_cases=1 << 10)
    whole = run_sweep(plan, InOrder())
    first = {(r.start, r.stop): r for r in (sweep_chunk(c) for c in plan[:2])}
    executor = InOrder()
    resumed = run_sweep(plan, executor, done=first)
    assert [c.start for c in executor.calls] == [c.start for c in plan[2:]]
    assert [s.to_json() for s in resumed.scores] == [s.to_json() for s in whole.scores]


def test_the_buckets_hold_min_mean_and_max_of_their_patterns():
    plan, result = sweep("sigmoid_ce", "float16", "hard", ["numpy_stable"], (0x4000, 0x4400))
    b = result.buckets["numpy_stable"]
    x, z, _p = chunk_inputs(plan[0])
    truth = oracles.evaluate("sigmoid_ce", logits=x, labels=z, dtype="float16")
    _o, ulp, _b = oracles.measure(get_candidate("sigmoid_ce", "numpy_stable").load()(x, z), truth, "float16")
    width = plan[0].bucket_width
    assert width == 1 and len(b["x"]) == 0x400  # 1024 buckets of one pattern each: both labels of that pattern
    for k in (0, 17, 0x3FF):
        both = ulp[[k, 0x400 + k]]
        assert b["max"][k] == both.max() and b["min"][k] == both.min() and b["mean"][k] == pytest.approx(both.mean())


# ------------------------------------------------------------------------------------------------- bad input


def main(argv: list[str]) -> int:
    """The command line's exit code: argparse's own errors exit (2) from inside ``main``."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize("text,words", [("0x10:0x5", "is empty"), ("0x10", "is not START:STOP"),
                                        ("0:0x1_0000_0001", "outside the float32 patterns"), ("0x:5", "is not a decimal")])
def test_bad_bit_ranges_are_one_line_errors(text, words):
    with pytest.raises(ValueError, match=words):
        parse_bits(text, "float32")
    assert parse_bits("0x10:32", "float32") == (16, 32)


@pytest.mark.parametrize("argv,words", [
    (["sigmoid_ce", "--candidate", "naive", "--bits", "0x10:0x5"], "--bits '0x10:0x5' is empty"),
    (["sigmoid_ce", "--candidate", "nope"], "candidate='nope' is not one of: naive"),
    (["softmax_ce", "--candidate", "sklearn"], "candidate='sklearn' is not one of"),
    (["binary_ce", "--candidate", "naive,sklearn", "--dtype", "float16"], "'sklearn' returns a mean over the batch"),
    (["sigmoid_ce", "--candidate", "naive", "--dtype", "float64"], "dtype='float64' is not one of: float16, bfloat16, float32"),
    (["softmax_ce", "--candidate", "naive", "--labels", "all", "--dtype", "float16"], "pass --labels hard"),
    (["sigmoid_ce", "--candidate", "naive", "--labels", "all"], "2**62 cases"),
    (["sigmoid_ce", "--candidate", "naive", "--workers", "0"], "--workers 0 is not a number of processes"),
    (["focal", "--candidate", "naive"], "focal has parameters"),
    (["sigmoid_ce", "--candidate", "naive", "--dtype", "float16", "--resume"], "nothing to resume"),
])
def test_bad_sweep_input_is_one_line_and_exit_2(tmp_path, capsys, argv, words):
    code = main(["sweep", *argv, "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and words in err, err


def test_an_unknown_family_is_a_one_line_error(tmp_path, capsys):
    code = main(["sweep", "hinge", "--candidate", "naive", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "family='hinge' is not one of: sigmoid_ce" in err


def test_the_chunk_is_plain_data():
    chunk = plan_sweep("sigmoid_ce", "float16", "hard", ["naive"], None)[0]
    assert isinstance(chunk, Chunk) and not hasattr(chunk, "__dict__")
    result = sweep_chunk(chunk)
    import json

    again = type(result).from_json(json.loads(json.dumps(result.to_json(), allow_nan=False)))
    assert again.to_json() == result.to_json()
    assert math.isfinite(result.seconds) and result.cases == 2 * 0x10000


def test_a_candidate_that_rejects_the_dtype_is_unsupported_and_one_that_fails_is_a_finding(monkeypatch):
    _plan, result = sweep("sigmoid_ce", "float32", "hard", ["numpy_stable_upcast", "numpy_stable"], (0x3F800000, 0x3F800100))
    upcast, stable = result.scores
    assert upcast.unsupported and upcast.examples == 0 and not stable.unsupported
    assert summary(result, "cmd")["candidates"]["numpy_stable_upcast"] == {"unsupported": True}

    from harness.candidates import Candidate

    monkeypatch.setattr(Candidate, "load", lambda self: (lambda x, z: x[:1]))  # the wrong shape, every call
    plan, result = sweep("sigmoid_ce", "float16", "hard", ["naive"], (0x3C00, 0x3E00), chunk_cases=1 << 9)
    (score,) = result.scores
    assert len(plan) == 2 and score.counts["raised"] == 2  # one failed call per chunk
    assert score.findings[0].kind == "wrong_shape" and "returned shape (1,)" in score.failure
    assert score.max_ulp is None and result.buckets == {}


def test_the_summary_says_where_the_chunks_ran_and_when_they_ran_on_different_numpy_targets():
    from dataclasses import replace

    from harness.exhaustive import merge_results
    from harness.provenance import numpy_target
    from harness.reports.sweep_report import summary_markdown

    plan = plan_sweep("sigmoid_ce", "float16", "hard", ["numpy_stable"], (0x3C00, 0x3E00), chunk_cases=1 << 9)
    results = [sweep_chunk(c) for c in plan]
    assert len(results) == 2 and {r.machine for r in results} == {numpy_target()}
    facts = summary(merge_results(plan, results), "cmd")
    assert facts["machines"] == [numpy_target()] and f"Ran on {numpy_target()}" in summary_markdown(facts)
    # a cluster whose workers differ: both named, and the summary says the figures mix them
    other = "numpy 2.4.6, SIMD X86_V2 X86_V3 X86_V4"
    mixed = summary(merge_results(plan, [results[0], replace(results[1], machine=other)]), "cmd")
    assert mixed["machines"] == [numpy_target(), other]
    assert "Chunks ran on 2 different numpy builds or SIMD targets, so the figures mix them" in summary_markdown(mixed)
    # the machine survives a chunk's journal record
    assert type(results[0]).from_json(results[0].to_json()).machine == numpy_target()


def test_the_summary_keeps_the_library_versions_and_the_commit_it_ran_with():
    from harness.reports.sweep_report import summary_markdown

    _plan, result = sweep("sigmoid_ce", "float16", "hard", ["numpy_stable"], (0x3C00, 0x3C40))
    origin = {"versions": {"lossfuzz": "0.1.0", "numpy": "2.4.6", "keras": "3.15.1", "torch": None},
              "git_commit": "0123456789abcdef0123456789abcdef01234567", "machine": {}}
    facts = summary(result, "cmd", origin)
    # installed libraries only; lossfuzz's own version says less than its commit
    assert facts["versions"] == {"numpy": "2.4.6", "keras": "3.15.1"}
    assert facts["git_commit"] == origin["git_commit"]
    # numpy has the "Ran on" line with its SIMD targets; the others and the commit one line of their own
    assert "\nWith keras 3.15.1; lossfuzz at `0123456`.\n" in summary_markdown(facts)
    dirty = summary(result, "cmd", {**origin, "git_dirty": True})
    assert "lossfuzz at `0123456` with uncommitted changes." in summary_markdown(dirty)
    bare = summary(result, "cmd")
    assert "versions" not in bare and "git_commit" not in bare and "\nWith " not in summary_markdown(bare)


def test_the_html_report_of_a_sweep_draws_the_error_against_the_bit_pattern():
    from harness._records import RunResult
    from harness.reports import render
    from harness.reports.sweep_report import summary_markdown

    _plan, result = sweep("sigmoid_ce", "float16", "hard", ["naive", "accurate"], (0xC000, 0xD000))
    run = RunResult(settings={}, provenance={}, wall_seconds=1.0, scores=tuple(result.scores), sweep=result.to_json())
    page = render(run, "html")
    assert 'id="bit-patterns"' in page and "0xc000 to 0xd000" in page
    assert page.index('id="bit-patterns"') < page.index("data:image/png;base64,", page.index('id="bit-patterns"'))
    again = RunResult.from_json(__import__("json").loads(render(run, "json")))
    assert again.sweep == run.sweep  # the block survives report.json
    plain = RunResult(settings={}, provenance={}, wall_seconds=1.0, scores=tuple(result.scores))
    assert 'id="bit-patterns"' not in render(plain, "html")
    text = summary_markdown(summary(result, "lossfuzz sweep ..."))
    assert "| accurate | 0.5 |" in text and "100.0000%" in text
    naive = summary(result, "")["candidates"]["naive"]
    assert naive["non_finite_on_finite_inputs"] > 0 and f"| {naive['non_finite_on_finite_inputs']:,} / 0 |" in text
