"""Scoring: run a candidate on examples, compare with the oracle's ground truth, keep what a report needs.

Examples of one shape are evaluated together: one oracle call per group (shared by every candidate through
:class:`TruthCache`) and one vectorized candidate call. A reduced candidate (``reduction`` mean/sum) is
scored on consecutive chunks of :data:`CHUNK` examples, each chunk one batch, against the exact reduced loss.

The same functions score a gradient (``quantity="gradient"``): the candidate's gradient with respect to its
inputs against ``oracles.evaluate(..., what="gradient")`` (cached beside the loss), one value per component
(the inputs' shape; a reduced candidate's: the gradient of its mean or sum over the chunk). Each component
takes its example's regime, decided by the exact loss as for the loss row.
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

from ._records import NON_FINITE_MISTAKES, SIGN_MISTAKES, CandidateFailure, Finding, WorstCase
from ._values import float_hex
from .candidates import Unsupported
from .metrics import Comparison, sign_marks, compare, example_regimes, severity
from .strategies import Example

# CandidateFailure is imported for its raisers' old import path; it lives in harness._records (public: harness.records).
__all__ = ["CHUNK", "MAX_CHUNKS", "AUDIT_MAX_CHUNKS", "TruthCache", "Observations", "observe", "call_candidate", "finding", "worst_cases", "listed_cases", "replay_command"]

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

    def truth(self, examples: Sequence[Example], reduction: str, quantity: str = "loss") -> Truth:
        """The exact ``quantity`` (``loss`` or ``gradient``, :data:`~harness._records.QUANTITIES`) of the
        examples stacked (a group of one shape and parameters), computed on first request."""
        key = (reduction, quantity, tuple(e.key for e in examples))
        hit = self._store.get(key)
        if hit is None:
            fam = oracles.get_family(self.family)
            x = np.stack([e.inputs for e in examples])
            z = np.stack([e.labels for e in examples])
            hit = oracles.evaluate(self.family, **{fam.input_name: x}, labels=z, dtype=self.dtype, reduction=reduction,
                                   what=quantity, params=examples[0].param_values)  # a group shares its parameters
            self._store[key] = hit
        return hit

    def regimes(self, examples: Sequence[Example], reduction: str) -> np.ndarray:
        """The regime of each example (one for a reduced batch), from the exact loss (cached as the loss's)."""
        return example_regimes(self.truth(examples, reduction))


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
            return Comparison(empty, empty, np.zeros(0, dtype=np.uint8), none, none)
        return Comparison(
            ulp=np.concatenate([c.ulp for c in self.comparisons]),
            bits=np.concatenate([c.bits for c in self.comparisons]),
            codes=np.concatenate([c.codes for c in self.comparisons]),
            flushed=np.concatenate([c.flushed for c in self.comparisons]),
            finite_input=np.concatenate([c.finite_input for c in self.comparisons]),
            regime=None if any(c.regime is None for c in self.comparisons)
            else np.concatenate([c.regime for c in self.comparisons]),
            **{name: np.concatenate([sign_marks(c, name) for c in self.comparisons]) for name in SIGN_MISTAKES},
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
    quantity: str = "loss",
) -> Observations:
    """Run ``fn`` on the examples (grouped, see :func:`batches`) and compare with the ground truth of
    ``quantity``: ``fn`` computes the loss, or for ``quantity="gradient"`` the gradient (inputs' shape),
    each component then classified by its example's regime (:meth:`TruthCache.regimes`).

    Raises :class:`harness.candidates.Unsupported` (dtype rejected) or :class:`~harness.records.CandidateFailure`.
    """
    obs = Observations()
    takes_params = getattr(fn, "takes_params", False)
    for group in batches(examples, reduction, max_chunks):
        if group[0].params and not takes_params:
            continue  # examples at other parameter values: only for candidates that take the parameters
        truth = cache.truth(group, reduction, quantity)
        x = np.stack([e.inputs for e in group])
        z = np.stack([e.labels for e in group])
        got = call_candidate(fn, x, z, truth.rounded.shape, cache.dtype, group[0].param_values)
        regimes = cache.regimes(group, reduction) if quantity == "gradient" else None
        obs.groups.append(group)
        obs.got.append(got)
        obs.truths.append(truth)
        obs.comparisons.append(compare(truth, got, regimes))
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
                   params: dict | None = None, quantity: str = "loss") -> str:
    """One command that recomputes the candidate and the exact value on these inputs (with ``--param
    name=value`` for each of the family's parameters: ``params``, defaults for the rest; with
    ``--gradient`` for ``quantity="gradient"``: the candidate's gradient beside the exact one)."""
    fam = oracles.get_family(family)
    rows = ";".join(",".join(float_hex(v) for v in row) for row in np.atleast_2d(inputs)) if inputs.ndim > 1 else ",".join(float_hex(v) for v in np.ravel(inputs))
    label_rows = ";".join(",".join(_labels_text(row)) for row in np.atleast_2d(labels)) if labels.ndim > 1 else ",".join(_labels_text(labels))
    words = ["lossfuzz", "exact", family, f"--{fam.input_name}={rows}", f"--labels={label_rows}", "--dtype", dtype]
    if reduction != "none":
        words += ["--reduction", reduction]
    for name, value in fam.check_params(params).items():
        words += ["--param", f"{name}={value:g}" if float(f"{value:g}") == value else f"{name}={value!r}"]
    if quantity == "gradient":
        words.append("--gradient")
    words += ["--candidate", candidate]
    return shlex.join(words)


