"""``accurate``: loss formulas of our own, within 2 ULP of the exact value in every family and format.

Public API (numpy arrays in, an array of the input dtype out; the shapes, label domains and limit values
of :mod:`oracles` for each family)::

    sigmoid_ce(x, z)            sigmoid_ce_grad(x, z)           # elementwise; z in [0, 1]
    binary_ce(p, z)             binary_ce_grad(p, z)            # elementwise; p, z in [0, 1]
    softmax_ce(x, z)            softmax_ce_grad(x, z)           # rows [..., K]; z in [0, 1]
    sparse_softmax_ce(x, c)     sparse_softmax_ce_grad(x, c)    # rows [..., K]; int class index [...]

Every function accepts float16, bfloat16, float32 and float64 and returns that dtype. Nothing here calls
:mod:`oracles` (a candidate is never scored against itself); the README section "How ``accurate`` stays
within 2 ULP" tells the same story in prose.

Three ideas carry every formula.

1. **Sums of non-negative terms only.** With ``a = |x|`` and ``w = 1 - z`` (``x >= 0``) or ``z`` (``x < 0``)::

       sigmoid_ce = a*w + log1p(exp(-a))
       softmax_ce = sum_i z_i*(m - x_i) + S*log1p(T),  m = max x, S = sum z, T = sum_{i != j} exp(x_i - m)
       binary_ce  = z*(-log p) + (1 - z)*(-log1p(-p))  (log1p(p - 1) and log(1 - p) above p = 1/2, both exact)

   TensorFlow's ``max(x, 0) - x*z + log1p(exp(-|x|))`` subtracts ``x*z`` from ``x``: for a soft label near
   1 at a large logit (float32 ``x = 1e4``, ``z = 0.9999``) the two cancel and the rounding error of
   ``x*z`` is worth thousands of ULP of the small result. A sum of non-negative terms has relative error
   at most the largest relative error of a term, plus one rounding per addition: nothing is amplified.
   The softmax form uses ``log1p`` of the *other* terms: ``log(sum exp(x_i - m))`` is ``log`` of a number
   near 1 for a confident-correct row (logits ``[20, 0]``), where ``log`` has an absolute error of one
   ULP of 1 (``2**-53``) on a result of ``2e-9``; ``log1p(T)`` keeps ``T``'s relative accuracy.

2. **Half precision and float32: evaluate in float64, round once.** The formulas above, evaluated with
   float64 operations and numpy's float64 ``exp``/``log``/``log1p`` (within 4 ULP of float64: the
   assumption of :mod:`oracles._fast`, measured by ``tests/unit/test_fast_oracle.py``; 0.66 ULP measured on
   this machine) have relative error at most ``(2F + (K + 3)u) < 2**-45`` for ``K <= 2**20`` classes
   (``u = 2**-53``, ``F = 4 * 2**-52``): every term is non-negative, ``exp``'s error passes through
   ``log1p`` unamplified (its relative condition number ``t/((1 + t) log1p t)`` is at most 1). The target
   has ``p <= 24`` bits, so that error is below ``2**-45 * 2**24 = 2**-21`` ULP; one rounding of the
   float64 value to the target adds 0.5 ULP (numpy and ml_dtypes cast float64 to float16/bfloat16/float32
   directly, round to nearest even). Total: at most ``0.5 + 2**-21`` ULP. Subnormal results of the target
   are normal numbers in float64 (float32's smallest subnormal is ``2**-149``, float64's smallest normal
   ``2**-1022``), so nothing flushes: the one rounding lands on the subnormal grid, error at most 0.5 ULP.

3. **float64: double-double arithmetic with our own ``exp`` and a Newton step on ``log1p``/``log``.** A
   float64 result needs the float64 steps themselves to be (nearly) error-free:

   - ``1 - z``, ``m - x_i``, ``p - z``, ``1 - p`` are exact as ``two_sum`` pairs; ``a*w``, ``z_i*d_i`` are
     exact as ``two_prod`` pairs (Dekker's split; arguments above ``2**900`` are scaled by ``2**-200``
     first so the split cannot overflow); sums of many terms are pairwise double-double sums.
   - ``exp`` (:func:`_exp_parts`): numpy's float64 ``exp`` is within 0.66 ULP here, but a ULP of error in
     ``exp(-|x|)`` can cost up to 2 ULP of ``log1p(exp(-|x|))`` through the binade alignment, so it is
     ours: ``y = k*ln2 + r`` with ``k*LN2_HI`` exact (fdlibm's split of ``ln 2``) and ``|r| <= 0.35``;
     ``expm1(r) = r + r*r/2 + r**3 * P(r)`` with ``r*r`` exact (``two_prod``) and ``P`` the Taylor
     polynomial to ``r**14/17!`` (truncation below ``2**-62``): the only rounding of size is in the
     ``r**3 * P`` term, at most ``0.007 * 4u``, so ``exp`` comes out as a double-double with relative error
     below ``2**-57``.
   - ``log1p(t)`` and ``log(p)`` (:func:`_log1p_dd`, :func:`_log_dd`): numpy's value ``g0`` (within 4 ULP)
     corrected by one Newton step ``g = g0 + (t - expm1(g0)) / (1 + expm1(g0))`` with our double-double
     ``expm1``: the numerator cancels exactly (Sterbenz) and the neglected quadratic term is below
     ``(2**-50)**2``, so ``g`` is a double-double with relative error below ``2**-56``.

   Every result is then a double-double ``hi + lo`` with relative error below ``2**-54`` (the sums add
   ``ceil(log2 K) * 2**-104`` each), and the one rounding of ``hi + lo`` adds 0.5 ULP: at most
   ``0.5 + 2**-54 * 2**53 = 1`` ULP, without assuming anything of numpy's ``log``/``log1p`` beyond
   ``2**-40``. Subnormal float64 results: a product whose double-double tail underflows (below
   ``2**-969``) is its correctly rounded leading part, half a subnormal ULP; ``sigmoid_ce`` and
   ``binary_ce`` have at most two such terms, so at most 1.5 ULP; a ``softmax_ce`` row whose loss is below
   ``2**-900`` is evaluated again with its labels scaled by ``2**200`` (the loss is linear in them), and the
   ``exp(x_i - m)`` keep their scales ``2**k`` apart until the end (:func:`_exp_mant`, :func:`_scaled_sum`),
   so their sum is rounded once. Near the top of the range, ``m - x_i`` beyond float64 is taken at half
   scale (exact), and row sums with a term above ``2**1000`` run at half scale, so that the leading part of
   a double-double cannot overflow where the value rounds to ``max``.

Gradients. ``dL/dx`` of ``sigmoid_ce`` and ``softmax_ce`` is a difference (``sigmoid(x) - z``,
``S*softmax_i - z_i``), which no formula keeps relatively accurate when the two sides nearly cancel (the
label is an input rounded to the format). Their bound is mixed, and proven the same way: the computed
gradient ``g~`` satisfies ``|g~ - g| <= 0.5 ulp(g) + 2**-48 * s`` for half precision and float32 (float64
evaluation: ``exp`` within ``2**-50``, a division and a subtraction) and ``|g~ - g| <= 0.5 ulp(g) + 2**-55 * s``
for float64 (double-double, limited by our ``exp``'s ``2**-57`` entering ``e`` and the row sum ``D``), with
``s`` the larger side (``max(sigmoid(x), z)`` or ``max(S*softmax_i, z_i)``): within 2 ULP unless the result
is more than ``2**(48 - p)`` times smaller than ``s`` (float64: within a few float64 ULP of ``s``), where the
label itself, an input rounded to the format, leaves the gradient's last bits to cancellation.
At the maximal logit of a row the gradient is evaluated as
``(S/c - z_j) - S*R/(c*(c + R))`` (``c`` ties, ``R`` the sum of the other ``exp(x_i - m)``), so a
confident-correct row's ``-R/(1 + R)`` keeps its relative accuracy. ``binary_ce``'s gradient
``(p - z)/(p*(1 - p))`` has an exact numerator and denominator factors: within 1 ULP everywhere.

Limit values (as the oracles define them): ``sigmoid_ce`` at ``x = +inf`` is 0 if ``z == 1`` else ``inf``,
at ``-inf`` 0 if ``z == 0`` else ``inf``; ``binary_ce`` is ``inf`` at ``p = 0, z > 0`` and ``p = 1, z < 1``
and a vanishing coefficient contributes 0; softmax rows with ``+inf`` logits share the probability among
them, an all ``-inf`` row is uniform, a positive label on a zero probability is ``inf``; nan in a row
gives nan.
"""

