"""Results that outlive a run: frozen, slotted records, and their JSON form (schema in reports/SCHEMA.md)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "FINDING_KINDS",
    "LABEL_SETS",
    "Finding",
    "WorstCase",
    "Speed",
    "Score",
    "Curve",
    "RunResult",
    "HISTOGRAM_BINS",
    "COUNTED_OUTCOMES",
    "NON_FINITE_MISTAKES",
]

SCHEMA_VERSION = 1

# Histogram of fractional ULP errors: "exact" is bit-identical to the correctly rounded value; the others
# are upper bounds (inclusive) in ULP; "more" is everything above 2**10.
HISTOGRAM_BINS = ("exact", "<=0.5", "<=1", "<=4", "<=1024", "more")

# Outcomes counted per score besides the ULP statistics (see oracles._ulp for their definitions), plus
# flushed subnormals (the correctly rounded value is a nonzero subnormal and the candidate returned 0) and
# raised (examples on which the candidate raised or returned something unusable: see Score.failure), and
# on_nonfinite_inputs: how many of the non-finite mistakes were on examples with a ±inf or nan input
# (limit values; see the family docstrings), so they can be told from failures on finite inputs.
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
)

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


@dataclass(frozen=True, slots=True)
class WorstCase:
    """One reproducer: the example's inputs and labels (hex text), what the candidate returned, the exact
    value (20 significant digits), the correctly rounded value, the error and a command that replays it."""

    inputs: tuple[str, ...]
    labels: tuple[str, ...]
    got: str
    exact: str
    rounded: str
    ulp: float | None
    outcome: str
    replay: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        data["labels"] = list(self.labels)
        data["ulp"] = number_to_json(self.ulp)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "WorstCase":
        return cls(
            inputs=tuple(data["inputs"]),
            labels=tuple(data["labels"]),
            got=data["got"],
            exact=data["exact"],
            rounded=data["rounded"],
            ulp=number_from_json(data["ulp"]),
            outcome=data["outcome"],
            replay=data["replay"],
        )


# Label sets an audit can score on (``--labels``): every label, hard 0/1 labels only, or soft ones.
LABEL_SETS: tuple[str, ...] = ("all", "hard", "soft")
FINDING_KINDS = ("raised", "timeout", "crashed", "out_of_memory", "not_an_array", "wrong_shape", "wrong_dtype")


@dataclass(frozen=True, slots=True)
class Finding:
    """The candidate failed to give a usable answer on one input (or batch): ``kind`` is one of
    :data:`FINDING_KINDS`, ``message`` one line of detail (the exception, the signal, the shapes)."""

    kind: str
    message: str
    inputs: tuple[str, ...]
    labels: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "inputs": list(self.inputs), "labels": list(self.labels)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Finding":
        return cls(data["kind"], data["message"], tuple(data["inputs"]), tuple(data["labels"]))


@dataclass(frozen=True, slots=True)
class Speed:
    """Time per element of the candidate on arrays of ``elements`` values, next to a memory copy of the same
    arrays timed in the same run; ``ratio`` = candidate / copy (the figure to compare across machines)."""

    elements: int
    candidate_ns_per_element: float
    copy_ns_per_element: float

    @property
    def ratio(self) -> float:
        return self.candidate_ns_per_element / self.copy_ns_per_element if self.copy_ns_per_element else math.inf

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": number_to_json(self.ratio)}


@dataclass(frozen=True, slots=True)
class Score:
    """Accuracy of one candidate on one family in one dtype.

    ULP statistics are over the examples with a ULP number (finite results for finite exact values, and
    agreeing non-finite ones at 0); ``max_ulp`` is None only when there was none. ``counts`` holds the
    outcome classes of :data:`COUNTED_OUTCOMES`. ``unsupported`` is True when the candidate rejects the
    dtype; ``failure`` says why a candidate could not be scored at all (missing library, crash);
    ``stopped`` why its scoring stopped early (every call of a probe failed the same way; audits only).
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
    histogram: dict[str, int]
    counts: dict[str, int]
    unsupported: bool = False
    failure: str | None = None
    worst: tuple[WorstCase, ...] = ()
    speed: Speed | None = None
    source: str = ""
    reproducer: WorstCase | None = None
    findings: tuple[Finding, ...] = ()
    stopped: str | None = None  # why scoring stopped early (a systematic failure); None: it ran to the end
    labels: str = "all"  # the label set scored: "all", or "hard"/"soft" (a hard-labels-only candidate, --labels)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.family, self.candidate, self.dtype)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "family": self.family,
            "candidate": self.candidate,
            "dtype": self.dtype,
            "reduction": self.reduction,
            "examples": self.examples,
        }
        for name in ("max_ulp", "mean_ulp", "median_ulp", "p99_ulp", "max_bits", "mean_bits"):
            data[name] = number_to_json(getattr(self, name))
        data["nan"] = self.counts.get("nan", 0)
        data["inf"] = self.counts.get("inf", 0)
        data["finite_where_infinite"] = self.counts.get("finite_where_infinite", 0)
        data["counts"] = dict(self.counts)
        data["histogram"] = dict(self.histogram)
        data["unsupported"] = self.unsupported
        data["failure"] = self.failure
        data["worst"] = [w.to_json() for w in self.worst]
        data["reproducer"] = None if self.reproducer is None else self.reproducer.to_json()
        data["findings"] = [f.to_json() for f in self.findings]
        data["speed"] = None if self.speed is None else self.speed.to_json()
        data["source"] = self.source
        if self.stopped is not None:
            data["stopped"] = self.stopped
        data["labels"] = self.labels
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Score":
        def number(name: str) -> float | None:
            return number_from_json(data[name])

        speed = data.get("speed")
        return cls(
            family=data["family"],
            candidate=data["candidate"],
            dtype=data["dtype"],
            reduction=data["reduction"],
            examples=data["examples"],
            max_ulp=number("max_ulp"),
            mean_ulp=number("mean_ulp"),
            median_ulp=number("median_ulp"),
            p99_ulp=number("p99_ulp"),
            max_bits=number("max_bits"),
            mean_bits=number("mean_bits"),
            histogram=dict(data["histogram"]),
            counts=dict(data["counts"]),
            unsupported=data["unsupported"],
            failure=data["failure"],
            worst=tuple(WorstCase.from_json(w) for w in data["worst"]),
            speed=None
            if speed is None
            else Speed(speed["elements"], speed["candidate_ns_per_element"], speed["copy_ns_per_element"]),
            source=data.get("source", ""),
            reproducer=None if data.get("reproducer") is None else WorstCase.from_json(data["reproducer"]),
            findings=tuple(Finding.from_json(f) for f in data.get("findings", [])),
            stopped=data.get("stopped"),
            labels=data.get("labels", "all"),
        )


