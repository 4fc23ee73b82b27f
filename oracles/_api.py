"""The oracle's entry points: the ground-truth record and the functions built on it."""

from __future__ import annotations

import functools
import importlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import mpmath
import numpy as np

from mpmath import libmp

from . import _fast
from ._family import Evaluator, Family
from ._formats import Format, resolve_format
from ._rows import row_all, row_any
from ._ulp import EstimateFrame, estimate_frame
from ._ziv import NAN, START_PRECISION, UNCONVERGED, Settled, interval_context, settle, workprec

__all__ = ["FAMILIES", "REDUCTIONS", "Truth", "OracleUnconverged", "get_family", "family_names", "default_families", "evaluate", "loss", "gradient", "exact", "format_exact"]

# Registry: family name -> "module:attribute" of its definition (a :class:`oracles._family.Family`), imported
# on first use. One line per family; every list of family names in lossfuzz (help and error texts, defaults,
# the candidate registry's order) comes from here.
FAMILIES: dict[str, str] = {
    "sigmoid_ce": "oracles._sigmoid_ce:FAMILY",
    "binary_ce": "oracles._binary_ce:FAMILY",
    "softmax_ce": "oracles._softmax_ce:FAMILY",
    "sparse_softmax_ce": "oracles._sparse_softmax_ce:FAMILY",
    "focal": "oracles._focal:FAMILY",
}
REDUCTIONS = ("none", "sum", "mean")
_WHAT = ("loss", "gradient")
_PATHS = ("auto", "ziv")


class OracleUnconverged(ArithmeticError):
    """The oracle could not decide a rounding below its precision cap; nothing was guessed."""


def get_family(name: str, params: Any = None) -> Family:
    """The family definition registered under ``name`` (``ValueError`` naming the known ones otherwise),
    bound to ``params`` (a mapping of its parameters; defaults for those not given) when given."""
    path = FAMILIES.get(name) if isinstance(name, str) else None
    if path is None:
        raise ValueError(f"family={name!r} is not one of: {', '.join(FAMILIES)}")
    family = _load(path)
    return family if params is None else family.bind(params)


@functools.cache
def _load(path: str) -> Family:
    """The family object at ``module:attribute``, imported on first use (the scorer asks for a family per
    batch: the path is resolved once, not on every call)."""
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


def default_families() -> tuple[str, ...]:
    """The families a run covers unless told otherwise (``Family.in_default_run``), in registry order."""
    return tuple(n for n in FAMILIES if get_family(n).in_default_run)


def family_names(**declared: Any) -> str:
    """The registered family names as text for help and error messages (``"a, b, c"``), in registry order;
    with ``declared`` (e.g. ``input_name="logits"``), only the families whose declaration has those values."""
    return ", ".join(n for n in FAMILIES if all(getattr(get_family(n), k) == v for k, v in declared.items()))


