"""Audit a third-party loss: score any importable callable exactly like a built-in candidate, with a verdict.

:func:`audit` wraps the callable with :func:`harness.adapters.function_candidate` (argument convention,
probabilities vs logits, reduction, framework; a worker process with a timeout and a memory limit), runs a
campaign of its family with it and a few built-ins for comparison (:data:`DEFAULT_COMPARE`: ``numpy_stable``
and, when TensorFlow is installed, ``tf``; speed is not timed unless asked), and returns the
:class:`~harness.RunResult` with an ``audit`` block: the :class:`AuditVerdict` as JSON. The reports render
that block first.

The verdict says: the worst ULP error over the dtypes, the non-finite results (and how many were on finite
inputs), the calls that failed (raised, timed out, crashed, ran out of memory, returned a non-array, the
wrong shape or dtype) by kind with an example each, *where it breaks* (the input regions of the worst
cases: the decade of the logit or probability and the kind of label, counted over the worst cases kept),
the shrunk minimal reproducer with its replay command, and the best built-in of the run for comparison
(lowest maximum ULP error among those without a non-finite result on finite inputs).
"""

from __future__ import annotations

import math
import shlex
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import oracles

from ._records import NON_FINITE_MISTAKES, Finding, RunResult, Score, WorstCase, number_from_json, number_to_json

__all__ = ["DEFAULT_BUDGET", "DEFAULT_COMPARE", "FAIL_ON", "call_function_once", "PER_ELEMENT", "AuditVerdict", "audit", "audit_verdict", "describe_region", "failing",
           "replay_unavailable", "rewrite_replays", "rewrite_score_replays", "sweep_regions", "verdicts"]

# Built-ins scored next to the audited function (those the family has and that are installed).
DEFAULT_COMPARE: tuple[str, ...] = ("numpy_stable", "tf")
# Regions and first findings shown in a verdict.
SHOWN_REGIONS = 3
# Characters of the function's captured output shown in a verdict line (report.json keeps more).
OUTPUT_SHOWN = 200
# Seconds a whole audit may take by default (--budget): calls stop there and the verdict says so.
DEFAULT_BUDGET = 600.0


# ------------------------------------------------------------------------------------------------ regions


def _value(text: str) -> float:
    t = text.strip().lower()
    if t in ("nan", "+nan", "-nan"):
        return math.nan
    if t in ("inf", "+inf", "-inf"):
        return -math.inf if t.startswith("-") else math.inf
    return float.fromhex(t) if "0x" in t else float(t)


def _decade(v: float, name: str) -> str:
    """``name`` placed in its decade: ``logit between -1e3 and -1e2``, ``logit 0``, ``logit = -inf``."""
    if math.isnan(v):
        return f"{name} nan"
    if math.isinf(v):
        return f"{name} = {'-' if v < 0 else '+'}inf"
    if v == 0:
        return f"{name} 0"
    a = abs(v)
    e = math.floor(math.log10(a))
    lo, hi = f"1e{e}", f"1e{e + 1}"
    if v < 0:
        return f"{name} between -{hi} and -{lo}"
    return f"{name} between {lo} and {hi}"


def _probability(p: float) -> str:
    if math.isnan(p) or math.isinf(p) or p <= 0 or p >= 1:
        return "probability " + ("nan" if math.isnan(p) else f"{p:g}")
    if p <= 0.5:
        return _decade(p, "probability")
    e = math.floor(math.log10(1 - p))
    return f"probability with 1-p between 1e{e} and 1e{e + 1}"


def _label(z: float) -> str:
    if math.isnan(z):
        return "label nan"
    if z == 0:
        return "label 0"
    if z == 1:
        return "label 1"
    if 0 < z < 1:
        if 1 - z < 1e-3:
            return "soft label near 1"
        if z < 1e-3:
            return "soft label near 0"
        return "soft label"
    return f"label {z:g} (outside [0, 1])"


