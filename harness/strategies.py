"""Adversarial inputs: Hypothesis strategies (exported for users' own tests) and the boundary catalogue.

Every strategy draws values *representable in the dtype* (what a candidate computing in that dtype
receives), spread over the whole range: zero, subnormals, the smallest normal, ordinary magnitudes, the
largest finite value, the points where ``exp`` overflows and underflows and where ``1 + exp(-x)`` rounds to
1, their floating-point neighbours, and ``±inf``/nan when asked. Labels are hard (0/1) or soft, including
labels a hair below 1 (``1 - 2**-k``) and tiny ones.

Use them in a test::

    from hypothesis import given
    from harness import strategies as lst

    @given(lst.examples("sigmoid_ce", "float32"))
    def test_my_loss(example):
        x, z = example.inputs, example.labels
        ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

import oracles
from oracles import Format, resolve_format

from ._records import LABEL_SETS

__all__ = [
    "Example",
    "special_logits",
    "special_labels",
    "special_probs",
    "logits",
    "labels",
    "probabilities",
    "class_counts",
    "examples",
    "catalogue",
    "LABEL_SETS",
    "has_labels",
    "param_pairs",
    "inputs_of",
]


@dataclass(frozen=True, slots=True, eq=False)
class Example:
    """One example of a family: ``inputs`` (a 0-d array for elementwise families, a row of K values for
    softmax families) in the dtype, ``labels`` (same shape, or a 0-d int64 class index), and ``params``:
    the family's parameters as sorted ``(name, value)`` pairs, empty for the family's defaults (and for a
    family without parameters)."""

    inputs: np.ndarray
    labels: np.ndarray
    params: tuple[tuple[str, float], ...] = ()

    @property
    def key(self) -> tuple:
        return (self.inputs.dtype.str, self.inputs.shape, self.inputs.tobytes(), self.labels.tobytes(), self.params)

    @property
    def param_values(self) -> dict[str, float]:
        """``params`` as a mapping (empty: the family's defaults)."""
        return dict(self.params)


def param_pairs(params: Any) -> tuple[tuple[str, float], ...]:
    """A mapping of parameter values as :attr:`Example.params` pairs (sorted by name)."""
    return tuple(sorted((str(k), float(v)) for k, v in dict(params or {}).items()))


def _cast(values: Any, fmt: Format) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, dtype=np.float64).astype(fmt.numpy_dtype)


def _neighbours(values: np.ndarray, fmt: Format, steps: int = 1) -> np.ndarray:
    """Each value with its floating-point neighbours in the format (finite ones only)."""
    bits = values.view(fmt.uint_dtype)
    out = [values]
    for step in range(1, steps + 1):
        for direction in (-step, step):
            # both bounds as int64: uint64's max does not fit, and numpy 1.x then clips in float64, rounding the bits
            upper = np.int64(min(np.iinfo(fmt.uint_dtype).max, np.iinfo(np.int64).max))
            moved = (bits.astype(np.int64) + direction).clip(np.int64(0), upper).astype(fmt.uint_dtype)
            out.append(moved.view(fmt.numpy_dtype))
    merged = np.concatenate(out)
    finite = merged[np.isfinite(merged.astype(np.float64))]
    return np.unique(finite.astype(np.float64))


@lru_cache(maxsize=None)
def _special_logits(name: str) -> tuple[float, ...]:
    fmt = resolve_format(name)
    tiny, small, big = fmt.min_subnormal, fmt.min_normal, fmt.max_finite
    log_big = math.log(big)  # exp(x) overflows just above this
    log_tiny = math.log(tiny)  # exp(x) underflows to 0 just below this
    one_plus = fmt.precision * math.log(2)  # exp(-x) < 2**-p: 1 + exp(-x) rounds to 1
    base = [
        0.0, tiny, 2 * tiny, small - tiny, small, 2.0**-30, 1e-7, 1e-3, 0.5, 1.0, 2.0, math.log(2),
        5.0, 10.0, 11.0, 12.0, 14.0, 16.0, 17.0, 20.0, 21.0, 23.0, 30.0, 50.0, 88.0, 89.0, 100.0,
        700.0, 709.0, 710.0, 745.0, 746.0, 800.0, 810.0, 1000.0, 1e4, 1e5, 65504.0, 2.0**24, 2.0**53,
        1e30, big / 2, big, log_big, -log_big, log_tiny, -log_tiny, one_plus, -one_plus,
        math.log(small), -math.log(small),
    ]
    positive = _cast([abs(v) for v in base], fmt)
    positive = positive[np.isfinite(positive.astype(np.float64))]
    near = _neighbours(positive, fmt, steps=1)
    values = np.concatenate([near, -near[near > 0]])
    return tuple(float(v) for v in np.unique(values))


