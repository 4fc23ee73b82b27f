"""Seeded generators of random test points for every loss family and dtype, over the whole float range.

Every value is representable in the target dtype: it is produced in float64 and cast through the dtype's
numpy type (``ml_dtypes.bfloat16`` for bfloat16), and the arrays are returned in that dtype. (The cast only
has to land on a value of the dtype: ml_dtypes rounds float64 to bfloat16 through float32, twice.)

Inputs (logits) mix: log-uniform magnitudes over the whole exponent range of the dtype (subnormals
included), moderate values where both terms of a loss matter, ``±max``, ``±min normal``, ``±min subnormal``,
``±0``, values around the thresholds where ``exp`` overflows or underflows and where ``exp(-|x|)`` drops
below the precision, small integers, and a small share of ``±inf`` and nan. Labels mix hard 0/1, uniform
soft labels, ``1 - 2**-k``, tiny and subnormal labels, powers of two, simple dyadics and (for ``sigmoid_ce``) the label
``sigmoid(x)`` rounded to the dtype, where the gradient cancels. Probabilities (``binary_ce``) lie in
``[0, 1]``: 0, 1, subnormals, log-uniform tiny values, ``1 - 2**-k``, uniform values.

Row families (``softmax_ce``, ``sparse_softmax_ce``) come as a list of ``(logits, labels)`` blocks, one per
class count ``K`` (mostly 1 to 8), because one call takes one ``K``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["DTYPES", "FAMILIES", "Info", "info", "seed_for", "logits", "labels", "probs", "elementwise", "rows", "points", "structured"]

DTYPES = ("float16", "bfloat16", "float32", "float64")
FAMILIES = ("sigmoid_ce", "binary_ce", "softmax_ce", "sparse_softmax_ce")


@dataclass(frozen=True)
class Info:
    name: str
    np_dtype: np.dtype
    p: int
    emin: int
    emax: int

    @property
    def max(self) -> float:
        return math.ldexp(2.0 - math.ldexp(1.0, 1 - self.p), self.emax)

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        return math.ldexp(1.0, self.emin - self.p + 1)

    @property
    def tiny_exp(self) -> int:
        return self.emin - self.p + 1

    def cast(self, values: np.ndarray) -> np.ndarray:
        """Round float64 values into the dtype (finite values beyond ``±max`` are clipped first)."""
        v = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            v = np.where(np.isfinite(v), np.clip(v, -self.max, self.max), v)
        return v.astype(self.np_dtype)


def info(dtype: str) -> Info:
    if dtype == "bfloat16":
        import ml_dtypes

        return Info(dtype, np.dtype(ml_dtypes.bfloat16), 8, -126, 127)
    table = {"float16": (11, -14, 15), "float32": (24, -126, 127), "float64": (53, -1022, 1023)}
    p, emin, emax = table[dtype]
    return Info(dtype, np.dtype(dtype), p, emin, emax)


def seed_for(*parts: object) -> int:
    """A stable seed from names (``zlib.crc32``; Python's ``hash`` is salted per process)."""
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def _pick(rng: np.random.Generator, n: int, weights: dict[str, float]) -> np.ndarray:
    names = list(weights)
    w = np.array([weights[k] for k in names], dtype=np.float64)
    return np.array(names)[rng.choice(len(names), size=n, p=w / w.sum())]


def _log_uniform(rng: np.random.Generator, n: int, lo_exp: int, hi_exp: int) -> np.ndarray:
    """Magnitudes ``m * 2**e``, ``m`` uniform in [1, 2), ``e`` uniform integer in [lo_exp, hi_exp]."""
    e = rng.integers(lo_exp, hi_exp + 1, size=n)
    m = 1.0 + rng.random(n)
    return np.ldexp(m, e)


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.5, -1.0, 1.0)


