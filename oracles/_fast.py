"""The certified fast path: whole arrays in float64 with a proven error bound; the undecided go to Ziv.

For float16, bfloat16 and float32 targets, each family evaluates its loss or gradient over whole numpy
arrays in float64 (the same formulas as its interval evaluation: sums of non-negative terms for the
losses) and returns, per output value, an estimate ``v`` and an absolute error bound ``delta`` with
``|exact - v| <= delta``. An output is *accepted* only if

1. ``lo = v - delta`` and ``hi = v + delta`` (computed in float64 and then moved one float64 step outward,
   so that the float64 rounding of ``v -+ delta`` never shrinks the enclosure) have the same sign and the
   same *quantum binade* ``max(floor(log2|.|), emin)``, not above ``emax``: either one normal binade of the
   target format, or both below ``2**(emin+1)``, where the format's spacing is the same
   ``2**(emin - p + 1)`` (the subnormal range and the lowest normal binade), so the exact value's ULP is
   known either way;
2. ``lo`` and ``hi`` round to the same value of the target format (round to nearest even), and that value
   is finite (it may be a zero, signed as the enclosure: ``numpy.rint`` keeps the sign, as the Ziv path's
   rounding does);
3. ``delta <= 2**-40 |v|`` (``2**-80`` for float64 targets), so that the estimate, kept in
   ``Truth.exact``, gives fractional ULP errors accurate to ``2**-16`` ULP (``2**-27`` for float64).

Then every real in ``[lo, hi]`` rounds to that value, so it is the correct rounding of the exact value, and
the exact value's binade (hence its ULP) is known, exactly as :func:`oracles._ziv.settle` decides. The
rounding of a float64 ``w`` to a format of precision ``p`` is done once, exactly: in a normal binade
``2**E <= |w| < 2**(E+1)``, ``w / 2**(E-p+1)`` is an exact float64 scaling, :func:`numpy.rint` rounds it to
nearest even (a correct rounding of an exact float64 value), and multiplying back is exact. No value is
ever rounded through an intermediate format (no double rounding). Every other output (and every output
whose status is a closed form, a limit or nan: those are cheap and exact on the Ziv path) goes to the Ziv
path unchanged.

The bound. Let ``u = 2**-53`` (float64 unit roundoff: every ``+ - * /`` of float64 values has relative
error at most ``u``, round to nearest, barring underflow). **Assumption**: numpy's float64 ``exp``,
``log1p`` and ``log`` are within :data:`NUMPY_ULPS` units in the last place of the exact result, i.e.
relative error at most ``NUMPY_ULPS * 2**-52`` for normal results. ``tests/unit/test_fast_oracle.py``
measures their error against mpmath (``10**5`` points per function in the default suite, ``10**6`` in
the slow tier) and fails if it is exceeded, so a numpy or libm change that breaks the assumption fails CI
instead of giving wrong roundings. The fast path uses the assumed bound times :data:`SAFETY` (2), i.e.
``F = SAFETY * NUMPY_ULPS * 2**-52``.

Error terms, for computed quantities written with a tilde and first-order bounds (every bound is below
``2**-40`` relative, so second-order products are below ``2**-80`` relative and are covered by
multiplying the final bound by ``1 + 2**-20``):

- a rounded operation ``a op b`` on exact operands: ``u * |result|``;
- ``exp(-d)`` at a computed ``d~ = d (1 + eta)``, ``|eta| <= u``: ``exp(-d) * (F + d * u)``;
- ``log1p(t~)`` with ``|t~ - t| <= e_t`` (``t >= 0``): ``e_t / (1 + t~ - e_t) + F * log1p(t~)`` (the
  derivative of ``log1p`` is ``1/(1+t)``); ``log(p)``: ``F * |log p|`` (``p`` exact);
- a sum of ``n`` non-negative terms in any order: the terms' bounds plus ``(n - 1) * u * sum``;
- a difference ``A - B`` (gradients only): the bounds of ``A`` and ``B`` plus ``u * |A - B|``: the bound
  is relative to the terms, not to the result, so cancellation shows as a wide enclosure and falls back.

Underflow: every bound also carries an absolute floor :data:`ABSOLUTE_FLOOR` (``2**-1000``), which covers
the subnormal and zero results of ``exp`` and of products (their absolute error is below ``2**-1020``).
Condition 3 then needs ``|v| >= 2**-960``, far inside float64's normal range and below every float16,
bfloat16 and float32 subnormal (at least ``2**-149``), so subnormal results of those formats are decided
here with the same relative bound as normal ones. Below that, where ``exp`` underflows and ``v`` may be
zero: when the family proves the exact value positive (``Estimate.positive``: a loss of finite inputs,
``x * w + log1p(exp(-x))`` or a softmax row's ``sum z_i (lse - x_i)`` with ``sum z > 0`` and ``K >= 2``)
and ``v + delta`` (floor included, one float64 step up) is below half the smallest subnormal of the
target, every real in ``(0, v + delta]`` rounds to ``+0``, so ``+0`` is the correct rounding; the estimate
``v`` is then within ``delta <= 2**-1000 + ...`` of the exact value, a negligible part of the format's
smallest quantum, so errors measured from it are exact to far below ``2**-16`` ULP. Inputs where a float64 intermediate could overflow are not evaluated here (the
families mark them ineligible), and any non-finite ``v`` or ``delta`` is rejected.

Proven bounds. A family may also prove, per output, float64 numbers ``above < exact < below`` (an
``Estimate``'s ``above`` and ``below``), which decides values whose enclosure straddles a power of two
that the exact value provably never reaches: a gradient ``(1 - z) - sigmoid(-|x|)`` of a large logit is
within ``2**-60`` of ``1 - z = 1`` but below it. Rounding is monotone, so the exact value rounds between
the roundings of ``max(lo, above)`` and ``min(hi, below)``: when they agree, that is its rounding. Every
power of two (a binade edge) and every zero is a float64 number, so a real strictly between two adjacent
float64 numbers has their sign and binade: the sign and binade tests use ``max(lo, next_up(above))`` and
``min(hi, next_down(below))``. The estimate kept as the approximation is moved inside
``[next_up(above), next_down(below)]`` (it moves by at most ``delta`` plus one float64 step, so the
relative bound of condition 3 still holds to within ``2**-52``), so that :mod:`oracles._ulp` reads the
exact value's binade from it. A bound ``above >= 0`` proves the value positive (``below <= 0``: negative),
so an enclosure within half the smallest subnormal of zero rounds to ``+0`` (``-0``), as under
"Underflow". Double-double estimates ignore the bounds for float64 targets; the narrow formats' second
tier ("Midpoints") reads them at midpoints.

For float64 targets the families evaluate in double-double arithmetic (:mod:`oracles._dd`, with its own
proven bounds: ``DD_OP = 2**-100`` per operation in place of ``u``, ``EXP_ERROR = 2**-88`` for ``exp``,
per-element bounds for ``log1p`` and ``log`` that assume nothing of numpy) and :func:`certify` checks
the double-double enclosure against the float64 rounding gaps of its leading part.

**Midpoints: a second, double-double tier for the narrow formats.** A float64 estimate cannot decide an
exact value within about ``2**-50`` of a midpoint of the target format, and such values are common: with
soft labels ``x * (1 - z)`` is often exactly a float16 midpoint and the loss exceeds it by
``log1p(exp(-|x|))``, far below the float64 bound (1.35% of a float16 all-labels sweep went to the Ziv
path this way, every one of them at an exact midpoint). The examples the float64 tier found eligible but
could not decide are evaluated again in double-double (the float64 targets' evaluation, its bounds
unchanged) and decided by :func:`certify_double_double`: with ``b = delta * FINAL_MARGIN + ABSOLUTE_FLOOR``
the exact value is ``hi + t`` with ``t`` in ``[lo - b, lo + b]``, and ``(|lo| + b)(1 + 2**-40) <
spacing(hi)`` (the float64 gap above ``|hi|``, and below it unless ``|hi|`` is a power of two) keeps every
such value strictly between the float64 neighbours of ``hi``. Midpoints, powers of two and format numbers
are float64 numbers, ``|hi|`` is normal, and where it is a power of two the exact value must be proven
on one side of it (by ``lo`` or a bound, as below), so every value of the enclosure has one binade: ``hi``'s,
or where ``|exact| < |hi| = 2**k`` the binade below, where the approximation kept is moved to
``hi' = next_toward_zero(hi)``, ``lo' = lo + (hi - hi')``. Then

- where ``hi`` is not a midpoint of the format, no midpoint lies in the enclosure: every value of it
  rounds as ``hi`` does (``round_to_format(hi)``, finite; a power of two is a format number, and the
  midpoints next to it are a format quantum away, far beyond a float64 gap);
- where ``hi`` is a midpoint (``|hi - round(hi)|`` is half the quantum ``q`` of its binade, an exact
  float64 test), ``|lo| > b (1 + 2**-40)`` puts the whole enclosure on one side of it: the rounding is
  ``hi + sign(lo) q / 2``, the neighbour on that side (exact in float64; rejected if not finite or zero).
  Where the enclosure holds ``hi`` itself, a family's proven bound decides: ``exact > above >= hi``
  rounds up, ``exact < below <= hi`` down. ``sigmoid_ce`` proves its loss above ``|x| * w`` wherever that
  product is a float64 number (``log1p(exp(-|x|)) > 0``): at ``x = 31744``, ``z = 2**-7`` the loss is the
  midpoint ``31496`` plus ``log1p(exp(-31744))``, which no double-double holds.

Condition 3 holds as in the first tier (``b <= 2**-40 |hi|``), and ``hi + lo`` is kept as the
approximation.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from . import _dd
from ._formats import Format

__all__ = [
    "NUMPY_ULPS",
    "SAFETY",
    "FUNCTION_ERROR",
    "UNIT_ROUNDOFF",
    "ABSOLUTE_FLOOR",
    "FINAL_MARGIN",
    "FAST_FORMATS",
    "CHUNK",
    "MAX_RELATIVE_BOUND",
    "MAX_RELATIVE_BOUND_FLOAT64",
    "Estimate",
    "round_to_format",
    "certify",
    "certify_double_double",
    "approximation",
]

NUMPY_ULPS = 4  # assumed accuracy of numpy's float64 exp, log1p and log, in ulps (tested)
SAFETY = 2  # the fast path assumes SAFETY * NUMPY_ULPS ulps
UNIT_ROUNDOFF = 2.0**-53
FUNCTION_ERROR = SAFETY * NUMPY_ULPS * 2.0**-52  # F: relative error bound used for exp, log1p, log
ABSOLUTE_FLOOR = 2.0**-1000
FINAL_MARGIN = 1 + 2.0**-20  # covers second-order terms and the rounding of the bound's own arithmetic
FAST_FORMATS = ("float16", "bfloat16", "float32", "float64")
MAX_RELATIVE_BOUND = 2.0**-40  # accepted estimates are this close (ULP errors from them: 2**-16 ULP of float32)
MAX_RELATIVE_BOUND_FLOAT64 = 2.0**-80  # the same for double-double estimates (2**-27 ULP of float64)
CHUNK = 1 << 16  # values evaluated at once (memory: a few dozen float64 arrays of this size)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Estimates of a family's outputs: ``value`` (plus ``low``, for double-double estimates), an absolute
    bound ``delta`` on the error, and ``eligible`` (the output is one the fast path may decide: finite
    inputs, not a closed form)."""

    value: np.ndarray
    delta: np.ndarray
    eligible: np.ndarray
    low: np.ndarray | None = None  # double-double estimates (float64 targets): value + low
    # the family proves every eligible output's exact value > 0 (a loss of finite inputs): an enclosure
    # wholly below half the smallest subnormal then rounds to +0 (module docstring, "Underflow")
    positive: bool = False
    # per output, float64 numbers the family proves the exact value lies strictly between
    # (``above < exact < below``; -inf/+inf where it proves nothing): a gradient ``(1 - z) - sigmoid(-|x|)``
    # is below ``1 - z``, ``sigmoid(x) - z`` above ``-z`` (module docstring, "Proven bounds")
    above: np.ndarray | None = None
    below: np.ndarray | None = None