def special_logits(dtype: Any, *, allow_infinity: bool = False, allow_nan: bool = False) -> tuple[float, ...]:
    """The boundary values of logits in ``dtype`` (and their neighbours), sorted; ±inf and nan on request."""
    values = _special_logits(resolve_format(dtype).name)
    extra = ((-math.inf, math.inf) if allow_infinity else ()) + ((math.nan,) if allow_nan else ())
    return values + extra


@lru_cache(maxsize=None)
def _special_labels(name: str) -> tuple[float, ...]:
    fmt = resolve_format(name)
    p = fmt.precision
    base = [0.0, 1.0, 0.5, 0.25, 0.75, 0.9, 0.1, 0.9999, 0.999, 0.001, 1e-4, fmt.min_subnormal, fmt.min_normal]
    base += [1 - 2.0**-k for k in (p, p - 1, p // 2, 8, 4)] + [2.0**-k for k in (p, 2 * p, 60)]
    values = _cast(base, fmt).astype(np.float64)
    values = values[(values >= 0) & (values <= 1)]
    return tuple(float(v) for v in np.unique(values))


def special_labels(dtype: Any) -> tuple[float, ...]:
    """Boundary labels in ``dtype``: 0, 1, 0.5, labels just below 1 (``1 - 2**-k``), tiny and subnormal ones."""
    return _special_labels(resolve_format(dtype).name)


def special_probs(dtype: Any) -> tuple[float, ...]:
    """Boundary probabilities for ``binary_ce``: the special labels plus the Keras clip points and
    sigmoids of large logits (near 0 and near 1)."""
    fmt = resolve_format(dtype)
    extra = _cast([1e-7, 1 - 1e-7, 1e-15, 1e-30, 1e-40, 1 / (1 + math.exp(20)), 1 / (1 + math.exp(-20))], fmt)
    extra = extra.astype(np.float64)
    values = np.unique(np.concatenate([np.array(special_labels(fmt)), extra[(extra >= 0) & (extra <= 1)]]))
    return tuple(float(v) for v in values)


def _floats(fmt: Format, *, allow_infinity: bool, allow_nan: bool, **bounds: Any) -> st.SearchStrategy[float]:
    width = {"float16": 16, "float32": 32, "float64": 64}.get(fmt.name, 32)
    raw = st.floats(width=width, allow_infinity=allow_infinity, allow_nan=allow_nan, **bounds)
    if fmt.name != "bfloat16":
        return raw

    def to_bfloat16(v: float) -> float:
        r = float(_cast(v, fmt))
        return math.copysign(fmt.max_finite, v) if math.isinf(r) and not math.isinf(v) else r

    return raw.map(to_bfloat16)


def logits(dtype: Any, *, allow_infinity: bool = False, allow_nan: bool = False) -> st.SearchStrategy[float]:
    """Logits representable in ``dtype`` over its whole range, weighted towards :func:`special_logits`."""
    fmt = resolve_format(dtype)
    specials = special_logits(fmt, allow_infinity=allow_infinity, allow_nan=allow_nan)
    moderate = _floats(fmt, allow_infinity=False, allow_nan=False, min_value=-1e4, max_value=1e4)
    anywhere = _floats(fmt, allow_infinity=allow_infinity, allow_nan=allow_nan)
    return st.one_of(st.sampled_from(specials), moderate, anywhere)


def labels(dtype: Any, *, soft: bool = True) -> st.SearchStrategy[float]:
    """Labels in [0, 1] representable in ``dtype``: hard 0/1 only if ``soft`` is False."""
    if not soft:
        return st.sampled_from((0.0, 1.0))
    fmt = resolve_format(dtype)
    uniform = _floats(fmt, allow_infinity=False, allow_nan=False, min_value=0.0, max_value=1.0)
    return st.one_of(st.sampled_from(special_labels(fmt)), uniform)


def probabilities(dtype: Any) -> st.SearchStrategy[float]:
    """Probabilities in [0, 1] representable in ``dtype``, including 0, 1, subnormals and ``1 - 2**-k``."""
    fmt = resolve_format(dtype)
    uniform = _floats(fmt, allow_infinity=False, allow_nan=False, min_value=0.0, max_value=1.0)
    return st.one_of(st.sampled_from(special_probs(fmt)), uniform)


# Inputs of each input domain (oracles._family.INPUT_DOMAINS): the strategy and the boundary values.
_DOMAIN_STRATEGIES = {
    "real": lambda fmt, inf, nan: logits(fmt, allow_infinity=inf, allow_nan=nan),
    "unit": lambda fmt, inf, nan: probabilities(fmt),
}
_DOMAIN_SPECIALS = {
    "real": lambda fmt: special_logits(fmt, allow_infinity=True, allow_nan=True),
    "unit": lambda fmt: special_probs(fmt),
}


def inputs_of(family: str, dtype: Any, *, allow_infinity: bool = False, allow_nan: bool = False) -> st.SearchStrategy[float]:
    """Input values of ``family``'s input domain in ``dtype`` (logits, or probabilities in [0, 1])."""
    fam = oracles.get_family(family)
    return _DOMAIN_STRATEGIES[fam.input_domain](resolve_format(dtype), allow_infinity, allow_nan)


def class_counts(min_value: int = 2, max_value: int = 10_000) -> st.SearchStrategy[int]:
    """Numbers of classes K, mostly small, sometimes up to ``max_value``."""
    return st.one_of(st.integers(min_value, min(8, max_value)), st.integers(min_value, max_value))


def examples(
    family: str,
    dtype: Any,
    *,
    max_classes: int = 64,
    allow_infinity: bool = False,
    allow_nan: bool = False,
    soft: bool = True,
    classes: int | None = None,
) -> st.SearchStrategy[Example]:
    """One example of ``family`` in ``dtype`` (see :class:`Example`); ``classes`` fixes K for row families."""
    fam = oracles.get_family(family)
    fmt = resolve_format(dtype)
    x = inputs_of(family, fmt, allow_infinity=allow_infinity, allow_nan=allow_nan)
    z = labels(fmt, soft=soft)
    if not fam.row_wise:
        return st.builds(lambda a, y: Example(_cast(a, fmt), _cast(y, fmt)), x, z)

    @st.composite
    def row(draw: st.DrawFn) -> Example:
        k = classes if classes is not None else draw(class_counts(1, max_classes))
        values = draw(st.lists(x, min_size=k, max_size=k))
        if fam.label_kind == "index":
            return Example(_cast(values, fmt), np.array(draw(st.integers(0, k - 1)), dtype=np.int64))
        if draw(st.booleans()):  # one-hot or soft distribution
            weights = [0.0] * k
            weights[draw(st.integers(0, k - 1))] = 1.0
        else:
            weights = draw(st.lists(z, min_size=k, max_size=k))
        return Example(_cast(values, fmt), _cast(weights, fmt))

    return row()


def check_label_set(family: str, which: str) -> str:
    """``which`` if it is one of :data:`LABEL_SETS` and applies to ``family``; a one-line ``ValueError`` otherwise."""
    if which not in LABEL_SETS:
        raise ValueError(f"labels={which!r} is not one of: {', '.join(LABEL_SETS)}")
    if which == "soft" and oracles.get_family(family).label_kind == "index":
        raise ValueError(f"labels='soft': {family} takes class indices, which are never soft; pass --labels all")
    return which


def has_labels(example: Example, which: str) -> bool:
    """Whether ``example`` belongs to the label set ``which``: ``hard``, every label 0 or 1 (a class index
    always is); ``soft``, at least one label strictly between 0 and 1; ``all``, any."""
    if which == "all":
        return True
    z = np.asarray(example.labels)
    if z.dtype.kind in "iu":
        return which == "hard"
    values = z.astype(np.float64)
    hard = bool(np.all((values == 0) | (values == 1)))
    return hard if which == "hard" else not hard


def catalogue(family: str, dtype: Any) -> list[Example]:
    """The deterministic boundary catalogue of ``family`` in ``dtype``, always run before random search."""
    fam = oracles.get_family(family)
    fmt = resolve_format(dtype)
    defaults = _catalogue(fam, fmt)
    out = list(defaults)
    # the same boundary inputs again for each other parameter setting the family asks to be covered
    for setting in fam.catalogue_params:
        pairs = param_pairs(fam.check_params(setting))
        out += [Example(e.inputs, e.labels, pairs) for e in defaults]
    return out


def _catalogue(fam: Any, fmt: Format) -> list[Example]:
    xs = _DOMAIN_SPECIALS[fam.input_domain](fmt)
    zs = special_labels(fmt)
    if not fam.row_wise:
        return [Example(_cast(x, fmt), _cast(z, fmt)) for x in xs for z in zs]
    rows: list[Example] = []
    finite = [x for x in xs if math.isfinite(x) and x >= 0]
    for x in finite + [math.inf, math.nan]:
        # Two classes, [x, 0] and [-x, 0] as in sigmoid(x) = softmax([x, 0])[0], then wider rows.
        for row in ([x, 0.0], [-x, 0.0], [x, -x], [x, x, x], [x, 0.0, -x, 1.0]):
            k = len(row)
            values = _cast(row, fmt)
            if fam.label_kind == "index":
                rows.extend(Example(values, np.array(c, dtype=np.int64)) for c in range(k))
            else:
                for z in (0.0, 1.0, 0.9999, 1 - 2.0**-fmt.precision):
                    weights = [z] + [(1 - z) / (k - 1)] * (k - 1)
                    rows.append(Example(values, _cast(weights, fmt)))
    return rows
