"""``softmax_ce``: softmax cross-entropy with soft labels over the last axis.

Definition (one example: logits ``x[0..K-1]``, labels ``z[0..K-1]`` in ``[0, 1]``, not required to sum to 1,
``S = sum(z)``; all taken exactly as the floats given)::

    L(x, z) = -sum_i z_i * log_softmax(x)_i = S * logsumexp(x) - sum_i z_i * x_i

evaluated, with ``m = max(x)`` attained at index ``j``, as a sum of non-negative terms (no cancellation)::

    L(x, z) = sum_i z_i * (m - x_i) + S * log1p(T),    T = sum_{i != j} exp(x_i - m)

Gradient with respect to the logits: ``dL/dx_i = S * softmax(x)_i - z_i``.

Limit values. Infinite logits are limits in which all logits of one infinite sign move together
(``x_i = +t`` or ``-t``, ``t -> inf``), so ``softmax`` is ``1/m`` on the ``m`` logits equal to ``+inf`` and
0 elsewhere; with no ``+inf``, ``-inf`` logits get probability 0 and the finite ones share the rest; with
every logit ``-inf``, softmax is uniform ``1/K``. The loss then is ``sum_i z_i * -log(softmax_i)`` with
``0 * log 0 = 0``: ``+inf`` when a positive label sits on a zero probability, else finite (e.g.
``x = [+inf, 3]``, ``z = [1, 0]`` gives 0; ``x = [+inf, +inf]``, ``z = [1, 0]`` gives ``log 2``). The
gradient ``S * softmax_i - z_i`` uses the same softmax (it is the limit of the gradient). A nan anywhere in
a row makes that row's loss and gradient nan. A label outside ``[0, 1]`` is a ``ValueError``.

The loss is a dyadic rational only where the ``log1p`` term vanishes (then it is computed exactly);
otherwise it is transcendental (Baker's theorem), so Ziv's strategy always settles. Likewise ``softmax_i``
is rational only when every finite logit is equal, which is handled in closed form.

Fast path (float64 over whole rows, bounds as in :mod:`oracles._fast`): ``d_i = m - x_i`` (error ``u*d_i``),
``e_i = exp(-d_i)`` (error ``e_i*(F + u*d_i)``), ``T`` the sum of the ``e_i`` but one maximal logit's,
``S = sum z``, ``A = sum z_i*d_i`` (non-negative terms: their errors plus ``(K-1)*u`` times the sum),
``log1p(T)`` (error ``e_T/(1 + T - e_T) + F*log1p(T)``), then ``A + S*log1p(T)``. Gradient:
``S * e_i / D - z_i`` with ``D = sum e_i``, relative errors added, plus ``u*|result|``. Eligible: rows of
finite values with ``S > 0``, ``K >= 2``, ``m - x_i`` finite, and for the gradient not all logits equal.
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
from ._family import Evaluator, Family, as_float_array, check_same_shape, check_unit_interval, exp, log, log1p
from ._family import ROW_REGIMES
from ._rows import row_all, row_any, row_argmax, row_max, row_sum


def _fsum(values: np.ndarray) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


def _iv(ctx: Any, value: Fraction) -> Any:
    return ctx.mpf(value.numerator) / value.denominator if value.denominator != 1 else ctx.mpf(value.numerator)


def row_loss(x: np.ndarray, z: np.ndarray) -> Evaluator:
    """Evaluator of the softmax cross-entropy of one row (see the module docstring)."""
    if np.isnan(x).any() or np.isnan(z).any():
        return lambda ctx: [math.nan]
    pos = x == np.inf
    if pos.any():
        if (z[~pos] > 0).any():
            return lambda ctx: [math.inf]
        return _scaled_log(_fsum(z[pos]), int(pos.sum()))
    neg = x == -np.inf
    if neg.all():
        return _scaled_log(_fsum(z), x.size)
    if (z[neg] > 0).any():
        return lambda ctx: [math.inf]
    xf, zf = x[~neg], z[~neg]
    total = _fsum(zf)
    values, counts = np.unique(xf, return_counts=True)
    m = float(values[-1])
    if total == 0 or (values.size == 1 and counts[0] == 1):
        return lambda ctx: [Fraction(0)]  # every label 0, or a single finite logit: L = z*(m - m) = 0
    others = [(float(v), int(c)) for v, c in zip(values[:-1], counts[:-1])]
    ties = int(counts[-1]) - 1
    weighted = [(float(zi), float(xi)) for zi, xi in zip(zf, xf) if zi > 0 and xi != m]

    def evaluate(ctx: Any) -> list:
        mm = ctx.mpf(m)
        t = ctx.mpf(ties)
        for v, c in others:
            t = t + c * exp(ctx, ctx.mpf(v) - mm)
        a = ctx.mpf(0)
        for zi, xi in weighted:
            a = a + ctx.mpf(zi) * (mm - ctx.mpf(xi))
        return [a + _iv(ctx, total) * log1p(ctx, t)]

    return evaluate


def _scaled_log(scale: Fraction, count: int) -> Evaluator:
    """Evaluator of ``scale * log(count)`` (exactly 0 when either factor vanishes)."""
    if scale == 0 or count == 1:
        return lambda ctx: [Fraction(0)]
    return lambda ctx: [_iv(ctx, scale) * log(ctx, ctx.mpf(count))]


def row_gradient(x: np.ndarray, z: np.ndarray) -> Evaluator:
    """Evaluator of ``S * softmax(x) - z`` for one row (see the module docstring)."""
    k = x.size
    if np.isnan(x).any() or np.isnan(z).any():
        return lambda ctx: [math.nan] * k
    labels = [Fraction(float(v)) for v in z]
    total = sum(labels, Fraction(0))
    pos = x == np.inf
    neg = x == -np.inf
    if pos.any() or neg.all():
        share = pos if pos.any() else np.ones(k, dtype=bool)
        p = Fraction(1, int(share.sum()))
        exact = [total * p - zi if s else -zi for zi, s in zip(labels, share)]
        return lambda ctx: exact
    finite = ~neg
    xf = x[finite]
    if total == 0 or (xf == xf[0]).all():
        p = Fraction(1, int(finite.sum()))
        exact = [total * p - zi if f else -zi for zi, f in zip(labels, finite)]
        return lambda ctx: exact
    m = float(xf.max())
    values, counts = np.unique(xf, return_counts=True)
    ties = int(counts[-1])  # how many logits attain the maximum

    def evaluate(ctx: Any) -> list:
        mm = ctx.mpf(m)
        expd = {float(v): exp(ctx, ctx.mpf(float(v)) - mm) for v in values}
        rest = ctx.mpf(0)  # sum of exp(x_i - m) over the logits below the maximum
        for v, c in zip(values[:-1], counts[:-1]):
            rest = rest + int(c) * expd[float(v)]
        denominator = ties + rest
        s = _iv(ctx, total)
        out: list = []
        for xi, zi, f in zip(x, labels, finite):
            if not f:
                out.append(-zi)
            elif xi == m:
                # softmax_j = 1/(c + rest) at the c maximal logits, so S * softmax_j - z_j is
                # (S/c - z_j) - S * rest / (c * (c + rest)): no cancellation when rest is tiny
                out.append(_iv(ctx, total / ties - zi) - s * rest / (ties * (ties + rest)))
            else:
                out.append(s * expd[float(xi)] / denominator - _iv(ctx, zi))
        return out

    return evaluate


def _fast_parts(x: np.ndarray, z: np.ndarray) -> tuple:
    """Shared float64 pieces of the fast loss and gradient of rows ``x``, ``z`` of shape ``(n, K)``."""
    k = x.shape[-1]
    m = row_max(x, keepdims=True)
    d = m - x
    e = np.exp(-d)
    e_err = e * (F + U * d)
    s = row_sum(z)
    s_err = (k - 1) * U * s
    eligible = row_all(np.isfinite(x)) & row_all(np.isfinite(z)) & row_all(np.isfinite(d))
    eligible &= (s > 0) & (k >= 2)
    return m, d, e, e_err, s, s_err, eligible


def fast_row_loss(x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate:
    """Fast estimates of :func:`row_loss` over rows ``(n, K)`` (see the module docstring)."""
    if precise:
        return _row_loss_dd(x, z)
    k = x.shape[-1]
    with np.errstate(all="ignore"):
        m, d, e, e_err, s, s_err, eligible = _fast_parts(x, z)
        first_max = row_argmax(x)[..., None] == np.arange(k)
        others = np.where(first_max, 0.0, e)
        t = row_sum(others)
        t_err = row_sum(np.where(first_max, 0.0, e_err)) + (k - 1) * U * t
        log_term = np.log1p(t)
        log_err = t_err / (1.0 + t - t_err) + F * log_term
        a = row_sum(z * d)
        a_err = (k + 1) * U * a
        b = s * log_term
        b_err = s_err * log_term + s * log_err + U * b
        value = a + b
        delta = a_err + b_err + U * value
    # eligible rows have K >= 2 finite logits and sum z > 0: lse > x_i for every i, so the loss is positive
    return Estimate(value, delta, eligible & (t_err < 0.5), positive=True)


def fast_row_gradient(x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate:
    """Fast estimates of :func:`row_gradient` over rows ``(n, K)`` (shape ``(n, K)``)."""
    if precise:
        return _row_gradient_dd(x, z)
    k = x.shape[-1]
    with np.errstate(all="ignore"):
        m, d, e, e_err, s, s_err, eligible = _fast_parts(x, z)
        total = row_sum(e, keepdims=True)
        total_err = row_sum(e_err, keepdims=True) + (k - 1) * U * total
        s = s[..., None]
        p = s * e / total
        p_err = p * (s_err[..., None] / s + total_err / total + 2 * U) + s * e_err / total
        value = p - z
        delta = p_err + U * np.abs(value)
        # The one labelled class of a one-hot row (z_c = S, the other labels 0): S * p_c - S cancels as p_c
        # tends to 1, so it is taken as -S * T / total, T = the sum of the other e_j: summed directly when c
        # is the first maximum (e_c = 1: T is the loss's sum of the others), else total - e_c, which is at
        # least total / 2 (e_c <= 1 <= total - e_c). Relative error: S's, T's and total's, and 2u.
        labelled = z != 0
        single = row_sum(labelled) == 1
        if single.any():
            c = row_argmax(labelled)[..., None]
            first = row_argmax(x)[..., None]
            is_first = c == first
            others = np.where(np.arange(k) == first, 0.0, e)
            t = row_sum(others, keepdims=True)
            t_err = row_sum(np.where(np.arange(k) == first, 0.0, e_err), keepdims=True) + (k - 1) * U * t
            e_c, e_c_err = np.take_along_axis(e, c, axis=-1), np.take_along_axis(e_err, c, axis=-1)
            rest = np.where(is_first, t, total - e_c)
            rest_err = np.where(is_first, t_err, total_err + e_c_err + U * rest)
            q = s * rest / total
            q_err = q * (s_err[..., None] / s + rest_err / rest + total_err / total + 2 * U)
            q_err = np.where(rest > 0, q_err, 0.0)  # T underflowed to 0: the absolute floor covers it
            at = single[..., None] & (np.arange(k) == c)
            value = np.where(at, -q, value)
            delta = np.where(at, q_err, delta)
        eligible &= row_any(x != m)
        # 0 < softmax_i < 1 for finite rows of K >= 2, below 1/2 where x_i is not a maximum, above 1/2 where it
        # is the larger of two: S * softmax_i - z_i lies above -z_i (or S/2 - z_i) and below S - z_i (or
        # S/2 - z_i), where those are exact (labels of 0s and 1s: S an integer, S/2 - z_i and S - z_i exact)
        whole = row_all((z == 0) | (z == 1), keepdims=True)
        below = np.where(whole, np.where(x < m, s / 2 - z, s - z), np.inf)
        above = -z
        if k == 2:
            above = np.where(whole & (x > x[..., ::-1]), s / 2 - z, -z)
    return Estimate(value, delta, np.broadcast_to(eligible[..., None], x.shape), above=above, below=below)


def _parts_dd(x: np.ndarray, z: np.ndarray) -> tuple:
    """Double-double pieces: ``d = m - x`` (exact, ``two_sum``), ``e = exp(-d)`` (relative error
    ``EXP_ERROR``), ``S = sum z`` (tree sum: ``depth * DD_OP`` relative), and the tree depth."""
    k = x.shape[-1]
    depth = max(1, int(np.ceil(np.log2(k))))
    m = row_max(x, keepdims=True)
    dh, dl = dd.two_sum(np.broadcast_to(m, x.shape), -x)
    eh, el = dd.exp(-dh, -dl)
    sh, sl = dd.tree_sum(z, np.zeros_like(z))
    eligible = row_all(np.isfinite(x)) & row_all(np.isfinite(z)) & row_all(np.isfinite(dh))
    eligible &= (sh > 0) & (k >= 2)
    return dh, dl, eh, el, sh, sl, depth, eligible


def _row_loss_dd(x: np.ndarray, z: np.ndarray) -> Estimate:
    """Double-double loss of rows: ``T`` (tree sum of the ``e_i`` but one maximal logit's: relative error
    ``EXP_ERROR + depth * DD_OP``), ``log1p(T)`` (its bound plus ``T``'s error: derivative at most 1),
    ``A = sum z_i * d_i`` (``(1 + depth) * DD_OP``), ``A + S * log1p(T)`` (``DD_OP`` per operation)."""
    k = x.shape[-1]
    with np.errstate(all="ignore"):
        dh, dl, eh, el, sh, sl, depth, eligible = _parts_dd(x, z)
        first_max = row_argmax(x)[..., None] == np.arange(k)
        th, tl = dd.tree_sum(np.where(first_max, 0.0, eh), np.where(first_max, 0.0, el))
        t_err = (dd.EXP_ERROR + depth * dd.DD_OP) * th
        gh, gl, g_err = dd.log1p(th, tl)
        g_err = g_err + t_err
        ph, pl = dd.mul_f(dh, dl, z)
        ah, al = dd.tree_sum(ph, pl)
        a_err = (1 + depth) * dd.DD_OP * ah
        bh, bl = dd.mul(sh, sl, gh, gl)
        b_err = depth * dd.DD_OP * sh * gh + sh * g_err + dd.DD_OP * bh
        vh, vl = dd.add(ah, al, bh, bl)
        delta = a_err + b_err + dd.DD_OP * np.abs(vh)
    return Estimate(vh, delta, eligible, vl)


def _row_gradient_dd(x: np.ndarray, z: np.ndarray) -> Estimate:
    """Double-double gradient of rows: ``S * e_i / D`` with ``D`` the tree sum of the ``e_i``, relative
    error ``depth*DD_OP`` (``S``) ``+ EXP_ERROR`` (``e_i``) ``+ EXP_ERROR + depth*DD_OP`` (``D``) ``+ 2*DD_OP``,
    then ``- z_i`` (``DD_OP * |result|``)."""
    with np.errstate(all="ignore"):
        dh, dl, eh, el, sh, sl, depth, eligible = _parts_dd(x, z)
        th, tl = dd.tree_sum(eh, el)
        sh, sl, th, tl = sh[..., None], sl[..., None], th[..., None], tl[..., None]
        ph, pl = dd.div(*dd.mul(eh, el, sh, sl), th, tl)
        relative = 2 * depth * dd.DD_OP + 2 * dd.EXP_ERROR + 2 * dd.DD_OP
        vh, vl = dd.add_f(ph, pl, -z)
        delta = relative * ph + dd.DD_OP * np.abs(vh)
        eligible &= row_any(dh != 0)
    return Estimate(vh, delta, np.broadcast_to(eligible[..., None], x.shape), vl)


class SoftmaxCE(Family):
    name = "softmax_ce"
    input_name = "logits"
    row_wise = True
    definition = "-sum_i z_i * log_softmax(x)_i over the last axis, soft labels in [0, 1]"
    regimes = ROW_REGIMES  # special, tiny, confident (confident-correct rows), hard, soft
    benign = (((-1.0, 0.5, 2.0, 0.25), (0.0, 1.5, -0.5, 1.0), (1.75, -2.0, 0.75, 0.0)),
              ((0.25, 0.5, 0.0, 0.25), (0.25, 0.0, 0.5, 0.25), (0.0, 0.5, 0.25, 0.25)))

    def prepare(self, inputs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        x = as_float_array(self.name, "logits", inputs)
        z = as_float_array(self.name, "labels", labels)
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"{self.name}: logits shape {x.shape} has no class axis; pass logits of shape [..., K], K >= 1")
        check_same_shape(self.name, "logits", x, "labels", z)
        check_unit_interval(self.name, "labels", z, "soft labels are class probabilities")
        return x, z

    def loss(self, x: np.ndarray, z: np.ndarray) -> Evaluator:
        return row_loss(x, z)

    def gradient(self, x: np.ndarray, z: np.ndarray) -> Evaluator:
        return row_gradient(x, z)

    def fast_loss(self, x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate:
        return fast_row_loss(x, z, precise)

    def fast_gradient(self, x: np.ndarray, z: np.ndarray, precise: bool = False) -> Estimate:
        return fast_row_gradient(x, z, precise)


FAMILY = SoftmaxCE()