@dataclass(frozen=True, slots=True)
class Curve:
    """ULP error along a sweep of one input (the research plot): for ``family`` in ``dtype`` with the other
    inputs fixed as ``label`` describes, ``x`` holds the swept values (``x_name``: logit or probability) and
    ``errors[candidate]`` the fractional ULP error at each, None where the candidate returned a non-finite
    value for a finite exact one (or the like: no ULP number)."""

    family: str
    dtype: str
    label: str
    x_name: str
    x: tuple[float, ...]
    errors: dict[str, tuple[float | None, ...]]

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "dtype": self.dtype,
            "label": self.label,
            "x_name": self.x_name,
            "x": list(self.x),
            "errors": {k: [number_to_json(v) for v in vs] for k, vs in self.errors.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Curve":
        return cls(
            family=data["family"],
            dtype=data["dtype"],
            label=data["label"],
            x_name=data["x_name"],
            x=tuple(data["x"]),
            errors={k: tuple(number_from_json(v) for v in vs) for k, vs in data["errors"].items()},
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything one campaign found: settings, provenance, one :class:`Score` per family x candidate x dtype."""

    settings: dict[str, Any]
    provenance: dict[str, Any]
    scores: tuple[Score, ...]
    wall_seconds: float
    partial: bool = False
    curves: tuple[Curve, ...] = ()
    schema_version: int = field(default=SCHEMA_VERSION)
    audit: dict[str, Any] | None = None  # the verdict of `lossfuzz audit` (harness.auditing.AuditVerdict.to_json())

    def score(self, family: str, candidate: str, dtype: str) -> Score:
        for s in self.scores:
            if s.key == (family, candidate, dtype):
                return s
        raise KeyError(f"no score for family={family!r} candidate={candidate!r} dtype={dtype!r} in this run")

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool": "lossfuzz",
            "partial": self.partial,
            "settings": dict(self.settings),
            "provenance": dict(self.provenance),
            "wall_seconds": self.wall_seconds,
            "results": [s.to_json() for s in self.scores],
            "curves": [c.to_json() for c in self.curves],
            **({} if self.audit is None else {"audit": dict(self.audit)}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunResult":
        if not isinstance(data, dict) or data.get("tool") != "lossfuzz" or "results" not in data:
            raise ValueError("not a lossfuzz report: expected a JSON object with tool='lossfuzz' and 'results'")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"report schema_version={version!r} is not {SCHEMA_VERSION}; regenerate it with this lossfuzz")
        return cls(
            settings=data["settings"],
            provenance=data["provenance"],
            scores=tuple(Score.from_json(s) for s in data["results"]),
            wall_seconds=data["wall_seconds"],
            partial=data["partial"],
            curves=tuple(Curve.from_json(c) for c in data.get("curves", [])),
            audit=data.get("audit"),
        )


