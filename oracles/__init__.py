"""Exact, correctly rounded oracles for machine-learning cross-entropy losses.

For every loss family (``sigmoid_ce``, ``binary_ce``, ``softmax_ce``, ``sparse_softmax_ce``, ``focal``; the
registry is :data:`FAMILIES`, each family a :class:`oracles._family.Family` declaring its domains, regimes and
parameters) the oracle
evaluates the real-number formula on the inputs exactly as given, encloses it with mpmath interval
arithmetic in a private context, and raises the precision (Ziv's strategy) until the round-to-nearest-even
value in the target format (float16, bfloat16, float32, float64) is decided. A certified fast path
(:mod:`oracles._fast`: whole arrays in float64, or double-double for float64 targets, with a proven error
bound) decides first every value whose whole enclosure rounds to one value; the rest take Ziv's path.
This package knows nothing of candidates or reports.

Public API::

    loss(family, *, logits|probs, labels, dtype, reduction="none", params=None) -> ndarray in dtype
    gradient(family, *, logits|probs, labels, dtype, reduction="none") -> ndarray in dtype
    exact(family, *, logits|probs, labels, dtype="float64", ...)       -> ndarray of mpmath.mpf
    evaluate(...)                                                      -> Truth (values + status per point)
    ulp_error(computed, exact, dtype), bits_of_error(...), relative_error(c, v), classify(...)
    row_all(mask), row_any(mask)   -> numpy's all/any along the last axis, fast for narrow rows
"""

from ._api import FAMILIES, REDUCTIONS, OracleUnconverged, Truth, default_families, evaluate, exact, family_names, format_exact, get_family, gradient, loss
from ._formats import FORMATS, Format, resolve_format
from ._rounding import round_mpf, round_rational
from ._rows import row_all, row_any
from ._ulp import (OUTCOME_CODE, OUTCOMES, bits_of_error, classify, measure, measure_codes, ordinal, outcome_codes,
                   outcome_names, relative_error, ulp_error, ulp_exponent)

__all__ = [
    "FAMILIES",
    "FORMATS",
    "OUTCOMES",
    "OUTCOME_CODE",
    "REDUCTIONS",
    "Format",
    "OracleUnconverged",
    "Truth",
    "bits_of_error",
    "classify",
    "default_families",
    "evaluate",
    "exact",
    "family_names",
    "format_exact",
    "get_family",
    "gradient",
    "loss",
    "measure",
    "measure_codes",
    "outcome_names",
    "outcome_codes",
    "ordinal",
    "relative_error",
    "resolve_format",
    "round_mpf",
    "round_rational",
    "row_all",
    "row_any",
    "ulp_error",
    "ulp_exponent",
]
