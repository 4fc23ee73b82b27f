"""The regression gate: compare a run with a baseline run, per family x candidate x dtype x quantity. Pure computation.

A **baseline** is a report in the ``report.json`` format (a :class:`~harness._records.RunResult`), so the
output of ``lossfuzz run`` serves as one. ``lossfuzz gate --update-baseline`` writes baselines with one more
top-level entry, ``"gate"``: the replay corpus the baseline's figures were computed on (hex text, the corpus
format of :mod:`harness.corpus`). The gate re-runs the baseline's fixed-seed campaign (its settings: seed,
examples, families, candidates, dtypes; timing off) with a replay corpus made of

1. the baseline's stored replay corpus (baselines written by the gate), then
2. the inputs of the baseline's worst cases and shrunk reproducers that are not in it yet (of per-example
   candidates: a reduced candidate's worst case is a batch, whose examples the campaign regroups), then
3. the examples of a corpus folder, if one is given,

without the boundary catalogue's own examples (always run anyway). Hypothesis explores differently once a
candidate changes, so the inputs where the baseline went wrong are replayed explicitly.

**Exact comparisons.** ``--update-baseline`` runs the campaign, adds the new worst cases to the replay
corpus and, if there were any, runs it again with them: the stored corpus then holds every worst case and
reproducer of the stored figures (a fixed point). Gating the same code against such a baseline replays
exactly the inputs the baseline was computed on, so every figure is identical (the campaign is
deterministic for a given seed). A ``lossfuzz run`` report does not record the corpus it replayed: its
worst cases are replayed on top of the seeded search, and an input both replayed and found by the search
counts twice. The outcome counts may then grow by up to the number of inputs replayed beyond the stored
corpus (``slack``) without being called worse; a count that was zero gets no slack (and must stay zero
where its threshold keeps zero: ``keep0``).

**What is compared** (:func:`compare_block`), for the whole score and for each of its regimes
(``score.regimes``: :class:`harness.records.RegimeScore`, which carries the same attribute names):
max, p99 and median ULP, mean bits, non-finite mistakes on finite inputs and every outcome class of
:data:`~harness._records.COUNTED_OUTCOMES` as a rate per example, each against its threshold
(:mod:`harness.thresholds`: the defaults, why, and how keys select a regime). A ULP figure present in the
baseline but absent now (every value non-finite) is worse; one absent from the baseline is not compared;
``inf`` beats any finite figure and nothing beats ``inf``. A regime in the baseline without examples now is
noted, not compared. A baseline written with other library versions or on another numpy SIMD target
(:func:`harness.provenance.environment_changes`) is noted: numpy's float32 ``exp`` differs between
targets, so a figure can move with the machine and not with the code.

**Quantities.** A gradient row (``Score.quantity == "gradient"``: the gradient with respect to the inputs,
compared component by component) is checked like a loss row, against the same thresholds: a key is
(family, candidate, dtype, quantity), and each :class:`Check` says its quantity.

**Verdicts** per key (family, candidate, dtype, quantity):

- ``regression`` (fails the gate): a statistic of the whole score or of a regime beyond its threshold
  (each is a :class:`Comparison`: statistic, regime, old → new, limit, threshold, the case behind it); or the
  candidate now rejects the dtype or fails to run at all.
- ``new_nonfinite``: the only statistic beyond its threshold is ``nonfinite_on_finite_inputs`` (nan, inf, a
  finite value where the exact one is infinite, the other outcome classes of
  :data:`~harness._records.NON_FINITE_MISTAKES`, on examples whose inputs are all finite: ``counts -
  counts["on_nonfinite_inputs"]``). Fails the gate unless ``fail_on_new_nonfinite=False`` (then a warning).
- ``missing`` (fails the gate): in the baseline, not in this run.
- ``new`` (passes, reported): in this run, not in the baseline.
- ``pass``.

Speed is never compared: timings are not deterministic.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np

import oracles

from ._records import COUNTED_OUTCOMES, NON_FINITE_MISTAKES, RunResult, Score, WorstCase
from ._values import fmt_ulp as _fmt
from ._values import parse_value
from .candidates import CANDIDATE_NAMES
from .corpus import MAX_EXAMPLE_ELEMENTS, corpus_from_json, corpus_to_json
from .outcomes import count, shown_case, tally_outcomes
from .provenance import environment_changes
from .strategies import Example, catalogue
from .thresholds import (BITS_STATISTICS, COUNT_STATISTICS, DEFAULT_THRESHOLDS, NONFINITE_ON_FINITE, STATISTIC_WORDS,
                         ULP_STATISTICS, WHOLE, Threshold, parse_thresholds, threshold_for)

__all__ = [
    "DEFAULT_FACTOR",
    "ULP_FLOOR",
    "STATUSES",
    "GATE_VERSION",
    "Comparison",
    "Check",
    "GateResult",
    "check_run",
    "compare_block",
    "case_for",
    "parse_factor",
    "ulp_limit",
    "nonfinite_on_finite_inputs",
    "examples_from_case",
    "replay_corpus",
    "gate_entry",
    "read_gate_entry",
    "read_gate_thresholds",
    "case_of",
    "relevant_case",
]

from .options import DEFAULT_FACTOR, parse_factor  # noqa: E402  (declared with the --max-ulp-regression option)
# Below this many ULP an error is never a regression (sub-ULP differences are rounding noise).
ULP_FLOOR = 1.0
STATUSES = ("pass", "new", "new_nonfinite", "regression", "missing")
GATE_VERSION = 1


def ulp_limit(old: float | None, factor: float) -> float | None:
    """The largest max-ULP figure that still passes against a baseline of ``old``: ``max(factor * old, 1)``;
    None when the baseline has no figure (nothing to compare)."""
    if old is None:
        return None
    return max(factor * old, ULP_FLOOR)


def nonfinite_on_finite_inputs(score: Score) -> int:
    """Non-finite mistakes on examples whose inputs are all finite (those on ±inf/nan inputs excluded)."""
    return tally_outcomes(score).on_finite_inputs


def case_of(score: Score | None) -> WorstCase | None:
    """The case that shows a score's worst: its shrunk reproducer, else its worst case."""
    shown = None if score is None else shown_case(score)
    return None if shown is None else shown[1]


