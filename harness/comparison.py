"""Reports side by side (``lossfuzz compare``): the same rows of several runs, with deltas against the first.

A **row** is one (family, candidate, dtype, quantity, regime): ``quantity`` is the score's (the loss, or
the gradient with respect to the inputs, :attr:`Score.quantity`; a report written before gradients has loss
rows only), and a gradient row is compared with the same rules as a loss row. Regime ``all`` is the whole
score; the other regimes come from the score's per-regime statistics (``Score.regimes``, reports/SCHEMA.md) when the report has
them. Per report, a row shows its **figures**: max ULP, p99 ULP, mean bits of error, and the non-finite
mistakes (the six outcome classes of :data:`harness._records.NON_FINITE_MISTAKES`, summed by
:func:`harness.outcomes.tally_outcomes`), each defined in reports/SCHEMA.md. A row absent from a report is
*missing* there.

**What counts as a regression or an improvement** of a later report against the first (the *base*), row by
row; ``factor`` is the gate's ``--max-ulp-regression`` (1.5 by default) and the ULP limit is the gate's,
:func:`harness.gate.ulp_limit` (``max(factor x old, 1 ULP)``: sub-ULP differences are rounding noise):

- **max ULP** or **p99 ULP** got worse: the new figure is above ``max(factor x base, 1)`` (``inf`` is above
  every finite figure), or the base had a figure and the new report has none (every value non-finite);
  better: the base figure is above ``max(factor x new, 1)``, or the new report has a figure where the
  base had none.
- **mean bits** got worse: it grew by more than :data:`BITS_TOLERANCE` bits (better: fell by more).
- **non-finite** got worse: the count rose from 0, or rose and its share of the row's examples grew by
  more than ``factor`` (runs with other seeds or example counts draw other inputs); better: it fell to 0,
  or fell and its share shrank by more than ``factor``.
- **scored**: a row the base scored (examples > 0) that the new report could not score (unsupported, the
  library missing, every call failed) is a regression; the reverse an improvement.

A row is a **regression** when any figure got worse (whatever else got better), an **improvement** when
at least one got better and none worse, **same** otherwise; **missing** where the row is absent from the
base or from that report. Pure computation: the command reads the files and writes the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ._records import RunResult
from ._values import fmt_ulp
from .gate import DEFAULT_FACTOR, ulp_limit
from .outcomes import tally_outcomes
from .provenance import environment_changes

__all__ = ["ALL_REGIME", "BITS_TOLERANCE", "MARKS", "Figures", "Delta", "Row", "SideBySide", "figures_of",
           "compare_reports"]

# The pseudo-regime of the whole score.
ALL_REGIME = "all"
# Mean bits of error may move by this much either way before a row is marked.
BITS_TOLERANCE = 1.0
# What a later report's row is, against the base.
MARKS = ("regression", "improvement", "same", "missing")


@dataclass(frozen=True, slots=True)
class Figures:
    """The compared figures of one row in one report (see the module docstring); ``scored`` is False when
    the candidate could not be scored there (no examples: then every figure is None)."""

    examples: int
    max_ulp: float | None
    p99_ulp: float | None
    mean_bits: float | None
    non_finite: int
    scored: bool


@dataclass(frozen=True, slots=True)
class Delta:
    """A later report's row against the base: its mark (one of :data:`MARKS`), and one short text per
    figure that got worse (``worse``) or better (``better``), e.g. ``max ULP 0.5 → 1.68e+07``."""

    mark: str
    worse: tuple[str, ...] = ()
    better: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Row:
    """One (family, candidate, dtype, quantity, regime): its figures in each report (None: missing there)
    and, for each report after the first, its delta against the first."""

    family: str
    candidate: str
    dtype: str
    regime: str
    figures: tuple[Figures | None, ...]
    deltas: tuple[Delta, ...]
    quantity: str = "loss"

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.family, self.candidate, self.dtype, self.quantity, self.regime)


@dataclass(frozen=True, slots=True)
class SideBySide:
    """The comparison of ``names`` (one per report, the first the base): every row of any report, in the
    order of first appearance (the base's first)."""

    names: tuple[str, ...]
    rows: tuple[Row, ...]
    factor: float = DEFAULT_FACTOR
    # per later report, what differs from the base's provenance that can move figures by itself
    # (harness.provenance.environment_changes: library versions, numpy's SIMD targets)
    elsewhere: tuple[tuple[str, ...], ...] = ()

    def count(self, mark: str) -> int:
        """Rows marked ``mark`` against the base, over every later report."""
        return sum(d.mark == mark for r in self.rows for d in r.deltas)

    @property
    def regressions(self) -> int:
        return self.count("regression")

    @property
    def improvements(self) -> int:
        return self.count("improvement")


def figures_of(stats: Any) -> Figures:
    """The figures of a score, or of one of its regimes (any object with the statistics of a score:
    ``examples``, ``max_ulp``, ``p99_ulp``, ``mean_bits``, ``counts``)."""
    examples = int(getattr(stats, "examples", 0) or 0)
    scored = examples > 0 and not getattr(stats, "unsupported", False)
    return Figures(examples, stats.max_ulp, stats.p99_ulp, stats.mean_bits, tally_outcomes(stats).non_finite, scored)


def _rows_of(result: RunResult) -> dict[tuple[str, str, str, str, str], Figures]:
    """Figures by row key (family, candidate, dtype, quantity, regime)."""
    rows: dict[tuple[str, str, str, str, str], Figures] = {}
    for score in result.scores:
        rows[(*score.key, ALL_REGIME)] = figures_of(score)
        for regime, stats in score.regimes.items():
            rows[(*score.key, regime)] = figures_of(stats)
    return rows


def _ulp_delta(what: str, old: float | None, new: float | None, factor: float) -> tuple[str | None, str | None]:
    """(worse, better) texts of one ULP figure, each None when it did not move that way."""
    text = f"{what} {fmt_ulp(old)} → {fmt_ulp(new)}"
    if old is None and new is None:
        return None, None
    if new is None:
        return text, None
    if old is None:
        return None, text
    if new > ulp_limit(old, factor):  # inf > every finite limit; inf vs inf: neither
        return text, None
    if old > ulp_limit(new, factor):
        return None, text
    return None, None


def _share(count: int, examples: int) -> float:
    return count / examples if examples else 0.0


def _nonfinite_delta(old: Figures, new: Figures, factor: float) -> tuple[str | None, str | None]:
    text = f"non-finite {old.non_finite} → {new.non_finite}"
    was, now = _share(old.non_finite, old.examples), _share(new.non_finite, new.examples)
    if new.non_finite > old.non_finite and (old.non_finite == 0 or now > factor * was):
        return text, None
    if new.non_finite < old.non_finite and (new.non_finite == 0 or was > factor * now):
        return None, text
    return None, None


def _delta(old: Figures | None, new: Figures | None, factor: float) -> Delta:
    if old is None or new is None:
        return Delta("missing")
    if old.scored != new.scored:
        change = ("scored → not scored",) if old.scored else ("not scored → scored",)
        return Delta("regression", worse=change) if old.scored else Delta("improvement", better=change)
    if not old.scored:
        return Delta("same")
    pairs = [_ulp_delta("max ULP", old.max_ulp, new.max_ulp, factor),
             _ulp_delta("p99 ULP", old.p99_ulp, new.p99_ulp, factor),
             _bits_delta(old.mean_bits, new.mean_bits),
             _nonfinite_delta(old, new, factor)]
    worse = tuple(w for w, _ in pairs if w)
    better = tuple(b for _, b in pairs if b)
    mark = "regression" if worse else "improvement" if better else "same"
    return Delta(mark, worse, better)


def _bits_delta(old: float | None, new: float | None) -> tuple[str | None, str | None]:
    if old is None or new is None or math.isnan(old) or math.isnan(new):
        return None, None
    text = f"mean bits {old:.1f} → {new:.1f}"
    if new - old > BITS_TOLERANCE:
        return text, None
    if old - new > BITS_TOLERANCE:
        return None, text
    return None, None


def compare_reports(results: Sequence[RunResult], names: Sequence[str], factor: float = DEFAULT_FACTOR) -> SideBySide:
    """Every row of ``results`` side by side, each later report's rows marked against the first (see the
    module docstring for the rules). ``names`` label the reports (e.g. their file names)."""
    if len(results) < 2:
        raise ValueError(f"compare needs at least 2 reports, got {len(results)}; pass two or more report.json files")
    if len(names) != len(results):
        raise ValueError(f"{len(names)} names for {len(results)} reports; pass one name per report")
    tables = [_rows_of(r) for r in results]
    keys: dict[tuple[str, str, str, str, str], None] = {}
    for table in tables:
        keys.update(dict.fromkeys(table))
    rows = []
    for key in keys:
        figures = tuple(t.get(key) for t in tables)
        deltas = tuple(_delta(figures[0], f, factor) for f in figures[1:])
        family, candidate, dtype, quantity, regime = key
        rows.append(Row(family, candidate, dtype, regime, figures, deltas, quantity))
    elsewhere = tuple(environment_changes(results[0].provenance, r.provenance) for r in results[1:])
    return SideBySide(tuple(names), tuple(rows), factor, elsewhere)
