"""Cross-check: an independent arb/MPFR reference oracle agrees bit for bit with ``oracles``.

The reference (:mod:`tests.crosscheck.reference_oracle`) shares no code with :mod:`oracles`: python-flint arb
balls instead of mpmath intervals, its own decomposition of every loss and gradient, its own limit rules and
gmpy2/MPFR for the final rounding. Points come from :mod:`tests.crosscheck.points` (the whole float range of
each dtype: subnormals, ``±max``, exp thresholds, soft and subnormal labels, ``±inf`` and nan).

Default run: 10^4 points (rows for the softmax families) per family x dtype for the loss, 2000 for the
gradient, a few hundred small batches for the ``sum``/``mean`` reductions, and 2000 points per family x
dtype built to sit a hair away from a rounding midpoint (:func:`points.structured`), and the gradient at every
point a default campaign scores gradients on (the catalogue and the loss searches' examples of two
candidates). ``-m slow`` runs 10^6 points in all
(``LOSSFUZZ_CROSSCHECK_POINTS`` overrides), on every CPU.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import oracles

from . import points as P
from .reference_oracle import REFERENCE_FORMATS, reference_gradient, reference_loss, round_rational_to

DTYPES = P.DTYPES
FAMILIES = P.FAMILIES
LOSS_POINTS = 10_000
GRADIENT_POINTS = 2_000
REDUCTION_BATCHES = 120  # per family x dtype, each checked with sum and mean (and the mean gradient)
SLOW_POINTS = int(os.environ.get("LOSSFUZZ_CROSSCHECK_POINTS", 1_000_000))
SHOWN = 5  # mismatches spelled out in a failure message


# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------


def _primary(what: str, family: str, x: np.ndarray, z: np.ndarray, dtype: str, reduction: str = "none") -> np.ndarray:
    function = oracles.loss if what == "loss" else oracles.gradient
    key = "probs" if family == "binary_ce" else "logits"
    return np.asarray(function(family, **{key: x}, labels=z, dtype=dtype, reduction=reduction))


def _reference(what: str, family: str, x: np.ndarray, z: np.ndarray, dtype: str, reduction: str = "none") -> np.ndarray:
    function = reference_loss if what == "loss" else reference_gradient
    return np.asarray(function(family, x, z, dtype, reduction))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.dtype(f"uint{8 * a.dtype.itemsize}"))


def _differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mask of values whose bit patterns differ (every nan equals every nan)."""
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    nan_a = np.isnan(a.astype(np.float64))
    nan_b = np.isnan(b.astype(np.float64))
    return ~((_bits(a) == _bits(b)) | (nan_a & nan_b))


def _hex(v) -> str:
    f = float(v)
    return f.hex() if math.isfinite(f) else repr(f)


def _hex_list(values) -> str:
    return "[" + ", ".join(_hex(v) for v in np.ravel(values)) + "]"


def _value_text(v: np.ndarray) -> str:
    return f"{_hex(v)} (bits 0x{int(_bits(np.asarray(v).reshape(1))[0]):x})"


def _describe(what, family, dtype, reduction, x, z, primary, reference, bad) -> list[str]:
    """One line per mismatch: the example's inputs and labels in hex, both answers in hex and bits."""
    lines = []
    row_wise = family in ("softmax_ce", "sparse_softmax_ce")

    def label_text(labels) -> str:  # class indices as integers, soft labels in hex
        return str(np.asarray(labels).tolist()) if family == "sparse_softmax_ce" else _hex_list(labels)

    for flat in np.flatnonzero(bad)[:SHOWN]:
        where = np.unravel_index(flat, primary.shape) if primary.shape else ()
        if reduction != "none":
            example = f"inputs={_hex_list(x)} labels={label_text(z)}"
        else:
            row = where[: x.ndim - 1] if row_wise else where
            example = f"inputs={_hex_list(x[row])} labels={label_text(z[row])}"
        lines.append(
            f"{family} {what} {dtype} reduction={reduction} at {tuple(int(i) for i in where)}: {example};"
            f" oracle={_value_text(primary[where])} reference={_value_text(reference[where])}"
        )
    return lines


