"""The regression gate's thresholds: for each statistic it compares, how much worse it may get and still pass.

The gate (:mod:`harness.gate`) compares a *block of statistics* of the baseline with the same block now: the
whole score (the pseudo-regime ``all``) and each regime of it (``Score.regimes``). Each statistic has a
**threshold**, and each threshold a kind:

- ``ulp`` (``max_ulp``, ``p99_ulp``, ``median_ulp``): a factor and a floor. The largest passing figure is
  ``max(FACTOR x baseline, FLOOR ULP)``; written ``1.5x,1ulp`` (either part alone keeps the other's default).
  The floor keeps sub-ULP rounding noise out (0.4 → 0.6 ULP passes); the factor lets a figure drawn from a
  search vary a little (the Hypothesis search explores other inputs once a candidate's errors change).
- ``bits`` (``mean_bits``): an absolute number of bits the mean may grow by; written ``1bits`` (or ``1``).
  Bits are a log scale already (``log2(1 + ULP)``), so a factor would mean little near 0.
- ``rate`` (the outcome counts): how many percentage points of the examples the count may grow by, the
  counts compared as rates per example (``count / examples``: example counts differ between runs, e.g. with
  other ``--examples`` or other replayed inputs); written ``0.5%``. The largest passing count is
  ``old_count x new_examples / old_examples + RATE x new_examples``, plus the replay slack of
  :func:`harness.gate.check_run` when the old count is not 0. With ``,keep0`` (``2%,keep0``), and at
  ``0%``, a count that was 0 must stay 0.

Any threshold can be ``off`` (not compared). The **statistics** (:data:`STATISTICS`): the three ULP figures,
``mean_bits``, ``nonfinite_on_finite_inputs`` (non-finite mistakes on examples whose inputs are all finite:
the six :data:`~harness._records.NON_FINITE_MISTAKES` minus ``on_nonfinite_inputs``), and every outcome
class of :data:`~harness._records.COUNTED_OUTCOMES`.

**Defaults** (:data:`DEFAULT_THRESHOLDS`) and why:

- ``max_ulp``, ``p99_ulp``, ``median_ulp``: ``1.5x,1ulp``, the gate's max-ULP rule since its first version:
  an unchanged candidate replays the baseline's inputs and gives identical figures, while a changed one is
  searched anew, and a figure may then move by a little without the code being worse.
- ``mean_bits``: ``1bits``: one more bit of error on average is a doubling of the typical ULP error.
- ``nonfinite_on_finite_inputs``, ``raised``, ``flushed_subnormal``, ``unconverged``, ``zero_where_nonzero``,
  ``wrong_sign``: ``2%,keep0``: a nan or inf where the inputs are finite, a call that raises, a subnormal
  result flushed to 0, a value the oracle could not settle, a vanishing gradient or a sign flip: where the
  baseline had none, one is a new kind of failure (never search noise on code that does not make them) and
  fails; where it had some, a new search finds more or fewer of them, and the
  rate may grow by 2 points of the examples (``python ci/gate_noise.py``: against a run with another seed,
  0% failed 23-30 of 188 checks on this statistic alone, 2% 3-4, as many as max ULP's own rule).
- the six non-finite classes (``nan``, ``inf``, ...) and ``on_nonfinite_inputs``: ``1%``: their growth on
  finite inputs is judged by ``nonfinite_on_finite_inputs`` (and credited to them, so one mistake is not
  blamed twice); what is left are mistakes on ±inf/nan inputs, limit values that the families document and
  that the search draws a varying number of.

**Keys.** ``STAT`` sets the threshold of the whole score and of every regime; ``REGIME.STAT`` of one regime
(``soft.max_ulp``), ``all.STAT`` of the whole score only. The more specific key wins; among equal keys a
flag (``--threshold``) replaces the baseline's (``"thresholds"`` in its ``"gate"`` entry), which replaces
the default.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from ._records import COUNTED_OUTCOMES, NON_FINITE_MISTAKES, SIGN_MISTAKES

__all__ = [
    "WHOLE",
    "ULP_STATISTICS",
    "BITS_STATISTICS",
    "COUNT_STATISTICS",
    "NONFINITE_ON_FINITE",
    "STATISTICS",
    "STATISTIC_WORDS",
    "Threshold",
    "DEFAULT_THRESHOLDS",
    "parse_threshold",
    "parse_thresholds",
    "threshold_for",
    "threshold_specs",
]

# The name of the whole score where a table or a threshold key needs one (a regime of all the examples).
WHOLE = "all"
ULP_STATISTICS = ("max_ulp", "p99_ulp", "median_ulp")
BITS_STATISTICS = ("mean_bits",)
NONFINITE_ON_FINITE = "nonfinite_on_finite_inputs"
COUNT_STATISTICS = (NONFINITE_ON_FINITE, *COUNTED_OUTCOMES)
STATISTICS = (*ULP_STATISTICS, *BITS_STATISTICS, *COUNT_STATISTICS)

STATISTIC_WORDS: Mapping[str, str] = MappingProxyType({
    "max_ulp": "max ULP",
    "p99_ulp": "p99 ULP",
    "median_ulp": "median ULP",
    "mean_bits": "mean bits",
    NONFINITE_ON_FINITE: "non-finite results on finite inputs",
    "nan": "nan results",
    "inf": "inf results",
    "finite_where_infinite": "finite results where the exact value is infinite",
    "nan_where_infinite": "nan where the exact value is infinite",
    "wrong_infinity": "opposite infinities",
    "number_where_nan": "numbers where the exact value is nan",
    "flushed_subnormal": "flushed subnormals",
    "raised": "raised on",
    "unconverged": "oracle values not settled",
    "on_nonfinite_inputs": "non-finite results on ±inf/nan inputs",
    "zero_where_nonzero": "zeros where the exact value is a nonzero normal number",
    "wrong_sign": "results of the wrong sign",
})

_ULP_FORM = "a factor and/or a floor, e.g. 2x, 4ulp or 2x,4ulp"
_BITS_FORM = "a number of bits, e.g. 1bits"
_RATE_FORM = "a growth in percent of the examples, e.g. 0.5%, or 2%,keep0 (and a count of 0 stays 0)"


def _kind(statistic: str) -> str:
    return "ulp" if statistic in ULP_STATISTICS else "bits" if statistic in BITS_STATISTICS else "rate"


@dataclass(frozen=True, slots=True)
class Threshold:
    """How much worse one statistic may get. ``kind``: ``ulp`` (limit ``max(factor x old, floor)``), ``bits``
    (limit ``old + growth``) or ``rate`` (``growth``: a fraction of the examples); ``off``: not compared."""

    kind: str
    factor: float = 1.0
    floor: float = 0.0
    growth: float = 0.0
    off: bool = False
    keep_zero: bool = False  # rate: a count of 0 in the baseline must stay 0, whatever the growth allowed

    @property
    def spec(self) -> str:
        """The text that parses back to this threshold (``1.5x,1ulp``, ``1bits``, ``0.5%``, ``off``)."""
        if self.off:
            return "off"
        if self.kind == "ulp":
            return f"{self.factor:g}x,{self.floor:g}ulp"
        if self.kind == "bits":
            return f"{self.growth:g}bits"
        return f"{self.growth * 100:g}%" + (",keep0" if self.keep_zero else "")

    def __str__(self) -> str:
        """In words, for reports: ``1.5x, at least 1 ULP``, ``+1 bit``, ``+0.5% of examples``, ``must stay 0``."""
        if self.off:
            return "not compared"
        if self.kind == "ulp":
            return f"{self.factor:g}x, at least {self.floor:g} ULP"
        if self.kind == "bits":
            return f"+{self.growth:g} bit{'' if self.growth == 1 else 's'}"
        words = "rate may not grow" if self.growth == 0 else f"rate +{self.growth * 100:g}% of examples"
        return words + ("; 0 stays 0" if self.keep_zero or self.growth == 0 else "")

    def ulp_limit(self, old: float) -> float:
        """The largest passing ULP figure against a baseline of ``old``: ``max(factor x old, floor)``."""
        return max(self.factor * old, self.floor)

    def bits_limit(self, old: float) -> float:
        return old + self.growth

    def count_limit(self, old: int, old_examples: int, new_examples: int, slack: int = 0) -> float:
        """The largest passing count: the old rate plus ``growth`` times the new examples, plus ``slack``
        when the old count is not 0; 0 when the old count is 0 and ``keep_zero`` (or the growth is 0)."""
        if old == 0 and self.keep_zero:
            return 0.0
        base = old * new_examples / old_examples if old_examples > 0 else float(old)
        return base + self.growth * new_examples + (slack if old > 0 else 0)


DEFAULT_THRESHOLDS: Mapping[str, Threshold] = MappingProxyType({
    **{s: Threshold("ulp", factor=1.5, floor=1.0) for s in ULP_STATISTICS},
    "mean_bits": Threshold("bits", growth=1.0),
    **{s: Threshold("rate", growth=0.01) for s in (*NON_FINITE_MISTAKES, "on_nonfinite_inputs")},
    **{s: Threshold("rate", growth=0.02, keep_zero=True)
       for s in (NONFINITE_ON_FINITE, "raised", "flushed_subnormal", "unconverged", *SIGN_MISTAKES)},
})
assert set(DEFAULT_THRESHOLDS) == set(STATISTICS), "every compared statistic needs a default threshold"

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_REGIME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _number(text: str) -> float | None:
    return float(text) if re.fullmatch(_NUMBER, text) else None


def parse_threshold(statistic: str, value: Any, where: str = "--threshold", key: str | None = None) -> Threshold:
    """The threshold of ``statistic`` from its text (see the module docstring); a one-line ``ValueError``
    naming the bad value (as ``where KEY=VALUE``) and the accepted form otherwise. Parts left out keep the
    statistic's default."""
    key = key or statistic
    if statistic not in DEFAULT_THRESHOLDS:
        raise ValueError(f"{where} {key}={value}: {statistic!r} is not a statistic the gate compares; one of:"
                         f" {', '.join(STATISTICS)}")
    default = DEFAULT_THRESHOLDS[statistic]
    text = str(value).strip().lower().replace(" ", "")
    if text == "off":
        return Threshold(default.kind, off=True)
    bad = f"{where} {key}={value}: {str(value)!r} is not a threshold for {statistic}; write "
    if default.kind == "ulp":
        factor, floor = default.factor, default.floor
        parts = text.split(",")
        if not text or len(parts) > 2:
            raise ValueError(bad + _ULP_FORM + ", or off")
        seen = set()
        for part in parts:
            unit = "x" if part.endswith("x") else "ulp" if part.endswith("ulp") else None
            number = _number(part[: -len(unit)]) if unit else None
            if number is None or unit in seen or not math.isfinite(number):
                raise ValueError(bad + _ULP_FORM + ", or off")
            seen.add(unit)
            if unit == "x":
                if number < 1:
                    raise ValueError(f"{where} {key}={value}: the factor must be at least 1x (1x: no growth"
                                     f" above the floor); write e.g. {key}=1.5x")
                factor = number
            else:
                floor = number
        return Threshold("ulp", factor=factor, floor=floor)
    if default.kind == "bits":
        body = text[1:] if text.startswith("+") else text
        body = re.sub(r"bits?\Z", "", body)
        number = _number(body)
        if number is None or not math.isfinite(number):
            raise ValueError(bad + _BITS_FORM + ", or off")
        return Threshold("bits", growth=number)
    body = text[1:] if text.startswith("+") else text
    body, comma, flag = body.partition(",")
    number = _number(body[:-1]) if body.endswith("%") else None
    if number is None or not number <= 100 or (comma and flag != "keep0"):
        raise ValueError(bad + _RATE_FORM + " (at most 100%), or off")
    return Threshold("rate", growth=number / 100, keep_zero=bool(comma))


