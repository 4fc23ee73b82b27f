"""``binary_ce``: binary cross-entropy on probabilities.

Definition (``p`` the predicted probability, ``z`` the label, both exactly as given, both in ``[0, 1]``)::

    L(p, z) = -(z * log(p) + (1 - z) * log(1 - p))
            = z * (-log p) + (1 - z) * (-log1p(-p))        (two non-negative terms)

A term whose coefficient is 0 contributes exactly 0 (the limit ``0 * log 0 = 0``), so ``L(0, 0) = L(1, 1) = 0``;
``L`` is ``+inf`` where a term is infinite: ``p = 0`` with ``z > 0``, or ``p = 1`` with ``z < 1``.

Gradient with respect to the probability (a rational function, so computed exactly)::

    dL/dp = -z/p + (1 - z)/(1 - p) = (p - z) / (p * (1 - p))

with the same convention for vanishing terms: at ``p = 0`` it is ``-inf`` if ``z > 0`` else ``1``; at
``p = 1`` it is ``+inf`` if ``z < 1`` else ``-1``. A nan probability or label gives nan; a value outside
``[0, 1]`` is a ``ValueError``.

Fast path (float64, bounds as in :mod:`oracles._fast`): ``z * -log(p)`` (``-log1p(p - 1)`` above 1/2, where
``p - 1`` is exact) has error ``(F + u)`` relative, ``(1 - z) * -log1p(-p)`` (``-log(1 - p)`` above 1/2,
``1 - p`` exact) ``(F + 2u)``, their sum ``u`` more. The gradient ``(p - z) / (p * (1 - p))`` takes four
roundings, bounded by ``5u`` relative with margin; it is eligible for ``2**-900 <= p < 1`` (no underflow in
``p * (1 - p)``) and keeps the status ``exact`` of the closed form.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from ._ziv import CONVERGED, EXACT

from ._fast import FUNCTION_ERROR as F
from ._fast import UNIT_ROUNDOFF as U
from . import _dd as dd
from ._fast import Estimate
from ._family import Evaluator, Family, as_float_array, check_same_shape, check_unit_interval, log, log1p


class BinaryCE(Family):
    name = "binary_ce"
    input_name = "probs"
    definition = "-(z*log(p) + (1-z)*log(1-p)), elementwise, 0*log(0) = 0"
    input_domain = "unit"  # probabilities in [0, 1]; regimes: the elementwise ones (oracles._family)
    benign = (((0.125, 0.3, 0.5), (0.6, 0.8, 0.9)), ((0.5, 0.25, 1.0), (0.0, 0.75, 0.5)))

    def prepare(self, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        p = as_float_array(self.name, "probs", inputs)
        z = as_float_array(self.name, "labels", labels)
        check_same_shape(self.name, "probs", p, "labels", z)
        check_unit_interval(self.name, "probs", p, "probs are probabilities; pass sigmoid outputs or use sigmoid_ce")
        check_unit_interval(self.name, "labels", z, "labels are probabilities of the positive class")
        return p, z

    def loss(self, p: float, z: float) -> Evaluator:
        if math.isnan(p) or math.isnan(z):
            return lambda ctx: [math.nan]
        if (p == 0.0 and z > 0.0) or (p == 1.0 and z < 1.0):
            return lambda ctx: [math.inf]
        # A term is exactly zero when its coefficient is 0 or its logarithm is log(1).
        first = z > 0.0 and p < 1.0
        second = z < 1.0 and p > 0.0
        if not (first or second):
            return lambda ctx: [Fraction(0)]

        def evaluate(ctx: Any) -> list:
            total = ctx.mpf(0)
            if first:  # z * -log(p); near 1 through log1p of the exact p - 1
                neg_log_p = -log1p(ctx, ctx.mpf(p) - 1) if p > 0.5 else -log(ctx, ctx.mpf(p))
                total = total + ctx.mpf(z) * neg_log_p
            if second:  # (1 - z) * -log(1 - p)
                neg_log_q = -log1p(ctx, -ctx.mpf(p)) if p <= 0.5 else -log(ctx, 1 - ctx.mpf(p))
                total = total + (1 - ctx.mpf(z)) * neg_log_q
            return [total]

        return evaluate

    def gradient(self, p: float, z: float) -> Evaluator:
        if math.isnan(p) or math.isnan(z):
            return lambda ctx: [math.nan]
        fz = Fraction(z)
        if p == 0.0:
            value: Any = -math.inf if z > 0.0 else 1 - fz
        elif p == 1.0:
            value = math.inf if z < 1.0 else -fz
        else:
            fp = Fraction(p)
            value = (fp - fz) / (fp * (1 - fp))
        return lambda ctx: [value]

    fast_status = {"loss": CONVERGED, "gradient": EXACT}

    def fast_loss(self, p: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate:
        if precise:
            return _loss_dd(p, z)
        with np.errstate(all="ignore"):
            first = (z > 0) & (p < 1)
            second = (z < 1) & (p > 0)
            upper = p > 0.5
            neg_log_p = np.where(upper, -np.log1p(p - 1.0), -np.log(p))
            neg_log_q = np.where(upper, -np.log(1.0 - p), -np.log1p(-p))
            t1 = np.where(first, z * neg_log_p, 0.0)
            t2 = np.where(second, (1.0 - z) * neg_log_q, 0.0)
            value = t1 + t2
            delta = (F + U) * t1 + (F + 2 * U) * t2 + U * value
        return Estimate(value, delta, _loss_eligible(p, z))

    def fast_gradient(self, p: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate:
        eligible = np.isfinite(z) & (p >= 2.0**-900) & (p < 1)
        with np.errstate(all="ignore"):
            if precise:  # p - z and 1 - p exact, then one mul_f and one div
                nh, nl = dd.two_sum(p, -z)
                qh, ql = dd.two_sum(np.ones_like(p), -p)
                dh, dl = dd.mul_f(qh, ql, p)
                vh, vl = dd.div(nh, nl, dh, dl)
                return Estimate(vh, 3 * dd.DD_OP * np.abs(vh), eligible, vl)
            value = (p - z) / (p * (1.0 - p))
            delta = 5 * U * np.abs(value)
        # 0 < p < 1: with z = 0 the gradient 1/(1-p) is above 1, with z = 1 it is -1/p, below -1
        above = np.where(z == 0, 1.0, -np.inf)
        below = np.where(z == 1, -1.0, np.inf)
        return Estimate(value, delta, eligible, above=above, below=below)


def _loss_eligible(p: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Finite inputs with a non-vanishing term and a finite loss (the rest are closed forms)."""
    some_term = ((z > 0) & (p < 1)) | ((z < 1) & (p > 0))
    infinite = ((p == 0) & (z > 0)) | ((p == 1) & (z < 1))
    return np.isfinite(p) & np.isfinite(z) & some_term & ~infinite


