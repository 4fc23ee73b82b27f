"""The candidate registry: which loss implementations exist, where they live, and how to call them.

A :class:`Candidate` names one implementation of one loss family (``oracles.FAMILIES``). Its code is a
dotted ``"module:function"`` target imported on first use, so importing this package never imports
TensorFlow, Keras, PyTorch, JAX/optax or scikit-learn. Every built-in target follows one calling convention::

    fn(inputs, labels) -> np.ndarray

``inputs``: a numpy array already in the target dtype (logits; probabilities for ``binary_ce``);
``labels``: the same dtype and shape (``int64`` class indices of shape ``inputs.shape[:-1]`` for
``sparse_softmax_ce``). The result is a numpy array in the dtype the implementation produced (the input
dtype, unless the library changed it: nothing is cast back), of the family's per-example shape
(``inputs.shape`` for the elementwise families, ``inputs.shape[:-1]`` for the row families), or 0-d for a
candidate whose ``reduction`` is ``"mean"`` or ``"sum"``. A family with parameters (``focal``'s ``gamma``)
calls its candidates ``fn(inputs, labels, **params)``, every parameter given (:attr:`Candidate.takes_params`).
A family may declare its candidates in its own module (``Family.candidates_module``, e.g.
:mod:`harness.candidates._focal`) instead of in :data:`_BUILTINS` here. A dtype a candidate does not support raises
:class:`Unsupported`; nothing is ever evaluated in another dtype and cast back, except by the
``<name>_upcast`` variants, whose whole point is that pattern (:mod:`harness.candidates._upcast`).

**Gradients.** A candidate's gradient with respect to its inputs (logits; probabilities for ``binary_ce``)
is computed by its own framework's autodiff, or for numpy formulas by the derivative of the formula as
written (what autodiff of that code gives: a clip has zero derivative outside its window). Its target is
the loss target with ``_grad`` appended (``module:function_grad``), same calling convention, returning an
array of the inputs' shape in the dtype the implementation produced; a reduced candidate returns the
gradient of its sum or mean. :attr:`Candidate.gradient_note` is non-empty for a candidate without one (the
reason, shown in reports), and :meth:`Candidate.gradient` raises :class:`NoGradient` for it.

A candidate that declares ``labels="hard"`` (its library rejects soft labels) is scored on hard-label
examples only (:func:`harness.strategies.has_labels`).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Iterable

import numpy as np

import oracles

__all__ = [
    "ALL_DTYPES",
    "CANDIDATE_NAMES",
    "Candidate",
    "REGISTRY",
    "NoGradient",
    "Unsupported",
    "candidates",
    "dtype_name",
    "get_candidate",
]

ALL_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

CANDIDATE_NAMES: tuple[str, ...] = (
    "naive",
    "naive_rearranged",
    "keras_clipped",
    "keras",
    "keras_from_logits",
    "tf",
    "tf_xla",
    "numpy_stable",
    "tf_v1_losses",
    "torch",
    "optax",
    "sklearn",
    # mixed precision: the base computed in float32 on half-precision inputs, cast back (float16/bfloat16 only)
    "tf_upcast",
    "torch_upcast",
    "optax_upcast",
    "numpy_stable_upcast",
    "accurate",  # ours: within 2 ULP everywhere (harness.candidates.accurate)
)

UPCAST_SUFFIX = "_upcast"
# The label sets a candidate can be limited to (harness.strategies.has_labels says which example is which).
CANDIDATE_LABELS = ("all", "hard")

# The extra that installs a module a candidate needs (pip install 'lossfuzz[EXTRA]').
EXTRA_OF_MODULE = {"tensorflow": "tf", "keras": "tf", "torch": "torch", "jax": "jax", "optax": "jax", "sklearn": "sklearn"}

_REDUCTIONS = ("none", "mean", "sum")


class Unsupported(TypeError):
    """The candidate does not accept inputs of this dtype (it is never evaluated in another one instead)."""


class NoGradient(LookupError):
    """The candidate has no gradient to score (:attr:`Candidate.gradient_note` says why)."""


def dtype_name(array: np.ndarray, allowed: Iterable[str] = ALL_DTYPES) -> str:
    """The format name of ``array``'s dtype, or :class:`Unsupported` if it is not one of ``allowed``."""
    allowed = tuple(allowed)
    try:
        name = oracles.resolve_format(array.dtype).name
    except ValueError:
        name = None
    if name not in allowed:
        raise Unsupported(f"dtype={np.dtype(array.dtype).name!r} is not supported; supported: {', '.join(allowed)}")
    return name


