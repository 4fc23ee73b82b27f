"""Scoring: run a candidate on examples, compare with the oracle's ground truth, keep what a report needs.

Examples of one shape are evaluated together: one oracle call per group (shared by every candidate through
:class:`TruthCache`) and one vectorized candidate call. A reduced candidate (``reduction`` mean/sum) is
scored on consecutive chunks of :data:`CHUNK` examples, each chunk one batch, against the exact reduced loss.
"""

from __future__ import annotations

import math
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

import oracles
from oracles import Truth

from ._records import CandidateFailure, Finding, WorstCase
from ._values import float_hex
from .candidates import Unsupported
from .metrics import Comparison, compare, severity
from .strategies import Example

# CandidateFailure is imported for its raisers' old import path; it lives in harness._records (public: harness.records).
__all__ = ["CHUNK", "MAX_CHUNKS", "AUDIT_MAX_CHUNKS", "TruthCache", "Observations", "observe", "call_candidate", "finding", "worst_cases", "replay_command"]

CHUNK = 8
from .options import MAX_CHUNKS  # noqa: E402  (declared with Settings, whose default it is)
# An audit scores a reduced function on every chunk of the catalogue (704 for sigmoid_ce: 5628 examples),
# not 64: the whole catalogue costs 0.74 s in process against 0.07 s (measured, see the README).
AUDIT_MAX_CHUNKS = 1024


@dataclass
class TruthCache:
    """Ground truth of example groups for one family and dtype, computed once and shared by candidates."""

    family: str
    dtype: str
    _store: dict[tuple, Truth] = field(default_factory=dict)

    def truth(self, examples: Sequence[Example], reduction: str) -> Truth:
        key = (reduction, tuple(e.key for e in examples))
        hit = self._store.get(key)
        if hit is None:
            fam = oracles.get_family(self.family)
            x = np.stack([e.inputs for e in examples])
            z = np.stack([e.labels for e in examples])
            hit = oracles.evaluate(self.family, **{fam.input_name: x}, labels=z, dtype=self.dtype, reduction=reduction,
                                   params=examples[0].param_values)  # a group shares its parameters (batches)
            self._store[key] = hit
        return hit


@dataclass
class Observations:
    """What one candidate did on a list of example groups: comparison arrays plus, per value, the group."""

    groups: list[tuple[Example, ...]] = field(default_factory=list)
    got: list[np.ndarray] = field(default_factory=list)
    truths: list[Truth] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    def merged(self) -> Comparison:
        if not self.comparisons:
            empty, none = np.zeros(0), np.zeros(0, dtype=bool)
            return Comparison(empty, empty, np.zeros(0, dtype="<U1"), none, none)
        return Comparison(
            ulp=np.concatenate([c.ulp for c in self.comparisons]),
            bits=np.concatenate([c.bits for c in self.comparisons]),
            outcome=np.concatenate([c.outcome for c in self.comparisons]),
            flushed=np.concatenate([c.flushed for c in self.comparisons]),
            finite_input=np.concatenate([c.finite_input for c in self.comparisons]),
        )

    def extend(self, other: "Observations") -> None:
        self.groups += other.groups
        self.got += other.got
        self.truths += other.truths
        self.comparisons += other.comparisons


def batches(examples: Sequence[Example], reduction: str, max_chunks: int = MAX_CHUNKS) -> list[tuple[Example, ...]]:
    """The calls to make: examples of one shape together; for reduced candidates, chunks of CHUNK examples
    (at most ``max_chunks`` of them, taken at an even stride, since each is a separate call and oracle
    evaluation; an audit passes :data:`AUDIT_MAX_CHUNKS`)."""
    by_shape: dict[tuple, list[Example]] = {}
    for e in examples:
        by_shape.setdefault((e.inputs.shape, e.labels.shape, e.params), []).append(e)
    out: list[tuple[Example, ...]] = []
    for same in by_shape.values():
        if reduction == "none":
            out.append(tuple(same))
        else:
            out.extend(tuple(same[i : i + CHUNK]) for i in range(0, len(same), CHUNK))
    if reduction != "none" and len(out) > max_chunks:
        stride = len(out) / max_chunks
        out = [out[int(i * stride)] for i in range(max_chunks)]
    return out


def call_candidate(fn: Callable[..., Any], x: np.ndarray, z: np.ndarray, expected: tuple, dtype: str,
                   params: dict | None = None) -> np.ndarray:
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # libraries' warnings about the inputs are not the harness's output
            result = fn(x, z, **params) if params else fn(x, z)
    except (Unsupported, CandidateFailure):
        raise
    except Exception as exc:  # the candidate's own failure is a finding, never the harness's
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CandidateFailure(f"raised {type(exc).__name__}: {first[:300]}", "raised") from exc
    if hasattr(result, "numpy") and not isinstance(result, np.ndarray):
        result = result.numpy()
    if not isinstance(result, (np.ndarray, np.generic)):
        raise CandidateFailure(f"returned {type(result).__name__}, not a numpy array", "not_an_array")
    result = np.asarray(result)
    if result.shape != expected:
        raise CandidateFailure(f"returned shape {result.shape}, expected {expected}", "wrong_shape")
    want = oracles.resolve_format(dtype).numpy_dtype
    if result.dtype != want:
        raise CandidateFailure(f"returned dtype {result.dtype.name} for {dtype} inputs (a silent cast)", "wrong_dtype")
    return result