def _count_text(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One statistic of one block (the whole score, ``regime`` :data:`~harness.thresholds.WHOLE`, or one regime)
    that got worse than its ``threshold`` allows: ``old`` → ``new`` against ``limit`` (the largest passing
    value; None when the figure is gone). ``fails``: whether it fails the gate (new non-finite results on
    finite inputs only warn with ``fail_on_new_nonfinite=False``); ``case``: the case that shows it (its
    replay command), when one is listed; ``old_examples``/``new_examples``: the counts' denominators;
    ``detail``: what the candidate raised, for ``raised``."""

    regime: str
    statistic: str
    old: float | None
    new: float | None
    limit: float | None
    threshold: Threshold
    fails: bool = True
    case: WorstCase | None = None
    old_examples: int = 0
    new_examples: int = 0
    detail: str = ""

    @property
    def words(self) -> str:
        """The statistic in words, with its regime: ``median ULP``, ``soft: max ULP``."""
        name = STATISTIC_WORDS[self.statistic]
        return name if self.regime == WHOLE else f"{self.regime}: {name}"

    @property
    def shown_limit(self) -> str:
        """The limit as shown: a ULP or bits figure, or the largest passing count."""
        if self.limit is None:
            return "—"
        if self.threshold.kind == "rate":
            return str(math.floor(self.limit + 1e-9))
        return self._value(self.limit)

    def _value(self, value: float | None) -> str:
        if self.threshold.kind == "bits":
            return "—" if value is None else f"{value:.3g}"
        return _count_text(value) if self.threshold.kind == "rate" else _fmt(value)

    @property
    def change(self) -> str:
        """``old → new``, with the examples of a count: ``0 → 3009 of 5650 examples`` (``3 → 9 of 120 examples
        (100 in the baseline)`` when their numbers differ)."""
        if self.threshold.kind == "ulp" and self.new is None:
            return f"{_fmt(self.old)} → — (no value with a ULP error any more)"
        text = f"{self._value(self.old)} → {self._value(self.new)}"
        if self.threshold.kind != "rate":
            return text
        text += f" of {self.new_examples} examples"
        return text + (f" ({self.old_examples} in the baseline)" if self.old_examples != self.new_examples else "")

    @property
    def text(self) -> str:
        """One line: ``median ULP 0.15 → 1.14e+04 (limit 1: 1.5x, at least 1 ULP)``."""
        limit = "" if self.limit is None else f" (limit {self.shown_limit}: {self.threshold})"
        return f"{self.words} {self.change}{limit}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True, slots=True)
class Check:
    """The verdict on one family x candidate x dtype x quantity (``quantity``: ``loss`` or ``gradient``, as
    :attr:`Score.quantity`). ``reasons``: one line each (what changed); ``failed``: whether it fails the
    gate; ``case``: the current worst case (its replay command) or, for a missing key, the baseline's."""

    family: str
    candidate: str
    dtype: str
    status: str
    failed: bool
    reasons: tuple[str, ...]
    old_max_ulp: float | None = None
    new_max_ulp: float | None = None
    limit: float | None = None
    old_nonfinite: int | None = None
    new_nonfinite: int | None = None
    case: WorstCase | None = None
    case_label: str = "worst case"
    worse: tuple[Comparison, ...] = ()
    quantity: str = "loss"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.family, self.candidate, self.dtype, self.quantity)

    @property
    def name(self) -> str:
        """The test-case name in JUnit: ``candidate[dtype]`` for the loss (as before gradients were scored),
        ``candidate[dtype, gradient]`` for the gradient."""
        return f"{self.candidate}[{self.dtype}]" if self.quantity == "loss" else f"{self.candidate}[{self.dtype}, {self.quantity}]"

    @property
    def subject(self) -> str:
        """What was checked, in words: ``sigmoid_ce naive float32``, and ``gradient`` after it for a gradient."""
        return f"{self.family} {self.candidate} {self.dtype}" + ("" if self.quantity == "loss" else f" {self.quantity}")

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class GateResult:
    """Every check, in baseline order then new keys in run order, and the thresholds used (``thresholds``:
    those set by key, over :data:`~harness.thresholds.DEFAULT_THRESHOLDS`; ``max_ulp_regression``: the
    whole score's max-ULP factor). ``exact``: the replayed inputs equal those the baseline was computed on
    (counts compared without slack)."""

    checks: tuple[Check, ...]
    max_ulp_regression: float = DEFAULT_FACTOR
    fail_on_new_nonfinite: bool = True
    exact: bool = True
    notes: tuple[str, ...] = ()
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)

    def threshold(self, statistic: str, regime: str = WHOLE) -> Threshold:
        """The threshold of ``statistic`` in ``regime`` this result was judged by."""
        return threshold_for(self.thresholds, regime, statistic)

    def threshold_summary(self) -> str:
        """The whole score's thresholds in a few words, and the keys set (by flag or baseline), e.g. ``max, p99
        and median ULP may grow 1.5x, at least to 1 ULP; mean bits +1 bit; outcome counts as rates per example;
        set: median_ulp=2x,1ulp``."""
        m = self.threshold("max_ulp")
        same = all(self.threshold(s) == m for s in ULP_STATISTICS)
        words = [("max, p99 and median ULP" if same else "max ULP") + (
            f" may grow {m.factor:g}x, at least to {m.floor:g} ULP" if not m.off else " not compared")]
        rest = BITS_STATISTICS if same else ULP_STATISTICS[1:] + BITS_STATISTICS
        words += [f"{STATISTIC_WORDS[s]} {self.threshold(s)}" for s in rest]
        words.append("outcome counts as rates per example")
        if self.thresholds:
            words.append("set: " + ", ".join(f"{k}={t.spec}" for k, t in self.thresholds.items()))
        return "; ".join(words)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.failed)

    @property
    def warnings(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.failed and c.status == "new_nonfinite")

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0: every check passes; 1: at least one regression (usage errors are the CLI's 2)."""
        return 0 if self.passed else 1

    def tally(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for c in self.checks:
            out[c.status] += 1
        return out


def _scored(score: Score) -> bool:
    return not score.unsupported and score.examples > 0


def _cases(block: Any) -> tuple[WorstCase, ...]:
    """The cases a block of statistics lists: a score's shrunk reproducer and worst cases, a regime's worst."""
    worst = getattr(block, "worst", ())
    reproducer = getattr(block, "reproducer", None)
    listed = worst if isinstance(worst, tuple) else (worst,) if worst is not None else ()
    return ((reproducer,) if reproducer is not None else ()) + listed


def case_for(block: Any, statistic: str, limit: float | None = None) -> WorstCase | None:
    """The case that shows what got worse in ``block`` (a Score or a regime's statistics): for ``max_ulp``
    the largest ULP error above ``limit``; for ``nonfinite_on_finite_inputs`` the first non-finite mistake on
    finite inputs, for ``on_nonfinite_inputs`` the first on ±inf/nan inputs, for an outcome class the first
    case of that class (None when none is listed); otherwise the shrunk reproducer, else the worst case."""
    cases = _cases(block)
    if statistic == "max_ulp" and limit is not None:
        measured = [c for c in cases if c.ulp is not None and c.ulp > limit]
        if measured:
            return max(measured, key=lambda c: c.ulp)  # first of equals: the shrunk reproducer
    if statistic in (NONFINITE_ON_FINITE, "on_nonfinite_inputs"):
        finite = statistic == NONFINITE_ON_FINITE
        return next((c for c in cases if c.outcome in NON_FINITE_MISTAKES and _finite_inputs(c) == finite), None)
    if statistic in COUNTED_OUTCOMES:
        return next((c for c in cases if c.outcome == statistic), None)
    return cases[0] if cases else None


def _count_of(block: Any, statistic: str) -> int:
    if statistic == NONFINITE_ON_FINITE:
        return tally_outcomes(block).on_finite_inputs
    return count(block, (statistic,))


def compare_block(old: Any, new: Any, regime: str = WHOLE, *, thresholds: Mapping[str, Threshold] = MappingProxyType({}),
                  slack: int = 0, fail_on_new_nonfinite: bool = True) -> tuple[Comparison, ...]:
    """The statistics of ``new`` that got worse than ``old``'s beyond their thresholds, in :data:`STATISTICS`
    order. ``old``/``new``: blocks of statistics with a Score's attribute names (a Score, or a regime's
    statistics); ``regime``: its name (:data:`WHOLE` for the whole score), for the thresholds and the words;
    ``slack``: how many replayed inputs may be counted twice (see :func:`check_run`)."""
    out: list[Comparison] = []

    def worse(statistic: str, o: float | None, n: float | None, limit: float | None, t: Threshold, detail: str = "") -> None:
        fails = fail_on_new_nonfinite if statistic == NONFINITE_ON_FINITE else True
        out.append(Comparison(regime, statistic, o, n, limit, t, fails, case_for(new, statistic, limit),
                              old.examples, new.examples, detail))

    max_t = threshold_for(thresholds, regime, "max_ulp")
    if old.max_ulp is not None and new.max_ulp is None:
        if not max_t.off:  # every other ULP figure is gone with it: said once
            worse("max_ulp", old.max_ulp, None, None, max_t)
    else:
        for statistic in ULP_STATISTICS + BITS_STATISTICS:
            t = threshold_for(thresholds, regime, statistic)
            o, n = getattr(old, statistic, None), getattr(new, statistic, None)
            if t.off or o is None or n is None:
                continue
            limit = t.ulp_limit(o) if t.kind == "ulp" else t.bits_limit(o)
            if n > limit:
                worse(statistic, o, n, limit, t)
    # Non-finite mistakes on finite inputs are judged by their own statistic; credited to the classes they fall
    # in, so that the classes' thresholds judge what is left (mistakes on ±inf/nan inputs) and none is blamed twice.
    on_finite = max(0, _count_of(new, NONFINITE_ON_FINITE) - _count_of(old, NONFINITE_ON_FINITE))
    for statistic in COUNT_STATISTICS:
        t = threshold_for(thresholds, regime, statistic)
        if t.off:
            continue
        o, n = _count_of(old, statistic), _count_of(new, statistic)
        limit = t.count_limit(o, old.examples, new.examples, slack)
        if statistic in NON_FINITE_MISTAKES:
            limit += on_finite
        if n > limit + 1e-9 * new.examples:  # a rate that does not grow is never worse (rounding of the ratio)
            detail = ""
            if statistic == "raised":
                findings = getattr(new, "findings", ())
                detail = findings[0].message if findings else (getattr(new, "failure", None) or "")
            worse(statistic, o, n, limit, t, detail)
    return tuple(out)


def _check(old: Score, new: Score, thresholds: Mapping[str, Threshold], fail_nonfinite: bool, slack: int) -> Check:
    structural: list[str] = []
    notes: list[str] = []
    limit = None
    found: list[Comparison] = []
    if old.unsupported:
        if not new.unsupported:
            notes.append("supported now (unsupported in the baseline)")
    elif new.unsupported:
        structural.append("rejects the dtype now (unsupported)")
    elif _scored(old) and not _scored(new):
        why = f": {new.failure.splitlines()[0]}" if new.failure else ""
        structural.append(f"could not be scored any more{why}")
    if _scored(old) and _scored(new):
        max_t = threshold_for(thresholds, WHOLE, "max_ulp")
        limit = None if old.max_ulp is None or max_t.off else max_t.ulp_limit(old.max_ulp)
        found += compare_block(old, new, WHOLE, thresholds=thresholds, slack=slack, fail_on_new_nonfinite=fail_nonfinite)
        if old.max_ulp is None and new.max_ulp is not None:
            notes.append(f"max ULP — → {_fmt(new.max_ulp)} (no figure in the baseline)")
        elif limit is not None and new.max_ulp is not None and new.max_ulp != old.max_ulp and new.max_ulp <= limit:
            notes.append(f"max ULP {_fmt(old.max_ulp)} → {_fmt(new.max_ulp)} (limit {_fmt(limit)})")
        new_regimes = new.regimes
        for name, old_block in old.regimes.items():
            new_block = new_regimes.get(name)
            if new_block is None or not old_block.examples or not new_block.examples:
                notes.append(f"regime {name}: {old_block.examples} examples in the baseline, none now (not compared)")
                continue
            found += compare_block(old_block, new_block, name, thresholds=thresholds, slack=slack,
                                   fail_on_new_nonfinite=fail_nonfinite)
    elif _scored(new):  # nothing to compare with: non-finite results on finite inputs are new all the same
        t = threshold_for(thresholds, WHOLE, NONFINITE_ON_FINITE)
        n = nonfinite_on_finite_inputs(new)
        if not t.off and n > 0:
            found.append(Comparison(WHOLE, NONFINITE_ON_FINITE, 0, n, 0.0, t, fail_nonfinite,
                                    case_for(new, NONFINITE_ON_FINITE), 0, new.examples))
    nonfinite = [c for c in found if c.statistic == NONFINITE_ON_FINITE]
    regressions = [c for c in found if c.statistic != NONFINITE_ON_FINITE]
    if structural or regressions:
        status = "regression"
    elif nonfinite:
        status = "new_nonfinite"
    else:
        status = "pass"
    worse = tuple(regressions + nonfinite)
    failed = bool(structural) or any(c.fails for c in worse)
    reasons = tuple(structural + [c.text for c in worse] + (notes if status == "pass" else []))
    if not reasons:
        reasons = (f"max ULP {_fmt(old.max_ulp)} → {_fmt(new.max_ulp)}",)
    first = next((c for c in worse if c.case is not None), None)
    case = first.case if first is not None else case_of(new)
    return Check(new.family, new.candidate, new.dtype, status, failed, reasons, old.max_ulp, new.max_ulp, limit,
                 nonfinite_on_finite_inputs(old), nonfinite_on_finite_inputs(new), case, _label(new, case), worse,
                 new.quantity)


def _label(score: Score | None, case: WorstCase | None, prefix: str = "") -> str:
    shrunk = score is not None and case is not None and case is score.reproducer
    return prefix + ("shrunk reproducer" if shrunk else "worst case")


def _finite_inputs(case: WorstCase) -> bool:
    try:
        return all(math.isfinite(parse_value(v)) for v in case.inputs + case.labels)
    except ValueError:  # not a number: not a case on finite inputs
        return False


def relevant_case(score: Score, ulp_limit_crossed: float | None, nonfinite: bool) -> WorstCase | None:
    """The case that shows what got worse: for a max-ULP regression the case with the largest ULP error (the
    shrunk reproducer among equals); for new non-finite results the first such case on finite inputs (the
    shrunk reproducer first); otherwise the shrunk reproducer (or worst case)."""
    cases = ((score.reproducer,) if score.reproducer is not None else ()) + score.worst
    if ulp_limit_crossed is not None:
        measured = [c for c in cases if c.ulp is not None and c.ulp > ulp_limit_crossed]
        if measured:
            return max(measured, key=lambda c: c.ulp)  # first of equals: the shrunk reproducer
    if nonfinite:
        for c in cases:
            if c.outcome in NON_FINITE_MISTAKES and _finite_inputs(c):
                return c
    return case_of(score)


def _thresholds(thresholds: Mapping[str, Threshold | str] | None, max_ulp_regression: float | str | None) -> dict[str, Threshold]:
    table = dict(parse_thresholds({k: v for k, v in (thresholds or {}).items() if not isinstance(v, Threshold)}, "threshold"))
    table.update({k: v for k, v in (thresholds or {}).items() if isinstance(v, Threshold)})
    if max_ulp_regression is not None and "max_ulp" not in table:
        factor = parse_factor(max_ulp_regression) if isinstance(max_ulp_regression, str) else float(max_ulp_regression)
        if not math.isfinite(factor) or factor < 1:
            raise ValueError(f"max_ulp_regression={max_ulp_regression!r}: the factor must be a finite number of at least 1")
        table["max_ulp"] = Threshold("ulp", factor=factor, floor=DEFAULT_THRESHOLDS["max_ulp"].floor)
    return table


def check_run(
    baseline: RunResult,
    current: RunResult,
    *,
    max_ulp_regression: float | str | None = None,
    thresholds: Mapping[str, Threshold | str] | None = None,
    fail_on_new_nonfinite: bool = True,
    slack: int | Mapping[tuple[str, str], int] = 0,
) -> GateResult:
    """Compare ``current`` with ``baseline`` per (family, candidate, dtype, quantity); see the module docstring.

    ``thresholds``: by key (``max_ulp``, ``soft.median_ulp``, ``all.nan``: :mod:`harness.thresholds`), as
    :class:`~harness.thresholds.Threshold` or text; the others keep their defaults. ``max_ulp_regression``:
    the max-ULP factor (``--max-ulp-regression``), where ``thresholds`` has no ``max_ulp``.
    ``fail_on_new_nonfinite``: new non-finite results on finite inputs fail (else they warn).
    ``slack``: by how much the outcome counts may grow without being called worse, per (family, dtype) or
    for all: the number of inputs replayed that the baseline was not computed on (0 for a baseline written
    by the gate itself)."""
    table = _thresholds(thresholds, max_ulp_regression)
    now = {s.key: s for s in current.scores}
    before = {s.key: s for s in baseline.scores}
    checks: list[Check] = []
    for key, old in before.items():
        new = now.get(key)
        family, candidate, dtype, quantity = key
        if new is None:
            hint = "" if candidate in CANDIDATE_NAMES else (
                f" (a function of yours? pass --function MODULE:FUNCTION --family {family} --name {candidate})")
            checks.append(Check(family, candidate, dtype, "missing", True,
                                (f"in the baseline (max ULP {_fmt(old.max_ulp)}) but not in this run{hint}",),
                                old.max_ulp, None, None, nonfinite_on_finite_inputs(old), None, case_of(old),
                                _label(old, case_of(old), "baseline's "), quantity=quantity))
            continue
        extra = slack if isinstance(slack, int) else int(slack.get((family, dtype), 0))
        checks.append(_check(old, new, table, fail_on_new_nonfinite, extra))
    for key, new in now.items():
        if key not in before:
            what = "unsupported" if new.unsupported else f"max ULP {_fmt(new.max_ulp)}"
            checks.append(Check(*key[:3], "new", False, (f"not in the baseline ({what})",), None, new.max_ulp, None,
                                None, nonfinite_on_finite_inputs(new), case_of(new), _label(new, case_of(new)),
                                quantity=key[3]))
    exact = slack == 0 if isinstance(slack, int) else not any(slack.values())
    regimes = {name for s in (*baseline.scores, *current.scores) for name in s.regimes}
    unused = sorted(k for k in table if "." in k and k.split(".", 1)[0] not in regimes | {WHOLE})
    notes = tuple(f"threshold {k}: no result has a regime {k.split('.', 1)[0]!r}; it was not used" for k in unused)
    changes = environment_changes(baseline.provenance, current.provenance)
    if changes:
        notes += (f"the baseline ran elsewhere ({'; '.join(changes)}): a candidate's figures can change with these,"
                  " not only with its code",)
    return GateResult(tuple(checks), threshold_for(table, WHOLE, "max_ulp").factor, fail_on_new_nonfinite, exact,
                      notes, MappingProxyType(table))


# ------------------------------------------------------------------------------------- the replay corpus


def _row_count(case: WorstCase, input_name: str) -> int | None:
    """How many rows the case's replay command gives its inputs (``;`` separates rows), if it says."""
    try:
        words = shlex.split(case.replay)
    except ValueError:
        return None
    flag = f"--{input_name}="
    for i, word in enumerate(words):
        if word.startswith(flag):
            return word[len(flag):].count(";") + 1
        if word == flag[:-1] and i + 1 < len(words):
            return words[i + 1].count(";") + 1
    return None


def examples_from_case(family: str, dtype: str, case: WorstCase) -> list[Example]:
    """The examples of a worst case or reproducer (one, or the batch of a reduced candidate), from its hex
    text; a one-line ``ValueError`` when the text is not numbers of a fitting count."""
    fam = oracles.get_family(family)
    fmt = oracles.resolve_format(dtype)
    if len(case.inputs) > MAX_EXAMPLE_ELEMENTS or len(case.labels) > MAX_EXAMPLE_ELEMENTS:
        raise ValueError(f"a worst case with more than {MAX_EXAMPLE_ELEMENTS} values (lossfuzz writes at most a few hundred)")
    x = np.array([parse_value(v, "worst-case input") for v in case.inputs], dtype=np.float64)
    if fam.label_kind == "index":
        try:
            z = np.array([int(v) for v in case.labels], dtype=np.int64)
        except ValueError:
            raise ValueError(f"worst-case labels {case.labels!r} are not class indices") from None
    else:
        z = np.array([parse_value(v, "worst-case label") for v in case.labels], dtype=np.float64)
    if x.size == 0:
        raise ValueError("a worst case without inputs")
    with np.errstate(over="ignore", invalid="ignore"):
        if not fam.row_wise:
            if z.size != x.size:
                raise ValueError(f"a worst case with {x.size} inputs but {z.size} labels")
            xs, zs = x.astype(fmt.numpy_dtype), z.astype(fmt.numpy_dtype)
            return [Example(xs[i].reshape(()), zs[i].reshape(())) for i in range(x.size)]
        if fam.label_kind == "index":
            rows = z.size
        else:
            rows = _row_count(case, fam.input_name) or 1
            if z.size != x.size:
                raise ValueError(f"a worst case with {x.size} inputs but {z.size} labels")
        if rows < 1 or x.size % rows or x.size // rows < 1:
            raise ValueError(f"a worst case with {x.size} inputs cannot be {rows} rows")
        k = x.size // rows
        xs = x.reshape(rows, k).astype(fmt.numpy_dtype)
        if fam.label_kind == "index":
            if ((z < 0) | (z >= k)).any():
                raise ValueError(f"worst-case class indices {case.labels!r} are outside [0, {k})")
            return [Example(xs[i], z[i].reshape(())) for i in range(rows)]
        zs = z.reshape(rows, k).astype(fmt.numpy_dtype)
        return [Example(xs[i], zs[i]) for i in range(rows)]


def _add_new(out: list[Example], seen: set, examples: Iterable[Example]) -> None:
    for e in examples:
        if e.key not in seen:
            seen.add(e.key)
            out.append(e)


def replay_corpus(
    pairs: Iterable[tuple[str, str]],
    *,
    stored: Mapping[tuple[str, str], list[Example]] | None = None,
    baseline: RunResult | None = None,
    extra: Mapping[tuple[str, str], list[Example]] | None = None,
) -> tuple[dict[tuple[str, str], list[Example]], dict[tuple[str, str], int]]:
    """The corpus the gate replays for each (family, dtype) of ``pairs``: the ``stored`` replay corpus, then
    the baseline's worst cases and reproducers, then ``extra`` (a corpus folder), without duplicates and
    without examples of the boundary catalogue. Also returns, per pair, how many examples are not from
    ``stored`` (the slack of :func:`check_run`)."""
    stored = stored or {}
    extra = extra or {}
    corpus: dict[tuple[str, str], list[Example]] = {}
    fresh: dict[tuple[str, str], int] = {}
    for family, dtype in pairs:
        seen = {e.key for e in catalogue(family, dtype)}
        out: list[Example] = []
        add = partial(_add_new, out, seen)
        add(stored.get((family, dtype), []))
        kept = len(out)
        if baseline is not None:
            for score in baseline.scores:
                # A reduced candidate's worst case is a batch: its examples regroup with the corpus into other
                # batches, so replaying them shows nothing in particular and would never settle.
                if (score.family, score.dtype) != (family, dtype) or score.reduction != "none":
                    continue
                for case in score.worst + ((score.reproducer,) if score.reproducer is not None else ()):
                    try:
                        add(examples_from_case(family, dtype, case))
                    except ValueError as exc:
                        raise ValueError(f"{score.family}/{score.candidate}/{score.dtype}: {exc}") from None
        add(extra.get((family, dtype), []))
        if out:
            corpus[(family, dtype)] = out
        fresh[(family, dtype)] = len(out) - kept
    return corpus, fresh


def gate_entry(corpus: Mapping[tuple[str, str], list[Example]],
               thresholds: Mapping[str, Threshold] | None = None) -> dict[str, Any]:
    """The ``"gate"`` entry a baseline written by the gate carries: its replay corpus (corpus-file objects)
    and, when any are set, its thresholds (key -> text, as ``--threshold`` takes them)."""
    entry: dict[str, Any] = {
        "version": GATE_VERSION,
        "replayed": [json.loads(corpus_to_json(f, d, examples)) for (f, d), examples in corpus.items()],
    }
    if thresholds:
        entry["thresholds"] = {key: t.spec for key, t in thresholds.items()}
    return entry


def read_gate_entry(entry: Any, name: str) -> dict[tuple[str, str], list[Example]] | None:
    """The replay corpus of a baseline's ``"gate"`` entry (None for an entry of thresholds only); one-line
    ``ValueError`` naming ``name`` if malformed."""
    if isinstance(entry, dict) and entry.get("version") == GATE_VERSION and "replayed" not in entry \
            and "thresholds" in entry:
        return None
    if not isinstance(entry, dict) or entry.get("version") != GATE_VERSION or not isinstance(entry.get("replayed"), list):
        raise ValueError(f"{name}: its 'gate' entry is not a version {GATE_VERSION} replay corpus; regenerate the"
                         " baseline with lossfuzz gate --update-baseline")
    corpus: dict[tuple[str, str], list[Example]] = {}
    for i, item in enumerate(entry["replayed"]):
        family, dtype, examples = corpus_from_json(json.dumps(item), f"{name} (gate.replayed[{i}])")
        corpus.setdefault((family, dtype), []).extend(examples)
    return corpus


def read_gate_thresholds(entry: Any, name: str) -> dict[str, Threshold]:
    """The thresholds a baseline's ``"gate"`` entry sets (``"thresholds": {"max_ulp": "2x", "soft.max_ulp":
    "10x"}``; none when it sets none); one-line ``ValueError`` naming ``name`` and the bad item otherwise."""
    table = entry.get("thresholds") if isinstance(entry, dict) else None
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ValueError(f"{name}: gate.thresholds is not an object of KEY: VALUE, e.g. {{\"max_ulp\": \"2x\"}}")
    return parse_thresholds(table, f"{name}: gate.thresholds")
