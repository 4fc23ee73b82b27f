"""What the report writers share: verdicts, grouping, provenance in words (private to harness.reports).

Everything here returns plain (unescaped) text; each writer escapes for its own format. Number formats
live in :mod:`harness._values` and outcome counting in :mod:`harness.outcomes` (the gate and the audit use
them too); they are imported here for the writers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from harness._records import NON_FINITE_MISTAKES, RunResult, Score, Speed, WorstCase
from harness._values import fmt_bits, fmt_seconds, fmt_ulp, parse_value
from harness.candidates import UPCAST_SUFFIX, get_candidate
from harness.outcomes import OTHER_NON_FINITE, OUTCOME_WORDS, case_error, count, shown_case, tally_outcomes
from harness.provenance import simd_text

__all__ = [
    "OTHER_NON_FINITE",
    "OUTCOME_WORDS",
    "Verdict",
    "verdict",
    "fmt_ulp",
    "fmt_bits",
    "fmt_speed",
    "fmt_seconds",
    "first_line",
    "count",
    "by_family",
    "provenance_line",
    "provenance_items",
    "settings_line",
    "count_verdicts",
    "shown_case",
    "case_error",
    "ordered_unique",
    "share_over_one_ulp",
    "UpcastComparison",
    "upcast_comparisons",
    "labels_note",
    "REGIME_WORDS",
    "regime_words",
    "regime_summary",
    "case_where",
    "OK_ULP",
    "GRADIENT_COUNTS",
    "of_quantity",
    "verdict_line",
    "tally_sentence",
    "has_gradients",
    "missing_gradients",
]

# At most this many ULP (and no non-finite mistake) is "ok".
OK_ULP = 1.0


def first_line(text: str | None, limit: int = 120) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def fmt_speed(speed: Speed | None) -> str:
    """The speed as a multiple of a memory copy of the same arrays: ``3.2x copy``; ``—`` when not timed."""
    if speed is None:
        return "—"
    ratio = speed.ratio
    if not math.isfinite(ratio):
        return "—"
    return f"{ratio:.1f}x copy" if ratio < 100 else f"{ratio:.0f}x copy"


@dataclass(frozen=True, slots=True)
class Verdict:
    """``level``: ``ok``, ``bad`` (inaccurate, non-finite or raising), ``fail`` (could not be scored), or
    ``skip`` (unsupported dtype, nothing compared); ``text``: the words for the table cell."""

    level: str
    text: str


# Regimes (oracles._family) in words, for sentences: "1.7e+07 ULP on soft labels".
REGIME_WORDS = {
    "special": "±inf/nan inputs",
    "tiny": "tiny losses",
    "confident": "confident-correct rows",
    "hard": "hard labels",
    "soft": "soft labels",
}


def regime_words(name: str) -> str:
    """How a sentence names regime ``name`` (``soft labels``); an unknown (plugin) regime by its name."""
    return REGIME_WORDS.get(name, f"{name} examples")


def case_where(case: WorstCase, most: int = 3) -> str:
    """Where a case is, for a sentence: ``x=10000, z=0.9999`` (the values to 6 digits; a row in brackets;
    at most ``most`` values each, then ``…``)."""
    def one(texts: tuple[str, ...]) -> str:
        shown = []
        for t in texts[:most]:
            try:
                shown.append(f"{parse_value(t):.6g}")
            except ValueError:
                shown.append(t)
        body = ", ".join(shown) + (", …" if len(texts) > most else "")
        return body if len(texts) == 1 else f"[{body}]"
    return f"x={one(case.inputs)}, z={one(case.labels)}"


def regime_summary(score: Score) -> str:
    """The score per regime in words, in the family's regime order (``""`` without regimes): ``within 0.8
    ULP on hard labels; 1.7e+07 ULP on soft labels, at x=…, z=…; …``: the max ULP of each regime ("exact"
    at 0, "within" when at most 1 ULP), where its worst case is when it is above 1 ULP, and its flushed
    subnormals; a regime with non-finite mistakes leads with their count (``23 non-finite on ±inf/nan
    inputs (else exact)``)."""
    parts = []
    for name, r in score.regimes.items():
        words = regime_words(name)
        non_finite = count(r, NON_FINITE_MISTAKES)
        flushed = count(r, ("flushed_subnormal",))
        if r.max_ulp is None:
            figure = ""
        elif r.max_ulp == 0:
            figure = "exact"
        elif r.max_ulp <= OK_ULP:
            figure = f"within {fmt_ulp(r.max_ulp)} ULP"
        else:
            figure = f"{fmt_ulp(r.max_ulp)} ULP"
        notes = [f"else {figure}"] if non_finite and figure else []
        notes += [f"{flushed} flushed to 0"] if flushed else []
        part = f"{non_finite} non-finite on {words}" if non_finite else f"{figure or 'no ULP number'} on {words}"
        if notes:
            part += f" ({'; '.join(notes)})"
        if r.worst is not None and r.max_ulp is not None and r.max_ulp > OK_ULP and r.worst.ulp == r.max_ulp:
            part += f", at {case_where(r.worst)}"
        parts.append(part)
    return "; ".join(parts)


# Outcome counts that only a gradient row can have (0 on loss rows; harness._records.COUNTED_OUTCOMES):
# ±0 where the correctly rounded exact component is a nonzero normal number (a vanishing gradient), and a
# finite nonzero component whose sign differs from the correctly rounded exact one. Each in words.
GRADIENT_COUNTS: dict[str, str] = {"zero_where_nonzero": "zero where nonzero", "wrong_sign": "wrong sign"}


def verdict(score: Score) -> Verdict:
    """One cell's judgement: ok = at most 1 ULP everywhere and no non-finite mistake or raise. A score with
    problems and per-regime figures says them per regime after the problems (:func:`regime_summary`); a
    gradient row names its vanishing and wrong-sign components (:data:`GRADIENT_COUNTS`) among them, and an
    unsupported gradient row the reason it has (``failure``: e.g. the candidate has no gradient)."""
    if score.unsupported:
        reason = first_line(score.failure, 100) if score.quantity == "gradient" and score.failure else ""
        return Verdict("skip", f"unsupported: {reason}" if reason else "unsupported")
    if score.examples == 0 and score.failure:
        return Verdict("fail", f"failed: {first_line(score.failure, 100)}")
    problems = []
    outcomes = tally_outcomes(score)
    if outcomes.non_finite and outcomes.non_finite == outcomes.on_nonfinite_inputs:
        problems.append("non-finite results on ±inf/nan inputs only")
    elif outcomes.non_finite:
        problems.append("non-finite results")
    if score.max_ulp is not None and not score.max_ulp <= OK_ULP:
        problems.append("inaccurate")
    problems += [f"{count(score, (key,))} {words}" for key, words in GRADIENT_COUNTS.items() if count(score, (key,))]
    if outcomes.raised:
        problems.append(f"raised on {outcomes.raised}")
    if score.failure:
        problems.append(f"failed: {first_line(score.failure, 100)}")
    if problems:
        per_regime = regime_summary(score) if (outcomes.non_finite or "inaccurate" in problems) else ""
        return Verdict("bad", ", ".join(problems) + (f": {per_regime}" if per_regime else ""))
    if score.examples == 0 or score.max_ulp is None:
        return Verdict("skip", "no comparison")
    unconverged = outcomes.unconverged
    return Verdict("ok", f"ok ({unconverged} unconverged)" if unconverged else "ok")


def verdict_line(score: Score) -> str:
    """The verdict as a line outside a table: a gradient row's says so apart (``gradient: inaccurate, …``)."""
    text = verdict(score).text
    return f"gradient: {text}" if score.quantity == "gradient" else text