def describe_region(family: str, inputs: Sequence[str], labels: Sequence[str]) -> str:
    """The input region of one case (hex texts as in a report): for the elementwise families the decade of
    the logit (or probability) and the kind of label; for rows, the decade of the largest logit and the
    label kind; for a reduced batch, of its most extreme element."""
    fam = oracles.get_family(family)
    xs = [_value(t) for t in inputs]
    if not xs:
        return "no inputs"

    def extreme(values: list[float]) -> float:
        for v in values:
            if math.isnan(v):
                return v
        return max(values, key=lambda v: (math.isinf(v), abs(v)))

    if fam.input_name == "probs":
        ps = xs
        p = next((v for v in ps if math.isnan(v)), min(ps, key=lambda v: min(v, 1 - v) if math.isfinite(v) else -1))
        where = _probability(p)
    elif fam.row_wise:
        where = _decade(extreme(xs), "largest logit" if len(xs) > 1 else "logit")
    else:
        where = _decade(extreme(xs), "logit")
    if fam.label_kind == "index":
        return f"rows with {where}" if fam.row_wise else where
    zs = [_value(t) for t in labels]
    if fam.row_wise:
        hard = all(z in (0.0, 1.0) for z in zs)
        return f"rows with {where}, {'one-hot' if hard else 'soft'} labels"
    if len(zs) == 1:
        return f"{where}, {_label(zs[0])}"
    kinds = sorted({_label(z) for z in zs})
    return f"a batch with {where}, {kinds[0] if len(kinds) == 1 else 'mixed labels'}"


def _regions(family: str, cases: Sequence[tuple[Sequence[str], Sequence[str]]], noun: str) -> tuple[str, ...]:
    counted = Counter(describe_region(family, i, z) for i, z in cases)
    total = len(cases)
    return tuple(f"{region} ({n} of {total} {noun})" for region, n in counted.most_common(SHOWN_REGIONS))


def sweep_regions(curves: Sequence[Any], name: str) -> tuple[str, ...]:
    """Stretches of the sweeps (the logit over ±1e-3..1e4, or the probability, at fixed labels) where
    candidate ``name`` is off by more than 1 ULP or not finite, most severe first: ``logit from -1e+04 to
    -88.7 (z = 1, float32): non-finite``."""
    runs: list[tuple[tuple[int, float], str]] = []
    for c in curves:
        errs = c.errors.get(name)
        if errs is None or len(errs) != len(c.x):
            continue
        i = 0
        while i < len(errs):
            if not (errs[i] is None or errs[i] > 1):
                i += 1
                continue
            j = i
            while j + 1 < len(errs) and (errs[j + 1] is None or errs[j + 1] > 1):
                j += 1
            chunk = errs[i : j + 1]
            missing = sum(e is None for e in chunk)
            peak = max((e for e in chunk if e is not None), default=None)
            if missing == len(chunk):
                what = "non-finite"
            elif missing:
                what = f"non-finite at {missing} of {len(chunk)} points, elsewhere up to {_fmt_ulp(peak)} ULP"
            else:
                what = f"up to {_fmt_ulp(peak)} ULP"
            span = f"{c.x_name} {c.x[i]:.3g}" if i == j else f"{c.x_name} from {c.x[i]:.3g} to {c.x[j]:.3g}"
            runs.append(((missing, peak or 0.0), f"{span} ({c.label}, {c.dtype}): {what}"))
            i = j + 1
    runs.sort(key=lambda r: (-r[0][0], -r[0][1]))
    return tuple(text for _key, text in runs[:SHOWN_REGIONS])


# ------------------------------------------------------------------------------------------------ verdict


def _severity(case: WorstCase) -> float:
    return math.inf if case.ulp is None else float(case.ulp)


def _mistakes(s: Score) -> tuple[int, int]:
    """(non-finite mistakes, those on examples whose inputs are all finite)."""
    total = sum(int(s.counts.get(k, 0) or 0) for k in NON_FINITE_MISTAKES)
    return total, max(0, total - int(s.counts.get("on_nonfinite_inputs", 0) or 0))