def _on(mask: np.ndarray, fn, *args: np.ndarray) -> tuple[np.ndarray, ...]:
    """``fn(*args)`` evaluated on the elements in ``mask`` only (zeros elsewhere)."""
    parts = fn(*(a[mask] for a in args))
    out = tuple(np.zeros(mask.shape) for _ in parts)
    for target, part in zip(out, parts):
        target[mask] = part
    return out


def _loss_dd(p: np.ndarray, z: np.ndarray) -> Estimate:
    """Double-double loss: ``-log p`` by :func:`oracles._dd.log`; ``-log(1 - p)`` as ``-log1p(-p)`` for
    ``p <= 1/2`` and ``-log(1 - p)`` (exact ``1 - p``) above; times ``z`` (``mul_f``) and ``1 - z`` (exact,
    ``mul``), one ``add``: the logarithms' bounds scaled by the coefficients, plus ``DD_OP`` per product and
    for the sum."""
    eligible = _loss_eligible(p, z)
    with np.errstate(all="ignore"):
        first = eligible & (z > 0) & (p < 1)
        second = eligible & (z < 1) & (p > 0)
        lower = second & (p <= 0.5)
        upper = second & (p > 0.5)
        ph, pl, p_err = _on(first, dd.log, p)
        qh, ql, q_err = _on(lower, dd.log1p, -p, np.zeros_like(p))
        uh, ul, u_err = _on(upper, dd.log, 1.0 - p)
        qh, ql, q_err = qh + uh, ql + ul, q_err + u_err  # disjoint supports: exact
        t1h, t1l = dd.mul_f(-ph, -pl, z)
        wh, wl = dd.two_sum(np.ones_like(z), -z)
        t2h, t2l = dd.mul(wh, wl, -qh, -ql)
        t1h, t1l = np.where(first, t1h, 0.0), np.where(first, t1l, 0.0)
        t2h, t2l = np.where(second, t2h, 0.0), np.where(second, t2l, 0.0)
        vh, vl = dd.add(t1h, t1l, t2h, t2l)
        delta = z * p_err + wh * q_err + dd.DD_OP * (t1h + t2h + np.abs(vh))
    return Estimate(vh, delta, eligible, vl)


FAMILY = BinaryCE()
