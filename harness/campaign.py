"""A campaign: every chosen candidate of every chosen family in every chosen dtype, scored against the oracle.

Per family x dtype, the boundary catalogue and the corpus (worst cases of earlier runs) are evaluated for
every candidate against one shared ground truth; then each candidate gets its own seeded Hypothesis search
(:mod:`harness.search`) and, optionally, a speed measurement; then its gradient is scored on the same base
examples and every example its search visited (:func:`score_gradient`; ``Settings.quantities`` says which
rows are made). The result is one :class:`RunResult`.
Pure computation: the CLI reads the corpus and writes reports.
"""

from __future__ import annotations

import threading
import time
import warnings
import zlib
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import oracles

from ._records import CandidateFailure, Curve, ErrorMap, Finding, RunResult, Score
from .candidates import UPCAST_SUFFIX, Candidate, NoGradient, Unsupported, candidates, get_candidate
from .corpus import example_from_json, example_to_json
from .metrics import severity, summarize
from .options import MAX_CHUNKS, Settings
from .provenance import provenance
from .scoring import Observations, TruthCache, batches, finding, listed_cases, observe, worst_cases
from .search import SearchResult, search
from .speed import speed_inputs, time_candidate
from .strategies import Example, catalogue, has_labels
from .sweep import error_map, sweep

__all__ = ["Settings", "Progress", "Resume", "run_campaign", "score_candidate", "score_rows", "score_loss", "score_gradient",
           "gradient_units", "CandidateGradient", "score_cell", "labels_scored", "cell_count", "DEFAULT_DTYPES"]

DEFAULT_DTYPES: tuple[str, ...] = tuple(oracles.FORMATS)  # float16, bfloat16, float32, float64


@dataclass
class Progress:
    """Callbacks the CLI uses to draw progress; the campaign itself prints nothing."""

    total: Callable[[int], None] = lambda n: None
    step: Callable[[str], None] = lambda description: None
    scored: Callable[[Score, list[Example]], None] = lambda score, worst: None
    swept: Callable[[str, str, list[Curve]], None] = lambda family, dtype, curves: None
    mapped: Callable[[ErrorMap], None] = lambda error_map: None
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


def _unscorable(candidate: Candidate, dtype: str, settings: Settings, quantity: str = "loss") -> Score | None:
    """The empty row of a candidate that cannot be scored in ``dtype`` at all (dtype not declared, library
    missing, label sets excluding each other); None when it can be."""
    if not candidate.supports(dtype):
        return _empty_score(candidate, dtype, unsupported=True, quantity=quantity)
    if not candidate.available():
        return _empty_score(candidate, dtype, failure=f"needs {', '.join(candidate.needs)}: {candidate.install_hint}",
                            quantity=quantity)
    if labels_scored(candidate, settings.labels) is None:
        return _empty_score(candidate, dtype, quantity=quantity,
                            failure=f"takes {candidate.labels} labels only; this run scores {settings.labels} labels")
    return None


def score_candidate(
    candidate: Candidate,
    dtype: str,
    base: Sequence[Example],
    cache: TruthCache,
    settings: Settings,
) -> tuple[Score, list[Example]]:
    """Score one candidate's loss in one dtype; return the score and its worst examples (for the corpus).

    The examples scored, from ``base`` and from the search, are those of :func:`labels_scored` only.
    :func:`score_rows` scores the gradient too."""
    score, worst, _visited = score_loss(candidate, dtype, base, cache, settings)
    return score, worst