def _split_key(key: str, where: str) -> tuple[str | None, str]:
    regime, dot, statistic = str(key).strip().rpartition(".")
    if not dot:
        return None, statistic
    if not _REGIME.match(regime):
        raise ValueError(f"{where} {key}=...: {regime!r} is not a regime name; write REGIME.STATISTIC, e.g."
                         f" soft.max_ulp, or all.max_ulp for the whole score")
    return regime, statistic


def parse_thresholds(value: Any, where: str = "--threshold") -> dict[str, Threshold]:
    """Thresholds by key (``STAT``, ``REGIME.STAT``, ``all.STAT``) from repeated ``KEY=VALUE`` texts (a list,
    as ``--threshold`` gives them) or a mapping (a baseline's ``"thresholds"``); a one-line ``ValueError``
    naming the bad item and the accepted form otherwise. Keys are kept as written (``max_ulp``,
    ``soft.max_ulp``)."""
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = []
        for item in [value] if isinstance(value, str) else list(value):
            key, eq, text = str(item).partition("=")
            if not eq or not key.strip():
                raise ValueError(f"{where} {item!r} is not [REGIME.]STATISTIC=VALUE; pass e.g. {where} max_ulp=2x,"
                                 f" {where} median_ulp=4ulp, {where} soft.mean_bits=2bits or {where} nan=0.5%")
            items.append((key.strip(), text))
    out: dict[str, Threshold] = {}
    for key, text in items:
        regime, statistic = _split_key(key, where)
        out[key if regime is None else f"{regime}.{statistic}"] = parse_threshold(statistic, text, where, key)
    return out


def threshold_for(thresholds: Mapping[str, Threshold], regime: str, statistic: str) -> Threshold:
    """The threshold of ``statistic`` in ``regime`` (:data:`WHOLE` for the whole score): ``REGIME.STAT``, else
    ``STAT``, else the default."""
    return thresholds.get(f"{regime}.{statistic}") or thresholds.get(statistic) or DEFAULT_THRESHOLDS[statistic]


def threshold_specs(thresholds: Mapping[str, Threshold]) -> dict[str, str]:
    """The texts of ``thresholds`` (a baseline's ``"thresholds"`` entry): key -> spec."""
    return {key: t.spec for key, t in thresholds.items()}