def worst_cases(obs: Observations, family: str, candidate: str, dtype: str, reduction: str, count: int = 10) -> tuple[WorstCase, ...]:
    """The worst values as reproducers (see :func:`listed_cases`)."""
    return listed_cases(obs, family, candidate, dtype, reduction, count)[0]


def listed_cases(obs: Observations, family: str, candidate: str, dtype: str, reduction: str,
                 count: int = 10) -> tuple[tuple[WorstCase, ...], dict[str, WorstCase]]:
    """The worst values of ``obs`` as reproducers, and the reproducer behind each regime's figure.

    The list: at most ``count`` values with an error above 0.5 ULP or no ULP number (by
    :func:`harness.metrics.severity`, worst first), distinct inputs. Whatever ranks where, it holds for
    every regime the example behind its ``max_ulp`` (when above 0.5 ULP) and its first non-finite mistake
    (if any): so nan results on ±inf inputs, which all rank alike at the top, never crowd out the finite
    worst case of a regime, nor that of the whole score (the largest of the regimes'). The rest of the list
    is filled by severity. Per regime (a dict in order of first appearance), as
    :attr:`~harness.records.RegimeScore.worst`: the example behind its ``max_ulp`` (the first with that
    error), unless that is at most 0.5 ULP and the regime has a non-finite mistake, or no example has a ULP
    number: then its first non-finite mistake. An unclassified ``obs`` gives ``{}``."""
    if not obs.comparisons:
        return (), {}
    sev = np.concatenate([severity(c) for c in obs.comparisons])
    ulp = np.concatenate([c.ulp for c in obs.comparisons])
    group = np.concatenate([np.full(c.ulp.size, g) for g, c in enumerate(obs.comparisons)])
    local = np.concatenate([np.arange(c.ulp.size) for c in obs.comparisons])
    merged_regime = obs.merged().regime
    non_finite = np.concatenate([c.has(*NON_FINITE_MISTAKES) for c in obs.comparisons])
    behind: dict[str, int] = {}  # regime -> flat index of its worst case
    must: list[int] = []
    names, first = (np.zeros(0), np.zeros(0, int)) if merged_regime is None else np.unique(merged_regime, return_index=True)
    for _first, name in sorted(zip(first.tolist(), names.tolist())):
        members = np.flatnonzero(merged_regime == name)
        measured = members[~np.isnan(ulp[members])]
        mistakes = members[non_finite[members]]
        top = int(measured[np.argmax(ulp[measured])]) if measured.size else None
        if top is not None and ulp[top] > 0.5:
            must.append(top)
        if mistakes.size:
            must.append(int(mistakes[0]))
        if top is not None and (ulp[top] > 0.5 or not mistakes.size):
            behind[name] = top
        elif mistakes.size:
            behind[name] = int(mistakes[0])
    ranked = np.flatnonzero(sev > 0.5)
    ranked = ranked[np.argsort(-sev[ranked], kind="stable")]
    made: dict[int, WorstCase] = {}

    def case(k: int) -> WorstCase:
        if k not in made:
            made[k] = _worst_case(obs, int(group[k]), int(local[k]), family, candidate, dtype, reduction)
        return made[k]

    chosen: list[int] = []
    seen: set = set()
    mandatory = list(dict.fromkeys(must))
    for position, k in enumerate(mandatory + ranked.tolist()):
        if position >= len(mandatory) and len(chosen) >= count:
            break
        key = _example_key(obs, int(group[k]), int(local[k]), reduction)
        if key not in seen:
            seen.add(key)
            chosen.append(k)
    order = {k: i for i, k in enumerate(ranked.tolist())}
    chosen.sort(key=lambda k: (-sev[k], order.get(k, len(order))))
    return tuple(case(k) for k in chosen), {name: case(k) for name, k in behind.items()}


