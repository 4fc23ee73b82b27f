"""Writing and reading float values as users type them: hex for exactness, decimal for people.

:func:`parse_value` is the one parser of numbers typed by users or stored as text (reports, corpora,
baselines); the ``fmt_*`` functions are the one way figures are printed (reports, gate, terminal).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from oracles import resolve_format

__all__ = ["float_hex", "parse_value", "parse_values", "fmt_ulp", "fmt_rel", "fmt_bits", "fmt_seconds"]


def float_hex(value: Any) -> str:
    """Exact hexadecimal text of a float (``float.hex`` with trailing zero digits dropped), or inf/nan."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    text = v.hex()
    mantissa, _, exponent = text.partition("p")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exponent}"


_NUMBER = re.compile(r"^[+-]?(0x[0-9a-f.]+(p[+-]?\d+)?|inf|infinity|nan|[0-9.]+(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?)$", re.I)


def parse_value(text: str, what: str = "value") -> float:
    """A float from decimal or hex text (``1e-3``, ``-0x1.8p+3``, ``inf``, ``nan``); one-line ValueError otherwise."""
    t = text.strip()
    if not _NUMBER.match(t):
        raise ValueError(f"{what} {text!r} is not a number; write decimal (1e-3), hex (0x1.8p+3), inf or nan")
    try:
        return float.fromhex(t) if "0x" in t.lower() else float(t)
    except OverflowError:  # hex beyond the float range (decimal rounds to inf)
        raise ValueError(f"{what} {text!r} is beyond the float64 range; write inf, or a value up to 0x1.fffffffffffffp+1023") from None


def parse_values(text: str, what: str, dtype: Any) -> np.ndarray:
    """Comma-separated numbers (rows separated by ``;``), each rounded to ``dtype`` as a candidate receives it."""
    fmt = resolve_format(dtype)
    rows = [[parse_value(item, what) for item in row.split(",") if item.strip()] for row in text.split(";") if row.strip()]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError(f"{what} {text!r}: rows must be non-empty and of equal length (separate rows with ';')")
    array = np.array(rows if len(rows) > 1 else rows[0], dtype=np.float64)
    with np.errstate(over="ignore"):
        return array.astype(fmt.numpy_dtype)


def fmt_ulp(value: float | None) -> str:
    """A ULP figure, compact: ``0``, ``0.5``, ``12.3``, ``4096``, ``1.53e+07``, ``inf``; ``—`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if abs(value) >= 1e5:
        return f"{value:.3g}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def fmt_rel(value: float | None) -> str:
    """A relative error (``WorstCase.rel_error``), three significant digits: ``1.66e-04``, ``0``, ``inf``;
    ``—`` for none."""
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "inf"
    return "0" if value == 0 else f"{value:.3g}"


def fmt_bits(value: float | None) -> str:
    """Bits of error, three significant digits; ``—`` for none."""
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "inf"
    return "0" if value == 0 else f"{value:.3g}"


def fmt_seconds(seconds: float | None) -> str:
    """A duration for people: ``4.1 s``, ``2 min 5 s``, ``1 h 3 min``; ``—`` for none."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
