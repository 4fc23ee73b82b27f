"""A campaign: every chosen candidate of every chosen family in every chosen dtype, scored against the oracle.

Per family x dtype, the boundary catalogue and the corpus (worst cases of earlier runs) are evaluated for
every candidate against one shared ground truth; then each candidate gets its own seeded Hypothesis search
(:mod:`harness.search`) and, optionally, a speed measurement. The result is one :class:`RunResult`.
Pure computation: the CLI reads the corpus and writes reports.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Sequence


import oracles

from ._records import Curve, Finding, RunResult, Score
from .candidates import CANDIDATE_NAMES, Candidate, Unsupported, candidates
from .candidates._registry import UPCAST_SUFFIX
from .metrics import summarize
from .scoring import MAX_CHUNKS, CandidateFailure, Observations, TruthCache, batches, finding, observe, worst_cases
from .search import SearchResult, search
from .speed import measure, speed_inputs
from .strategies import Example, catalogue, has_labels
from .sweep import sweep

__all__ = ["Settings", "Progress", "Resume", "run_campaign", "score_candidate", "labels_scored", "DEFAULT_DTYPES"]

DEFAULT_DTYPES: tuple[str, ...] = tuple(oracles.FORMATS)  # float16, bfloat16, float32, float64


@dataclass(frozen=True, slots=True)
class Settings:
    """What to run. ``examples``: Hypothesis examples per family x candidate x dtype (on top of the
    boundary catalogue and the corpus); ``speed_elements``: array size for timing (0 turns timing off)."""

    seed: int = 0
    examples: int = 82
    families: tuple[str, ...] = tuple(oracles.FAMILIES)
    candidates: tuple[str, ...] = CANDIDATE_NAMES
    dtypes: tuple[str, ...] = DEFAULT_DTYPES
    speed_elements: int = 1_000_000
    shrink: bool = True
    labels: str = "all"  # the label set scored (harness.strategies.LABEL_SETS)
    stop_after: int = 0  # probe calls that stop a candidate x dtype when all fail alike (0: never; audits)
    max_chunks: int = MAX_CHUNKS  # batches a reduced candidate is scored on from the catalogue

    def to_json(self) -> dict:
        data = {
            "seed": self.seed,
            "examples": self.examples,
            "families": list(self.families),
            "candidates": list(self.candidates),
            "dtypes": list(self.dtypes),
            "speed_elements": self.speed_elements,
            "shrink": self.shrink,
        }
        # only when set, so that reports and baselines of plain runs keep their form
        if self.labels != "all":
            data["labels"] = self.labels
        if self.stop_after:
            data["stop_after"] = self.stop_after
        if self.max_chunks != MAX_CHUNKS:
            data["max_chunks"] = self.max_chunks
        return data


@dataclass
class Progress:
    """Callbacks the CLI uses to draw progress; the campaign itself prints nothing."""

    total: Callable[[int], None] = lambda n: None
    step: Callable[[str], None] = lambda description: None
    scored: Callable[[Score, list[Example]], None] = lambda score, worst: None
    swept: Callable[[str, str, list[Curve]], None] = lambda family, dtype, curves: None
    # Asked between two pieces of work: True stops the campaign there (partial result). The CLI answers it
    # from its SIGINT/SIGTERM handler, so a signal never lands inside Hypothesis or a library call.
    stop: Callable[[], bool] = lambda: False


def _seed_for(seed: int, *parts: str) -> int:
    """A per-combination seed, stable across runs and independent of the order combinations run in."""
    return zlib.crc32("/".join((str(seed),) + parts).encode())


def _empty_score(candidate: Candidate, dtype: str, **kw) -> Score:
    stats = summarize(Observations().merged())
    return Score(family=candidate.family, candidate=candidate.name, dtype=dtype, reduction=candidate.reduction,
                 source=candidate.source, labels=kw.pop("labels", candidate.labels), **{**stats, **kw})


def labels_scored(candidate: Candidate, asked: str = "all") -> str | None:
    """The label set ``candidate`` is scored on when a run asks for ``asked`` (``Settings.labels``): the
    run's set narrowed to the candidate's own (``Candidate.labels``, ``"hard"`` for a library that rejects
    soft labels); None when they exclude each other (``soft`` asked of a hard-labels-only candidate)."""
    own = getattr(candidate, "labels", "all")
    if own == "all" or asked == own:
        return asked
    return own if asked == "all" else None


def score_candidate(
    candidate: Candidate,
    dtype: str,
    base: Sequence[Example],
    cache: TruthCache,
    settings: Settings,
) -> tuple[Score, list[Example]]:
    """Score one candidate in one dtype; return the score and its worst examples (for the corpus).

    The examples scored, from ``base`` and from the search, are those of :func:`labels_scored` only."""
    if not candidate.supports(dtype):
        return _empty_score(candidate, dtype, unsupported=True), []
    if not candidate.available():
        return _empty_score(candidate, dtype, failure=f"needs {', '.join(candidate.needs)}: {candidate.install_hint}"), []
    labels = labels_scored(candidate, settings.labels)
    if labels is None:
        return _empty_score(candidate, dtype, failure=f"takes {candidate.labels} labels only; this run scores {settings.labels} labels"), []
    if labels != "all":
        base = [e for e in base if has_labels(e, labels)]
    obs = Observations()
    findings: list[Finding] = []
    stopped: str | None = None
    try:
        obs.extend(observe(candidate, base, cache, candidate.reduction, settings.max_chunks))
    except Unsupported as exc:
        return _empty_score(candidate, dtype, unsupported=True, failure=str(exc)), []
    except CandidateFailure:
        # Find the examples (batches, for reduced candidates) it fails on one at a time; keep the rest.
        units = [[e] for e in base] if candidate.reduction == "none" else batches(base, candidate.reduction, settings.max_chunks)
        order = _probe_first(len(units), settings.stop_after)
        failures: list[CandidateFailure] = []
        for done, i in enumerate(order, 1):
            batch = units[i]
            try:
                obs.extend(observe(candidate, batch, cache, candidate.reduction))
            except (CandidateFailure, Unsupported) as exc:
                failed = exc if isinstance(exc, CandidateFailure) else CandidateFailure(str(exc), "wrong_dtype")
                findings.append(finding(failed, batch))
                failures.append(failed)
            if done == settings.stop_after:
                stopped = systematic_failure(failures, done, len(units))
                if stopped is not None:
                    break
    # An _upcast variant searches with its base's seed: both start from the same drawn inputs, so the
    # report's comparison of the two (harness.reports._common.upcast_comparisons) is about the arithmetic.
    searched_as = candidate.name.removesuffix(UPCAST_SUFFIX) if getattr(candidate, "upcast", False) else candidate.name
    seed = _seed_for(settings.seed, candidate.family, searched_as, dtype)
    if stopped is None:
        result = search(candidate, candidate.family, dtype, cache, reduction=candidate.reduction, seed=seed,
                        max_examples=settings.examples, shrink=settings.shrink, labels=labels)
    else:
        result = SearchResult(Observations(), None, [])
    obs.extend(result.observations)
    findings += result.findings
    reproducer = None
    if result.minimal is not None:
        # the shrunk example counts in the statistics: the reported worst is never below the reproducer's
        obs.extend(result.minimal)
        found = worst_cases(result.minimal, candidate.family, candidate.name, dtype, candidate.reduction, count=1)
        reproducer = found[0] if found else None
    failure = stopped or _failure_summary(findings)
    stats = summarize(obs.merged())
    stats["counts"]["raised"] += len(findings)
    worst = worst_cases(obs, candidate.family, candidate.name, dtype, candidate.reduction)
    speed = None
    if settings.speed_elements:
        x, z = speed_inputs(candidate.family, dtype, settings.speed_elements, seed=settings.seed, labels=labels)
        try:
            speed = measure(candidate, x, z)
        except Exception as exc:  # a candidate that fails on big arrays: a finding, not a crash
            failure = failure or f"speed run raised {type(exc).__name__}: {str(exc)[:200]}"
    score = Score(family=candidate.family, candidate=candidate.name, dtype=dtype, reduction=candidate.reduction,
                  failure=failure, worst=worst, speed=speed, source=candidate.source, reproducer=reproducer,
                  findings=tuple(findings[:MAX_FINDINGS]), stopped=stopped, labels=labels, **stats)
    return score, _worst_examples(obs, candidate.reduction)


MAX_FINDINGS = 20
# Probe calls of an audit (Settings.stop_after): when every one fails the same way, the candidate x dtype
# stops there (a systematic failure, e.g. a reduced result without --reduction mean, which otherwise costs
# one failed call per catalogue example: 11 426 calls and 116 s for a Keras loss).
EARLY_STOP_CALLS = 20
# Failures the worker already bounds (after 3 in a row it refuses calls at once): no early stop for them.
_BOUNDED_BY_WORKER = ("timeout", "crashed", "out_of_memory")


def _probe_first(units: int, probes: int) -> list[int]:
    """The order to call ``units`` in: ``probes`` of them spread evenly over the list first (so that a
    function failing on one input region, e.g. negative logits, is not taken for a systematic failure),
    then the rest in order."""
    if not probes or units <= probes:
        return list(range(units))
    first = [int(k * units / probes) for k in range(probes)]
    chosen = set(first)
    return first + [i for i in range(units) if i not in chosen]


def systematic_failure(failures: Sequence[CandidateFailure], calls: int, units: int) -> str | None:
    """The one-line reason to stop when all ``calls`` probe calls failed with one kind (not one the worker
    bounds), leading with the failure's hint (the fix) when it has one; None otherwise."""
    kinds = {f.kind for f in failures}
    if len(failures) != calls or len(kinds) != 1 or kinds & set(_BOUNDED_BY_WORKER):
        return None
    first = failures[0]
    lead = first.hint or str(first)
    detail = f"{first.kind}: {str(first).replace('; ' + first.hint, '')}" if first.hint else first.kind
    return (f"{lead} (stopped early: all {calls} calls tried, spread over the inputs, failed alike ({detail});"
            f" the other {units - calls} were not run)")