def _example_index(obs: Observations, g: int, i: int) -> int:
    """The example of group ``g`` behind its value ``i``: ``i`` itself for a loss, ``i // K`` for a gradient
    whose examples have ``K`` components each (reduction none)."""
    per = max(obs.truths[g].rounded.size // max(len(obs.groups[g]), 1), 1)
    return i // per


def _example_key(obs: Observations, g: int, i: int, reduction: str) -> tuple:
    group = obs.groups[g]
    if reduction == "none":
        i = _example_index(obs, g, i)
        return (group[i].inputs.tobytes(), group[i].labels.tobytes(), group[i].params)
    return (b"".join(e.inputs.tobytes() for e in group), b"".join(e.labels.tobytes() for e in group), group[0].params)


def _worst_case(obs: Observations, g: int, i: int, family: str, candidate: str, dtype: str, reduction: str) -> WorstCase:
    """Value ``i`` of group ``g`` as a reproducer (its exact value from the Ziv path: only cases shown ask);
    for a gradient, the example of component ``i`` and the component's index in its inputs."""
    group, truth, got, comparison = obs.groups[g], obs.truths[g], obs.got[g], obs.comparisons[g]
    example = _example_index(obs, g, i) if reduction == "none" else 0
    if reduction == "none":
        inputs, labels = group[example].inputs, group[example].labels
    else:
        inputs, labels = np.stack([e.inputs for e in group]), np.stack([e.labels for e in group])
    component = i - example * inputs.size if truth.what == "gradient" else None
    ulp = float(comparison.ulp[i])
    exact = truth.exact_value(i)
    computed = np.ravel(got)[i]
    rel = None if math.isnan(ulp) else oracles.relative_error(computed, exact)
    return WorstCase(
        inputs=tuple(float_hex(v) for v in np.ravel(inputs)),
        labels=_labels_text(labels),
        got=float_hex(computed),
        exact=oracles.format_exact(exact),
        rounded=float_hex(np.ravel(truth.rounded)[i]),
        ulp=None if math.isnan(ulp) else ulp,
        outcome=_case_outcome(comparison, i),
        replay=replay_command(family, candidate, dtype, inputs, labels, reduction, group[example].param_values, truth.what),
        rel_error=None if rel is None or math.isnan(rel) else rel,
        component=component,
    )


def _case_outcome(comparison: Comparison, i: int) -> str:
    """The outcome of value ``i`` as a case shows it: the class of :func:`oracles.measure`, unless the
    value is a flushed subnormal or one of :data:`~harness._records.SIGN_MISTAKES`, which it names."""
    if comparison.flushed[i]:
        return "flushed_subnormal"
    for name in SIGN_MISTAKES:
        if sign_marks(comparison, name)[i]:
            return name
    return oracles.OUTCOMES[int(comparison.codes[i])]
