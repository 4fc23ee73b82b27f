"""Hypothesis-driven search for a candidate's worst error, and shrinking it to a minimal reproducer.

Two seeded Hypothesis runs per family x candidate x dtype:

1. *explore*: random examples (generate phase) then ``hypothesis.target`` hill-climbing towards the largest
   severity (the ULP error; non-finite mistakes map to a large finite score, as ``target`` requires);
2. *shrink*: the same seeded run, now failing on any example at least half as severe as the worst seen,
   which Hypothesis shrinks to a minimal example. A call budget bounds the shrinking; examples already
   seen to fail keep failing, so the final replay is consistent.

Both runs are deterministic for a given seed and candidate (no deadline, no database, and none of the
constants Hypothesis would take from the source of the process's "local" modules: see
:func:`_no_local_constants`).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis import target
from hypothesis.errors import HypothesisException

from . import strategies
from ._records import CandidateFailure, Finding
from .metrics import severity
from .scoring import CHUNK, Observations, TruthCache, finding, observe

__all__ = ["SearchResult", "search"]

_SHRINK_CALLS = 100
_MAX_CLASSES = 16  # XLA compiles once per shape: keep the searched class counts few


@dataclass
class SearchResult:
    observations: Observations
    minimal: Observations | None  # the shrunk reproducer's observation (one group), if one was found
    findings: list[Finding]  # per example on which the candidate raised, hung, crashed or returned garbage


class _Found(Exception):
    def __init__(self, obs: Observations) -> None:
        super().__init__("severe example")
        self.obs = obs


_CONSTANTS_LOCK = threading.Lock()
_constants_users = 0  # searches running (threads), and Hypothesis's own function while they do
_local_constants_getter: Callable[[], Any] | None = None


@contextlib.contextmanager
def _no_local_constants() -> Iterator[None]:
    """Hypothesis (6.131 on) also draws numbers found in the source of the *local* modules imported at the
    time: every module outside the standard library and site-packages, so lossfuzz itself when installed
    editable, an audited module, whatever the process imported before. The examples of a seed then depended
    on the process's import history: ``lossfuzz run`` (which imports its commands) drew others than
    ``run_campaign`` called from Python, or a Dask worker scoring the same cell. Within this block
    Hypothesis draws from its own built-in constants only (local constants are empty; its cache of the
    allowed ones is cleared on the way in and out). A no-op on Hypothesis versions without local constants."""
    global _constants_users, _local_constants_getter
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants

        cache = providers.CONSTANTS_CACHE
        providers._get_local_constants  # noqa: B018 - present only where Hypothesis has local constants
    except (ImportError, AttributeError):
        providers = None
    if providers is None:
        yield
        return
    with _CONSTANTS_LOCK:
        if _constants_users == 0:
            _local_constants_getter = providers._get_local_constants
            empty = Constants()
            providers._get_local_constants = lambda: empty
            cache.cache.clear()
        _constants_users += 1
    try:
        yield
    finally:
        with _CONSTANTS_LOCK:
            _constants_users -= 1
            if _constants_users == 0:
                providers._get_local_constants = _local_constants_getter
                cache.cache.clear()


def _strategy(family: str, dtype: str, reduction: str, labels: str = "all") -> st.SearchStrategy[Any]:
    def one(**kw: Any) -> st.SearchStrategy[Any]:
        drawn = strategies.examples(family, dtype, soft=labels != "hard", **kw)
        return drawn if labels != "soft" else drawn.filter(lambda e: strategies.has_labels(e, "soft"))

    if reduction == "none":
        return one(max_classes=_MAX_CLASSES).map(lambda e: [e])
    # A reduced candidate takes a batch: up to CHUNK examples of one shape.
    return st.integers(1, 8).flatmap(lambda k: st.lists(one(classes=k), min_size=1, max_size=CHUNK))


def _settings(max_examples: int, phases: list[Phase]) -> settings:
    return settings(
        max_examples=max_examples,
        phases=phases,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
    )


def _evaluate(fn: Callable[..., Any], cache: TruthCache, reduction: str, findings: dict[tuple, Finding],
              batch: list) -> tuple[float, Observations | None]:
    """The severity of one drawn batch (the worst value's) and its observation; a failed call is a finding
    (kept once per batch) and the most severe score (2**80), with no observation."""
    try:
        obs = observe(fn, batch, cache, reduction)
    except CandidateFailure as exc:
        findings.setdefault(tuple(e.key for e in batch), finding(exc, batch))
        return 2.0**80, None
    return float(max(severity(c).max(initial=0.0) for c in obs.comparisons)), obs


def _explore(evaluate: Callable[[list], tuple[float, Observations | None]], strategy: st.SearchStrategy[Any],
             seed: int, max_examples: int) -> tuple[Observations, float]:
    """The explore run: every observation, and the largest severity seen."""
    found = Observations()
    worst = [0.0]

    @hypothesis_seed(seed)
    @_settings(max_examples, [Phase.generate, Phase.target])
    @given(strategy)
    def explore(batch: list) -> None:
        score, obs = evaluate(batch)
        if obs is not None:
            found.extend(obs)
        worst[0] = max(worst[0], score)
        target(score, label="severity")

    explore()
    return found, worst[0]


def _shrink(evaluate: Callable[[list], tuple[float, Observations | None]], strategy: st.SearchStrategy[Any],
            seed: int, max_examples: int, threshold: float) -> Observations | None:
    """The shrink run: the minimal example at least ``threshold`` severe (its observation), or None."""
    failing: set = set()
    calls = [0]

    @hypothesis_seed(seed)
    @_settings(max_examples, [Phase.generate, Phase.target, Phase.shrink])
    @given(strategy)
    def shrink_run(batch: list) -> None:
        key = tuple(e.key for e in batch)
        calls[0] += 1
        if key not in failing and calls[0] > max_examples + _SHRINK_CALLS:
            return
        score, obs = evaluate(batch)
        if score >= threshold and obs is not None:
            failing.add(key)
            raise _Found(obs)

    try:
        shrink_run()
    except _Found as exc:
        return exc.obs
    except (HypothesisException, ExceptionGroup):  # e.g. a flaky replay: no reproducer rather than a wrong one
        return None
    return None


def search(
    fn: Callable[..., Any],
    family: str,
    dtype: str,
    cache: TruthCache,
    *,
    reduction: str = "none",
    seed: int = 0,
    max_examples: int = 100,
    shrink: bool = True,
    labels: str = "all",
) -> SearchResult:
    """Explore with ``max_examples`` Hypothesis examples, then shrink the worst (see the module docstring).
    ``labels``: the label set drawn from (:data:`harness.strategies.LABEL_SETS`)."""
    findings: dict[tuple, Finding] = {}
    strategy = _strategy(family, dtype, reduction, labels)
    evaluate = partial(_evaluate, fn, cache, reduction, findings)
    with _no_local_constants():
        found, worst = _explore(evaluate, strategy, seed, max_examples)
        minimal = _shrink(evaluate, strategy, seed, max_examples, worst / 2) if shrink and worst > 1.0 else None
    return SearchResult(found, minimal, list(findings.values()))
