"""What the Markdown and HTML reports share: number formats, verdicts, grouping, provenance in words.

Everything here returns plain (unescaped) text; each writer escapes for its own format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from harness._records import NON_FINITE_MISTAKES, RunResult, Score, Speed, WorstCase

__all__ = [
    "NON_FINITE",
    "OTHER_NON_FINITE",
    "OUTCOME_WORDS",
    "Verdict",
    "verdict",
    "fmt_ulp",
    "fmt_bits",
    "fmt_speed",
    "fmt_seconds",
    "first_line",
    "non_finite",
    "by_family",
    "provenance_line",
    "provenance_items",
    "settings_line",
    "tally",
    "shown_case",
    "case_error",
    "ordered_unique",
    "share_over_one_ulp",
    "UpcastComparison",
    "upcast_comparisons",
    "labels_note",
]

# Outcomes that are mistakes about non-finite values (no ULP number applies).
NON_FINITE = NON_FINITE_MISTAKES
# Those without a column of their own in the summary tables.
OTHER_NON_FINITE = ("nan_where_infinite", "wrong_infinity", "number_where_nan")
# At most this many ULP (and no non-finite mistake) is "ok".
OK_ULP = 1.0

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
    "raised": "the candidate raised",
    "unconverged": "the oracle did not converge (nothing claimed)",
}


def first_line(text: str | None, limit: int = 120) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def fmt_ulp(value: float | None) -> str:
    """A ULP figure, compact: ``0``, ``0.5``, ``12.3``, ``4096``, ``1.53e+07``, ``inf``; ``—`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if abs(value) >= 1e5:
        return f"{value:.3g}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def fmt_bits(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "inf"
    return "0" if value == 0 else f"{value:.3g}"


def fmt_speed(speed: Speed | None) -> str:
    """The speed as a multiple of a memory copy of the same arrays: ``3.2x copy``; ``—`` when not timed."""
    if speed is None:
        return "—"
    ratio = speed.ratio
    if not math.isfinite(ratio):
        return "—"
    return f"{ratio:.1f}x copy" if ratio < 100 else f"{ratio:.0f}x copy"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def non_finite(score: Score, names: Iterable[str] = NON_FINITE) -> int:
    return sum(int(score.counts.get(name, 0) or 0) for name in names)


@dataclass(frozen=True, slots=True)
class Verdict:
    """``level``: ``ok``, ``bad`` (inaccurate, non-finite or raising), ``fail`` (could not be scored), or
    ``skip`` (unsupported dtype, nothing compared); ``text``: the words for the table cell."""

    level: str
    text: str


def verdict(score: Score) -> Verdict:
    """One cell's judgement: ok = at most 1 ULP everywhere and no non-finite mistake or raise."""
    if score.unsupported:
        return Verdict("skip", "unsupported")
    if score.examples == 0 and score.failure:
        return Verdict("fail", f"failed: {first_line(score.failure, 100)}")
    problems = []
    mistakes = non_finite(score)
    on_limits = int(score.counts.get("on_nonfinite_inputs", 0) or 0)
    if mistakes and mistakes == on_limits:
        problems.append("non-finite results on ±inf/nan inputs only")
    elif mistakes:
        problems.append("non-finite results")
    if score.max_ulp is not None and not score.max_ulp <= OK_ULP:
        problems.append("inaccurate")
    raised = int(score.counts.get("raised", 0) or 0)
    if raised:
        problems.append(f"raised on {raised}")
    if score.failure:
        problems.append(f"failed: {first_line(score.failure, 100)}")
    if problems:
        return Verdict("bad", ", ".join(problems))
    if score.examples == 0 or score.max_ulp is None:
        return Verdict("skip", "no comparison")
    unconverged = int(score.counts.get("unconverged", 0) or 0)
    return Verdict("ok", f"ok ({unconverged} unconverged)" if unconverged else "ok")


def tally(scores: Iterable[Score]) -> dict[str, int]:
    """How many scores per verdict level."""
    out = dict.fromkeys(("ok", "bad", "fail", "skip"), 0)
    for s in scores:
        out[verdict(s).level] += 1
    return out


def ordered_unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def labels_note(score: Score) -> str:
    """``"hard labels only"`` (or ``"soft labels only"``) for a score computed on one label set, else ``""``."""
    return "" if score.labels in ("", "all") else f"{score.labels} labels only"


def share_over_one_ulp(score: Score) -> float | None:
    """The share of ``score``'s examples with a ULP number whose error exceeds 1 ULP (histogram bins above
    ``<=1``), or None when none has a ULP number."""
    total = sum(int(v) for v in score.histogram.values())
    if not total:
        return None
    over = sum(int(score.histogram.get(b, 0)) for b in ("<=4", "<=1024", "more"))
    return over / total


# A plain candidate whose share of examples above 1 ULP exceeds its _upcast variant's by more than this
# (absolute share: 0.2 percentage points) does not compute the loss in float32 for half-precision inputs.
# Both are scored on the same catalogue and start their searches from the same seed.
UPCAST_MISSING_MARGIN = 0.002


@dataclass(frozen=True)
class UpcastComparison:
    """A candidate next to its ``<name>_upcast`` variant (float32 inside, one cast back) in one family and
    half-precision dtype. ``missing``: the plain candidate's share of examples above 1 ULP exceeds the
    variant's by more than :data:`UPCAST_MISSING_MARGIN` (it computes in the half format itself)."""

    family: str
    dtype: str
    candidate: str
    plain: Score
    upcast: Score

    @property
    def plain_share(self) -> float | None:
        return share_over_one_ulp(self.plain)

    @property
    def upcast_share(self) -> float | None:
        return share_over_one_ulp(self.upcast)

    @property
    def missing(self) -> bool | None:
        if self.plain_share is None or self.upcast_share is None:
            return None
        return self.plain_share - self.upcast_share > UPCAST_MISSING_MARGIN


def upcast_comparisons(result: RunResult) -> list[UpcastComparison]:
    """Every (family, dtype, candidate) of the run that has an ``_upcast`` variant scored beside it, in run order."""
    from harness.candidates._registry import UPCAST_SUFFIX

    scores = {s.key: s for s in result.scores}
    out = []
    for s in result.scores:
        variant = scores.get((s.family, s.candidate + UPCAST_SUFFIX, s.dtype))
        if variant is not None and not s.unsupported and not variant.unsupported and s.examples and variant.examples:
            out.append(UpcastComparison(s.family, s.dtype, s.candidate, s, variant))
    return out


def by_family(result: RunResult) -> list[tuple[str, list[Score]]]:
    """Scores grouped by family (in run order), candidates in run order, then dtypes in run order."""
    families = ordered_unique(s.family for s in result.scores)
    cand_order = {c: i for i, c in enumerate(ordered_unique(s.candidate for s in result.scores))}
    dtype_order = {d: i for i, d in enumerate(ordered_unique(s.dtype for s in result.scores))}
    groups = []
    for family in families:
        rows = [s for s in result.scores if s.family == family]
        rows.sort(key=lambda s: (cand_order[s.candidate], dtype_order[s.dtype]))
        groups.append((family, rows))
    return groups


def _versions(prov: dict[str, Any]) -> list[tuple[str, str]]:
    versions = prov.get("versions") or {}
    if not isinstance(versions, dict):
        return []
    out = []
    for name in ("numpy", "tensorflow", "keras", "mpmath", "hypothesis"):
        value = versions.get(name)
        if name == "tensorflow" and not value and versions.get("tensorflow-cpu"):
            value = versions.get("tensorflow-cpu")
        if name == "mpmath" and value and prov.get("mpmath_backend"):
            value = f"{value} ({prov['mpmath_backend']})"
        out.append((name, str(value) if value else "not installed"))
    return out


def provenance_line(result: RunResult) -> str:
    """seed, commit, versions of numpy/tensorflow/keras/mpmath/hypothesis, Python and wall time, one line."""
    prov = result.provenance if isinstance(result.provenance, dict) else {}
    parts = [f"seed {prov.get('seed', result.settings.get('seed', '?'))}"]
    commit = prov.get("git_commit")
    parts.append(f"commit {str(commit)[:12]}" if commit else "commit unknown")
    parts.extend(f"{name} {value}" for name, value in _versions(prov))
    if prov.get("python"):
        parts.append(f"Python {prov['python']}")
    parts.append(f"wall {fmt_seconds(result.wall_seconds)}")
    return " · ".join(parts)


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out.extend(_flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    if isinstance(value, (list, tuple)):
        return [(prefix, ", ".join(str(v) for v in value))]
    return [(prefix, "—" if value is None else str(value))]


def provenance_items(result: RunResult) -> list[tuple[str, str]]:
    """Every provenance and settings entry as (dotted key, text), plus the wall time."""
    items = _flatten("", result.provenance if isinstance(result.provenance, dict) else {"provenance": result.provenance})
    items.append(("wall time", fmt_seconds(result.wall_seconds)))
    items.extend((f"settings.{k}", v) for k, v in _flatten("", result.settings if isinstance(result.settings, dict) else {}))
    return items


def settings_line(result: RunResult) -> str:
    s = result.settings if isinstance(result.settings, dict) else {}
    parts = []
    if "examples" in s:
        parts.append(f"{s['examples']} Hypothesis examples per candidate x dtype, on top of the boundary catalogue and the corpus")
    if s.get("dtypes"):
        parts.append("dtypes " + ", ".join(map(str, s["dtypes"])))
    if "speed_elements" in s:
        parts.append(f"speed on {s['speed_elements']:,} elements" if s["speed_elements"] else "speed not measured")
    if "shrink" in s:
        parts.append("reproducers shrunk" if s["shrink"] else "no shrinking")
    return " · ".join(parts)


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
