"""``sigmoid_ce``: sigmoid cross-entropy with logits, hard and soft labels.

Definition (``x`` the logit, ``z`` the label, both taken exactly as the floats given, ``0 <= z <= 1``)::

    L(x, z) = z * -log(sigmoid(x)) + (1 - z) * -log(1 - sigmoid(x))
            = z * softplus(-x) + (1 - z) * softplus(x),      softplus(t) = log(1 + exp(t))

evaluated as the sum of two non-negative terms, so no cancellation ever happens::

    L(x, z) = |x| * w + log1p(exp(-|x|)),   w = 1 - z if x >= 0 else z

Gradient with respect to the logit: ``dL/dx = sigmoid(x) - z``.

Limit values: ``x = +inf`` gives ``L = 0`` if ``z == 1`` else ``+inf``, gradient ``1 - z``;
``x = -inf`` gives ``L = 0`` if ``z == 0`` else ``+inf``, gradient ``-z``. A nan logit or label gives nan.
A label outside ``[0, 1]`` is a ``ValueError``. For finite inputs the loss is never a dyadic rational
(Lindemann–Weierstrass), so Ziv's strategy always settles.

Fast path (float64, bounds as in :mod:`oracles._fast`, ``u = 2**-53``, ``F`` numpy's function error): the
loss ``a*w~ + log1p(e~)`` with ``a = |x|``, ``w~ = fl(1 - z)`` or ``z``, ``e~ = exp(-a)`` has error at most
``2u*a*w + F*e + F*log1p(e) + u*L``; the gradient ``s~ = e~ / (1 + e~)`` has relative error ``2F + 2u``, and
``(1 - z) - s`` or ``s - z`` adds ``u*(1 - z)`` and ``u*|result|``. Finite inputs with ``x != 0`` (the
gradient at 0 is a closed form) are eligible.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from ._fast import FUNCTION_ERROR as F
from ._fast import UNIT_ROUNDOFF as U
from . import _dd as dd
from ._fast import Estimate
from ._family import Evaluator, Family, exp, log1p, logits_and_soft_labels

_HALF = Fraction(1, 2)


class SigmoidCE(Family):
    name = "sigmoid_ce"
    input_name = "logits"
    definition = "z*-log(sigmoid(x)) + (1-z)*-log(1-sigmoid(x)), elementwise"
    input_domain = "real"  # logits, ±inf and nan included; regimes: the elementwise ones (oracles._family)
    benign = (((-1.5, -0.75, 0.0), (0.5, 1.25, 2.0)), ((0.5, 0.25, 0.5), (1.0, 0.75, 0.25)))

    def prepare(self, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        return logits_and_soft_labels(self.name, inputs, labels)

    def loss(self, x: float, z: float) -> Evaluator:
        if math.isnan(x) or math.isnan(z):
            return lambda ctx: [math.nan]
        if math.isinf(x):
            hit = z == 1.0 if x > 0 else z == 0.0
            value: Any = Fraction(0) if hit else math.inf
            return lambda ctx: [value]
        a = abs(x)

        def evaluate(ctx: Any) -> list:
            w = ctx.mpf(1) - ctx.mpf(z) if x >= 0 else ctx.mpf(z)
            return [ctx.mpf(a) * w + log1p(ctx, exp(ctx, -ctx.mpf(a)))]

        return evaluate

    def gradient(self, x: float, z: float) -> Evaluator:
        if math.isnan(x) or math.isnan(z):
            return lambda ctx: [math.nan]
        if math.isinf(x) or x == 0.0:
            sig = Fraction(1) if x > 0 else (_HALF if x == 0.0 else Fraction(0))
            value = sig - Fraction(z)
            return lambda ctx: [value]

        def evaluate(ctx: Any) -> list:
            e = exp(ctx, -ctx.mpf(abs(x)))
            s = e / (1 + e)  # sigmoid(-|x|), in (0, 1/2)
            if x > 0:  # sigmoid(x) - z = (1 - z) - sigmoid(-x)
                return [(ctx.mpf(1) - ctx.mpf(z)) - s]
            return [s - ctx.mpf(z)]

        return evaluate

    def fast_loss(self, x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate:
        if precise:
            return _loss_dd(x, z)
        with np.errstate(all="ignore"):
            a = np.abs(x)
            positive = x >= 0
            w = np.where(positive, 1.0 - z, z)
            e = np.exp(-a)
            log_term = np.log1p(e)
            linear = a * w
            value = linear + log_term
            delta = 2 * U * linear + F * e + F * log_term + U * value
        # a * w >= 0 and log1p(exp(-a)) > 0: every finite example's loss is positive
        return Estimate(value, delta, np.isfinite(x) & np.isfinite(z), positive=True)

    def fast_gradient(self, x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate:
        if precise:
            return _gradient_dd(x, z)
        with np.errstate(all="ignore"):
            e = np.exp(-np.abs(x))
            s = e / (1.0 + e)  # sigmoid(-|x|)
            w = 1.0 - z
            value = np.where(x > 0, w - s, s - z)
            delta = (2 * F + 2 * U) * s + np.where(x > 0, U * w, 0.0) + U * np.abs(value)
            # 0 < sigmoid(-|x|) < 1/2 for finite x != 0: the gradient lies in (1/2 - z, 1 - z) for x > 0 and in
            # (-z, 1/2 - z) for x < 0; each bound is used where its float64 value is exact (w - 1 and, for
            # z < 1/4, h - 1/2 are exact by Sterbenz; for z >= 1/4, 1/2 - z is)
            h = 0.5 - z
            whole, half = w - 1.0 == -z, (z >= 0.25) | (h - 0.5 == -z)
            below = np.where(x > 0, np.where(whole, w, np.inf), np.where(half, h, np.inf))
            above = np.where(x > 0, np.where(half, h, -np.inf), -z)
        return Estimate(value, delta, np.isfinite(x) & np.isfinite(z) & (x != 0), above=above, below=below)


def _weight_dd(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``1 - z`` (``x >= 0``) or ``z``, exactly, as a double-double."""
    wh, wl = dd.two_sum(np.ones_like(z), -z)
    positive = x >= 0
    return np.where(positive, wh, z), np.where(positive, wl, 0.0)


