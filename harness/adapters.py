"""Adapters: any importable loss callable as a harness :class:`~harness.candidates.Candidate`.

:func:`function_candidate` turns a ``"package.module:function"`` spec (also ``"module:Class()"``, a loss
object made with no arguments and then called, and ``"module:obj.method"`` attribute paths) or a Python
callable into a candidate that follows the built-in convention ``fn(inputs, labels) -> np.ndarray``:

- **arguments**: which parameter gets the labels and which the prediction is read from the names in
  ``takes`` (call order; ``labels,logits`` as TensorFlow, ``y_true,y_pred`` as Keras, ``input,target`` as
  PyTorch, or any of the names in :data:`LABEL_NAMES` / :data:`PREDICTION_NAMES`), or else from the
  function's signature. When both names are parameters of the function they are passed by keyword,
  otherwise by position in the order given. A convention that cannot be told is a one-line ``ValueError``
  saying which flag to pass.
- **probabilities vs logits**: ``inputs`` says what the prediction argument is (default: ``probs`` when the
  parameter is named so, else the family's own: probabilities for ``binary_ce``, logits otherwise). A
  function of probabilities audited for a logit family gets ``sigmoid(x)`` (``softmax(x)`` over the last
  axis for the row families) evaluated in float64 and rounded once to the dtype: the best probability the
  dtype holds, so the error measured is the function's own plus what that format cannot represent.
  ``binary_ce`` gives probabilities only.
- **reduction**: what the function returns (``none``: per example; ``mean``/``sum``: one 0-d value),
  scored against the exact reduced loss.
- **extra keyword arguments**: ``kwargs``, passed on every call (``{"from_logits": true}``).
- **frameworks**: arrays are handed over as the framework of the code expects, told from the top-level
  module that defines the callable (or the spec's module): ``torch`` tensors, TensorFlow tensors for
  ``tensorflow``/``keras``, ``jax.numpy`` arrays for ``jax``, numpy arrays otherwise. The result comes back
  as numpy (``.numpy()``, ``np.asarray``), never cast; a list, tuple, ``None`` or Python number is a
  ``not_an_array`` finding, a wrong shape a ``wrong_shape`` finding (with a hint about ``reduction``).
- **isolation** (``isolate=True``, the default): every call runs in a worker process
  (:mod:`harness.isolation`) with a per-call ``timeout`` and a ``memory_mb`` limit, so a hang, a crash or
  an exhausted memory is a finding and the run goes on. :meth:`FunctionCandidate.close` ends the worker.
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

import oracles

from .candidates._registry import ALL_DTYPES, Candidate

__all__ = [
    "LABEL_NAMES",
    "PREDICTION_NAMES",
    "FunctionCandidate",
    "function_candidate",
    "resolve_target",
]

# Parameter names that hold the labels, and those that hold the prediction (logits or probabilities).
LABEL_NAMES: tuple[str, ...] = (
    "labels", "label", "y_true", "target", "targets", "true", "truth", "ground_truth", "gt", "z",
    "multi_class_labels", "onehot_labels", "one_hot_labels", "y",
)
PREDICTION_NAMES: tuple[str, ...] = (
    "logits", "logit", "y_pred", "input", "inputs", "prediction", "predictions", "pred", "preds", "output",
    "outputs", "probs", "probabilities", "probability", "prob", "p", "scores", "x",
)
_PROB_NAMES = ("probs", "probabilities", "probability", "prob", "p")
_LOGIT_NAMES = ("logits", "logit")
_INPUT_KINDS = {"logits": "logits", "logit": "logits", "probs": "probs", "probabilities": "probs", "prob": "probs"}
_TAKES_HINT = "pass --takes labels,logits (or y_true,y_pred / input,target) in the order the function takes them"


# ------------------------------------------------------------------------------------------ resolving targets


def _import_module(spec: str, module: str) -> Any:
    from .candidates._backend import _environment

    _environment()  # as for the built-ins: quiet TensorFlow, Keras' home under the temp dir (caller's settings win)
    try:
        return importlib.import_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of the user's import is one line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{spec!r} does not import: {detail}; check the module path and that it is installed") from None


def resolve_target(spec: str) -> Any:
    """The object a ``"module:attr.path"`` or ``"module:Class()"`` spec names (the instance, for ``()``)."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"{spec!r} is not of the form 'package.module:function' (or 'module:Class()', 'module:obj.method')")
    module_name, _, path = spec.partition(":")
    module_name, path = module_name.strip(), path.strip()
    instantiate = path.endswith("()")
    if instantiate:
        path = path[:-2]
    if not module_name or not path or not all(part.isidentifier() for part in path.split(".")):
        raise ValueError(f"{spec!r} is not of the form 'package.module:function' (or 'module:Class()', 'module:obj.method')")
    obj = _import_module(spec, module_name)
    walked = module_name
    for part in path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{spec!r}: {walked} has no attribute {part!r}; check the name after ':'") from None
        except Exception as exc:  # noqa: BLE001 - a property that raises
            raise ValueError(f"{spec!r}: reading {walked}.{part} raised {type(exc).__name__}: {exc}") from None
        walked = f"{walked}.{part}"
    if instantiate:
        if not callable(obj):
            raise ValueError(f"{spec!r}: {walked} is a {type(obj).__name__}, not a class to call with ()")
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ValueError(f"{spec!r}: {walked}() raised {type(exc).__name__}: {detail}; a loss object must be"
                             " constructible with no arguments (or pass a function)") from None
    if not callable(obj):
        raise ValueError(f"{spec!r} is a {type(obj).__name__}, not callable; pass a function, a method, or a loss"
                         " class followed by () to call an instance")
    return obj