def of_quantity(scores: Iterable[Score], quantity: str) -> list[Score]:
    """The scores of one quantity (``loss`` or ``gradient``), in their order."""
    return [s for s in scores if s.quantity == quantity]


def has_gradients(result: RunResult, family: str | None = None) -> bool:
    """Whether the run scored gradients (and has rows of ``family``): it has gradient rows, or its settings
    asked for them (``settings.quantities``), so that a family whose candidates have no gradient says why."""
    if not any(family in (None, s.family) for s in result.scores):
        return False
    asked = result.settings.get("quantities") if isinstance(result.settings, dict) else None
    return any(s.quantity == "gradient" for s in result.scores) or (
        isinstance(asked, (list, tuple)) and "gradient" in asked)


def missing_gradients(result: RunResult, family: str) -> list[tuple[str, str]]:
    """The candidates of ``family`` with loss rows but no gradient row, each with why: its
    ``gradient_note`` (:class:`harness.candidates.Candidate`), or that the report has none for it."""
    scored = {s.candidate for s in result.scores if s.family == family and s.quantity == "gradient"}
    out = []
    for name in ordered_unique(s.candidate for s in result.scores if s.family == family and s.quantity == "loss"):
        if name in scored:
            continue
        try:
            note = get_candidate(family, name).gradient_note
        except ValueError:  # not a built-in (an audited function) or a family this lossfuzz does not know
            note = ""
        out.append((name, note or "no gradient scored in this run"))
    return out