def round_to_format(w: np.ndarray, fmt: Format) -> tuple[np.ndarray, np.ndarray]:
    """Round finite float64 values ``w`` once, to nearest even, to ``fmt``; valid where ``w`` is a normal
    float64 and ``floor(log2|w|) <= emax`` (below ``2**emin`` it rounds to the subnormal quantum
    ``2**(emin - p + 1)``, as IEEE 754 does). Returns ``(rounded, E)`` with ``E = floor(log2|w|)``
    (meaningless where ``w`` is zero or non-finite). :func:`certify_double_double` (the second tier, few
    values) rounds with it; :func:`certify` runs as a compiled loop whose ``_round_to_format`` carries out
    this definition value by value (both checked against mpmath; this form is also the reference of
    ``tests/unit/test_kernels.py``)."""
    mantissa, exponent = np.frexp(w)  # w = mantissa * 2**exponent, 0.5 <= |mantissa| < 1
    e = exponent.astype(np.int64) - 1
    # the quantum of w's binade, 2**(max(E, emin) - p + 1): one spacing for the whole subnormal range
    # int32 (the shifts are a few hundred at most): numpy's ldexp takes C ints, and int64 exponents cost a
    # conversion twenty times the scaling itself (11 ms against 0.5 ms per 2**20 values)
    shift = (fmt.precision - 1 - np.maximum(e, fmt.emin)).astype(np.int32)
    # w * 2**shift is exact (scaling by a power of two inside float64's normal range); rint rounds to
    # nearest even; scaling back is exact. ldexp keeps the intermediate exact for every shift used here.
    scaled = np.ldexp(w, shift)
    return np.ldexp(np.rint(scaled), -shift), e