def score_rows(
    candidate: Candidate,
    dtype: str,
    base: Sequence[Example],
    cache: TruthCache,
    settings: Settings,
) -> tuple[tuple[Score, ...], list[Example]]:
    """The rows of ``settings.quantities`` for one candidate in one dtype (loss first), and the loss's worst
    examples (for the corpus). The gradient row is scored on the base examples and every example the
    loss search visited (:func:`score_gradient`); without ``loss`` in the quantities there is no search,
    and the gradient is scored on the base examples only."""
    rows: list[Score] = []
    worst: list[Example] = []
    visited = Observations()
    if "loss" in settings.quantities:
        loss, worst, visited = score_loss(candidate, dtype, base, cache, settings)
        rows.append(loss)
    if "gradient" in settings.quantities:
        rows.append(score_gradient(candidate, dtype, base, visited, cache, settings))
    return tuple(rows), worst


def score_loss(candidate: Candidate, dtype: str, base: Sequence[Example], cache: TruthCache,
               settings: Settings) -> tuple[Score, list[Example], Observations]:
    """:func:`score_candidate`, also returning every observation made (base, search and shrink): the
    examples the loss search visited, on which :func:`score_gradient` scores the gradient too."""
    empty = _unscorable(candidate, dtype, settings)
    if empty is not None:
        return empty, [], Observations()
    labels = labels_scored(candidate, settings.labels)
    if labels != "all":
        base = [e for e in base if has_labels(e, labels)]
    obs = Observations()
    findings: list[Finding] = []
    stopped: str | None = None
    try:
        obs.extend(observe(candidate, base, cache, candidate.reduction, settings.max_chunks))
    except Unsupported as exc:
        return _empty_score(candidate, dtype, unsupported=True, failure=str(exc)), [], Observations()
    except CandidateFailure:
        findings, stopped = _one_at_a_time(candidate, base, cache, settings, obs)
    # An _upcast variant searches with its base's seed: both start from the same drawn inputs, so the
    # report's comparison of the two (harness.reports.upcast_comparisons) is about the arithmetic.
    searched_as = candidate.name.removesuffix(UPCAST_SUFFIX) if getattr(candidate, "upcast", False) else candidate.name
    seed = _seed_for(settings.seed, candidate.family, searched_as, dtype)
    if stopped is None:  # (search and shrink stop by themselves once the worker refuses every call)
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
    stats = summarize(obs.merged(), [r.name for r in oracles.get_family(candidate.family).regimes])
    stats["counts"]["raised"] += len(findings)
    worst, behind = listed_cases(obs, candidate.family, candidate.name, dtype, candidate.reduction)
    stats["regimes"] = {name: replace(r, worst=behind.get(name)) for name, r in stats["regimes"].items()}
    speed = None
    if settings.speed_elements:
        x, z = speed_inputs(candidate.family, dtype, settings.speed_elements, seed=settings.seed, labels=labels)
        try:
            speed = time_candidate(candidate, x, z)
        except Exception as exc:  # a candidate that fails on big arrays: a finding, not a crash
            failure = failure or f"speed run raised {type(exc).__name__}: {str(exc)[:200]}"
    score = Score(family=candidate.family, candidate=candidate.name, dtype=dtype, reduction=candidate.reduction,
                  failure=failure, worst=worst, speed=speed, source=candidate.source, reproducer=reproducer,
                  findings=tuple(findings[:MAX_FINDINGS]), stopped=stopped, labels=labels, **stats)
    return score, _worst_examples(obs, candidate.reduction), obs


def gradient_units(base: Sequence[Example], visited: Observations, reduction: str,
                   max_chunks: int = MAX_CHUNKS) -> list[list[Example]]:
    """The examples a gradient row is scored on, as the calls :func:`score_gradient` makes (each unit one
    :func:`~harness.scoring.observe` call): ``base`` (grouped as the loss groups it, so the exact values
    are shared), then, for ``reduction='none'``, every example of ``visited`` not in ``base`` (each once);
    for a reduced candidate, each batch of ``visited`` that is not one of the base's chunks (each once)."""
    base = list(base)
    if reduction == "none":
        known = {e.key for e in base}
        return [base, [e for group in visited.groups for e in group if e.key not in known and not known.add(e.key)]]
    seen = {tuple(e.key for e in group) for group in batches(base, reduction, max_chunks)}
    keys = [tuple(e.key for e in group) for group in visited.groups]
    return [base] + [list(group) for group, key in zip(visited.groups, keys) if key not in seen and not seen.add(key)]


