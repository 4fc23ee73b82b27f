"""What every loss family shares: its declaration, input checking, and the interval helpers it evaluates with.

A family (one module each: ``_sigmoid_ce``, ``_binary_ce``, ``_softmax_ce``, ``_sparse_softmax_ce``,
``_focal``; registered by one line in :data:`oracles._api.FAMILIES`) is a plugin: one :class:`Family` object
declares everything the rest of lossfuzz asks of it, so that nothing outside its module branches on its name:

- its oracle: :meth:`Family.loss` and :meth:`Family.gradient` (per example, a function of a private interval
  context giving one enclosure per output value, see :mod:`oracles._ziv`), the exact real-valued loss of its
  inputs taken exactly as the floats given, limit values at infinite inputs included; optionally a
  certified fast path (:meth:`Family.fast_loss`);
- its domains: :attr:`Family.input_domain` (``"real"``: logits, any float including ±inf and nan;
  ``"unit"``: probabilities in [0, 1]) and :attr:`Family.label_kind` (``"soft"``: floats in [0, 1];
  ``"index"``: an integer class), :attr:`Family.row_wise`, :attr:`Family.input_name`; the strategies, the
  sweep, the speed inputs and the audit's region descriptions are built from these
  (:meth:`Family.sweep_labels` gives the label settings a sweep plots);
- its regimes (:attr:`Family.regimes`, :meth:`Family.regime`): a documented partition of examples into
  named regimes, decided per example from its inputs, labels, dtype and exact value
  (:meth:`Family.regimes_of`: the same for a whole batch at once, as scoring asks);
- its parameters (:attr:`Family.params`, :class:`Param`): name, type, default, valid range; a family bound to
  values (:meth:`Family.bind`) evaluates with them; :meth:`Family.check_params` gives the one-line error;
  candidates of a parameterised family are called ``fn(inputs, labels, **params)``;
- :attr:`Family.catalogue_params`: the parameter settings the boundary catalogue covers besides the default;
- :attr:`Family.candidates_module`: where its built-in candidates are declared (a dotted name, never
  imported here: oracles knows nothing of harness).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from mpmath import libmp

from ._fast import Estimate
from ._rows import row_all, row_any
from ._ziv import CONVERGED, Enclosure, workprec

__all__ = ["Family", "logits_and_soft_labels", "Param", "Regime", "Evaluator", "INPUT_DOMAINS", "LABEL_KINDS", "SPECIAL", "TINY", "HARD", "SOFT", "CONFIDENT", "ELEMENTWISE_REGIMES", "ROW_REGIMES", "as_float_array", "check_same_shape", "check_unit_interval", "index_text", "log1p", "log", "exp"]

Evaluator = Callable[[Any], Sequence[Enclosure]]

_EXACT_FLOAT_KINDS = {"float16", "bfloat16", "float32", "float64"}

INPUT_DOMAINS = ("real", "unit")  # logits (any float, ±inf and nan included) | probabilities in [0, 1]
LABEL_KINDS = ("soft", "index")  # floats in [0, 1] | an integer class index in [0, K)


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a family: ``name``, ``default``, the closed valid range ``[low, high]`` (``high``
    may be ``inf``: then any finite value at least ``low``), one line of ``doc``, and its ``kind`` (``float``)."""

    name: str
    default: float
    low: float
    high: float = math.inf
    doc: str = ""
    kind: type = float

    @property
    def range_text(self) -> str:
        return f"a finite number >= {self.low:g}" if math.isinf(self.high) else f"a number in [{self.low:g}, {self.high:g}]"

    def check(self, family: str, value: Any) -> float:
        """``value`` as a float if it is valid; a one-line ``ValueError`` naming the range otherwise."""
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not (math.isfinite(number) and self.low <= number <= self.high):
            raise ValueError(f"{family}: {self.name}={value!r} is not valid; pass {self.name} as {self.range_text}")
        return number


@dataclass(frozen=True, slots=True)
class Regime:
    """A named region of a family's examples; ``doc`` says which examples it holds (one line)."""

    name: str
    doc: str


# Regime names shared by the families (each family lists its own in Family.regimes, in precedence order).
SPECIAL = "special"
TINY = "tiny"
CONFIDENT = "confident"
HARD = "hard"
SOFT = "soft"

ELEMENTWISE_REGIMES = (
    Regime(SPECIAL, "an input is +inf, -inf or nan (or a label is nan)"),
    Regime(TINY, "finite inputs whose exact loss is below the smallest normal of the format (0 included)"),
    Regime(HARD, "the rest, with every label 0 or 1"),
    Regime(SOFT, "the rest, with a label strictly between 0 and 1"),
)