def _compare(what, family, dtype, x, z, reduction="none") -> tuple[int, int, list[str]]:
    """(values compared, mismatches, descriptions of the first mismatches)."""
    a = _primary(what, family, x, z, dtype, reduction)
    b = _reference(what, family, x, z, dtype, reduction)
    bad = _differ(a, b)
    return a.size, int(bad.sum()), _describe(what, family, dtype, reduction, x, z, a, b, bad) if bad.any() else []


def _check_blocks(what, family, dtype, blocks, reduction="none") -> int:
    compared, mismatched, shown = 0, 0, []
    for x, z in blocks:
        n, bad, lines = _compare(what, family, dtype, x, z, reduction)
        compared += n
        mismatched += bad
        shown.extend(lines)
    assert mismatched == 0, (
        f"{mismatched} of {compared} {family} {what} values in {dtype} differ between the oracle and the arb"
        f" reference; first ones:\n  " + "\n  ".join(shown[:SHOWN])
    )
    return compared


def _point_count(blocks) -> int:
    return sum(len(z) for _x, z in blocks)


# ---------------------------------------------------------------------------------------------------------
# The cross-check at the default size
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_arb_reference_agrees_bit_for_bit_with_the_oracle_on_the_loss_at_ten_thousand_points(family, dtype):
    blocks = P.points(family, dtype, LOSS_POINTS, seed=P.seed_for("loss", family, dtype))
    assert _point_count(blocks) == LOSS_POINTS
    _check_blocks("loss", family, dtype, blocks)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_arb_reference_agrees_bit_for_bit_with_the_oracle_on_the_gradient(family, dtype):
    blocks = P.points(family, dtype, GRADIENT_POINTS, seed=P.seed_for("gradient", family, dtype))
    _check_blocks("gradient", family, dtype, blocks)


