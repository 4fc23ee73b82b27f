"""A second, independent oracle for the cross-entropy losses: arb balls (python-flint) and MPFR (gmpy2).

This module deliberately shares no code with :mod:`oracles` (it imports nothing from it): it has its own
decomposition of every loss and gradient, its own limit and nan rules (re-derived from the documented
definitions), its own arithmetic (python-flint's ``arb`` midpoint-radius balls instead of mpmath intervals)
and its own final rounding (gmpy2's MPFR with a context emulating the target format: precision ``p``,
``emin``/``emax``, ``subnormalize=True``, round-to-nearest-even), so that the cross-check tests compare two
code paths that could not share a bug.

Value model
-----------
Every output value is one of:

* ``NAN`` or ``±inf`` (nan inputs, infinite limits);
* ``Exact(q)``: a rational known in closed form (``Fraction``), rounded once by MPFR from the rational;
* ``Irrational(d, t, sign, div)``: the value ``(d + t) / div`` where ``d`` is an exact dyadic rational,
  ``t`` a function of the working precision returning an ``arb`` ball that contains a transcendental part
  of *known strict sign* ``sign`` and ``div`` a positive integer (the batch size of a ``mean``). The exact
  value is irrational, so it lies in the *open* interval spanned by the ball: when the lower end sits
  exactly on a rounding boundary (a midpoint between two format values), every point of the interval
  rounds upward (and symmetrically for the upper end). This is what decides e.g. ``sigmoid_ce`` at
  ``x = -6035051, z = 0.75`` in float32, ``4526288.25 + exp(-6035051)``: it rounds to ``4526288.5``.

The separation into an exact dyadic part and a signed transcendental part matters because a ball around
``d + t`` with ``t`` astronomically small (``exp(-1e308)``) has a radius that straddles ``d``; knowing the sign
of ``t`` the interval is clipped to the correct side of ``d`` exactly.

Deciding the rounding
---------------------
At working precision ``prec`` (64 bits, doubling up to :data:`MAX_PRECISION`) the ball of ``t`` is turned
into exact integer end points on a grid ``2**g`` finer than any rounding boundary of the format and than the
lowest bit of ``d`` (floor for the lower end, ceiling for the upper end, so the grid interval contains the
ball), clipped at 0 by the known sign of ``t``, shifted by ``d`` and divided by ``div``. The two ends go to
gmpy2 as exact rationals; the value is decided when the point just above the lower end and the point just
below the upper end round to the same format value (same bits, so ``-0`` and ``+0`` differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import gmpy2
import numpy as np
from flint import arb, ctx as flint_ctx

__all__ = [
    "reference_loss",
    "reference_gradient",
    "ReferenceUnconverged",
    "REFERENCE_FORMATS",
    "MAX_PRECISION",
    "round_rational_to",
]

START_PRECISION = 64
MAX_PRECISION = 1 << 17

FAMILIES = ("sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce", "focal")
ROW_FAMILIES = ("softmax_ce", "sparse_softmax_ce")


class ReferenceUnconverged(ArithmeticError):
    """The reference oracle hit its precision cap without deciding a rounding."""


# ---------------------------------------------------------------------------------------------------------
# Target formats, as gmpy2 (MPFR) contexts
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefFormat:
    name: str
    p: int  # significand bits, hidden bit included
    emax: int  # IEEE: largest finite value is (2 - 2**(1-p)) * 2**emax
    emin: int  # IEEE: smallest normal value 2**emin
    nearest: Any
    up: Any
    down: Any

    @property
    def tiny_exp(self) -> int:
        """Exponent of the smallest subnormal."""
        return self.emin - self.p + 1

    def numpy_dtype(self) -> np.dtype:
        if self.name == "bfloat16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.name)


def _make_format(name: str, p: int, emin: int, emax: int) -> RefFormat:
    # MPFR writes values as m * 2**e with 0.5 <= m < 1; with subnormalize=True its emin is the exponent of
    # the smallest subnormal plus one, and its emax is the IEEE emax plus one.
    base = dict(precision=p, emin=emin - p + 2, emax=emax + 1, subnormalize=True)
    nearest = gmpy2.context(round=gmpy2.RoundToNearest, **base)
    up = gmpy2.context(round=gmpy2.RoundUp, **base)
    down = gmpy2.context(round=gmpy2.RoundDown, **base)
    return RefFormat(name, p, emax, emin, nearest, up, down)


REFERENCE_FORMATS: dict[str, RefFormat] = {
    "float16": _make_format("float16", 11, -14, 15),
    "bfloat16": _make_format("bfloat16", 8, -126, 127),
    "float32": _make_format("float32", 24, -126, 127),
    "float64": _make_format("float64", 53, -1022, 1023),
}

# gmpy2 ships IEEE contexts for the binary16/32/64 interchange formats: ours must agree with them.
for _bits, _name in ((16, "float16"), (32, "float32"), (64, "float64")):
    _ieee, _ours = gmpy2.ieee(_bits), REFERENCE_FORMATS[_name].nearest
    assert (_ieee.precision, _ieee.emin, _ieee.emax, _ieee.subnormalize) == (
        _ours.precision,
        _ours.emin,
        _ours.emax,
        _ours.subnormalize,
    ), _name


def _resolve(dtype: Any) -> RefFormat:
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    try:
        return REFERENCE_FORMATS[name]
    except KeyError:
        raise ValueError(f"dtype {name!r} not supported by the reference oracle") from None


def _round(q: Any, context: Any) -> Any:
    with context:
        return gmpy2.mpfr(q)


def _as_mpq(r: Any, fmt: RefFormat) -> Any:
    """An mpfr result as an exact rational; ``±inf`` stands for ``±2**(emax+1)`` (the next binade)."""
    if gmpy2.is_infinite(r):
        big = gmpy2.mpq(2) ** (fmt.emax + 1)
        return big if r > 0 else -big
    return gmpy2.mpq(r)


def _round_side(q: Any, fmt: RefFormat, above: bool) -> Any:
    """What the reals just above (``above``) or just below ``q`` round to, round-to-nearest-even.

    Differs from rounding ``q`` itself only when ``q`` is a rounding boundary: a midpoint between two
    neighbours (including the overflow threshold) or 0 (whose sides round to ``+0`` / ``-0``).
    """
    if q == 0:
        return gmpy2.mpfr(0.0) if above else -gmpy2.mpfr(0.0)
    down = _round(q, fmt.down)
    up = _round(q, fmt.up)
    if down == up:  # representable
        return down
    if _as_mpq(down, fmt) + _as_mpq(up, fmt) == 2 * q:  # a midpoint
        return up if above else down
    return _round(q, fmt.nearest)


def _key(r: Any) -> tuple:
    f = float(r)
    return (f, math.copysign(1.0, f))


def round_rational_to(q: Fraction, fmt: RefFormat) -> float:
    """Correctly rounded (nearest, ties to even) value of an exact rational, as a float."""
    return float(_round(gmpy2.mpq(q.numerator, q.denominator), fmt.nearest))


# ---------------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------------

NAN = float("nan")
POS_INF = float("inf")
NEG_INF = float("-inf")


@dataclass(frozen=True)
class Exact:
    q: Fraction


@dataclass(frozen=True)
class Irrational:
    """``(d + t) / div``: ``d`` dyadic, ``t(prec)`` an arb ball of a transcendental part of strict ``sign``."""

    d: Fraction
    t: Callable[[int], arb]
    sign: int
    div: int = 1


Value = Any  # float (nan/±inf) | Exact | Irrational


def _fr(v: float) -> Fraction:
    return Fraction(float(v))  # exact (-0.0 becomes 0)


def _ball(q: Fraction) -> arb:
    """An exact arb ball of a dyadic rational (no rounding, whatever the working precision)."""
    num, den = q.numerator, q.denominator
    k = den.bit_length() - 1
    if den != 1 << k:
        raise AssertionError(f"{q} is not dyadic")
    return arb((num, -k))


def _floor_units(man: int, exp: int, g: int) -> int:
    """floor(man * 2**exp / 2**g)."""
    if exp >= g:
        return man << (exp - g)
    shift = g - exp
    if shift > man.bit_length() + 1:
        return 0 if man >= 0 else -1
    return man >> shift


def _ceil_units(man: int, exp: int, g: int) -> int:
    return -_floor_units(-man, exp, g)


def _settle(value: Irrational, fmt: RefFormat) -> float:
    d = value.d
    k = d.denominator.bit_length() - 1  # d = num / 2**k
    prec = START_PRECISION
    while prec <= MAX_PRECISION:
        old = flint_ctx.prec
        flint_ctx.prec = prec
        try:
            ball = value.t(prec)
        finally:
            flint_ctx.prec = old
        if ball.is_finite():
            g = min(-k, fmt.tiny_exp - 1) - prec
            mid_man, mid_exp = ball.mid().man_exp()
            rad_man, rad_exp = ball.rad().man_exp()
            rad_units = _ceil_units(int(rad_man), int(rad_exp), g)
            lo_t = _floor_units(int(mid_man), int(mid_exp), g) - rad_units
            hi_t = _ceil_units(int(mid_man), int(mid_exp), g) + rad_units
            if value.sign > 0:
                lo_t = max(lo_t, 0)
            else:
                hi_t = min(hi_t, 0)
            if lo_t > hi_t:
                raise AssertionError("the ball of the transcendental part contradicts its known sign")
            d_units = d.numerator << (-g - k)
            den = value.div << -g
            lo = gmpy2.mpq(d_units + lo_t, den)
            hi = gmpy2.mpq(d_units + hi_t, den)
            a = _round_side(lo, fmt, above=True)
            b = _round_side(hi, fmt, above=False)
            if _key(a) == _key(b):
                return float(a)
        prec *= 2
    raise ReferenceUnconverged(f"reference oracle: rounding to {fmt.name} undecided at {MAX_PRECISION} bits")


def _finish(value: Value, fmt: RefFormat) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, Exact):
        return round_rational_to(value.q, fmt)
    return _settle(value, fmt)


def _divide(value: Value, n: int) -> Value:
    if isinstance(value, float):
        return value
    if isinstance(value, Exact):
        return Exact(value.q / n)
    return Irrational(value.d, value.t, value.sign, value.div * n)


def _total(values: list) -> Value:
    """Exact sum of non-negative losses: nan if any, else +inf if any, else exact part plus ball part."""
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        return NAN
    if any(isinstance(v, float) for v in values):
        return POS_INF
    d = Fraction(0)
    parts = []
    for v in values:
        if isinstance(v, Exact):
            d += v.q
        else:
            d += v.d
            parts.append(v.t)
    if not parts:
        return Exact(d)

    def t(prec: int) -> arb:
        acc = arb(0)
        for part in parts:
            acc = acc + part(prec)
        return acc

    return Irrational(d, t, +1)


# ---------------------------------------------------------------------------------------------------------
# sigmoid_ce:  L = z * softplus(-x) + (1 - z) * softplus(x),   softplus(u) = max(u, 0) + log(1 + e^-|u|)
# ---------------------------------------------------------------------------------------------------------


def _sigmoid_ce_loss(x: float, z: float) -> Value:
    if math.isnan(x) or math.isnan(z):
        return NAN
    zq = _fr(z)
    if math.isinf(x):
        # softplus(+inf) = inf, softplus(-inf) = 0: the coefficient of the infinite softplus decides.
        coefficient = (1 - zq) if x > 0 else zq
        return Exact(Fraction(0)) if coefficient == 0 else POS_INF
    xq = _fr(x)
    d = zq * max(-xq, Fraction(0)) + (1 - zq) * max(xq, Fraction(0))
    ax = abs(xq)

    def t(prec: int) -> arb:
        tail = (-_ball(ax)).exp().log1p()  # log(1 + e^-|x|) > 0, the same for softplus(x) and softplus(-x)
        return _ball(zq) * tail + _ball(1 - zq) * tail

    return Irrational(d, t, +1)


def _sigmoid_ce_gradient(x: float, z: float) -> Value:
    """d/dx = sigmoid(x) - z."""
    if math.isnan(x) or math.isnan(z):
        return NAN
    zq = _fr(z)
    if math.isinf(x):
        return Exact((1 if x > 0 else 0) - zq)
    if x == 0:
        return Exact(Fraction(1, 2) - zq)
    ax = abs(_fr(x))

    def small_sigmoid(prec: int) -> arb:  # sigmoid(-|x|) = 1 / (1 + e^|x|), in (0, 1/2)
        return 1 / (1 + _ball(ax).exp())

    if x > 0:  # sigmoid(x) - z = (1 - z) - sigmoid(-x)
        return Irrational(1 - zq, lambda prec: -small_sigmoid(prec), -1)
    return Irrational(-zq, small_sigmoid, +1)


# ---------------------------------------------------------------------------------------------------------
# binary_ce:  L = -z log p - (1 - z) log(1 - p) = [z q + (1 - z) p] + [z R(q) + (1 - z) R(p)],
#             q = 1 - p,  R(u) = -log(1 - u) - u > 0 for 0 < u < 1
# ---------------------------------------------------------------------------------------------------------


def _neg_log_one_minus(u: Fraction, one_minus_u: Fraction) -> arb:
    if u <= Fraction(1, 2):
        return -((-_ball(u)).log1p())
    return -(_ball(one_minus_u).log())


def _binary_ce_loss(p: float, z: float) -> Value:
    if math.isnan(p) or math.isnan(z):
        return NAN
    pq, zq = _fr(p), _fr(z)
    qq = 1 - pq
    if pq == 0:  # -log p infinite, weighted by z
        return POS_INF if zq > 0 else Exact(Fraction(0))
    if qq == 0:  # -log(1 - p) infinite, weighted by 1 - z
        return POS_INF if zq < 1 else Exact(Fraction(0))
    d = zq * qq + (1 - zq) * pq

    def t(prec: int) -> arb:
        total = arb(0)
        if zq != 0:
            total = total + _ball(zq) * (_neg_log_one_minus(qq, pq) - _ball(qq))
        if zq != 1:
            total = total + _ball(1 - zq) * (_neg_log_one_minus(pq, qq) - _ball(pq))
        return total

    return Irrational(d, t, +1)


def _binary_ce_gradient(p: float, z: float) -> Value:
    """d/dp = -z / p + (1 - z) / (1 - p), a term with a zero coefficient being 0."""
    if math.isnan(p) or math.isnan(z):
        return NAN
    pq, zq = _fr(p), _fr(z)
    if pq == 0:
        return NEG_INF if zq > 0 else Exact(1 - zq)
    if pq == 1:
        return POS_INF if zq < 1 else Exact(-zq)
    return Exact(-zq / pq + (1 - zq) / (1 - pq))


# ---------------------------------------------------------------------------------------------------------
# softmax_ce (rows):  L = sum_i z_i (m - x_i) + S * log(1 + sum_{i != j} e^(x_i - m)),  m = x_j = max x
# ---------------------------------------------------------------------------------------------------------


def _softmax_ce_loss_row(x: np.ndarray, z: np.ndarray) -> Value:
    xs = [float(v) for v in x]
    zs = [_fr(v) if not math.isnan(float(v)) else None for v in z]
    if any(math.isnan(v) for v in xs) or any(v is None for v in zs):
        return NAN
    k = len(xs)
    plus = [i for i in range(k) if xs[i] == math.inf]
    if plus:
        # softmax = 1/|plus| on the +inf logits, 0 elsewhere
        if any(zs[i] > 0 for i in range(k) if i not in plus):
            return POS_INF
        return _label_times_log(sum((zs[i] for i in plus), Fraction(0)), len(plus))
    finite = [i for i in range(k) if xs[i] != -math.inf]
    if not finite:  # all -inf: uniform softmax
        return _label_times_log(sum(zs, Fraction(0)), k)
    if any(zs[i] > 0 for i in range(k) if i not in finite):
        return POS_INF
    xq = {i: _fr(xs[i]) for i in finite}
    m = max(xq.values())
    s = sum((zs[i] for i in finite), Fraction(0))
    d = sum((zs[i] * (m - xq[i]) for i in finite), Fraction(0))
    j = next(i for i in finite if xq[i] == m)
    rest = [xq[i] - m for i in finite if i != j]
    if s == 0 or not rest:
        return Exact(d)

    def t(prec: int) -> arb:
        acc = arb(0)
        for r in rest:
            acc = acc + _ball(r).exp()
        return _ball(s) * acc.log1p()

    return Irrational(d, t, +1)


def _label_times_log(s: Fraction, n: int) -> Value:
    if s == 0 or n == 1:
        return Exact(Fraction(0))
    return Irrational(Fraction(0), lambda prec: _ball(s) * arb(n).log(), +1)


def _softmax_ce_gradient_row(x: np.ndarray, z: np.ndarray) -> list:
    """d/dx_i = S * softmax(x)_i - z_i, with softmax taken as the limit described in the spec."""
    xs = [float(v) for v in x]
    k = len(xs)
    if any(math.isnan(v) for v in xs) or any(math.isnan(float(v)) for v in z):
        return [NAN] * k
    zs = [_fr(v) for v in z]
    s = sum(zs, Fraction(0))
    plus = [i for i in range(k) if xs[i] == math.inf]
    finite = [i for i in range(k) if math.isfinite(xs[i])]
    if plus or not finite:
        support = plus if plus else list(range(k))
        share = Fraction(1, len(support))
        return [Exact(s * share - zs[i]) if i in support else Exact(-zs[i]) for i in range(k)]
    xq = {i: _fr(xs[i]) for i in finite}
    distinct = set(xq.values())
    if len(distinct) == 1 or s == 0:
        share = Fraction(1, len(finite))
        return [Exact(s * share - zs[i]) if i in xq else Exact(-zs[i]) for i in range(k)]
    m = max(distinct)
    at_max = [i for i in finite if xq[i] == m]
    out: list = []
    for i in range(k):
        if i not in xq:
            out.append(Exact(-zs[i]))
        elif xq[i] == m:
            # At the c maximal logits softmax_i = 1 / (c + rest), rest = sum of e^(x_j - m) over the others, so
            # c * (S * softmax_i - z_i) = (S - c z_i) - S * rest / (c + rest): an exact part and a negative
            # part that may be as small as e^(-1e308) (never absorbed into a ball around S/c - z_i).
            c = len(at_max)
            below = [xq[j] - m for j in finite if xq[j] != m]

            def t(prec: int, below=below, c=c) -> arb:
                rest = arb(0)
                for r in below:
                    rest = rest + _ball(r).exp()
                return -(_ball(s) * rest / (c + rest))

            out.append(Irrational(s - c * zs[i], t, -1, c))
        else:
            shifted = [xq[j] - xq[i] for j in finite]

            def t(prec: int, shifted=shifted) -> arb:
                total = arb(0)
                for r in shifted:
                    total = total + _ball(r).exp()
                return _ball(s) / total  # softmax_i = 1 / sum_j e^(x_j - x_i)

            out.append(Irrational(-zs[i], t, +1))
    return out


# ---------------------------------------------------------------------------------------------------------
# focal (gamma > 0; gamma = 0 is sigmoid_ce): reduced to x <= 0 by the symmetry L(x, z) = L(-x, 1 - z),
# dL/dx(x, z) = -dL/dx(-x, 1 - z). For x = -a <= 0, e = exp(-a), tail = log1p(e) (= -log q = sp(x)),
# p = e / (1 + e), q = exp(-tail):
#   L  = z * exp(-g*tail) * (a + tail) + (1 - z) * exp(-g*(a + tail)) * tail
#   dL/dx = -z + [-z*expm1(-(g + 1)*tail) - z*g*exp(-g*tail)*p*(a + tail) + (1 - z)*exp(-g*(a + tail))*(p + g*q*tail)]
# For a >= 64 the loss is z*a + [z*a*expm1(-g*tail) + tail*(z*exp(-g*tail) + (1 - z)*exp(-g*(a + tail)))].
# A bracket's sign is read from its ball (raised precision until the ball excludes 0).
# ---------------------------------------------------------------------------------------------------------


def _sign_of(t: Callable[[int], arb]) -> int:
    prec = START_PRECISION
    while prec <= MAX_PRECISION:
        old = flint_ctx.prec
        flint_ctx.prec = prec
        try:
            ball = t(prec)
        finally:
            flint_ctx.prec = old
        if ball > 0:
            return 1
        if ball < 0:
            return -1
        prec *= 2
    raise ReferenceUnconverged("reference oracle: sign of a focal term undecided")


def _focal_parts(a: Fraction, g: Fraction) -> Callable[[], tuple]:
    def parts() -> tuple:
        e = (-_ball(a)).exp()
        tail = e.log1p()
        gb = _ball(g)
        return e, tail, gb, (-gb * tail).exp(), (-gb * (_ball(a) + tail)).exp()

    return parts


def _focal_loss_left(a: Fraction, zq: Fraction, g: Fraction) -> Value:
    parts = _focal_parts(a, g)
    if a >= 64 and zq > 0:
        def t(prec: int) -> arb:
            _e, tail, gb, w1, w0 = parts()
            return _ball(zq * a) * (-gb * tail).expm1() + tail * (_ball(zq) * w1 + _ball(1 - zq) * w0)

        return Irrational(zq * a, t, _sign_of(t))

    def whole(prec: int) -> arb:
        _e, tail, gb, w1, w0 = parts()
        return _ball(zq) * w1 * (_ball(a) + tail) + _ball(1 - zq) * w0 * tail

    return Irrational(Fraction(0), whole, +1)


def _focal_gradient_left(a: Fraction, zq: Fraction, g: Fraction) -> Value:
    parts = _focal_parts(a, g)

    def t(prec: int) -> arb:
        e, tail, gb, w1, w0 = parts()
        p = e / (1 + e)
        q = (-tail).exp()
        return (-_ball(zq) * (-(gb + 1) * tail).expm1() - _ball(zq) * gb * w1 * p * (_ball(a) + tail)
                + _ball(1 - zq) * w0 * (p + gb * q * tail))

    return Irrational(-zq, t, _sign_of(t))


def _negated(value: Value) -> Value:
    if isinstance(value, float):
        return -value
    if isinstance(value, Exact):
        return Exact(-value.q)
    return Irrational(-value.d, lambda prec: -value.t(prec), -value.sign, value.div)


def _focal_loss(x: float, z: float, gamma: float) -> Value:
    if gamma == 0:
        return _sigmoid_ce_loss(x, z)
    if math.isnan(x) or math.isnan(z):
        return NAN
    zq = _fr(z) if x <= 0 else 1 - _fr(z)  # the symmetric example at -|x|
    if math.isinf(x):
        return Exact(Fraction(0)) if zq == 0 else POS_INF  # at -inf: tail = 0, a*(coefficient z)
    return _focal_loss_left(abs(_fr(x)), zq, _fr(gamma))


def _focal_gradient(x: float, z: float, gamma: float) -> Value:
    if gamma == 0:
        return _sigmoid_ce_gradient(x, z)
    if math.isnan(x) or math.isnan(z):
        return NAN
    if x == 0 and z == 0.5:
        return Exact(Fraction(0))  # the two terms are equal by the symmetry
    zq = _fr(z) if x <= 0 else 1 - _fr(z)
    left = Exact(-zq) if math.isinf(x) else _focal_gradient_left(abs(_fr(x)), zq, _fr(gamma))
    return left if x <= 0 else _negated(left)


def _one_hot(c: int, k: int) -> np.ndarray:
    z = np.zeros(k)
    z[c] = 1.0
    return z


# ---------------------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------------------


def _examples(family: str, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, tuple]:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    x = np.asarray(inputs).astype(np.float64)
    if family == "sparse_softmax_ce":
        c = np.asarray(labels)
        if c.dtype.kind not in "iu" or c.shape != x.shape[:-1] or ((c < 0) | (c >= x.shape[-1])).any():
            raise ValueError("sparse_softmax_ce labels must be integer indices in [0, K) of shape logits[:-1]")
        return x, c.astype(np.int64), x.shape[:-1]
    z = np.asarray(labels).astype(np.float64)
    if z.shape != x.shape:
        raise ValueError("labels and inputs must have the same shape")
    if ((z < 0) | (z > 1)).any():
        raise ValueError("labels must lie in [0, 1]")
    if family == "binary_ce" and ((x < 0) | (x > 1)).any():
        raise ValueError("probs must lie in [0, 1]")
    batch = x.shape[:-1] if family in ROW_FAMILIES else x.shape
    return x, z, batch


def _loss_value(family: str, x: Any, z: Any, gamma: float = 2.0) -> Value:
    if family == "focal":
        return _focal_loss(float(x), float(z), gamma)
    if family == "sigmoid_ce":
        return _sigmoid_ce_loss(float(x), float(z))
    if family == "binary_ce":
        return _binary_ce_loss(float(x), float(z))
    if family == "softmax_ce":
        return _softmax_ce_loss_row(x, z)
    return _softmax_ce_loss_row(x, _one_hot(int(z), x.shape[-1]))


def _gradient_values(family: str, x: Any, z: Any, gamma: float = 2.0) -> list:
    if family == "focal":
        return [_focal_gradient(float(x), float(z), gamma)]
    if family == "sigmoid_ce":
        return [_sigmoid_ce_gradient(float(x), float(z))]
    if family == "binary_ce":
        return [_binary_ce_gradient(float(x), float(z))]
    if family == "softmax_ce":
        return _softmax_ce_gradient_row(x, z)
    return _softmax_ce_gradient_row(x, _one_hot(int(z), x.shape[-1]))


def reference_loss(family: str, inputs: Any, labels: Any, dtype: Any, reduction: str = "none", gamma: float = 2.0) -> np.ndarray:
    """The loss correctly rounded to ``dtype`` (numpy array in ``dtype``), by the arb/MPFR reference
    (``gamma``: focal's parameter)."""
    fmt = _resolve(dtype)
    x, z, batch = _examples(family, inputs, labels)
    values = [_loss_value(family, x[idx], z[idx], gamma) for idx in np.ndindex(batch)]
    if reduction == "none":
        out = np.array([_finish(v, fmt) for v in values], dtype=np.float64).reshape(batch)
    elif reduction in ("sum", "mean"):
        total = _total(values)
        if reduction == "mean":
            if not values:
                raise ValueError("mean over an empty batch")
            total = _divide(total, len(values))
        out = np.array(_finish(total, fmt), dtype=np.float64)
    else:
        raise ValueError(f"unknown reduction {reduction!r}")
    return out.astype(fmt.numpy_dtype())


def reference_gradient(family: str, inputs: Any, labels: Any, dtype: Any, reduction: str = "none", gamma: float = 2.0) -> np.ndarray:
    """The gradient (shape of the inputs) of the reduced loss, each component correctly rounded to ``dtype``.

    ``none`` and ``sum`` give the per-example gradients; ``mean`` divides them by the number of examples.
    """
    fmt = _resolve(dtype)
    x, z, batch = _examples(family, inputs, labels)
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"unknown reduction {reduction!r}")
    n = int(np.prod(batch, dtype=np.int64))
    out = []
    for idx in np.ndindex(batch):
        for v in _gradient_values(family, x[idx], z[idx], gamma):
            out.append(_finish(_divide(v, n) if reduction == "mean" else v, fmt))
    return np.array(out, dtype=np.float64).reshape(x.shape).astype(fmt.numpy_dtype())
