"""Results that outlive a run: frozen, slotted records, and their JSON form (schema in reports/SCHEMA.md).

**One serialisation for every record.** :class:`JsonRecord` gives a dataclass ``to_json``/``from_json``
computed from its fields (:func:`record_to_json`, :func:`record_from_json`):

- a field is written under its name (or ``field(metadata={"key": ...})``), in field order; a field with
  ``metadata={"omit_default": True}`` is left out while it holds its default (or its ``default_factory()``);
- floats go through :func:`number_to_json` (``inf`` as the string ``"inf"``, nan as ``null``), tuples as
  arrays, nested records through their own ``to_json``;
- reading, the field's type hint says what to rebuild (a float from ``"inf"``, a tuple from an array, a
  nested record); a value of the wrong type is a one-line ``ValueError`` naming the record and key;
- **missing keys**: a field with a default takes it; a field without one is a one-line ``ValueError``
  (``Score record lacks the key 'family'; …``);
- **unknown keys are ignored** (newer minor additions and derived keys such as ``Score``'s ``nan``
  shortcut or ``Speed.ratio``), as reports/SCHEMA.md asks of every reader.

``report.json`` carries :data:`SCHEMA_VERSION`; a reader accepts every version from 1 up to its own and
refuses a newer one (see :meth:`RunResult.from_json`).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from functools import cache
from typing import Any, ClassVar, Mapping, TypeVar, Union

__all__ = [
    "SCHEMA_VERSION",
    "QUANTITIES",
    "FINDING_KINDS",
    "LABEL_SETS",
    "JsonRecord",
    "record_to_json",
    "record_from_json",
    "number_to_json",
    "number_from_json",
    "CandidateFailure",
    "Finding",
    "WorstCase",
    "RegimeScore",
    "Speed",
    "Score",
    "Curve",
    "ErrorMap",
    "RunResult",
    "HISTOGRAM_BINS",
    "HISTOGRAM_EDGES",
    "COUNTED_OUTCOMES",
    "NON_FINITE_MISTAKES",
    "SIGN_MISTAKES",
]

# The report.json format this code writes; it reads every version from 1 up to this one. Version 2: every
# score row has ``quantity`` ("loss" or "gradient"); a version-1 row is read as a loss row.
SCHEMA_VERSION = 2
# What a score measures: the loss value, or the gradient with respect to the inputs (logits; probabilities
# for binary_ce), compared component by component with ``oracles.gradient``.
QUANTITIES: tuple[str, ...] = ("loss", "gradient")
# Histogram of fractional ULP errors: "exact" is bit-identical to the correctly rounded value; the others
# are upper bounds (inclusive) in ULP; "more" is everything above 2**10.
HISTOGRAM_BINS = ("exact", "<=0.5", "<=1", "<=4", "<=1024", "more")
HISTOGRAM_EDGES = (0.5, 1.0, 4.0, 1024.0)  # the upper bounds of the bins between "exact" and "more"

# Outcomes counted per score besides the ULP statistics (see oracles._ulp for their definitions), plus
# flushed subnormals (the correctly rounded value is a nonzero subnormal and the candidate returned 0) and
# raised (examples on which the candidate raised or returned something unusable: see Score.failure), and
# on_nonfinite_inputs: how many of the non-finite mistakes were on examples with a ±inf or nan input
# (limit values; see the family docstrings), so they can be told from failures on finite inputs; and the
# SIGN_MISTAKES below. Each counts values: examples on a loss row, components on a gradient row.
COUNTED_OUTCOMES = (
    "nan",
    "inf",
    "finite_where_infinite",
    "nan_where_infinite",
    "wrong_infinity",
    "number_where_nan",
    "flushed_subnormal",
    "raised",
    "unconverged",
    "on_nonfinite_inputs",
    "zero_where_nonzero",
    "wrong_sign",
)
# Finite gradient components that a ULP figure alone hides (harness.metrics.sign_mistakes decides them),
# counted on gradient rows; always 0 on loss rows (a loss underflowing to 0 shows in its ULP error and the
# tiny regime), and 0 in a score read from a report without them:
# - zero_where_nonzero: the candidate returned +0 or -0 where the correctly rounded exact value is a nonzero
#   normal number (finite, |value| >= the format's smallest normal): a vanishing gradient. A nonzero
#   subnormal returned as 0 is flushed_subnormal instead;
# - wrong_sign: a finite nonzero result whose sign differs from that of the finite nonzero correctly
#   rounded value.
SIGN_MISTAKES = ("zero_where_nonzero", "wrong_sign")

# The outcome classes that are non-finite mistakes (a ULP number cannot describe them).
NON_FINITE_MISTAKES = ("nan", "inf", "finite_where_infinite", "nan_where_infinite", "wrong_infinity", "number_where_nan")


def number_to_json(value: float | None) -> float | str | None:
    """JSON has no inf/nan: infinite ULP errors are written as the string "inf"."""
    if value is None:
        return None
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def number_from_json(value: Any) -> float | None:
    """The inverse of :func:`number_to_json` for what can be read back: ``"inf"`` to ``math.inf``."""
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return value


# ------------------------------------------------------------------------------- generic serialisation

R = TypeVar("R")


def _key(f: Field) -> str:
    return f.metadata.get("key", f.name)


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return number_to_json(value)
    if is_dataclass(value) and not isinstance(value, type):
        return value.to_json() if hasattr(value, "to_json") else record_to_json(value)
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    return value


def record_to_json(record: Any) -> dict[str, Any]:
    """The JSON object of a dataclass record, from its fields (see the module docstring)."""
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.metadata.get("omit_default") and value == (f.default_factory() if f.default_factory is not MISSING else f.default):
            continue
        out[_key(f)] = _encode(value)
    return out


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _wrong(where: str, want: str, value: Any) -> ValueError:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
    return ValueError(f"{where} is {shown}, not {want}; regenerate the file with this lossfuzz")


def _decode(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:  # free-form JSON (settings, provenance, the audit block): kept as read
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(value, inner, where)
    if hint is float:
        number = number_from_json(value)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise _wrong(where, "a number", value)
        return float(number) if isinstance(number, float) else number
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise _wrong(where, f"a JSON {'string' if hint is str else 'boolean' if hint is bool else 'integer'}", value)
        return value
    if isinstance(hint, type) and is_dataclass(hint):
        return hint.from_json(value) if hasattr(hint, "from_json") else record_from_json(hint, value)
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise _wrong(where, "an array", value)
        items = [_decode(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise _wrong(where, "an object", value)
        return {k: _decode(v, args[1], f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"{where}: no JSON form for the type {hint!r}")  # a programming error, not bad input


def record_from_json(cls: type[R], data: Any) -> R:
    """The record of type ``cls`` from its JSON object (see the module docstring for missing and unknown
    keys); one-line ``ValueError`` when the object does not fit."""
    name = cls.__name__
    if not isinstance(data, Mapping):
        raise _wrong(f"a {name} record", "a JSON object", data)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        key = _key(f)
        if key in data:
            kwargs[f.name] = _decode(data[key], hints[f.name], f"{name}.{key}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ValueError(f"{name} record lacks the key {key!r}; regenerate the file with this lossfuzz")
    return cls(**kwargs)


class JsonRecord:
    """Mixin of the records: ``to_json``/``from_json`` from the dataclass fields (see the module docstring)."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        return record_to_json(self)

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        return record_from_json(cls, data)


