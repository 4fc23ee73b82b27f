"""Hypothesis-driven search for a candidate's worst error, and shrinking it to a minimal reproducer.

Two seeded Hypothesis runs per family x candidate x dtype:

1. *explore*: random examples (generate phase) then ``hypothesis.target`` hill-climbing towards the largest
   severity (the ULP error; non-finite mistakes map to a large finite score, as ``target`` requires);
2. *shrink*: the same seeded run, now failing on any example at least half as severe as the worst seen,
   which Hypothesis shrinks to a minimal example. A call budget bounds the shrinking; examples already
   seen to fail keep failing, so the final replay is consistent.

Both runs are deterministic for a given seed and candidate (no deadline, no database).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis import target
from hypothesis.errors import HypothesisException

from . import strategies
from .metrics import severity
from .scoring import CHUNK, CandidateFailure, Observations, TruthCache, finding, observe

__all__ = ["SearchResult", "search"]

_SHRINK_CALLS = 100
_MAX_CLASSES = 16  # XLA compiles once per shape: keep the searched class counts few


@dataclass
class SearchResult:
    observations: Observations
    minimal: Observations | None  # the shrunk reproducer's observation (one group), if one was found
    findings: list  # Finding per example on which the candidate raised, hung, crashed or returned garbage


class _Found(Exception):
    def __init__(self, obs: Observations) -> None:
        super().__init__("severe example")
        self.obs = obs


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
    found = Observations()
    state: dict[str, Any] = {"worst": 0.0}
    findings: dict[tuple, Any] = {}
    strategy = _strategy(family, dtype, reduction, labels)

    def evaluate(batch: list) -> tuple[float, Observations | None]:
        try:
            obs = observe(fn, batch, cache, reduction)
        except CandidateFailure as exc:
            findings.setdefault(tuple(e.key for e in batch), finding(exc, batch))
            return 2.0**80, None
        return float(max(severity(c).max(initial=0.0) for c in obs.comparisons)), obs

    @hypothesis_seed(seed)
    @_settings(max_examples, [Phase.generate, Phase.target])
    @given(strategy)
    def explore(batch: list) -> None:
        score, obs = evaluate(batch)
        if obs is not None:
            found.extend(obs)
        state["worst"] = max(state["worst"], score)
        target(score, label="severity")

    explore()
    minimal = None
    threshold = state["worst"] / 2
    if shrink and state["worst"] > 1.0:
        failing: set = set()
        calls = {"n": 0}

        @hypothesis_seed(seed)
        @_settings(max_examples, [Phase.generate, Phase.target, Phase.shrink])
        @given(strategy)
        def shrink_run(batch: list) -> None:
            key = tuple(e.key for e in batch)
            calls["n"] += 1
            if key not in failing and calls["n"] > max_examples + _SHRINK_CALLS:
                return
            score, obs = evaluate(batch)
            if score >= threshold and obs is not None:
                failing.add(key)
                raise _Found(obs)

        try:
            shrink_run()
        except _Found as exc:
            minimal = exc.obs
        except (HypothesisException, ExceptionGroup):  # e.g. a flaky replay: no reproducer rather than a wrong one
            minimal = None
    return SearchResult(found, minimal, list(findings.values()))
