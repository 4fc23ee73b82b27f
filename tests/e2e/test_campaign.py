"""The campaign end to end on numpy candidates: determinism, corpus replay, scores and reproducers."""

import json
import subprocess
import sys

import numpy as np
import pytest

from harness.campaign import Settings, run_campaign
from harness.records import NON_FINITE_MISTAKES
from harness.cli import main
from harness.corpus import corpus_from_json, corpus_to_json
from harness.strategies import catalogue

SMALL = Settings(
    families=("sigmoid_ce", "sparse_softmax_ce"),
    candidates=("naive", "numpy_stable", "keras_clipped"),
    dtypes=("float32",),
    examples=25,
    speed_elements=2000,
)


def accuracy(result):
    data = result.to_json()
    rows = data["results"]
    for row in rows:
        row.pop("speed")
    return rows, data["curves"]


def test_two_runs_with_the_same_seed_give_identical_accuracy_figures():
    first, _ = run_campaign(SMALL)
    second, _ = run_campaign(SMALL)
    assert accuracy(first) == accuracy(second)
    assert all(s.examples > 0 for s in first.scores)


def test_a_different_seed_explores_different_examples():
    a, _ = run_campaign(SMALL)
    b, _ = run_campaign(Settings(**{**SMALL.to_json(), "seed": 1}))
    assert accuracy(a) != accuracy(b)


def test_scores_carry_worst_cases_with_hex_inputs_and_a_shrunk_reproducer():
    result, corpus = run_campaign(SMALL)
    naive = result.score("sigmoid_ce", "naive", "float32")
    # exp(-x) overflows: inf where z = 1 (-log(0)), nan where z < 1 (0 * -log(0) and inf - inf); both occur
    assert naive.counts["inf"] > 0 and naive.counts["nan"] > 0
    measured = sum(naive.histogram.values())
    mistakes = sum(naive.counts[k] for k in NON_FINITE_MISTAKES)
    assert measured + mistakes == naive.examples  # every scored example is either measured or a named mistake
    assert len(naive.worst) == 10
    assert all(w.replay.startswith("lossfuzz exact sigmoid_ce --logits=") for w in naive.worst)
    assert naive.reproducer is not None and naive.reproducer.outcome in ("nan", "inf")
    stable = result.score("sigmoid_ce", "numpy_stable", "float32")
    assert stable.max_ulp > 1000  # soft labels near 1 with large logits
    assert stable.speed.elements == 2000
    assert stable.speed.ratio == stable.speed.candidate_ns_per_element / stable.speed.copy_ns_per_element
    assert ("sigmoid_ce", "float32") in corpus and corpus[("sigmoid_ce", "float32")]


def test_the_corpus_is_replayed_first_and_round_trips_through_json():
    _, corpus = run_campaign(SMALL)
    examples = corpus[("sparse_softmax_ce", "float32")]
    family, dtype, back = corpus_from_json(corpus_to_json("sparse_softmax_ce", "float32", examples), "x.json")
    assert (family, dtype) == ("sparse_softmax_ce", "float32")
    assert [e.key for e in back] == [e.key for e in examples]
    settings = Settings(**{**SMALL.to_json(), "families": ("sparse_softmax_ce",)})
    with_corpus, _ = run_campaign(settings, {("sparse_softmax_ce", "float32"): back})
    without, _ = run_campaign(settings)
    s_with = with_corpus.score("sparse_softmax_ce", "naive", "float32")
    s_without = without.score("sparse_softmax_ce", "naive", "float32")
    assert s_with.examples == s_without.examples + len(back)


def test_replay_commands_reproduce_the_reported_value(capsys):
    result, _ = run_campaign(SMALL)
    worst = result.score("sigmoid_ce", "numpy_stable", "float32").worst[0]
    argv = __import__("shlex").split(worst.replay)[1:]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert worst.got in out


def test_a_corrupt_corpus_file_is_named_in_a_one_line_error():
    try:
        corpus_from_json('{"lossfuzz_corpus": 1, "family": "sigmoid_ce", "dty', "reports/corpus/x.json")
    except ValueError as exc:
        assert "reports/corpus/x.json is not valid JSON" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("no error")


def test_the_catalogue_covers_the_boundaries_of_the_dtype():
    values = {float(e.inputs) for e in catalogue("sigmoid_ce", "float32")}
    f32 = np.finfo(np.float32)
    for v in (0.0, float(f32.max), -float(f32.max), float(f32.smallest_subnormal), float(f32.tiny), -810.0):
        assert v in values
    assert any(np.isinf(v) for v in values) and any(np.isnan(v) for v in values)


def test_lossfuzz_run_writes_the_three_reports_and_the_corpus(tmp_path):
    code = main(
        ["run", "--families", "sigmoid_ce", "--candidates", "naive,numpy_stable", "--dtypes", "float32",
         "--examples", "10", "--speed-elements", "1000", "--out", str(tmp_path), "--no-progress"]
    )
    assert code == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert {"schema_version", "provenance", "results"} <= set(data)
    row = data["results"][0]
    for key in ("family", "candidate", "dtype", "examples", "max_ulp", "mean_ulp", "median_ulp", "p99_ulp",
                "nan", "inf", "finite_where_infinite", "unsupported", "worst"):
        assert key in row
    rows = {(r["candidate"], r["quantity"]): r for r in data["results"]}
    assert len(rows) == len(data["results"]) == 4  # a loss row and a gradient row per candidate
    stable, naive = rows["numpy_stable", "loss"], rows["naive", "loss"]
    assert stable["max_ulp"] > 1000  # soft labels near 1 with large logits
    assert naive["nan"] > 0 and naive["inf"] > 0
    # numpy_stable's non-finite mistakes are all on ±inf/nan inputs (inf - inf), none on finite ones
    stable_mistakes = sum(stable["counts"][k] for k in NON_FINITE_MISTAKES)
    assert stable_mistakes == stable["counts"]["on_nonfinite_inputs"] > 0
    assert sum(naive["counts"][k] for k in NON_FINITE_MISTAKES) > naive["counts"]["on_nonfinite_inputs"]
    assert "| naive | float32 |" in (tmp_path / "report.md").read_text()
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    assert (tmp_path / "corpus" / "sigmoid_ce.float32.json").exists()


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage line, then the error
        main(["run", "--dtypes", "float24", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "dtype='float24' is not one of: float16, bfloat16, float32, float64" in capsys.readouterr().err
    code = main(["exact", "sigmoid_ce", "--logits", "1", "--labels", "1.5"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "labels[0] = 1.5 is outside [0, 1]" in err
    code = main(["exact", "hinge", "--logits", "1", "--labels", "1"])
    assert code == 2 and "family='hinge' is not one of" in capsys.readouterr().err


def test_lossfuzz_help_does_not_import_tensorflow():
    code = "import sys; from harness.cli import main\ntry:\n main(['--help'])\nexcept SystemExit: pass\nprint('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False False")