def certify(estimate: Estimate, fmt: Format) -> tuple[np.ndarray, np.ndarray]:
    """Decide the correct rounding of each estimated value where its enclosure allows (module docstring).

    Returns ``(rounded, accepted)``: float64 values exactly representable in ``fmt`` (valid where
    ``accepted``) and the boolean mask of decided outputs. For formats narrower than float64 the checks run
    value by value in one compiled loop (:func:`oracles._kernels.certify_narrow`), in this order: the
    enclosure ``lo = next_down(v - b)``, ``hi = next_up(v + b)`` with ``b = delta * FINAL_MARGIN +
    ABSOLUTE_FLOOR``, narrowed by the proven bounds (``max(lo, next_up(above))`` and ``min(hi,
    next_down(below))`` for the sign and binade, ``max(lo, above)`` and ``min(hi, below)`` for the
    rounding: a real strictly between two adjacent float64 numbers has their sign and binade, and rounding
    is monotone); conditions 1-3; then the zero rule of "Underflow" and "Proven bounds".
    """
    if fmt.precision == 53:
        return _certify_float64(estimate)
    from . import _kernels  # numba, compiled on first use: `import oracles` stays light

    v = np.ascontiguousarray(estimate.value, dtype=np.float64)
    flat = lambda a: np.ascontiguousarray(a, dtype=np.float64).ravel()  # noqa: E731
    rounded = np.empty(v.size)
    ok = np.empty(v.size, dtype=bool)
    _kernels.certify_narrow(
        v.ravel(), flat(np.broadcast_to(estimate.delta, v.shape)),
        np.ascontiguousarray(np.broadcast_to(estimate.eligible, v.shape), dtype=bool).ravel(),
        flat(np.broadcast_to(estimate.above, v.shape)) if estimate.above is not None else v.ravel(),
        flat(np.broadcast_to(estimate.below, v.shape)) if estimate.below is not None else v.ravel(),
        estimate.above is not None, estimate.below is not None, bool(estimate.positive),
        fmt.precision, fmt.emin, fmt.emax, fmt.max_finite, fmt.min_subnormal,
        FINAL_MARGIN, ABSOLUTE_FLOOR, MAX_RELATIVE_BOUND, rounded, ok)
    return rounded.reshape(v.shape), ok.reshape(v.shape)