def observe(
    fn: Callable[[np.ndarray, np.ndarray], Any],
    examples: Sequence[Example],
    cache: TruthCache,
    reduction: str = "none",
    max_chunks: int = MAX_CHUNKS,
) -> Observations:
    """Run ``fn`` on the examples (grouped, see :func:`batches`) and compare with the ground truth.

    Raises :class:`harness.candidates.Unsupported` (dtype rejected) or :class:`~harness.records.CandidateFailure`.
    """
    obs = Observations()
    takes_params = getattr(fn, "takes_params", False)
    for group in batches(examples, reduction, max_chunks):
        if group[0].params and not takes_params:
            continue  # examples at other parameter values: only for candidates that take the parameters
        truth = cache.truth(group, reduction)
        x = np.stack([e.inputs for e in group])
        z = np.stack([e.labels for e in group])
        got = call_candidate(fn, x, z, truth.rounded.shape, cache.dtype, group[0].param_values)
        obs.groups.append(group)
        obs.got.append(got)
        obs.truths.append(truth)
        obs.comparisons.append(compare(truth, got))
    return obs


def finding(exc: CandidateFailure, examples: Sequence[Example]) -> Finding:
    """A failure on these examples (one, or a reduced batch) as a report record."""
    inputs = tuple(float_hex(v) for e in examples for v in np.ravel(e.inputs))
    labels = tuple(t for e in examples for t in _labels_text(e.labels))
    return Finding(exc.kind, str(exc), inputs, labels)


def _labels_text(labels: np.ndarray) -> tuple[str, ...]:
    if labels.dtype.kind in "iu":
        return tuple(str(int(v)) for v in np.ravel(labels))
    return tuple(float_hex(v) for v in np.ravel(labels))


def replay_command(family: str, candidate: str, dtype: str, inputs: np.ndarray, labels: np.ndarray, reduction: str = "none",
                   params: dict | None = None) -> str:
    """One command that recomputes the candidate and the exact value on these inputs (with ``--param
    name=value`` for each of the family's parameters: ``params``, defaults for the rest)."""
    fam = oracles.get_family(family)
    rows = ";".join(",".join(float_hex(v) for v in row) for row in np.atleast_2d(inputs)) if inputs.ndim > 1 else ",".join(float_hex(v) for v in np.ravel(inputs))
    label_rows = ";".join(",".join(_labels_text(row)) for row in np.atleast_2d(labels)) if labels.ndim > 1 else ",".join(_labels_text(labels))
    words = ["lossfuzz", "exact", family, f"--{fam.input_name}={rows}", f"--labels={label_rows}", "--dtype", dtype]
    if reduction != "none":
        words += ["--reduction", reduction]
    for name, value in fam.check_params(params).items():
        words += ["--param", f"{name}={value:g}" if float(f"{value:g}") == value else f"{name}={value!r}"]
    words += ["--candidate", candidate]
    return shlex.join(words)


def worst_cases(obs: Observations, family: str, candidate: str, dtype: str, reduction: str, count: int = 10) -> tuple[WorstCase, ...]:
    """The ``count`` worst values (by :func:`harness.metrics.severity`), distinct inputs, as reproducers."""
    ranked: list[tuple[float, int, int]] = []
    for g, comparison in enumerate(obs.comparisons):
        sev = severity(comparison)
        for i in np.flatnonzero(sev > 0.5):
            ranked.append((float(sev[i]), g, int(i)))
    ranked.sort(key=lambda t: -t[0])
    out: list[WorstCase] = []
    seen: set = set()
    for _sev, g, i in ranked:
        if len(out) >= count:
            break
        group, truth, got, comparison = obs.groups[g], obs.truths[g], obs.got[g], obs.comparisons[g]
        if reduction == "none":
            inputs, labels = group[i].inputs, group[i].labels
        else:
            inputs, labels = np.stack([e.inputs for e in group]), np.stack([e.labels for e in group])
        key = (inputs.tobytes(), labels.tobytes(), group[i if reduction == "none" else 0].params)
        if key in seen:
            continue
        seen.add(key)
        ulp = float(comparison.ulp[i])
        out.append(
            WorstCase(
                inputs=tuple(float_hex(v) for v in np.ravel(inputs)),
                labels=_labels_text(labels),
                got=float_hex(np.ravel(got)[i]),
                exact=oracles.format_exact(truth.exact_value(i)),  # Ziv path, only for the cases shown
                rounded=float_hex(np.ravel(truth.rounded)[i]),
                ulp=None if math.isnan(ulp) else ulp,
                outcome=str(comparison.outcome[i]) if not comparison.flushed[i] else "flushed_subnormal",
                replay=replay_command(family, candidate, dtype, inputs, labels, reduction, group[i if reduction == "none" else 0].param_values),
            )
        )
    return tuple(out)