@dataclass(frozen=True)
class CandidateGradient:
    """A candidate's gradient as a function ``fn(inputs, labels, **params)`` that :func:`observe` calls
    (with the candidate's ``takes_params``, so a parameterised family's examples reach it)."""

    candidate: Candidate

    @property
    def takes_params(self) -> bool:
        return bool(getattr(self.candidate, "takes_params", False))

    def __call__(self, inputs, labels, **params):
        return self.candidate.gradient(inputs, labels, **params)


def _gradient_unloadable(candidate: Candidate) -> str | None:
    """Why the gradient of ``candidate`` (one that declares a gradient: no ``gradient_note``) cannot be
    loaded (an import or attribute error: a finding about the candidate, reported on its row); None if it
    loads."""
    load = getattr(candidate, "load_gradient", None)
    if load is None:
        return None if callable(getattr(candidate, "gradient", None)) else "no gradient function"
    try:
        load()
    except NoGradient as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a missing or broken gradient is the candidate's, never a crash
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"gradient could not be loaded: {type(exc).__name__}: {first[:300]}"
    return None


def score_gradient(
    candidate: Candidate,
    dtype: str,
    base: Sequence[Example],
    visited: Observations,
    cache: TruthCache,
    settings: Settings,
) -> Score:
    """The gradient row (``quantity="gradient"``) of one candidate in one dtype.

    Scored on the base examples (catalogue and corpus, in the loss's groups, so their exact gradient is
    computed once per family and dtype and shared by every candidate through ``cache``) and on every
    example the loss search visited (``visited``: the loss's observations), in one more batched gradient
    call and one more oracle call per shape; there is no second Hypothesis search (the loss search's
    examples are where the formula is stressed, and reusing them costs one vectorised call instead of a
    search per candidate). A reduced candidate is scored per chunk, as the loss (the base's chunks, and
    each batch the search drew). Each component is compared with ``oracles.evaluate(..., what="gradient")``
    by :func:`harness.metrics.compare` and classified by its example's regime. A candidate without a
    gradient (:attr:`Candidate.gradient_note`) gets an ``unsupported`` row whose ``failure`` is that note;
    one whose gradient cannot be loaded, a row whose ``failure`` says why; calls that raise are findings,
    as for the loss."""
    empty = _unscorable(candidate, dtype, settings, "gradient")
    if empty is not None:
        return empty
    note = getattr(candidate, "gradient_note", "")
    if note:  # no gradient by design (plain numpy code under audit, a metric): not scorable, as an unsupported dtype
        return _empty_score(candidate, dtype, unsupported=True, failure=note, quantity="gradient")
    missing = _gradient_unloadable(candidate)
    if missing is not None:
        return _empty_score(candidate, dtype, failure=missing, quantity="gradient")
    labels = labels_scored(candidate, settings.labels)
    if labels != "all":
        base = [e for e in base if has_labels(e, labels)]
    fn = CandidateGradient(candidate)
    units = gradient_units(base, visited, candidate.reduction, settings.max_chunks)
    obs = Observations()
    findings: list[Finding] = []
    stopped: str | None = None
    for unit in units:
        try:
            obs.extend(observe(fn, unit, cache, candidate.reduction, settings.max_chunks, quantity="gradient"))
        except Unsupported as exc:
            return _empty_score(candidate, dtype, unsupported=True, failure=str(exc), quantity="gradient")
        except CandidateFailure:
            found, stopped = _one_at_a_time(candidate, unit, cache, settings, obs, fn=fn, quantity="gradient")
            findings += found
            if stopped is not None:
                break
    stats = summarize(obs.merged(), [r.name for r in oracles.get_family(candidate.family).regimes])
    stats["counts"]["raised"] += len(findings)
    worst, behind = listed_cases(obs, candidate.family, candidate.name, dtype, candidate.reduction)
    stats["regimes"] = {name: replace(r, worst=behind.get(name)) for name, r in stats["regimes"].items()}
    return Score(family=candidate.family, candidate=candidate.name, dtype=dtype, reduction=candidate.reduction,
                 failure=stopped or _failure_summary(findings), worst=worst, source=candidate.source,
                 findings=tuple(findings[:MAX_FINDINGS]), stopped=stopped, labels=labels, quantity="gradient",
                 **stats)