# ------------------------------------------------------------------------------------------------ records


class CandidateFailure(Exception):
    """The candidate raised, hung, crashed, or returned something that is not an array of the right shape
    and dtype. ``kind`` is one of :data:`FINDING_KINDS`; the message is one line; ``hint`` (also at the end
    of the message, or its start) the fix when one is known, e.g. which flag to pass. Raised by scoring,
    by the adapters of audited functions and by the isolation worker, so it lives here, below them all."""

    def __init__(self, message: str, kind: str = "raised", hint: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.hint = hint


@dataclass(frozen=True, slots=True)
class WorstCase(JsonRecord):
    """One reproducer: the example's inputs and labels (hex text), what the candidate returned, the exact
    value (20 significant digits), the correctly rounded value, the error (ULP, and ``rel_error``) and a command
    that replays it. ``outcome``: the outcome class, or ``flushed_subnormal``, ``zero_where_nonzero``,
    ``wrong_sign`` for those finite mistakes (:data:`SIGN_MISTAKES`)."""

    inputs: tuple[str, ...]
    labels: tuple[str, ...]
    got: str
    exact: str
    rounded: str
    ulp: float | None
    outcome: str
    replay: str
    # Relative error |c - v| / |v| of the candidate's value c against the exact value v (not its rounding),
    # computed from the 20-digit exact value: 0 where c == v (both zero included), inf where v == 0 != c;
    # None where the outcome has no ULP number (a non-finite mistake) and in reports written before it.
    rel_error: float | None = field(default=None, metadata={"omit_default": True})
    # The component this case is about, for a gradient case: its flat index in ``inputs`` (the replay
    # prints every component); None for a loss case (left out).
    component: int | None = field(default=None, metadata={"omit_default": True})


@dataclass(frozen=True, slots=True)
class RegimeScore(JsonRecord):
    """The statistics of one score restricted to the examples of one regime (``oracles._family``: the
    family's partition of its examples, e.g. special, tiny, hard, soft). The fields mean what :class:`Score`'s
    fields of the same names mean, over that regime's examples only (a reduced candidate's batch is one
    example, in the regime :meth:`oracles._family.Family.regimes_of` gives the whole batch). ``counts`` has
    the keys of :data:`COUNTED_OUTCOMES`; ``raised`` is always 0 here (a call that failed has no exact value
    compared, so no regime: see ``Score.counts``). ``worst``: the example behind ``max_ulp`` (the first
    one with that error), except where that error is at most 0.5 ULP (correctly rounded) and the regime
    has a non-finite mistake, or no example of the regime has a ULP number: then its first non-finite
    mistake; None when neither exists (every value unconverged)."""

    examples: int
    max_ulp: float | None
    p99_ulp: float | None
    median_ulp: float | None
    mean_ulp: float | None
    max_bits: float | None
    mean_bits: float | None
    counts: dict[str, int]
    worst: WorstCase | None = None


# Label sets an audit can score on (``--labels``): every label, hard 0/1 labels only, or soft ones.
LABEL_SETS: tuple[str, ...] = ("all", "hard", "soft")
FINDING_KINDS = ("raised", "timeout", "crashed", "out_of_memory", "not_an_array", "wrong_shape", "wrong_dtype")


@dataclass(frozen=True, slots=True)
class Finding(JsonRecord):
    """The candidate failed to give a usable answer on one input (or batch): ``kind`` is one of
    :data:`FINDING_KINDS`, ``message`` one line of detail (the exception, the signal, the shapes)."""

    kind: str
    message: str
    inputs: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Speed(JsonRecord):
    """Time per element of the candidate on arrays of ``elements`` values, next to a memory copy of the same
    arrays timed in the same run; ``ratio`` = candidate / copy (the figure to compare across machines)."""

    elements: int
    candidate_ns_per_element: float
    copy_ns_per_element: float

    @property
    def ratio(self) -> float:
        return self.candidate_ns_per_element / self.copy_ns_per_element if self.copy_ns_per_element else math.inf

    def to_json(self) -> dict[str, Any]:
        return {**record_to_json(self), "ratio": number_to_json(self.ratio)}  # derived; ignored when read


# Shortcuts of counts written at the top level of a score since schema 1 (derived; ignored when read).
_COUNT_SHORTCUTS = ("nan", "inf", "finite_where_infinite")


@dataclass(frozen=True, slots=True)
class Score(JsonRecord):
    """Accuracy of one candidate on one family in one dtype.

    ULP statistics are over the examples with a ULP number (finite results for finite exact values, and
    agreeing non-finite ones at 0); ``max_ulp`` is None only when there was none. ``counts`` holds the
    outcome classes of :data:`COUNTED_OUTCOMES` (tally them with :mod:`harness.outcomes`). ``unsupported``
    is True when the candidate rejects the dtype; ``failure`` says why a candidate could not be scored at
    all (missing library, crash); ``stopped`` why its scoring stopped early (every call of a probe failed
    the same way; audits only). ``regimes``: the same statistics per regime (:class:`RegimeScore`); the
    whole score is the pseudo-regime ``"all"`` wherever a table needs a name for it.
    """

    family: str
    candidate: str
    dtype: str
    reduction: str
    examples: int
    max_ulp: float | None
    mean_ulp: float | None
    median_ulp: float | None
    p99_ulp: float | None
    max_bits: float | None
    mean_bits: float | None
    counts: dict[str, int]
    histogram: dict[str, int]
    unsupported: bool = False
    failure: str | None = None
    worst: tuple[WorstCase, ...] = ()
    reproducer: WorstCase | None = None
    findings: tuple[Finding, ...] = ()
    speed: Speed | None = None
    source: str = ""
    # why scoring stopped early (a systematic failure); None: it ran to the end
    stopped: str | None = field(default=None, metadata={"omit_default": True})
    labels: str = "all"  # the label set scored: "all", or "hard"/"soft" (a hard-labels-only candidate, --labels)
    # regime name -> the statistics over that regime's examples, in the family's regime order, only regimes
    # with at least one example (oracles._family); {} for reports written before it (left out while empty)
    regimes: dict[str, RegimeScore] = field(default_factory=dict, metadata={"omit_default": True})
    # what was scored (QUANTITIES): "loss", or "gradient" (one ULP number per component of the gradient with
    # respect to the inputs; a reduced candidate's is the gradient of its sum or mean). Rows of version-1
    # reports are loss rows.
    quantity: str = "loss"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.family, self.candidate, self.dtype, self.quantity)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in record_to_json(self).items():
            if key == "counts":
                out.update((k, int(self.counts.get(k, 0))) for k in _COUNT_SHORTCUTS)
            out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Curve(JsonRecord):
    """ULP error along a sweep of one input (the research plot): for ``family`` in ``dtype`` with the other
    inputs fixed as ``label`` describes, ``x`` holds the swept values (``x_name``: logit or probability) and
    ``errors[candidate]`` the fractional ULP error at each, None where the candidate returned a non-finite
    value for a finite exact one (or the like: no ULP number). ``bits[candidate]``: Herbie's bits of error
    at each (oracles._ulp), None likewise; None for curves written before it. ``quantity`` (:data:`QUANTITIES`):
    what the errors are of: the loss, or its gradient with respect to the swept input (for a row family, the
    gradient's component at the swept logit, the row's first); left out of the JSON for the loss."""

    family: str
    dtype: str
    label: str
    x_name: str
    x: tuple[float, ...]
    errors: dict[str, tuple[float | None, ...]]
    bits: dict[str, tuple[float | None, ...]] | None = field(default=None, metadata={"omit_default": True})
    quantity: str = field(default="loss", metadata={"omit_default": True})
    # gradient curves: candidate -> why it is not in this curve (no gradient, or its gradient raised); left
    # out while empty
    skipped: dict[str, str] = field(default_factory=dict, metadata={"omit_default": True})


