"""Binary floating-point target formats (float16, bfloat16, float32, float64).

A format is described by its significand precision ``p`` (counting the hidden bit) and its exponent
range ``[emin, emax]`` of normal numbers: finite positive values are ``m * 2**(e - p + 1)`` with
``emin <= e <= emax`` and ``2**(p-1) <= m < 2**p`` (normal) or ``e = emin`` and ``0 < m < 2**(p-1)``
(subnormal). Every value of these four formats is exactly representable as a Python ``float``, which is
why rounded results can travel as ``float`` without a second rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Format", "FORMATS", "resolve_format"]


@dataclass(frozen=True, slots=True)
class Format:
    """One IEEE-754-style binary format: name, precision ``p``, and normal exponent range."""

    name: str
    precision: int
    emin: int
    emax: int
    bits: int

    @property
    def quantum_min(self) -> int:
        """Exponent of the smallest subnormal, ``emin - p + 1`` (its value is ``2**quantum_min``)."""
        return self.emin - self.precision + 1

    @property
    def max_finite(self) -> float:
        """Largest finite value ``(2 - 2**(1-p)) * 2**emax``."""
        return float((2 - 2.0 ** (1 - self.precision)) * 2.0**self.emax)

    @property
    def min_normal(self) -> float:
        return 2.0**self.emin

    @property
    def min_subnormal(self) -> float:
        return 2.0**self.quantum_min

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype of this format (``ml_dtypes.bfloat16`` for bfloat16, imported on first use)."""
        if self.name == "bfloat16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.name)

    @property
    def uint_dtype(self) -> np.dtype:
        """Unsigned integer dtype of the same width, used to read bit patterns."""
        return np.dtype(f"uint{self.bits}")

    def __str__(self) -> str:
        return self.name


FORMATS: dict[str, Format] = {
    "float16": Format("float16", 11, -14, 15, 16),
    "bfloat16": Format("bfloat16", 8, -126, 127, 16),
    "float32": Format("float32", 24, -126, 127, 32),
    "float64": Format("float64", 53, -1022, 1023, 64),
}


def resolve_format(dtype: Any) -> Format:
    """Map a dtype given as a name, numpy dtype, scalar type or :class:`Format` to its :class:`Format`.

    Raises ``ValueError`` naming the offending value and the accepted names.
    """
    if isinstance(dtype, Format):
        return dtype
    try:  # the harness asks hundreds of thousands of times: names and dtypes seen before are looked up
        hit = _RESOLVED.get(dtype)
    except TypeError:  # unhashable: resolved (and rejected) below
        hit = None
    if hit is not None:
        return hit
    name = dtype if isinstance(dtype, str) else None
    if name is None:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = repr(dtype)
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ValueError(f"dtype={name!r} is not one of: {', '.join(FORMATS)}")
    if len(_RESOLVED) < 256:
        _RESOLVED[dtype] = fmt
    return fmt


_RESOLVED: dict = dict(FORMATS)  # dtype-like -> Format, for those resolved before