def tally_sentence(scores: Iterable[Score]) -> str:
    """``12 scores: 9 ok, 2 with problems, 0 failed, 1 unsupported or not compared.``"""
    scores = list(scores)
    t = count_verdicts(scores)
    return (f"{len(scores)} scores: {t['ok']} ok, {t['bad']} with problems, {t['fail']} failed,"
            f" {t['skip']} unsupported or not compared.")


def count_verdicts(scores: Iterable[Score]) -> dict[str, int]:
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


@dataclass(frozen=True, slots=True)
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
    scores = {s.key: s for s in result.scores}
    out = []
    for s in result.scores:
        variant = scores.get((s.family, s.candidate + UPCAST_SUFFIX, s.dtype, s.quantity))
        if variant is not None and not s.unsupported and not variant.unsupported and s.examples and variant.examples:
            out.append(UpcastComparison(s.family, s.dtype, s.candidate, s, variant))
    return out


def by_family(result: RunResult, quantity: str | None = None) -> list[tuple[str, list[Score]]]:
    """Scores grouped by family (in run order), candidates in run order, then dtypes in run order, then the
    loss before the gradient; ``quantity``: that quantity's scores only (a family without any: no group)."""
    families = ordered_unique(s.family for s in result.scores if quantity in (None, s.quantity))
    cand_order = {c: i for i, c in enumerate(ordered_unique(s.candidate for s in result.scores))}
    dtype_order = {d: i for i, d in enumerate(ordered_unique(s.dtype for s in result.scores))}
    groups = []
    for family in families:
        rows = [s for s in result.scores if s.family == family and quantity in (None, s.quantity)]
        rows.sort(key=lambda s: (cand_order[s.candidate], dtype_order[s.dtype], s.quantity != "loss"))
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
    """seed, commit, versions of numpy/tensorflow/keras/mpmath/hypothesis, numpy's SIMD targets, Python and
    wall time, one line."""
    prov = result.provenance if isinstance(result.provenance, dict) else {}
    parts = [f"seed {prov.get('seed', result.settings.get('seed', '?'))}"]
    commit = prov.get("git_commit")
    dirty = " with uncommitted changes" if prov.get("git_dirty") else ""
    parts.append(f"commit {str(commit)[:12]}{dirty}" if commit else "commit unknown")
    parts.extend(f"{name} {value}" for name, value in _versions(prov))
    simd = simd_text(prov.get("machine"))
    if simd:  # numpy's float32 results depend on it (README, "Figures that depend on the machine")
        parts.append(f"numpy SIMD {simd}")
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