def approximation(estimate: Estimate) -> np.ndarray:
    """The estimate to keep as the exact value's approximation (``Truth.approx``): ``value`` moved inside
    the family's proven bounds, so that its binade, from which :func:`oracles._ulp.measure` takes the exact
    value's ULP, is the exact value's (``1 - 2**-60`` is ``1.0`` in float64, one binade too high). A value
    at or beyond a bound that is a power of two (or zero) moves one float64 step inside it; beyond any
    other bound, onto it (the reals just inside such a bound share its binade). It moves by at most
    ``delta`` plus one float64 step."""
    v = estimate.value
    if estimate.low is not None or (estimate.above is None and estimate.below is None):
        return v
    with np.errstate(all="ignore"):
        if estimate.above is not None:
            a = estimate.above
            v = np.where(v < a, a, v)
            v = np.where(_binade_edge(a) & (v <= a), np.nextafter(a, np.inf), v)
        if estimate.below is not None:
            b = estimate.below
            v = np.where(v > b, b, v)
            v = np.where(_binade_edge(b) & (v >= b), np.nextafter(b, -np.inf), v)
    return v


def _binade_edge(x: np.ndarray) -> np.ndarray:
    """Whether each value is zero or plus or minus a power of two (where the binade changes)."""
    return (x == 0) | (np.abs(np.frexp(x)[0]) == 0.5)