from __future__ import annotations

from functools import wraps

import numpy as np

from ._numpy import _elementwise, _rows, _sparse

__all__ = [
    "sigmoid_ce",
    "sigmoid_ce_grad",
    "binary_ce",
    "binary_ce_grad",
    "softmax_ce",
    "softmax_ce_grad",
    "sparse_softmax_ce",
    "sparse_softmax_ce_grad",
]

_F64 = np.dtype(np.float64)
# Values per block: a float64 temporary of a block (128 KiB) stays in the L2 cache and under malloc's mmap
# threshold, so the dozens of temporaries of the double-double paths cost neither page faults nor memory
# bandwidth (measured: about 3x faster than whole 10**6-element arrays, README).
_BLOCK = 1 << 14


def _blocks(rows: bool = False, grad: bool = False):
    """``fn(x, z, t)`` evaluated block by block along the batch into one output array: elementwise
    (``rows=False``) or over rows ``[..., K]`` kept whole, with a per-row loss or (``grad``) an output of
    the logits' shape. Every block is an independent evaluation, so the values are those of one call."""

    def decorate(fn):
        @wraps(fn)
        def run(x, z, t):
            per_row = x.shape[-1] if rows else 1
            batch = x.shape[:-1] if rows else x.shape
            n = int(np.prod(batch, dtype=np.int64))
            if n * per_row <= _BLOCK:
                return fn(x, z, t)
            xf = x.reshape((n, per_row) if rows else (n,))
            zf = z.reshape((n,) + z.shape[len(batch):])
            out = np.empty(xf.shape if grad or not rows else (n,), dtype=x.dtype)
            step = max(1, _BLOCK // per_row)
            for i in range(0, n, step):
                out[i : i + step] = fn(xf[i : i + step], zf[i : i + step], t)
            return out.reshape(x.shape if grad or not rows else batch)

        return run

    return decorate

# ----------------------------------------------------------------------------------------------------------
# Error-free transformations and double-double arithmetic (Dekker 1971, Knuth; no fma in numpy)
# ----------------------------------------------------------------------------------------------------------

_SPLITTER = 134217729.0  # 2**27 + 1
_SCALE_ABOVE = 2.0**900  # Dekker's split overflows above ~2**996: larger factors are scaled first
_SCALE_DOWN, _SCALE_UP = 2.0**-200, 2.0**200


def _two_sum(a, b):
    """``a + b = s + e`` exactly (Knuth; any magnitudes)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a, b):
    """``a + b = s + e`` exactly when ``|a| >= |b|`` (Dekker)."""
    s = a + b
    return s, b - (s - a)


def _split(a):
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def _two_prod(a, b):
    """``a * b = p + e`` exactly (Dekker; factors below 2**996, product tail above the underflow)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _scaled_two_prod(a, b):
    """:func:`_two_prod` for ``0 <= b <= 1`` and any finite ``a >= 0``: a factor above 2**900 is scaled by an
    exact power of two before the split (which would overflow) and the pair scaled back (exact)."""
    big = a > _SCALE_ABOVE
    if not big.any():
        return _two_prod(a, b)
    scale = np.where(big, _SCALE_DOWN, 1.0)
    p, e = _two_prod(a * scale, b)
    back = np.where(big, _SCALE_UP, 1.0)
    return p * back, e * back


def _dd_add(ah, al, bh, bl):
    """Double-double ``a + b`` (relative error ``2**-104`` for terms of one sign)."""
    s, e = _two_sum(ah, bh)
    return _fast_two_sum(s, e + (al + bl))


def _dd_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    return _fast_two_sum(p, e + (ah * bl + al * bh))


def _dd_div(ah, al, bh, bl):
    """Double-double ``a / b``: a quotient, its remainder ``a - q*b`` (exact ``two_prod``), a correction."""
    q = ah / bh
    p, e = _two_prod(q, bh)
    r = ((ah - p) - e + al) - q * bl
    return _fast_two_sum(q, r / bh)


def _tree_sum(hi, lo):
    """Pairwise double-double sum over the last axis (each term passes ``ceil(log2 K)`` additions, so the
    relative error of a sum of non-negative terms is at most ``ceil(log2 K) * 2**-104``)."""
    while hi.shape[-1] > 1:
        if hi.shape[-1] % 2:  # pad with an exact zero term
            pad = np.zeros(hi.shape[:-1] + (1,))
            hi, lo = np.concatenate([hi, pad], axis=-1), np.concatenate([lo, pad], axis=-1)
        hi, lo = _dd_add(hi[..., 0::2], lo[..., 0::2], hi[..., 1::2], lo[..., 1::2])
    return hi[..., 0], lo[..., 0]


# ----------------------------------------------------------------------------------------------------------
# exp, expm1, log1p, log in double-double (float64 targets only)
# ----------------------------------------------------------------------------------------------------------

_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm: 32 trailing zero bits, so k * _LN2_HI is exact for |k| < 2**20
_LN2_LO = 1.90821492927058770002e-10
# 1/(j+3)! for j = 0..14: P(r) with expm1(r) = r + r**2/2 + r**3 * P(r); the first term left out,
# r**15/18!, is below 2**-62 * r**3 for |r| <= 0.35
_TAYLOR = tuple(1.0 / float(np.prod(np.arange(1, j + 4, dtype=np.float64))) for j in range(15))


def _exp_parts(yh, yl):
    """``exp(yh + yl) = 2**k * (1 + qh + ql)`` with ``|qh + ql| <= 0.42`` and the double-double ``q``
    within ``2**-58`` absolute of ``expm1(r)``; ``yh`` clamped to ``[-1100, 710]`` (beyond, exp is 0 or
    overflows in any case)."""
    outside = (yh < -1100.0) | (yh > 710.0)
    yh = np.minimum(np.maximum(yh, -1100.0), 710.0)
    yl = np.where(outside, 0.0, yl)  # the tail of a clamped argument would only overflow the polynomial
    k = np.rint(yh * _INV_LN2)
    r = yh - k * _LN2_HI  # exact: k * _LN2_HI is exact and r is within a factor 2 of yh's (Sterbenz)
    # yl (up to 2**-44 for |y| near 700) joins before the split, so that the tail rl is below ulp(rh)/2 and
    # its products with the polynomial's higher terms are negligible; k * _LN2_LO and the addition of yl
    # round by at most 2**-53 * (1100 * 2**-32 + |yl|), far below 2**-62
    rh, rl = _two_sum(r, yl - k * _LN2_LO)
    p = _TAYLOR[-1]
    for c in _TAYLOR[-2::-1]:  # Horner: a few roundings on a term below 0.007 (0.35**3 / 6)
        p = p * rh + c
    sh, sl = _two_prod(rh, rh)  # r*r exact, halved exactly
    cubic = (rh * sh) * p
    # 1 + q = rh + rh**2/2 + rh**3 P + rl * (1 + rh): the big parts as exact pairs, the small ones summed
    qh, ql = _fast_two_sum(rh, 0.5 * sh)
    ql = ql + (0.5 * sl + cubic + rl * (1.0 + qh))  # exp(r + rl) = (1 + q)(1 + rl) to 2**-100
    qh, ql = _fast_two_sum(qh, ql)
    return k.astype(np.int32), qh, ql  # int32: what np.ldexp takes on every platform


def _exp_mant(yh, yl):
    """``exp(yh + yl) = 2**k * (h + l)`` with ``h + l`` in ``[0.7, 1.42]`` to ``2**-57`` relative: the scale
    kept apart, so that a result far below the float64 range (an ``exp(x_i - m)`` whose products and sums
    end up subnormal) keeps every bit until the one final rounding."""
    k, qh, ql = _exp_parts(yh, yl)
    h, l = _fast_two_sum(1.0, qh)
    return k, h, l + ql


def _exp_dd(yh, yl):
    """``exp(yh + yl)`` as a double-double, relative error below ``2**-57`` for normal results (a subnormal
    result gets one correct rounding of its leading part in ``ldexp``)."""
    k, h, l = _exp_mant(yh, yl)
    return np.ldexp(h, k), np.ldexp(l, k)


_NO_TERM = -(1 << 20)  # the scale of an absent term: below any exponent, so it never wins a max


def _scaled_sum(k, h, l, keep):
    """``sum over keep of 2**k_i (h_i + l_i)`` per row as ``2**kmax (sh + sl)``: every term scaled to the
    largest one's exponent (terms more than ~1074 binades below vanish, far below ``2**-100`` of the sum)."""
    kk = np.where(keep, k, _NO_TERM)
    kmax = kk.max(axis=-1, keepdims=True)
    kmax = np.where(kmax == _NO_TERM, 0, kmax)
    shift = np.maximum(kk - kmax, -1100).astype(np.int32)
    sh, sl = _tree_sum(np.where(keep, np.ldexp(h, shift), 0.0), np.where(keep, np.ldexp(l, shift), 0.0))
    return kmax[..., 0].astype(np.int32), sh, sl


def _log1p_scaled(k, sh, sl):
    """``log1p(2**k (sh + sl))`` as ``2**kg (gh + gl)``: below ``2**-79`` it is the argument itself
    (``log1p(T) = T (1 - T/2 + ...)``, relative error below ``2**-80``), scale kept; else :func:`_log1p_dd`."""
    tiny = k < -80
    gh, gl = _log1p_dd(np.ldexp(sh, np.where(tiny, 0, k)), np.ldexp(sl, np.where(tiny, 0, k)))
    return np.where(tiny, k, 0), np.where(tiny, sh, gh), np.where(tiny, sl, gl)


def _expm1_dd(y):
    """``expm1(y)`` as a double-double for float64 ``y <= 710``, relative error below ``2**-56``: for
    ``k = 0`` the polynomial's ``q`` itself (no cancellation against 1), else ``2**k (1 + q) - 1``
    (``|result| >= 0.29``)."""
    k, qh, ql = _exp_parts(y, np.zeros_like(y))
    h, l = _fast_two_sum(1.0, qh)
    l = l + ql
    eh, el = np.ldexp(h, k), np.ldexp(l, k)
    mh, ml = _two_sum(eh, -1.0)
    mh, ml = _fast_two_sum(mh, ml + el)
    zero = k == 0
    return np.where(zero, qh, mh), np.where(zero, ql, ml)


def _log1p_dd(th, tl):
    """``log1p(th + tl)`` for ``th > -1`` as a double-double: numpy's ``log1p`` refined by one Newton step
    ``g = g0 + (t - expm1(g0)) / (1 + expm1(g0))``. ``t - expm1(g0)``: ``th - mh`` is exact (the two agree
    to numpy's accuracy, Sterbenz), the rest adds ``2**-56`` relative of ``expm1(g0)``; the neglected term
    of ``log(1 + c)`` is ``c**2/2 < 2**-100``."""
    g0 = np.log1p(th)
    g0 = np.where(np.isfinite(g0), g0, 0.0)  # nan/inf arguments are replaced by the callers' limits
    mh, ml = _expm1_dd(g0)
    num = (th - mh) + (tl - ml)
    c = num / (1.0 + mh)
    return _fast_two_sum(g0, c)


def _log_dd(p):
    """``log(p)`` for float64 ``0 < p <= 1/2`` as a double-double: ``g = g0 + (p - exp(g0)) / exp(g0)``
    (``p - eh`` exact by Sterbenz), relative error below ``2**-56`` (``|log p| >= 0.69``). ``p`` below
    ``2**-900`` is scaled by ``2**200`` first (exact) so that ``exp(g0)`` is a normal number with its full
    relative accuracy, and ``200 ln 2`` subtracted (``200 * _LN2_HI`` exact)."""
    small = p < 2.0**-900
    p = np.where(small, p * 2.0**200, p)
    g0 = np.log(p)
    g0 = np.where(np.isfinite(g0), g0, 0.0)
    eh, el = _exp_dd(g0, np.zeros_like(g0))
    c = ((p - eh) - el) / eh
    gh, gl = _fast_two_sum(g0, c)
    sh, sl = _two_sum(gh, np.where(small, -200 * _LN2_HI, 0.0))
    return _fast_two_sum(sh, sl + (gl - np.where(small, 200 * _LN2_LO, 0.0)))


# ----------------------------------------------------------------------------------------------------------
# sigmoid_ce
# ----------------------------------------------------------------------------------------------------------


def _sigmoid_limits(out, x, z):
    """The limit values at infinite logits and nan, over whatever the finite formula gave there."""
    finite = np.isfinite(x) & np.isfinite(z)
    if finite.all():
        return out
    out = np.where(x == np.inf, np.where(z == 1, 0.0, np.inf), out)
    out = np.where(x == -np.inf, np.where(z == 0, 0.0, np.inf), out)
    return np.where(np.isnan(x) | np.isnan(z), np.nan, out)


@_elementwise
@_blocks()
def sigmoid_ce(x, z, t):
    """Sigmoid cross-entropy with logits: ``|x|*w + log1p(exp(-|x|))``, ``w = 1 - z`` (x >= 0) or ``z``."""
    if x.dtype == _F64:
        a = np.abs(x)
        wh, wl = _two_sum(np.ones_like(z), -z)  # 1 - z exactly
        positive = x >= 0
        wh, wl = np.where(positive, wh, z), np.where(positive, wl, 0.0)
        ph, pl = _scaled_two_prod(np.where(np.isfinite(a), a, 0.0), wh)  # a*w exactly
        pl = pl + a * wl
        eh, el = _exp_dd(-a, np.zeros_like(a))
        gh, gl = _log1p_dd(eh, el)
        sh, sl = _two_sum(ph, gh)  # the only rounding of size is the final one
        out = sh + (sl + (pl + gl))
    else:
        xd, zd = x.astype(_F64), z.astype(_F64)
        # TensorFlow's form, but in float64: x*z of two numbers of at most 24 bits is exact there, so
        # max(x, 0) - x*z (= |x|*w) is one rounding of an exact difference, relative error 2**-53; the
        # cancellation that costs TF thousands of ULP comes from rounding x*z in the input precision
        tail = np.abs(xd)
        np.negative(tail, out=tail)  # in place: each temporary of a block is made once (speed)
        np.exp(tail, out=tail)
        np.log1p(tail, out=tail)
        zd *= xd
        out = np.maximum(xd, 0.0)
        out -= zd
        out += tail
    return _sigmoid_limits(out, x, z).astype(t)


@_elementwise
@_blocks(grad=True)
def sigmoid_ce_grad(x, z, t):
    """``sigmoid(x) - z`` as ``(1 - z) - sigmoid(-|x|)`` (x > 0) or ``sigmoid(-|x|) - z``: ``sigmoid(-|x|)``
    is ``e/(1 + e)``, ``e = exp(-|x|) <= 1``, never near 1 where it would lose relative accuracy."""
    if x.dtype == _F64:
        a = np.abs(x)
        eh, el = _exp_dd(-a, np.zeros_like(a))
        dh, dl = _fast_two_sum(1.0, eh)
        sh, sl = _dd_div(eh, el, dh, dl + el)
        wh, wl = _two_sum(np.ones_like(z), -z)
        ph, pl = _dd_add(wh, wl, -sh, -sl)
        nh, nl = _dd_add(sh, sl, -z, np.zeros_like(z))
        positive = x > 0
        out = np.where(positive, ph + pl, nh + nl)
    else:
        xd, zd = x.astype(_F64), z.astype(_F64)
        e = np.exp(-np.abs(xd))
        s = e / (1.0 + e)
        out = np.where(xd > 0, (1.0 - zd) - s, s - zd)
    out = np.where(np.isnan(x) | np.isnan(z), np.nan, out)  # +-inf: e = 0 gives 1 - z and -z already
    return out.astype(t)


# ----------------------------------------------------------------------------------------------------------
# binary_ce
# ----------------------------------------------------------------------------------------------------------


@_elementwise
@_blocks()
def binary_ce(p, z, t):
    """``z*(-log p) + (1 - z)*(-log(1 - p))``, each logarithm of an exact argument.

    float64: ``log`` of ``min(p, 1 - p)`` (exact, at most 1/2: :func:`_log_dd`) and ``log1p`` of ``p - 1``
    or ``-p`` (exact, in ``[-1/2, 0]``: :func:`_log1p_dd`), one of each per element, each weighted by its
    coefficient (``z`` or ``1 - z``, the latter an exact pair). Half precision and float32: in float64,
    ``-log p`` and ``-log1p(-p)`` (``1 - p`` exact there, and numpy's ``log`` is accurate relative to its
    result near 1 too). ``p`` of 0 or 1 makes a ``0 * inf`` term: those take the limit values."""
    if p.dtype == _F64:
        upper = p > 0.5
        q = 1.0 - p  # exact for p >= 1/2 (Sterbenz); only used there
        small_arg = np.where(upper, q, p)
        small_arg = np.where(small_arg > 0, small_arg, 0.25)  # p = 0 or 1: finite placeholder, limits below
        onep_arg = np.where(upper, p - 1.0, -p)  # exact: p - 1 for p >= 1/2, -p always
        lh, ll = _log_dd(small_arg)
        gh, gl = _log1p_dd(onep_arg, np.zeros_like(p))
        wh, wl = _two_sum(np.ones_like(z), -z)  # 1 - z exactly
        # log(min(p, 1 - p)) belongs to z (p <= 1/2: -log p) or to 1 - z (p > 1/2: -log(1 - p))
        ch, cl = np.where(upper, wh, z), np.where(upper, wl, 0.0)
        dh, dl = np.where(upper, z, wh), np.where(upper, 0.0, wl)
        ah, al = _dd_mul(ch, cl, -lh, -ll)
        bh, bl = _dd_mul(dh, dl, -gh, -gl)
        sh, sl = _dd_add(ah, al, bh, bl)  # two non-negative terms
        out = sh + sl
    else:
        pd, zd = p.astype(_F64), z.astype(_F64)
        out = zd * -np.log(pd) + (1.0 - zd) * -np.log1p(-pd)
    return _binary_limits(out, p, z).astype(t)


def _binary_limits(out, p, z):
    """``p = 0`` or ``1``: a vanishing coefficient's term is 0 (``0 * log 0 = 0``), the other is 0 or inf."""
    ends = (p == 0) | (p == 1)
    if ends.any():
        infinite = ((p == 0) & (z > 0)) | ((p == 1) & (z < 1))
        out = np.where(ends, np.where(infinite, np.inf, 0.0), out)
    return np.where(np.isnan(p) | np.isnan(z), np.nan, out)


@_elementwise
@_blocks(grad=True)
def binary_ce_grad(p, z, t):
    """``(p - z) / (p*(1 - p))`` with ``p - z`` and ``1 - p`` exact; at ``p = 0``: ``-inf`` if ``z > 0``
    else 1; at ``p = 1``: ``+inf`` if ``z < 1`` else -1."""
    if p.dtype == _F64:
        nh, nl = _two_sum(p, -z)
        qh, ql = _two_sum(np.ones_like(p), -p)
        dh, dl = _two_prod(qh, p)
        dl = dl + ql * p
        # a denominator below 2**-900 would make the quotient too large for Dekker's split, a small
        # quotient's tail would underflow: numerator and denominator below 2**-900 are scaled by 2**200
        # (exact), the quotient by the ratio of the two scales (an overflow there is the exact value's)
        sd = np.where(dh < 2.0**-900, 2.0**200, 1.0)
        sn = np.where(np.abs(nh) < 2.0**-900, 2.0**200, 1.0)
        gh, gl = _dd_div(nh * sn, nl * sn, dh * sd, dl * sd)
        back = sd / sn
        out = gh * back + gl * back
    else:
        pd, zd = p.astype(_F64), z.astype(_F64)
        out = (pd - zd) / (pd * (1.0 - pd))
    out = np.where(p == 0, np.where(z > 0, -np.inf, 1.0), out)
    out = np.where(p == 1, np.where(z < 1, np.inf, -1.0), out)
    return np.where(np.isnan(p) | np.isnan(z), np.nan, out).astype(t)


# ----------------------------------------------------------------------------------------------------------
# softmax_ce and sparse_softmax_ce
# ----------------------------------------------------------------------------------------------------------


def _row_parts(x, z):
    """Per row: finite logits only (``-inf`` entries left out, ``+inf``/nan rows replaced later), the max
    ``m``, the mask of the first maximal entry, and ``d = m - x`` (float64; exact pair in float64 mode)."""
    neg = x == -np.inf
    finite = np.isfinite(x)
    finite_only = np.where(finite, x, -np.inf)
    m = np.max(finite_only, axis=-1, keepdims=True)
    # the first maximal finite entry (argmax before the non-finite ones are given m's value below)
    first = np.arange(x.shape[-1]) == np.argmax(finite_only, axis=-1)[..., None]
    m = np.where(np.isfinite(m), m, 0.0)  # rows without a finite logit take their limit value later
    xs = np.where(finite, x, m)  # non-finite entries get d = 0; their weight is masked by the callers
    return neg, xs, m, first


def _log_count_dd(n):
    """``log(n)`` of counts ``n >= 1`` as a double-double: ``n = f * 2**e`` with ``f`` in ``[1/4, 1/2)``,
    ``log f`` by :func:`_log_dd` and ``e ln 2`` as ``e * _LN2_HI`` (exact) plus ``e * _LN2_LO``."""
    f, e = np.frexp(n.astype(_F64))
    f, e = f * 0.5, e + 1  # [1/4, 1/2): inside _log_dd's domain
    lh, ll = _log_dd(f)
    sh, sl = _two_sum(lh, e * _LN2_HI)
    return _fast_two_sum(sh, sl + (ll + e * _LN2_LO))


def _row_limits(out, x, z, grad=False):
    """The limit values of rows holding +-inf or nan (oracles._softmax_ce), over the finite formula's: the
    probability shared by the ``+inf`` logits (or, all ``-inf``, by every logit), the loss
    ``S_shared * log(count)`` and the gradient ``S/count - z_i`` on the sharing entries, ``-z_i`` elsewhere,
    each in double-double and rounded once (``S - z_j`` cancels when one label dominates)."""
    bad = ~np.isfinite(x)
    if not bad.any() and not np.isnan(z).any():
        return out
    k = x.shape[-1]
    pos = x == np.inf
    neg = x == -np.inf
    npos = pos.sum(axis=-1, keepdims=True)
    any_pos = npos > 0
    all_neg = neg.all(axis=-1, keepdims=True)
    share = np.where(any_pos, pos, True)
    count = np.where(any_pos, npos, k).astype(_F64)
    zero = np.zeros_like(z)
    if grad:
        sh, sl = _tree_sum(z, zero)
        qh, ql = _dd_div(sh[..., None], sl[..., None], count, np.zeros_like(count))
        vh, vl = _dd_add(qh, ql, -z, zero)
        limit = np.where(share, vh + vl, -z)
        out = np.where(any_pos | all_neg, limit, out)
        nan_row = np.isnan(x).any(axis=-1, keepdims=True) | np.isnan(z).any(axis=-1, keepdims=True)
        return np.where(nan_row, np.nan, out)
    sh, sl = _tree_sum(np.where(share, z, 0.0), zero)  # the labels on the sharing logits
    lh, ll = _log_count_dd(count[..., 0])
    vh, vl = _dd_mul(sh, sl, lh, ll)
    shared = np.where(count[..., 0] == 1, 0.0, vh + vl)  # log 1 = 0 exactly
    lost = (np.where(share, 0.0, z) > 0).any(axis=-1)  # a positive label on a zero probability
    limit = np.where(lost, np.inf, shared)
    out = np.where((any_pos | all_neg)[..., 0], limit, out)
    out = np.where(~all_neg[..., 0] & ~any_pos[..., 0] & (np.where(neg, z, 0.0) > 0).any(axis=-1), np.inf, out)
    nan_row = np.isnan(x).any(axis=-1) | np.isnan(z).any(axis=-1)
    return np.where(nan_row, np.nan, out)


def _softmax_loss64(x, z):
    """Rows ``(…, K)`` of float64: ``A + S*log1p(T)`` in double-double (module docstring, item 3)."""
    neg, xs, m, first = _row_parts(x, z)
    dh, dl = _two_sum(np.broadcast_to(m, x.shape), -xs)  # m - x exactly, or inf beyond the float64 range
    overflow = ~np.isfinite(dh)
    dh, dl = np.where(overflow, 0.0, dh), np.where(overflow, 0.0, dl)
    ek, eh, el = _exp_mant(-dh, -dl)
    kt, th, tl = _scaled_sum(ek, eh, el, ~(first | neg | overflow))  # T = 2**kt (th + tl)
    kg, gh, gl = _log1p_scaled(kt, th, tl)  # log1p(T) = 2**kg (gh + gl)
    zw = np.where(neg | np.isnan(z), 0.0, z)
    if overflow.any():  # m - x_i beyond the float64 range: (m/2 - x_i/2) is exact, the product doubled
        hh, hl = _two_sum(np.broadcast_to(m, x.shape) * 0.5, -xs * 0.5)
        dh, dl = np.where(overflow, hh, dh), np.where(overflow, hl, dl)
    ph, pl = _scaled_two_prod(dh, zw)  # z_i * d_i exactly (d's tail below)
    pl = pl + zw * dl
    if overflow.any():
        ph, pl = ph * np.where(overflow, 2.0, 1.0), pl * np.where(overflow, 2.0, 1.0)
    too_big = np.isinf(ph).any(axis=-1)  # a term beyond the float64 range: the loss rounds to inf
    ph, pl = np.where(np.isinf(ph), 0.0, ph), np.where(np.isinf(ph), 0.0, pl)
    # near the top of the range the sums run at half scale (exact): the leading parts of a double-double
    # sum can overflow where the value itself, just below max + ulp/2, rounds to max
    half = np.where((ph > 2.0**1000).any(axis=-1, keepdims=True), 0.5, 1.0)
    ah, al = _tree_sum(ph * half, pl * half)
    sh, sl = _tree_sum(z, np.zeros_like(z))
    bh, bl = _dd_mul(sh, sl, gh * half[..., 0], gl * half[..., 0])
    # S*log1p(T) scaled back; where it is all there is (A = 0) it is rounded once, onto the subnormal grid
    # if it lies there
    alone = np.ldexp(bh + bl, kg)
    vh, vl = _dd_add(ah, al, np.ldexp(bh, kg), np.ldexp(bl, kg))
    vh, vl = np.where(ah == 0, alone, vh), np.where(ah == 0, 0.0, vl)
    # a sum beyond the float64 range: the exact loss, larger still, rounds to inf as well. Every term is
    # non-negative and finite inputs make no 0 * inf, so a nan here is an overflow met inside an error-free
    # transformation (inf - inf); rows with nan inputs get their nan back from _row_limits
    out = (vh + vl) / half[..., 0]  # exact, or the overflow of the value itself
    return np.where(too_big | np.isinf(ah) | np.isnan(out), np.inf, out)


def _softmax_loss_wide(x, z):
    """Rows of half precision or float32, evaluated in float64 (module docstring, item 2)."""
    x, z = x.astype(_F64), z.astype(_F64)
    neg, xs, m, first = _row_parts(x, z)
    d = m - xs  # non-finite entries have d = 0 (_row_parts): their products vanish
    e = np.exp(-d)
    e[first | neg] = 0.0
    return (z * d).sum(axis=-1) + z.sum(axis=-1) * np.log1p(e.sum(axis=-1))


def _softmax_grad(x, z, precise):
    """``S*softmax_i - z_i``; at the maximal logits ``(S/c - z_j) - S*R/(c*(c + R))`` (module docstring)."""
    if not precise:
        x, z = x.astype(_F64), z.astype(_F64)
    neg, xs, m, first = _row_parts(x, z)
    top = (xs == m) & ~neg
    c = top.sum(axis=-1, keepdims=True).astype(_F64)
    if precise:
        sh, sl = _tree_sum(z, np.zeros_like(z))
        sh, sl = sh[..., None], sl[..., None]
        dh, dl = _two_sum(np.broadcast_to(m, x.shape), -xs)
        gone = neg | ~np.isfinite(dh)  # exp(-inf) and exp(x_i - m) beyond the float64 range are 0
        # e_i = 2**k_i (eh + el): the scales are applied last, so a subnormal result is rounded once
        ek, eh, el = _exp_mant(-np.where(gone, 0.0, dh), -np.where(gone, 0.0, dl))
        kr, rh, rl = _scaled_sum(ek, eh, el, ~(top | gone))  # R = 2**kr (rh + rl)
        kr, rh, rl = kr[..., None], rh[..., None], rl[..., None]
        r_full = np.ldexp(rh, kr)  # R itself, where it is added to c >= 1 (its tail is negligible there)
        ch, cl = _fast_two_sum(c, r_full)
        cl = cl + np.ldexp(rl, kr)
        # others: S * e_i / (c + R), scaled by 2**k_i at the end
        ph, pl = _dd_div(*_dd_mul(sh, sl, eh, el), ch, cl)
        ph, pl = np.where(gone, 0.0, np.ldexp(ph, ek)), np.where(gone, 0.0, np.ldexp(pl, ek))
        oh, ol = _dd_add(ph, pl, -z, np.zeros_like(z))
        # maxima: (S/c - z_j) - S*R/(c*(c + R)), the second term scaled by 2**kr at the end
        qh, ql = _dd_div(sh, sl, c, np.zeros_like(c))
        qh, ql = _dd_add(qh, ql, -z, np.zeros_like(z))
        nh, nl = _dd_mul(sh, sl, rh, rl)
        dh2, dl2 = _dd_mul(c, np.zeros_like(c), ch, cl)
        fh, fl = _dd_div(nh, nl, dh2, dl2)
        fh, fl = np.ldexp(fh, kr), np.ldexp(fl, kr)
        th, tl = _dd_add(qh, ql, -fh, -fl)
        out = np.where(top, th + tl, oh + ol)
    else:
        s = z.sum(axis=-1, keepdims=True)
        e = np.where(neg, 0.0, np.exp(-(m - xs)))
        r = np.where(top, 0.0, e).sum(axis=-1, keepdims=True)
        others = s * e / (c + r) - z
        maxima = (s / c - z) - s * r / (c * (c + r))
        out = np.where(top, maxima, others)
    return out


@_rows
@_blocks(rows=True)
def softmax_ce(x, z, t):
    """Softmax cross-entropy over the last axis: ``sum z_i*(m - x_i) + S*log1p(sum_{i != j} exp(x_i - m))``."""
    if x.dtype == _F64:
        out = _softmax_loss64(x, z)
        # A loss below 2**-900 may sum several products z_i*(m - x_i) whose double-double tails underflow
        # (half a subnormal ULP each). The loss is linear in z: such rows are evaluated again with the labels
        # scaled by 2**200 (exact, no term can overflow there) and scaled back with one rounding.
        small = out < 2.0**-900
        if small.any():
            scaled = _softmax_loss64(x, np.where(small[..., None], z * 2.0**200, z))
            out = np.where(small, np.ldexp(scaled, -200), out)
    else:
        out = _softmax_loss_wide(x, z)
    return _row_limits(out, x.astype(_F64), z.astype(_F64)).astype(t)


@_rows
@_blocks(rows=True, grad=True)
def softmax_ce_grad(x, z, t):
    """``S*softmax(x) - z`` over the last axis (shape of ``x``)."""
    out = _softmax_grad(x, z, precise=x.dtype == _F64)
    return _row_limits(out, x.astype(_F64), z.astype(_F64), grad=True).astype(t)


def _one_hot(c, k, dtype):
    return (c[..., None] == np.arange(k)).astype(dtype)


def _take(values, c):
    return np.take_along_axis(values, c[..., None], axis=-1)[..., 0]


@_sparse
@_blocks(rows=True)
def sparse_softmax_ce(x, c, t):
    """``logsumexp(x) - x[c]`` as ``(m - x[c]) + log1p(sum_{i != j} exp(x_i - m))`` (``S = 1``, one
    non-negative linear term)."""
    if x.dtype == _F64:
        neg, xs, m, first = _row_parts(x, None)
        dh, dl = _two_sum(np.broadcast_to(m, x.shape), -xs)
        overflow = ~np.isfinite(dh)
        keep = ~(first | neg | overflow)
        ek, eh, el = _exp_mant(-np.where(keep, dh, 0.0), -np.where(keep, dl, 0.0))
        kt, th, tl = _scaled_sum(ek, eh, el, keep)
        kg, gh, gl = _log1p_scaled(kt, th, tl)
        ch, cl = _take(dh, c), _take(dl, c)
        fin = np.isfinite(ch)
        ch, cl = np.where(fin, ch, 0.0), np.where(fin, cl, 0.0)
        vh, vl = _dd_add(ch, cl, np.ldexp(gh, kg), np.ldexp(gl, kg))
        vh, vl = np.where(ch == 0, np.ldexp(gh + gl, kg), vh), np.where(ch == 0, 0.0, vl)  # one rounding
        out = np.where(fin, vh + vl, np.inf)  # m - x[c] beyond float64: the loss rounds to inf
    else:
        xd = x.astype(_F64)
        neg, xs, m, first = _row_parts(xd, None)
        d = m - xs
        e = np.exp(-d)
        e[first | neg] = 0.0
        out = _take(d, c) + np.log1p(e.sum(axis=-1))
    if not np.isfinite(x).all():
        out = _row_limits(out, x.astype(_F64), _one_hot(c, x.shape[-1], _F64))
    return out.astype(t)


@_sparse
@_blocks(rows=True, grad=True)
def sparse_softmax_ce_grad(x, c, t):
    """``softmax(x) - onehot(c)`` over the last axis."""
    z = _one_hot(c, x.shape[-1], _F64)
    out = _softmax_grad(x, z, precise=x.dtype == _F64)
    return _row_limits(out, x.astype(_F64), z, grad=True).astype(t)
