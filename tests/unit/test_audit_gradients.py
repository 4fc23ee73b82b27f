"""Audited functions' gradients: computed in the worker by the function's own framework (TensorFlow tape,
torch.autograd, jax.vjp), returned as plain data and checked against :func:`oracles.gradient`; plain numpy
code gets a gradient note unless ``--gradient-fn`` names its gradient; a function that raises, hangs or
crashes only when differentiated is a finding, and the worker serves the loss again afterwards."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import oracles
from harness.adapters import autodiff_framework, function_candidate, gradient_note_of
from harness.auditing import call_function_once
from harness.candidates import NoGradient
from harness.options import AuditSettings, resolve
from harness.options import settings as settings_from
from harness.records import CandidateFailure
from tests.conftest import child_processes

X = np.float32([-3.0, -0.5, -1.5, 0.25, -2.0])
Z = np.float32([0.0, 1.0, 0.0, 1.0, 1.0])
FEW_ULP = 4.0
NUMPY = "tests.fixtures.numpy_gradient_fns"


@pytest.fixture(autouse=True)
def no_worker_left_behind():
    before = set(child_processes())
    yield
    left = [pid for pid in child_processes() if pid not in before]
    assert left == [], f"worker processes left behind: {left}"


def _ulp(got: np.ndarray, reduction: str = "none", x: np.ndarray = X, z: np.ndarray = Z) -> float:
    exact = oracles.exact("sigmoid_ce", logits=x, labels=z, dtype="float32", what="gradient", reduction=reduction)
    return float(np.max(oracles.ulp_error(got, exact, "float32")))


@pytest.mark.parametrize("spec, kwargs", [
    pytest.param("tests.fixtures.tf_losses:sigmoid_ce", {}, marks=pytest.mark.tf, id="tensorflow-user-module"),
    pytest.param("tests.fixtures.torch_losses:sigmoid_ce", {}, marks=pytest.mark.torch, id="torch-user-module"),
    pytest.param("tests.fixtures.jax_losses:sigmoid_ce", {}, marks=pytest.mark.jax, id="jax-user-module"),
    pytest.param("optax:sigmoid_binary_cross_entropy", {}, marks=pytest.mark.jax, id="optax-library"),
])
def test_a_framework_function_gets_its_own_autodiff_gradient_from_the_worker(spec, kwargs):
    with function_candidate(spec, "sigmoid_ce", **kwargs) as c:
        assert c.has_gradient and c.gradient_note == ""
        got = c.gradient(X, Z)
        worker = c.invoker.worker
        assert worker.calls == 1 and worker.pid is not None  # computed there, not here
    assert type(got) is np.ndarray and got.dtype == np.float32 and got.shape == X.shape
    assert _ulp(got) <= FEW_ULP


@pytest.mark.torch
def test_a_reduced_function_gives_the_gradient_of_its_mean_and_its_per_element_view_each_elements():
    spec = "tests.fixtures.torch_losses:mean_sigmoid_ce"
    with function_candidate(spec, "sigmoid_ce", reduction="mean") as mean:
        got = mean.gradient(X, Z)
    assert _ulp(got, "mean") <= FEW_ULP  # the exact gradient of the mean: 1/5 of each example's
    with function_candidate(spec, "sigmoid_ce", reduction="mean", per_element=True) as each:
        assert each.reduction == "none"
        per = each.gradient(X, Z)
    assert _ulp(per) <= FEW_ULP


@pytest.mark.torch
def test_hostile_behaviour_while_differentiated_is_a_finding_and_the_loss_still_runs():
    for name, kind in (("raises_in_gradient", "raised"), ("crashes_in_gradient", "crashed"),
                       ("hangs_in_gradient", "timeout"), ("detached_sigmoid_ce", "raised")):
        with function_candidate(f"tests.fixtures.torch_losses:{name}", "sigmoid_ce", timeout=5) as c:
            loss = c(X, Z)  # the loss behaves
            with pytest.raises(CandidateFailure) as info:
                c.gradient(X, Z)
            assert info.value.kind == kind, (name, str(info.value))
            if name == "detached_sigmoid_ce":
                assert "does not depend on the prediction" in str(info.value)
            again = c(X, Z)  # a fresh worker when the last one was killed
            assert np.array_equal(again, loss)


def test_plain_numpy_code_has_a_note_and_no_gradient_call():
    with function_candidate(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce") as c:
        assert not c.has_gradient
        assert "plain numpy code has no autodiff" in c.gradient_note and "--gradient-fn" in c.gradient_note
        with pytest.raises(NoGradient, match="--gradient-fn"):
            c.gradient(X, Z)
        assert c.invoker.worker.calls == 0


def test_gradient_fn_gives_plain_numpy_code_its_gradient_called_like_the_function():
    with function_candidate(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce", gradient_fn=f"{NUMPY}:sigmoid_gradient") as c:
        assert c.has_gradient and f"gradient: {NUMPY}:sigmoid_gradient" in c.convention
        got = c.gradient(X, Z)
    assert got.dtype == np.float32 and _ulp(got) <= 0.5  # evaluated in float64, rounded once
    with function_candidate(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce", gradient_fn=f"{NUMPY}:wrong_sign_gradient",
                            isolate=False) as wrong:
        flipped = wrong.gradient(X, Z)
    assert np.array_equal(flipped, -got)  # what the scorer counts in wrong_sign


def test_a_bad_gradient_fn_is_a_one_line_error():
    with pytest.raises(ValueError, match="is not of the form"):
        function_candidate(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce", gradient_fn="no colon here")
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        function_candidate(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce", gradient_fn=f"{NUMPY}:missing")
    with pytest.raises(ValueError, match="neither"):
        function_candidate(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce", gradient_fn=42, isolate=False)


def test_a_function_of_probabilities_for_a_logit_family_has_a_note():
    with function_candidate(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce", inputs="probs", isolate=False) as c:
        assert "takes probabilities" in c.gradient_note
        with pytest.raises(NoGradient):
            c.gradient(X, Z)


def test_the_framework_of_user_code_is_told_from_what_its_module_imports():
    module = types.ModuleType("lossfuzz_test_user_module")
    sys.modules[module.__name__] = module
    try:
        exec("def loss(labels, logits):\n    return logits\n", module.__dict__)
        assert autodiff_framework(module.loss, "numpy") == ()
        module.F = types.ModuleType("torch.nn.functional")  # import torch.nn.functional as F (not imported here)
        assert autodiff_framework(module.loss, "numpy") == ("torch",)
        module.tf = types.ModuleType("tensorflow")
        both = autodiff_framework(module.loss, "numpy")
        assert both == ("tensorflow", "torch")
        assert "PyTorch" in gradient_note_of(both, "none", None, "sigmoid_ce") and "--gradient-fn" in gradient_note_of(
            both, "none", None, "sigmoid_ce")
        assert gradient_note_of(both, "none", "m:g", "sigmoid_ce") == ""  # a --gradient-fn settles it
        assert autodiff_framework(module.loss, "jax") == ("jax",)  # a function of jax itself
    finally:
        del sys.modules[module.__name__]


@pytest.mark.jax
def test_a_jax_gradient_of_float64_inputs_in_32_bit_mode_is_a_wrong_dtype_finding():
    with function_candidate("tests.fixtures.jax_losses:sigmoid_ce", "sigmoid_ce", isolate=False) as c:
        with pytest.raises(CandidateFailure) as info:
            c.gradient(X.astype(np.float64), Z.astype(np.float64))
    assert info.value.kind == "wrong_dtype" and "jax_enable_x64" in str(info.value)


def test_gradient_fn_is_an_audit_option_passed_to_the_adapter():
    settings = settings_from(AuditSettings, "audit_api", {"family": "sigmoid_ce", "gradient_fn": f"{NUMPY}:sigmoid_gradient"})
    assert settings.call_options()["gradient_fn"] == f"{NUMPY}:sigmoid_gradient"
    assert settings_from(AuditSettings, "audit_api", {"family": "sigmoid_ce"}).call_options()["gradient_fn"] is None
    for face in ("audit", "exact"):
        assert "gradient_fn" in resolve(face, {"family": "sigmoid_ce"} if face == "audit" else {})
    with pytest.raises(TypeError, match="unknown option"):
        resolve("run", {"gradient_fn": "a:b"})


def test_call_function_once_gives_the_gradient_or_says_why_not():
    got, message = call_function_once(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce", X, Z, gradient=True)
    assert got is None and "no gradient" in message and "--gradient-fn" in message
    got, message = call_function_once(f"{NUMPY}:numpy_sigmoid_ce", "sigmoid_ce", X, Z, gradient=True,
                                      gradient_fn=f"{NUMPY}:sigmoid_gradient")
    assert message == "" and _ulp(got) <= 0.5


def test_exact_replays_a_functions_gradient_with_its_gradient_fn_and_says_why_without_one(capsys):
    # the replay command of an audited function's gradient case: `lossfuzz exact ... --gradient --candidate
    # module:function [--gradient-fn ...]` (it was refused as a usage error)
    from harness import cli

    common = ["exact", "sigmoid_ce", "--logits=-100,3", "--labels", "1,0.5", "--dtype", "float32", "--gradient",
              "--candidate", f"{NUMPY}:numpy_sigmoid_ce"]
    assert cli.main([*common, "--gradient-fn", f"{NUMPY}:sigmoid_gradient"]) == 0
    out = capsys.readouterr().out
    assert f"{NUMPY}:numpy_sigmoid_ce -1.0   -0x1p+0" in out and "0x1.cf6f98p-2" in out
    assert cli.main(common) == 0
    assert "no gradient: plain numpy code has no autodiff" in capsys.readouterr().out