FAST_PRECISION = 53  # Truth.precision of values the fast path decided (float64, or double-double: either tier)


def has_fast_path(fmt: Format) -> bool:
    """Whether values rounded to ``fmt`` can be decided by the fast path."""
    return fmt.name in FAST_FORMATS


def estimate(family, what: str, x: np.ndarray, z: np.ndarray, fmt: Format, divisor: int = 1,
             precise: bool | None = None) -> Estimate | None:
    """The family's fast estimates of ``what`` (``loss`` or ``gradient``) on a chunk of examples (double-
    double for float64 targets, or where ``precise``: the narrow formats' second tier), the gradient
    divided by ``divisor`` (a ``mean`` reduction: one more rounding, ``u * |value|``, or ``DD_OP * |value|``
    in double-double)."""
    precise = fmt.precision == 53 if precise is None else precise
    made = family.fast_loss(x, z, precise) if what == "loss" else family.fast_gradient(x, z, precise)
    if made is None or divisor == 1:
        return made
    with np.errstate(all="ignore"):
        if precise:
            hi, lo = _dd.div(made.value, made.low, np.float64(divisor), np.float64(0.0))
            return Estimate(hi, made.delta / divisor + _dd.DD_OP * np.abs(hi), made.eligible, lo)
        value = made.value / divisor  # the proven bounds are dropped: divided, they would be rounded
        return Estimate(value, made.delta / divisor + UNIT_ROUNDOFF * np.abs(value), made.eligible,
                        positive=made.positive)


