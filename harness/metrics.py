"""Per-example errors of a candidate against the ground truth, and their summary statistics.

The error metric itself (ULP of the exact value, fractional ULP error, bits of error, outcome classes) is
defined once, in :mod:`oracles._ulp`; this module only applies it to a batch and summarizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

import oracles
from oracles import Truth

from ._records import COUNTED_OUTCOMES, HISTOGRAM_BINS, NON_FINITE_MISTAKES, RegimeScore

__all__ = ["Comparison", "compare", "summarize", "severity"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Per-example arrays (flattened): ``ulp`` (nan where no ULP number applies), ``bits``, ``outcome``, and
    ``flushed`` (correctly rounded value is a nonzero subnormal, the candidate returned zero) and
    ``finite_input`` (every input of the example, or of the reduced batch, is finite); ``regime``: the regime
    name of each example (:meth:`oracles._family.Family.regimes_of`; a reduced batch is one example), or
    None where not classified (gradients)."""

    ulp: np.ndarray
    bits: np.ndarray
    outcome: np.ndarray
    flushed: np.ndarray
    finite_input: np.ndarray
    regime: np.ndarray | None = None


def compare(truth: Truth, computed: np.ndarray) -> Comparison:
    """Compare a candidate's values (same shape as ``truth.rounded``) with the ground truth.

    ``finite_input`` and ``regime`` are derived from ``truth``: per example for ``reduction='none'``, for
    the whole batch otherwise (the batch is one example: its inputs and labels together, the reduced exact
    value; see :meth:`oracles._family.Family.regimes_of`)."""
    got = np.asarray(computed)
    outcome, ulp, bits = (a.ravel() for a in oracles.measure(got, truth, truth.dtype))
    fmt = oracles.resolve_format(truth.dtype)
    rounded = np.asarray(truth.rounded, dtype=np.float64).ravel()
    g = got.astype(np.float64).ravel()
    with np.errstate(invalid="ignore"):
        subnormal = (rounded != 0) & (np.abs(rounded) < fmt.min_normal)
    flushed = subnormal & (g == 0) & (outcome == "finite")
    x = np.asarray(truth.inputs, dtype=np.float64)
    if truth.reduction != "none":
        finite_input = np.full(outcome.shape, bool(np.isfinite(x).all()))
    else:
        rows = x.reshape(outcome.size, -1) if outcome.size else x.reshape(0, 1)
        finite_input = np.isfinite(rows).all(axis=1)
    regime = None
    if truth.what == "loss":
        batch = truth.reduction != "none"
        regime = oracles.get_family(truth.family).regimes_of(
            truth.inputs[None] if batch else truth.inputs, truth.labels[None] if batch else truth.labels,
            truth.dtype, truth.rounded, truth)  # the record: its exact values are made only if needed
    return Comparison(ulp=ulp, bits=bits, outcome=outcome, flushed=flushed, finite_input=finite_input, regime=regime)


def severity(c: Comparison) -> np.ndarray:
    """A finite score per example for ranking and for ``hypothesis.target``: the ULP error where there is
    one; non-finite mistakes (nan/inf where the exact value is finite, and the like) rank above every
    finite error at 2**80; unconverged oracle values rank at -1 (never reported as a candidate's error)."""
    score = np.where(np.isnan(c.ulp), 2.0**80, np.minimum(c.ulp, 2.0**79))
    return np.where(c.outcome == "unconverged", -1.0, score)


def _stat(values: np.ndarray, fn) -> float | None:
    return float(fn(values)) if values.size else None


def _ulp_stats(ulp: np.ndarray, bits: np.ndarray) -> dict:
    """ULP statistics over the values with a ULP number, bits statistics over those with bits."""
    measured = ulp[~np.isnan(ulp)]
    bits = bits[~np.isnan(bits)]
    return {
        "max_ulp": _stat(measured, np.max),
        "mean_ulp": _stat(measured, np.mean),
        "median_ulp": _stat(measured, np.median),
        "p99_ulp": _stat(measured, lambda v: np.percentile(v, 99, method="higher")),
        "max_bits": _stat(bits, np.max),
        "mean_bits": _stat(bits, np.mean),
    }


