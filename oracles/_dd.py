"""Vectorised double-double arithmetic with error bounds, for the fast path of float64 targets.

A double-double (DD) is a pair of float64 arrays ``(hi, lo)`` with ``|lo| <= ulp(hi)/2`` standing for
``hi + lo`` (about 106 bits). The basic blocks are error-free transformations (numpy has no FMA, so
products are split with Veltkamp's constant ``2**27 + 1``):

- ``two_sum(a, b)``: ``s + e == a + b`` exactly (Knuth); ``fast_two_sum`` when ``|a| >= |b|`` (Dekker);
- ``two_prod(a, b)``: ``p + e == a * b`` exactly (Dekker), for ``|a|, |b| < 2**995`` and no underflow;

and the algorithms of Joldes, Muller and Popescu, "Tight and rigorous error bounds for basic building
blocks of double-word arithmetic" (ACM TOMS 2017), whose proven relative error bounds (``u = 2**-53``) are:
``add`` (AccurateDWPlusDW) ``3u**2 + 13u**3``, ``mul_f`` (DWTimesFP1) ``2u**2``, ``mul`` (DWTimesDW1)
``7u**2``, ``div`` (DWDivDW1) ``15u**2 + 56u**3``. All are below :data:`DD_OP` ``= 2**-100 = 64u**2``,
which this module and the families use for every DD operation (a margin of four or more).

Elementary functions, with the bounds the families use (relative unless said; proofs by counting DD
operations, each at most ``DD_OP``, on values of magnitude at most 1 after reduction):

- :func:`exp`, argument ``|x| <= 746`` given as a DD: ``k = rint(64x/ln2)``, ``r = x - k*ln2/64`` with
  ``ln2/64`` as three floats (``L1`` has 36 significant bits, so ``k*L1`` is exact for ``|k| < 2**17``, and
  ``x_hi - k*L1`` is exact by Sterbenz); ``|r| <= ln2/128 < 2**-7.5``, absolute error at most
  ``2 * DD_OP * |r| + 2**-130`` (two DD additions, ``k*L3``'s rounding and the ``ln2`` digits beyond
  ``L3``), which is a relative error of ``exp(r)``. Taylor to degree 10 (truncation
  ``|r|**11/11! < 2**-107``) by Horner: the terms of degree 7 to 10 in float64 (they sum to less than
  ``|r|**7/7! * 1.01 < 2**-64``, computed to ``2**-50`` relative, so below ``2**-114``), then 7
  double-double multiply-adds on values near 1 (``14 * DD_OP``), times
  ``2**(j/64)`` from a DD table (``j = k mod 64``, table error ``2**-150``, one ``mul``), times
  ``2**((k-j)/64)`` exactly (barring underflow: absolute floor). Total below ``16 * DD_OP + 2**-106 <
  2**-95``; :data:`EXP_ERROR` ``= 2**-88`` (margin ``2**7``; measured ``2**-104``).
- :func:`log1p` of a DD ``t >= -1/2``: for ``|t| <= 2**-7`` the series to degree 16 (truncation
  ``|t|**16/16 <= 2**-116 |t|``; the terms of degree 8 and up, below ``2**-52 |t|``, in float64 to
  ``2**-50`` relative, then 7 double-double multiply-adds on values near 1: ``14 * DD_OP``), relative
  ``2**-92``; otherwise one Newton step from ``y0 = numpy.log1p(t_hi)``: ``y = y0 + ((1 + t) * exp(-y0) - 1)``.
  With ``d = log1p(t) - y0`` the exact step gives ``y0 + e**d - 1 = log1p(t) + (e**d - 1 - d)`` and
  ``0 <= e**d - 1 - d <= c**2`` for the computed correction ``|c| < 2**-30``; the rounding errors are
  ``|1 + t| * exp(-y0) * (EXP_ERROR + 3 * DD_OP)`` absolute, plus ``DD_OP * |y|``. The bound is returned per
  element (absolute); a correction ``|c| >= 2**-30`` (numpy's ``log1p`` far off) gives an infinite bound.
  No accuracy of numpy's ``log1p`` is assumed here: the Newton step measures it.
- :func:`log` of a float ``p > 0``: ``p = m * 2**e`` (``frexp``, exact), ``log1p(m - 1) + e * ln2``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = [
    "DD_OP",
    "EXP_ERROR",
    "two_sum",
    "fast_two_sum",
    "two_prod",
    "add",
    "add_f",
    "mul",
    "mul_f",
    "div",
    "tree_sum",
    "exp",
    "log1p",
    "log",
]

DD_OP = 2.0**-100
EXP_ERROR = 2.0**-88
_SERIES_ERROR = 2.0**-92
_SPLITTER = 134217729.0  # 2**27 + 1


def _dd_constant(value: Fraction) -> tuple[float, float]:
    hi = float(value)
    return hi, float(value - Fraction(hi))


# ln2 = L1 + L2 + L3: L1 has 42 significant bits (k * L1 exact for |k| < 2**11).
_LN2 = Fraction(
    "0.693147180559945309417232121458176568075500134360255254120680009493393621969694715605863326996418687542"
)
_L1 = float(Fraction(round(_LN2 * 2**42), 2**42))
_L2 = float(_LN2 - Fraction(_L1))
_L3 = float(_LN2 - Fraction(_L1) - Fraction(_L2))
# ln2/64 = L1_64 + L2_64 + L3_64 likewise (k * L1_64 exact for |k| < 2**17).
_L1_64 = float(Fraction(round(_LN2 / 64 * 2**42), 2**42))  # 36 significant bits
_L2_64 = float(_LN2 / 64 - Fraction(_L1_64))
_L3_64 = float(_LN2 / 64 - Fraction(_L1_64) - Fraction(_L2_64))
_INV_LN2_64 = float(64 / _LN2)
_EXP_DEGREE = 10
_EXP_FLOAT_TAIL = 7  # Horner in float64 down to this degree, then in double-double


def _table() -> tuple[np.ndarray, np.ndarray]:
    import mpmath

    with mpmath.workprec(256):
        exact = [(mpmath.mpf(2) ** (mpmath.mpf(j) / 64)).man_exp for j in range(64)]
    values = [Fraction(int(man)) * Fraction(2) ** int(exp) for man, exp in exact]
    pairs = [_dd_constant(v) for v in values]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


_TABLE_HI, _TABLE_LO = _table()  # 2**(j/64) as DDs, j = 0..63, within 2**-150 relative
_EXP_COEFFS = [_dd_constant(Fraction(1, __import__("math").factorial(n))) for n in range(_EXP_DEGREE + 1)]
_LOG1P_DEGREE = 16
_LOG1P_FLOAT_TAIL = 8  # series terms of degree 8 and up in float64
_LOG1P_COEFFS = [_dd_constant(Fraction((-1) ** (n + 1), n)) for n in range(1, _LOG1P_DEGREE + 1)]


def two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


def _split(a):
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def add(xh, xl, yh, yl):
    """AccurateDWPlusDW: ``x + y``."""
    sh, sl = two_sum(xh, yh)
    th, tl = two_sum(xl, yl)
    c = sl + th
    vh, vl = fast_two_sum(sh, c)
    return fast_two_sum(vh, tl + vl)


def add_f(xh, xl, y):
    """DWPlusFP: ``x + y`` for a float ``y`` (error ``2u**2``)."""
    sh, sl = two_sum(xh, y)
    vh, vl = fast_two_sum(sh, xl + sl)
    return vh, vl


def mul_f(xh, xl, y):
    """DWTimesFP1: ``x * y`` for a float ``y``."""
    ch, cl1 = two_prod(xh, y)
    return fast_two_sum(ch, cl1 + xl * y)


def mul(xh, xl, yh, yl):
    """DWTimesDW1: ``x * y``."""
    ch, cl1 = two_prod(xh, yh)
    return fast_two_sum(ch, cl1 + (xh * yl + xl * yh))


def div(xh, xl, yh, yl):
    """DWDivDW1: ``x / y``."""
    th = xh / yh
    rh, rl = mul_f(yh, yl, th)
    ph, pl = two_sum(xh, -rh)
    d = ph + ((pl - rl) + xl)
    return fast_two_sum(th, d / yh)


def tree_sum(hi, lo, axis: int = -1):
    """Pairwise DD sum along ``axis`` of non-negative DD terms; relative error at most
    ``ceil(log2 K) * DD_OP`` (each term passes through that many additions)."""
    if axis not in (-1, hi.ndim - 1):
        hi = np.moveaxis(hi, axis, -1)
        lo = np.moveaxis(lo, axis, -1)
    while hi.shape[-1] > 1:
        if hi.shape[-1] % 2:  # the odd last term passes up unchanged (adding a zero is exact)
            sh, sl = add(hi[..., 0:-1:2], lo[..., 0:-1:2], hi[..., 1::2], lo[..., 1::2])
            hi, lo = np.concatenate([sh, hi[..., -1:]], axis=-1), np.concatenate([sl, lo[..., -1:]], axis=-1)
        else:
            hi, lo = add(hi[..., 0::2], lo[..., 0::2], hi[..., 1::2], lo[..., 1::2])
    return hi[..., 0], lo[..., 0]


def exp(xh, xl):
    """``exp(x)`` of a DD ``x`` (``|x| <= 746``), relative error below :data:`EXP_ERROR` (module docstring)."""
    outside = np.abs(xh) > 746.0  # exp underflows below 2**-1076 or overflows: the tail does not matter
    xh, xl = np.clip(xh, -746.0, 746.0), np.where(outside, 0.0, xl)
    k = np.rint(xh * _INV_LN2_64)  # x = k * ln2/64 + r
    r1 = xh - k * _L1_64  # exact
    rh, rl = two_sum(r1, xl)
    ph, pl = two_prod(k, _L2_64)
    rh, rl = add(rh, rl, -ph, -pl)
    rh, rl = add_f(rh, rl, -k * _L3_64)
    tail = np.full_like(rh, _EXP_COEFFS[_EXP_DEGREE][0])  # degrees 7..10 in float64: below 2**-64 of the sum
    for n in range(_EXP_DEGREE - 1, _EXP_FLOAT_TAIL - 1, -1):
        tail = tail * rh + _EXP_COEFFS[n][0]
    ph, pl = tail, np.zeros_like(rh)
    for n in range(_EXP_FLOAT_TAIL - 1, -1, -1):
        ph, pl = mul(ph, pl, rh, rl)
        ph, pl = add_f(ph, pl, _EXP_COEFFS[n][0]) if n < 2 else add(ph, pl, *_EXP_COEFFS[n])
    ki = k.astype(np.int64)
    j = ki & 63
    ph, pl = mul(ph, pl, _TABLE_HI[j], _TABLE_LO[j])
    q = (ki - j) >> 6
    q = q.astype(np.int32)  # |q| < 1100; numpy's ldexp is far faster on C ints than on int64
    return np.ldexp(ph, q), np.ldexp(pl, q)


def log1p(th, tl):
    """``log1p(t)`` of a DD ``t >= -1/2``: ``(hi, lo, bound)``, ``bound`` an absolute error bound."""
    small = np.abs(th) <= 2.0**-7
    if small.all():
        return _log1p_series(th, tl)
    if not small.any():
        return _log1p_newton(th, tl)
    out = [np.empty_like(th) for _ in range(3)]
    for mask, branch in ((small, _log1p_series), (~small, _log1p_newton)):
        for target, part in zip(out, branch(th[mask], tl[mask])):
            target[mask] = part
    return tuple(out)


def _log1p_series(th, tl):
    tail = np.full_like(th, _LOG1P_COEFFS[-1][0])  # degrees 8..16 in float64: below 2**-49 of the sum
    for ch, _cl in reversed(_LOG1P_COEFFS[_LOG1P_FLOAT_TAIL - 1:-1]):
        tail = tail * th + ch
    sh, sl = tail, np.zeros_like(th)
    for ch, cl in reversed(_LOG1P_COEFFS[:_LOG1P_FLOAT_TAIL - 1]):
        sh, sl = mul(sh, sl, th, tl)
        sh, sl = add(sh, sl, ch, cl)
    sh, sl = mul(sh, sl, th, tl)
    return sh, sl, _SERIES_ERROR * np.abs(sh)


def _log1p_newton(th, tl):
    with np.errstate(all="ignore"):
        y0 = np.log1p(th)
        eh, el = exp(-y0, np.zeros_like(y0))
        oh, ol = add_f(th, tl, 1.0)
        qh, ql = mul(oh, ol, eh, el)
        qh, ql = add_f(qh, ql, -1.0)
        nh, nl = add_f(qh, ql, y0)
        c = np.abs(qh)
        bound = np.abs(oh) * np.abs(eh) * (EXP_ERROR + 3 * DD_OP) + DD_OP * np.abs(nh) + c * c
        return nh, nl, np.where(c < 2.0**-30, bound, np.inf)


def log(p):
    """``log(p)`` of a float array ``p > 0``: ``(hi, lo, bound)`` (absolute error bound)."""
    m, e = np.frexp(p)
    yh, yl, bound = log1p(m - 1.0, np.zeros_like(m))  # m - 1 is exact for m in [1/2, 1)
    ef = e.astype(np.float64)
    ah, al = two_prod(ef, _L2)
    ah, al = add(ah, al, ef * _L1, ef * _L3)
    hi, lo = add(yh, yl, ah, al)
    return hi, lo, bound + 2 * DD_OP * (np.abs(hi) + np.abs(ah))