def _failure_summary(findings: list[Finding]) -> str | None:
    """One line: how many examples failed, by kind, and the first message."""
    if not findings:
        return None
    kinds: dict[str, int] = {}
    for f in findings:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    tally = ", ".join(f"{n} {k}" for k, n in kinds.items())
    return f"{tally}; first: {findings[0].message}"


def _worst_examples(obs: Observations, reduction: str, count: int = 10) -> list[Example]:
    from .metrics import severity

    ranked = []
    for group, comparison in zip(obs.groups, obs.comparisons):
        sev = severity(comparison)
        if reduction == "none":
            ranked.extend((float(s), e) for s, e in zip(sev, group) if s > 1.0)
        elif sev.size and sev.max() > 1.0:
            ranked.extend((float(sev.max()), e) for e in group)
    ranked.sort(key=lambda t: -t[0])
    return [e for _s, e in ranked[:count]]


@dataclass
class Resume:
    """Work finished by an earlier, interrupted run with the same settings (read from its journal):
    scores and their corpus additions per (family, candidate, dtype), curves per (family, dtype)."""

    scores: dict[tuple[str, str, str], tuple[Score, list[Example]]] = field(default_factory=dict)
    curves: dict[tuple[str, str], list[Curve]] = field(default_factory=dict)


def _chosen(settings: Settings, family: str, extra: Sequence[Candidate]) -> list[Candidate]:
    return candidates(family=family, names=settings.candidates) + [c for c in extra if c.family == family]