def _small_batches(family: str, dtype: str, count: int):
    """``count`` batches of 1 to 8 examples (sizes 2, 4, 8 often, so that a mean can be a dyadic midpoint)."""
    rng = np.random.default_rng(P.seed_for("reductions", family, dtype))
    sizes = np.where(rng.random(count) < 0.5, rng.choice([2, 4, 8], count), rng.integers(1, 9, count))
    for i, size in enumerate(sizes):
        seed = P.seed_for("reduction-batch", family, dtype, i)
        if family in ("sigmoid_ce", "binary_ce"):
            yield P.elementwise(family, dtype, int(size), seed=seed)
        else:
            rows = P.rows(family, dtype, int(size), seed=seed)
            yield max(rows, key=lambda block: len(block[1]))  # one K per batch: the most common


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_arb_reference_agrees_bit_for_bit_with_the_oracle_on_sum_and_mean_reductions(family, dtype):
    batches = list(_small_batches(family, dtype, REDUCTION_BATCHES))
    for reduction in ("sum", "mean"):
        _check_blocks("loss", family, dtype, batches, reduction)
    _check_blocks("gradient", family, dtype, batches[: REDUCTION_BATCHES // 2], "mean")
    _check_blocks("gradient", family, dtype, batches[REDUCTION_BATCHES // 2 :], "sum")


def _campaign_gradient_blocks(family: str, dtype: str) -> tuple[list, int]:
    """The points a default campaign scores gradients on in ``family`` x ``dtype``, as (x, z) blocks of one
    shape, and how many examples: the base (the boundary catalogue; the corpus is empty in a fresh run)
    and the examples the loss search of ``numpy_stable`` and of ``naive`` visited, chosen by the campaign's
    own :func:`harness.campaign.gradient_units`."""
    from harness.campaign import Settings, gradient_units, score_loss
    from harness.candidates import get_candidate
    from harness.scoring import TruthCache, batches
    from harness.strategies import catalogue

    settings = Settings(families=(family,), dtypes=(dtype,), speed_elements=0)  # the default search
    base = catalogue(family, dtype)
    examples = list(base)
    for name in ("numpy_stable", "naive"):
        candidate = get_candidate(family, name)
        _loss, _worst, visited = score_loss(candidate, dtype, base, TruthCache(family, dtype), settings)
        examples += gradient_units(base, visited, candidate.reduction, settings.max_chunks)[1]
    blocks = [(np.stack([e.inputs for e in group]), np.stack([e.labels for e in group]))
              for group in batches(list({e.key: e for e in examples}.values()), "none")]
    return blocks, len({e.key for e in examples})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_arb_reference_agrees_bit_for_bit_with_the_oracle_on_the_gradient_at_the_points_the_campaign_scores(family, dtype):
    blocks, examples = _campaign_gradient_blocks(family, dtype)
    from harness.strategies import catalogue

    assert examples > len(catalogue(family, dtype))  # the searches' examples are in, not the catalogue alone
    compared = _check_blocks("gradient", family, dtype, blocks)
    assert compared >= examples


STRUCTURED_POINTS = 2_000


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_arb_reference_agrees_bit_for_bit_with_the_oracle_a_hair_away_from_rounding_midpoints(family, dtype):
    blocks = P.structured(family, dtype, STRUCTURED_POINTS, seed=P.seed_for("structured", family, dtype))
    _check_blocks("loss", family, dtype, blocks)
    _check_blocks("gradient", family, dtype, blocks)
    rng = np.random.default_rng(P.seed_for("structured-batches", family, dtype))
    batches = []
    for x, z in blocks:  # batches of 2, 4 and 8 examples: their means stay dyadic
        for size in (2, 4, 8):
            for _ in range(10):
                pick = rng.integers(0, len(z), size)
                batches.append((x[pick], z[pick]))
    for reduction in ("sum", "mean"):
        _check_blocks("loss", family, dtype, batches, reduction)
    _check_blocks("gradient", family, dtype, batches, "mean")


# ---------------------------------------------------------------------------------------------------------
# focal (a family with a parameter): sigmoid_ce's points, at several gammas
# ---------------------------------------------------------------------------------------------------------

FOCAL_GAMMAS = (2.0, 0.5, 3.0)
FOCAL_POINTS = 1_000  # every focal value takes the Ziv path (and arb here): kept modest
FOCAL_STRUCTURED = 300


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", FOCAL_GAMMAS)
def test_arb_reference_agrees_bit_for_bit_with_the_oracle_on_focal_loss_and_gradient(gamma, dtype):
    x, z = P.elementwise("sigmoid_ce", dtype, FOCAL_POINTS, seed=P.seed_for("focal", gamma, dtype))
    blocks = [(x, z)] + P.structured("sigmoid_ce", dtype, FOCAL_STRUCTURED, seed=P.seed_for("focal-structured", gamma, dtype))
    compared = 0
    for what in ("loss", "gradient"):
        function = oracles.loss if what == "loss" else oracles.gradient
        reference = reference_loss if what == "loss" else reference_gradient
        for xs, zs in blocks:
            a = np.asarray(function("focal", logits=xs, labels=zs, dtype=dtype, params={"gamma": gamma}))
            b = np.asarray(reference("focal", xs, zs, dtype, gamma=gamma))
            bad = _differ(a, b)
            compared += a.size
            assert not bad.any(), _describe(what, "focal", dtype, f"none gamma={gamma}", xs, zs, a, b, bad)
    assert compared == 2 * (FOCAL_POINTS + FOCAL_STRUCTURED)


# ---------------------------------------------------------------------------------------------------------
# Known hard cases, checked in both oracles by name
# ---------------------------------------------------------------------------------------------------------


def test_both_oracles_round_a_midpoint_plus_exp_of_minus_6035051_upward():
    # L(-6035051, 0.75) = 4526288.25 + log1p(exp(-6035051)); 4526288.25 is a float32 midpoint.
    x, z = np.float32([-6035051.0]), np.float32([0.75])
    for got in (_primary("loss", "sigmoid_ce", x, z, "float32"), _reference("loss", "sigmoid_ce", x, z, "float32")):
        assert float(got[0]) == 4526288.5


def test_both_oracles_round_the_sigmoid_gradient_at_a_subnormal_logit_with_label_one_half_toward_zero():
    # sigmoid(x) - 1/2 = x/4 - x**3/48 + ...; x/4 is a midpoint of float64 subnormals and the cubic term
    # (about 7e-622 units in the last place) pulls it toward zero. The oracle once rounded it away from zero
    # (mpmath's interval exp returned the point 1 - |x| for exp(-|x|) at 1536 bits).
    x = np.array([float.fromhex("-0x0.0000042ab88aap-1022")])
    z = np.array([0.5])
    expected = float.fromhex("-0x0.0000010aae22ap-1022")
    for got in (_primary("gradient", "sigmoid_ce", x, z, "float64"), _reference("gradient", "sigmoid_ce", x, z, "float64")):
        assert float(got[0]) == expected


@pytest.mark.parametrize(
    "logits, labels, expected",
    [
        # unique maximum, one-hot label on it: S*softmax - z = -e^(-2**41-ish), rounds to -0
        ([6.0, float.fromhex("0x1.6ep+41")], [0.0, 0.75], [0.0, -0.0]),
        # two maximal logits far above the third: S/2 - z_j minus e^(-3.4e38)
        ([3.4028234663852886e38, -30.0, 3.4028234663852886e38], [0.5, 0.0, 0.5], [-0.0, 0.0, -0.0]),
    ],
)
def test_both_oracles_settle_softmax_gradients_at_maximal_logits_far_above_the_others(logits, labels, expected):
    x, z = np.array([logits]), np.array([labels])
    for dtype in ("bfloat16", "float32"):
        for got in (_primary("gradient", "softmax_ce", x, z, dtype), _reference("gradient", "softmax_ce", x, z, dtype)):
            values = [float(v) for v in got[0]]
            assert values == expected and [math.copysign(1, v) for v in values] == [math.copysign(1, v) for v in expected]


# ---------------------------------------------------------------------------------------------------------
# The reference's own parts
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_reference_mpfr_rounding_matches_numpy_casts_of_float64_values(dtype):
    from fractions import Fraction

    fi = P.info(dtype)
    rng = np.random.default_rng(P.seed_for("casts", dtype))
    exps = rng.integers(fi.tiny_exp - 3, fi.emax + 2, 4000)
    values = np.ldexp(1.0 + rng.random(4000), exps) * np.where(rng.random(4000) < 0.5, -1.0, 1.0)
    # exact midpoints and their neighbours in the subnormal range and at the overflow threshold
    odd = rng.integers(0, 1 << (fi.p - 1), 500) * 2 + 1
    mids = np.ldexp(odd.astype(np.float64), fi.tiny_exp - 1)
    threshold = math.ldexp(2.0 - math.ldexp(1.0, -fi.p), fi.emax)
    values = np.concatenate([values, mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf), [threshold, -threshold]])
    values = np.concatenate([values, np.nextafter(values[-2:], 0)])
    if dtype == "bfloat16":
        # ml_dtypes converts float64 to bfloat16 through float32 (two roundings, see the next test): compare
        # on float32 values, from which its conversion is a single correct rounding.
        with np.errstate(over="ignore"):
            values = values.astype(np.float32).astype(np.float64)
        values = values[np.isfinite(values)]
    with np.errstate(over="ignore"):
        expected = values.astype(fi.np_dtype)
    got = np.array([round_rational_to(Fraction(float(v)), REFERENCE_FORMATS[dtype]) for v in values]).astype(fi.np_dtype)
    bad = _differ(expected, got)
    assert not bad.any(), [(v.hex(), float(e), float(g)) for v, e, g in zip(values[bad], expected[bad], got[bad])][:5]


def test_reference_rounds_float64_to_bfloat16_once_where_ml_dtypes_rounds_twice():
    # 0x1.b5fffffffffffp-127 is 109.4999... bfloat16 subnormal units (2**-133): correctly rounded, 109 units.
    # Through float32 it first becomes 0x1.b6p-127 = 109.5 units, a tie that goes to 110.
    from fractions import Fraction

    value = float.fromhex("0x1.b5fffffffffffp-127")
    expected = math.ldexp(109, -133)
    assert round_rational_to(Fraction(value), REFERENCE_FORMATS["bfloat16"]) == expected
    assert oracles.round_rational(*value.as_integer_ratio(), oracles.FORMATS["bfloat16"]) == expected


@pytest.mark.parametrize("dtype", DTYPES)
def test_generated_points_are_representable_and_span_the_whole_float_range(dtype):
    fi = P.info(dtype)
    x, z = P.elementwise("sigmoid_ce", dtype, LOSS_POINTS, seed=P.seed_for("loss", "sigmoid_ce", dtype))
    p, pz = P.elementwise("binary_ce", dtype, LOSS_POINTS, seed=P.seed_for("loss", "binary_ce", dtype))
    assert x.dtype == fi.np_dtype and z.dtype == fi.np_dtype and p.dtype == fi.np_dtype
    xf, zf, pf = (a.astype(np.float64) for a in (x, z, p))
    finite = xf[np.isfinite(xf)]
    assert np.isnan(xf).any() and np.isposinf(xf).any() and np.isneginf(xf).any()
    assert fi.max in finite and -fi.max in finite and fi.min_subnormal in np.abs(finite)
    assert ((finite != 0) & (np.abs(finite) < fi.min_normal)).sum() > 10  # subnormal logits
    assert np.abs(finite).max() == fi.max and np.abs(finite[finite != 0]).min() == fi.min_subnormal
    small = zf[(zf > 0) & (zf < fi.min_normal)]
    assert small.size > 10 and np.isin([0.0, 1.0], zf).all()  # subnormal, hard labels
    assert ((zf > 0.5) & (zf < 1) & (1 - zf <= 2.0 ** -(fi.p - 2))).any()  # labels 1 - 2**-k
    assert np.isin([0.0, 1.0], pf).all() and ((pf > 0) & (pf < fi.min_normal)).any()
    labels = zf[~np.isnan(zf)]
    assert ((labels >= 0) & (labels <= 1)).all() and ((pf[~np.isnan(pf)] >= 0) & (pf[~np.isnan(pf)] <= 1)).all()
    ks = {x.shape[-1] for x, _z in P.rows("softmax_ce", dtype, 2000, seed=1)}
    assert set(range(1, 9)) <= ks


# ---------------------------------------------------------------------------------------------------------
# The slow run: 10^6 points
# ---------------------------------------------------------------------------------------------------------

_CHUNK = 5_000


def _slow_chunk(task: tuple) -> tuple[int, int, list[str]]:
    what, family, dtype, n, index = task
    blocks = P.points(family, dtype, n, seed=P.seed_for("slow", what, family, dtype, index))
    compared, mismatched, shown = 0, 0, []
    for x, z in blocks:
        c, bad, lines = _compare(what, family, dtype, x, z)
        compared, mismatched = compared + c, mismatched + bad
        shown.extend(lines)
    return compared, mismatched, shown[:SHOWN]


@pytest.mark.slow
def test_arb_reference_agrees_bit_for_bit_with_the_oracle_at_a_million_points():
    """10^6 points in all (``LOSSFUZZ_CROSSCHECK_POINTS``), spread evenly over family x dtype; a fifth of
    each share checks the gradient, the rest the loss."""
    per_combo = max(1, SLOW_POINTS // (len(FAMILIES) * len(DTYPES)))
    tasks = []
    for family in FAMILIES:
        for dtype in DTYPES:
            for what, share in (("loss", per_combo - per_combo // 5), ("gradient", per_combo // 5)):
                for index, start in enumerate(range(0, share, _CHUNK)):
                    tasks.append((what, family, dtype, min(_CHUNK, share - start), index))
    workers = max(1, min(len(tasks), os.cpu_count() or 1))
    compared = mismatched = 0
    shown: list[str] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for c, bad, lines in pool.map(_slow_chunk, tasks):
            compared, mismatched = compared + c, mismatched + bad
            shown.extend(lines)
    assert mismatched == 0, f"{mismatched} of {compared} values differ; first ones:\n  " + "\n  ".join(shown[:SHOWN])