def reduced_estimate(family, x: np.ndarray, z: np.ndarray, reduction: str, fmt: Format,
                     closed_form: Callable[[int], Any] | None = None) -> Estimate | float | None:
    """Fast estimate of the ``sum`` or ``mean`` of the per-example losses; ``None`` when it cannot be made
    (the reduced value then goes to the Ziv path whole); a float nan or +inf when the reduced value is
    that limit, decided exactly.

    The per-example losses are non-negative, so a float64 sum of ``n`` of them in any order has error at
    most ``(n - 1) * u * sum`` on top of the terms' own bounds; the mean divides by ``n`` (``u`` more).

    An example the family marks ineligible is asked of ``closed_form(i)`` (``i`` its flat index): its
    value as the Ziv path has it when that is a closed form (a ``Fraction``, or a float nan or ``+inf``),
    else ``None``. As on the Ziv path (``oracles._api._sum``), one nan makes the reduced value nan, else
    one ``+inf`` makes it ``+inf`` (whatever the other terms are); otherwise the closed forms' exact
    rational sum ``R >= 0`` joins the float64 sum as one more term, rounded once (``u * R``, or
    ``DD_OP * R`` as a double-double: ``hi = fl(R)``, ``lo = fl(R - hi)``). Any ineligible example without
    a closed form, or no eligible example at all (every term a closed form: the Ziv path's ``exact``
    status), gives ``None``.
    """
    batch_n = int(np.prod(family.batch_shape(x), dtype=np.int64))
    width = x.shape[-1] if family.row_wise else 1
    xs = x.reshape(batch_n, width) if family.row_wise else x.reshape(batch_n)
    zs = z.reshape(batch_n, width) if (family.row_wise and family.label_kind == "soft") else z.reshape(batch_n)
    precise = fmt.precision == 53
    total, total_lo, bound = np.zeros(1), np.zeros(1), 0.0
    step = max(1, CHUNK // width)
    chunks = 0
    rational = Fraction(0)
    limit = None  # +inf once one term is +inf
    unknown = False  # an ineligible term without a closed form
    eligible_terms = 0
    for start in range(0, batch_n, step):
        made = family.fast_loss(xs[start:start + step], zs[start:start + step], precise)
        if made is None:
            return None
        eligible = made.eligible
        if not eligible.all():
            if closed_form is None:
                return None
            for i in np.flatnonzero(~eligible):
                value = closed_form(start + int(i))
                if isinstance(value, float) and value != value:
                    return value  # nan wins over everything
                if isinstance(value, float) and value == np.inf:
                    limit = value
                elif isinstance(value, Fraction) and value >= 0:
                    rational += value
                else:
                    unknown = True
        if limit is not None or unknown:
            continue  # only a nan can still change the outcome
        eligible_terms += int(np.count_nonzero(eligible))
        chunks += 1
        with np.errstate(all="ignore"):
            bound += float(np.where(eligible, made.delta, 0.0).sum())
            if precise:
                hi, lo = _dd.tree_sum(np.where(eligible, made.value, 0.0)[None], np.where(eligible, made.low, 0.0)[None])
                total, total_lo = _dd.add(total, total_lo, hi, lo)
            else:
                total = total + np.where(eligible, made.value, 0.0).sum()
    if limit is not None:
        return limit
    if unknown or eligible_terms == 0:
        return None
    with np.errstate(all="ignore"):
        if rational:
            try:
                r_hi = float(rational)  # correctly rounded (int / int true division)
                r_lo = float(rational - Fraction(r_hi))
            except OverflowError:
                return None
            if precise:
                total, total_lo = _dd.add(total, total_lo, np.array([r_hi]), np.array([r_lo]))
                bound += _dd.DD_OP * r_hi
                chunks += 1
            else:
                total = total + r_hi
                bound += UNIT_ROUNDOFF * r_hi
        if precise:  # each term passes through at most log2(step) + chunks DD additions
            bound += (int(np.ceil(np.log2(step))) + chunks + 1) * _dd.DD_OP * float(total[0])
            if reduction == "mean":
                total, total_lo = _dd.div(total, total_lo, np.float64(batch_n), np.float64(0.0))
                bound = bound / batch_n + _dd.DD_OP * float(total[0])
            return Estimate(total, np.array([bound]), np.array([True]), total_lo)
        bound += batch_n * UNIT_ROUNDOFF * float(total[0])  # batch_n terms at most (the rational one included)
        if reduction == "mean":
            total = total / batch_n
            bound = bound / batch_n + UNIT_ROUNDOFF * float(total[0])
    return Estimate(total, np.array([bound]), np.array([True]))


def certify_double_double(estimate: Estimate, fmt: Format) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decide the rounding to a format narrower than float64 from a double-double estimate ``hi + lo``
    (the second tier: module docstring, "Midpoints"). Returns ``(rounded, accepted)`` as :func:`certify`,
    and the approximation to keep, ``(hi, lo)``, in the exact value's binade."""
    hi, delta = estimate.value, estimate.delta
    lo = estimate.low if estimate.low is not None else np.zeros_like(hi)
    with np.errstate(all="ignore"):
        bound = delta * FINAL_MARGIN + ABSOLUTE_FLOOR
        magnitude = np.abs(hi)
        power = np.frexp(magnitude)[0] == 0.5
        ok = estimate.eligible & np.isfinite(hi) & np.isfinite(lo) & np.isfinite(bound)
        ok &= (magnitude >= 2.0**-1022) & (magnitude <= np.finfo(np.float64).max / 2)  # (hi ± q/2 stays finite)
        ok &= (np.abs(lo) + bound) * (1 + 2.0**-40) < np.spacing(magnitude)  # the gap above |hi| (and below,
        # but for a power of two, whose gap below is half: accepted only with the exact value beyond it)
        ok &= bound <= MAX_RELATIVE_BOUND * magnitude  # condition 3, as for the first tier
        w = np.where(ok, hi, 1.0)  # (placeholders where rejected: round_to_format wants normal values)
        rounded, e = round_to_format(w, fmt)
        quantum = np.ldexp(1.0, (np.maximum(e, fmt.emin) - fmt.precision + 1).astype(np.int32))
        midpoint = np.abs(w - rounded) == quantum / 2
        margin = bound * (1 + 2.0**-40)
        side = np.where(lo > margin, 1.0, np.where(lo < -margin, -1.0, 0.0))  # 0: the enclosure holds hi
        # a family's proven bounds decide the rest: exact > above >= hi, or exact < below <= hi
        if estimate.above is not None:
            side = np.where((side == 0) & (np.broadcast_to(estimate.above, w.shape) >= w), 1.0, side)
        if estimate.below is not None:
            side = np.where((side == 0) & (np.broadcast_to(estimate.below, w.shape) <= w), -1.0, side)
        rounded = np.where(midpoint, w + side * (quantum / 2), rounded)
        ok &= ~midpoint | ((side != 0) & (rounded != 0))
        # hi = ±2**k, a format number: the enclosure, within a float64 gap of it and far from any midpoint,
        # rounds to it. Beyond it (|exact| > |hi|) the binade is hi's; inside it, the binade below, and the
        # approximation is moved there: hi' = next float64 toward zero, lo' = lo + (hi - hi') (hi - hi' is
        # half hi's gap above, exact; the sum is rounded once, a 2**-53 relative part of lo')
        inside = power & (side * np.sign(w) < 0)
        ok &= ~power | (side != 0)
        ok &= np.abs(rounded) <= fmt.max_finite
        approx_hi = np.where(inside, np.nextafter(w, 0.0), hi)
        approx_lo = np.where(inside, lo + (w - approx_hi), lo)
    return np.where(ok, rounded, np.nan), ok, approx_hi, approx_lo


def _certify_float64(estimate: Estimate) -> tuple[np.ndarray, np.ndarray]:
    """:func:`certify` for a double-double estimate ``hi + lo`` (normalised, ``|lo| <= ulp(hi)/2``) and
    float64 targets: ``hi`` is the rounding of every real in ``(hi - down/2, hi + up/2)``, where ``up`` and
    ``down`` are the gaps to the next float64 away from and toward zero, both ends excluded (ties). The
    enclosure ``[hi + lo - delta, hi + lo + delta]`` must lie inside, checked as ``|lo| -+ delta`` against
    the half gaps (exact powers of two), with the sums scaled by ``1 + 2**-40`` against their own rounding.
    ``|hi|`` must be normal and not a power of two (below one, the enclosure could leave the binade)."""
    hi, delta = estimate.value, estimate.delta
    lo = estimate.low if estimate.low is not None else np.zeros_like(hi)
    with np.errstate(all="ignore"):
        bound = delta * FINAL_MARGIN + ABSOLUTE_FLOOR
        magnitude = np.abs(hi)
        up = np.spacing(magnitude)
        mantissa, _ = np.frexp(magnitude)
        power = mantissa == 0.5
        toward = lo * np.sign(hi)  # lo measured away from zero
        ok = estimate.eligible & np.isfinite(hi) & np.isfinite(lo) & np.isfinite(bound)
        ok &= (magnitude >= 2.0**-1022) & ~power & np.isfinite(up)
        ok &= (toward + bound) * (1 + 2.0**-40) < up / 2
        ok &= (bound - toward) * (1 + 2.0**-40) < up / 2
        ok &= bound <= MAX_RELATIVE_BOUND_FLOAT64 * magnitude
    return np.where(ok, hi, np.nan), ok
