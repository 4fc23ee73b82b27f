"""Sweeps: the ULP error of each candidate along one swept input, for the research plots.

For a family whose inputs are logits (``Family.input_domain == "real"``) the logit runs over
``±10**-3 .. ±10**4`` (log-spaced, both signs); for probabilities (``"unit"``, e.g. ``binary_ce``) the
probability runs over ``10**-30 .. 1 - 10**-7``. The label settings are the family's
(``Family.sweep_labels``): a hard label (``z = 1``: negative logits are confidently wrong) and a soft label
near 1 (``z = 0.9999``), as in the naive-vs-Keras-vs-TensorFlow comparison figure of the seeds, or class 0
for class-index labels; rows are ``[x, 0]``. Candidates of a family with parameters run at its defaults.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import oracles

from ._records import Curve
from .candidates import Candidate, Unsupported
from .metrics import compare
from .scoring import CandidateFailure, TruthCache, call_candidate
from .strategies import Example

__all__ = ["sweep_points", "sweep"]


def sweep_points(family: str, dtype: str, points: int = 161) -> tuple[str, np.ndarray]:
    """The swept input values, rounded to ``dtype`` and de-duplicated, and their name."""
    fmt = oracles.resolve_format(dtype)
    if oracles.get_family(family).input_domain == "unit":
        p = np.concatenate([np.logspace(-30, -1, points // 2), 1 - np.logspace(-1, -7, points // 2)])
        values = np.unique(p.astype(fmt.numpy_dtype).astype(np.float64))
        return "probability", values[(values > 0) & (values < 1)]
    half = np.logspace(-3, 4, points // 2)
    values = np.unique(np.concatenate([-half[::-1], half]).astype(fmt.numpy_dtype).astype(np.float64))
    return "logit", values[np.isfinite(values)]


def _examples(family: str, dtype: str, x: np.ndarray, z: Any) -> list[Example]:
    fam = oracles.get_family(family)
    fmt = oracles.resolve_format(dtype)
    cast = lambda v: np.asarray(v, dtype=np.float64).astype(fmt.numpy_dtype)  # noqa: E731
    if not fam.row_wise:
        return [Example(cast(v), cast(z)) for v in x]
    if fam.label_kind == "index":
        return [Example(cast([v, 0.0]), np.array(int(z), dtype=np.int64)) for v in x]
    return [Example(cast([v, 0.0]), cast([z, 1 - z])) for v in x]


def sweep(family: str, dtype: str, chosen: list[Candidate], label_set: str = "all") -> list[Curve]:
    """One curve per label setting, with every chosen per-example candidate that supports ``dtype``;
    ``label_set`` (:data:`harness._records.LABEL_SETS`) keeps the hard (z = 1) or the soft curve only."""
    x_name, x = sweep_points(family, dtype)
    curves = []
    fam = oracles.get_family(family)
    settings = fam.sweep_labels()
    if label_set != "all":  # a class index is a hard label
        settings = tuple((c, z) for c, z in settings if (fam.label_kind == "index" or z in (0.0, 1.0)) == (label_set == "hard"))
    for label, z in settings:
        examples = _examples(family, dtype, x, z)
        cache = TruthCache(family, dtype)
        truth = cache.truth(examples, "none")
        stacked_x = np.stack([e.inputs for e in examples])
        stacked_z = np.stack([e.labels for e in examples])
        errors: dict[str, tuple[float | None, ...]] = {}
        for candidate in chosen:
            if candidate.reduction != "none" or not candidate.supports(dtype) or not candidate.available():
                continue
            try:
                got = call_candidate(candidate, stacked_x, stacked_z, truth.rounded.shape, dtype)
            except (CandidateFailure, Unsupported):
                continue
            ulp = compare(truth, got).ulp
            errors[candidate.name] = tuple(None if math.isnan(u) else float(u) for u in ulp)
        curves.append(Curve(family, dtype, label, x_name, tuple(float(v) for v in x), errors))
    return curves
