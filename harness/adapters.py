"""Adapters: any importable loss callable as a harness :class:`~harness.candidates.Candidate`.

:func:`function_candidate` turns a ``"package.module:function"`` spec (also ``"module:Class()"``, a loss
object made with no arguments and then called, and ``"module:obj.method"`` attribute paths) or a Python
callable into a candidate that follows the built-in convention ``fn(inputs, labels) -> np.ndarray``:

- **arguments**: which parameter gets the labels and which the prediction is read from the names in
  ``takes`` (call order; ``labels,logits`` as TensorFlow, ``y_true,y_pred`` as Keras, ``input,target`` as
  PyTorch, or any of the names in :data:`LABEL_NAMES` / :data:`PREDICTION_NAMES`, one of them enough), or
  any two names with their roles, ``target_z=labels,score_x=inputs`` (passed by position in that order),
  or else from the function's signature. When both plain names are parameters of the function they are
  passed by keyword, otherwise by position in the order given. A convention that cannot be told is a one-line ``ValueError``
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
  as numpy (``.numpy()``, ``np.asarray``), never cast; a list, tuple or ``None`` is a ``not_an_array``
  finding, a wrong shape a ``wrong_shape`` finding (with a hint about ``reduction``). A Python ``float``
  (the documented return type of a reduced loss such as scikit-learn's ``log_loss``) is rounded once to the
  dtype, so its error includes that rounding; it is not called a silent cast. A JAX array of float32 for
  float64 inputs is a ``wrong_dtype`` finding that says how to turn on JAX's 64-bit mode.
- **gradients**: :meth:`FunctionCandidate.gradient` is d loss / d inputs computed where the function runs (in
  the worker), by the autodiff of its framework (:func:`autodiff_framework`: the framework that defines it,
  or for a user's module the one framework it imports; that framework's arrays go in): a TensorFlow tape,
  ``torch.autograd`` or ``jax.vjp``, with an output gradient of ones (the gradient of the sum of the
  per-example losses; of the mean or sum of a reduced function). It comes back as numpy like the loss. A
  result not connected to the prediction is a ``raised`` finding. Plain numpy code, a function of
  probabilities made from the logits, and a module importing several frameworks have none (a
  ``gradient_note`` says why) unless ``gradient_fn`` (``--gradient-fn module:function``, called as the
  function is, returning d loss / d prediction) gives it.
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

from .candidates._registry import ALL_DTYPES, Candidate, NoGradient

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
    "outputs", "probs", "probabilities", "probability", "prob", "p", "scores", "x", "y_proba", "y_prob", "y_score",
)
_PROB_NAMES = ("probs", "probabilities", "probability", "prob", "p", "y_proba", "y_prob")
_LOGIT_NAMES = ("logits", "logit")
_INPUT_KINDS = {"logits": "logits", "logit": "logits", "probs": "probs", "probabilities": "probs", "prob": "probs"}
_TAKES_HINT = ("pass --takes labels,logits (or y_true,y_pred / input,target) in the order the function takes them,"
               " or NAME=labels,NAME=inputs")


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


# Role words of the explicit form ``--takes NAME=ROLE,NAME=ROLE``.
TAKES_ROLES: dict[str, str] = {"labels": "labels", "inputs": "prediction", "prediction": "prediction"}
TAKES_FORM = ("labels,logits (TF), y_true,y_pred (Keras), input,target (PyTorch), or any two names with their"
              " roles in call order: NAME=labels,NAME=inputs (e.g. --takes target_z=labels,score_x=inputs)")


def parse_takes(takes: str | tuple[str, ...] | list[str]) -> tuple[tuple[tuple[str, str], tuple[str, str]], bool]:
    """The two ``(name, role)`` pairs of ``takes`` in call order (role ``labels`` or ``prediction``), and
    whether the roles were given explicitly (``NAME=ROLE``: the function is then called positionally).

    Plain names take their role from :data:`LABEL_NAMES` / :data:`PREDICTION_NAMES`; when only one of the
    two is known, the other gets the other role (``y_true,y_proba``). A spec that cannot be read is a
    one-line ``ValueError`` showing :data:`TAKES_FORM`."""
    items = tuple(t.strip() for t in (takes.split(",") if isinstance(takes, str) else takes) if str(t).strip())
    shown = ",".join(items) or repr(takes)
    if len(items) != 2:
        raise ValueError(f"--takes {shown}: give exactly two names in call order: {TAKES_FORM}")
    if any("=" in t for t in items):
        pairs = []
        for item in items:
            name, _, word = (part.strip() for part in item.partition("="))
            role = TAKES_ROLES.get(word.lower())
            if not name.isidentifier() or role is None:
                raise ValueError(f"--takes {shown}: {item!r} is not NAME=labels or NAME=inputs; expected {TAKES_FORM}")
            pairs.append((name, role))
        if {r for _n, r in pairs} != {"labels", "prediction"}:
            raise ValueError(f"--takes {shown}: one name must be =labels and the other =inputs; expected {TAKES_FORM}")
        return (pairs[0], pairs[1]), True
    roles = [_role(n) for n in items]
    if roles.count(None) == 1:  # one known name: the other is the other role
        known = next(r for r in roles if r)
        roles = [r or ("prediction" if known == "labels" else "labels") for r in roles]
    if set(roles) != {"labels", "prediction"}:
        raise ValueError(f"--takes {shown}: cannot tell which names the labels and which the prediction; use {TAKES_FORM}")
    return ((items[0], roles[0]), (items[1], roles[1])), False  # type: ignore[return-value]


def infer_convention(spec: str, target: Any, takes: str | tuple[str, ...] | None, kwargs: Mapping[str, Any]) -> Convention:
    """The calling convention from ``takes`` or the signature (see the module docstring)."""
    sig = _signature(target)
    params = {} if sig is None else dict(sig.parameters)
    if takes is not None:
        pairs, explicit = parse_takes(takes)
        names = tuple(n for n, _r in pairs)
        roles = tuple(r for _n, r in pairs)
        order = (roles[0], roles[1])
        by_role = dict(zip(roles, names))
        keywords: tuple[tuple[str, str], ...] = ()
        if not explicit and all(n in params and _keywordable(params[n]) for n in names):
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
    for role, params_found in found.items():
        required = [p for p in params_found if p.default is inspect.Parameter.empty]
        if len(params_found) > 1 and len(required) == 1:  # e.g. log_loss(y_true, y_proba, ..., y_pred="deprecated")
            found[role] = required
    if len(found["labels"]) != 1 or len(found["prediction"]) != 1:
        clash = next((f"{' and '.join(p.name for p in ps)} could each be the {role}; "
                      for role, ps in found.items() if len(ps) > 1), "")
        raise ValueError(f"cannot tell how to call {_shown(spec, sig)}: {clash}{_TAKES_HINT}")
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


_FRAMEWORK_NAMES = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}


def autodiff_framework(target: Any, framework: str) -> tuple[str, ...]:
    """The frameworks whose autodiff can differentiate ``target``: its own (``framework``, told from the module
    that defines it) when that is TensorFlow, PyTorch or JAX; for code of another module (``numpy`` to the
    adapter: it gets numpy arrays for its loss), those that module imports (modules, or functions and
    classes defined in them, among its globals: ``import tensorflow as tf``, ``from torch.nn import
    functional as F``, ``import jax.numpy as jnp``). Empty: plain numpy code; two or more: cannot tell."""
    if framework != "numpy":
        return (framework,)
    import sys

    module = sys.modules.get(_defining_module(target))
    found = set()
    for value in list(getattr(module, "__dict__", {}).values()):
        try:
            name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        except Exception:  # noqa: BLE001 - an object whose attributes raise says nothing
            continue
        if isinstance(name, str):
            found.add(_framework_of(name))
    return tuple(sorted(found - {"numpy"}))


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
    from ._records import CandidateFailure

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


def is_python_number(result: Any) -> bool:
    """A Python ``int`` or ``float`` (not ``bool``): what a reduced loss such as scikit-learn's ``log_loss``
    documents as its return type."""
    return isinstance(result, (int, float)) and not isinstance(result, bool)


JAX_X64_HINT = ('JAX runs in 32-bit mode: enable float64 with jax.config.update("jax_enable_x64", True) at startup'
                " (or the environment variable JAX_ENABLE_X64=1)")


def jax_precision_failure(result: Any, dtype: Any) -> Any:
    """A ``wrong_dtype`` failure that leads with :data:`JAX_X64_HINT` when ``result`` is a JAX array (its
    type is defined in a module of the ``jax`` or ``jaxlib`` package, as ``jaxlib.xla_extension.ArrayImpl``)
    holding float32 for float64 inputs: JAX without x64 turns float64 inputs into float32 silently. None
    otherwise (the ordinary dtype check applies)."""
    from ._records import CandidateFailure

    top = (getattr(type(result), "__module__", "") or "").split(".")[0]
    if top not in ("jax", "jaxlib") or np.dtype(dtype) != np.float64:
        return None
    got = str(getattr(result, "dtype", ""))
    if got != "float32":
        return None
    return CandidateFailure(f"{JAX_X64_HINT}; it returned float32 for float64 inputs", "wrong_dtype", hint=JAX_X64_HINT)


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
    per_element: bool = False  # a reduced function called on batches of one element, one value each
    # The options still to resolve against the function (family, takes, inputs, reduction, framework), when
    # the spec is resolved in the worker only (``convention`` is None until then); see :func:`_plan`.
    unresolved: dict[str, Any] | None = None
    # The user's gradient (--gradient-fn): a "module:function" spec (resolved where the call runs) or a
    # callable; None: the function's own framework autodiff (see :meth:`gradient`).
    gradient_fn: Any = None
    # The frameworks whose autodiff differentiates it (:func:`autodiff_framework`; set by prepare() when None).
    autodiff: tuple[str, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in ("spec", "convention", "convert", "framework", "kwargs", "by_spec",
                                                "per_element", "unresolved", "gradient_fn", "autodiff")}
        state["target"] = None if self.by_spec else self.target
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def prepare(self) -> dict[str, Any]:
        """Import the target (in the worker) before the first call, outside the per-call timeout; with
        ``unresolved`` options, also read its signature and settle the convention here. Returns what the
        harness needs to describe the call, as plain data (:func:`_how`'s arguments)."""
        if self.target is None:
            self.target = resolve_target(self.spec)
        if self.unresolved is not None:
            opts = self.unresolved
            if inspect.isclass(self.target):
                raise ValueError(f"{self.spec!r} is a class; to audit an instance made with no arguments, pass"
                                 f" '{self.spec}()'")
            self.convention, self.convert, self.framework = _plan(
                self.spec, self.target, oracles.get_family(opts["family"]), opts["takes"], opts["inputs"],
                self.kwargs, opts["framework"], self.by_spec)
            self.unresolved = None
        if isinstance(self.gradient_fn, str):
            self.gradient_fn = resolve_target(self.gradient_fn)
        if self.autodiff is None:
            self.autodiff = autodiff_framework(self.target, self.framework)
        if self.framework == "tensorflow":
            import tensorflow  # noqa: F401 - loaded now rather than inside the first timed call
        elif self.framework == "torch":
            import torch  # noqa: F401
        elif self.framework == "jax":
            import jax.numpy  # noqa: F401
        return {"convention": self.convention.words(), "convert": self.convert, "framework": self.framework,
                "autodiff": list(self.autodiff)}

    def __call__(self, inputs: np.ndarray, labels: np.ndarray) -> Any:
        if self.target is None:
            self.prepare()
        if not self.per_element:
            return self._once(inputs, labels)
        from ._records import CandidateFailure

        values = []
        for i in range(inputs.shape[0]):
            one = self._once(inputs[i : i + 1], labels[i : i + 1])
            one = np.asarray(float(one), dtype=np.float64).astype(inputs.dtype) if is_python_number(one) else one
            if one.size != 1:
                raise CandidateFailure(f"returned shape {one.shape} for a batch of one element, expected one value"
                                       " (is it reduced? pass --reduction none)", "wrong_shape")
            values.append(one.reshape(()))
        return np.stack(values) if values else np.zeros(inputs.shape[:1], dtype=inputs.dtype)

    def _prediction(self, inputs: np.ndarray) -> np.ndarray:
        if self.convert == "sigmoid":
            return _sigmoid(inputs)
        if self.convert == "softmax":
            return _softmax(inputs)
        return inputs

    def _invoke(self, fn: Any, labels: Any, prediction: Any) -> Any:
        """``fn`` called under the convention (labels and prediction already the framework's arrays)."""
        values = {"labels": labels, "prediction": prediction}
        if self.convention.keywords:
            return fn(**{name: values[role] for role, name in self.convention.keywords}, **self.kwargs)
        return fn(*(values[r] for r in self.convention.order), **self.kwargs)

    def _once(self, inputs: np.ndarray, labels: np.ndarray) -> Any:
        x = self._prediction(inputs)
        result = self._invoke(self.target, _to_framework(labels, self.framework), _to_framework(x, self.framework))
        if is_python_number(result):
            return result  # rounded to the dtype by the invoker: a reduced function's documented return type
        failure = jax_precision_failure(result, inputs.dtype)
        if failure is not None:
            raise failure
        return to_numpy(result)


    def gradient(self, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """d loss / d inputs where the function runs (in the worker when isolated), as numpy: the user's
        ``gradient_fn`` called like the function, else the function's own framework autodiff
        (:func:`_autodiff`). A reduced function gives the gradient of its mean or sum; its per-element view,
        each element's gradient from a batch of that element alone."""
        from ._records import CandidateFailure

        if self.target is None or isinstance(self.gradient_fn, str) or self.autodiff is None:
            self.prepare()
        if not self.per_element:
            return self._gradient_once(inputs, labels)
        parts = []
        for i in range(inputs.shape[0]):
            one = self._gradient_once(inputs[i : i + 1], labels[i : i + 1])
            if one.shape != inputs[i : i + 1].shape:
                raise CandidateFailure(f"returned a gradient of shape {one.shape} for a batch of one element, expected"
                                       f" {inputs[i : i + 1].shape}", "wrong_shape")
            parts.append(one)
        return np.concatenate(parts) if parts else np.zeros(inputs.shape, dtype=inputs.dtype)

    def _gradient_once(self, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if self.gradient_fn is not None:
            x = _to_framework(self._prediction(inputs), self.framework)
            result = self._invoke(self.gradient_fn, _to_framework(labels, self.framework), x)
        else:
            result = _autodiff(self, inputs, labels)
        failure = jax_precision_failure(result, inputs.dtype)
        if failure is not None:
            raise failure
        return to_numpy(result)


_NOT_CONNECTED = ("the loss it returned does not depend on the prediction through {what} (does it leave {framework},"
                  " e.g. through numpy?)")


def _autodiff(call: _Call, inputs: np.ndarray, labels: np.ndarray) -> Any:
    """d call.target / d prediction by the function's own framework (:func:`autodiff_framework`, whose arrays
    it is then given, also when its loss is given numpy ones): a ``tf.GradientTape`` watching the
    prediction tensor, ``torch.autograd.grad`` on a prediction that requires grad, ``jax.vjp``; each with an
    output gradient of ones (the gradient of the sum of the per-example losses, each example's own; of the
    mean or sum itself for a reduced function). A result that is not connected to the prediction is a
    ``raised`` finding; plain numpy code has no autodiff (its candidate has a ``gradient_note``)."""
    from ._records import CandidateFailure

    note = gradient_note_of(call.autodiff or (), call.convert, None, "family's")
    if note:
        raise CandidateFailure(note, "raised")
    (framework,) = call.autodiff  # type: ignore[misc]
    labels_f = _to_framework(labels, framework)
    x = _to_framework(inputs, framework)
    if framework == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            out = call._invoke(call.target, labels_f, x)
        if not tf.is_tensor(out):
            raise CandidateFailure(f"returned {type(out).__name__}, not a tensor: "
                                   + _NOT_CONNECTED.format(what="a tf.GradientTape", framework="TensorFlow"), "raised")
        gradient = tape.gradient(out, x)
        if gradient is None:
            raise CandidateFailure(_NOT_CONNECTED.format(what="a tf.GradientTape", framework="TensorFlow"), "raised")
        return gradient
    if framework == "torch":
        import torch

        x.requires_grad_(True)
        out = call._invoke(call.target, labels_f, x)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise CandidateFailure(_NOT_CONNECTED.format(what="torch.autograd", framework="PyTorch"), "raised")
        (gradient,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out), allow_unused=True)
        if gradient is None:
            raise CandidateFailure(_NOT_CONNECTED.format(what="torch.autograd", framework="PyTorch"), "raised")
        return gradient
    import jax
    import jax.numpy as jnp

    out, pullback = jax.vjp(lambda prediction: call._invoke(call.target, labels_f, prediction), x)
    (gradient,) = pullback(jnp.ones_like(out))
    return gradient


def gradient_note_of(autodiff: tuple[str, ...] | list[str], convert: str, gradient_fn: Any, family: str) -> str:
    """Why an audited function's gradient is not scored ("" when it is): a function of probabilities that
    lossfuzz makes from the logits (its gradient with respect to the logits would be lossfuzz's chain rule,
    not the function's); without ``gradient_fn``, plain numpy code (no autodiff) or code whose module
    imports several frameworks (which one differentiates it cannot be told)."""
    if convert != "none":
        return (f"it takes probabilities, which lossfuzz makes from the {family} logits: its gradient with respect to"
                " the logits would not be its own code's")
    if gradient_fn is not None or len(autodiff) == 1:
        return ""
    if not autodiff:
        return "plain numpy code has no autodiff: pass --gradient-fn module:function to score its gradient"
    names = " and ".join(_FRAMEWORK_NAMES.get(f, f) for f in autodiff)
    return f"its module imports {names}: which one differentiates it cannot be told; pass --gradient-fn module:function"


class _Invoker:
    """What the candidate calls: the :class:`_Call` in a worker (or in process), then the shape check."""

    def __init__(self, call: _Call, family: str, reduction: str, isolate: bool, timeout: float, memory_mb: int,
                 budget: Any = None, startup_timeout: float | None = None) -> None:
        self.call = call
        self.family = oracles.get_family(family)
        self.reduction = reduction
        self.worker = None
        if isolate:
            from .isolation import STARTUP_SECONDS, Worker

            self.worker = Worker(call, timeout=timeout, memory_mb=memory_mb, name=call.spec, budget=budget,
                                 startup_timeout=STARTUP_SECONDS if startup_timeout is None else startup_timeout)

    def start(self) -> dict[str, Any]:
        """Start the worker now: import the function there and return how it is called (plain data). Any
        failure (an import that raises, exits, crashes or hangs past the startup limit, a convention that
        cannot be told) is a one-line ``ValueError``; the harness imports nothing of the function."""
        from ._records import CandidateFailure
        from ._text import printable

        assert self.worker is not None
        try:
            described = self.worker.start()
        except CandidateFailure as exc:
            usage = getattr(exc, "usage", None)
            if usage:
                raise ValueError(printable(usage)) from None
            raise ValueError(printable(f"{self.call.spec}: {exc}")) from None
        if not described or not isinstance(described.get("convention"), str):
            raise ValueError(printable(f"{self.call.spec}: the worker did not say how the function is called"))
        return described

    def __call__(self, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        from ._records import CandidateFailure

        if self.worker is not None:
            result = self.worker(inputs, labels)
        else:
            result = self.call(inputs, labels)
        if is_python_number(result):
            result = np.asarray(float(result), dtype=np.float64).astype(inputs.dtype)  # one rounding, from a double
        result = to_numpy(result)
        expected = self.family.batch_shape(inputs) if self.reduction == "none" else ()
        if result.shape != tuple(expected):
            hint = ""
            if self.reduction == "none" and result.ndim == 0:
                hint = "it looks reduced: pass --reduction mean or sum"
            elif self.reduction != "none" and result.shape == tuple(self.family.batch_shape(inputs)):
                hint = "it looks per-example: pass --reduction none"
            raise CandidateFailure(f"returned shape {result.shape}, expected {tuple(expected)}{'; ' + hint if hint else ''}",
                                   "wrong_shape", hint=hint)
        return result

    def gradient(self, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The function's gradient with respect to the inputs (:meth:`_Call.gradient`), computed in the worker
        when isolated and checked here: an array of the inputs' shape (a ``wrong_shape`` finding otherwise)."""
        from ._records import CandidateFailure

        if self.worker is not None:
            result = self.worker.gradient(inputs, labels)
        else:
            result = self.call.gradient(inputs, labels)
        result = to_numpy(result)  # a Python number (the worker's plain form of one) is not_an_array
        if result.shape != np.shape(inputs):
            raise CandidateFailure(f"returned a gradient of shape {result.shape}, expected the inputs' {np.shape(inputs)}",
                                   "wrong_shape")
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

    def load_gradient(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The gradient, computed where the function runs (:meth:`_Invoker.gradient`); :class:`NoGradient`
        when :attr:`gradient_note` says why there is none."""
        if self.gradient_note:
            raise NoGradient(f"candidate {self} has no gradient: {self.gradient_note}")
        return self.invoker.gradient

    def available(self) -> bool:
        return True

    def close(self) -> None:
        if self.invoker is not None:
            self.invoker.close()

    def output(self) -> dict[str, Any] | None:
        """What the function wrote to stdout/stderr in its worker (``{"bytes": n, "tail": text}``), or None."""
        worker = getattr(self.invoker, "worker", None)
        return None if worker is None else worker.output

    def __enter__(self) -> "FunctionCandidate":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _plan(spec: str, obj: Any, fam: Any, takes: Any, inputs: str | None, kwargs: Mapping[str, Any],
          framework: str | None, by_spec: bool) -> tuple[Convention, str, str]:
    """(convention, conversion of the inputs, framework) for calling ``obj`` as ``fam``: from ``takes`` or
    its signature (see the module docstring). Runs where the function is: in the worker for an isolated
    spec. One-line ``ValueError`` when it cannot be told."""
    convention = infer_convention(spec, obj, takes, kwargs)
    if inputs is None:
        hinted = convention.prediction_name.lower()
        kind = "probs" if hinted in _PROB_NAMES else "logits" if hinted in _LOGIT_NAMES else fam.input_name
    else:
        kind = _INPUT_KINDS[str(inputs).strip().lower()]
    if fam.input_name == "probs" and kind == "logits":
        raise ValueError(f"{fam.name} gives the function probabilities; a function of logits is audited with"
                         " --family sigmoid_ce (or pass --inputs probs)")
    convert = "none" if kind == fam.input_name else ("softmax" if fam.row_wise else "sigmoid")
    if framework is None:
        framework = _framework_of(_defining_module(obj))
        if framework == "numpy" and by_spec:
            framework = _framework_of(spec.partition(":")[0])
    return convention, convert, framework


def _how(words: str, kwargs: Mapping[str, Any], per_element: bool, reduction: str, convert: str, framework: str) -> str:
    how = f"called as f({words}{', **kwargs' if kwargs else ''})"
    if per_element:
        how += f" on batches of one element (its {reduction} is that element's loss)"
    if convert != "none":
        how += f" with x = {convert}(logits) rounded to the dtype"
    if framework != "numpy":
        how += f", {framework} arrays"
    return how


def _check_spec(spec: str) -> None:
    """The form of a ``module:attr.path`` spec, checked without importing anything."""
    form = "is not of the form 'package.module:function' (or 'module:Class()', 'module:obj.method')"
    if spec.count(":") != 1:
        raise ValueError(f"{spec!r} {form}")
    module_name, _, path = spec.partition(":")
    path = path.strip().removesuffix("()")
    if (not module_name.strip() or not path or not all(p.isidentifier() for p in path.split("."))
            or not all(p.isidentifier() for p in module_name.strip().split("."))):
        raise ValueError(f"{spec!r} {form}")


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
    per_element: bool = False,
    budget: Any = None,
    startup_timeout: float | None = None,
    gradient_fn: str | Callable[..., Any] | None = None,
) -> FunctionCandidate:
    """A candidate for ``target`` (spec or callable) computing ``family``; see the module docstring.

    ``per_element``: ``target`` is reduced (``reduction`` mean or sum) and the candidate gives the per-element
    view: it calls ``target`` once per element on a batch of that element alone (the mean or sum of one
    loss is that loss) and is scored as per-example (``reduction="none"``). One call per element, all of a
    batch in one round trip to the worker. ``budget``: a :class:`harness.isolation.Budget` shared by the
    audit (no call once it is spent); ``startup_timeout``: seconds the worker may take to import the function
    (default :data:`harness.isolation.STARTUP_SECONDS`).

    Gradients (:meth:`FunctionCandidate.gradient`): computed where the function runs, by its own framework's
    autodiff (TensorFlow tape, ``torch.autograd``, ``jax.vjp``), or by ``gradient_fn`` (a spec or callable
    called exactly as the function is, returning d loss / d prediction, as ``--gradient-fn`` gives it).
    Plain numpy code without one, and a function of probabilities made from the logits, get a
    ``gradient_note`` instead (reports show it).

    Bad specs, families, conventions and options are one-line ``ValueError``\\ s naming the fix. With
    ``isolate`` (the default) a spec is imported, and its signature read, in the worker process only (under
    the startup limit): nothing of the audited module runs in this process. Without it, here.
    """
    from .isolation import check_limits

    fam = oracles.get_family(family)
    kwargs = dict(kwargs or {})
    if isinstance(target, str):
        spec = target.strip()
        _check_spec(spec)
        obj, by_spec = None, True
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
    check_limits(timeout=timeout, memory_mb=memory_mb)
    if inputs is not None and _INPUT_KINDS.get(str(inputs).strip().lower()) is None:
        raise ValueError(f"inputs={inputs!r} is not one of: logits, probs")
    if framework is not None and framework not in ("numpy", "tensorflow", "torch", "jax"):
        raise ValueError(f"framework={framework!r} is not one of: numpy, tensorflow, torch, jax")
    if isinstance(gradient_fn, str):
        gradient_fn = gradient_fn.strip()
        _check_spec(gradient_fn)
    elif gradient_fn is not None and not callable(gradient_fn):
        raise ValueError(f"gradient_fn={gradient_fn!r} is neither a 'package.module:function' spec nor a callable")
    if per_element and reduction == "none":
        raise ValueError("per_element=True is the per-element view of a reduced function; pass reduction='mean' or 'sum'")
    scored_as = "none" if per_element else reduction
    if obj is None and isolate:
        # resolved in the worker: this process never imports the audited module
        plan = {"family": fam.name, "takes": takes, "inputs": inputs, "framework": framework}
        call = _Call(spec, None, None, "none", framework or "numpy", kwargs, True, per_element, unresolved=plan,
                     gradient_fn=gradient_fn)
        invoker = _Invoker(call, fam.name, scored_as, True, timeout, memory_mb, budget, startup_timeout)
        try:
            described = invoker.start()
        except BaseException:
            invoker.close()
            raise
        words, convert, framework = described["convention"], str(described.get("convert")), str(described.get("framework"))
        autodiff = tuple(str(f) for f in described.get("autodiff") or ())
    else:
        if obj is None:
            obj = resolve_target(spec)
        if inspect.isclass(obj):
            raise ValueError(f"{spec!r} is a class; to audit an instance made with no arguments, pass '{spec}()'")
        convention, convert, framework = _plan(spec, obj, fam, takes, inputs, kwargs, framework, by_spec)
        if isinstance(gradient_fn, str):
            gradient_fn = resolve_target(gradient_fn)
        autodiff = autodiff_framework(obj, framework)
        call = _Call(spec, obj, convention, convert, framework, kwargs, by_spec, per_element, gradient_fn=gradient_fn,
                     autodiff=autodiff)
        invoker = _Invoker(call, fam.name, scored_as, isolate, timeout, memory_mb, budget, startup_timeout)
        words = convention.words()
    how = _how(words, kwargs, per_element, reduction, convert, framework)
    if gradient_fn is not None:
        how += f"; gradient: {gradient_fn if isinstance(gradient_fn, str) else _describe(gradient_fn)}"
    return FunctionCandidate(
        name=name or spec,
        family=fam.name,
        target=spec,
        dtypes=ALL_DTYPES,
        reduction=scored_as,
        source=f"{spec} {how}" + (f" kwargs={kwargs}" if kwargs else ""),
        needs=(),
        invoker=invoker,
        convention=how,
        gradient_note=gradient_note_of(autodiff, convert, gradient_fn, fam.name),
    )
