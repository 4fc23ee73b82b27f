"""The records a run produces and reports read: the public names of :mod:`harness._records`.

Every record is a frozen, slotted dataclass with ``to_json``/``from_json`` derived from its fields (the
policy for missing and unknown keys is in :mod:`harness._records`); ``report.json`` is documented in
reports/SCHEMA.md.
"""

from ._records import (
    COUNTED_OUTCOMES,
    FINDING_KINDS,
    HISTOGRAM_BINS,
    LABEL_SETS,
    NON_FINITE_MISTAKES,
    SIGN_MISTAKES,
    SCHEMA_VERSION,
    QUANTITIES,
    CandidateFailure,
    Curve,
    ErrorMap,
    Finding,
    RegimeScore,
    RunResult,
    Score,
    Speed,
    WorstCase,
)

__all__ = [
    "SCHEMA_VERSION",
    "QUANTITIES",
    "COUNTED_OUTCOMES",
    "FINDING_KINDS",
    "HISTOGRAM_BINS",
    "LABEL_SETS",
    "NON_FINITE_MISTAKES",
    "SIGN_MISTAKES",
    "CandidateFailure",
    "Curve",
    "ErrorMap",
    "Finding",
    "RegimeScore",
    "RunResult",
    "Score",
    "Speed",
    "WorstCase",
]