def _one_at_a_time(candidate: Candidate, base: Sequence[Example], cache: TruthCache, settings: Settings,
                   obs: Observations, fn: Callable | None = None, quantity: str = "loss") -> tuple[list[Finding], str | None]:
    """After a failed call on all of ``base``: call the examples (batches, for reduced candidates) one at a
    time, probes first, adding what works to ``obs``; return a finding per failure and, when every probe
    failed alike, why it stopped there (see :func:`systematic_failure`). ``fn`` and ``quantity``: what is
    called and compared (default: the candidate's loss)."""
    units = [[e] for e in base] if candidate.reduction == "none" else batches(base, candidate.reduction, settings.max_chunks)
    findings: list[Finding] = []
    failures: list[CandidateFailure] = []
    for done, i in enumerate(_probe_first(len(units), settings.stop_after), 1):
        batch = units[i]
        try:
            obs.extend(observe(fn or candidate, batch, cache, candidate.reduction, quantity=quantity))
        except (CandidateFailure, Unsupported) as exc:
            failed = exc if isinstance(exc, CandidateFailure) else CandidateFailure(str(exc), "wrong_dtype")
            findings.append(finding(failed, batch))
            failures.append(failed)
            if getattr(failed, "stop", None):  # the audit's budget ran out, or it was interrupted
                return findings, failed.stop
        if done == settings.stop_after:
            stopped = systematic_failure(failures, done, len(units))
            if stopped is not None:
                return findings, stopped
    return findings, None


MAX_FINDINGS = 20
# Probe calls of an audit (Settings.stop_after): when every one fails the same way, the candidate x dtype
# stops there (a systematic failure, e.g. a reduced result without --reduction mean, which otherwise costs
# one failed call per catalogue example: 11 426 calls and 116 s for a Keras loss).
EARLY_STOP_CALLS = 20
# Failures that never stop early: none. Timeouts, crashes and memory exhaustion on every probe are
# systematic too (a function touching 4 GB per call otherwise fails 5628 times one call at a time).
_BOUNDED_BY_WORKER: tuple[str, ...] = ()


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
    ranked = []
    for group, comparison in zip(obs.groups, obs.comparisons):
        sev = severity(comparison)
        if reduction == "none":
            ranked.extend((float(s), e) for s, e in zip(sev, group) if s > 1.0)
        elif sev.size and sev.max() > 1.0:
            ranked.extend((float(sev.max()), e) for e in group)
    ranked.sort(key=lambda t: -t[0])
    return [e for _s, e in ranked[:count]]


def base_examples(replay: Sequence[Example], family: str, dtype: str, labels: str) -> list[Example]:
    """What every candidate of ``family`` x ``dtype`` is scored on before its search: the corpus' examples
    (``replay``, replayed first), then the boundary catalogue, those with the run's ``labels`` only."""
    return [e for e in list(replay) + catalogue(family, dtype) if has_labels(e, labels)]


# Ground truths of the cells a worker process scored last, per (family, dtype): a speed-up only (a truth
# depends on the examples alone, so a cell's figures never depend on what the process scored before). A
# few, so that a long-lived Dask worker serving many runs does not grow without end.
_CELL_CACHES: OrderedDict[tuple[str, str], TruthCache] = OrderedDict()
_CELL_CACHES_KEPT = 4
# One cell at a time per process: Hypothesis and the oracles' mpmath contexts are not thread-safe, and a
# Dask worker runs several tasks in threads unless started with --nthreads 1.
_CELL_LOCK = threading.Lock()