def _declared(candidates_: list[Candidate], dtype: str) -> list[Candidate]:
    """The candidates declared for ``dtype`` (the ``_upcast`` variants exist for float16/bfloat16 only; a
    candidate declared for a dtype that rejects it when called still gets its ``unsupported`` row)."""
    return [c for c in candidates_ if dtype in c.dtypes]


def run_campaign(
    settings: Settings = Settings(),
    corpus: dict[tuple[str, str], list[Example]] | None = None,
    progress: Progress | None = None,
    extra: Sequence[Candidate] = (),
    resume: Resume | None = None,
) -> tuple[RunResult, dict[tuple[str, str], list[Example]]]:
    """Run the campaign; return the result and the new corpus (worst examples per family and dtype).

    ``extra``: candidates beyond the built-ins named in ``settings.candidates`` (e.g. a user's function
    under audit), scored the same way for each of their families in ``settings.families``. The corpus
    given is replayed first. ``resume``: finished work of an interrupted run, taken as is (every score
    depends only on the settings, the corpus given and its own seed, so the figures equal those of an
    uninterrupted run). ``progress.scored``/``progress.swept`` see each piece of work as it finishes (the
    CLI journals them). A KeyboardInterrupt ends the campaign early with ``partial=True`` and every
    finished score kept.
    """
    from .provenance import provenance

    progress = progress or Progress()
    corpus = corpus or {}
    resume = resume or Resume()
    started = time.perf_counter()
    plan: list[tuple[str, str, Candidate]] = []
    for family in settings.families:
        oracles.get_family(family)
        for dtype in settings.dtypes:
            oracles.resolve_format(dtype)
            plan.extend((family, dtype, c) for c in _declared(_chosen(settings, family, extra), dtype))
    progress.total(len(plan) + len(settings.families) * len(settings.dtypes))
    scores: list[Score] = []
    curves: list[Curve] = []
    new_corpus: dict[tuple[str, str], list[Example]] = {}
    partial = False
    caches: dict[tuple[str, str], tuple[TruthCache, list[Example]]] = {}
    try:
        for family, dtype, candidate in plan:
            if progress.stop():
                raise KeyboardInterrupt
            progress.step(f"{family} {candidate.name} {dtype}")
            done = resume.scores.get((family, candidate.name, dtype))
            if done is not None:
                score, worst = done
            else:
                if (family, dtype) not in caches:
                    replay = list(corpus.get((family, dtype), []))
                    base = [e for e in replay + catalogue(family, dtype) if has_labels(e, settings.labels)]
                    caches[(family, dtype)] = (TruthCache(family, dtype), base)
                cache, base = caches[(family, dtype)]
                score, worst = score_candidate(candidate, dtype, base, cache, settings)
                progress.scored(score, worst)
            scores.append(score)
            kept = new_corpus.setdefault((family, dtype), list(corpus.get((family, dtype), [])))
            known = {e.key for e in kept}
            kept.extend(e for e in worst if e.key not in known and not known.add(e.key))
        for family in settings.families:
            for dtype in settings.dtypes:
                if progress.stop():
                    raise KeyboardInterrupt
                progress.step(f"{family} {dtype} sweep")
                swept = resume.curves.get((family, dtype))
                if swept is None:
                    swept = sweep(family, dtype, _chosen(settings, family, extra), settings.labels)
                    progress.swept(family, dtype, swept)
                curves.extend(swept)
    except KeyboardInterrupt:
        partial = True
    result = RunResult(
        settings=settings.to_json(),
        provenance=provenance(settings.seed),
        scores=tuple(scores),
        wall_seconds=time.perf_counter() - started,
        partial=partial,
        curves=tuple(curves),
    )
    return result, new_corpus
