"""``focal``: sigmoid focal loss with logits (Lin et al. 2017), focusing parameter ``gamma``, no alpha.

Definition (``x`` the logit, ``z`` the label, both taken exactly as the floats given, ``0 <= z <= 1``;
``gamma >= 0`` finite, default 2; ``p = sigmoid(x)``)::

    L(x, z) = -[ z * (1 - p)**gamma * log(p) + (1 - z) * p**gamma * log(1 - p) ]

as ``torchvision.ops.sigmoid_focal_loss(x, z, alpha=-1, gamma)`` and Keras'
``binary_focal_crossentropy(z, x, gamma=gamma, from_logits=True)`` for hard labels. For soft labels those
(and optax's ``sigmoid_focal_loss``) weight the whole cross-entropy by ``(1 - p_t)**gamma`` with
``p_t = z*p + (1 - z)*(1 - p)``, a different function: this family keeps one weight per term, as written
above. ``gamma = 0`` gives ``sigmoid_ce`` exactly (``0**0 = 1``), and is evaluated as that family.

Evaluation, with ``sp(t) = log(1 + exp(t))`` (softplus: ``-log p = sp(-x)``, ``-log(1 - p) = sp(x)``)::

    L(x, z) = z * exp(-gamma * sp(x)) * sp(-x) + (1 - z) * exp(-gamma * sp(-x)) * sp(x)
    sp(|x|) = |x| + log1p(exp(-|x|)),   sp(-|x|) = log1p(exp(-|x|))

every factor non-negative and every sum a sum of non-negative terms, so nothing cancels: each enclosure
keeps the context's relative accuracy (the ``exp`` of ``-gamma * sp`` has relative error the absolute error
of its argument, ``gamma * sp`` times the relative one, which Ziv's doubling absorbs). A term whose label
coefficient (``z`` or ``1 - z``) is 0 contributes exactly 0.

Gradient with respect to the logit (``q = 1 - p = sigmoid(-x)``)::

    dL/dx = (1 - z) * p**gamma * (p + gamma * q * sp(x)) - z * q**gamma * (q + gamma * p * sp(-x))

a difference of two non-negative terms (as ``sigmoid(x) - z`` for ``sigmoid_ce``): the interval path
still settles it, raising the precision until the cancellation leaves enough bits. Closed forms: ``x = 0``,
``z = 1/2`` gives 0 (the two terms are equal); ``gamma = 0`` is ``sigmoid_ce``'s gradient ``p - z``.

Limit values: ``x = +inf`` gives ``L = 0`` if ``z == 1`` else ``+inf`` (the second term is ``(1 - z) * x``
to first order), gradient ``1 - z``; ``x = -inf`` gives ``L = 0`` if ``z == 0`` else ``+inf``, gradient
``-z`` (the products ``q * sp(x)`` and ``p * sp(-x)`` vanish at the infinite ends): the values of
``sigmoid_ce`` for every ``gamma``. A nan logit or label gives nan. A label outside ``[0, 1]`` or a
``gamma`` that is negative, infinite or nan is a ``ValueError``.

For finite inputs and ``gamma > 0`` the loss is positive and, like ``sigmoid_ce``'s, not a dyadic
rational where it is evaluated as an interval (``exp`` of a non-zero rational is transcendental); the
precision cap reports ``unconverged`` in any case, never a guess. No fast path: every value takes the Ziv
path (about 0.2 ms per value at 96 bits), so default example counts for this family stay modest.

Regimes: those of the elementwise families (:data:`oracles._family.ELEMENTWISE_REGIMES`): ``special`` (an
input ±inf or nan), ``tiny`` (finite, exact loss below the format's smallest normal: confident-correct
logits, where the focal weight makes the loss underflow far sooner than ``sigmoid_ce``'s), ``hard`` and
``soft`` (labels 0/1, or strictly between).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from ._family import Evaluator, Family, Param, exp, log1p, logits_and_soft_labels
from ._ziv import workprec
from ._sigmoid_ce import FAMILY as _SIGMOID_CE

_HALF = Fraction(1, 2)


class Focal(Family):
    name = "focal"
    input_name = "logits"
    input_domain = "real"
    definition = "-[z*(1-p)**gamma*log(p) + (1-z)*p**gamma*log(1-p)], p = sigmoid(x), elementwise"
    params = (Param("gamma", 2.0, 0.0, math.inf, "focusing exponent: (1-p)**gamma weights -log p; 0 gives sigmoid_ce"),)
    catalogue_params = ({"gamma": 0.5},)
    benign = (((-1.5, -0.75, 0.0), (0.5, 1.25, 2.0)), ((0.5, 0.25, 0.5), (1.0, 0.75, 0.25)))
    candidates_module = "harness.candidates._focal"
    # Every value takes the Ziv path: `lossfuzz run --families focal` alone took 150 s on 2 cores (the default
    # run of the other four: 165 s), so it runs when asked for (--families focal, or all).
    in_default_run = False

    def prepare(self, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        return logits_and_soft_labels(self.name, inputs, labels)

    @property
    def gamma(self) -> float:
        return float(self.values["gamma"])

    def loss(self, x: float, z: float) -> Evaluator:
        gamma = self.gamma
        if gamma == 0.0 or math.isnan(x) or math.isnan(z) or math.isinf(x):
            return _SIGMOID_CE.loss(x, z)  # nan, the limits at ±inf, and gamma = 0: sigmoid_ce's values
        first, second = z > 0.0, z < 1.0  # which label coefficients are non-zero
        a = abs(x)
        big_weight = first if x < 0 else second  # the coefficient of the term holding |x|

        def evaluate(ctx: Any) -> list:
            if a > _SHIFT_FROM and big_weight:
                shifted = _shifted_loss(ctx, gamma, a, _coefficient(z, x < 0))
                if shifted is not None:
                    return [shifted]
            sp_x, sp_neg_x = _softplus_pair(ctx, x)
            total = ctx.mpf(0)
            g = ctx.mpf(gamma)
            if first:  # z * q**gamma * -log p
                total = total + ctx.mpf(z) * _weight(ctx, g * sp_x) * sp_neg_x
            if second:  # (1 - z) * p**gamma * -log(1 - p)
                total = total + (1 - ctx.mpf(z)) * _weight(ctx, g * sp_neg_x) * sp_x
            return [total]

        return evaluate

    def gradient(self, x: float, z: float) -> Evaluator:
        gamma = self.gamma
        if gamma == 0.0 or math.isnan(x) or math.isnan(z) or math.isinf(x):
            return _SIGMOID_CE.gradient(x, z)
        if x == 0.0 and z == 0.5:
            return lambda ctx: [Fraction(0)]

        a = abs(x)
        big_weight = _coefficient(z, x < 0)  # the label coefficient of the term that tends to +-1

        def evaluate(ctx: Any) -> list:
            if a > _SHIFT_FROM and big_weight > 0:
                shifted = _shifted_gradient(ctx, gamma, a, big_weight)
                if shifted is not None:
                    return [-shifted if x < 0 else shifted]
            e = exp(ctx, -ctx.mpf(abs(x)))
            small, big = e / (1 + e), 1 / (1 + e)  # sigmoid(-|x|), sigmoid(|x|): no cancellation
            p, q = (big, small) if x > 0 else (small, big)
            sp_x, sp_neg_x = _softplus_pair(ctx, x)
            g = ctx.mpf(gamma)
            up = (1 - ctx.mpf(z)) * _weight(ctx, g * sp_neg_x) * (p + g * q * sp_x) if z < 1.0 else ctx.mpf(0)
            down = ctx.mpf(z) * _weight(ctx, g * sp_x) * (q + g * p * sp_neg_x) if z > 0.0 else ctx.mpf(0)
            return [up - down]

        return evaluate


_SHIFT_FROM = 64.0  # |x| above which the loss is evaluated as c*|x| - D (exp(-|x|) < 2**-92)


def _coefficient(z: float, negative: bool) -> Fraction:
    """The label coefficient of the term holding ``|x|``, exactly: ``z`` for ``x < 0``, ``1 - z`` otherwise
    (``1 - z`` in float64 would round: z = 0x1.ffc439221f303p-2 needs one more bit)."""
    return Fraction(z) if negative else 1 - Fraction(z)


def _exactly(ctx: Any, q: Fraction, extra: int = 0) -> tuple[Any, int]:
    """The dyadic ``q`` as a point interval (exact), and the bits it needs."""
    bits = max(q.numerator.bit_length(), 1) + extra
    with workprec(ctx, bits + 8):
        value = ctx.mpf(q.numerator) / q.denominator  # a power of two: exact
    return value, bits


def _weight(ctx: Any, t: Any) -> Any:
    """Enclosure of ``exp(-t)`` for ``t >= 0``, its upper end clamped to 1 (an exact bound: the weight
    ``p**gamma`` or ``(1 - p)**gamma`` never exceeds 1), so that it cannot push an enclosure across a
    rounding boundary the exact value only touches."""
    w = exp(ctx, -t)
    return ctx.mpf([w.a, min(w.b, ctx.mpf(1).b)])


def _shifted_loss(ctx: Any, gamma: float, a: float, c: Fraction) -> Any:
    """The loss at ``|x| = a > 64`` as ``c*a - D``, ``c`` the coefficient of the term holding ``a`` (``z`` for
    ``x < 0``, ``1 - z`` for ``x > 0``), ``c'`` the other one, ``l = log1p(exp(-a))``, ``W = exp(-gamma*l)``,
    ``V = exp(-gamma*(a + l))``::

        L = c*W*(a + l) + c'*V*l = c*a - D,    D = c*a*(1 - W) - l*(c*W + c'*V)

    There ``L`` differs from the dyadic ``c*a`` by about ``c*gamma*a*exp(-a)``: far below any working
    precision, so a direct enclosure straddles ``c*a`` when that is a power of two or a rounding midpoint
    (``x = -2**127``, ``z = 1``) and never settles. ``D`` is enclosed with relative accuracy (``1 - W`` from
    ``gamma*l - (gamma*l)**2/2 <= 1 - exp(-gamma*l) <= gamma*l``), and ``c*a`` is exact, so the enclosure's upper
    end is ``c*a`` rounded down at most (the subtraction is done with the bits ``c*a`` needs): the exact
    value is strictly inside. ``None`` when the enclosure of ``D`` is not positive (the direct form is used
    then)."""
    g = ctx.mpf(gamma)
    ca, bits = _exactly(ctx, c * Fraction(a))
    cc, _ = _exactly(ctx, c)
    l = log1p(ctx, exp(ctx, -ctx.mpf(a)))
    t = g * l
    one_minus_w = _one_minus_exp(ctx, t)
    w = _weight(ctx, t)
    v = _weight(ctx, g * (ctx.mpf(a) + l))
    other, _ = _exactly(ctx, 1 - c)
    d = ca * one_minus_w - l * (cc * w + other * v)
    if not d.a > 0:
        return None
    with workprec(ctx, max(ctx.prec, bits) + 16):
        return ca - d


def _one_minus_exp(ctx: Any, t: Any) -> Any:
    """Enclosure of ``1 - exp(-t)`` for ``t >= 0`` with relative accuracy: ``t - t**2/2 <= . <= t`` for tiny ``t``."""
    if t.b < ctx.mpf(2) ** -ctx.prec:
        return ctx.mpf([(t - t * t / 2).a, t.b])
    return 1 - _weight(ctx, t)


def _shifted_gradient(ctx: Any, gamma: float, a: float, c: Fraction) -> Any:
    """``|dL/dx|`` at ``|x| = a > 64`` as ``c + E`` (``c`` as in :func:`_shifted_loss`; the gradient is
    ``-(c + E)`` for ``x < 0``, ``c + E`` for ``x > 0``), with ``s = sigmoid(-a)``, ``l = log1p(exp(-a))``::

        E = c*(gamma*s*(a + l)*W - M) - c'*V*(s + gamma*(1 - s)*l),
        W = exp(-gamma*l),  M = 1 - exp(-(gamma + 1)*l),  V = exp(-gamma*(a + l))

    (the gradient formula of the module docstring with ``1 - s = exp(-l)``). ``E`` is of the order of
    ``exp(-a)``, so a direct enclosure straddles ``c`` (a power of two for ``z = 1/2``...) forever; here
    ``c`` is exact and ``E`` has relative accuracy. ``None`` when the enclosure of ``E`` contains 0."""
    g = ctx.mpf(gamma)
    big = ctx.mpf(a)
    e = exp(ctx, -big)
    s = e / (1 + e)
    l = log1p(ctx, e)
    w = _weight(ctx, g * l)
    m = _one_minus_exp(ctx, (g + 1) * l)
    v = _weight(ctx, g * (big + l))
    cc, bits = _exactly(ctx, c)
    other, _ = _exactly(ctx, 1 - c)
    err = cc * (g * s * (big + l) * w - m) - other * v * (s + g * (1 - s) * l)
    if not (err.a > 0 or err.b < 0):
        return None
    with workprec(ctx, max(ctx.prec, bits) + 16):  # c exact: the end on c's side stays on it
        return cc + err


def _softplus_pair(ctx: Any, x: float) -> tuple[Any, Any]:
    """Enclosures of ``sp(x) = -log(1 - p)`` and ``sp(-x) = -log p`` for a finite ``x``: ``|x| + l`` and
    ``l`` with ``l = log1p(exp(-|x|))`` (sums of non-negative terms)."""
    a = ctx.mpf(abs(x))
    small = log1p(ctx, exp(ctx, -a))
    large = a + small
    return (large, small) if x >= 0 else (small, large)


FAMILY = Focal()