def score_cell(settings: Settings, family: str, candidate: str, dtype: str, replay: list[dict[str, Any]]) -> dict[str, Any]:
    """Score one cell of a campaign, (family, built-in candidate name, dtype), as a task of an executor:
    its rows of ``settings.quantities`` (:func:`score_rows`), returned as ``{"rows": [Score JSON, ...],
    "worst": [example JSON, ...]}``.

    Pure and importable, with plain data in and out (``replay``: the corpus' examples of ``family`` x
    ``dtype`` as :func:`harness.corpus.example_to_json` writes them), so a local process or a Dask worker
    computes the same figures as :func:`run_campaign` does in its own process: a cell depends only on the
    settings, the corpus and its own seed."""
    examples = [example_from_json(item, family, dtype) for item in replay]
    base = base_examples(examples, family, dtype, settings.labels)
    with _CELL_LOCK:
        cache = _CELL_CACHES.pop((family, dtype), None) or TruthCache(family, dtype)
        _CELL_CACHES[(family, dtype)] = cache
        while len(_CELL_CACHES) > _CELL_CACHES_KEPT:
            _CELL_CACHES.popitem(last=False)
        with warnings.catch_warnings():
            # A Dask worker's event loop draws from the global `random` in its own thread while Hypothesis
            # generates, which Hypothesis takes for a strategy using it: noise (its draws are its own).
            warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies")
            rows, worst = score_rows(get_candidate(family, candidate), dtype, base, cache, settings)
    return {"rows": [row.to_json() for row in rows], "worst": [example_to_json(e) for e in worst]}


def _cell_from_json(record: dict[str, Any]) -> tuple[tuple[Score, ...], list[Example]]:
    """The inverse of :func:`score_cell`'s result."""
    rows = tuple(Score.from_json(row) for row in record["rows"])
    return rows, [example_from_json(item, rows[0].family, rows[0].dtype) for item in record["worst"]] if rows else []


@dataclass
class Resume:
    """Work finished by an earlier, interrupted run with the same settings (read from its journal):
    scores and their corpus additions per (family, candidate, dtype, quantity) (``Score.key``), curves and
    error maps per (family, dtype)."""

    scores: dict[tuple[str, str, str], tuple[Score, list[Example]]] = field(default_factory=dict)
    curves: dict[tuple[str, str], list[Curve]] = field(default_factory=dict)
    maps: dict[tuple[str, str], ErrorMap] = field(default_factory=dict)


def _chosen(settings: Settings, family: str, extra: Sequence[Candidate]) -> list[Candidate]:
    return candidates(family=family, names=settings.candidates) + [c for c in extra if c.family == family]


def _declared(candidates_: list[Candidate], dtype: str) -> list[Candidate]:
    """The candidates declared for ``dtype`` (the ``_upcast`` variants exist for float16/bfloat16 only; a
    candidate declared for a dtype that rejects it when called still gets its ``unsupported`` row)."""
    return [c for c in candidates_ if dtype in c.dtypes]


def _plan(settings: Settings, extra: Sequence[Candidate]) -> list[tuple[str, str, Candidate]]:
    """Every (family, dtype, candidate) to score, in run order; bad family or dtype names raise here."""
    plan: list[tuple[str, str, Candidate]] = []
    for family in settings.families:
        oracles.get_family(family)
        for dtype in settings.dtypes:
            oracles.resolve_format(dtype)
            plan.extend((family, dtype, c) for c in _declared(_chosen(settings, family, extra), dtype))
    return plan


