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

import json
import math
import shlex
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import oracles

from ._records import CandidateFailure, Finding, JsonRecord, RunResult, Score, WorstCase
from ._values import fmt_ulp as _fmt_ulp
from ._values import parse_value
from .adapters import function_candidate, resolve_target
from ._text import printable
from .campaign import EARLY_STOP_CALLS, Progress, run_campaign
from .isolation import Budget, check_limits
from .candidates import CANDIDATE_NAMES, candidates
from .options import DEFAULT_BUDGET, DEFAULT_COMPARE, FAIL_ON, AuditSettings, Settings, reading_input
from .options import settings as settings_from
from .outcomes import case_error, tally_outcomes
from .scoring import AUDIT_MAX_CHUNKS
from .strategies import check_label_set

__all__ = ["DEFAULT_BUDGET", "DEFAULT_COMPARE", "FAIL_ON", "call_function_once", "PER_ELEMENT", "AuditVerdict", "BestBuiltin", "PerElementView", "audit", "audit_verdict", "describe_region", "failing",
           "replay_unavailable", "rewrite_replays", "rewrite_score_replays", "sweep_regions", "verdicts"]

# Regions and first findings shown in a verdict.
SHOWN_REGIONS = 3
# Characters of the function's captured output shown in a verdict line (report.json keeps more).
OUTPUT_SHOWN = 200


# ------------------------------------------------------------------------------------------------ regions


def _value(text: str) -> float:
    return parse_value(text, "a case's input")


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

    if fam.input_domain == "unit":  # probabilities
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


@dataclass(frozen=True, slots=True)
class BestBuiltin(JsonRecord):
    """The compared built-in with the lowest maximum ULP error (over ``dtypes``) and no non-finite result on
    finite inputs."""

    candidate: str
    max_ulp: float | None
    dtypes: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True, slots=True)
class PerElementView(JsonRecord):
    """A reduced function's verdict on batches of one element (its candidate ``name``), in brief."""

    name: str
    worst_ulp: float | None
    worst_dtype: str | None
    examples: int
    non_finite_on_finite_inputs: int
    failed_calls: int
    level: str
    summary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditVerdict(JsonRecord):
    """What an audit found about one function (see the module docstring). ``level``: ``ok`` (at most 1 ULP,
    no non-finite result on finite inputs, no failed call), ``bad``, or ``failed`` (no example could be
    scored); ``summary``: the same in one line. Only ``target``, ``name``, ``family``, ``level`` and ``summary`` are required when read back
    (the others default, as the reader of earlier versions allowed); the JSON keys are the field names."""

    target: str
    name: str
    family: str
    convention: str = ""
    reduction: str = "none"
    dtypes: tuple[str, ...] = ()
    level: str
    summary: str
    examples: int = 0
    worst_ulp: float | None = None
    worst_dtype: str | None = None
    non_finite: int = 0
    non_finite_on_finite_inputs: int = 0
    failed_calls: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    first_findings: tuple[Finding, ...] = ()
    where: tuple[str, ...] = ()
    sweep: tuple[str, ...] = ()
    findings_where: tuple[str, ...] = ()
    reproducer: WorstCase | None = None
    reproducer_dtype: str | None = None
    best_builtin: BestBuiltin | None = None
    systematic: tuple[str, ...] = ()  # "dtype: reason" of each dtype whose scoring stopped early
    per_element: PerElementView | None = None  # a reduced function's per-element view (batches of one)
    replay_note: str = ""  # why the reproducer cannot be replayed with the function ("" when it can)
    # why the audit stopped before the end (its budget ran out, interrupted); "" when it did not
    stopped: str = field(default="", metadata={"omit_default": True})
    # what the function wrote to stdout/stderr, {"bytes": n, "tail": text}; None when nothing
    output: dict[str, Any] | None = field(default=None, metadata={"omit_default": True})

    def lines(self) -> list[str]:
        """The verdict as a few lines of plain text (terminal, Markdown and HTML add their markup)."""
        out = [self.summary]
        if self.stopped:
            out.append(f"stopped before the end: {self.stopped}; what was not run is not in these figures")
        out += [f"systematic failure ({text})" for text in self.systematic]
        if self.per_element is not None:
            out.append(f"per element (batches of one element): {self.per_element.summary}")
        if self.sweep:
            out.append("along the sweeps: " + "; ".join(self.sweep))
        if self.where:
            out.append("worst cases at: " + "; ".join(self.where))
        if self.reproducer is not None:
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
            tail = str(self.output.get("tail", ""))[-OUTPUT_SHOWN:]
            out.append(f"output: the function wrote {self.output.get('bytes', 0)} bytes to stdout/stderr (captured, not"
                       f" shown); the last {len(tail)} characters: {tail!r}")
        if self.best_builtin is not None:
            b = self.best_builtin
            out.append(f"best built-in for comparison: {b.candidate} (max {_fmt_ulp(b.max_ulp)} ULP"
                       f" over {', '.join(b.dtypes)}; {b.source})")
        else:
            out.append("best built-in for comparison: none in this run without non-finite results on finite inputs")
        return out


