"""The candidate registry: names, lazy imports, dtype handling, agreement with the oracles on benign inputs,
and the published defects of the naive / clipped / fused formulas reproduced with real values."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import ml_dtypes
import mpmath
import numpy as np
import pytest

import oracles
from harness.candidates import CANDIDATE_NAMES, Candidate, Unsupported, candidates, get_candidate

ROOT = Path(__file__).resolve().parents[2]
DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}
# Fractional ULP error against the exact value (oracles.ulp_error), never np.spacing of a rounded value. On the
# benign points below every candidate is within 5 ULP (naive's log(sigmoid) loses up to ~4.1 in float64, Keras'
# clipped form ~3.9); the stable formulas are within 2 (measured: at most 1.24, tf_xla/numpy_stable sparse).
ULP_TOLERANCE = 5
STABLE = ("numpy_stable", "tf", "tf_xla", "keras_from_logits")
STABLE_ULP_TOLERANCE = 2
# Captured before any candidate is loaded: whether Keras' home was chosen by the caller rather than by us.

# Benign points, each family's own (Family.benign): |logit| <= 2, probabilities in [0.1, 0.9], losses of
# order 0.001 .. 3 (no cancellation).
FAMILY = {name: oracles.get_family(name) for name in oracles.FAMILIES}
BENIGN = {
    name: (np.array(fam.benign[0]), np.array(fam.benign[1], dtype=np.int64 if fam.label_kind == "index" else np.float64))
    for name, fam in FAMILY.items()
}
# What every family offers: the definition as written and a stable numpy formula (the baselines of a report).
REQUIRED_OF_EVERY_FAMILY = {"naive", "numpy_stable"}
# ... and each family whose candidates the registry declares itself (the cross-entropy families) also these.
REQUIRED_OF_REGISTRY_FAMILIES = {"naive", "keras_clipped", "keras", "numpy_stable", "tf_v1_losses", "torch"}

# Defects of real libraries that the generic checks below would trip over; each has its own test further down.
FLOAT64_MEAN_IN_FLOAT32 = {(f, "tf_v1_losses") for f in ("sigmoid_ce", "softmax_ce", "sparse_softmax_ce")}
ALWAYS_FLOAT32 = {("binary_ce", "tf_v1_losses")}
NO_BFLOAT16 = {("binary_ce", "sklearn", "bfloat16")}  # sklearn's check_array rejects ml_dtypes: its own test below
HARD_LABELS = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # for the candidates that take hard labels only

# The marker of each framework a candidate needs (the test command installs them all: these always run).
MARKS = {"tensorflow": pytest.mark.tf, "keras": pytest.mark.tf, "torch": pytest.mark.torch, "jax": pytest.mark.jax,
         "optax": pytest.mark.jax, "sklearn": pytest.mark.sklearn}


def _marks(candidate: Candidate) -> list:
    return list({id(MARKS[m]): MARKS[m] for m in candidate.needs}.values())


def _cases(dtypes, exclude=frozenset()):
    return [
        pytest.param(c, d, id=f"{c.family}-{c.name}-{d}", marks=_marks(c))
        for c in candidates()
        for d in dtypes
        if d in c.dtypes and (c.family, c.name) not in exclude and (c.family, c.name, d) not in exclude
    ]


def _benign(family: str, dtype: str, labels_set: str = "all") -> tuple[np.ndarray, np.ndarray]:
    inputs, labels = BENIGN[family]
    fam = FAMILY[family]
    if labels_set == "hard" and fam.label_kind != "index":
        labels = HARD_LABELS if not fam.row_wise else labels
    t = DTYPES[dtype]
    return inputs.astype(t), labels if fam.label_kind == "index" else labels.astype(t)


def _oracle(candidate: Candidate, inputs, labels, dtype: str) -> np.ndarray:
    """The exact losses (mpmath values), to measure errors against."""
    return oracles.exact(
        candidate.family, **{FAMILY[candidate.family].input_name: inputs}, labels=labels, dtype=dtype,
        reduction=candidate.reduction,
    )


def _ulps(got: np.ndarray, exact: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """The fractional ULP error of ``got`` against the exact values ``exact`` (see oracles._ulp)."""
    return oracles.ulp_error(got, exact, dtype)


def _call(family: str, name: str, inputs, labels, dtype=np.float32) -> np.ndarray:
    inputs = np.asarray(inputs, dtype)
    labels = np.asarray(labels, np.int64 if FAMILY[family].label_kind == "index" else dtype)
    return get_candidate(family, name)(inputs, labels)


# ------------------------------------------------------------------------------------------------ registry


def test_every_family_offers_candidates_named_from_the_common_list():
    assert set(CANDIDATE_NAMES) == {
        "naive", "naive_rearranged", "keras_clipped", "keras", "keras_from_logits", "tf", "tf_xla",
        "numpy_stable", "tf_v1_losses", "torch", "optax", "sklearn",
        "tf_upcast", "torch_upcast", "optax_upcast", "numpy_stable_upcast", "accurate",
    }
    for family in oracles.FAMILIES:
        names = [c.name for c in candidates(family)]
        assert names == [n for n in CANDIDATE_NAMES if n in names], "order follows CANDIDATE_NAMES"
        assert REQUIRED_OF_EVERY_FAMILY <= set(names), family
        if not FAMILY[family].candidates_module:
            assert REQUIRED_OF_REGISTRY_FAMILIES <= set(names), family
    for family in ("sigmoid_ce", "softmax_ce", "sparse_softmax_ce"):
        assert [c.name for c in candidates(family)] == [n for n in CANDIDATE_NAMES if n != "sklearn"]
    assert [c.name for c in candidates("binary_ce")] == [
        "naive", "keras_clipped", "keras", "numpy_stable", "tf_v1_losses", "torch", "sklearn", "torch_upcast",
        "numpy_stable_upcast", "accurate"]


def test_candidates_filter_by_family_and_by_names():
    assert {c.family for c in candidates(names=["tf"])} == {"sigmoid_ce", "softmax_ce", "sparse_softmax_ce"}
    assert [str(c) for c in candidates("softmax_ce", names=["naive", "tf"])] == ["softmax_ce/naive", "softmax_ce/tf"]
    assert candidates("binary_ce", names=["tf_xla"]) == []
    assert len(candidates()) == sum(len(candidates(f)) for f in oracles.FAMILIES)
    assert {c.family for c in candidates(names=["naive"])} == set(oracles.FAMILIES)


def test_each_candidate_documents_its_formula_source_on_one_line_and_declares_its_needs():
    for c in candidates():
        assert c.source and "\n" not in c.source, c
        assert c.target.startswith("harness.candidates.") and ":" in c.target, c
        assert c.reduction in ("none", "mean"), c
        assert c.reduction == ("mean" if c.name in ("tf_v1_losses", "sklearn") else "none"), c
        assert c.labels == ("hard" if "hard labels only" in c.source else "all"), c  # the source line says so
        assert c.takes_params == bool(FAMILY[c.family].params), c
        assert c.upcast == c.name.endswith("_upcast"), c
        if c.upcast:
            base = get_candidate(c.family, c.name.removesuffix("_upcast"))
            assert (c.target, c.needs, c.reduction) == (base.target, base.needs, base.reduction), c
            assert c.dtypes == ("float16", "bfloat16"), c
        else:
            assert c.dtypes == ("float16", "bfloat16", "float32", "float64"), c
        name = c.name.removesuffix("_upcast")
        if name in ("keras", "keras_from_logits"):
            assert set(c.needs) == {"keras", "tensorflow"}, c
        elif name.startswith("tf"):
            assert c.needs == ("tensorflow",), c
        elif name == "torch":
            assert c.needs == ("torch",) and c.install_hint == "pip install 'lossfuzz[torch]'", c
        elif name == "optax":
            assert c.needs == ("jax", "optax") and c.install_hint == "pip install 'lossfuzz[jax]'", c
        elif name == "sklearn":
            assert c.needs == ("sklearn",) and c.install_hint == "pip install 'lossfuzz[sklearn]'", c
        else:
            assert c.needs == (), c  # numpy only, keras_clipped included


def test_a_candidate_is_a_frozen_slotted_record():
    c = get_candidate("sigmoid_ce", "naive")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.name = "other"  # type: ignore[misc]
    assert not hasattr(c, "__dict__")
    assert c == Candidate(c.name, c.family, c.target, c.dtypes, c.reduction, c.source, c.needs)


def test_get_candidate_rejects_an_unknown_name_with_one_line_listing_the_choices():
    with pytest.raises(ValueError) as info:
        get_candidate("sigmoid_ce", "foo")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("candidate='foo' is not one of: naive, naive_rearranged, keras_clipped, keras,")
    with pytest.raises(ValueError, match=r"^candidate='tf' is not one of: naive, keras_clipped, keras, numpy_stable, tf_v1_losses"):
        get_candidate("binary_ce", "tf")
    with pytest.raises(ValueError, match=r"^family='hinge' is not one of: sigmoid_ce, binary_ce"):
        get_candidate("hinge", "naive")
    with pytest.raises(ValueError, match=r"^candidate='foo' is not one of: naive, "):
        candidates(names=["naive", "foo"])
    with pytest.raises(ValueError, match=r"^family='hinge'"):
        candidates("hinge")


def test_availability_is_checked_without_importing_and_a_missing_module_makes_a_candidate_unavailable():
    assert get_candidate("softmax_ce", "numpy_stable").available()
    ghost = Candidate("naive", "sigmoid_ce", "no_such_module_lossfuzz:fn", ("float32",), needs=("no_such_module_lossfuzz",))
    assert not ghost.available()
    with pytest.raises(ModuleNotFoundError):
        ghost.load()


def test_loading_a_candidate_imports_its_target_once_and_caches_it():
    c = get_candidate("sparse_softmax_ce", "numpy_stable")
    assert c.load() is c.load()
    from harness.candidates import _numpy

    assert c.load() is _numpy.sparse_numpy_stable


FRAMEWORKS = ("tensorflow", "keras", "torch", "jax", "jaxlib", "optax", "sklearn")


def test_importing_the_candidates_package_does_not_import_any_framework():
    code = (f"import sys, harness, harness.candidates as h, harness.campaign, harness.reports.markdown; h.candidates();"
            f" print(*[m in sys.modules for m in {FRAMEWORKS!r}])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False"] * len(FRAMEWORKS)


@pytest.mark.torch
@pytest.mark.jax
@pytest.mark.sklearn
def test_loading_one_framework_candidate_imports_that_framework_only():
    code = ("import sys; from harness.candidates import get_candidate;"
            " get_candidate('sigmoid_ce', 'torch').load(); get_candidate('binary_ce', 'sklearn').load();"
            f" print(*[m in sys.modules for m in {FRAMEWORKS!r}])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    assert dict(zip(FRAMEWORKS, out.stdout.split())) == {
        "tensorflow": "False", "keras": "False", "torch": "True", "jax": "False", "jaxlib": "False", "optax": "False",
        "sklearn": "True"}


def test_the_backend_environment_defaults_keep_keras_in_the_temp_dir_and_leave_explicit_settings_alone(monkeypatch):
    from harness.candidates import _backend

    for key in ("KERAS_HOME", "KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    _backend._environment()
    assert os.environ["KERAS_HOME"].startswith(tempfile.gettempdir())
    assert (os.environ["KERAS_BACKEND"], os.environ["TF_CPP_MIN_LOG_LEVEL"]) == ("tensorflow", "2")
    monkeypatch.setenv("KERAS_HOME", "/somewhere/else")
    _backend._environment()
    assert os.environ["KERAS_HOME"] == "/somewhere/else"


@pytest.mark.tf
def test_keras_loaded_by_a_candidate_uses_a_home_under_the_temp_dir_not_the_user_home():
    # In a fresh interpreter: in this one, Keras may already have been imported by another test.
    code = (
        "import os, tempfile\n"
        "os.environ.pop('KERAS_HOME', None)\n"
        "from harness.candidates import get_candidate\n"
        "get_candidate('softmax_ce', 'keras').load()\n"
        "import keras\n"
        "from keras.src.backend.config import keras_home\n"
        "print(keras.backend.backend(), keras_home().startswith(tempfile.gettempdir()),"
        " keras_home().startswith(os.path.expanduser('~')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split() == ["tensorflow", "True", "False"]


# ------------------------------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("candidate, dtype", _cases(DTYPES, exclude=ALWAYS_FLOAT32 | NO_BFLOAT16))
def test_every_candidate_returns_its_input_dtype_and_the_family_shape(candidate, dtype):
    inputs, labels = _benign(candidate.family, dtype, candidate.labels)
    got = candidate(inputs, labels)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(DTYPES[dtype])
    if candidate.reduction != "none":
        assert got.shape == ()
    elif not FAMILY[candidate.family].row_wise:
        assert got.shape == inputs.shape
    else:
        assert got.shape == inputs.shape[:-1]
    assert np.all(np.isfinite(got.astype(np.float64)))


@pytest.mark.parametrize("candidate, dtype", _cases(["float32", "float64"], exclude=ALWAYS_FLOAT32 | {
    (f, n, "float64") for f, n in FLOAT64_MEAN_IN_FLOAT32}))
def test_every_candidate_agrees_with_the_oracle_on_benign_float32_and_float64_inputs(candidate, dtype):
    inputs, labels = _benign(candidate.family, dtype, candidate.labels)
    got = candidate(inputs, labels)
    exact = _oracle(candidate, inputs, labels, dtype)
    assert got.shape == exact.shape
    # a "stable" name that goes through clipped probabilities (Keras' focal loss) gets the general bound
    bound = STABLE_ULP_TOLERANCE if candidate.name in STABLE and "clipped" not in candidate.source else ULP_TOLERANCE
    assert np.max(_ulps(got, exact, dtype)) <= bound, (got, exact)


@pytest.mark.parametrize("bad", [np.int32, np.longdouble, np.complex64], ids=["int32", "longdouble", "complex64"])
def test_a_dtype_outside_the_four_formats_raises_unsupported_and_is_never_cast(bad):
    inputs = np.ones((2, 3), dtype=bad)
    for c in candidates(names=["naive", "numpy_stable"]):
        labels = np.zeros(2, np.int64) if FAMILY[c.family].label_kind == "index" else np.ones((2, 3), dtype=bad)
        with pytest.raises(Unsupported, match=np.dtype(bad).name):
            c(inputs, labels)
        with pytest.raises(Unsupported):
            c.load()(inputs, labels)  # the implementation checks too, not only the wrapper
    assert issubclass(Unsupported, TypeError)


def test_a_candidate_declared_for_fewer_dtypes_refuses_the_others():
    base = get_candidate("sigmoid_ce", "numpy_stable")
    only32 = dataclasses.replace(base, dtypes=("float32",))
    x = np.array([0.5], np.float64)
    with pytest.raises(Unsupported, match="float64"):
        only32(x, x)
    assert only32.supports("float32") and not only32.supports(np.float64) and not only32.supports("int8")
    assert only32(x.astype(np.float32), x.astype(np.float32)).dtype == np.float32


@pytest.mark.tf
@pytest.mark.parametrize("name", ["tf", "tf_xla", "keras_from_logits"])
def test_tensorflow_candidates_refuse_integer_logits_with_unsupported(name):
    x = np.ones(3, np.int32)
    with pytest.raises(Unsupported):
        get_candidate("sigmoid_ce", name).load()(x, x)


def test_numpy_candidates_compute_and_return_bfloat16_for_bfloat16_inputs():
    # Some ml_dtypes releases promote `bfloat16_array + 1.0` to float32; the candidates make every
    # constant in the input dtype, so their result is bfloat16 whatever the release does.
    x = np.array([-3.0, 0.5, 4.0], ml_dtypes.bfloat16)
    for c in candidates("sigmoid_ce"):
        if not c.needs:
            assert c(x, np.array([0.0, 0.5, 1.0], ml_dtypes.bfloat16)).dtype == ml_dtypes.bfloat16, c


# -------------------------------------------------------------------------------------- published defects


def test_naive_sigmoid_ce_overflows_at_a_logit_of_minus_810_in_float32():
    # The seed's example: x*(1-z) + log(1+exp(-x)) at x=-810, z=0 is inf; the exact loss rounds to 0.
    assert _call("sigmoid_ce", "naive_rearranged", [-810.0], [0.0])[0] == np.inf
    assert oracles.loss("sigmoid_ce", logits=np.float32([-810.0]), labels=np.float32([0.0]), dtype="float32")[0] == 0
    naive = _call("sigmoid_ce", "naive", [-810.0, -810.0], [1.0, 0.0])
    assert naive[0] == np.inf  # -log(sigmoid(-810)) = -log(0); the exact value is 810
    assert np.isnan(naive[1])  # 0 * -log(0)
    assert _call("sigmoid_ce", "numpy_stable", [-810.0, -810.0], [1.0, 0.0]).tolist() == [810.0, 0.0]


def test_keras_clipped_sigmoid_ce_caps_the_loss_at_minus_log_epsilon():
    got = _call("sigmoid_ce", "keras_clipped", [-100.0], [1.0])[0]
    exact = oracles.loss("sigmoid_ce", logits=np.float32([-100.0]), labels=np.float32([1.0]), dtype="float32")[0]
    assert exact == 100.0
    # clipped to p = fl(1e-7), and log(p / (1 - p)) fed to the logits formula gives -log(p): 16.118...
    assert _ulps(np.float32([got]), [-mpmath.log(mpmath.mpf(float(np.float32(1e-7))))])[0] <= 1


@pytest.mark.tf
def test_keras_on_probabilities_caps_the_sigmoid_loss_like_keras_2_while_from_logits_does_not():
    assert _call("sigmoid_ce", "keras", [-100.0], [1.0])[0] == pytest.approx(16.118, abs=1e-3)
    assert _call("sigmoid_ce", "keras_from_logits", [-100.0], [1.0])[0] == 100.0


@pytest.mark.tf
def test_tf_sigmoid_ce_cancels_catastrophically_at_a_large_logit_with_a_soft_label():
    x, z = np.float32([1e4]), np.float32([0.9999])
    exact = oracles.exact("sigmoid_ce", logits=x, labels=z, dtype="float32")
    assert oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32")[0] == np.float32(1.0001659)
    got = get_candidate("sigmoid_ce", "tf")(x, z)
    assert got[0] == 1.0  # 1e4 - fl(1e4 * 0.9999) = 1e4 - 9999
    assert _ulps(got, exact)[0] > 1000
    assert get_candidate("sigmoid_ce", "numpy_stable")(x, z)[0] == 1.0  # same formula, same loss of accuracy


@pytest.mark.tf
def test_naive_softmax_ce_overflows_at_logits_near_1000_while_tf_does_not():
    x = np.float32([[1000.0, 999.0, 998.0]])
    z = np.float32([[1.0, 0.0, 0.0]])
    exact = oracles.exact("softmax_ce", logits=x, labels=z, dtype="float32")
    assert not np.isfinite(_call("softmax_ce", "naive", x, z)[0])
    assert not np.isfinite(_call("softmax_ce", "naive_rearranged", x, z)[0])
    assert not np.isfinite(_call("sparse_softmax_ce", "naive", x, [0])[0])
    for name in ("tf", "numpy_stable"):
        assert _ulps(_call("softmax_ce", name, x, z), exact)[0] <= STABLE_ULP_TOLERANCE, name


def test_clipping_at_1e_minus_7_does_nothing_in_half_precision_so_p_equal_1_gives_nan():
    # 1 - 1e-7 rounds to 1 in float16 and bfloat16: clip leaves p = 1, and (1 - z) * log(1 - p) = 0 * -inf.
    for t in (np.float16, ml_dtypes.bfloat16):
        assert np.isnan(_call("binary_ce", "keras_clipped", [1.0], [1.0], t)[0])
    # In float32 the clip works: p = 1 becomes 1 - 2**-23, and the loss is -log(1 - 2**-23) ~ 2**-23 (measured:
    # 1.5 ULP off through log(p / (1 - p)) and the logits formula) where the exact loss is 0.
    clipped = np.float32(1) - np.float32(1e-7)
    assert float(clipped) == 1 - 2.0**-23
    got = _call("binary_ce", "keras_clipped", [1.0], [1.0], np.float32)
    assert _ulps(got, [-mpmath.log(mpmath.mpf(float(clipped)))])[0] <= 2


@pytest.mark.tf
def test_keras_binary_crossentropy_in_float16_is_nan_at_a_certain_correct_prediction():
    assert np.isnan(_call("binary_ce", "keras", [1.0], [1.0], np.float16)[0])
    assert oracles.loss("binary_ce", probs=np.float16([1.0]), labels=np.float16([1.0]), dtype="float16")[0] == 0


def test_naive_binary_ce_is_nan_at_certain_correct_predictions_where_xlogy_gives_zero():
    assert np.isnan(_call("binary_ce", "naive", [0.0, 1.0], [0.0, 1.0])).all()
    assert _call("binary_ce", "numpy_stable", [0.0, 1.0, np.nan], [0.0, 1.0, 0.0]).tolist()[:2] == [0.0, 0.0]
    assert np.isnan(_call("binary_ce", "numpy_stable", [np.nan], [0.0])[0])  # a nan probability stays nan


@pytest.mark.tf
@pytest.mark.parametrize("family", sorted(FLOAT64_MEAN_IN_FLOAT32))
def test_tf_v1_losses_compute_the_float64_mean_in_float32(family):
    candidate = get_candidate(*family)
    inputs, labels = _benign(candidate.family, "float64")
    got = candidate(inputs, labels)
    exact = _oracle(candidate, inputs, labels, "float64")
    assert got.dtype == np.float64
    assert float(np.float32(got)) == float(got)  # a float32 value dressed as float64
    assert _ulps(got, exact, "float64") > 1e6
    assert _ulps(np.float32(got), exact, "float32") <= 1  # a float32 mean, as good as float32 gets


@pytest.mark.tf
def test_tf_v1_log_loss_returns_float32_whatever_the_input_dtype_and_floors_the_log_at_epsilon():
    candidate = get_candidate("binary_ce", "tf_v1_losses")
    for dtype in DTYPES:
        inputs, labels = _benign("binary_ce", dtype)
        assert candidate(inputs, labels).dtype == np.float32, dtype
    inputs, labels = _benign("binary_ce", "float32")
    exact = _oracle(candidate, inputs, labels, "float32")
    # log(p + 1e-7) moves each term by about 1e-7 / p: measured 6.0 ULP on these points, so 7 is the bound
    assert 5 < np.max(_ulps(candidate(inputs, labels), exact)) <= 7
    got = candidate(np.float32([0.0]), np.float32([1.0]))  # exact loss is +inf
    assert got == pytest.approx(-np.log(1e-7), rel=1e-5)


@pytest.mark.parametrize("dtype, magnitudes", [("float64", [30.0, 35.0, 37.5, 40.0]), ("float32", [17.0, 20.0, 30.0, 50.0])])
@pytest.mark.parametrize("name", [pytest.param("numpy_stable"), *(pytest.param(n, marks=pytest.mark.tf) for n in STABLE[1:])])
def test_stable_sigmoid_ce_keeps_the_tiny_loss_of_a_confident_correct_prediction_to_one_ulp(name, dtype, magnitudes):
    # exp(-|x|) is below the dtype's epsilon here: log(1 + exp(-|x|)) rounds to 0, log1p keeps the whole loss,
    # which is exp(-|x|) itself (6.3e-16 at x = 35 in float64).
    t = np.dtype(dtype).type
    x = np.array(magnitudes + [-m for m in magnitudes], t)
    z = np.array([1.0] * len(magnitudes) + [0.0] * len(magnitudes), t)
    exact = oracles.exact("sigmoid_ce", logits=x, labels=z, dtype=dtype)
    got = get_candidate("sigmoid_ce", name)(x, z)
    assert np.all(got > 0)
    assert np.max(_ulps(got, exact, dtype)) <= 1, got


def test_log_of_one_plus_exp_loses_the_whole_loss_of_a_confident_correct_prediction():
    x, z = np.float32([20.0, -20.0]), np.float32([1.0, 0.0])
    assert _call("sigmoid_ce", "naive_rearranged", x, z).tolist() == [0.0, 0.0]  # exact: 2.06e-9 each
