"""Per-example errors of a candidate against the ground truth, and their summary statistics.

The error metric itself (ULP of the exact value, fractional ULP error, bits of error, outcome classes) is
defined once, in :mod:`oracles._ulp`; this module only applies it to a batch and summarizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

import oracles
from oracles import OUTCOME_CODE, Truth, measure_codes, outcome_codes, outcome_names

from ._records import COUNTED_OUTCOMES, HISTOGRAM_BINS, HISTOGRAM_EDGES, NON_FINITE_MISTAKES, SIGN_MISTAKES, RegimeScore

__all__ = ["Comparison", "compare", "example_regime_codes", "example_regimes", "histogram", "sign_marks", "sign_mistakes", "summarize", "severity"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Per-example arrays (flattened): ``ulp`` (nan where no ULP number applies), ``bits``, ``codes`` (the
    outcome classes as :data:`oracles.OUTCOME_CODE` codes, uint8: names given are converted; the
    property ``outcome`` gives the names), and
    ``flushed`` (correctly rounded value is a nonzero subnormal, the candidate returned zero) and
    ``finite_input`` (every input of the example, or of the reduced batch, is finite); ``regime``: the regime
    name of each value's example (:meth:`oracles._family.Family.regimes_of`; a reduced batch is one
    example; a gradient's components each take their example's), or None where not classified;
    ``zero_where_nonzero`` and ``wrong_sign``: the two mistakes of :func:`sign_mistakes` on a gradient's
    components (all False for a loss; None: not computed, counted as none).

    For a gradient each value is one component: the arrays are flattened in the inputs' order, so the
    ``K`` components of a row-family example are consecutive."""

    ulp: np.ndarray
    bits: np.ndarray
    codes: np.ndarray
    flushed: np.ndarray
    finite_input: np.ndarray
    regime: np.ndarray | None = None
    zero_where_nonzero: np.ndarray | None = None
    wrong_sign: np.ndarray | None = None

    def __post_init__(self) -> None:
        codes = np.asarray(self.codes)
        if codes.dtype != np.uint8:  # outcome names (strings)
            object.__setattr__(self, "codes", outcome_codes(codes.astype(str)) if codes.size else codes.astype(np.uint8))

    @property
    def outcome(self) -> np.ndarray:
        """The outcome class names (strings of :data:`oracles.OUTCOMES`)."""
        return outcome_names(self.codes)

    def has(self, *names: str) -> np.ndarray:
        """Per value: its outcome is one of ``names`` (compared as codes)."""
        return np.isin(self.codes, [OUTCOME_CODE[name] for name in names])


