"""The row reductions of :mod:`oracles._rows` give numpy's reductions along the last axis, bit for bit, on
adversarial rows of every narrow width (and the wide ones numpy reduces itself)."""

from __future__ import annotations

import numpy as np
import pytest

from oracles import _rows

SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 3.0, 1e-16, 5e-324, -5e-324, 2.0**-1022,
                     1e308, -1e308, 0.1, 2.0**53, -(2.0**53)])
WIDTHS = range(1, _rows.NARROW + 3)  # every narrow width, and wide rows (numpy's own reduction)


def adversarial_rows(width: int, dtype: str, seed: int, n: int = 60_000) -> np.ndarray:
    """Rows mixing special values, ties (a value repeated along the row) and random ones of all scales."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(SPECIALS, size=(n, width))
    scaled = rng.standard_normal((n, width)) * 2.0 ** rng.integers(-60, 60, size=(n, width))
    rows = np.where(rng.random((n, width)) < 0.6, pick, scaled)
    ties = rng.random(n) < 0.2  # rows whose every element is its first one (ties for the maximum, -0 sums)
    rows[ties] = rows[ties, :1]
    with np.errstate(over="ignore"):
        return rows.astype(dtype)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        width = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
        return bool(np.array_equal(a.view(width), b.view(width)))
    return bool(np.array_equal(a, b))


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("seed", range(3))
def test_row_sum_and_max_equal_numpys_to_the_bit(width: int, dtype: str, seed: int) -> None:
    rows = adversarial_rows(width, dtype, seed)
    with np.errstate(all="ignore"):
        for keepdims in (False, True):
            assert same_bits(_rows.row_sum(rows, keepdims), rows.sum(axis=-1, keepdims=keepdims)), keepdims
            assert same_bits(_rows.row_max(rows, keepdims), rows.max(axis=-1, keepdims=keepdims)), keepdims
        assert same_bits(_rows.row_argmax(rows), np.argmax(rows, axis=-1))


@pytest.mark.parametrize("width", WIDTHS)
def test_row_all_any_and_count_of_a_mask_equal_numpys(width: int) -> None:
    rng = np.random.default_rng(width)
    for p in (0.05, 0.5, 0.95):  # mostly False, mixed, mostly True: every row outcome occurs
        mask = rng.random((50_000, width)) < p
        for keepdims in (False, True):
            assert same_bits(_rows.row_all(mask, keepdims), mask.all(axis=-1, keepdims=keepdims))
            assert same_bits(_rows.row_any(mask, keepdims), mask.any(axis=-1, keepdims=keepdims))
            assert same_bits(_rows.row_sum(mask, keepdims), mask.sum(axis=-1, keepdims=keepdims))


def test_rows_of_a_batch_with_more_axes_reduce_along_the_last_one() -> None:
    rows = adversarial_rows(3, "float64", 7).reshape(300, 200, 3)
    with np.errstate(all="ignore"):
        assert same_bits(_rows.row_sum(rows), rows.sum(axis=-1))
        assert same_bits(_rows.row_max(rows, keepdims=True), rows.max(axis=-1, keepdims=True))
        assert same_bits(_rows.row_argmax(rows), np.argmax(rows, axis=-1))
    assert same_bits(_rows.row_all(np.isfinite(rows)), np.isfinite(rows).all(axis=-1))


def test_a_row_of_negative_zeros_sums_to_positive_zero_as_numpys_sum_does() -> None:
    rows = np.full((4, 2), -0.0)
    assert not np.signbit(_rows.row_sum(rows)).any()
    assert not np.signbit(rows.sum(axis=-1)).any()
