"""Sweeps: the error of each candidate along one swept input, and over a plane of two, for the research plots.

For a family whose inputs are logits (``Family.input_domain == "real"``) the logit runs over
``±10**-3 .. ±10**4`` (log-spaced, both signs); for probabilities (``"unit"``, e.g. ``binary_ce``) the
probability runs over ``10**-30 .. 1 - 10**-7``. The label settings are the family's
(``Family.sweep_labels``): a hard label (``z = 1``: negative logits are confidently wrong) and a soft label
near 1 (``z = 0.9999``), as in the naive-vs-Keras-vs-TensorFlow comparison figure of the seeds, or class 0
for class-index labels; rows are ``[x, 0]``. Candidates of a family with parameters run at its defaults.
Each curve holds the ULP error and Herbie's bits of error (both defined in :mod:`oracles._ulp`).

**Error maps** (:func:`error_map`, the heat map of the report): for the families of
:data:`ERROR_MAP_FAMILIES` (elementwise, logits and soft labels), the bits of error of each candidate over a
grid of the (logit, label) plane: :data:`MAP_LOGITS` logits log-spaced over ``±10**-2 .. ±10**4`` and
labels ``0``, ``1`` and ``sigmoid(t)`` for :data:`MAP_LABELS` values of ``t`` evenly over ``[-15, 15]``
(fine near both 0 and 1, where ``x - x*z`` cancels), each rounded to the dtype and de-duplicated. The
oracle evaluates the whole grid in one call (its fast path decides all but a few percent of the values).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

import oracles

from ._records import QUANTITIES, Curve, ErrorMap
from .candidates import Candidate, Unsupported
from .metrics import compare
from .scoring import CandidateFailure, TruthCache, call_candidate
from .strategies import Example

__all__ = ["sweep_points", "sweep", "ERROR_MAP_FAMILIES", "MAP_LOGITS", "MAP_LABELS", "error_map_grid", "error_map"]


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


def sweep(family: str, dtype: str, chosen: list[Candidate], label_set: str = "all",
          quantities: Sequence[str] = ("loss",)) -> list[Curve]:
    """One curve per label setting and quantity (:data:`~harness._records.QUANTITIES`, the loss curves
    first), with every chosen per-example candidate that supports ``dtype``; ``label_set``
    (:data:`harness._records.LABEL_SETS`) keeps the hard (z = 1) or the soft curve only.

    A gradient curve holds the error of each candidate's gradient (:meth:`Candidate.gradient`) against the
    exact, correctly rounded gradient (``oracles.evaluate(..., what="gradient")``), at the component of
    the swept input (a row's first logit). A candidate is left out of a gradient curve, with a one-line note
    in ``Curve.skipped``, when it has no gradient (its ``gradient_note``) or when its gradient raises or
    returns something unusable; out of a loss curve when its loss does (silently, as before gradients: its
    score says why). A sweep never fails because of a candidate."""
    x_name, x = sweep_points(family, dtype)
    curves = []
    fam = oracles.get_family(family)
    settings = fam.sweep_labels()
    if label_set != "all":  # a class index is a hard label
        settings = tuple((c, z) for c, z in settings if (fam.label_kind == "index" or z in (0.0, 1.0)) == (label_set == "hard"))
    for quantity in (q for q in QUANTITIES if q in quantities):
        for label, z in settings:
            examples = _examples(family, dtype, x, z)
            stacked_x = np.stack([e.inputs for e in examples])
            stacked_z = np.stack([e.labels for e in examples])
            if quantity == "loss":
                truth = TruthCache(family, dtype).truth(examples, "none")
            else:
                truth = oracles.evaluate(family, **{fam.input_name: stacked_x}, labels=stacked_z, dtype=dtype,
                                         what="gradient")
            errors: dict[str, tuple[float | None, ...]] = {}
            bits: dict[str, tuple[float | None, ...]] = {}
            skipped: dict[str, str] = {}
            for candidate in _per_example(chosen, dtype):
                if quantity == "gradient" and not getattr(candidate, "has_gradient", False):
                    # (an audited function without gradient support has neither attribute)
                    skipped[candidate.name] = f"no gradient: {getattr(candidate, 'gradient_note', '') or 'none given'}"
                    continue
                fn = candidate if quantity == "loss" else candidate.gradient
                try:
                    got = call_candidate(fn, stacked_x, stacked_z, truth.rounded.shape, dtype)
                except Unsupported:  # rejects the dtype: left out of every curve, as of the score tables
                    continue
                except CandidateFailure as exc:
                    if quantity == "gradient":  # (a loss that fails here shows in its score's findings)
                        skipped[candidate.name] = f"gradient {exc}"
                    continue
                comparison = compare(truth, got)
                errors[candidate.name] = _numbers(_swept_component(comparison.ulp, truth.rounded.shape, fam.row_wise))
                bits[candidate.name] = _numbers(_swept_component(comparison.bits, truth.rounded.shape, fam.row_wise))
            curves.append(Curve(family, dtype, label, x_name, tuple(float(v) for v in x), errors, bits, quantity, skipped))
    return curves


def _swept_component(values: np.ndarray, shape: tuple[int, ...], row_wise: bool) -> np.ndarray:
    """The values at the swept input: all of them for a loss or an elementwise gradient, the first
    component of each row of a row family's gradient (rows are ``[x, 0]``)."""
    values = np.asarray(values).reshape(shape)
    return values[:, 0] if row_wise and values.ndim == 2 else values


def _per_example(chosen: list[Candidate], dtype: str) -> list[Candidate]:
    """The candidates a sweep or map calls: per-example ones that take ``dtype`` and whose library is here."""
    return [c for c in chosen if c.reduction == "none" and c.supports(dtype) and c.available()]


def _numbers(values: np.ndarray) -> tuple[float | None, ...]:
    """A record's tuple of errors: None where there is no number (nan)."""
    return tuple(None if math.isnan(v) else float(v) for v in np.ravel(values))


# Families with an error map: elementwise, logits as inputs, soft labels. (focal would qualify, but it has no
# fast path yet: its ~2000 grid values would all take the Ziv path.)
ERROR_MAP_FAMILIES: tuple[str, ...] = ("sigmoid_ce",)
MAP_LOGITS = 64  # 32 per sign
MAP_LABELS = 31  # sigmoid(t), t evenly over [-15, 15], besides 0 and 1
# Bits of error are stored rounded to this many decimals (a colour needs no more; keeps report.json small).
MAP_DECIMALS = 1


def error_map_grid(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """The axes of an error map in ``dtype`` (see the module docstring): logits and labels, ascending, as
    float64 values that are exactly numbers of ``dtype``."""
    fmt = oracles.resolve_format(dtype)
    half = np.logspace(-2, 4, MAP_LOGITS // 2)
    x = np.unique(np.concatenate([-half[::-1], half]).astype(fmt.numpy_dtype).astype(np.float64))
    t = np.linspace(-15.0, 15.0, MAP_LABELS)
    z = np.unique(np.concatenate([[0.0, 1.0], 1.0 / (1.0 + np.exp(-t))]).astype(fmt.numpy_dtype).astype(np.float64))
    return x[np.isfinite(x)], z


def error_map(family: str, dtype: str, chosen: list[Candidate], label_set: str = "all") -> ErrorMap | None:
    """Bits of error of every chosen per-example candidate over the (logit, label) grid of
    :func:`error_map_grid`, in one oracle call; None for a family outside :data:`ERROR_MAP_FAMILIES` or a run
    restricted to hard or soft labels (``label_set``). Candidates scored on hard labels only, and those that
    raise on the grid, are left out."""
    if family not in ERROR_MAP_FAMILIES or label_set != "all":
        return None
    fam = oracles.get_family(family)
    fmt = oracles.resolve_format(dtype)
    x, z = error_map_grid(dtype)
    grid_x, grid_z = (a.astype(fmt.numpy_dtype).ravel() for a in np.meshgrid(x, z))  # row j: label z[j]
    truth = oracles.evaluate(family, **{fam.input_name: grid_x}, labels=grid_z, dtype=dtype)
    bits: dict[str, tuple[tuple[float | None, ...], ...]] = {}
    for candidate in _per_example(chosen, dtype):
        if getattr(candidate, "labels", "all") != "all":
            continue
        try:
            got = call_candidate(candidate, grid_x, grid_z, truth.rounded.shape, dtype)
        except (CandidateFailure, Unsupported):
            continue
        rows = np.round(compare(truth, got).bits, MAP_DECIMALS).reshape(z.size, x.size)
        bits[candidate.name] = tuple(_numbers(row) for row in rows)
    return ErrorMap(family, dtype, "logit", tuple(map(float, x)), "label", tuple(map(float, z)), bits)