def _best_builtin(scores: Sequence[Score]) -> BestBuiltin | None:
    by_name: dict[str, list[Score]] = {}
    for s in scores:
        by_name.setdefault(s.candidate, []).append(s)
    ranked = []
    for name, rows in by_name.items():
        if any(s.unsupported or s.failure or s.examples == 0 or s.max_ulp is None or tally_outcomes(s).on_finite_inputs for s in rows):
            continue
        ranked.append((max(s.max_ulp for s in rows), name, rows))
    if not ranked:
        return None
    worst, name, rows = min(ranked, key=lambda t: t[0])
    return BestBuiltin(name, worst, tuple(s.dtype for s in rows), rows[0].source)


def _reproducer(mine: Sequence[Score]) -> tuple[WorstCase | None, str | None]:
    """The shrunk reproducer of the dtype with the most severe error (non-finite results on finite inputs
    first, then the largest max ULP), else that dtype's worst case; (None, None) when nothing is over 1 ULP."""
    ranked = sorted(mine, key=lambda s: (-tally_outcomes(s).on_finite_inputs, -(s.max_ulp if s.max_ulp is not None else -1)))
    for s in ranked:
        case = s.reproducer or (s.worst[0] if s.worst else None)
        if case is not None and _severity(case) > 1:
            return case, s.dtype
    return None, None


def _per_element_view(result: RunResult, per_element: str | None) -> PerElementView | None:
    """The verdict's summary of a reduced function's per-element view (its candidate ``per_element``)."""
    if per_element is None or not any(s.candidate == per_element for s in result.scores):
        return None
    sub = audit_verdict(result, per_element, compared=())
    return PerElementView(per_element, sub.worst_ulp, sub.worst_dtype, sub.examples, sub.non_finite_on_finite_inputs,
                          sub.failed_calls, sub.level, sub.summary.split("): ", 1)[-1])


def _level(v: AuditVerdict) -> str:
    """``failed`` (nothing scored), ``ok`` (at most 1 ULP, no non-finite result on finite inputs, no failed
    call, and an ok per-element view if any) or ``bad``."""
    if v.examples == 0:
        return "failed"
    view_ok = v.per_element is None or v.per_element.level == "ok"
    if (v.worst_ulp is None or v.worst_ulp <= 1) and v.non_finite_on_finite_inputs == 0 and v.failed_calls == 0 and view_ok \
            and not v.stopped:  # not audited to the end: not OK
        return "ok"
    return "bad"


def _summary(v: AuditVerdict) -> str:
    """The verdict in one line: ``name (family, dtypes): OK|PROBLEMS|FAILED; worst …; …``."""
    head = f"{v.name} ({v.family}, {', '.join(v.dtypes)}): "
    head += {"ok": "OK", "bad": "PROBLEMS", "failed": "FAILED (nothing could be scored)"}[v.level]
    parts = [f"STOPPED: {v.stopped}"] if v.stopped else []
    if v.systematic:
        parts.append(v.systematic[0].split(" (stopped early", 1)[0])  # the fix first
    if v.examples:
        parts.append(f"worst {_fmt_ulp(v.worst_ulp)} ULP" + (f" ({v.worst_dtype})" if v.worst_dtype is not None and len(v.dtypes) > 1 else "")
                     + f" over {v.examples} examples")
    else:
        parts.append("every call failed")
    if v.non_finite:
        on_finite = v.non_finite_on_finite_inputs
        parts.append(f"{on_finite} non-finite results on finite inputs"
                     + (f" (+{v.non_finite - on_finite} on ±inf/nan inputs)" if v.non_finite > on_finite else ""))
    if v.failed_calls:
        kinds = sorted(v.findings, key=lambda k: -v.findings[k])  # most common first, as Counter.most_common
        parts.append(f"{v.failed_calls} failed calls ({', '.join(kinds)})")
    if v.sweep:
        parts.append(f"breaks at {v.sweep[0]}")
    elif v.where:
        parts.append(f"breaks at {v.where[0].rsplit(' (', 1)[0]}")
    if v.per_element is not None and v.per_element.worst_ulp is not None:
        parts.append(f"per element: worst {_fmt_ulp(v.per_element.worst_ulp)} ULP over {v.per_element.examples} examples")
    if v.best_builtin is not None:
        parts.append(f"best built-in: {v.best_builtin.candidate} {_fmt_ulp(v.best_builtin.max_ulp)} ULP")
    return head + "; " + "; ".join(parts)