def _describe(target: Any) -> str:
    """``module:qualname`` of a Python callable (its class's for an instance)."""
    owner = target if (inspect.isfunction(target) or inspect.ismethod(target) or inspect.isbuiltin(target)
                       or inspect.isclass(target)) else type(target)
    module = getattr(owner, "__module__", None) or "?"
    qualname = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", None) or repr(owner)
    return f"{module}:{qualname}" + ("" if owner is target else "()")


def _defining_module(target: Any) -> str:
    """The module that defines a function or method, or the class of a loss object."""
    func = getattr(target, "__func__", target)
    if inspect.isroutine(func) or inspect.isclass(func):
        module = getattr(func, "__module__", None)
    else:
        module = type(target).__module__
    return module if isinstance(module, str) else ""


# --------------------------------------------------------------------------------------- calling convention


def _role(name: str) -> str | None:
    key = name.strip().lower()
    if key in LABEL_NAMES:
        return "labels"
    if key in PREDICTION_NAMES:
        return "prediction"
    return None


def _signature(target: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


def _shown(spec: str, sig: inspect.Signature | None) -> str:
    if sig is None:
        return f"{spec}(...)"
    names = [p.name for p in sig.parameters.values()]
    return f"{spec}({', '.join(names)})"


@dataclass(frozen=True, slots=True)
class Convention:
    """How to call the function: ``order`` = the two roles in positional order (``("labels", "prediction")``
    or the reverse); ``keywords`` = role -> parameter name when passed by keyword (empty: positional)."""

    order: tuple[str, str]
    keywords: tuple[tuple[str, str], ...] = ()
    prediction_name: str = ""

    def words(self) -> str:
        if self.keywords:
            names = dict(self.keywords)
            return ", ".join(f"{names[r]}={'z' if r == 'labels' else 'x'}" for r in self.order)
        return ", ".join("z" if r == "labels" else "x" for r in self.order)


def _keywordable(param: inspect.Parameter) -> bool:
    return param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def infer_convention(spec: str, target: Any, takes: str | tuple[str, ...] | None, kwargs: Mapping[str, Any]) -> Convention:
    """The calling convention from ``takes`` or the signature (see the module docstring)."""
    sig = _signature(target)
    params = {} if sig is None else dict(sig.parameters)
    if takes is not None:
        names = tuple(t.strip() for t in (takes.split(",") if isinstance(takes, str) else takes) if t.strip())
        if len(names) != 2:
            raise ValueError(f"--takes {','.join(names) or repr(takes)}: give exactly two names, the labels and the"
                             " prediction in call order, e.g. --takes labels,logits or --takes y_true,y_pred")
        roles = tuple(_role(n) for n in names)
        if set(roles) != {"labels", "prediction"}:
            raise ValueError(f"--takes {','.join(names)}: cannot tell which names the labels and which the prediction;"
                             " use labels,logits (TF), y_true,y_pred (Keras) or input,target (PyTorch) in call order")
        order = (roles[0], roles[1])
        by_role = dict(zip(roles, names))
        keywords: tuple[tuple[str, str], ...] = ()
        if all(n in params and _keywordable(params[n]) for n in names):
            keywords = tuple((r, by_role[r]) for r in order)
        return Convention(order, keywords, by_role["prediction"])  # type: ignore[arg-type]
    if sig is None:
        raise ValueError(f"cannot tell how to call {spec}(...): its signature cannot be read; {_TAKES_HINT}")
    usable = [p for p in params.values()
              if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) and p.name not in kwargs]
    found: dict[str, list[inspect.Parameter]] = {"labels": [], "prediction": []}
    for p in usable:
        role = _role(p.name)
        if role:
            found[role].append(p)
    if len(found["labels"]) != 1 or len(found["prediction"]) != 1:
        raise ValueError(f"cannot tell how to call {_shown(spec, sig)}: {_TAKES_HINT}")
    label, pred = found["labels"][0], found["prediction"][0]
    others = [p.name for p in usable
              if p.name not in (label.name, pred.name) and p.default is inspect.Parameter.empty]
    if others:
        raise ValueError(f"{_shown(spec, sig)} also needs {', '.join(others)}: pass them with --kwargs '{{\"{others[0]}\": ...}}'")
    positions = [p.name for p in usable]
    order = ("labels", "prediction") if positions.index(label.name) < positions.index(pred.name) else ("prediction", "labels")
    if _keywordable(label) and _keywordable(pred):
        return Convention(order, tuple((r, label.name if r == "labels" else pred.name) for r in order), pred.name)
    positional = [p.name for p in usable if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if positional[:2] != [n for n in positions if n in (label.name, pred.name)]:
        raise ValueError(f"cannot tell how to call {_shown(spec, sig)} positionally: {_TAKES_HINT}")
    return Convention(order, (), pred.name)


# ------------------------------------------------------------------------------------------- array handling


def _framework_of(module: str) -> str:
    top = (module or "").split(".")[0]
    if top == "torch":
        return "torch"
    if top in ("tensorflow", "tf_keras", "keras"):
        return "tensorflow"
    if top in ("jax", "jaxlib", "flax", "optax"):
        return "jax"
    return "numpy"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) in float64, rounded once to x's dtype (exp never overflows: exp(-|x|) <= 1)."""
    w = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(w))
        p = np.where(w >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        p = np.where(np.isnan(w), np.nan, p)
    return p.astype(x.dtype)


def _softmax(x: np.ndarray) -> np.ndarray:
    """softmax over the last axis in float64 (max-shifted), rounded once to x's dtype."""
    w = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        m = np.max(w, axis=-1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        e = np.exp(w - m)
        p = e / np.sum(e, axis=-1, keepdims=True)
    return p.astype(x.dtype)


def _to_framework(value: np.ndarray, framework: str) -> Any:
    if framework == "numpy":
        return value
    if framework == "tensorflow":
        import tensorflow as tf

        return tf.convert_to_tensor(value)
    if framework == "torch":
        import torch

        if value.dtype.name == "bfloat16":  # torch.from_numpy does not know ml_dtypes; the values are exact
            return torch.from_numpy(value.astype(np.float32)).to(torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(value))
    if framework == "jax":
        import jax.numpy as jnp

        return jnp.asarray(value)
    raise ValueError(f"framework={framework!r} is not one of: numpy, tensorflow, torch, jax")


def to_numpy(result: Any) -> np.ndarray:
    """What a loss returned, as numpy without a cast; ``not_an_array`` for lists, None and Python numbers."""
    from .scoring import CandidateFailure

    if isinstance(result, (np.ndarray, np.generic)):
        return result
    top = type(result).__module__.split(".")[0]
    if top == "torch":
        tensor = result.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            import ml_dtypes

            return tensor.float().numpy().astype(ml_dtypes.bfloat16)
        return tensor.numpy()
    if isinstance(result, (list, tuple)):
        raise CandidateFailure(f"returned a {type(result).__name__} of {len(result)} items, not an array", "not_an_array")
    if result is None or isinstance(result, (bool, int, float, complex, str, bytes, dict)):
        raise CandidateFailure(f"returned {type(result).__name__}"
                               f"{'' if result is None else ' ' + repr(result)[:40]}, not an array", "not_an_array")
    numpy_method = getattr(result, "numpy", None)
    if callable(numpy_method):
        try:
            return np.asarray(numpy_method())
        except Exception as exc:  # noqa: BLE001
            raise CandidateFailure(f"returned {type(result).__name__} whose .numpy() raised {type(exc).__name__}: {exc}",
                                   "not_an_array") from None
    if hasattr(result, "__array__"):
        return np.asarray(result)
    raise CandidateFailure(f"returned {type(result).__name__}, not an array", "not_an_array")


# ------------------------------------------------------------------------------------------------ the call


@dataclass
class _Call:
    """The audited function under the built-in convention; runs where it is called (in the worker when
    isolated). Pickles by spec (re-imported in a spawned worker) or by the function's own reference."""

    spec: str
    target: Any  # the callable (None after unpickling a spec: resolved again by prepare())
    convention: Convention
    convert: str  # "none", "sigmoid" or "softmax": what is applied to the family's inputs
    framework: str
    kwargs: dict[str, Any]
    by_spec: bool = True

    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in ("spec", "convention", "convert", "framework", "kwargs", "by_spec")}
        state["target"] = None if self.by_spec else self.target
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def prepare(self) -> None:
        """Import the target (in a spawned worker) before the first call, outside the per-call timeout."""
        if self.target is None:
            self.target = resolve_target(self.spec)
        if self.framework == "tensorflow":
            import tensorflow  # noqa: F401 - loaded now rather than inside the first timed call
        elif self.framework == "torch":
            import torch  # noqa: F401
        elif self.framework == "jax":
            import jax.numpy  # noqa: F401

    def __call__(self, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if self.target is None:
            self.prepare()
        x = inputs
        if self.convert == "sigmoid":
            x = _sigmoid(inputs)
        elif self.convert == "softmax":
            x = _softmax(inputs)
        values = {"labels": _to_framework(labels, self.framework), "prediction": _to_framework(x, self.framework)}
        if self.convention.keywords:
            result = self.target(**{name: values[role] for role, name in self.convention.keywords}, **self.kwargs)
        else:
            result = self.target(*(values[r] for r in self.convention.order), **self.kwargs)
        return to_numpy(result)


class _Invoker:
    """What the candidate calls: the :class:`_Call` in a worker (or in process), then the shape check."""

    def __init__(self, call: _Call, family: str, reduction: str, isolate: bool, timeout: float, memory_mb: int) -> None:
        self.call = call
        self.family = oracles.get_family(family)
        self.reduction = reduction
        self.worker = None
        if isolate:
            from .isolation import Worker

            self.worker = Worker(call, timeout=timeout, memory_mb=memory_mb, name=call.spec)

    def __call__(self, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        from .scoring import CandidateFailure

        if self.worker is not None:
            result = self.worker(inputs, labels)
        else:
            result = self.call(inputs, labels)
        result = to_numpy(result)
        expected = self.family.batch_shape(inputs) if self.reduction == "none" else ()
        if result.shape != tuple(expected):
            hint = ""
            if self.reduction == "none" and result.ndim == 0:
                hint = "; it looks reduced: pass --reduction mean or sum"
            elif self.reduction != "none" and result.shape == tuple(self.family.batch_shape(inputs)):
                hint = "; it looks per-example: pass --reduction none"
            raise CandidateFailure(f"returned shape {result.shape}, expected {tuple(expected)}{hint}", "wrong_shape")
        return result

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


@dataclass(frozen=True, slots=True)
class FunctionCandidate(Candidate):
    """A user's loss as a candidate: called through its adapter (``invoker``) instead of an imported target.
    :meth:`close` ends its worker process (also done at exit); it is a context manager."""

    invoker: Any = field(default=None, compare=False, repr=False)
    convention: str = ""

    def load(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return self.invoker

    def available(self) -> bool:
        return True

    def close(self) -> None:
        if self.invoker is not None:
            self.invoker.close()

    def __enter__(self) -> "FunctionCandidate":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def function_candidate(
    target: str | Callable[..., Any],
    family: str,
    *,
    takes: str | tuple[str, ...] | None = None,
    inputs: str | None = None,
    reduction: str = "none",
    kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
    isolate: bool = True,
    timeout: float = 10.0,
    memory_mb: int = 4096,
    framework: str | None = None,
) -> FunctionCandidate:
    """A candidate for ``target`` (spec or callable) computing ``family``; see the module docstring.

    Bad specs, families, conventions and options are one-line ``ValueError``\\ s naming the fix. The
    function is imported here (to read its signature); with ``isolate`` its calls run in a worker process.
    """
    fam = oracles.get_family(family)
    kwargs = dict(kwargs or {})
    if isinstance(target, str):
        spec = target.strip()
        obj = resolve_target(spec)
        by_spec = True
        if inspect.isclass(obj):
            raise ValueError(f"{spec!r} is a class; to audit an instance made with no arguments, pass '{spec}()'")
    elif callable(target):
        obj = target
        spec = _describe(target)
        by_spec = False
    else:
        raise ValueError(f"target={target!r} is neither a 'package.module:function' spec nor a callable")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction={reduction!r} is not one of: none, mean, sum")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout={timeout!r} is not a positive number of seconds")
    convention = infer_convention(spec, obj, takes, kwargs)
    if inputs is None:
        hinted = convention.prediction_name.lower()
        kind = "probs" if hinted in _PROB_NAMES else "logits" if hinted in _LOGIT_NAMES else fam.input_name
    else:
        kind = _INPUT_KINDS.get(str(inputs).strip().lower())
        if kind is None:
            raise ValueError(f"inputs={inputs!r} is not one of: logits, probs")
    if fam.input_name == "probs" and kind == "logits":
        raise ValueError(f"{fam.name} gives the function probabilities; a function of logits is audited with"
                         " --family sigmoid_ce (or pass --inputs probs)")
    convert = "none" if kind == fam.input_name else ("softmax" if fam.row_wise else "sigmoid")
    if framework is None:
        framework = _framework_of(_defining_module(obj))
        if framework == "numpy" and by_spec:
            framework = _framework_of(spec.partition(":")[0])
    elif framework not in ("numpy", "tensorflow", "torch", "jax"):
        raise ValueError(f"framework={framework!r} is not one of: numpy, tensorflow, torch, jax")
    call = _Call(spec, obj, convention, convert, framework, kwargs, by_spec)
    invoker = _Invoker(call, fam.name, reduction, isolate, timeout, memory_mb)
    how = f"called as f({convention.words()}{', **kwargs' if kwargs else ''})"
    if convert != "none":
        how += f" with x = {convert}(logits) rounded to the dtype"
    if framework != "numpy":
        how += f", {framework} arrays"
    return FunctionCandidate(
        name=name or spec,
        family=fam.name,
        target=spec,
        dtypes=ALL_DTYPES,
        reduction=reduction,
        source=f"{spec} {how}" + (f" kwargs={kwargs}" if kwargs else ""),
        needs=(),
        invoker=invoker,
        convention=how,
    )