def cell_count(settings: Settings) -> int:
    """How many (family, candidate, dtype) cells a campaign of ``settings`` scores (built-in candidates);
    bad family or dtype names raise, as :func:`run_campaign` would."""
    return len(_plan(settings, ()))


@dataclass
class _Work:
    """What a campaign has done so far: scores and curves in run order, the new corpus, and per (family,
    dtype) the shared ground truth and the examples every candidate is scored on."""

    settings: Settings
    corpus: dict[tuple[str, str], list[Example]]
    progress: Progress
    resume: Resume
    extra: Sequence[Candidate]
    scores: list[Score] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    maps: list[ErrorMap] = field(default_factory=list)
    new_corpus: dict[tuple[str, str], list[Example]] = field(default_factory=dict)
    caches: dict[tuple[str, str], tuple[TruthCache, list[Example]]] = field(default_factory=dict)

    def base(self, family: str, dtype: str) -> tuple[TruthCache, list[Example]]:
        if (family, dtype) not in self.caches:
            base = base_examples(self.corpus.get((family, dtype), []), family, dtype, self.settings.labels)
            self.caches[(family, dtype)] = (TruthCache(family, dtype), base)
        return self.caches[(family, dtype)]

    def score(self, family: str, dtype: str, candidate: Candidate) -> None:
        """Score one candidate's rows (or take them from ``resume`` when every one of ``settings.quantities``
        is finished there) and keep the loss's worst examples."""
        done = self.finished(family, dtype, candidate.name)
        if done is not None:
            rows, worst = done
        else:
            cache, base = self.base(family, dtype)
            rows, worst = score_rows(candidate, dtype, base, cache, self.settings)
            for row in rows:
                self.progress.scored(row, worst if row.quantity == "loss" else [])
        self.keep(family, dtype, rows, worst)

    def finished(self, family: str, dtype: str, name: str) -> tuple[tuple[Score, ...], list[Example]] | None:
        """The rows of one cell taken from ``resume`` (every one of ``settings.quantities``), else None."""
        done = [self.resume.scores.get((family, name, dtype, q)) for q in self.settings.quantities]
        if not all(d is not None for d in done):
            return None
        return tuple(score for score, _ in done), [e for _, w in done for e in w]

    def score_on(self, executor: Executor, plan: Sequence[tuple[str, str, Candidate]]) -> None:
        """Score every cell of ``plan`` not in ``resume`` as a task of ``executor`` (:func:`score_cell`),
        journalling each as it finishes, and keep them all in plan order, as :meth:`score` would have.
        Asked to stop (or interrupted), it cancels the cells not finished and keeps those that are."""
        if self.extra:
            raise ValueError("an executor scores built-in candidates only (a task names its candidate);"
                             " score functions under audit without one")
        finished: dict[tuple[str, str, str], tuple[tuple[Score, ...], list[Example]]] = {}
        cells: dict[Future, tuple[str, str, Candidate]] = {}
        replays: dict[tuple[str, str], list[dict[str, Any]]] = {}
        try:
            for family, dtype, candidate in plan:
                if self.finished(family, dtype, candidate.name) is not None:
                    self.progress.step(f"{family} {candidate.name} {dtype}")
                    continue
                if (family, dtype) not in replays:
                    replays[(family, dtype)] = [example_to_json(e) for e in self.corpus.get((family, dtype), [])]
                future = executor.submit(score_cell, self.settings, family, candidate.name, dtype, replays[(family, dtype)])
                cells[future] = (family, dtype, candidate)
            order = {future: i for i, future in enumerate(cells)}
            pending = set(cells)
            while pending:
                if self.progress.stop():
                    raise KeyboardInterrupt
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=order.__getitem__):  # several at once: in plan order
                    family, dtype, candidate = cells[future]
                    rows, worst = _cell_from_json(future.result())
                    self.progress.step(f"{family} {candidate.name} {dtype}")
                    for row in rows:
                        self.progress.scored(row, worst if row.quantity == "loss" else [])
                    finished[(family, candidate.name, dtype)] = (rows, worst)
        finally:
            for future in cells:
                future.cancel()
            for family, dtype, candidate in plan:
                done_cell = self.finished(family, dtype, candidate.name) or finished.get((family, candidate.name, dtype))
                if done_cell is not None:
                    self.keep(family, dtype, *done_cell)

    def keep(self, family: str, dtype: str, rows: Sequence[Score], worst: list[Example]) -> None:
        """Add a cell's finished rows to the result and its worst examples to the new corpus."""
        self.scores.extend(rows)
        kept = self.new_corpus.setdefault((family, dtype), list(self.corpus.get((family, dtype), [])))
        known = {e.key for e in kept}
        kept.extend(e for e in worst if e.key not in known and not known.add(e.key))

    def sweep(self, family: str, dtype: str) -> None:
        """Sweep one family x dtype and map its error (or take finished ones from ``resume``)."""
        swept = self.resume.curves.get((family, dtype))
        if swept is None:
            swept = sweep(family, dtype, _chosen(self.settings, family, self.extra), self.settings.labels)
            self.progress.swept(family, dtype, swept)
        self.curves.extend(swept)
        mapped = self.resume.maps.get((family, dtype))
        if mapped is None:
            mapped = error_map(family, dtype, _chosen(self.settings, family, self.extra), self.settings.labels)
            if mapped is not None:
                self.progress.mapped(mapped)
        if mapped is not None:
            self.maps.append(mapped)


