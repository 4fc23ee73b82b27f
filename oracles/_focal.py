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

from ._family import Evaluator, Family, Param, as_float_array, check_same_shape, check_unit_interval, exp, log1p
from ._sigmoid_ce import FAMILY as _SIGMOID_CE

_HALF = Fraction(1, 2)


class Focal(Family):
    name = "focal"
    input_name = "logits"
    input_domain = "real"
    definition = "-[z*(1-p)**gamma*log(p) + (1-z)*p**gamma*log(1-p)], p = sigmoid(x), elementwise"
    params = (Param("gamma", 2.0, 0.0, math.inf, "focusing exponent: (1-p)**gamma weights -log p; 0 gives sigmoid_ce"),)
    catalogue_params = ({"gamma": 0.5},)

    def prepare(self, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        x = as_float_array(self.name, "logits", inputs)
        z = as_float_array(self.name, "labels", labels)
        check_same_shape(self.name, "logits", x, "labels", z)
        check_unit_interval(self.name, "labels", z, "labels are probabilities of the positive class")
        return x, z

    @property
    def gamma(self) -> float:
        return float(self.values["gamma"])

    def loss(self, x: float, z: float) -> Evaluator:
        gamma = self.gamma
        if gamma == 0.0 or math.isnan(x) or math.isnan(z) or math.isinf(x):
            return _SIGMOID_CE.loss(x, z)  # nan, the limits at ±inf, and gamma = 0: sigmoid_ce's values
        first, second = z > 0.0, z < 1.0  # which label coefficients are non-zero

        def evaluate(ctx: Any) -> list:
            sp_x, sp_neg_x = _softplus_pair(ctx, x)
            total = ctx.mpf(0)
            g = ctx.mpf(gamma)
            if first:  # z * q**gamma * -log p
                total = total + ctx.mpf(z) * exp(ctx, -g * sp_x) * sp_neg_x
            if second:  # (1 - z) * p**gamma * -log(1 - p)
                total = total + (1 - ctx.mpf(z)) * exp(ctx, -g * sp_neg_x) * sp_x
            return [total]

        return evaluate

    def gradient(self, x: float, z: float) -> Evaluator:
        gamma = self.gamma
        if gamma == 0.0 or math.isnan(x) or math.isnan(z) or math.isinf(x):
            return _SIGMOID_CE.gradient(x, z)
        if x == 0.0 and z == 0.5:
            return lambda ctx: [Fraction(0)]

        def evaluate(ctx: Any) -> list:
            e = exp(ctx, -ctx.mpf(abs(x)))
            small, big = e / (1 + e), 1 / (1 + e)  # sigmoid(-|x|), sigmoid(|x|): no cancellation
            p, q = (big, small) if x > 0 else (small, big)
            sp_x, sp_neg_x = _softplus_pair(ctx, x)
            g = ctx.mpf(gamma)
            up = (1 - ctx.mpf(z)) * exp(ctx, -g * sp_neg_x) * (p + g * q * sp_x) if z < 1.0 else ctx.mpf(0)
            down = ctx.mpf(z) * exp(ctx, -g * sp_x) * (q + g * p * sp_neg_x) if z > 0.0 else ctx.mpf(0)
            return [up - down]

        return evaluate


def _softplus_pair(ctx: Any, x: float) -> tuple[Any, Any]:
    """Enclosures of ``sp(x) = -log(1 - p)`` and ``sp(-x) = -log p`` for a finite ``x``: ``|x| + l`` and
    ``l`` with ``l = log1p(exp(-|x|))`` (sums of non-negative terms)."""
    a = ctx.mpf(abs(x))
    small = log1p(ctx, exp(ctx, -a))
    large = a + small
    return (large, small) if x >= 0 else (small, large)


FAMILY = Focal()