def _fmt_ulp(value: float | None) -> str:
    from .reports._common import fmt_ulp

    return fmt_ulp(value)


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    """What an audit found about one function (see the module docstring). ``level``: ``ok`` (at most 1 ULP,
    no non-finite result on finite inputs, no failed call), ``bad``, or ``failed`` (no example could be
    scored); ``summary``: the same in one line."""

    target: str
    name: str
    family: str
    convention: str
    reduction: str
    dtypes: tuple[str, ...]
    level: str
    summary: str
    examples: int
    worst_ulp: float | None
    worst_dtype: str | None
    non_finite: int
    non_finite_on_finite_inputs: int
    failed_calls: int
    findings: dict[str, int]
    first_findings: tuple[Finding, ...]
    where: tuple[str, ...]
    sweep: tuple[str, ...]
    findings_where: tuple[str, ...]
    reproducer: WorstCase | None
    reproducer_dtype: str | None
    best_builtin: dict[str, Any] | None
    systematic: tuple[str, ...] = ()  # "dtype: reason" of each dtype whose scoring stopped early
    per_element: dict[str, Any] | None = None  # a reduced function's per-element view (batches of one)
    replay_note: str = ""  # why the reproducer cannot be replayed with the function ("" when it can)
    stopped: str = ""  # why the audit stopped before the end (its budget ran out, interrupted); "" when it did not
    output: dict[str, Any] | None = None  # what the function wrote to stdout/stderr: {"bytes": n, "tail": text}

    def lines(self) -> list[str]:
        """The verdict as a few lines of plain text (terminal, Markdown and HTML add their markup)."""
        out = [self.summary]
        if self.stopped:
            out.append(f"stopped before the end: {self.stopped}; what was not run is not in these figures")
        out += [f"systematic failure ({text})" for text in self.systematic]
        if self.per_element is not None:
            out.append(f"per element (batches of one element): {self.per_element['summary']}")
        if self.sweep:
            out.append("along the sweeps: " + "; ".join(self.sweep))
        if self.where:
            out.append("worst cases at: " + "; ".join(self.where))
        if self.reproducer is not None:
            from .reports._common import case_error

            r = self.reproducer
            out.append(f"minimal reproducer ({self.reproducer_dtype}): inputs {', '.join(r.inputs[:8])}"
                       f"{' …' if len(r.inputs) > 8 else ''}; labels {', '.join(r.labels[:8])}"
                       f"{' …' if len(r.labels) > 8 else ''}; got {r.got}, exact {r.exact}: {case_error(r)}")
            if self.replay_note:
                out.append(f"  replay: not available ({self.replay_note}); the exact value: {r.replay}")
            else:
                out.append(f"  replay: {r.replay}")
        for f in self.first_findings:
            out.append(f"{f.kind}: {f.message} (inputs {', '.join(f.inputs[:4])}{' …' if len(f.inputs) > 4 else ''};"
                       f" labels {', '.join(f.labels[:4])}{' …' if len(f.labels) > 4 else ''})")
        if self.findings_where:
            out.append("failed calls at: " + "; ".join(self.findings_where))
        if self.output:
            tail = self.output.get("tail", "")[-OUTPUT_SHOWN:]
            out.append(f"output: the function wrote {self.output.get('bytes', 0)} bytes to stdout/stderr (captured, not"
                       f" shown); the last {len(tail)} characters: {tail!r}")
        if self.best_builtin is not None:
            b = self.best_builtin
            out.append(f"best built-in for comparison: {b['candidate']} (max {_fmt_ulp(b['max_ulp'])} ULP"
                       f" over {', '.join(b['dtypes'])}; {b['source']})")
        else:
            out.append("best built-in for comparison: none in this run without non-finite results on finite inputs")
        return out

    def to_json(self) -> dict[str, Any]:
        best = None if self.best_builtin is None else {**self.best_builtin, "max_ulp": number_to_json(self.best_builtin["max_ulp"])}
        return {
            "target": self.target,
            "name": self.name,
            "family": self.family,
            "convention": self.convention,
            "reduction": self.reduction,
            "dtypes": list(self.dtypes),
            "level": self.level,
            "summary": self.summary,
            "examples": self.examples,
            "worst_ulp": number_to_json(self.worst_ulp),
            "worst_dtype": self.worst_dtype,
            "non_finite": self.non_finite,
            "non_finite_on_finite_inputs": self.non_finite_on_finite_inputs,
            "failed_calls": self.failed_calls,
            "findings": dict(self.findings),
            "first_findings": [f.to_json() for f in self.first_findings],
            "where": list(self.where),
            "sweep": list(self.sweep),
            "findings_where": list(self.findings_where),
            "reproducer": None if self.reproducer is None else self.reproducer.to_json(),
            "reproducer_dtype": self.reproducer_dtype,
            "best_builtin": best,
            "systematic": list(self.systematic),
            "per_element": None if self.per_element is None else {
                **self.per_element, "worst_ulp": number_to_json(self.per_element.get("worst_ulp"))},
            "replay_note": self.replay_note,
            "stopped": self.stopped,
            "output": self.output,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "AuditVerdict":
        best = data.get("best_builtin")
        return cls(
            target=data["target"],
            name=data["name"],
            family=data["family"],
            convention=data.get("convention", ""),
            reduction=data.get("reduction", "none"),
            dtypes=tuple(data.get("dtypes", ())),
            level=data["level"],
            summary=data["summary"],
            examples=data.get("examples", 0),
            worst_ulp=number_from_json(data.get("worst_ulp")),
            worst_dtype=data.get("worst_dtype"),
            non_finite=data.get("non_finite", 0),
            non_finite_on_finite_inputs=data.get("non_finite_on_finite_inputs", 0),
            failed_calls=data.get("failed_calls", 0),
            findings=dict(data.get("findings", {})),
            first_findings=tuple(Finding.from_json(f) for f in data.get("first_findings", [])),
            where=tuple(data.get("where", ())),
            sweep=tuple(data.get("sweep", ())),
            findings_where=tuple(data.get("findings_where", ())),
            reproducer=None if data.get("reproducer") is None else WorstCase.from_json(data["reproducer"]),
            reproducer_dtype=data.get("reproducer_dtype"),
            best_builtin=None if best is None else {**best, "max_ulp": number_from_json(best.get("max_ulp"))},
            systematic=tuple(data.get("systematic", ())),
            per_element=None if data.get("per_element") is None else {
                **data["per_element"], "worst_ulp": number_from_json(data["per_element"].get("worst_ulp"))},
            replay_note=data.get("replay_note", ""),
            stopped=data.get("stopped", ""),
            output=data.get("output"),
        )


def _best_builtin(scores: Sequence[Score]) -> dict[str, Any] | None:
    by_name: dict[str, list[Score]] = {}
    for s in scores:
        by_name.setdefault(s.candidate, []).append(s)
    ranked = []
    for name, rows in by_name.items():
        if any(s.unsupported or s.failure or s.examples == 0 or s.max_ulp is None or _mistakes(s)[1] for s in rows):
            continue
        ranked.append((max(s.max_ulp for s in rows), name, rows))
    if not ranked:
        return None
    worst, name, rows = min(ranked, key=lambda t: t[0])
    return {"candidate": name, "max_ulp": worst, "dtypes": [s.dtype for s in rows], "source": rows[0].source}


def audit_verdict(result: RunResult, name: str, *, target: str = "", convention: str = "",
                  compared: Sequence[str] | None = None, per_element: str | None = None,
                  replay_note: str = "", stopped: str = "", output: dict[str, Any] | None = None) -> AuditVerdict:
    """The verdict on candidate ``name`` of ``result``. ``compared``: the built-ins compared with (default:
    every other candidate); ``per_element``: the candidate of its per-element view, if any (it counts in
    the level: a reduced function wrong on single elements has problems); ``replay_note``: why its
    reproducer cannot be replayed with the function."""
    mine = [s for s in result.scores if s.candidate == name]
    others = [s for s in result.scores if s.candidate != name and (compared is None or s.candidate in compared)]
    if not mine and stopped:
        return _unscored_verdict(name, target, convention, stopped, output)
    if not mine:
        raise ValueError(f"no score for candidate {name!r} in this run")
    family = mine[0].family
    examples = sum(s.examples for s in mine)
    measured = [s for s in mine if s.max_ulp is not None]
    worst = max(measured, key=lambda s: s.max_ulp, default=None)
    non_finite = sum(_mistakes(s)[0] for s in mine)
    on_finite = sum(_mistakes(s)[1] for s in mine)
    failed = sum(int(s.counts.get("raised", 0) or 0) for s in mine)
    findings = [f for s in mine for f in s.findings]
    kinds = Counter(f.kind for f in findings)
    first: dict[str, Finding] = {}
    for f in findings:
        first.setdefault(f.kind, f)
    cases = sorted(((w, s.dtype) for s in mine for w in s.worst), key=lambda t: -_severity(t[0]))[:10]
    bad_cases = [(w.inputs, w.labels) for w, _d in cases if _severity(w) > 1]
    where = _regions(family, bad_cases, "worst cases") if bad_cases else ()
    swept = sweep_regions([c for c in result.curves if c.family == family], name)
    findings_where = _regions(family, [(f.inputs, f.labels) for f in findings], "failed calls kept") if findings else ()
    # the reproducer: the shrunk one of the dtype with the most severe error, else that dtype's worst case
    reproducer, reproducer_dtype = None, None
    ranked = sorted(mine, key=lambda s: (-_mistakes(s)[1], -(s.max_ulp if s.max_ulp is not None else -1)))
    for s in ranked:
        case = s.reproducer or (s.worst[0] if s.worst else None)
        if case is not None and _severity(case) > 1:
            reproducer, reproducer_dtype = case, s.dtype
            break
    best = _best_builtin(others)
    systematic = tuple(f"{s.dtype}: {s.stopped}" for s in mine if s.stopped and s.stopped != stopped)
    view = None
    if per_element is not None and any(s.candidate == per_element for s in result.scores):
        sub = audit_verdict(result, per_element, compared=())
        view = {"name": per_element, "worst_ulp": sub.worst_ulp, "worst_dtype": sub.worst_dtype,
                "examples": sub.examples, "non_finite_on_finite_inputs": sub.non_finite_on_finite_inputs,
                "failed_calls": sub.failed_calls, "level": sub.level,
                "summary": sub.summary.split("): ", 1)[-1]}
    if examples == 0:
        level = "failed"
    elif (worst is None or worst.max_ulp <= 1) and on_finite == 0 and failed == 0 and (view is None or view["level"] == "ok"):
        level = "ok"
    else:
        level = "bad"
    if stopped and level == "ok":
        level = "bad"  # not audited to the end: not OK
    parts = [f"{name} ({family}, {', '.join(s.dtype for s in mine)}):"]
    parts.append({"ok": "OK", "bad": "PROBLEMS", "failed": "FAILED (nothing could be scored)"}[level])
    if stopped:
        parts.append(f"STOPPED: {stopped}")
    if systematic:
        parts.append(systematic[0].split(" (stopped early", 1)[0])  # the fix first
    if examples:
        parts.append(f"worst {_fmt_ulp(None if worst is None else worst.max_ulp)} ULP"
                     + (f" ({worst.dtype})" if worst is not None and len(mine) > 1 else "")
                     + f" over {examples} examples")
    else:
        parts.append("every call failed")
    if non_finite:
        parts.append(f"{on_finite} non-finite results on finite inputs"
                     + (f" (+{non_finite - on_finite} on ±inf/nan inputs)" if non_finite > on_finite else ""))
    if failed:
        parts.append(f"{failed} failed calls ({', '.join(k for k, _n in kinds.most_common())})")
    if swept:
        parts.append(f"breaks at {swept[0]}")
    elif where:
        parts.append(f"breaks at {where[0].rsplit(' (', 1)[0]}")
    if view is not None and view["worst_ulp"] is not None:
        parts.append(f"per element: worst {_fmt_ulp(view['worst_ulp'])} ULP over {view['examples']} examples")
    if best is not None:
        parts.append(f"best built-in: {best['candidate']} {_fmt_ulp(best['max_ulp'])} ULP")
    summary = parts[0] + " " + parts[1] + "; " + "; ".join(parts[2:])
    return AuditVerdict(
        target=target or name,
        name=name,
        family=family,
        convention=convention,
        reduction=mine[0].reduction,
        dtypes=tuple(s.dtype for s in mine),
        level=level,
        summary=summary,
        examples=examples,
        worst_ulp=None if worst is None else worst.max_ulp,
        worst_dtype=None if worst is None else worst.dtype,
        non_finite=non_finite,
        non_finite_on_finite_inputs=on_finite,
        failed_calls=failed,
        findings=dict(kinds),
        first_findings=tuple(first.values()),
        where=where,
        sweep=swept,
        findings_where=findings_where,
        reproducer=reproducer,
        reproducer_dtype=reproducer_dtype,
        best_builtin=best,
        systematic=systematic,
        per_element=view,
        replay_note=replay_note if reproducer is not None else "",
        stopped=stopped,
        output=output,
    )


def _unscored_verdict(name: str, target: str, convention: str, stopped: str, output: dict[str, Any] | None) -> AuditVerdict:
    """The verdict on a function the audit stopped before scoring at all."""
    return AuditVerdict(
        target=target or name, name=name, family="", convention=convention, reduction="none", dtypes=(),
        level="failed", summary=f"{name}: NOT SCORED: {stopped} before it ran", examples=0, worst_ulp=None,
        worst_dtype=None, non_finite=0, non_finite_on_finite_inputs=0, failed_calls=0, findings={},
        first_findings=(), where=(), sweep=(), findings_where=(), reproducer=None, reproducer_dtype=None,
        best_builtin=None, stopped=stopped, output=output,
    )


# ------------------------------------------------------------------------------------------------ replay


def replay_words(target: str, takes: Any, inputs: str | None, kwargs: Mapping[str, Any] | None) -> list[str]:
    import json

    words = ["--candidate", target]
    if takes:
        words += ["--takes", takes if isinstance(takes, str) else ",".join(takes)]
    if inputs:
        words += ["--inputs", inputs]
    if kwargs:
        words += ["--kwargs", json.dumps(dict(kwargs), separators=(",", ":"))]
    return words


def replay_unavailable(fn_or_spec: Any, target: str) -> str:
    """Why ``lossfuzz exact --candidate TARGET`` cannot import the audited function again ("" when it can):
    a lambda or a local function has no importable name, a function of a script lives in ``__main__``."""
    if isinstance(fn_or_spec, str):
        return ""
    from .adapters import resolve_target

    if target.partition(":")[0] in ("__main__", "__mp_main__"):
        return "the function is defined in a script (__main__); move it into a module to replay it"
    try:
        if resolve_target(target) is fn_or_spec:
            return ""
    except ValueError:
        pass
    return "the function is a lambda/local; give it a module-level name"


def _rewrite_case(case: WorstCase | None, extra: list[str]) -> WorstCase | None:
    if case is None:
        return None
    words = shlex.split(case.replay)
    if len(words) >= 2 and words[-2] == "--candidate":
        words = words[:-2] + extra
    return replace(case, replay=shlex.join(words))


def rewrite_score_replays(score: Score, extra: list[str]) -> Score:
    """``score`` with the ``--candidate NAME`` of its replay commands replaced by ``extra`` (the words that
    call the function by its spec, from :func:`replay_words`; empty: the exact value only)."""
    return replace(score, worst=tuple(_rewrite_case(w, extra) for w in score.worst),
                   reproducer=_rewrite_case(score.reproducer, extra))


def rewrite_replays(result: RunResult, name: str, extra: list[str]) -> RunResult:
    """Replay commands of the audited function name its spec (and convention flags), not its report name;
    for a callable that cannot be imported again (a lambda, a local function) they print the exact value only."""
    scores = tuple(rewrite_score_replays(s, extra) if s.candidate == name else s for s in result.scores)
    return replace(result, scores=scores)


def verdicts(block: Mapping[str, Any] | None) -> list[AuditVerdict]:
    """The verdicts of a report's ``audit`` block: one function's verdict, or ``{"verdicts": [...]}`` when
    several functions were audited side by side."""
    if not block:
        return []
    if "verdicts" in block:
        return [AuditVerdict.from_json(v) for v in block["verdicts"]]
    return [AuditVerdict.from_json(block)]


# ------------------------------------------------------------------------------------------------ audit

# What --fail-on compares with: the verdict levels that meet each choice (exit code 1 when one is met).
FAIL_ON: dict[str, tuple[str, ...]] = {"problems": ("bad", "failed"), "failed": ("failed",), "never": ()}
# Suffix of the per-element view's candidate name (a reduced function called on batches of one element).
PER_ELEMENT = " [per element]"


def failing(verdict_list: Sequence[AuditVerdict], fail_on: str) -> list[AuditVerdict]:
    """The verdicts that meet ``fail_on`` (a key of :data:`FAIL_ON`)."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on={fail_on!r} is not one of: {', '.join(FAIL_ON)}")
    return [v for v in verdict_list if v.level in FAIL_ON[fail_on]]


def audit(
    fn_or_spec: str | Callable[..., Any] | Sequence[str | Callable[..., Any]],
    *,
    family: str,
    dtypes: Sequence[str] = ("float32",),
    takes: str | Sequence[str] | None = None,
    inputs: str | None = None,
    reduction: str = "none",
    kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
    seed: int = 0,
    examples: int = 60,
    compare_with: Sequence[str] = DEFAULT_COMPARE,
    timeout: float = 10.0,
    memory_mb: int = 4096,
    isolate: bool = True,
    speed_elements: int = 0,
    shrink: bool = True,
    progress: Any = None,
    labels: str = "all",
    per_element: bool = True,
    budget: float | None = DEFAULT_BUDGET,
) -> RunResult:
    """Audit ``fn_or_spec`` (a ``"module:function"`` spec, ``"module:Class()"``, or a callable; or a list
    of them, scored side by side with one verdict each) as an implementation of ``family``; return the
    run's :class:`~harness.RunResult` with its ``audit`` block (one verdict, or ``{"verdicts": [...]}``
    for several: read it with :func:`verdicts`).

    The convention options are those of :func:`harness.adapters.function_candidate` (the same for every
    function); ``compare_with``: built-in candidate names run next to it (those the family lacks or whose
    library is not installed are left out; ``()`` for none); ``labels``: ``all``, ``hard`` (0/1 labels
    only, for code that rejects soft labels) or ``soft``; ``per_element``: for a reduced function, also
    score it on batches of one element (one call per element). A (function, dtype) whose first
    :data:`~harness.campaign.EARLY_STOP_CALLS` calls, spread over the inputs, all fail the same way stops
    there (a systematic failure, its fix first in the verdict). ``budget``: seconds for the whole audit
    (None: none); once spent, and once ``progress.stop()`` asks (Ctrl-C), the function is not called again,
    the run ends with what it has (``partial``) and each verdict says why it stopped (``stopped``). Bad
    options are one-line ``ValueError``\\ s; anything the function does wrong is in the result, never raised.
    """
    from .adapters import function_candidate
    from .campaign import EARLY_STOP_CALLS, Settings, run_campaign
    from .candidates import CANDIDATE_NAMES, candidates
    from .scoring import AUDIT_MAX_CHUNKS
    from .strategies import check_label_set

    oracles.get_family(family)
    targets = [fn_or_spec] if isinstance(fn_or_spec, str) or callable(fn_or_spec) else list(fn_or_spec)
    if not targets:
        raise ValueError("nothing to audit: pass at least one 'package.module:function'")
    if name is not None and len(targets) > 1:
        raise ValueError(f"name={name!r} names one function; {len(targets)} were given (each is named by its spec)")
    check_label_set(family, labels)
    dtypes = tuple([dtypes] if isinstance(dtypes, str) else dtypes)
    for d in dtypes:
        oracles.resolve_format(d)
    if not dtypes:
        raise ValueError("dtypes is empty; pass at least one of: float16, bfloat16, float32, float64")
    compare = tuple([compare_with] if isinstance(compare_with, str) else compare_with)
    builtins = [c for c in candidates(family=family, names=compare) if c.available()]
    from .campaign import Progress
    from .isolation import Budget, check_limits

    check_limits(timeout=timeout, memory_mb=memory_mb, budget=budget)
    progress = progress if progress is not None else Progress()
    spending = Budget(budget, stop=progress.stop)
    progress = replace(progress, stop=lambda: spending.reason() is not None)
    options = dict(takes=takes, inputs=inputs, reduction=reduction, kwargs=kwargs, isolate=isolate, timeout=timeout,
                   memory_mb=memory_mb, budget=spending)
    audited: list[tuple[Any, Any, Any]] = []  # (what was given, its candidate, its per-element view or None)
    made: list[Any] = []
    try:
        for t in targets:
            candidate = function_candidate(t, family, name=name, **options)
            made.append(candidate)
            if candidate.name in CANDIDATE_NAMES:
                raise ValueError(f"name={candidate.name!r} is the name of a built-in candidate; pass another name")
            if sum(c.name == candidate.name for c in made) > 1:
                raise ValueError(f"{candidate.name} is given twice; audit each function once")
            view = None
            if reduction != "none" and per_element:
                view = function_candidate(t, family, name=candidate.name + PER_ELEMENT, per_element=True, **options)
                made.append(view)
            audited.append((t, candidate, view))
        settings = Settings(seed=seed, examples=examples, families=(family,), candidates=tuple(c.name for c in builtins),
                            dtypes=dtypes, speed_elements=speed_elements, shrink=shrink, labels=labels,
                            stop_after=EARLY_STOP_CALLS, max_chunks=AUDIT_MAX_CHUNKS)
        result, _corpus = run_campaign(settings, None, progress, extra=made)
    finally:
        for c in made:
            c.close()
    stopped = spending.reason() or ""
    found = []
    for t, candidate, view in audited:
        note = replay_unavailable(t, candidate.target)
        extra = [] if note else replay_words(candidate.target, takes, inputs, kwargs)
        result = rewrite_replays(result, candidate.name, extra)
        if view is not None:
            result = rewrite_replays(result, view.name, ["--reduction", reduction, *extra] if extra else [])
        found.append(audit_verdict(result, candidate.name, target=candidate.target, convention=candidate.convention,
                                   compared=[c.name for c in builtins], per_element=None if view is None else view.name,
                                   replay_note=note, stopped=stopped, output=candidate.output()))
    block = found[0].to_json() if len(found) == 1 else {"verdicts": [v.to_json() for v in found]}
    return replace(result, audit=block)


def call_function_once(spec: str, family: str, inputs: Any, labels: Any, *, takes: str | None = None,
                       inputs_kind: str | None = None, reduction: str = "none", kwargs: Mapping[str, Any] | None = None,
                       timeout: float = 10.0, memory_mb: int = 4096) -> tuple[Any, str]:
    """Run a user's ``package.module:function`` once on these inputs as ``lossfuzz audit`` runs it (imported,
    called and converted in a worker process, under ``timeout``), for ``lossfuzz exact --candidate``.
    Returns ``(result, "")``, or ``(None, message)``: one printable line saying how the call failed (an
    exception, a hang, an exit or a crash is that line, never this process's fate). The inputs given are
    never changed (the function gets its own copies). A bad spec or convention is a one-line ``ValueError``."""
    import numpy as np

    from ._text import printable
    from .adapters import function_candidate
    from .scoring import CandidateFailure

    with function_candidate(spec, family, takes=takes, inputs=inputs_kind, reduction=reduction, kwargs=kwargs,
                            timeout=timeout, memory_mb=memory_mb) as candidate:
        try:
            with np.errstate(all="ignore"):
                return np.asarray(candidate.load()(inputs, labels)), ""
        except CandidateFailure as exc:
            return None, printable(f"{spec}: {exc} ({exc.kind})")