def run_campaign(
    settings: Settings = Settings(),
    corpus: dict[tuple[str, str], list[Example]] | None = None,
    progress: Progress | None = None,
    extra: Sequence[Candidate] = (),
    resume: Resume | None = None,
    executor: Executor | None = None,
) -> tuple[RunResult, dict[tuple[str, str], list[Example]]]:
    """Run the campaign; return the result and the new corpus (worst examples per family and dtype).

    ``extra``: candidates beyond the built-ins named in ``settings.candidates`` (e.g. a user's function
    under audit), scored the same way for each of their families in ``settings.families``. The corpus
    given is replayed first. ``resume``: finished work of an interrupted run, taken as is (every score
    depends only on the settings, the corpus given and its own seed, so the figures equal those of an
    uninterrupted run). ``progress.scored``/``progress.swept`` see each piece of work as it finishes (the
    CLI journals them). A KeyboardInterrupt ends the campaign early with ``partial=True`` and every
    finished score kept. ``executor``: score the (family, candidate, dtype) cells as its tasks
    (:func:`score_cell`; e.g. a Dask cluster's, :func:`harness._executors.executor_for`), built-in candidates
    only, with the same figures; None scores them one after the other in this process. The sweeps and
    error maps run here either way.
    """
    progress = progress or Progress()
    work = _Work(settings, corpus or {}, progress, resume or Resume(), extra)
    started = time.perf_counter()
    plan = _plan(settings, extra)
    progress.total(len(plan) + len(settings.families) * len(settings.dtypes))
    partial = False
    try:
        if executor is None:
            for family, dtype, candidate in plan:
                if progress.stop():
                    raise KeyboardInterrupt
                progress.step(f"{family} {candidate.name} {dtype}")
                work.score(family, dtype, candidate)
        else:
            work.score_on(executor, plan)
        for family in settings.families:
            for dtype in settings.dtypes:
                if progress.stop():
                    raise KeyboardInterrupt
                progress.step(f"{family} {dtype} sweep")
                work.sweep(family, dtype)
    except KeyboardInterrupt:
        partial = True
    result = RunResult(
        settings=settings.to_json(),
        provenance=provenance(settings.seed),
        scores=tuple(work.scores),
        wall_seconds=time.perf_counter() - started,
        partial=partial,
        curves=tuple(work.curves),
        error_maps=tuple(work.maps),
    )
    return result, work.new_corpus
