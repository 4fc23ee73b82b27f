"""A family is a plugin: what each family declares (domains, regimes, parameters, candidates), the ``focal``
family that proves it (its oracle, its parameter carried through examples, corpus, scoring and replay
commands), and the family lists of help and error texts taken from the registry."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings

import oracles
from harness.candidates import candidates, get_candidate
from harness.cli import main
from harness.corpus import corpus_from_json, corpus_to_json, example_from_json
from harness.scoring import TruthCache, observe, replay_command, worst_cases
from harness.speed import speed_inputs
from harness.strategies import Example, catalogue, examples
from harness.sweep import sweep, sweep_points
from oracles._family import CONFIDENT, HARD, SOFT, SPECIAL, TINY

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------- regimes


def _regime(family: str, x, z, dtype: str = "float32", **params) -> str:
    fam = oracles.get_family(family)
    fmt = oracles.resolve_format(dtype).numpy_dtype
    xs = np.asarray(x, dtype=np.float64).astype(fmt)
    zs = np.asarray(z) if fam.label_kind == "index" else np.asarray(z, dtype=np.float64).astype(fmt)
    exact = oracles.exact(family, **{fam.input_name: xs[None]}, labels=zs[None], dtype=dtype, params=params or None)[0]
    return fam.regime(xs, zs, dtype, exact)


@pytest.mark.parametrize("family, x, z, expected", [
    ("sigmoid_ce", np.inf, 1.0, SPECIAL),
    ("sigmoid_ce", 1.0, np.nan, SPECIAL),
    ("sigmoid_ce", 100.0, 1.0, TINY),  # exp(-100) = 3.7e-44: below float32's smallest normal
    ("sigmoid_ce", 20.0, 1.0, HARD),  # 2.1e-9: tiny but normal
    ("sigmoid_ce", -3.0, 0.25, SOFT),
    ("binary_ce", np.nan, 0.0, SPECIAL),
    ("binary_ce", 1.0, 1.0, TINY),  # exactly 0
    ("binary_ce", 0.5, 0.0, HARD),
    ("binary_ce", 0.5, 0.5, SOFT),
    ("focal", -np.inf, 0.5, SPECIAL),
    ("focal", 30.0, 1.0, TINY),  # sigmoid(-30)**2 * 9.4e-14 = 7.4e-40
    ("focal", 20.0, 1.0, HARD),  # 8.5e-27
    ("focal", 2.0, 0.75, SOFT),
    ("softmax_ce", [1.0, np.inf], [1.0, 0.0], SPECIAL),
    ("softmax_ce", [120.0, 0.0], [1.0, 0.0], TINY),  # exp(-120) = 7.7e-53
    ("softmax_ce", [20.0, 0.0], [1.0, 0.0], CONFIDENT),  # 2.1e-9 < 2**-24: softmax[0] rounds to 1
    ("softmax_ce", [10.0, 0.0], [1.0, 0.0], HARD),  # 4.5e-5
    ("softmax_ce", [1.0, 0.0], [0.5, 0.5], SOFT),
    ("sparse_softmax_ce", [20.0, 0.0, -3.0], 0, CONFIDENT),
    ("sparse_softmax_ce", [1.0, 0.0, -3.0], 1, HARD),
])
def test_the_regime_classifier_puts_each_example_in_its_documented_regime(family, x, z, expected):
    assert _regime(family, x, z) == expected


def test_confident_correct_rows_are_a_float32_notion_moving_with_the_format():
    # 2.1e-9 is below 2**-24 (float32's half ulp of 1) but above float64's 2**-53: confident only in float32
    assert _regime("softmax_ce", [20.0, 0.0], [1.0, 0.0], "float32") == CONFIDENT
    assert _regime("softmax_ce", [20.0, 0.0], [1.0, 0.0], "float64") == HARD
    assert _regime("sigmoid_ce", 100.0, 1.0, "float64") == HARD  # 3.7e-44 is normal in float64


@pytest.mark.parametrize("family", sorted(oracles.FAMILIES))
def test_every_catalogue_example_falls_in_exactly_one_declared_regime_consistent_with_its_exact_loss(family):
    fam = oracles.get_family(family)
    declared = [r.name for r in fam.regimes]
    assert len(set(declared)) == len(declared) and {SPECIAL, TINY, HARD} <= set(declared)
    assert (SOFT in declared) == (fam.label_kind == "soft")
    assert (CONFIDENT in declared) == fam.row_wise
    assert all(r.doc and "\n" not in r.doc for r in fam.regimes)
    cat = [e for e in catalogue(family, "float32") if not e.params][::7]
    cache = TruthCache(family, "float32")
    seen = set()
    for e in cat:
        truth = cache.truth([e], "none")
        exact = truth.exact_value(0)
        regime = fam.regime(e.inputs, e.labels, "float32", exact)
        assert regime in declared, (e, regime)
        seen.add(regime)
        finite = np.isfinite(e.inputs.astype(np.float64)).all()
        if regime == TINY:
            assert finite and float(exact) < 2.0**-126
        elif regime != SPECIAL:
            assert finite and float(exact) >= 2.0**-126
    assert seen >= {TINY, HARD} | ({SPECIAL} if fam.input_domain == "real" else set()), seen  # no nan probabilities


# ---------------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("params, message", [
    ({"gama": 1}, "focal: parameter 'gama' is not one of: gamma"),
    ({"gamma": -0.5}, "focal: gamma=-0.5 is not valid; pass gamma as a finite number >= 0"),
    ({"gamma": float("nan")}, "focal: gamma=nan is not valid"),
    ({"gamma": float("inf")}, "focal: gamma=inf is not valid"),
    ({"gamma": True}, "focal: gamma=True is not valid"),
    ({"gamma": "two"}, "focal: gamma='two' is not valid"),
])
def test_a_bad_parameter_is_a_one_line_error_naming_it(params, message):
    with pytest.raises(ValueError) as info:
        oracles.loss("focal", logits=np.float32([1.0]), labels=np.float32([1.0]), dtype="float32", params=params)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^sigmoid_ce: parameter 'gamma' is not one of: none"):
        oracles.loss("sigmoid_ce", logits=np.float32([1.0]), labels=np.float32([1.0]), dtype="float32", params={"gamma": 2})


def test_gamma_zero_is_sigmoid_ce_bit_for_bit_and_gamma_is_carried_into_the_record():
    cat = [e for e in catalogue("sigmoid_ce", "float32")][::5]
    x = np.stack([e.inputs for e in cat])
    z = np.stack([e.labels for e in cat])
    plain = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32")
    zero = oracles.loss("focal", logits=x, labels=z, dtype="float32", params={"gamma": 0})
    assert plain.tobytes() == zero.tobytes()
    two = oracles.evaluate("focal", logits=x, labels=z, dtype="float32")
    half = oracles.evaluate("focal", logits=x, labels=z, dtype="float32", params={"gamma": 0.5})
    assert two.params == {"gamma": 2.0} and half.params == {"gamma": 0.5}
    finite = np.isfinite(x.astype(np.float64)) & (plain > 0) & np.isfinite(plain)
    assert np.all(two.rounded[finite] <= half.rounded[finite]) and np.any(two.rounded[finite] < half.rounded[finite])


def test_exact_value_re_evaluates_with_the_records_parameters():
    truth = oracles.evaluate("focal", logits=np.float64([0.0]), labels=np.float64([1.0]), dtype="float64", params={"gamma": 3})
    with mpmath.workprec(200):
        want = mpmath.log(2) / 8  # (1 - 1/2)**3 * log 2
        assert abs(truth.exact_value(0) - want) < want * mpmath.mpf(2) ** -66


# ------------------------------------------------------------------------------------------------- focal


def test_focal_exact_values_limits_and_nan():
    with mpmath.workprec(200):
        exact = oracles.exact("focal", logits=np.float64([0.0, 0.0]), labels=np.float64([1.0, 0.25]), dtype="float64")
        assert abs(exact[0] - mpmath.log(2) / 4) < mpmath.mpf(2) ** -70  # 2**-2 * log 2, whatever z
        assert abs(exact[1] - mpmath.log(2) / 4) < mpmath.mpf(2) ** -70
    x = np.float32([np.inf, np.inf, -np.inf, -np.inf, np.nan, 1.0])
    z = np.float32([1.0, 0.5, 0.0, 1e-3, 0.5, np.nan])
    loss = oracles.loss("focal", logits=x, labels=z, dtype="float32")
    assert loss[:4].tolist() == [0.0, np.inf, 0.0, np.inf] and np.isnan(loss[4:]).all()
    grad = oracles.gradient("focal", logits=x, labels=z, dtype="float32")
    assert grad[:4].tolist() == [0.0, 0.5, 0.0, np.float32(-1e-3)] and np.isnan(grad[4:]).all()


def test_focal_is_symmetric_under_x_to_minus_x_and_z_to_one_minus_z():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(200) * 30, [-1e30, 1e30, -70.5, 70.5]])
    z = np.concatenate([rng.integers(0, 17, 200) / 16.0, [0.25, 0.75, 0.5, 0.5]])  # 1 - z exact
    for params in ({}, {"gamma": 0.5}):
        a = oracles.loss("focal", logits=x, labels=z, dtype="float64", params=params)
        b = oracles.loss("focal", logits=-x, labels=1 - z, dtype="float64", params=params)
        assert a.tobytes() == b.tobytes()
        ga = oracles.gradient("focal", logits=x, labels=z, dtype="float64", params=params)
        gb = oracles.gradient("focal", logits=-x, labels=1 - z, dtype="float64", params=params)
        assert ga.tobytes() == (-gb).tobytes()


@pytest.mark.parametrize("x, z, gamma", [(-1.5, 1.0, 2.0), (0.75, 0.3, 0.5), (3.0, 0.9, 5.0), (-0.25, 0.0, 1.0)])
def test_focal_gradient_is_the_derivative_of_the_exact_loss(x, z, gamma):
    with mpmath.workprec(300):
        g, zz = mpmath.mpf(gamma), mpmath.mpf(z)

        def loss(t):
            p = 1 / (1 + mpmath.exp(-t))
            return -(zz * (1 - p) ** g * mpmath.log(p) + (1 - zz) * p**g * mpmath.log(1 - p))

        want = mpmath.diff(loss, mpmath.mpf(x))
        got = oracles.exact("focal", logits=np.float64([x]), labels=np.float64([z]), dtype="float64", what="gradient",
                            params={"gamma": gamma})[0]
        assert abs(got - want) <= abs(want) * mpmath.mpf(2) ** -60


def test_focal_settles_losses_a_hair_below_a_power_of_two_at_huge_logits():
    # L(-2**127, 1) = 2**127 * (1 - ~2*exp(-2**127)): a direct enclosure straddles 2**127 forever
    truth = oracles.evaluate("focal", logits=np.float32([-2.0**127, 2.0**127, -1e4]), labels=np.float32([1.0, 0.0, 0.75]),
                             dtype="float32", what="loss")
    assert truth.unconverged == 0 and truth.rounded[:2].tolist() == [2.0**127, 2.0**127]
    assert truth.status[:2].tolist() == ["converged", "converged"]  # decided, not closed forms
    grad = oracles.evaluate("focal", logits=np.float32([-2.0**127, 1e4]), labels=np.float32([0.5, 0.5]), dtype="float32",
                            what="gradient")
    assert grad.unconverged == 0 and grad.rounded.tolist() == [-0.5, 0.5]
    assert grad.status.tolist() == ["converged", "converged"]


def test_focal_gradient_at_the_symmetric_point_is_exactly_zero():
    truth = oracles.evaluate("focal", logits=np.float32([0.0]), labels=np.float32([0.5]), dtype="float32", what="gradient")
    assert truth.rounded[0] == 0.0 and truth.status[0] == "exact"


# ----------------------------------------------------------------------------------- candidates with params


def test_candidates_of_a_family_with_parameters_receive_them_and_others_refuse_them():
    x, z = np.float32([-2.0, 0.5, 3.0]), np.float32([1.0, 0.0, 1.0])
    stable = get_candidate("focal", "numpy_stable")
    assert stable.takes_params and not get_candidate("sigmoid_ce", "numpy_stable").takes_params
    default, two, half = stable(x, z), stable(x, z, gamma=2.0), stable(x, z, gamma=0.5)
    assert default.tobytes() == two.tobytes() and not np.array_equal(two, half)
    exact_half = oracles.exact("focal", logits=x, labels=z, dtype="float32", params={"gamma": 0.5})
    assert np.max(oracles.ulp_error(half, exact_half, "float32")) <= 2
    with pytest.raises(ValueError, match="gamma=-1 is not valid"):
        stable(x, z, gamma=-1)
    with pytest.raises(ValueError, match="takes no parameters; got gamma"):
        get_candidate("sigmoid_ce", "numpy_stable")(x, z, gamma=2.0)
    assert {c.name for c in candidates("focal")} >= {"naive", "numpy_stable", "keras_from_logits", "optax"}


def test_scoring_runs_examples_at_other_parameters_only_on_candidates_that_take_them():
    base = Example(np.float32(2.0), np.float32(1.0))
    other = Example(np.float32(2.0), np.float32(1.0), (("gamma", 0.5),))
    cache = TruthCache("focal", "float32")
    obs = observe(get_candidate("focal", "numpy_stable"), [base, other], cache)
    assert len(obs.groups) == 2
    assert obs.truths[0].params == {"gamma": 2.0} and obs.truths[1].params == {"gamma": 0.5}
    assert obs.got[0][0] != obs.got[1][0]
    calls = []

    def plain(x, z):  # a user's function: no parameters
        calls.append(len(x))
        return get_candidate("focal", "numpy_stable")(x, z)

    obs = observe(plain, [base, other], cache)
    assert len(obs.groups) == 1 and calls == [1]


def test_worst_cases_replay_with_the_parameter_and_the_replay_prints_that_gammas_values(capsys):
    x = Example(np.float32(40.0), np.float32(0.0), (("gamma", 0.5),))  # naive: 1 - p = 0, log 0: inf
    obs = observe(get_candidate("focal", "naive"), [x], TruthCache("focal", "float32"))
    (case,) = worst_cases(obs, "focal", "naive", "float32", "none")
    assert "--param gamma=0.5" in case.replay and case.got == "inf"
    words = shlex.split(case.replay)
    assert main(words[1:]) == 0
    printed = capsys.readouterr().out
    assert "gamma=0.5" in printed.splitlines()[0]
    exact = oracles.format_exact(oracles.exact("focal", logits=np.float32([40.0]), labels=np.float32([0.0]),
                                               dtype="float32", params={"gamma": 0.5})[0])
    assert f"exact     {exact}" in printed and "naive     inf" in printed
    assert replay_command("sigmoid_ce", "naive", "float32", np.float32(1.0), np.float32(1.0)).count("--param") == 0
    assert "--param gamma=2 " in replay_command("focal", "naive", "float32", np.float32(1.0), np.float32(1.0))


def test_exact_rejects_a_bad_param_with_a_usage_error(capsys):
    assert main(["exact", "focal", "--logits", "1", "--labels", "1", "--param", "gamma=-2"]) == 2
    assert "focal: gamma='-2' is not valid; pass gamma as a finite number >= 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- the corpus


def test_the_corpus_keeps_parameters_and_old_corpora_without_them_still_load():
    a = Example(np.float32(3.0), np.float32(0.5))
    b = Example(np.float32(3.0), np.float32(0.5), (("gamma", 0.5),))
    family, dtype, back = corpus_from_json(corpus_to_json("focal", "float32", [a, b]), "mem")
    assert (family, dtype) == ("focal", "float32")
    assert [e.params for e in back] == [(), (("gamma", 0.5),)]
    assert [e.key for e in back] == [a.key, b.key]
    assert "params" not in json.loads(corpus_to_json("focal", "float32", [a]))["examples"][0]
    old = {"inputs": ["0x1p+0"], "labels": ["0x1p-1"], "shape": []}  # the format before parameters existed
    assert example_from_json(old, "sigmoid_ce", "float32").params == ()
    with pytest.raises(ValueError, match="gamma=-1"):
        example_from_json({**old, "params": {"gamma": -1}}, "focal", "float32")


# ------------------------------------------------------------------------------- strategies ask the family


def test_strategies_sweep_and_speed_follow_the_declared_domains():
    assert sweep_points("binary_ce", "float32")[0] == "probability"
    assert sweep_points("focal", "float32")[0] == "logit"
    p, _ = speed_inputs("binary_ce", "float32", 1000)
    x, _ = speed_inputs("focal", "float32", 1000)
    assert 0 <= p.min() and p.max() <= 1 and x.min() < 0  # probabilities vs logits
    cat = catalogue("focal", "float32")
    defaults = [e for e in cat if not e.params]
    assert len(cat) == 2 * len(defaults) and {e.params for e in cat} == {(), (("gamma", 0.5),)}
    assert len(catalogue("sigmoid_ce", "float32")) == len(defaults)  # the same boundary inputs
    curves = sweep("focal", "float32", [get_candidate("focal", "numpy_stable")])
    assert [c.label for c in curves] == ["z = 1", "z = 0.9999"]
    assert [c.label for c in sweep("sparse_softmax_ce", "float32", [])] == ["class 0 of [x, 0]"]


@settings(max_examples=40, deadline=None)
@given(examples("binary_ce", "float32"), examples("focal", "float16", allow_infinity=True))
def test_drawn_examples_take_their_inputs_from_the_declared_domain(probability, logit):
    assert 0 <= float(probability.inputs) <= 1 and probability.params == ()
    assert logit.inputs.dtype == np.float16 and 0 <= float(logit.labels) <= 1


# --------------------------------------------------------------------------------- lists from the registry


def test_help_and_error_texts_list_the_registered_families(capsys):
    with pytest.raises(SystemExit):
        main(["exact", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"one of: {', '.join(oracles.FAMILIES)}" in text
    assert "focal" in text.split("--logits LOGITS")[-1].split("--probs")[0]
    with pytest.raises(ValueError, match=rf"^family='hinge' is not one of: {', '.join(oracles.FAMILIES)}$"):
        oracles.get_family("hinge")
    assert oracles.family_names(input_name="probs") == "binary_ce"
    assert "focal" not in oracles.default_families() and "focal" in oracles.FAMILIES


def test_no_hard_coded_family_list_is_left_in_harness():
    names = "|".join(oracles.FAMILIES)
    listing = re.compile(rf"\b({names})\b\s*(,|or)\s*\b({names})\b")
    offenders = [f"{path.relative_to(ROOT)}:{i}" for path in sorted((ROOT / "harness").rglob("*.py"))
                 for i, line in enumerate(path.read_text().splitlines(), 1) if listing.search(line)]
    assert offenders == []