def _regime_codes(c: Comparison, order: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    """The regimes present (``order``'s first, in its order; any others in order of first appearance) and
    each example's index among them."""
    code = np.full(c.outcome.size, -1, dtype=np.intp)
    names: list[str] = []
    for name in order or ():
        hit = c.regime == name
        if hit.any():
            code[hit] = len(names)
            names.append(name)
    left = code < 0
    if left.any():
        extra, first = np.unique(c.regime[left], return_index=True)
        for _first, name in sorted(zip(first.tolist(), extra.tolist())):
            code[left & (c.regime == name)] = len(names)
            names.append(str(name))
    return names, code


def _counts(c: Comparison, group: np.ndarray, groups: int) -> list[dict[str, int]]:
    """Per group (``group``: each example's group index, ``0 .. groups-1``), the outcome counts of
    :data:`COUNTED_OUTCOMES`: each outcome class compared once over all examples, then counted per group."""
    k = len(COUNTED_OUTCOMES)
    code = np.full(c.outcome.size, k, dtype=np.intp)  # k: no counted outcome (finite, agree)
    for j, name in enumerate(COUNTED_OUTCOMES):
        code[c.outcome == name] = j
    table = np.bincount(group * (k + 1) + code, minlength=groups * (k + 1)).reshape(groups, k + 1)
    flushed = np.bincount(group, weights=c.flushed, minlength=groups)
    mistake = np.isin(code, [COUNTED_OUTCOMES.index(name) for name in NON_FINITE_MISTAKES])
    on_nonfinite = np.bincount(group, weights=mistake & ~c.finite_input, minlength=groups)
    out = []
    for g in range(groups):
        counts = {name: int(table[g, j]) for j, name in enumerate(COUNTED_OUTCOMES)}
        counts["flushed_subnormal"] = int(flushed[g])
        counts["on_nonfinite_inputs"] = int(on_nonfinite[g])
        out.append(counts)
    return out


def _block(values: int, ulp: np.ndarray, bits: np.ndarray, counts: dict[str, int]) -> dict:
    """The statistics a :class:`harness.Score` and a :class:`harness.records.RegimeScore` share: examples
    (the ``values`` compared, less the unconverged), ULP and bits statistics, outcome counts."""
    return {"examples": int(values - counts["unconverged"]), **_ulp_stats(ulp, bits), "counts": counts}


def summarize(c: Comparison, regimes: Sequence[str] | None = None) -> dict:
    """ULP statistics, histogram and outcome counts of one comparison, and ``regimes``: the same per regime,
    a :class:`~harness.records.RegimeScore` each (``worst`` left None: scoring adds the reproducers), in the
    order ``regimes`` names (a family's regime names; others, and all of them without ``regimes``, in order
    of first appearance), only regimes with at least one example; ``{}`` when ``c`` is not classified.
    See :class:`harness.Score`."""
    hist = dict.fromkeys(HISTOGRAM_BINS, 0)
    exact = (c.bits == 0) & ~np.isnan(c.ulp)
    hist["exact"] = int(exact.sum())
    rest = c.ulp[~exact & ~np.isnan(c.ulp)]
    for name, upper in (("<=0.5", 0.5), ("<=1", 1.0), ("<=4", 4.0), ("<=1024", 1024.0)):
        hist[name] = int((rest <= upper).sum())
        rest = rest[rest > upper]
    hist["more"] = int(rest.size)
    classified = c.regime is not None and c.regime.size > 0
    names, group = _regime_codes(c, regimes) if classified else ([], np.zeros(c.outcome.size, dtype=np.intp))
    per_group = _counts(c, group, max(len(names), 1))
    counts = {name: sum(g[name] for g in per_group) for name in COUNTED_OUTCOMES}
    by_regime = {}
    for j, name in enumerate(names):
        m = group == j
        by_regime[name] = RegimeScore(**_block(int(m.sum()), c.ulp[m], c.bits[m], per_group[j]))
    stats = _block(c.outcome.size, c.ulp, c.bits, counts)
    counts = stats.pop("counts")
    return {**stats, "histogram": hist, "counts": counts, "regimes": by_regime}