def sign_mistakes(got: np.ndarray, rounded: np.ndarray, min_normal: float) -> tuple[np.ndarray, np.ndarray]:
    """Two mistakes of a gradient that no ULP figure shows well, per value (flattened); :func:`compare`
    applies them to gradient components only (0 on loss rows):

    - ``zero_where_nonzero``: the candidate returned ``+0`` or ``-0`` where the correctly rounded exact value
      is a nonzero NORMAL number (``|rounded| >= min_normal``, finite): a vanishing gradient (a clip's zero
      derivative, an underflowed factor). A nonzero SUBNORMAL rounded value returned as 0 is not counted
      here: that is ``flushed_subnormal``.
    - ``wrong_sign``: the candidate returned a finite nonzero value whose sign differs from that of the
      correctly rounded value, which is finite and nonzero (an infinite exact value returned finite is
      ``finite_where_infinite``'s; a rounded 0 has no sign to get wrong).

    Both values are finite numbers, so both examples also have a ULP number (a large one)."""
    g = np.asarray(got).astype(np.float64).ravel()
    r = np.asarray(rounded, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore"):
        nonzero = np.isfinite(r) & (r != 0)
        zero = nonzero & (np.abs(r) >= min_normal) & (g == 0)
        wrong = nonzero & np.isfinite(g) & (g != 0) & (np.signbit(g) != np.signbit(r))
    return zero, wrong


def compare(truth: Truth, computed: np.ndarray, regimes: np.ndarray | None = None) -> Comparison:
    """Compare a candidate's values (same shape as ``truth.rounded``) with the ground truth.

    ``finite_input`` and ``regime`` are derived from ``truth``: per example for ``reduction='none'``, for
    the whole batch otherwise (the batch is one example: its inputs and labels together, the reduced exact
    value; see :meth:`oracles._family.Family.regimes_of`). A gradient ``truth`` (``what='gradient'``) cannot
    classify its examples (a regime is decided by the exact LOSS): ``regimes`` gives them, one per
    example (one for a reduced batch), and each component takes its example's regime; its ``finite_input``
    is its example's too (a row with one infinite logit makes every component's input non-finite). Without
    ``regimes`` a gradient comparison is unclassified (``regime`` None). For a loss, ``regimes`` given are
    taken as they are (those of :func:`example_regimes`, computed once for several candidates)."""
    got = np.asarray(computed)
    codes, ulp, bits = (a.ravel() for a in measure_codes(got, truth, truth.dtype))
    fmt = oracles.resolve_format(truth.dtype)
    rounded = np.asarray(truth.rounded, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore"):
        subnormal = (rounded != 0) & (np.abs(rounded) < fmt.min_normal)
    # (zero compared in the candidate's own format: a float64 copy of a million values only to find its zeros)
    flushed = subnormal & (got.ravel() == 0) & (codes == OUTCOME_CODE["finite"])
    x = np.asarray(truth.inputs, dtype=np.float64)
    # values per example: 1 for a loss, the example's inputs for a gradient (all of them for a reduced batch)
    if truth.reduction != "none":
        examples = 1
    elif truth.what == "gradient":
        examples = int(np.prod(oracles.get_family(truth.family).batch_shape(x), dtype=np.int64))
    else:
        examples = codes.size
    per = codes.size // examples if examples else 1
    if truth.reduction != "none":
        finite_input = np.full(codes.shape, bool(np.isfinite(x).all()))
    else:
        rows = x.reshape(examples, -1) if codes.size else x.reshape(0, 1)
        finite_input = oracles.row_all(np.isfinite(rows))  # (numpy's all(axis=1) is slow on narrow rows)
        finite_input = np.repeat(finite_input, per) if per > 1 else finite_input
    if truth.what == "gradient":
        zero, wrong = sign_mistakes(got, rounded, fmt.min_normal)
    else:  # counted on gradient rows only: a loss that underflows to 0 shows in its ULP error and the tiny regime
        zero = wrong = np.zeros(codes.size, dtype=bool)
    regime = None
    if regimes is not None:  # given (a gradient's: its examples'; a loss's: already known, as in a sweep)
        regime = np.asarray(regimes).ravel()
        regime = np.repeat(regime, per) if per > 1 else regime
    elif truth.what == "loss":
        regime = example_regimes(truth)
    return Comparison(ulp=ulp, bits=bits, codes=codes, flushed=flushed, finite_input=finite_input, regime=regime,
                      zero_where_nonzero=zero, wrong_sign=wrong)


def example_regimes(truth: Truth) -> np.ndarray:
    """The regime of each example of a LOSS ``truth`` (:meth:`oracles._family.Family.regimes_of`): one per
    example for ``reduction='none'``, one for the whole batch otherwise (the batch is one example)."""
    return oracles.get_family(truth.family).regime_names(example_regime_codes(truth))


def example_regime_codes(truth: Truth) -> np.ndarray:
    """:func:`example_regimes` as codes: the index of each example's regime in its family's ``regimes``."""
    batch = truth.reduction != "none"
    return oracles.get_family(truth.family).regime_codes_of(
        truth.inputs[None] if batch else truth.inputs, truth.labels[None] if batch else truth.labels,
        truth.dtype, truth.rounded, truth)  # the record: its exact values are made only if needed


def severity(c: Comparison) -> np.ndarray:
    """A finite score per example for ranking and for ``hypothesis.target``: the ULP error where there is
    one; non-finite mistakes (nan/inf where the exact value is finite, and the like) rank above every
    finite error at 2**80; unconverged oracle values rank at -1 (never reported as a candidate's error)."""
    score = np.where(np.isnan(c.ulp), 2.0**80, np.minimum(c.ulp, 2.0**79))
    return np.where(c.codes == OUTCOME_CODE["unconverged"], -1.0, score)


def _stat(values: np.ndarray, fn) -> float | None:
    return float(fn(values)) if values.size else None


def _mean(values: np.ndarray) -> float:
    """The arithmetic mean ``sum(v) / n`` (numpy's pairwise sum, as ``np.mean``), except where that sum
    overflows while every value is finite: ULP errors of float64 results reach 1e300 and more, and a mean
    of two 1e308-ULP errors is 1e308, not inf (``np.mean`` gave inf, with a RuntimeWarning); then it is
    ``sum(v / n)``, which cannot overflow."""
    with np.errstate(over="ignore"):  # an overflowing sum is detected here and summed the other way
        total = np.sum(values)
    if np.isfinite(total) or not np.isfinite(values).all():
        return total / values.size
    return np.sum(values / values.size)


def _median(values: np.ndarray) -> float:
    """The median: the middle value of the sorted values, or for an even count the mean of the two middle
    ones, computed as ``a/2 + b/2`` (``np.median``'s ``(a + b)/2`` overflowed for two errors above 9e307)."""
    ordered = np.sort(values)
    half = ordered.size // 2
    return ordered[half] if ordered.size % 2 else ordered[half - 1] / 2 + ordered[half] / 2


def _ulp_stats(ulp: np.ndarray, bits: np.ndarray) -> dict:
    """ULP statistics over the values with a ULP number, bits statistics over those with bits.
    ``mean_ulp`` and ``mean_bits``: arithmetic means (:func:`_mean`); ``median_ulp``: the median
    (:func:`_median`); ``p99_ulp``: the value at position ``ceil(0.99 * (n - 1))`` of the sorted values
    (``np.percentile(..., 99, method="higher")``: never between two values)."""
    measured = ulp[~np.isnan(ulp)]
    bits = bits[~np.isnan(bits)]
    return {
        "max_ulp": _stat(measured, np.max),
        "mean_ulp": _stat(measured, _mean),
        "median_ulp": _stat(measured, _median),
        "p99_ulp": _stat(measured, lambda v: np.percentile(v, 99, method="higher")),
        "max_bits": _stat(bits, np.max),
        "mean_bits": _stat(bits, _mean),
    }


def _regime_codes(c: Comparison, order: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    """The regimes present (``order``'s first, in its order; any others in order of first appearance) and
    each example's index among them."""
    code = np.full(c.codes.size, -1, dtype=np.intp)
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


def sign_marks(c: Comparison, name: str) -> np.ndarray:
    """The boolean array ``name`` (one of :data:`SIGN_MISTAKES`) of ``c``, all False where not computed."""
    marks = getattr(c, name)
    return np.zeros(c.codes.size, dtype=bool) if marks is None else marks


def _counts(c: Comparison, group: np.ndarray, groups: int) -> list[dict[str, int]]:
    """Per group (``group``: each example's group index, ``0 .. groups-1``), the outcome counts of
    :data:`COUNTED_OUTCOMES`: each outcome class compared once over all examples, then counted per group."""
    k = len(COUNTED_OUTCOMES)
    # outcome code -> its index in COUNTED_OUTCOMES, k for an outcome not counted (finite, agree)
    table = np.array([COUNTED_OUTCOMES.index(n) if n in COUNTED_OUTCOMES else k for n in oracles.OUTCOMES], dtype=np.intp)
    code = table[c.codes]
    table = np.bincount(group * (k + 1) + code, minlength=groups * (k + 1)).reshape(groups, k + 1)
    flushed = np.bincount(group, weights=c.flushed, minlength=groups)
    marked = {name: np.bincount(group, weights=sign_marks(c, name), minlength=groups) for name in SIGN_MISTAKES}
    mistake = np.isin(code, [COUNTED_OUTCOMES.index(name) for name in NON_FINITE_MISTAKES])
    on_nonfinite = np.bincount(group, weights=mistake & ~c.finite_input, minlength=groups)
    out = []
    for g in range(groups):
        counts = {name: int(table[g, j]) for j, name in enumerate(COUNTED_OUTCOMES)}
        counts["flushed_subnormal"] = int(flushed[g])
        counts.update((name, int(marked[name][g])) for name in SIGN_MISTAKES)
        counts["on_nonfinite_inputs"] = int(on_nonfinite[g])
        out.append(counts)
    return out


def _block(values: int, ulp: np.ndarray, bits: np.ndarray, counts: dict[str, int]) -> dict:
    """The statistics a :class:`harness.Score` and a :class:`harness.records.RegimeScore` share: examples
    (the ``values`` compared, less the unconverged), ULP and bits statistics, outcome counts."""
    return {"examples": int(values - counts["unconverged"]), **_ulp_stats(ulp, bits), "counts": counts}


def histogram(ulp: np.ndarray, bits: np.ndarray) -> dict[str, int]:
    """The :data:`HISTOGRAM_BINS` counts of measured values (``ulp`` and ``bits`` of the same values, none
    nan): ``"exact"`` where the bits of error are 0 (the correctly rounded value itself), else the first
    bin whose upper bound (:data:`HISTOGRAM_EDGES`, inclusive) the ULP error does not exceed, ``"more"``
    above the last. Counted as how many inexact values exceed each edge: no masked copies, no index
    array (a sweep counts millions of values at once)."""
    inexact = bits != 0
    n = [int(np.count_nonzero(inexact))] + [int(np.count_nonzero(inexact & (ulp > e))) for e in HISTOGRAM_EDGES]
    return {"exact": int(bits.size) - n[0], **{name: n[i] - n[i + 1] for i, name in enumerate(HISTOGRAM_BINS[1:-1])},
            "more": n[-1]}


def summarize(c: Comparison, regimes: Sequence[str] | None = None) -> dict:
    """ULP statistics, histogram and outcome counts of one comparison, and ``regimes``: the same per regime,
    a :class:`~harness.records.RegimeScore` each (``worst`` left None: scoring adds the reproducers), in the
    order ``regimes`` names (a family's regime names; others, and all of them without ``regimes``, in order
    of first appearance), only regimes with at least one example; ``{}`` when ``c`` is not classified.
    See :class:`harness.Score`."""
    measured = ~np.isnan(c.ulp)
    hist = histogram(c.ulp[measured], c.bits[measured])
    classified = c.regime is not None and c.regime.size > 0
    names, group = _regime_codes(c, regimes) if classified else ([], np.zeros(c.codes.size, dtype=np.intp))
    per_group = _counts(c, group, max(len(names), 1))
    counts = {name: sum(g[name] for g in per_group) for name in COUNTED_OUTCOMES}
    by_regime = {}
    for j, name in enumerate(names):
        m = group == j
        by_regime[name] = RegimeScore(**_block(int(m.sum()), c.ulp[m], c.bits[m], per_group[j]))
    stats = _block(c.codes.size, c.ulp, c.bits, counts)
    counts = stats.pop("counts")
    return {**stats, "histogram": hist, "counts": counts, "regimes": by_regime}