def _thresholds(fi: Info) -> np.ndarray:
    """Arguments where exp over/underflows the dtype or exp(-|x|) falls below its precision."""
    return np.array(
        [
            math.log(fi.max),  # exp(x) overflows
            -math.log(fi.max),
            math.log(fi.min_normal),  # exp(x) becomes subnormal
            math.log(fi.min_subnormal),  # exp(x) underflows to 0
            -math.log(fi.min_subnormal),
            (fi.p + 1) * math.log(2.0),  # log1p(exp(-x)) below half an ulp of x-ish terms
            -(fi.p + 1) * math.log(2.0),
            fi.p * math.log(2.0),
            math.log(2.0),
        ]
    )


def logits(rng: np.random.Generator, n: int, dtype: str, *, nonfinite: bool = True) -> np.ndarray:
    fi = info(dtype)
    kind = _pick(
        rng,
        n,
        {
            "loguniform": 0.40,
            "moderate": 0.20,
            "special": 0.06,
            "threshold": 0.12,
            "integer": 0.10,
            "near_zero": 0.05,
            "inf": 0.025 if nonfinite else 0.0,
            "nan": 0.01 if nonfinite else 0.0,
        },
    )
    out = np.zeros(n)
    k = kind == "loguniform"
    out[k] = _signs(rng, k.sum()) * _log_uniform(rng, k.sum(), fi.tiny_exp, fi.emax)
    k = kind == "moderate"
    out[k] = rng.standard_normal(k.sum()) * np.exp2(rng.uniform(-4, 6, k.sum()))
    k = kind == "special"
    specials = np.array(
        [fi.max, -fi.max, fi.min_normal, -fi.min_normal, fi.min_subnormal, -fi.min_subnormal, 0.0, -0.0, 1.0, -1.0]
    )
    out[k] = specials[rng.integers(0, specials.size, k.sum())]
    k = kind == "threshold"
    t = _thresholds(fi)[rng.integers(0, len(_thresholds(fi)), k.sum())]
    jitter = np.where(rng.random(k.sum()) < 0.5, rng.uniform(-1e-3, 1e-3, k.sum()), rng.uniform(-0.1, 0.1, k.sum()))
    out[k] = t * (1.0 + jitter)
    k = kind == "integer"
    out[k] = rng.integers(-12, 13, k.sum())
    k = kind == "near_zero"
    out[k] = _signs(rng, k.sum()) * _log_uniform(rng, k.sum(), fi.tiny_exp, -1)
    k = kind == "inf"
    out[k] = _signs(rng, k.sum()) * np.inf
    out[kind == "nan"] = np.nan
    return fi.cast(out)


def labels(rng: np.random.Generator, n: int, dtype: str, *, nan: bool = True) -> np.ndarray:
    """Soft labels in [0, 1] (and a small share of nan)."""
    fi = info(dtype)
    kind = _pick(
        rng,
        n,
        {
            "hard": 0.25,
            "uniform": 0.30,
            "near_one": 0.10,
            "tiny": 0.10,
            "subnormal": 0.05,
            "dyadic": 0.08,
            "power_of_two": 0.05,
            "near_half": 0.05,
            "neg_zero": 0.01,
            "nan": 0.01 if nan else 0.0,
        },
    )
    out = np.zeros(n)
    k = kind == "hard"
    out[k] = rng.integers(0, 2, k.sum())
    k = kind == "uniform"
    out[k] = rng.random(k.sum())
    k = kind == "near_one"
    out[k] = 1.0 - np.ldexp(1.0 + rng.random(k.sum()) * (rng.random(k.sum()) < 0.5), -rng.integers(1, fi.p + 3, k.sum()))
    k = kind == "tiny"
    out[k] = _log_uniform(rng, k.sum(), fi.tiny_exp, -1)
    k = kind == "subnormal"
    out[k] = rng.integers(1, 1 << min(fi.p - 1, 52), k.sum()).astype(np.float64) * fi.min_subnormal
    k = kind == "dyadic"
    out[k] = rng.integers(0, 17, k.sum()) / 16.0
    k = kind == "power_of_two"  # 1 - 2**-k is then a rounding midpoint for k > p
    out[k] = np.ldexp(1.0, -rng.integers(1, -fi.tiny_exp + 1, k.sum()))
    k = kind == "near_half"
    out[k] = 0.5 + rng.uniform(-1e-3, 1e-3, k.sum())
    out[kind == "neg_zero"] = -0.0
    out[kind == "nan"] = np.nan
    with np.errstate(invalid="ignore"):
        out = np.where(np.isnan(out), out, np.clip(out, 0.0, 1.0))
    return fi.cast(out)