def audit_verdict(result: RunResult, name: str, *, target: str = "", convention: str = "",
                  compared: Sequence[str] | None = None, per_element: str | None = None,
                  replay_note: str = "", stopped: str = "", output: dict[str, Any] | None = None) -> AuditVerdict:
    """The verdict on candidate ``name`` of ``result``. ``compared``: the built-ins compared with (default:
    every other candidate); ``per_element``: the candidate of its per-element view, if any (it counts in
    the level: a reduced function wrong on single elements has problems); ``replay_note``: why its
    reproducer cannot be replayed with the function; ``stopped``: why the audit stopped before the end;
    ``output``: what the function wrote (captured in its worker)."""
    mine = [s for s in result.scores if s.candidate == name and s.quantity == "loss"]
    others = [s for s in result.scores if s.candidate != name and s.quantity == "loss" and (compared is None or s.candidate in compared)]
    if not mine and stopped:
        return _unscored_verdict(name, target, convention, stopped, output)
    if not mine:
        raise ValueError(f"no score for candidate {name!r} in this run")
    family = mine[0].family
    measured = [s for s in mine if s.max_ulp is not None]
    worst = max(measured, key=lambda s: s.max_ulp, default=None)
    tallies = [tally_outcomes(s) for s in mine]
    findings = [f for s in mine for f in s.findings]
    first: dict[str, Finding] = {}
    for f in findings:
        first.setdefault(f.kind, f)
    cases = sorted(((w, s.dtype) for s in mine for w in s.worst), key=lambda t: -_severity(t[0]))[:10]
    bad_cases = [(w.inputs, w.labels) for w, _d in cases if _severity(w) > 1]
    reproducer, reproducer_dtype = _reproducer(mine)
    found = AuditVerdict(
        target=target or name,
        name=name,
        family=family,
        convention=convention,
        reduction=mine[0].reduction,
        dtypes=tuple(s.dtype for s in mine),
        level="",
        summary="",
        examples=sum(s.examples for s in mine),
        worst_ulp=None if worst is None else worst.max_ulp,
        worst_dtype=None if worst is None else worst.dtype,
        non_finite=sum(t.non_finite for t in tallies),
        non_finite_on_finite_inputs=sum(t.on_finite_inputs for t in tallies),
        failed_calls=sum(t.raised for t in tallies),
        findings=dict(Counter(f.kind for f in findings)),
        first_findings=tuple(first.values()),
        where=_regions(family, bad_cases, "worst cases") if bad_cases else (),
        sweep=sweep_regions([c for c in result.curves if c.family == family and c.quantity == "loss"], name),
        findings_where=_regions(family, [(f.inputs, f.labels) for f in findings], "failed calls kept") if findings else (),
        reproducer=reproducer,
        reproducer_dtype=reproducer_dtype,
        best_builtin=_best_builtin(others),
        systematic=tuple(f"{s.dtype}: {s.stopped}" for s in mine if s.stopped and s.stopped != stopped),
        per_element=_per_element_view(result, per_element),
        replay_note=replay_note if reproducer is not None else "",
        stopped=stopped,
        output=output,
    )
    found = replace(found, level=_level(found))
    return replace(found, summary=_summary(found))


def _unscored_verdict(name: str, target: str, convention: str, stopped: str, output: dict[str, Any] | None) -> AuditVerdict:
    """The verdict on a function the audit stopped before scoring at all."""
    return AuditVerdict(target=target or name, name=name, family="", convention=convention, level="failed",
                        summary=f"{name}: NOT SCORED: {stopped} before it ran", stopped=stopped, output=output)


# ------------------------------------------------------------------------------------------------ replay


def replay_words(target: str, takes: Any, inputs: str | None, kwargs: Mapping[str, Any] | None,
                 gradient_fn: Any = None) -> list[str]:
    words = ["--candidate", target]
    if takes:
        words += ["--takes", takes if isinstance(takes, str) else ",".join(takes)]
    if inputs:
        words += ["--inputs", inputs]
    if kwargs:
        words += ["--kwargs", json.dumps(dict(kwargs), separators=(",", ":"))]
    if isinstance(gradient_fn, str):
        words += ["--gradient-fn", gradient_fn]
    return words


