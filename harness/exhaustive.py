"""Exhaustive sweeps (``lossfuzz sweep``): every bit pattern of the swept input, crossed with a set of labels,
scored against the exact oracle, in chunks that run on any :class:`concurrent.futures.Executor`.

**Input sets.** The swept input is the family's input (a logit, or a probability for ``binary_ce``); a
sweep covers the bit patterns ``START <= b < STOP`` of the format (``--bits``, default every pattern:
``2**16`` for float16 and bfloat16, ``2**32`` for float32), each crossed with every label of the label set:

- ``sigmoid_ce`` (logits, soft labels): ``hard``: ``z`` in ``{0, 1}``; ``all``: every label of the format in
  ``[0, 1]`` (the patterns ``0 .. bits(1.0)``: ``-0`` is not a second label), for float16 and bfloat16.
- ``binary_ce`` (probabilities): the patterns whose value is in ``[0, 1]`` (``-0`` included: it is a
  pattern of the format; the others, ±inf and nan too, are not probabilities and are left out), crossed
  with the same labels.
- ``softmax_ce`` and ``sparse_softmax_ce``: rows ``[x, 0]`` for every pattern ``x``, with label 0 and
  label 1 (soft labels ``[1, 0]`` and ``[0, 1]``; class indices 0 and 1). Softmax is shift-invariant, so
  this covers every two-class row up to the rounding of the shift. Only ``hard``.

Patterns of ±inf and nan are swept too and counted apart: their cases fall in the family's ``special``
regime (``Score.regimes``) and their non-finite mistakes in ``counts["on_nonfinite_inputs"]``.

**Work.** A :class:`Chunk` is about :data:`CHUNK_CASES` (``2**20``) cases: a range of patterns times the
labels. :func:`sweep_chunk` evaluates the ground truth once per chunk (:func:`oracles.evaluate`, whose
certified fast path decides nearly every value; the rest take the Ziv path) and scores every candidate of
the chunk against it, each called once on the whole chunk. It is pure and top-level, so a process pool or
a Dask cluster can run it. :func:`run_sweep` submits the chunks to an executor, journals each finished one
and merges the results in plan order (the same figures whatever the order in which chunks finish, and
after a resume).

**Figures** (per candidate, and per regime): the statistics of :class:`harness.Score` over every case, with
these definitions where a whole-sweep figure cannot keep every value: ``mean_ulp``/``mean_bits`` are the
sum over chunks divided by the count (each chunk's sum compensated, the chunks' summed in plan order);
``median_ulp`` and ``p99_ulp`` are read from a histogram of the fractional ULP errors in bins of
``2**(1/64)`` (:data:`QUANTILE_BINS_PER_OCTAVE`; a value's bin is ``floor(64 * log2(u))`` exactly): the
upper edge of the bin holding the percentile (method ``higher``), capped at ``max_ulp``, so at least the
exact percentile and at most 1.1% above it. A chunk's figures of a candidate come from one compiled pass
over its comparison (:mod:`harness._sweep_kernel`). The error metric and the outcome classes are
:mod:`oracles._ulp`'s. Per bucket of :data:`BUCKETS` consecutive pattern ranges: the min, max and mean
ULP error and the count of non-finite mistakes (the error-vs-bit-pattern plot).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

import oracles
from oracles import OUTCOME_CODE

from ._records import COUNTED_OUTCOMES, HISTOGRAM_BINS, HISTOGRAM_EDGES, NON_FINITE_MISTAKES, QUANTITIES, Finding, RegimeScore, Score, WorstCase
from .candidates import NoGradient, Unsupported, get_candidate
from .metrics import Comparison, compare, example_regime_codes
from .provenance import numpy_target
from .scoring import Observations, call_candidate, listed_cases
from .strategies import Example

__all__ = [
    "CHUNK_CASES",
    "BUCKETS",
    "SWEEP_DTYPES",
    "SWEEP_LABELS",
    "QUANTILE_BINS_PER_OCTAVE",
    "Chunk",
    "ChunkResult",
    "SweepResult",
    "pattern_count",
    "parse_bits",
    "check_sweep",
    "plan_sweep",
    "chunk_inputs",
    "sweep_chunk",
    "run_sweep",
    "merge_results",
    "summary",
]

CHUNK_CASES = 1 << 20  # cases per chunk: candidates are called on batches of this size, never per element
BUCKETS = 1024  # buckets of the error-vs-bit-pattern plot over the swept range
SWEEP_DTYPES = ("float16", "bfloat16", "float32")  # float64's 2**64 patterns are out of reach
SWEEP_LABELS = ("hard", "all")
QUANTILE_BINS_PER_OCTAVE = 64
_WORST_PER_CHUNK = 4  # reproducers a chunk keeps per candidate (beside each regime's worst)


# ------------------------------------------------------------------------------------------ input sets


def pattern_count(dtype: str) -> int:
    """The number of bit patterns of the format (``2**bits``)."""
    return 1 << oracles.resolve_format(dtype).bits


def parse_bits(text: str, dtype: str) -> tuple[int, int]:
    """``START:STOP`` (each decimal or ``0x`` hex) as a half-open range of bit patterns of ``dtype``; a
    one-line ``ValueError`` that says what is wrong otherwise."""
    top = pattern_count(dtype)
    start_text, colon, stop_text = str(text).partition(":")
    if not colon:
        raise ValueError(f"--bits {text!r} is not START:STOP; pass e.g. --bits 0x0:0x{top:x} (hex or decimal)")
    values = []
    for part in (start_text, stop_text):
        try:
            values.append(int(part.strip(), 0))
        except ValueError:
            raise ValueError(f"--bits {text!r}: {part.strip()!r} is not a decimal or 0x hex integer;"
                             f" pass e.g. --bits 0x0:0x{top:x}") from None
    start, stop = values
    if start < 0 or stop > top:
        raise ValueError(f"--bits {text!r} is outside the {dtype} patterns 0x0:0x{top:x}; pass a range inside it")
    if stop <= start:
        raise ValueError(f"--bits {text!r} is empty (STOP {stop:#x} <= START {start:#x}); pass START < STOP")
    return start, stop


def _label_values(family: str, dtype: str, labels: str) -> np.ndarray:
    """The labels every pattern is crossed with: float labels in ``dtype``, or class indices (int64)."""
    fam = oracles.get_family(family)
    fmt = oracles.resolve_format(dtype)
    if fam.label_kind == "index":
        return np.array([0, 1], dtype=np.int64)
    if labels == "hard":
        return np.array([0.0, 1.0], dtype=fmt.numpy_dtype)
    one = int(np.array(1.0, dtype=fmt.numpy_dtype).view(fmt.uint_dtype))
    return np.arange(0, one + 1, dtype=np.int64).astype(fmt.uint_dtype).view(fmt.numpy_dtype)


def check_sweep(family: str, dtype: str, labels: str, candidates: Sequence[str]) -> None:
    """A one-line ``ValueError`` for a sweep that cannot run: an unknown family, dtype, label set or
    candidate, a candidate the family lacks, a reduced or hard-labels-only one, a missing library."""
    if family not in oracles.FAMILIES:
        raise ValueError(f"family={family!r} is not one of: {', '.join(oracles.FAMILIES)}")
    if dtype not in SWEEP_DTYPES:
        raise ValueError(f"dtype={dtype!r} is not one of: {', '.join(SWEEP_DTYPES)} (float64 has 2**64 patterns)")
    if labels not in SWEEP_LABELS:
        raise ValueError(f"labels={labels!r} is not one of: {', '.join(SWEEP_LABELS)}")
    fam = oracles.get_family(family)
    if fam.params:
        raise ValueError(f"{family} has parameters ({fam.params_text()}); sweeps cover the parameterless families:"
                         f" {', '.join(n for n in oracles.FAMILIES if not oracles.get_family(n).params)}")
    if labels == "all" and fam.row_wise:
        raise ValueError(f"--labels all: {family} sweeps rows [x, 0] with label 0 and label 1 only; pass --labels hard")
    if labels == "all" and dtype == "float32":
        raise ValueError("--labels all with float32 is 2**62 cases; pass --labels hard (or sweep float16/bfloat16)")
    if not candidates:
        raise ValueError("no candidate given; pass --candidate NAME[,NAME...]")
    for name in candidates:
        c = get_candidate(family, name)
        if c.reduction != "none":
            raise ValueError(f"candidate {name!r} returns a {c.reduction} over the batch; a sweep scores per-example"
                             " candidates (score this one with lossfuzz run)")
        if c.labels == "hard" and labels != "hard":
            raise ValueError(f"candidate {name!r} takes hard labels only; pass --labels hard")
        if not c.available():
            raise ValueError(f"candidate {name!r} needs {', '.join(c.needs)}; install it: {c.install_hint}")


# --------------------------------------------------------------------------------------------- chunks


@dataclass(frozen=True, slots=True)
class Chunk:
    """One unit of work (plain data): ``family`` in ``dtype``, the label set ``labels``, the candidates
    ``candidates`` (names), the bit patterns ``start <= b < stop`` of the swept input crossed with every
    label; ``origin`` and ``bucket_width``: the plot's buckets (bucket ``(b - origin) // bucket_width``);
    ``quantities``: what is scored, ``loss`` and/or ``gradient`` (:data:`harness._records.QUANTITIES`)."""

    family: str
    dtype: str
    labels: str
    candidates: tuple[str, ...]
    start: int
    stop: int
    origin: int
    bucket_width: int
    quantities: tuple[str, ...] = ("loss",)


def plan_sweep(family: str, dtype: str, labels: str, candidates: Sequence[str], bits: tuple[int, int] | None = None,
               chunk_cases: int = CHUNK_CASES, quantities: Sequence[str] = ("loss",)) -> list[Chunk]:
    """The chunks of a sweep, in pattern order: each about ``chunk_cases`` cases (patterns times labels),
    scoring ``quantities`` (``loss``, ``gradient``: each candidate's gradient with respect to the swept
    row's inputs, per component, against the exact gradient)."""
    check_sweep(family, dtype, labels, candidates)
    unknown = [q for q in quantities if q not in QUANTITIES]
    if unknown or not quantities:
        raise ValueError(f"quantities={','.join(quantities)!r}: each must be one of: {', '.join(QUANTITIES)}")
    quantities = tuple(q for q in QUANTITIES if q in quantities)  # one order, whatever the order given
    start, stop = bits if bits is not None else (0, pattern_count(dtype))
    per = max(1, chunk_cases // _label_values(family, dtype, labels).size)
    width = max(1, -(-(stop - start) // BUCKETS))
    return [Chunk(family, dtype, labels, tuple(candidates), s, min(stop, s + per), start, width, quantities)
            for s in range(start, stop, per)]


def chunk_inputs(chunk: Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chunk's cases: ``(inputs, labels, patterns)``, case ``j * P + i`` being pattern ``i`` of the
    ``P`` kept ones with label ``j``. ``inputs`` in the dtype (rows ``[x, 0]`` for the row families),
    ``labels`` as the family takes them, ``patterns`` the swept bit pattern of each case (int64)."""
    fam = oracles.get_family(chunk.family)
    fmt = oracles.resolve_format(chunk.dtype)
    patterns = np.arange(chunk.start, chunk.stop, dtype=np.int64)
    x = patterns.astype(fmt.uint_dtype).view(fmt.numpy_dtype)
    if fam.input_domain == "unit":  # probabilities: the patterns in [0, 1]
        with np.errstate(invalid="ignore"):
            keep = (x >= 0) & (x <= 1)
        patterns, x = patterns[keep], x[keep]
    z = _label_values(chunk.family, chunk.dtype, chunk.labels)
    n, k = x.size, z.size
    xs = np.tile(x, k)
    zs = np.repeat(z, n)
    if fam.row_wise:
        xs = np.stack([xs, np.zeros_like(xs)], axis=1)
        if fam.label_kind != "index":
            zs = np.stack([1 - zs, zs], axis=1)  # label j: the row's class j is the true one
    return xs, zs, np.tile(patterns, k)


# ----------------------------------------------------------------------------------- per-chunk figures


def _figures_of(c: Comparison, case_codes: np.ndarray, regimes: Sequence[str], bucket: np.ndarray,
                per: int) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[int]]:
    """One candidate's mergeable figures on a chunk from its comparison ``c`` (``per`` values per case),
    in one compiled pass (:func:`harness._sweep_kernel.chunk_figures`, which states the definitions):
    per regime present (``case_codes``: each case's index in the family's ``regimes``) its statistics;
    the plot's buckets (``bucket``: each case's); and the indices of the values kept as reproducers (per
    regime its first largest error and first non-finite mistake, and the :data:`_WORST_PER_CHUNK` worst)."""
    from ._sweep_kernel import TALLY, ZERO_KEY, chunk_figures  # numba, compiled on first use: `import harness` stays light

    n_regimes, n_outcomes = len(regimes), len(oracles.OUTCOMES)
    first = int(bucket.min())
    size = int(bucket.max()) - first + 1
    tally = np.zeros((n_regimes, len(TALLY) + n_outcomes + len(HISTOGRAM_BINS)), dtype=np.int64)
    sums = np.zeros((n_regimes, 6))
    sums[:, 4:] = -np.inf
    quantiles = np.zeros((n_regimes, 2 * ZERO_KEY + 1), dtype=np.int32)
    low, high, total = np.full(size, np.inf), np.full(size, -np.inf), np.zeros(size)
    count, mistakes = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
    regime_worst, regime_mistake = np.full(n_regimes, -1, dtype=np.int64), np.full(n_regimes, -1, dtype=np.int64)
    top, top_severity = np.full(_WORST_PER_CHUNK, -1, dtype=np.int64), np.full(_WORST_PER_CHUNK, -np.inf)
    marks = c.zero_where_nonzero is not None and c.wrong_sign is not None
    zero, wrong = (c.zero_where_nonzero, c.wrong_sign) if marks else (c.flushed, c.flushed)
    chunk_figures(c.ulp, c.ulp.view(np.int64), c.bits, c.codes, c.flushed, c.finite_input, zero, wrong, marks,
                  case_codes, bucket, per, first, _MISTAKE_CODES, OUTCOME_CODE["unconverged"], _EDGES, tally, sums,
                  quantiles, low, high, total, count, mistakes, regime_worst, regime_mistake, top, top_severity)
    stats = {}
    for r in np.flatnonzero(tally[:, 0]).tolist():
        t, s = tally[r], sums[r]
        measured = int(t[1])
        counts = dict.fromkeys(COUNTED_OUTCOMES, 0)
        for name in COUNTED_OUTCOMES:
            if name in OUTCOME_CODE:
                counts[name] = int(t[len(TALLY) + OUTCOME_CODE[name]])
        counts.update((name, int(t[j])) for j, name in enumerate(TALLY) if j >= 2)
        keys = np.flatnonzero(quantiles[r])
        stats[regimes[r]] = {
            "cases": int(t[0]), "measured": measured,
            "sum_ulp": float(s[0] + s[1]) if math.isfinite(s[0]) else float(s[0]),
            "max_ulp": float(s[4]) if measured else None, "bits_measured": measured,
            "sum_bits": float(s[2] + s[3]) if math.isfinite(s[2]) else float(s[2]),
            "max_bits": float(s[5]) if measured else None,
            "counts": counts,
            "histogram": dict(zip(HISTOGRAM_BINS, t[len(TALLY) + n_outcomes:].tolist())),
            "quantiles": {("zero" if k == 0 else "inf" if k == 2 * ZERO_KEY else str(k - ZERO_KEY)): int(quantiles[r, k])
                          for k in keys.tolist()},
        }
    plot = {"first": first, "min": [None if math.isinf(v) else v for v in low.tolist()],
            "max": [None if math.isinf(v) else v for v in high.tolist()],
            "sum": total.tolist(), "count": count.tolist(), "non_finite": mistakes.tolist()}
    picked = {int(i) for i in np.concatenate([regime_worst, regime_mistake, top]).tolist() if i >= 0}
    return stats, plot, sorted(picked)


_MISTAKE_CODES = np.array([name in NON_FINITE_MISTAKES for name in oracles.OUTCOMES])
_EDGES = np.array(HISTOGRAM_EDGES, dtype=np.float64)


@dataclass
class ChunkResult:
    """What one chunk found (plain data, JSON-able): ``cases`` swept, the oracle's ``paths`` (values per path),
    ``seconds`` of work, and per candidate (``candidates[name]`` for the loss, ``gradients[name]`` for the
    gradient): ``unsupported`` (with the ``note`` of a candidate without a gradient), ``failure`` (a
    :class:`Finding` as JSON) or the figures: ``all`` and ``regimes[name]`` (mergeable statistics, see the
    module docstring), ``worst`` (reproducers, :class:`WorstCase` JSON), ``regime_worst`` and ``buckets``."""

    start: int
    stop: int
    cases: int
    seconds: float
    paths: dict[str, int]
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)
    gradients: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine: str = ""  # numpy and its SIMD targets where the chunk ran (harness.provenance.numpy_target)

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "stop": self.stop, "cases": self.cases, "seconds": self.seconds,
                "paths": dict(self.paths), "candidates": self.candidates, "gradients": self.gradients,
                "machine": self.machine}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ChunkResult":
        return cls(int(data["start"]), int(data["stop"]), int(data["cases"]), float(data["seconds"]),
                   dict(data["paths"]), dict(data["candidates"]), dict(data.get("gradients", {})),
                   str(data.get("machine", "")))

    def of(self, quantity: str) -> dict[str, dict[str, Any]]:
        """The per-candidate figures of ``quantity`` (``loss`` or ``gradient``)."""
        return self.gradients if quantity == "gradient" else self.candidates


def _score_candidate(name: str, chunk: Chunk, truth: oracles.Truth, xs: np.ndarray, zs: np.ndarray,
                     bucket: np.ndarray, case_codes: np.ndarray) -> dict[str, Any]:
    """One candidate's figures on the chunk against ``truth``: the exact loss, or the exact gradient
    (``truth.what == "gradient"``; every component of a case takes its case's regime and bucket);
    ``case_codes``: each case's regime as its code (``Family.regime_codes_of``), decided by its exact loss;
    ``bucket``: each case's plot bucket."""
    candidate = get_candidate(chunk.family, name)
    gradient = truth.what == "gradient"
    try:
        fn = candidate.load_gradient() if gradient else candidate.load()
        got = call_candidate(fn, xs, zs, truth.rounded.shape, chunk.dtype)
    except NoGradient:
        return {"unsupported": True, "note": candidate.gradient_note}
    except Unsupported:
        return {"unsupported": True}
    except Exception as exc:  # noqa: BLE001 - the candidate's own failure (CandidateFailure, an import error)
        kind = getattr(exc, "kind", "raised")
        return {"failure": Finding(kind, str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__, (), ()).to_json()}
    # the chunk's comparison carries the regime codes, not names: nothing here reads them (the figures take
    # the case codes), and naming a million cases costs more than measuring them; the listed cases are named
    c = compare(truth, got, regimes=case_codes)
    per = c.ulp.size // bucket.size  # values per case: 1 for a loss, the row's components for a gradient
    regime_order = [r.name for r in oracles.get_family(chunk.family).regimes]
    regimes, plot, picked = _figures_of(c, case_codes, regime_order, bucket, per)
    return {"all": _merge_stats(list(regimes.values())), "regimes": regimes, "buckets": plot,
            **_reproducers(chunk, name, truth, got, xs, zs, picked, per, case_codes)}


def _reproducers(chunk: Chunk, name: str, truth: oracles.Truth, got: np.ndarray, xs: np.ndarray, zs: np.ndarray,
                 picked: list[int], per: int, case_codes: np.ndarray) -> dict[str, Any]:
    """The chunk's worst cases as :class:`WorstCase` JSON, through scoring's own choice
    (:func:`harness.scoring.listed_cases`) on the values ``picked`` (:func:`_figures_of`: per regime the
    first value with its largest error and its first non-finite mistake, and the :data:`_WORST_PER_CHUNK`
    worst overall; ``per`` values per case: a gradient's components; the cases holding the picked values
    are re-evaluated). Their exact values come from the Ziv path (only these few ask)."""
    if not picked:
        return {"worst": [], "regime_worst": {}}
    cases = np.array(sorted({i // per for i in picked}))
    fam = oracles.get_family(chunk.family)
    small = oracles.evaluate(chunk.family, **{fam.input_name: xs[cases]}, labels=zs[cases], dtype=chunk.dtype,
                             what=truth.what)
    examples = tuple(Example(np.asarray(xs[i]), np.asarray(zs[i])) for i in cases)
    mine = got[cases]  # the candidate's values of those cases (its result has the truth's shape)
    named = fam.regime_names(case_codes[cases])
    obs = Observations([examples], [mine], [small], [compare(small, mine, regimes=named)])
    worst, by_regime = listed_cases(obs, chunk.family, name, chunk.dtype, "none", count=len(picked))
    return {"worst": [w.to_json() for w in worst], "regime_worst": {r: w.to_json() for r, w in by_regime.items()}}


def sweep_chunk(chunk: Chunk) -> ChunkResult:
    """Score every candidate of ``chunk`` on its cases (pure: no file, no global state kept): the ground
    truth is evaluated once (:func:`oracles.evaluate`, certified fast path first) and shared by every
    candidate, each called once on the whole chunk."""
    began = time.perf_counter()
    fam = oracles.get_family(chunk.family)
    xs, zs, patterns = chunk_inputs(chunk)
    if not patterns.size:  # binary_ce: no probability among these patterns
        return ChunkResult(chunk.start, chunk.stop, 0, time.perf_counter() - began, {"fast": 0, "ziv": 0},
                           machine=numpy_target())
    truth = oracles.evaluate(chunk.family, **{fam.input_name: xs}, labels=zs, dtype=chunk.dtype)
    bucket = (patterns - chunk.origin) // chunk.bucket_width
    out = ChunkResult(chunk.start, chunk.stop, int(patterns.size), 0.0, truth.path_counts, machine=numpy_target())
    codes = example_regime_codes(truth)  # once for every candidate and quantity
    if "loss" in chunk.quantities:
        for name in chunk.candidates:
            out.candidates[name] = _score_candidate(name, chunk, truth, xs, zs, bucket, codes)
    if "gradient" in chunk.quantities:
        exact_gradient = oracles.evaluate(chunk.family, **{fam.input_name: xs}, labels=zs, dtype=chunk.dtype,
                                          what="gradient")
        for k, v in exact_gradient.path_counts.items():
            out.paths[k] = out.paths.get(k, 0) + v
        for name in chunk.candidates:
            out.gradients[name] = _score_candidate(name, chunk, exact_gradient, xs, zs, bucket, codes)
    out.seconds = time.perf_counter() - began
    return out


# -------------------------------------------------------------------------------------------- running


def run_sweep(plan: Sequence[Chunk], executor: Executor, journal: Callable[[ChunkResult], None] | None = None,
              progress: Callable[[ChunkResult], None] | None = None, done: Mapping[tuple[int, int], ChunkResult] | None = None,
              stop: Callable[[], bool] = lambda: False, in_flight: int | None = None) -> "SweepResult":
    """Run the chunks of ``plan`` not in ``done`` (results of a resumed sweep, by ``(start, stop)``) on
    ``executor``; ``journal`` and ``progress`` are called with each finished chunk (in the order they
    finish); ``stop()`` true stops submitting (what was submitted finishes). At most ``in_flight`` chunks
    (default: twice the executor's workers, else 16) are submitted at once. Returns the merged figures
    (in plan order, whatever order chunks finished in); ``partial`` when chunks are missing."""
    began = time.perf_counter()
    results: dict[tuple[int, int], ChunkResult] = dict(done or {})
    todo = [c for c in plan if (c.start, c.stop) not in results]
    limit = in_flight or 2 * (getattr(executor, "_max_workers", 0) or 8)
    pending: set[Future] = set()
    queue = iter(todo)
    exhausted = False
    while True:
        while not exhausted and len(pending) < limit and not stop():
            chunk = next(queue, None)
            if chunk is None:
                exhausted = True
                break
            pending.add(executor.submit(sweep_chunk, chunk))
        if not pending:
            break
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            result = future.result()
            results[(result.start, result.stop)] = result
            if journal is not None:
                journal(result)
            if progress is not None:
                progress(result)
        if stop() and not pending:
            break
    ordered = [results[(c.start, c.stop)] for c in plan if (c.start, c.stop) in results]
    return merge_results(plan, ordered, time.perf_counter() - began)


# -------------------------------------------------------------------------------------------- merging


@dataclass
class SweepResult:
    """The merged figures of a sweep: a :class:`Score` per candidate (``examples`` = cases swept), the
    per-bucket errors for the plot (``buckets[name]``: ``x`` the first pattern of each bucket, ``min``,
    ``max``, ``mean`` ULP or None, ``non_finite``), the oracle's ``paths``, ``cases`` swept, ``chunks`` done
    of ``planned``, ``chunk_seconds`` (work summed over chunks), and the ``machines`` the chunks ran on
    (numpy and its SIMD targets, each once: more than one means figures that mix them)."""

    family: str
    dtype: str
    labels: str
    bits: tuple[int, int]
    scores: list[Score]
    buckets: dict[str, dict[str, list]]
    paths: dict[str, int]
    cases: int
    chunks: int
    planned: int
    chunk_seconds: float
    wall_seconds: float
    quantities: tuple[str, ...] = ("loss",)
    gradient_buckets: dict[str, dict[str, list]] = field(default_factory=dict)
    machines: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return self.chunks < self.planned

    def to_json(self) -> dict[str, Any]:
        """The block ``RunResult.sweep`` of the report (reports/SCHEMA.md); the scores go in ``results``."""
        out = {"family": self.family, "dtype": self.dtype, "labels": self.labels, "bits": list(self.bits),
               "cases": self.cases, "chunks": self.chunks, "planned": self.planned, "paths": dict(self.paths),
               "quantities": list(self.quantities), "buckets": self.buckets}
        if self.gradient_buckets:
            out["gradient_buckets"] = self.gradient_buckets
        return out


def _merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not parts:
        return None
    out = {"cases": 0, "measured": 0, "sum_ulp": 0.0, "max_ulp": None, "bits_measured": 0, "sum_bits": 0.0,
           "max_bits": None, "counts": dict.fromkeys(COUNTED_OUTCOMES, 0), "histogram": dict.fromkeys(HISTOGRAM_BINS, 0),
           "quantiles": {}}
    for p in parts:
        for key in ("cases", "measured", "sum_ulp", "bits_measured", "sum_bits"):
            out[key] += p[key]
        for key in ("max_ulp", "max_bits"):
            if p[key] is not None and (out[key] is None or p[key] > out[key]):
                out[key] = p[key]
        for group in ("counts", "histogram", "quantiles"):
            for k, v in p[group].items():
                out[group][k] = out[group].get(k, 0) + v
    return out


def _percentile(stats: dict[str, Any], q: float) -> float | None:
    """The ``q``-th percentile (method ``higher``) from the log bins: the upper edge of its bin, capped at
    ``max_ulp`` (module docstring)."""
    n = stats["measured"]
    if not n:
        return None
    rank = math.ceil(q / 100 * (n - 1)) + 1  # 1-based rank of numpy's percentile(method="higher")
    bins = stats["quantiles"]
    order = (["zero"] if "zero" in bins else []) + sorted((k for k in bins if k not in ("zero", "inf")), key=int) \
        + (["inf"] if "inf" in bins else [])
    seen = 0
    for key in order:
        seen += bins[key]
        if seen >= rank:
            if key == "zero":
                return 0.0
            if key == "inf":
                return math.inf
            return min(2.0 ** ((int(key) + 1) / QUANTILE_BINS_PER_OCTAVE), stats["max_ulp"])
    return stats["max_ulp"]


def _figures(stats: dict[str, Any]) -> dict[str, Any]:
    """The :class:`Score`/:class:`RegimeScore` fields of merged statistics (module docstring)."""
    counts = dict(stats["counts"])
    return {
        "examples": stats["cases"] - counts.get("unconverged", 0),
        "max_ulp": stats["max_ulp"],
        "mean_ulp": stats["sum_ulp"] / stats["measured"] if stats["measured"] else None,
        "median_ulp": _percentile(stats, 50),
        "p99_ulp": _percentile(stats, 99),
        "max_bits": stats["max_bits"],
        "mean_bits": stats["sum_bits"] / stats["bits_measured"] if stats["bits_measured"] else None,
        "counts": counts,
    }


def _severity(case: WorstCase) -> float:
    return 2.0**80 if case.ulp is None else min(case.ulp, 2.0**79)


def _merge_buckets(parts: list[dict[str, Any]], plan: Sequence[Chunk]) -> dict[str, list]:
    origin, width = plan[0].origin, plan[0].bucket_width
    size = -(-(plan[-1].stop - origin) // width)
    low = np.full(size, np.inf)
    high = np.full(size, -np.inf)
    total = np.zeros(size)
    count = np.zeros(size, dtype=np.int64)
    mistakes = np.zeros(size, dtype=np.int64)
    for p in parts:
        s = slice(p["first"], p["first"] + len(p["count"]))
        low[s] = np.minimum(low[s], [np.inf if v is None else v for v in p["min"]])
        high[s] = np.maximum(high[s], [-np.inf if v is None else v for v in p["max"]])
        total[s] += p["sum"]
        count[s] += p["count"]
        mistakes[s] += p["non_finite"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return {"x": [origin + i * width for i in range(size)],
            "min": [None if math.isinf(v) else float(v) for v in low],
            "max": [None if math.isinf(v) else float(v) for v in high],
            "mean": [None if c == 0 else float(m) for m, c in zip(mean, count)],
            "non_finite": mistakes.tolist()}


def merge_results(plan: Sequence[Chunk], results: Iterable[ChunkResult], wall_seconds: float = 0.0) -> SweepResult:
    """The figures of a sweep from its chunks' results (merged in the order given: plan order)."""
    results = list(results)
    first = plan[0]
    fam = oracles.get_family(first.family)
    order = [r.name for r in fam.regimes]
    scores, buckets = [], {}
    paths = {"fast": 0, "ziv": 0}
    for r in results:
        for k, v in r.paths.items():
            paths[k] = paths.get(k, 0) + v
    for quantity in first.quantities:
        for name in first.candidates:
            score, plot = _merged_score(plan, results, name, quantity, order)
            scores.append(score)
            if plot is not None:
                buckets.setdefault(quantity, {})[name] = plot
    return SweepResult(first.family, first.dtype, first.labels, (plan[0].start, plan[-1].stop), scores,
                       buckets.get("loss", {}), paths, sum(r.cases for r in results), len(results), len(plan),
                       sum(r.seconds for r in results), wall_seconds, first.quantities, buckets.get("gradient", {}),
                       tuple(dict.fromkeys(r.machine for r in results if r.machine)))


def _merged_score(plan: Sequence[Chunk], results: list[ChunkResult], name: str, quantity: str,
                  order: Sequence[str]) -> tuple[Score, dict[str, list] | None]:
    """One candidate's :class:`Score` of ``quantity`` over the chunks, and its plot buckets (None if unscored)."""
    first = plan[0]
    cand = get_candidate(first.family, name)
    mine = [r.of(quantity)[name] for r in results if name in r.of(quantity)]
    base = dict(family=first.family, candidate=name, dtype=first.dtype, reduction="none", source=cand.source,
                labels=first.labels if first.labels == "hard" else "all", quantity=quantity)
    unsupported = [m for m in mine if m.get("unsupported")]
    if unsupported:
        return Score(examples=0, max_ulp=None, mean_ulp=None, median_ulp=None, p99_ulp=None, max_bits=None,
                     mean_bits=None, counts=dict.fromkeys(COUNTED_OUTCOMES, 0), histogram=dict.fromkeys(HISTOGRAM_BINS, 0),
                     unsupported=True, failure=unsupported[0].get("note") or None, **base), None
    failures = [Finding.from_json(m["failure"]) for m in mine if "failure" in m]
    scored = [m for m in mine if "all" in m]
    whole = _merge_stats([m["all"] for m in scored]) or _merge_stats([_empty_stats()])
    figures = _figures(whole)
    figures["counts"]["raised"] += len(failures)
    regimes = {}
    must: list[WorstCase] = []  # as scoring lists them: every regime's max-ULP case and first mistake
    for rname in order:
        merged = _merge_stats([m["regimes"][rname] for m in scored if rname in m["regimes"]])
        if merged is None:
            continue
        candidates_ = [WorstCase.from_json(m["regime_worst"][rname]) for m in scored if rname in m["regime_worst"]]
        regimes[rname] = RegimeScore(**_figures(merged), worst=_pick_regime_worst(candidates_, merged))
        must += _regime_musts(candidates_)
    every = [WorstCase.from_json(w) for m in scored for w in m["worst"]]
    worst = _top_cases(must, every, 10)
    score = Score(**figures, histogram=whole["histogram"], worst=worst, findings=tuple(failures[:10]),
                  failure=failures[0].message if failures and not scored else None, regimes=regimes, **base)
    return score, (_merge_buckets([m["buckets"] for m in scored], plan) if scored else None)


def _empty_stats() -> dict[str, Any]:
    return {"cases": 0, "measured": 0, "sum_ulp": 0.0, "max_ulp": None, "bits_measured": 0, "sum_bits": 0.0,
            "max_bits": None, "counts": dict.fromkeys(COUNTED_OUTCOMES, 0), "histogram": dict.fromkeys(HISTOGRAM_BINS, 0),
            "quantiles": {}}


def _pick_regime_worst(cases: list[WorstCase], merged: dict[str, Any]) -> WorstCase | None:
    """As :class:`RegimeScore` defines ``worst``: the first case with the regime's max ULP, unless that is at
    most 0.5 ULP and a non-finite mistake exists (then the first mistake), or no case has a ULP number."""
    measured = [c for c in cases if c.ulp is not None]  # a ULP number: finite values (a gradient's sign mistakes too)
    mistakes = [c for c in cases if c.outcome in NON_FINITE_MISTAKES]
    top = max(measured, key=lambda c: c.ulp, default=None)  # max() keeps the first of equals (plan order)
    if top is not None and (top.ulp > 0.5 or not mistakes):
        return top
    return mistakes[0] if mistakes else top


def _regime_musts(cases: list[WorstCase]) -> list[WorstCase]:
    """Of one regime's candidate cases (plan order): the first with its largest ULP error (when above 0.5)
    and its first non-finite mistake, as :func:`harness.scoring.listed_cases` always lists them."""
    measured = [c for c in cases if c.ulp is not None]  # a ULP number: finite values (a gradient's sign mistakes too)
    top = max(measured, key=lambda c: c.ulp, default=None)
    mistake = next((c for c in cases if c.outcome in NON_FINITE_MISTAKES), None)
    return [c for c in ((top if top is not None and top.ulp > 0.5 else None), mistake) if c is not None]


def _top_cases(must: list[WorstCase], cases: list[WorstCase], count: int) -> tuple[WorstCase, ...]:
    """The cases of ``must``, then the worst others (above 0.5 ULP, or without a ULP number) up to ``count``
    in all, distinct inputs, worst first (plan order among equals)."""
    seen, out = set(), []
    ranked = sorted((c for c in cases if _severity(c) > 0.5), key=_severity, reverse=True)
    for position, c in enumerate(must + ranked):
        if position >= len(must) and len(out) >= count:
            break
        key = (c.inputs, c.labels)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return tuple(sorted(out, key=_severity, reverse=True))


def summary(result: SweepResult, command: str, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The small summary of a sweep (no per-case data): per candidate (``candidates``: the loss;
    ``gradients``: the gradient's components, when scored) the cases, max ULP with its input and label,
    non-finite mistakes on finite inputs and on ±inf/nan inputs (counted apart), the number correctly
    rounded (bit-identical to the correct rounding: ``histogram["exact"]``) and the histogram. A
    gradient's values are its components: ``examples`` counts them (2 per two-class row).

    With a ``provenance`` (:func:`harness.provenance.provenance` of the process that ran the sweep) it
    also keeps ``versions`` (each installed library the candidates and the oracle come from),
    ``git_commit`` and ``git_dirty``: a framework's kernels change between releases and machines as
    numpy's do, and a committed summary outlives its report.json."""
    rows: dict[str, dict[str, Any]] = {"loss": {}, "gradient": {}}
    for s in result.scores:
        rows[s.quantity][s.candidate] = _summary_row(s)
    environment = {} if provenance is None else {
        "versions": {name: version for name, version in (provenance.get("versions") or {}).items()
                     if version and name != "lossfuzz"},
        "git_commit": provenance.get("git_commit"), "git_dirty": provenance.get("git_dirty")}
    out = {"family": result.family, "dtype": result.dtype, "labels": result.labels, "bits": list(result.bits),
           "cases": result.cases, "chunks": result.chunks, "planned": result.planned, "partial": result.partial,
           "paths": dict(result.paths), "wall_seconds": round(result.wall_seconds, 1),
           "chunk_seconds": round(result.chunk_seconds, 1), "command": command,
           "quantities": list(result.quantities), "machines": list(result.machines), **environment,
           "candidates": rows["loss"]}
    if "gradient" in result.quantities:
        out["gradients"] = rows["gradient"]
    return out


def _summary_row(s: Score) -> dict[str, Any]:
    from .outcomes import tally_outcomes

    if s.unsupported:
        return {"unsupported": True, **({"note": s.failure} if s.failure else {})}
    tally = tally_outcomes(s)
    top = max((w for w in s.worst if w.ulp is not None),
              key=lambda w: w.ulp, default=None)
    if top is None or top.ulp != s.max_ulp:  # the max is within 0.5 ULP: the regimes keep its case
        top = next((r.worst for r in s.regimes.values() if r.worst is not None and r.max_ulp == s.max_ulp
                    and r.worst.ulp == s.max_ulp), top)
    return {
        "examples": s.examples, "max_ulp": s.max_ulp,
        "max_ulp_input": top.inputs[0] if top is not None and len(top.inputs) == 1 else (",".join(top.inputs) if top else None),
        "max_ulp_label": ",".join(top.labels) if top is not None else None,
        "mean_ulp": s.mean_ulp, "non_finite_on_finite_inputs": tally.on_finite_inputs,
        "non_finite_on_nonfinite_inputs": tally.on_nonfinite_inputs, "raised": tally.raised,
        "flushed_subnormal": tally.flushed, "unconverged": tally.unconverged,
        "correctly_rounded": s.histogram.get("exact", 0), "histogram": dict(s.histogram),
        "regimes": {name: {"examples": r.examples, "max_ulp": r.max_ulp} for name, r in s.regimes.items()},
        "failure": s.failure,
        **({"zero_where_nonzero": s.counts.get("zero_where_nonzero", 0), "wrong_sign": s.counts.get("wrong_sign", 0)}
           if s.quantity == "gradient" else {}),
    }