def probs(rng: np.random.Generator, n: int, dtype: str) -> np.ndarray:
    """Probabilities in [0, 1] for binary_ce (and a small share of nan)."""
    fi = info(dtype)
    kind = _pick(
        rng,
        n,
        {
            "zero": 0.05,
            "one": 0.05,
            "uniform": 0.30,
            "tiny": 0.20,
            "subnormal": 0.05,
            "near_one": 0.20,
            "special": 0.05,
            "nan": 0.01,
        },
    )
    out = np.zeros(n)
    out[kind == "one"] = 1.0
    k = kind == "uniform"
    out[k] = rng.random(k.sum())
    k = kind == "tiny"
    out[k] = _log_uniform(rng, k.sum(), fi.tiny_exp, -2)
    k = kind == "subnormal"
    out[k] = rng.integers(1, 1 << min(fi.p - 1, 52), k.sum()).astype(np.float64) * fi.min_subnormal
    k = kind == "near_one"
    frac = rng.random(k.sum())
    out[k] = 1.0 - np.ldexp(1.0 + frac * (rng.random(k.sum()) < 0.7), -rng.integers(1, fi.p + 2, k.sum()))
    k = kind == "special"
    below_one = 1.0 - math.ldexp(1.0, -fi.p)
    specials = np.array([fi.min_subnormal, fi.min_normal, 0.5, below_one, 0.25, 0.75, -0.0])
    out[k] = specials[rng.integers(0, specials.size, k.sum())]
    out[kind == "nan"] = np.nan
    with np.errstate(invalid="ignore"):
        out = np.where(np.isnan(out), out, np.clip(out, 0.0, 1.0))
    return fi.cast(out)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def elementwise(family: str, dtype: str, n: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points ``(inputs, labels)`` of ``sigmoid_ce`` (logits) or ``binary_ce`` (probs), in ``dtype``."""
    fi = info(dtype)
    rng = np.random.default_rng(seed_for(family, dtype, n) if seed is None else seed)
    if family == "sigmoid_ce":
        x = logits(rng, n, dtype)
        z = labels(rng, n, dtype)
        # The label sigmoid(x) rounded to the dtype: the gradient sigmoid(x) - z nearly cancels.
        near = (rng.random(n) < 0.08) & np.isfinite(x.astype(np.float64))
        z[near] = fi.cast(_sigmoid(x[near].astype(np.float64)))
        return x, z
    if family == "binary_ce":
        p = probs(rng, n, dtype)
        z = labels(rng, n, dtype)
        same = rng.random(n) < 0.03
        z[same] = np.where(np.isnan(p[same].astype(np.float64)), z[same], p[same])
        return p, z
    raise ValueError(f"{family} is not elementwise")


def _class_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    common = rng.integers(1, 9, n)  # 1..8
    big = rng.integers(9, 33, n)
    return np.where(rng.random(n) < 0.03, big, common)


def _row_logits(rng: np.random.Generator, r: int, k: int, dtype: str) -> np.ndarray:
    fi = info(dtype)
    style = _pick(rng, r, {"iid": 0.35, "scaled": 0.25, "ties": 0.12, "dominant": 0.15, "extreme": 0.08, "same": 0.05})
    out = logits(rng, r * k, dtype).astype(np.float64).reshape(r, k)
    s = style == "scaled"  # realistic logits sharing one scale
    out[s] = rng.standard_normal((s.sum(), k)) * np.exp2(rng.uniform(-12, 10, (s.sum(), 1)))
    s = style == "ties"  # a few distinct values, repeated
    base = rng.standard_normal((s.sum(), 3)) * np.exp2(rng.uniform(-3, 8, (s.sum(), 1)))
    out[s] = np.take_along_axis(base, rng.integers(0, 3, (s.sum(), k)), axis=1)
    s = style == "dominant"  # one logit far above the rest, by about a threshold
    rows = np.flatnonzero(s)
    low = rng.standard_normal((rows.size, k)) * 2.0
    gaps = _thresholds(fi)[rng.integers(0, len(_thresholds(fi)), rows.size)]
    gaps = np.abs(gaps) * (1.0 + rng.uniform(-0.05, 0.05, rows.size))
    winner = rng.integers(0, k, rows.size)
    low[np.arange(rows.size), winner] += gaps
    out[rows] = low
    s = style == "extreme"  # mixtures of ±max, ±inf, subnormals and moderate values
    pool = np.array([fi.max, -fi.max, np.inf, -np.inf, fi.min_subnormal, -fi.min_normal, 0.0, 1.0, -30.0, 100.0])
    out[s] = pool[rng.integers(0, pool.size, (s.sum(), k))]
    s = style == "same"  # every logit equal: softmax is rational
    out[s] = out[s][:, :1]
    return fi.cast(out)


def _row_labels(rng: np.random.Generator, r: int, k: int, dtype: str) -> np.ndarray:
    fi = info(dtype)
    style = _pick(rng, r, {"one_hot": 0.30, "dirichlet": 0.20, "free": 0.20, "smooth": 0.12, "tiny": 0.08, "zero": 0.04, "nan": 0.01, "mixed": 0.05})
    out = np.zeros((r, k))
    hot = rng.integers(0, k, r)
    s = style == "one_hot"
    out[np.flatnonzero(s), hot[s]] = 1.0
    s = style == "dirichlet"  # sums to about 1
    g = rng.gamma(0.5, size=(s.sum(), k))
    out[s] = g / np.maximum(g.sum(axis=1, keepdims=True), 1e-300)
    s = style == "free"  # independent labels, not summing to 1
    out[s] = labels(rng, s.sum() * k, dtype, nan=False).astype(np.float64).reshape(-1, k)
    s = style == "smooth"  # label smoothing
    eps = rng.choice([0.1, 0.01, 2.0**-10, 1e-4], size=(s.sum(), 1))
    sm = np.broadcast_to(eps / k, (s.sum(), k)).copy()
    sm[np.arange(s.sum()), hot[s]] += 1.0 - eps[:, 0]
    out[s] = sm
    s = style == "tiny"  # tiny and subnormal soft labels
    out[s] = _log_uniform(rng, s.sum() * k, fi.tiny_exp, -8).reshape(-1, k)
    s = style == "nan"
    out[np.flatnonzero(s), hot[s]] = np.nan
    s = style == "mixed"
    out[s] = rng.integers(0, 2, (s.sum(), k)) * rng.random((s.sum(), 1))
    with np.errstate(invalid="ignore"):
        out = np.where(np.isnan(out), out, np.clip(out, 0.0, 1.0))
    return fi.cast(out)


def rows(family: str, dtype: str, n: int, seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` rows of ``softmax_ce`` (soft labels) or ``sparse_softmax_ce`` (class indices), one block per K."""
    rng = np.random.default_rng(seed_for(family, dtype, n) if seed is None else seed)
    ks = _class_counts(rng, n)
    blocks = []
    for k in np.unique(ks):
        r = int((ks == k).sum())
        x = _row_logits(rng, r, int(k), dtype)
        if family == "softmax_ce":
            z = _row_labels(rng, r, int(k), dtype)
        elif family == "sparse_softmax_ce":
            z = rng.integers(0, int(k), r).astype(np.int64)
        else:
            raise ValueError(f"{family} is not a row family")
        blocks.append((x, z))
    return blocks


def points(family: str, dtype: str, n: int, seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` points (elementwise) or rows of ``family`` in ``dtype``, as a list of ``(inputs, labels)`` blocks."""
    if family in ("sigmoid_ce", "binary_ce"):
        return [elementwise(family, dtype, n, seed)]
    return rows(family, dtype, n, seed)


def structured(family: str, dtype: str, n: int, seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` points built to put the exact value a hair away from a rounding boundary of ``dtype``.

    A loss or gradient that is a dyadic number plus a tiny transcendental term is where an enclosure that
    is not rigorous, or a tie decided from the wrong side, shows: large logits with dyadic labels
    (``|x| w`` a midpoint, plus ``log1p(exp(-|x|))``), large logits with labels ``2**-k`` (``1 - z`` a midpoint,
    minus ``sigmoid(-|x|)``), subnormal and tiny logits with label 1/2 (``x/4`` a midpoint, minus ``x**3/48``),
    tiny probabilities with label 0 and probabilities near 1 with label 1 (``p`` or ``1 - p`` plus a square),
    two nearly equal tiny logits with labels ``[1/2, 1/2]``, and maximal logits (unique or tied) far above
    the rest.
    """
    fi = info(dtype)
    rng = np.random.default_rng(seed_for("structured", family, dtype, n) if seed is None else seed)
    signs = _signs(rng, n)
    bits = min(fi.p, 20)
    large = np.ldexp(rng.integers(1, 1 << bits, n).astype(np.float64), rng.integers(0, max(1, fi.emax - bits + 1), n))
    tiny = np.ldexp(rng.integers(1, 1 << fi.p, n).astype(np.float64), fi.tiny_exp + rng.integers(0, 12, n))
    tiny = np.minimum(tiny, 0.25)
    dyadic = rng.integers(0, 65, n) / 64.0
    pow2 = np.ldexp(1.0, -rng.integers(1, -fi.tiny_exp + 1, n))
    half = np.full(n, 0.5)
    kind = rng.integers(0, 3, n)
    if family == "sigmoid_ce":
        x = np.select([kind == 0, kind == 1], [signs * large, large], signs * tiny)
        z = np.select([kind == 0, kind == 1], [dyadic, pow2], half)
        return [(fi.cast(x), fi.cast(z))]
    if family == "binary_ce":
        near_one = 1.0 - np.ldexp(rng.integers(1, 1 << fi.p, n).astype(np.float64), -fi.p - rng.integers(0, 12, n))
        near_one = np.maximum(near_one, 0.5)
        p = np.select([kind == 0, kind == 1], [tiny, near_one], np.where(rng.random(n) < 0.5, tiny, near_one))
        z = np.select([kind == 0, kind == 1], [np.zeros(n), np.ones(n)], dyadic)
        return [(fi.cast(p), fi.cast(z))]
    if family in ("softmax_ce", "sparse_softmax_ce"):
        blocks = []
        m = n // 3
        # two nearly equal tiny logits, labels [1/2, 1/2] (sparse: a class index)
        x2 = np.stack([signs[:m] * tiny[:m], signs[m : 2 * m] * tiny[m : 2 * m]], axis=1)
        z2 = np.full((m, 2), 0.5) if family == "softmax_ce" else rng.integers(0, 2, m)
        blocks.append((fi.cast(x2), fi.cast(z2) if family == "softmax_ce" else z2))
        # a large logit, its negative and a moderate one, dyadic labels: the loss is dyadic plus e^(-huge)
        r = n - 2 * m
        x3 = np.stack([large[:r], -large[:r], rng.standard_normal(r)], axis=1)
        z3 = rng.integers(0, 9, (r, 3)) / 8.0
        blocks.append((fi.cast(x3), fi.cast(z3) if family == "softmax_ce" else rng.integers(0, 3, r)))
        # maximal logits, once or twice, far above the others
        k = 4
        top = np.where(rng.random(m) < 0.5, fi.max, large[:m])
        x4 = np.stack([top, np.where(rng.random(m) < 0.5, top, -top), -large[m : 2 * m], rng.standard_normal(m)], axis=1)
        z4 = rng.integers(0, 5, (m, k)) / 4.0
        blocks.append((fi.cast(x4), fi.cast(z4) if family == "softmax_ce" else rng.integers(0, k, m)))
        return blocks
    raise ValueError(f"unknown family {family!r}")