def replay_unavailable(fn_or_spec: Any, target: str) -> str:
    """Why ``lossfuzz exact --candidate TARGET`` cannot import the audited function again ("" when it can):
    a lambda or a local function has no importable name, a function of a script lives in ``__main__``."""
    if isinstance(fn_or_spec, str):
        return ""
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
                   reproducer=_rewrite_case(score.reproducer, extra),
                   regimes={k: replace(r, worst=_rewrite_case(r.worst, extra)) for k, r in score.regimes.items()})


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

# Suffix of the per-element view's candidate name (a reduced function called on batches of one element).
PER_ELEMENT = " [per element]"


def failing(verdict_list: Sequence[AuditVerdict], fail_on: str) -> list[AuditVerdict]:
    """The verdicts that meet ``fail_on`` (a key of :data:`FAIL_ON`)."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on={fail_on!r} is not one of: {', '.join(FAIL_ON)}")
    return [v for v in verdict_list if v.level in FAIL_ON[fail_on]]


def audit(
    fn_or_spec: str | Callable[..., Any] | Sequence[str | Callable[..., Any]],
    settings: AuditSettings | None = None,
    *,
    progress: Any = None,
    **options: Any,
) -> RunResult:
    """Audit ``fn_or_spec`` (a ``"module:function"`` spec, ``"module:Class()"``, or a callable; or a list
    of them, scored side by side with one verdict each) as an implementation of a family; return the
    run's :class:`~harness.RunResult` with its ``audit`` block (one verdict, or ``{"verdicts": [...]}``
    for several: read it with :func:`verdicts`).

    What to run is an :class:`~harness.options.AuditSettings`, or its fields as keywords
    (``audit(f, family="sigmoid_ce", examples=20)``), read like the options of ``lossfuzz audit``: the
    family; ``dtypes``, ``seed``, ``examples``, ``speed_elements``, ``shrink``; the calling convention of
    :func:`harness.adapters.function_candidate` (``takes``, ``inputs``, ``reduction``, ``kwargs``,
    ``name``, ``timeout``, ``memory_mb``, ``isolate``; the same for every function); ``compare_with``:
    built-in candidate names run next to it (those the family lacks or whose library is not installed
    are left out; ``()`` for none); ``labels``: ``all``, ``hard`` (0/1 labels only, for code that
    rejects soft labels) or ``soft``; ``per_element``: for a reduced function, also score it on batches
    of one element (one call per element). ``progress``: the campaign's progress hooks. A (function,
    dtype) whose first :data:`~harness.campaign.EARLY_STOP_CALLS` calls, spread over the inputs, all fail
    the same way stops there (a systematic failure, its fix first in the verdict). ``budget``: seconds
    for the whole audit (None: none); once spent, and once ``progress.stop()`` asks (Ctrl-C), the function
    is not called again, the run ends with what it has (``partial``) and each verdict says why it stopped
    (``stopped``). Bad options are one-line :class:`~harness.options.UsageError`\\ s (``ValueError``);
    anything the function does wrong is in the result, never raised.
    """
    if settings is None:
        settings = settings_from(AuditSettings, "audit_api", options)
    elif options:
        raise TypeError(f"pass the options in settings or as keywords, not both (got {', '.join(options)})")
    targets = [fn_or_spec] if isinstance(fn_or_spec, str) or callable(fn_or_spec) else list(fn_or_spec)
    with reading_input():
        _check_audit(settings, targets)
        check_limits(timeout=settings.timeout, memory_mb=settings.memory_mb, budget=settings.budget)
    builtins = [c for c in candidates(family=settings.family, names=settings.compare_with) if c.available()]
    progress = progress if progress is not None else Progress()
    spending = Budget(settings.budget, stop=progress.stop)
    progress = replace(progress, stop=lambda: spending.reason() is not None)
    audited, made = _audit_candidates(targets, settings, spending)
    try:
        campaign = _campaign_settings(settings, tuple(c.name for c in builtins))
        result, _corpus = run_campaign(campaign, None, progress, extra=made)
    finally:
        for c in made:
            c.close()
    stopped = spending.reason() or ""
    takes, inputs, kwargs, reduction = settings.takes, settings.inputs, settings.kwargs, settings.reduction
    found = []
    for t, candidate, view in audited:
        note = replay_unavailable(t, candidate.target)
        extra = [] if note else replay_words(candidate.target, takes, inputs, kwargs, settings.gradient_fn)
        result = rewrite_replays(result, candidate.name, extra)
        if view is not None:
            result = rewrite_replays(result, view.name, ["--reduction", reduction, *extra] if extra else [])
        found.append(audit_verdict(result, candidate.name, target=candidate.target, convention=candidate.convention,
                                   compared=[c.name for c in builtins], per_element=None if view is None else view.name,
                                   replay_note=note, stopped=stopped, output=candidate.output()))
    block = found[0].to_json() if len(found) == 1 else {"verdicts": [v.to_json() for v in found]}
    return replace(result, audit=block)


def _campaign_settings(settings: AuditSettings, builtins: tuple[str, ...]):
    """The campaign of an audit: its family, the built-ins to compare with, probe calls that stop a
    systematic failure early, and every catalogue batch for a reduced function."""
    return Settings(seed=settings.seed, examples=settings.examples, families=(settings.family,), candidates=builtins,
                    dtypes=settings.dtypes, speed_elements=settings.speed_elements, shrink=settings.shrink,
                    labels=settings.labels, stop_after=EARLY_STOP_CALLS, max_chunks=AUDIT_MAX_CHUNKS,
                    quantities=settings.quantities)


def _check_audit(settings: AuditSettings, targets: list) -> None:
    """The settings and targets of an audit checked; a one-line ``ValueError`` for the first fault."""
    if settings.family is None:
        raise ValueError(f"audit needs family=: the loss family the function computes ({', '.join(oracles.FAMILIES)})")
    oracles.get_family(settings.family)
    if not targets:
        raise ValueError("nothing to audit: pass at least one 'package.module:function'")
    if settings.name is not None and len(targets) > 1:
        raise ValueError(f"name={settings.name!r} names one function; {len(targets)} were given (each is named by its spec)")
    check_label_set(settings.family, settings.labels)
    if not settings.dtypes:
        raise ValueError("dtypes is empty; pass at least one of: float16, bfloat16, float32, float64")
    for d in settings.dtypes:
        oracles.resolve_format(d)


def _audit_candidates(targets: list, settings: AuditSettings, budget: Budget) -> tuple[list[tuple[Any, Any, Any]], list[Any]]:
    """(what was given, its candidate, its per-element view or None) per target, and every candidate made
    (to close); a target that cannot be loaded or called as asked is a one-line :class:`UsageError`.
    ``budget``: the audit's, shared by every worker."""
    call = {**settings.call_options(), "budget": budget}
    audited: list[tuple[Any, Any, Any]] = []
    made: list[Any] = []
    try:
        with reading_input():
            for t in targets:
                candidate = function_candidate(t, settings.family, **call)
                made.append(candidate)
                if candidate.name in CANDIDATE_NAMES:
                    raise ValueError(f"name={candidate.name!r} is the name of a built-in candidate; pass another name")
                if sum(c.name == candidate.name for c in made) > 1:
                    raise ValueError(f"{candidate.name} is given twice; audit each function once")
                view = None
                if settings.reduction != "none" and settings.per_element:
                    view = function_candidate(t, settings.family, per_element=True,
                                              **{**call, "name": candidate.name + PER_ELEMENT})
                    made.append(view)
                audited.append((t, candidate, view))
    except BaseException:
        for c in made:
            c.close()
        raise
    return audited, made