@dataclass(frozen=True, slots=True, eq=False)
class Truth:
    """Ground truth for one evaluation: the points and their exact, correctly rounded values.

    ``inputs``/``labels``: the points, as the float64 (or integer) arrays that were evaluated;
    ``rounded``: correctly rounded values in ``dtype`` (nan placeholders where ``status`` is
    ``unconverged``); ``exact``: object array of ``mpmath.mpf``: on the Ziv path the exact values (closed
    forms) or the midpoints of enclosures narrower than ``2**-70`` relative, on the fast path the
    estimate, inside the certified enclosure (relative error below ``2**-40`` for float16/bfloat16/float32,
    ``2**-80`` for float64: enough for ULP errors, not for 20 digits; :meth:`exact_value` gives those); ``status``: ``exact``, ``converged``, ``nan`` or
    ``unconverged`` per value; ``precision``: working bits at which each value settled (0: closed form,
    53: the fast path's, float64 or double-double); ``fast``: True where the fast path decided the value;
    ``approx + approx_low``: the fast path's estimate there (float64, or double-double for float64
    targets and the narrow formats' second tier; nan elsewhere), in the exact value's binade, for
    vectorised ULP errors.

    ``exact`` is made on first access: building an ``mpmath.mpf`` per fast value costs about 3 us each,
    ten times the fast path itself, and vectorised users (ULP errors, regimes, sweeps) never need them;
    ``settled_exact`` holds the Ziv path's values alone (None where the fast path decided).
    """

    family: str
    what: str
    dtype: str
    reduction: str
    inputs: np.ndarray
    labels: np.ndarray
    rounded: np.ndarray
    settled_exact: np.ndarray  # object array: the Ziv path's exact values, None where ``fast``
    status: np.ndarray
    precision: np.ndarray
    fast: np.ndarray
    approx: np.ndarray
    approx_low: np.ndarray
    params: dict = None  # type: ignore[assignment]  # the family's parameter values ({} without parameters)
    _exact: Any = None  # the whole object array of exact values, once ``exact`` made it
    _frames: Any = None  # {format name: EstimateFrame}, once ``estimate_frame`` made them

    @property
    def exact(self) -> np.ndarray:
        """Object array of ``mpmath.mpf``: the Ziv path's values and the fast path's estimates (see above)."""
        if self._exact is None:
            values = self.settled_exact.copy().reshape(-1)
            fast = np.ravel(self.fast)
            make = mpmath.mp.make_mpf
            from_float = libmp.from_float
            for i, hi, low in zip(np.flatnonzero(fast).tolist(), np.ravel(self.approx)[fast].tolist(),
                                  np.ravel(self.approx_low)[fast].tolist()):
                values[i] = make(from_float(hi) if low == 0.0 else libmp.mpf_add(from_float(hi), from_float(low), 128))
            object.__setattr__(self, "_exact", values.reshape(self.settled_exact.shape))
        return self._exact

    @property
    def path_counts(self) -> dict[str, int]:
        """How many values each path decided: ``{"fast": ..., "ziv": ...}``."""
        fast = int(np.count_nonzero(self.fast))
        return {"fast": fast, "ziv": int(self.fast.size) - fast}

    def estimate_frame(self, fmt: Any) -> EstimateFrame:
        """What measuring a candidate over whole arrays needs of this record alone (the float copies of its
        values, their binades, the ordinals of their roundings: :class:`oracles._ulp.EstimateFrame`), made
        on first use and kept: a sweep measures many candidates against one record."""
        fmt = resolve_format(fmt)
        if self._frames is None:
            object.__setattr__(self, "_frames", {})
        if fmt.name not in self._frames:
            self._frames[fmt.name] = estimate_frame(self, fmt)
        return self._frames[fmt.name]

    def exact_value(self, index: Any) -> Any:
        """The exact value at ``index`` (a tuple, or a flat int) as ``mpmath.mpf``, from the Ziv path: within
        ``2**-70`` relative (20 correct digits), re-evaluated on demand where the fast path decided it."""
        flat = int(index) if isinstance(index, (int, np.integer)) else int(np.ravel_multi_index(index, self.fast.shape)) if self.fast.shape else 0
        if not np.ravel(self.fast)[flat]:
            return np.ravel(self.settled_exact)[flat]
        fam = get_family(self.family, self.params)
        if self.reduction != "none" and self.what == "loss":
            x, z = self.inputs, self.labels
            pick = 0
        else:
            batch = fam.batch_shape(self.inputs)
            width = self.inputs.shape[-1] if (fam.row_wise and self.what == "gradient") else 1
            example = np.unravel_index(flat // width, batch) if batch else ()
            x, z = self.inputs[example][None], self.labels[example][None]
            pick = flat % width
        again = _evaluate(self.family, **{fam.input_name: x}, labels=z, dtype=self.dtype, what=self.what,
                          reduction=self.reduction if self.what == "loss" else "none", path="ziv", params=self.params)
        value = np.ravel(again.exact)[pick]
        if self.what == "gradient" and self.reduction == "mean":  # the row's gradient, scaled exactly enough
            with mpmath.workprec(256):
                value = value / int(np.prod(fam.batch_shape(self.inputs), dtype=np.int64))
        return value

    @property
    def converged(self) -> np.ndarray:
        """Boolean mask of values whose rounding is decided (``status != 'unconverged'``)."""
        return self.status != UNCONVERGED

    @property
    def unconverged(self) -> int:
        return int((self.status == UNCONVERGED).sum())

    def raise_if_unconverged(self) -> None:
        bad = np.argwhere(self.status == UNCONVERGED)
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            raise OracleUnconverged(
                f"{self.family} {self.what} at index {where}: rounding to {self.dtype} not decided at"
                f" {int(self.precision[where])} bits ({len(bad)} value(s)); oracles.evaluate() returns the rest"
            )


def _scale(enclosure: Any, n: int) -> Any:
    """``enclosure / n``: exact for fractions, outward-rounded for intervals, unchanged for nan and ±inf."""
    return enclosure if isinstance(enclosure, float) else enclosure / n


def _sum(enclosures: list, ctx: Any) -> Any:
    """Sum of non-negative per-example losses: nan wins, then +inf, else exact part plus interval part."""
    exact = Fraction(0)
    interval = None
    has_inf = False
    for enc in enclosures:
        if isinstance(enc, float):
            if enc != enc:
                return enc
            has_inf = True
        elif isinstance(enc, Fraction):
            exact += enc
        else:
            interval = enc if interval is None else interval + enc
    if has_inf:
        return float("inf")
    if interval is None:
        return exact
    if exact:
        interval = interval + ctx.mpf(exact.numerator) / exact.denominator
    return interval


def _reduced_loss(evaluators: list[Evaluator], reduction: str) -> Evaluator:
    n = len(evaluators)

    def evaluate(ctx: Any) -> list:
        total = _sum([ev(ctx)[0] for ev in evaluators], ctx)
        return [_scale(total, n) if reduction == "mean" else total]

    return evaluate


def _scaled(evaluator: Evaluator, n: int) -> Evaluator:
    return lambda ctx: [_scale(enc, n) for enc in evaluator(ctx)]


def evaluate(
    family: str,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any,
    dtype: Any,
    reduction: str = "none",
    what: str = "loss",
    params: Any = None,
) -> Truth:
    """Exact, correctly rounded values of a family's loss (or gradient) at the given points, as a record.

    ``family``: a name from :data:`FAMILIES`; pass ``logits=`` or ``probs=`` as the family takes them
    (``binary_ce`` takes ``probs``). ``dtype``: float16, bfloat16, float32 or float64. ``reduction``:
    ``none`` (one value per example), ``sum`` or ``mean`` (the exact sum or mean of the exact per-example
    losses, rounded once; for gradients, the gradient of that reduced loss). ``what``: ``loss`` or
    ``gradient`` (shape of the inputs). Unconverged values are marked, not raised: see :class:`Truth`.
    Values are decided by the certified fast path where its error bound allows, by Ziv's strategy
    otherwise (:mod:`oracles._fast`); ``Truth.fast`` and ``Truth.path_counts`` say which. ``params``: the
    family's parameters (e.g. ``{"gamma": 2.0}`` for ``focal``; defaults for those not given; a one-line
    ``ValueError`` for an unknown name or a value out of range).
    """
    return _evaluate(family, logits=logits, probs=probs, labels=labels, dtype=dtype, reduction=reduction, what=what, params=params)


def _evaluate(
    family: str,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any,
    dtype: Any,
    reduction: str = "none",
    what: str = "loss",
    path: str = "auto",
    params: Any = None,
) -> Truth:
    """:func:`evaluate` with the path forced: ``auto`` (fast path first) or ``ziv`` (Ziv's strategy only)."""
    fam, fmt = _checked(family, dtype, reduction, what, path, params)
    x, z = fam.prepare(_given_inputs(fam, logits, probs), labels)
    batch = fam.batch_shape(x)
    if reduction == "mean" and int(np.prod(batch, dtype=np.int64)) == 0:
        raise ValueError(f"{fam.name}: reduction='mean' over an empty batch is undefined; pass at least one example")
    return _record(fam, what, fmt, reduction, x, z, _settle_all(fam, what, fmt, reduction, x, z, path))


def _checked(family: str, dtype: Any, reduction: str, what: str, path: str, params: Any = None) -> tuple[Family, Format]:
    fam = get_family(family, params if params is not None else {})
    fmt = resolve_format(dtype)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of: {', '.join(REDUCTIONS)}")
    if what not in _WHAT:
        raise ValueError(f"what={what!r} is not one of: {', '.join(_WHAT)}")
    if path not in _PATHS:
        raise ValueError(f"path={path!r} is not one of: {', '.join(_PATHS)}")
    if what == "gradient" and not fam.has_gradient:
        raise ValueError(f"{fam.name}: the oracle provides no gradient for this family; ask for the loss")
    return fam, fmt


def _given_inputs(fam: Family, logits: Any, probs: Any) -> Any:
    given = {"logits": logits, "probs": probs}
    other = "probs" if fam.input_name == "logits" else "logits"
    if given[other] is not None:
        raise ValueError(f"{fam.name} takes {fam.input_name}=, not {other}=; pass {fam.input_name}=...")
    if given[fam.input_name] is None:
        raise ValueError(f"{fam.name} needs {fam.input_name}=...; pass the {fam.input_name} array")
    return given[fam.input_name]


@dataclass
class _Outputs:
    """Settled values in row-major order of the output shape: from the fast path (``fast`` True, ``approx``
    plus ``approx_low`` the estimate, status the family's) or from :func:`settle` (``settled``)."""

    shape: tuple
    rounded: np.ndarray
    fast: np.ndarray
    approx: np.ndarray
    approx_low: np.ndarray
    settled: dict[int, Settled]
    fast_status: str
    # outputs decided nan in closed form over whole arrays (an example with a nan anywhere: the families'
    # rule, ``Family.nan_propagates``), as the Ziv path's closed form would settle each; None: none
    nan: np.ndarray | None = None


# The widest single float64 example (row) sent to the Ziv path first (see _settle_all).
_ZIV_FIRST_MAX_WIDTH = 12


def _settle_all(fam: Family, what: str, fmt: Format, reduction: str, x: np.ndarray, z: np.ndarray, path: str) -> _Outputs:
    """Decide every output value: the fast path in chunks where it certifies, the Ziv path for the rest."""
    batch = fam.batch_shape(x)
    n = int(np.prod(batch, dtype=np.int64))
    width = x.shape[-1] if fam.row_wise else 1
    # A double-double evaluation (float64 targets) has a fixed cost of dozens of numpy calls: on a single
    # example the Ziv path settles a typical value in about half that time (the search asks one at a time),
    # but its cost grows with a row's width: one float64 softmax row of 50 classes took 8.0 ms on the Ziv
    # path against 2.7 ms on the fast one, of 8 classes 1.8 against 2.4 (200 random rows, `_evaluate(..., path="ziv")` against the fast path on a
    # two-row batch, on a loaded machine). In the default run single wide rows took 11 ms each on the Ziv path.
    ziv_first = fmt.precision == 53 and n == 1 and width <= _ZIV_FIRST_MAX_WIDTH
    use_fast = path == "auto" and _fast.has_fast_path(fmt) and not ziv_first
    status = fam.fast_status[what]
    if what == "loss" and reduction != "none":
        out = _Outputs((), np.full(1, np.nan), np.zeros(1, dtype=bool), np.full(1, np.nan), np.zeros(1), {}, status)
        estimate = _fast.reduced_estimate(fam, x, z, reduction, fmt, _closed_form_loss(fam, x, z, batch)) if use_fast and n else None
        if isinstance(estimate, float):  # a nan or +inf term decides the reduced value: the Ziv path's limit
            out.settled[0] = settle(lambda ctx: [estimate], 1, fmt)[0]
            out.rounded[0] = out.settled[0].rounded
            return out
        if estimate is not None:
            rounded, accepted = _fast.certify(estimate, fmt)
            if accepted[0]:
                out.rounded[0], out.fast[0], out.approx[0] = rounded[0], True, _fast.approximation(estimate)[0]
                out.approx_low[0] = 0.0 if estimate.low is None else estimate.low[0]
                return out
        evaluators = [fam.loss(x[idx], z[idx]) for idx in np.ndindex(batch)]
        out.settled[0] = settle(_reduced_loss(evaluators, reduction), 1, fmt)[0]
        out.rounded[0] = out.settled[0].rounded
        return out
    shape = batch if what == "loss" else x.shape
    size = n * (1 if what == "loss" else width)
    # the fast path writes each of these arrays span by span: they are filled (nan, False, nan, 0) only
    # past the last span it wrote (a million values' fills cost as much as certifying a tenth of them)
    out = _Outputs(shape, np.empty(size), np.empty(size, dtype=bool), np.empty(size), np.empty(size), {}, status)
    written = 0
    xs = x.reshape(n, width) if fam.row_wise else x.reshape(n)
    zs = z.reshape(n, width) if (fam.row_wise and fam.label_kind == "soft") else z.reshape(n)
    per = 1 if what == "loss" else width  # outputs per example
    undecided = np.ones(n, dtype=bool)
    divisor = n if reduction == "mean" else 1  # (a mean's gradient: a loss's mean returned above)
    # narrow formats: the examples the float64 tier finds eligible and leaves undecided go to the double-double tier
    near_midpoint = np.zeros(n, dtype=bool) if use_fast and fmt.precision < 53 else None
    if use_fast:
        step = max(1, _fast.CHUNK // width)
        for start in range(0, n, step):
            stop = min(n, start + step)
            estimate = _fast.estimate(fam, what, xs[start:stop], zs[start:stop], fmt, divisor)
            if estimate is None:
                break
            rounded, accepted = _fast.certify(estimate, fmt)
            accepted = accepted.reshape(stop - start, per)
            whole = row_all(accepted)  # an example's outputs are decided together (a gradient row)
            if near_midpoint is not None and not whole.all():
                eligible = np.broadcast_to(estimate.eligible, np.shape(estimate.value)).reshape(stop - start, per)
                near_midpoint[start:stop] = row_all(eligible) & ~whole
            span = slice(start * per, stop * per)
            out.rounded[span] = rounded.reshape(-1)
            out.approx[span] = _fast.approximation(estimate).reshape(-1)
            out.approx_low[span] = 0.0 if estimate.low is None else estimate.low.reshape(-1)
            written = stop * per
            if whole.all():  # (typical of a large batch: no masked copies)
                out.fast[span] = True
            else:
                keep = np.repeat(whole, per)
                out.fast[span] = keep
                for a, fill in ((out.rounded, np.nan), (out.approx, np.nan), (out.approx_low, 0.0)):
                    a[span][~keep] = fill
            undecided[start:stop] = ~whole
    for a, fill in ((out.rounded, np.nan), (out.fast, False), (out.approx, np.nan), (out.approx_low, 0.0)):
        a[written:] = fill
    if use_fast:
        if fam.nan_propagates and undecided.any():
            # the undecided examples with a nan anywhere (a sweep's 2**24 nan patterns): nan, status NAN, in
            # one pass, where the Ziv path would reach the same closed form one example at a time
            rows = row_any(np.isnan(xs.reshape(n, -1)))
            if fam.label_kind != "index":
                rows |= row_any(np.isnan(zs.reshape(n, -1)))
            rows &= undecided
            if rows.any():
                out.nan = np.repeat(rows, per) if per > 1 else rows
                undecided &= ~rows
        if near_midpoint is not None and near_midpoint.any():
            _decide_near_midpoints(fam, what, fmt, xs, zs, divisor, per, np.flatnonzero(near_midpoint & undecided),
                                   out, undecided)
    for i in np.flatnonzero(undecided):
        idx = np.unravel_index(i, batch) if batch else ()
        for k, s in enumerate(_settle_example(fam, what, fmt, x[idx], z[idx], divisor)):
            out.settled[int(i) * per + k] = s
    for i, s in out.settled.items():
        out.rounded[i] = s.rounded
    return out


def _decide_near_midpoints(fam: Family, what: str, fmt: Format, xs: np.ndarray, zs: np.ndarray, divisor: int,
                           per: int, examples: np.ndarray, out: _Outputs, undecided: np.ndarray) -> None:
    """The narrow formats' second tier (:mod:`oracles._fast`, "Midpoints"): ``examples`` (flat indices) that
    the float64 tier found eligible but left undecided, evaluated in double-double and certified by
    :func:`oracles._fast.certify_double_double`; the decided ones are written into ``out`` (status and
    precision of the fast path, ``hi + lo`` as the approximation) and cleared from ``undecided``."""
    step = max(1, _fast.CHUNK // max(per, 1))
    for begin in range(0, examples.size, step):
        picked = examples[begin:begin + step]
        estimate = _fast.estimate(fam, what, xs[picked], zs[picked], fmt, divisor, precise=True)
        if estimate is None:
            return
        rounded, accepted, approx_hi, approx_lo = _fast.certify_double_double(estimate, fmt)
        whole = row_all(accepted.reshape(picked.size, per))
        if not whole.any():
            continue
        done = picked[whole]
        at = (done[:, None] * per + np.arange(per)).ravel()  # the outputs of the decided examples
        keep = np.repeat(whole, per)
        out.rounded[at] = rounded.reshape(-1)[keep]
        out.approx[at] = approx_hi.reshape(-1)[keep]
        out.approx_low[at] = approx_lo.reshape(-1)[keep]
        out.fast[at] = True
        undecided[done] = False


def _closed_form_loss(fam: Family, x: np.ndarray, z: np.ndarray, batch: tuple) -> Callable[[int], Any]:
    """For the fast reduced path: the loss of example ``i`` (flat index) when the Ziv path has it in closed
    form at its first precision (a ``Fraction``, or a float nan or ``±inf``), else ``None``."""
    ctx = interval_context()

    def closed_form(i: int) -> Any:
        idx = np.unravel_index(i, batch) if batch else ()
        with workprec(ctx, START_PRECISION):
            value = fam.loss(x[idx], z[idx])(ctx)[0]
        return value if isinstance(value, (Fraction, float)) else None

    return closed_form


_HARD: OrderedDict = OrderedDict()  # example -> settled values, for examples that took many bits
_HARD_PRECISION = 384
_HARD_ENTRIES = 4096
_hard_lock = threading.Lock()


def _settle_example(fam: Family, what: str, fmt: Format, x: Any, z: Any, divisor: int) -> list[Settled]:
    """The Ziv path for one example (its loss, or its gradient row divided by ``divisor``). Examples that
    needed at least 384 bits are remembered (LRU, 4096 examples): a campaign asks for the same boundary
    examples in many batches, and the values are a pure function of the example."""
    key = (fam.name, fam.params_text(), what, fmt.name, divisor, np.asarray(x).tobytes(), np.asarray(z).tobytes())
    with _hard_lock:
        hit = _HARD.get(key)
        if hit is not None:
            _HARD.move_to_end(key)
            return hit
    if what == "loss":
        settled = settle(fam.loss(x, z), 1, fmt)
    else:
        ev = fam.gradient(x, z)
        settled = settle(_scaled(ev, divisor) if divisor != 1 else ev, np.asarray(x).size if fam.row_wise else 1, fmt)
    if max(s.precision for s in settled) >= _HARD_PRECISION:
        with _hard_lock:
            _HARD[key] = settled
            while len(_HARD) > _HARD_ENTRIES:
                _HARD.popitem(last=False)
    return settled


def _record(fam: Family, what: str, fmt: Format, reduction: str, x, z, out: _Outputs) -> Truth:
    size = out.rounded.size
    shape = out.shape
    exact_values = np.empty(size, dtype=object)  # the fast values are made on demand (Truth.exact)
    if out.settled or out.nan is not None:
        status = np.full(size, out.fast_status, dtype="<U11")
        precision = np.full(size, _fast.FAST_PRECISION, dtype=np.int64)
        if out.nan is not None:  # as the Ziv path's closed form: Settled(nan, fnan, NAN, 0)
            status[out.nan] = NAN
            precision[out.nan] = 0
            exact_values[out.nan] = mpmath.mp.make_mpf(libmp.fnan)
    else:  # every value from the fast path: one status, one precision, read-only views (no 44-byte-a-value string array)
        status = np.broadcast_to(np.array(out.fast_status, dtype="<U11"), size)
        precision = np.broadcast_to(np.int64(_fast.FAST_PRECISION), size)
    make = mpmath.mp.make_mpf
    for i, s in out.settled.items():
        exact_values[i] = make(s.exact)
        status[i] = s.status
        precision[i] = s.precision
    return Truth(
        family=fam.name,
        what=what,
        dtype=fmt.name,
        reduction=reduction,
        inputs=x,
        labels=z,
        rounded=out.rounded.reshape(shape).astype(fmt.numpy_dtype),
        settled_exact=exact_values.reshape(shape),
        status=status.reshape(shape),
        precision=precision.reshape(shape),
        fast=out.fast.reshape(shape),
        approx=out.approx.reshape(shape),
        approx_low=out.approx_low.reshape(shape),
        params=dict(fam.values),
    )


def _array_api(what: str) -> Callable[..., np.ndarray]:
    def function(family: str, *, logits: Any = None, probs: Any = None, labels: Any, dtype: Any, reduction: str = "none",
                 params: Any = None) -> np.ndarray:
        streamed = _streamed(what, family, logits, probs, labels, dtype, reduction, params)
        if streamed is not None:
            return streamed
        truth = evaluate(family, logits=logits, probs=probs, labels=labels, dtype=dtype, reduction=reduction, what=what, params=params)
        truth.raise_if_unconverged()
        return truth.rounded

    return function


_STREAM_EXAMPLES = 1 << 18  # examples converted and settled at once by loss() and gradient()


def _streamed(what: str, family: str, logits: Any, probs: Any, labels: Any, dtype: Any, reduction: str, params: Any = None) -> np.ndarray | None:
    """:func:`loss`/:func:`gradient` of a large batch chunk by chunk, without a :class:`Truth` record:
    inputs are converted to float64 one chunk at a time, so memory stays a few times the chunk above the
    caller's arrays and the result (10^8 float32 elements: well under 2 GB in all). ``None`` where the
    batch is small, reduced (except a summed gradient, which is the per-example one), or has a shape
    problem (the whole-array path then raises the usual one-line error)."""
    fam, fmt = _checked(family, dtype, reduction, what, "auto", params)
    if reduction == "mean" or (reduction == "sum" and what == "loss"):
        return None
    raw = np.asarray(_given_inputs(fam, logits, probs))
    lab = np.asarray(labels)
    if raw.ndim == 0 or raw.size <= _STREAM_EXAMPLES:
        return None
    batch = raw.shape[:-1] if fam.row_wise else raw.shape
    if lab.shape != (batch if fam.label_kind == "index" else raw.shape) or (fam.row_wise and raw.shape[-1] == 0):
        return None
    n = int(np.prod(batch, dtype=np.int64))
    width = raw.shape[-1] if fam.row_wise else 1
    xs = raw.reshape(n, width) if fam.row_wise else raw.reshape(n)
    zs = lab.reshape(n, width) if (fam.row_wise and fam.label_kind == "soft") else lab.reshape(n)
    per = 1 if what == "loss" else width
    out = np.empty(n * per, dtype=fmt.numpy_dtype)
    step = max(1, _STREAM_EXAMPLES // width)
    for start in range(0, n, step):
        try:
            x, z = fam.prepare(xs[start:start + step], zs[start:start + step])
        except ValueError:
            fam.prepare(raw, lab)  # the whole-array message (right indices); raises
            raise
        settled = _settle_all(fam, what, fmt, "none", x, z, "auto")
        for i, s in settled.settled.items():
            if s.status == UNCONVERGED:
                where = np.unravel_index(start * per + i, batch if what == "loss" else raw.shape)
                raise OracleUnconverged(
                    f"{fam.name} {what} at index {tuple(int(k) for k in where)}: rounding to {fmt.name} not decided"
                    f" at {s.precision} bits; oracles.evaluate() returns the rest"
                )
        out[start * per:(start + len(x)) * per] = settled.rounded
    return out.reshape(batch if what == "loss" else raw.shape)


loss = _array_api("loss")
loss.__name__ = loss.__qualname__ = "loss"
loss.__doc__ = """The loss correctly rounded to ``dtype`` (numpy array in ``dtype``); arguments as :func:`evaluate`.

Raises :class:`OracleUnconverged` if any value could not be settled (never returns a guess)."""

gradient = _array_api("gradient")
gradient.__name__ = gradient.__qualname__ = "gradient"
gradient.__doc__ = """The gradient with respect to ``logits`` (``probs`` for ``binary_ce``) of the loss with the
given ``reduction``, each component correctly rounded to ``dtype``; arguments as :func:`evaluate`."""


def exact(
    family: str,
    *,
    logits: Any = None,
    probs: Any = None,
    labels: Any,
    dtype: Any = "float64",
    reduction: str = "none",
    what: str = "loss",
    params: Any = None,
) -> np.ndarray:
    """Exact values as an object array of ``mpmath.mpf`` (closed forms exactly; otherwise within ``2**-70``
    relative, and on the right side of every rounding boundary of ``dtype``), for error measurement."""
    truth = evaluate(family, logits=logits, probs=probs, labels=labels, dtype=dtype, reduction=reduction, what=what, params=params)
    truth.raise_if_unconverged()
    return truth.exact



def format_exact(value: Any, digits: int = 20) -> str:
    """An exact value as decimal text with ``digits`` significant digits (``inf``, ``-inf``, ``nan`` as such)."""
    if not mpmath.isfinite(value):  # spelled here: mpmath 1.3 writes +inf, 1.4 inf
        return "nan" if mpmath.isnan(value) else ("inf" if value > 0 else "-inf")
    return mpmath.nstr(value, digits, strip_zeros=False, min_fixed=-4, max_fixed=digits)
