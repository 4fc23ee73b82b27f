"""Counting a score's outcomes: the one place that adds up non-finite mistakes and failed calls.

The gate, the audit verdict, the reports and the terminal summary all count through these functions, so
that "non-finite" means the same six outcome classes everywhere (:data:`~harness._records.NON_FINITE_MISTAKES`:
``nan``, ``inf``, ``finite_where_infinite``, ``nan_where_infinite``, ``wrong_infinity``,
``number_where_nan``; their definitions are in ``oracles/_ulp.py``). Also the words for each outcome and
the error of one case in words, which reports, the gate, JUnit and the pytest plugin print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ._records import NON_FINITE_MISTAKES, Score, WorstCase
from ._values import fmt_ulp

__all__ = [
    "OTHER_NON_FINITE",
    "OUTCOME_WORDS",
    "Tally",
    "tally_outcomes",
    "count",
    "case_error",
    "shown_case",
]

# The non-finite mistakes without a column of their own in the summary tables.
OTHER_NON_FINITE = ("nan_where_infinite", "wrong_infinity", "number_where_nan")

OUTCOME_WORDS = {
    "finite": "finite result",
    "agree": "agrees with the exact non-finite value",
    "nan": "nan where the exact value is finite",
    "inf": "an infinity where the exact value is finite (and does not round to it)",
    "finite_where_infinite": "a finite value where the exact value is infinite",
    "nan_where_infinite": "nan where the exact value is infinite",
    "wrong_infinity": "the opposite infinity",
    "number_where_nan": "a number where the exact value is undefined (nan)",
    "flushed_subnormal": "zero where the correctly rounded value is a nonzero subnormal",
    "zero_where_nonzero": "zero where the correctly rounded value is a nonzero normal number",
    "wrong_sign": "the opposite sign of the correctly rounded value",
    "raised": "the candidate raised",
    "unconverged": "the oracle did not converge (nothing claimed)",
}


def count(score: Score, names: Iterable[str]) -> int:
    """The sum of ``score.counts`` over the outcome classes ``names`` (a missing class counts 0)."""
    return sum(int(score.counts.get(name, 0) or 0) for name in names)


@dataclass(frozen=True, slots=True)
class Tally:
    """The outcomes of one score that are not a ULP number. ``non_finite``: the six non-finite mistakes
    summed; ``on_nonfinite_inputs``: how many of those were on examples with a ±inf or nan input;
    ``raised``: examples (or reduced batches) without a usable answer (raised, timed out, crashed, wrong
    shape or dtype); ``flushed``: flushed subnormals; ``unconverged``: oracle values not settled;
    ``zero_where_nonzero`` and ``wrong_sign``: the counts of those names (:data:`~harness._records.SIGN_MISTAKES`:
    a zero where the rounded exact value is a nonzero normal number; a finite result of the wrong sign)."""

    non_finite: int
    on_nonfinite_inputs: int
    raised: int
    flushed: int
    unconverged: int
    zero_where_nonzero: int = 0
    wrong_sign: int = 0

    @property
    def on_finite_inputs(self) -> int:
        """Non-finite mistakes on examples whose inputs are all finite: ``non_finite - on_nonfinite_inputs``
        (never below 0)."""
        return max(0, self.non_finite - self.on_nonfinite_inputs)


def tally_outcomes(score: Score) -> Tally:
    """The :class:`Tally` of ``score``'s counts."""
    return Tally(
        non_finite=count(score, NON_FINITE_MISTAKES),
        on_nonfinite_inputs=count(score, ("on_nonfinite_inputs",)),
        raised=count(score, ("raised",)),
        flushed=count(score, ("flushed_subnormal",)),
        unconverged=count(score, ("unconverged",)),
        zero_where_nonzero=count(score, ("zero_where_nonzero",)),
        wrong_sign=count(score, ("wrong_sign",)),
    )


def shown_case(score: Score) -> tuple[str, WorstCase] | None:
    """The case to show for a score: its shrunk reproducer, else its worst case; None if it has neither."""
    if score.reproducer is not None:
        return "shrunk reproducer", score.reproducer
    if score.worst:
        return "worst case", score.worst[0]
    return None


def case_error(case: WorstCase) -> str:
    """The error of one case in words: ``1.53e+07 ULP`` or what went wrong when there is no ULP number."""
    if case.outcome == "flushed_subnormal":
        return f"{fmt_ulp(case.ulp)} ULP ({OUTCOME_WORDS['flushed_subnormal']})"
    if case.ulp is not None and case.outcome in ("finite", "agree"):
        return f"{fmt_ulp(case.ulp)} ULP"
    if case.ulp is not None:
        return f"{fmt_ulp(case.ulp)} ULP ({OUTCOME_WORDS.get(case.outcome, case.outcome)})"
    return f"no ULP number: {OUTCOME_WORDS.get(case.outcome, case.outcome)}"