def _loss_dd(x: np.ndarray, z: np.ndarray) -> Estimate:
    """Double-double loss: ``a * w`` (``a`` and ``w`` scaled by powers of two into ``[1/2, 1)`` so that the
    product can neither overflow in the splitting nor lose its tail to underflow; one ``mul_f``), ``log1p(exp(-a))`` (``exp``'s error passes through ``log1p`` unamplified,
    its derivative being at most 1), one ``add``."""
    with np.errstate(all="ignore"):
        a = np.abs(x)
        wh, wl = _weight_dd(x, z)
        m, e = np.frexp(a)  # both factors scaled into [1/2, 1): the product's tail cannot underflow
        _, f = np.frexp(wh)
        w_scaled = np.ldexp(wh, -f)
        lh, ll = dd.mul_f(w_scaled, np.ldexp(wl, -f), m)
        lh, ll = np.ldexp(lh, e + f), np.ldexp(ll, e + f)
        eh, el = dd.exp(-a, np.zeros_like(a))
        gh, gl, g_err = dd.log1p(eh, el)
        vh, vl = dd.add(lh, ll, gh, gl)
        delta = dd.DD_OP * np.abs(lh) + dd.EXP_ERROR * eh + g_err + dd.DD_OP * np.abs(vh)
        # a proven bound for the narrow formats' midpoints (oracles._fast, "Midpoints"): log1p(exp(-a)) > 0,
        # so the loss lies above a * w wherever that product is a float64 number: w exact (wl = 0) and the
        # error-free product of the scaled factors without a tail, scaled back without underflow. Where
        # exp(-a) underflows the loss is a * w plus a term no double-double holds (x = 31744, z = 2**-7).
        ph, pe = dd.two_prod(w_scaled, m)
        linear = np.ldexp(ph, e + f)
        exact = (wl == 0) & (pe == 0) & np.isfinite(linear) & ((linear == 0) | (np.abs(linear) >= 2.0**-1022))
        above = np.where(exact, linear, -np.inf)
    return Estimate(vh, delta, np.isfinite(x) & np.isfinite(z), vl, above=above)


def _gradient_dd(x: np.ndarray, z: np.ndarray) -> Estimate:
    """Double-double gradient: ``s = e / (1 + e)`` has relative error ``2*EXP_ERROR + 2*DD_OP``; then
    ``(1 - z) - s`` (exact ``1 - z``) or ``s - z``, one ``add`` (``DD_OP * |result|``)."""
    with np.errstate(all="ignore"):
        a = np.abs(x)
        eh, el = dd.exp(-a, np.zeros_like(a))
        dh, dl = dd.add_f(eh, el, 1.0)
        sh, sl = dd.div(eh, el, dh, dl)
        wh, wl = dd.two_sum(np.ones_like(z), -z)
        ph, pl = dd.add(wh, wl, -sh, -sl)
        nh, nl = dd.add_f(sh, sl, -z)
        positive = x > 0
        vh, vl = np.where(positive, ph, nh), np.where(positive, pl, nl)
        delta = (2 * dd.EXP_ERROR + 2 * dd.DD_OP) * sh + dd.DD_OP * np.abs(vh)
        # 0 < s < 1/2 and 0 <= z: for x > 0 the gradient (1 - z) - s lies in (1/2 - z, 1 - z), below 1 too; for
        # x < 0, s - z lies in (-z, 1/2 - z), below 1/2 too (bounds for the narrow formats' second tier, each
        # where it is a float64 number: 1 - z and 1/2 - z where their two_sum has no tail)
        hh, hl = dd.two_sum(np.full_like(z, 0.5), -z)
        below = np.where(positive, np.where(wl == 0, wh, 1.0), np.where(hl == 0, hh, 0.5))
        above = np.where(positive, np.where(hl == 0, hh, -np.inf), -z)
    return Estimate(vh, delta, np.isfinite(x) & np.isfinite(z) & (x != 0), vl, above=above, below=below)


FAMILY = SigmoidCE()