def call_function_once(spec: str, family: str, inputs: Any, labels: Any, *, takes: str | None = None,
                       inputs_kind: str | None = None, reduction: str = "none", kwargs: Mapping[str, Any] | None = None,
                       timeout: float = 10.0, memory_mb: int = 4096, gradient: bool = False,
                       gradient_fn: str | None = None) -> tuple[Any, str]:
    """Run a user's ``package.module:function`` once on these inputs as ``lossfuzz audit`` runs it (imported,
    called and converted in a worker process, under ``timeout``), for ``lossfuzz exact --candidate``.
    Returns ``(result, "")``, or ``(None, message)``: one printable line saying how the call failed (an
    exception, a hang, an exit or a crash is that line, never this process's fate). The inputs given are
    never changed (the function gets its own copies). A bad spec or convention is a one-line ``ValueError``.
    ``gradient``: its gradient with respect to the inputs instead (its framework's autodiff in the worker, or
    ``gradient_fn``); ``(None, the gradient note)`` for code that has none."""
    import numpy as np

    from .candidates import NoGradient

    with function_candidate(spec, family, takes=takes, inputs=inputs_kind, reduction=reduction, kwargs=kwargs,
                            timeout=timeout, memory_mb=memory_mb, gradient_fn=gradient_fn) as candidate:
        try:
            with np.errstate(all="ignore"):
                if gradient:
                    return np.asarray(candidate.load_gradient()(inputs, labels)), ""
                return np.asarray(candidate.load()(inputs, labels)), ""
        except NoGradient:
            return None, printable(f"{spec}: no gradient: {candidate.gradient_note}")
        except CandidateFailure as exc:
            return None, printable(f"{spec}: {exc} ({exc.kind})")