@dataclass(frozen=True, slots=True)
class ErrorMap(JsonRecord):
    """Bits of error over a plane of two inputs (the heat map): for ``family`` in ``dtype``, ``x`` and ``y``
    are the grid's axes (``x_name`` "logit", ``y_name`` "label"), ascending, each value a number of
    ``dtype``; ``bits[candidate][j][i]`` is Herbie's bits of error (oracles._ulp) of the candidate at
    ``(x[i], y[j])``, rounded to 0.1 bit, None where the result has no ULP number (a non-finite mistake)."""

    family: str
    dtype: str
    x_name: str
    x: tuple[float, ...]
    y_name: str
    y: tuple[float, ...]
    bits: dict[str, tuple[tuple[float | None, ...], ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult(JsonRecord):
    """Everything one campaign found: settings, provenance, one :class:`Score` per family x candidate x dtype."""

    schema_version: int = SCHEMA_VERSION
    partial: bool = False
    settings: dict[str, Any]
    provenance: dict[str, Any]
    wall_seconds: float
    scores: tuple[Score, ...] = field(metadata={"key": "results"})
    curves: tuple[Curve, ...] = ()
    # heat maps of the error over (logit, label) (harness.sweep.error_map); absent from reports without any
    error_maps: tuple[ErrorMap, ...] = field(default=(), metadata={"omit_default": True})
    # the verdict of `lossfuzz audit` (harness.auditing.AuditVerdict.to_json()); absent from plain runs
    audit: dict[str, Any] | None = field(default=None, metadata={"omit_default": True})
    # what `lossfuzz sweep` swept (harness.exhaustive.SweepResult.to_json(): the family, dtype, labels, bit
    # range, cases, and per candidate the error per bucket of bit patterns); absent from other reports
    sweep: dict[str, Any] | None = field(default=None, metadata={"omit_default": True})

    TOOL: ClassVar[str] = "lossfuzz"

    def score(self, family: str, candidate: str, dtype: str, quantity: str = "loss") -> Score:
        for s in self.scores:
            if s.key == (family, candidate, dtype, quantity):
                return s
        raise KeyError(f"no score for family={family!r} candidate={candidate!r} dtype={dtype!r}"
                       f" quantity={quantity!r} in this run")

    def to_json(self) -> dict[str, Any]:
        data = record_to_json(self)
        return {"schema_version": data.pop("schema_version"), "tool": self.TOOL, **data}

    @classmethod
    def from_json(cls, data: Any) -> "RunResult":
        """A run from its report.json object: versions 1 to :data:`SCHEMA_VERSION` are read (unknown keys,
        e.g. a baseline's ``gate`` entry, ignored); a newer or missing version is a one-line ``ValueError``."""
        if not isinstance(data, dict) or data.get("tool") != cls.TOOL or "results" not in data:
            raise ValueError("not a lossfuzz report: expected a JSON object with tool='lossfuzz' and 'results'")
        version = data.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
            raise ValueError(f"report schema_version={version!r} is not one this lossfuzz reads (1 to {SCHEMA_VERSION});"
                             " regenerate it, or read it with the lossfuzz that wrote it")
        return record_from_json(cls, {**data, "schema_version": SCHEMA_VERSION})