# Row families: the same, with confident-correct rows (a loss too small to move the labelled class's
# probability off 1) isolated between tiny and hard/soft.
ROW_REGIMES = (
    Regime(SPECIAL, "a logit is +inf, -inf or nan (or a label is nan)"),
    Regime(TINY, "finite rows whose exact loss is below the smallest normal of the format (0 included)"),
    Regime(CONFIDENT, "confident-correct rows: exact loss at least the smallest normal but below 2**-p (p the"
                      " format's precision), so the labelled class's probability exp(-loss) rounds to 1"),
    Regime(HARD, "the rest, with one-hot labels (a class index, or every label 0 or 1)"),
    Regime(SOFT, "the rest, with a label strictly between 0 and 1"),
)


class Family:
    """A loss family: its declaration (domains, regimes, parameters) and its exact loss and gradient.
    Subclasses fill in the class attributes; the module docstring says what each one means."""

    name: str = ""
    input_name: str = "logits"  # or "probs"
    input_domain: str = "real"  # one of INPUT_DOMAINS
    row_wise: bool = False  # True: the last axis holds the K classes of one example
    label_kind: str = "soft"  # one of LABEL_KINDS: "soft", floats in [0, 1]; "index", integer class in [0, K)
    definition: str = ""
    # Status of the values the fast path decided (that of the Ziv path for the same values).
    fast_status: dict[str, str] = {"loss": CONVERGED, "gradient": CONVERGED}
    # A nan anywhere in an example (an input, or a float label) makes its loss and every gradient component
    # nan: what every family's evaluators return in closed form. True lets a large batch decide those
    # outputs in one pass (oracles._api._settle_all); a family whose nan inputs mean more sets False.
    nan_propagates: bool = True
    regimes: tuple[Regime, ...] = ELEMENTWISE_REGIMES
    params: tuple[Param, ...] = ()
    # Parameter settings the boundary catalogue covers besides the defaults (each a partial mapping).
    catalogue_params: tuple[Mapping[str, float], ...] = ()
    # The values this instance evaluates with (the defaults, unless bound by bind()).
    values: Mapping[str, float] = {}
    # A small batch of ordinary (inputs, labels), as nested tuples: losses of order 0.001 to 3, no extreme or
    # special values, on which any sound implementation is within a few ULP (candidates' smoke tests).
    benign: tuple[tuple, tuple] = ((), ())
    # Whether `lossfuzz run` without --families includes it (False: only when asked for, e.g. a family whose
    # values all take the Ziv path and would lengthen the default run by more than it costs to ask).
    in_default_run: bool = True
    # Gradient provided by the oracle (False: gradient requests are a one-line ValueError).
    has_gradient: bool = True
    # Dotted name of the module declaring the family's built-in candidates (its CANDIDATES tuple), read by
    # harness.candidates; a name only: oracles never imports it. "" for the families whose candidates are
    # declared in harness.candidates._registry itself.
    candidates_module: str = ""

    def __init__(self) -> None:
        self.values = {p.name: p.default for p in self.params}

    # --- parameters -------------------------------------------------------------------------------------
    def check_params(self, params: Mapping[str, Any] | None) -> dict[str, float]:
        """All parameter values (defaults filled in) after checking ``params``; a one-line ``ValueError``
        for an unknown name or a value out of range."""
        given = dict(params or {})
        known = {p.name: p for p in self.params}
        for key in given:
            if key not in known:
                choices = ", ".join(known) if known else "none (it has no parameters)"
                raise ValueError(f"{self.name}: parameter {key!r} is not one of: {choices}")
        return {p.name: p.check(self.name, given[p.name]) if p.name in given else p.default for p in self.params}

    def bind(self, params: Mapping[str, Any] | None) -> "Family":
        """This family evaluating with ``params`` (checked; defaults for the rest): ``self`` if they are
        the defaults, else a copy."""
        values = self.check_params(params)
        if values == self.values:
            return self
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound.values = values
        return bound

    def params_text(self, values: Mapping[str, float] | None = None) -> str:
        """``gamma=2`` style text of the values (this instance's by default), ``""`` without parameters."""
        values = self.values if values is None else values
        return ", ".join(f"{p.name}={float(values[p.name]):g}" for p in self.params)

    # --- regimes ----------------------------------------------------------------------------------------
    def regime(self, inputs: Any, labels: Any, dtype: Any, exact: Any) -> str:
        """The regime (a name from :attr:`regimes`) of one example: ``inputs`` and ``labels`` as given (a
        scalar, or a row for row families; a class index for index labels), ``exact`` its exact loss
        (``mpmath.mpf``, Fraction or float). Precedence: special, tiny, then :meth:`_finite_regime`."""
        from ._formats import resolve_format

        x = np.asarray(inputs).astype(np.float64)
        z = np.asarray(labels)
        if not np.isfinite(x).all() or (z.dtype.kind != "i" and z.dtype.kind != "u" and np.isnan(z.astype(np.float64)).any()):
            return SPECIAL
        value = float(exact)
        fmt = resolve_format(dtype)
        if value < fmt.min_normal:
            return TINY
        return self._finite_regime(z, value, fmt)

    def regimes_of(self, inputs: Any, labels: Any, dtype: Any, rounded: Any, exact: Any = None) -> np.ndarray:
        """The regime of each of ``n`` examples at once, as :meth:`regime` decides it (the same partition,
        vectorised: no Python loop over the examples). Returns an array of ``n`` regime names: those of
        :meth:`regime_codes_of`, which says how they are decided."""
        return self.regime_names(self.regime_codes_of(inputs, labels, dtype, rounded, exact))

    def regime_names(self, codes: np.ndarray) -> np.ndarray:
        """The regime names of regime codes (indices in :attr:`regimes`, as :meth:`regime_codes_of` gives)."""
        return np.array([r.name for r in self.regimes])[codes]

    def regime_codes_of(self, inputs: Any, labels: Any, dtype: Any, rounded: Any, exact: Any = None) -> np.ndarray:
        """:meth:`regimes_of` as codes: each example's regime as its index in :attr:`regimes` (int8), for
        millions of examples (a sweep's chunk) where an array of names would cost 28 bytes an example.

        ``inputs`` and ``labels``: the examples stacked along the first axis (``n`` scalars, rows, or class
        indices; a reduced batch is passed as one example: ``inputs[None]``, ``labels[None]``); ``rounded``:
        the ``n`` exact losses correctly rounded to ``dtype`` (any shape of ``n`` values); ``exact``: the
        ``n`` exact values (``mpmath.mpf``, Fraction or float; or a ground-truth record, whose ``exact`` is
        then made only if needed; optional), read only where ``rounded`` cannot
        decide a threshold. Why ``rounded`` decides the rest: the thresholds ``t`` (the format's smallest
        normal, and ``2**-p``) are numbers of the format and rounding to nearest is monotone and leaves
        them fixed, so ``rounded < t`` implies ``exact < t`` and ``rounded > t`` implies ``exact > t``; only
        ``rounded == t`` (an exact value a hair below ``t`` rounds up to it) and nan placeholders need the
        exact value. Without ``exact`` those count as not below ``t``."""
        from ._formats import resolve_format

        fmt = resolve_format(dtype)
        value = np.asarray(rounded, dtype=np.float64).ravel()
        n = value.size
        code = {r.name: np.int8(i) for i, r in enumerate(self.regimes)}
        if n == 0:
            return np.empty(0, dtype=np.int8)
        x = np.asarray(inputs, dtype=np.float64)  # (no copy of a record's float64 inputs: nothing is written)
        x = x.reshape(n, x.size // n)
        z = np.asarray(labels)
        index_labels = z.dtype.kind in "iu"
        zs = None if index_labels else np.asarray(z, dtype=np.float64).reshape(n, z.size // n)
        special = ~row_all(np.isfinite(x))
        if zs is not None:
            special |= row_any(np.isnan(zs))
        has_confident = any(r.name == CONFIDENT for r in self.regimes)
        thresholds = (fmt.min_normal, 2.0**-fmt.precision) if has_confident else (fmt.min_normal,)
        below = []
        for t in thresholds:
            with np.errstate(invalid="ignore"):
                is_below = value < t
            # (special examples are classed special whatever their value: their exact value is not asked)
            undecided = np.flatnonzero(((value == t) | np.isnan(value)) & ~special)
            if exact is not None and undecided.size:  # the few values rounding cannot place: as regime() does
                flat = np.ravel(np.asarray(getattr(exact, "exact", exact), dtype=object))
                is_below[undecided] = [float(flat[i]) < t for i in undecided]
            below.append(is_below)
        if index_labels:
            out = np.full(n, code[HARD])
        else:
            out = np.where(row_all((zs == 0) | (zs == 1)), code[HARD], code[SOFT])
        if has_confident:
            out[below[1]] = code[CONFIDENT]
        out[below[0]] = code[TINY]
        out[special] = code[SPECIAL]
        return out

    def _finite_regime(self, z: np.ndarray, value: float, fmt: Any) -> str:
        if value < 2.0**-fmt.precision and any(r.name == CONFIDENT for r in self.regimes):
            return CONFIDENT
        if z.dtype.kind in "iu":
            return HARD
        zs = z.astype(np.float64)
        return HARD if bool(np.all((zs == 0) | (zs == 1))) else SOFT

    # --- strategies' hooks ------------------------------------------------------------------------------
    def sweep_labels(self) -> tuple[tuple[str, Any], ...]:
        """The label settings a sweep plots, as (caption, label value): a hard label (1, so negative
        logits are confidently wrong) and a soft one near 1; class 0 of ``[x, 0]`` for index labels."""
        if self.label_kind == "index":
            return (("class 0 of [x, 0]", 0),)
        return (("z = 1", 1.0), ("z = 0.9999", 0.9999))

    def prepare(self, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """Check and convert the inputs; return (float64 inputs, labels) or raise a one-line ValueError."""
        raise NotImplementedError

    def batch_shape(self, inputs: np.ndarray) -> tuple[int, ...]:
        """Shape of the per-example losses (``reduction='none'``)."""
        return inputs.shape[:-1] if self.row_wise else inputs.shape

    def loss(self, x: Any, z: Any) -> Evaluator:
        """Evaluator of the loss of one example (one output)."""
        raise NotImplementedError

    def gradient(self, x: Any, z: Any) -> Evaluator:
        """Evaluator of the gradient of one example's loss with respect to its inputs (one output per input)."""
        raise NotImplementedError

    def fast_loss(self, x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate | None:
        """Float64 estimates of the per-example losses of a batch, with error bounds (see
        :mod:`oracles._fast`), double-double ones if ``precise`` (float64 targets); ``None``: no fast
        path, every value goes to the Ziv path."""
        return None

    def fast_gradient(self, x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate | None:
        """Estimates of the gradient components of a batch (shape of ``x``), as :meth:`fast_loss`."""
        return None

    def __repr__(self) -> str:
        text = self.params_text()
        return f"<family {self.name}{' ' + text if text else ''}>"


def logits_and_soft_labels(family: str, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """``prepare`` of the elementwise families on logits (sigmoid_ce, focal): float64 logits and labels of
    one shape, labels in [0, 1]; a one-line ValueError naming ``family`` otherwise."""
    x = as_float_array(family, "logits", inputs)
    z = as_float_array(family, "labels", labels)
    check_same_shape(family, "logits", x, "labels", z)
    check_unit_interval(family, "labels", z, "labels are probabilities of the positive class")
    return x, z


def as_float_array(family: str, name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array holding exactly the values given; integers must be exact in float64."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{family}: {name} could not be read as an array ({exc}); pass a numeric array") from None
    kind = arr.dtype.name
    if kind in _EXACT_FLOAT_KINDS:
        with np.errstate(invalid="ignore"):  # ml_dtypes flags widening a nan as invalid: the cast is exact
            return arr.astype(np.float64)
    if arr.dtype.kind in "iub":
        out = arr.astype(np.float64)
        if arr.dtype.kind != "b" and arr.size and not np.array_equal(out.astype(arr.dtype), arr):
            raise ValueError(f"{family}: {name} holds integers not exact in float64; pass floats")
        return out
    raise ValueError(
        f"{family}: {name} has dtype {arr.dtype.name!r}; pass float16, bfloat16, float32, float64 or integers"
    )


def index_text(shape: tuple[int, ...], flat: int) -> str:
    return "[" + ", ".join(str(i) for i in np.unravel_index(flat, shape)) + "]" if shape else ""


def check_unit_interval(family: str, name: str, arr: np.ndarray, meaning: str) -> None:
    """Raise ``ValueError`` naming the first value of ``arr`` outside [0, 1] (nan is allowed: it propagates)."""
    bad = np.flatnonzero((arr < 0) | (arr > 1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{family}: {name}{index_text(arr.shape, i)} = {float(arr.flat[i])!r} is outside [0, 1]"
            f" ({bad.size} such value{'s' if bad.size > 1 else ''}); {meaning}"
        )


def check_same_shape(family: str, a_name: str, a: np.ndarray, b_name: str, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{family}: {a_name} shape {a.shape} differs from {b_name} shape {b.shape}; pass arrays of one shape"
        )


def log1p(ctx: Any, t: Any) -> Any:
    """Rigorous enclosure of ``log(1 + t)`` for an interval ``t`` in ``(-1/2, inf)`` not straddling 0.

    For ``|t| < 2**-prec`` the series gives ``t - t**2 <= log1p(t) <= t``; otherwise ``1 + t`` is formed
    with enough extra bits that the logarithm keeps the context's relative accuracy.
    """
    if t.a == 0 and t.b == 0:
        return ctx.mpf(0)
    prec = ctx.prec
    mag = ctx.mag(max(abs(t.a), abs(t.b)))
    if mag < -prec:
        return ctx.mpf([(t - t * t).a, t.b])
    with workprec(ctx, prec + max(0, -mag) + 16):
        return log(ctx, 1 + t)


def exp(ctx: Any, t: Any) -> Any:
    """Rigorous enclosure of ``exp(t)`` for an interval ``t``: mpmath's, widened by two units in the last place.

    mpmath's ``mpf_exp`` rounds an approximation carrying a few guard bits in the requested direction; when
    that approximation happens to be representable it is returned as exact for both directions, so the
    interval ``exp`` is a point that misses the true value. This is systematic for tiny arguments, where
    ``exp(-t)`` is ``1 - t`` up to a ``t**2/2`` below the guard bits (a ``sigmoid_ce`` gradient at a subnormal
    logit with label 1/2, ``x/4`` plus a tiny cubic term, was rounded to the wrong side of a midpoint).
    ``exp(0) = 1`` stays exact.
    """
    if ctx.prec > 600 and _huge_integer_end(t):
        return _exp_reduced(ctx, t)
    e = ctx.exp(t)
    if t.a == 0 and t.b == 0:
        return e
    return _widened(ctx, e)


def _huge_integer_end(t: Any) -> bool:
    """Whether an end of the interval ``t`` is an integer of magnitude ``2**64`` or more."""
    return any(man and exp >= 0 and exp + bc > 64 for _sign, man, exp, bc in t._mpi_)


def _exp_reduced(ctx: Any, t: Any) -> Any:
    """:func:`exp` of an interval with a huge integer end, as ``2**k * exp(t - k ln 2)``. Above 600 bits
    mpmath's ``mpf_exp`` raises e to an integer argument's power by repeated squaring: 6.1 ms for
    ``t = -1.8e308`` at 1536 bits (rows of huge float64 logits ask for that), against 0.18 ms this way,
    with the same relative width; from ``2**64`` up this way is the faster. Rigour: ``t - k ln 2`` is
    evaluated at ``mag(t) + 20`` bits more than the working precision (``k`` and ``t`` exact there, ``ln 2``
    an enclosure, outward rounding), its ``exp`` is widened as :func:`exp`'s, and ``2**k`` is exact."""
    end = max((e for e in t._mpi_ if e[1]), key=lambda e: e[2] + e[3])  # the end of larger magnitude
    magnitude = end[2] + end[3]  # exponent + bit count of an mpf tuple (sign, mantissa, exponent, bits)
    k = int(libmp.to_int(libmp.mpf_div(end, libmp.mpf_ln2(64), 64, libmp.round_nearest)))  # any k is rigorous
    with workprec(ctx, ctx.prec + magnitude + 20):
        reduced = t - k * ctx.ln2
    return _widened(ctx, ctx.exp(reduced)) * ctx.mpf(libmp.from_man_exp(1, k))


def log(ctx: Any, t: Any) -> Any:
    """Rigorous enclosure of ``log(t)`` for an interval ``t > 0``: mpmath's, widened like :func:`exp` (its
    ``mpf_log`` rounds a guard-bit approximation the same way). ``log(1) = 0`` stays exact."""
    value = ctx.log(t)
    if t.a == 1 and t.b == 1:
        return value
    return _widened(ctx, value)


def _widened(ctx: Any, value: Any) -> Any:
    """``value`` times ``[1 - 2**(1-prec), 1 + 2**(1-prec)]`` (outward-rounded)."""
    factor = _WIDENING.get((id(ctx), ctx.prec))
    if factor is None:  # the same interval at each precision: made once (it keeps its context alive)
        factor = _WIDENING[(id(ctx), ctx.prec)] = 1 + ctx.mpf([-1, 1]) * ctx.mpf(2) ** (1 - ctx.prec)
    return value * factor


_WIDENING: dict = {}