@cache
def _import_target(target: str) -> Callable[..., Any]:
    module, _, attribute = target.partition(":")
    if not module or not attribute:
        raise ValueError(f"target={target!r} is not of the form 'package.module:function'")
    return getattr(importlib.import_module(module), attribute)


def gradient_target_of(target: str) -> str:
    """The gradient's target of a loss target: ``module:function`` -> ``module:function_grad``."""
    return target + "_grad"


@cache
def _import_upcast(target: str) -> Callable[..., Any]:
    from ._upcast import computed_in_float32

    return computed_in_float32(_import_target(target))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One implementation of one loss family.

    ``name``: one of :data:`CANDIDATE_NAMES`; ``family``: one of ``oracles.FAMILIES``; ``target``:
    ``"module:function"`` imported on first :meth:`load`; ``dtypes``: the format names it accepts;
    ``reduction``: ``"none"`` (per-example values) or ``"mean"``/``"sum"`` (a 0-d result); ``source``: one
    line saying where the formula comes from; ``needs``: top-level modules that must be importable;
    ``labels``: ``"all"``, or ``"hard"`` for a library that takes hard (0/1) labels only, scored on those
    only; ``upcast``: the target runs in float32 on half-precision inputs, the result cast back
    (:func:`harness.candidates._upcast.computed_in_float32`); ``takes_params``: it is called
    ``fn(inputs, labels, **params)`` with the family's parameters (every built-in of a family that has
    parameters, :attr:`oracles._family.Family.params`).
    """

    name: str
    family: str
    target: str
    dtypes: tuple[str, ...]
    reduction: str = "none"
    source: str = ""
    needs: tuple[str, ...] = ()
    labels: str = "all"
    upcast: bool = False
    takes_params: bool = False
    # why this candidate's gradient is not scored ("" = it has one, at gradient_target_of(target))
    gradient_note: str = ""

    def __post_init__(self) -> None:
        if self.family not in oracles.FAMILIES:
            raise ValueError(f"family={self.family!r} is not one of: {', '.join(oracles.FAMILIES)}")
        if self.reduction not in _REDUCTIONS:
            raise ValueError(f"reduction={self.reduction!r} is not one of: {', '.join(_REDUCTIONS)}")
        bad = [d for d in self.dtypes if d not in ALL_DTYPES]
        if bad:
            raise ValueError(f"dtype={bad[0]!r} is not one of: {', '.join(ALL_DTYPES)}")
        if self.labels not in CANDIDATE_LABELS:
            raise ValueError(f"labels={self.labels!r} is not one of: {', '.join(CANDIDATE_LABELS)}")

    @property
    def key(self) -> tuple[str, str]:
        return (self.family, self.name)

    def available(self) -> bool:
        """Whether every module in ``needs`` can be imported (checked without importing it)."""
        return all(importlib.util.find_spec(module) is not None for module in self.needs)

    @property
    def install_hint(self) -> str:
        """The pip command that installs what :attr:`needs` names."""
        extras = sorted({EXTRA_OF_MODULE.get(m, m) for m in self.needs})
        return f"pip install 'lossfuzz[{','.join(extras)}]'"

    def load(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The implementation, imported on first call and cached (wrapped for an ``upcast`` variant)."""
        return _import_upcast(self.target) if self.upcast else _import_target(self.target)

    @property
    def has_gradient(self) -> bool:
        return not self.gradient_note

    def load_gradient(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The gradient implementation (``module:function_grad``), imported on first call and cached."""
        if self.gradient_note:
            raise NoGradient(f"candidate {self} has no gradient: {self.gradient_note}")
        target = gradient_target_of(self.target)
        return _import_upcast(target) if self.upcast else _import_target(target)

    def gradient(self, inputs: Any, labels: Any, **params: Any) -> np.ndarray:
        """The candidate's gradient with respect to ``inputs``, called as :meth:`__call__` calls the loss."""
        inputs = np.asarray(inputs)
        dtype_name(inputs, self.dtypes)
        fn = self.load_gradient()
        if self.takes_params:
            return fn(inputs, np.asarray(labels), **oracles.get_family(self.family).check_params(params))
        if params:
            raise ValueError(f"candidate {self} takes no parameters; got {', '.join(params)}")
        return fn(inputs, np.asarray(labels))

    def supports(self, dtype: Any) -> bool:
        try:
            return oracles.resolve_format(dtype).name in self.dtypes
        except ValueError:
            return False

    def __call__(self, inputs: Any, labels: Any, **params: Any) -> np.ndarray:
        """Check the dtype, then run the implementation: ``fn(inputs, labels)``, or for a candidate that
        :attr:`takes_params`, ``fn(inputs, labels, **values)`` with ``params`` checked and the family's
        defaults filled in (a one-line ``ValueError`` for parameters it does not take)."""
        inputs = np.asarray(inputs)
        dtype_name(inputs, self.dtypes)
        if self.takes_params:
            return self.load()(inputs, np.asarray(labels), **oracles.get_family(self.family).check_params(params))
        if params:
            raise ValueError(f"candidate {self} takes no parameters; got {', '.join(params)}")
        return self.load()(inputs, np.asarray(labels))

    def __str__(self) -> str:
        return f"{self.family}/{self.name}"


_NUMPY = "harness.candidates._numpy"
_TF = "harness.candidates._tf"
_KERAS = "harness.candidates._keras"
_NEEDS_TF = ("tensorflow",)
_NEEDS_KERAS = ("keras", "tensorflow")
_TORCH = "harness.candidates._torch"
_OPTAX = "harness.candidates._optax"
_SKLEARN = "harness.candidates._sklearn"
_NEEDS_TORCH = ("torch",)
_NEEDS_OPTAX = ("jax", "optax")
_NEEDS_SKLEARN = ("sklearn",)
_ACCURATE = "harness.candidates.accurate"
_ACCURATE_SOURCE = "lossfuzz's own numpy formulas, within 2 ULP everywhere (README: How `accurate` stays within 2 ULP)"

# (family, name, target, reduction, needs, source)
_BUILTINS: tuple[tuple[str, str, str, str, tuple[str, ...], str], ...] = (
    # --- sigmoid_ce: logits x, soft labels z, elementwise -------------------------------------------------------
    ("sigmoid_ce", "naive", f"{_NUMPY}:sigmoid_naive", "none", (),
     "TF docs' definition: z*-log(sigmoid(x)) + (1-z)*-log(1-sigmoid(x)), sigmoid = 1/(1+exp(-x)), numpy"),
    ("sigmoid_ce", "naive_rearranged", f"{_NUMPY}:sigmoid_naive_rearranged", "none", (),
     "TF docs' derivation / seed sigmoid-ce-overflow-ja: x*(1-z) + log(1+exp(-x)), numpy"),
    ("sigmoid_ce", "keras_clipped", f"{_NUMPY}:sigmoid_keras_clipped", "none", (),
     "Keras 2 backend (seed keras-clip-vs-tf-ru): p=sigmoid(x), clip [1e-7, 1-1e-7], l=log(p/(1-p)), then TF formula"),
    ("sigmoid_ce", "keras", f"{_KERAS}:sigmoid_keras", "none", _NEEDS_KERAS,
     "keras.losses.binary_crossentropy(z, tf.math.sigmoid(x)) on probabilities: clip [1e-7, 1-1e-7], -(z*log p + (1-z)*log(1-p))"),
    ("sigmoid_ce", "keras_from_logits", f"{_KERAS}:sigmoid_keras_from_logits", "none", _NEEDS_KERAS,
     "keras.losses.binary_crossentropy(z, x, from_logits=True) -> tf.nn.sigmoid_cross_entropy_with_logits"),
    ("sigmoid_ce", "tf", f"{_TF}:sigmoid_tf", "none", _NEEDS_TF,
     "tf.nn.sigmoid_cross_entropy_with_logits (TF docs: max(x,0) - x*z + log(1 + exp(-abs(x))))"),
    ("sigmoid_ce", "tf_xla", f"{_TF}:sigmoid_tf_xla", "none", _NEEDS_TF,
     "tf.nn.sigmoid_cross_entropy_with_logits inside tf.function(jit_compile=True) (XLA)"),
    ("sigmoid_ce", "numpy_stable", f"{_NUMPY}:sigmoid_numpy_stable", "none", (),
     "TF docs' stable form in numpy with log1p: max(x,0) - x*z + log1p(exp(-abs(x)))"),
    ("sigmoid_ce", "tf_v1_losses", f"{_TF}:sigmoid_tf_v1_losses", "mean", _NEEDS_TF,
     "tf.compat.v1.losses.sigmoid_cross_entropy(multi_class_labels=z, logits=x, reduction=Reduction.MEAN)"),
    ("sigmoid_ce", "torch", f"{_TORCH}:sigmoid_torch", "none", _NEEDS_TORCH,
     "torch.nn.functional.binary_cross_entropy_with_logits(x, z, reduction='none'), CPU"),
    ("sigmoid_ce", "optax", f"{_OPTAX}:sigmoid_optax", "none", _NEEDS_OPTAX,
     "optax.sigmoid_binary_cross_entropy(x, z) (JAX on the CPU, eager; x64 mode for float64 only)"),
    # --- binary_ce: probabilities p, labels z, elementwise ------------------------------------------------------
    ("binary_ce", "naive", f"{_NUMPY}:binary_naive", "none", (),
     "textbook definition: -(z*log(p) + (1-z)*log(1-p)), numpy"),
    ("binary_ce", "keras_clipped", f"{_NUMPY}:binary_keras_clipped", "none", (),
     "Keras 2.0-2.2 backend as quoted in seed keras-clip-vs-tf-ru: clip [1e-7, 1-1e-7], l=log(p/(1-p)), then TF formula"),
    ("binary_ce", "keras", f"{_KERAS}:binary_keras", "none", _NEEDS_KERAS,
     "keras.losses.binary_crossentropy(z, p): clip [1e-7, 1-1e-7], -(z*log p + (1-z)*log(1-p))"),
    ("binary_ce", "numpy_stable", f"{_NUMPY}:binary_numpy_stable", "none", (),
     "scipy-style -(xlogy(z, p) + xlog1py(1-z, -p)) written in numpy (0*log 0 = 0)"),
    ("binary_ce", "tf_v1_losses", f"{_TF}:binary_tf_v1_losses", "mean", _NEEDS_TF,
     "tf.compat.v1.losses.log_loss(labels=z, predictions=p, epsilon=1e-7, reduction=MEAN): -z*log(p+eps) - (1-z)*log(1-p+eps)"),
    ("binary_ce", "torch", f"{_TORCH}:binary_torch", "none", _NEEDS_TORCH,
     "torch.nn.functional.binary_cross_entropy(p, z, reduction='none'): each log clamped at -100, CPU"),
    ("binary_ce", "sklearn", f"{_SKLEARN}:binary_sklearn", "mean", _NEEDS_SKLEARN,
     "sklearn.metrics.log_loss(z, p, labels=[0, 1]): p clipped to [eps, 1-eps] (eps of the dtype), mean; hard labels only"),
    # --- softmax_ce: logits [..., K], soft labels [..., K], per row --------------------------------------------
    ("softmax_ce", "naive", f"{_NUMPY}:softmax_naive", "none", (),
     "seed tf-keras-losses-zh: -sum(z*log(softmax(x))), softmax = exp(x)/sum(exp(x)) unshifted, numpy"),
    ("softmax_ce", "naive_rearranged", f"{_NUMPY}:softmax_naive_rearranged", "none", (),
     "-sum(z*(x - log(sum(exp(x))))), unshifted log-sum-exp, numpy"),
    ("softmax_ce", "keras_clipped", f"{_NUMPY}:softmax_keras_clipped", "none", (),
     "Keras 2 categorical_crossentropy: p=softmax(x), p/=sum(p), clip [1e-7, 1-1e-7], -sum(z*log p), numpy"),
    ("softmax_ce", "keras", f"{_KERAS}:softmax_keras", "none", _NEEDS_KERAS,
     "keras.losses.categorical_crossentropy(z, tf.nn.softmax(x)): p/=sum(p), clip [1e-7, 1-1e-7], -sum(z*log p)"),
    ("softmax_ce", "keras_from_logits", f"{_KERAS}:softmax_keras_from_logits", "none", _NEEDS_KERAS,
     "keras.losses.categorical_crossentropy(z, x, from_logits=True) -> tf.nn.softmax_cross_entropy_with_logits"),
    ("softmax_ce", "tf", f"{_TF}:softmax_tf", "none", _NEEDS_TF,
     "tf.nn.softmax_cross_entropy_with_logits (fused kernel, max-shifted)"),
    ("softmax_ce", "tf_xla", f"{_TF}:softmax_tf_xla", "none", _NEEDS_TF,
     "tf.nn.softmax_cross_entropy_with_logits inside tf.function(jit_compile=True) (XLA)"),
    ("softmax_ce", "numpy_stable", f"{_NUMPY}:softmax_numpy_stable", "none", (),
     "max-shifted log-sum-exp in numpy: -sum(z*(x - m - log(sum(exp(x - m)))))"),
    ("softmax_ce", "tf_v1_losses", f"{_TF}:softmax_tf_v1_losses", "mean", _NEEDS_TF,
     "tf.compat.v1.losses.softmax_cross_entropy(onehot_labels=z, logits=x, reduction=Reduction.MEAN)"),
    ("softmax_ce", "torch", f"{_TORCH}:softmax_torch", "none", _NEEDS_TORCH,
     "torch.nn.functional.cross_entropy(x, z, reduction='none') with class-probability targets, CPU"),
    ("softmax_ce", "optax", f"{_OPTAX}:softmax_optax", "none", _NEEDS_OPTAX,
     "optax.softmax_cross_entropy(x, z) (JAX on the CPU, eager; x64 mode for float64 only)"),
    # --- sparse_softmax_ce: logits [..., K], int64 class index [...] ---------------------------------------------
    ("sparse_softmax_ce", "naive", f"{_NUMPY}:sparse_naive", "none", (),
     "-log(softmax(x)[c]), softmax = exp(x)/sum(exp(x)) unshifted, numpy"),
    ("sparse_softmax_ce", "naive_rearranged", f"{_NUMPY}:sparse_naive_rearranged", "none", (),
     "log(sum(exp(x))) - x[c], unshifted, numpy"),
    ("sparse_softmax_ce", "keras_clipped", f"{_NUMPY}:sparse_keras_clipped", "none", (),
     "Keras 2 categorical_crossentropy on one_hot(c): p=softmax(x), p/=sum(p), clip [1e-7, 1-1e-7], -log p[c], numpy"),
    ("sparse_softmax_ce", "keras", f"{_KERAS}:sparse_keras", "none", _NEEDS_KERAS,
     "keras.losses.sparse_categorical_crossentropy(c, tf.nn.softmax(x)): clip [1e-7, 1-1e-7], log, then sparse TF op"),
    ("sparse_softmax_ce", "keras_from_logits", f"{_KERAS}:sparse_keras_from_logits", "none", _NEEDS_KERAS,
     "keras.losses.sparse_categorical_crossentropy(c, x, from_logits=True) -> tf.nn.sparse_softmax_cross_entropy_with_logits"),
    ("sparse_softmax_ce", "tf", f"{_TF}:sparse_tf", "none", _NEEDS_TF,
     "tf.nn.sparse_softmax_cross_entropy_with_logits (fused kernel, max-shifted)"),
    ("sparse_softmax_ce", "tf_xla", f"{_TF}:sparse_tf_xla", "none", _NEEDS_TF,
     "tf.nn.sparse_softmax_cross_entropy_with_logits inside tf.function(jit_compile=True) (XLA)"),
    ("sparse_softmax_ce", "numpy_stable", f"{_NUMPY}:sparse_numpy_stable", "none", (),
     "max-shifted log-sum-exp in numpy: log(sum(exp(x - m))) - (x[c] - m)"),
    ("sparse_softmax_ce", "tf_v1_losses", f"{_TF}:sparse_tf_v1_losses", "mean", _NEEDS_TF,
     "tf.compat.v1.losses.sparse_softmax_cross_entropy(labels=c, logits=x, reduction=Reduction.MEAN)"),
    ("sparse_softmax_ce", "torch", f"{_TORCH}:sparse_torch", "none", _NEEDS_TORCH,
     "torch.nn.functional.cross_entropy(x, c, reduction='none') with class indices, CPU"),
    ("sparse_softmax_ce", "optax", f"{_OPTAX}:sparse_optax", "none", _NEEDS_OPTAX,
     "optax.softmax_cross_entropy_with_integer_labels(x, c) (JAX on the CPU, eager; x64 mode for float64 only)"),
    # --- accurate: ours, one per family ---------------------------------------------------------------------------
    *((family, "accurate", f"{_ACCURATE}:{family}", "none", (), _ACCURATE_SOURCE)
      for family in ("sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce")),
)

# Candidates that take hard (0/1) labels only: their library rejects soft ones.
_HARD_LABELS_ONLY = {("binary_ce", "sklearn")}
# Candidates without a gradient, and why (every other built-in has one at gradient_target_of(target)).
_NO_GRADIENT: dict[tuple[str, str], str] = {
    ("binary_ce", "sklearn"): "scikit-learn's log_loss is a metric with no autodiff",
}

# Bases of the mixed-precision variants ``<base>_upcast`` (float16 and bfloat16 only): the framework ops that
# mixed-precision training calls, and the numpy stable formula as the reference of the pattern.
UPCAST_BASES = ("tf", "torch", "optax", "numpy_stable")


def _declared() -> list[tuple[str, str, str, str, tuple[str, ...], str, str]]:
    """Every built-in as (family, name, target, reduction, needs, source, labels): those above, then those
    a family declares in its own module (``Family.candidates_module``: a ``CANDIDATES`` tuple of
    (name, target, reduction, needs, source, labels)), in the order of ``oracles.FAMILIES``."""
    out = [(f, n, t, r, needs, s, "hard" if (f, n) in _HARD_LABELS_ONLY else "all") for f, n, t, r, needs, s in _BUILTINS]
    for family in oracles.FAMILIES:
        module = oracles.get_family(family).candidates_module
        if module:
            out += [(family, *declared) for declared in importlib.import_module(module).CANDIDATES]
    return out


def _build() -> dict[tuple[str, str], Candidate]:
    from ._upcast import HALF_DTYPES

    registry: dict[tuple[str, str], Candidate] = {}
    for family, name, target, reduction, needs, source, labels in _declared():
        if name not in CANDIDATE_NAMES:
            raise ValueError(f"candidate={name!r} is not one of: {', '.join(CANDIDATE_NAMES)}")
        takes_params = bool(oracles.get_family(family).params)
        note = _NO_GRADIENT.get((family, name), "")
        candidate = Candidate(name, family, target, ALL_DTYPES, reduction, source, needs, labels,
                              takes_params=takes_params, gradient_note=note)
        registry[candidate.key] = candidate
        if name in UPCAST_BASES:
            variant = Candidate(
                name + UPCAST_SUFFIX, family, target, HALF_DTYPES, reduction,
                f"mixed precision: float16/bfloat16 inputs cast to float32, {source}; the result cast back once",
                needs, labels, upcast=True, takes_params=takes_params, gradient_note=note,
            )
            registry[variant.key] = variant
    # deterministic order: family order of oracles.FAMILIES, then name order of CANDIDATE_NAMES
    order = {f: i for i, f in enumerate(oracles.FAMILIES)}
    rank = {n: i for i, n in enumerate(CANDIDATE_NAMES)}
    return dict(sorted(registry.items(), key=lambda kv: (order[kv[0][0]], rank[kv[0][1]])))


# (family, name) -> Candidate. All built-ins accept all four formats (the _upcast variants: float16 and
# bfloat16): TensorFlow 2.21's tf.nn ops (eager and XLA on CPU), tf.compat.v1.losses, Keras 3, PyTorch and
# JAX keep float16/bfloat16 as given, and numpy's exp/log/log1p run on ml_dtypes.bfloat16 arrays and return
# bfloat16; scikit-learn's log_loss rejects bfloat16 when called (Unsupported).
REGISTRY: dict[tuple[str, str], Candidate] = _build()


def _check_family(family: str) -> None:
    if family not in oracles.FAMILIES:
        raise ValueError(f"family={family!r} is not one of: {', '.join(oracles.FAMILIES)}")


def candidates(family: str | None = None, names: Iterable[str] | None = None) -> list[Candidate]:
    """Registered candidates, optionally only of ``family`` and/or only those named in ``names``.

    An unknown family or name is a one-line ``ValueError``; a known name a family lacks is skipped.
    """
    if family is not None:
        _check_family(family)
    wanted: set[str] | None = None
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        for name in names:
            if name not in CANDIDATE_NAMES:
                raise ValueError(f"candidate={name!r} is not one of: {', '.join(CANDIDATE_NAMES)}")
        wanted = set(names)
    return [
        c for c in REGISTRY.values()
        if (family is None or c.family == family) and (wanted is None or c.name in wanted)
    ]


def get_candidate(family: str, name: str) -> Candidate:
    """The candidate ``name`` of ``family``; a one-line ``ValueError`` naming the valid choices otherwise."""
    _check_family(family)
    candidate = REGISTRY.get((family, name))
    if candidate is None:
        valid = [n for (f, n) in REGISTRY if f == family]
        raise ValueError(f"candidate={name!r} is not one of: {', '.join(valid)} (family {family!r})")
    return candidate
