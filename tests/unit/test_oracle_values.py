"""The oracle's values against values no floating-point code produced: documentation, identities, hand derivations."""

import math

import mpmath
import numpy as np
import pytest

import oracles
from oracles import FORMATS, round_mpf

DTYPES = ["float16", "bfloat16", "float32", "float64"]


def correctly_rounded(value: mpmath.mpf, dtype: str) -> float:
    return round_mpf(value._mpf_, FORMATS[dtype])


def test_tensorflow_documentation_example_matches_to_every_printed_digit():
    logits = np.array([1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 0.0], np.float32)
    labels = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5], np.float32)
    printed = ["1.3132617", "0.3132617", "0.6931472", "0.3132617", "1.3132617", "0.6931472", "0.6931472"]
    values = oracles.exact("sigmoid_ce", logits=logits, labels=labels, dtype="float32")
    digits = [len(text.replace(".", "").lstrip("0")) for text in printed]
    assert [mpmath.nstr(v, d, strip_zeros=False) for v, d in zip(values, digits)] == printed


def test_tensorflow_documentation_value_1_3132617_is_not_the_correctly_rounded_float32():
    # exact 1.31326168751822...; the float32 neighbours are 1.31326163 and 1.31326175, midpoint 1.3132616877...
    got = oracles.loss("sigmoid_ce", logits=np.float32(1.0), labels=np.float32(0.0), dtype="float32")
    assert float(got) == float(np.float32(1.3132616))
    assert float(got) != float(np.float32(1.3132617))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("z", [0.0, 0.25, 0.5, 0.9999, 1.0, 2.0**-30])
def test_zero_logit_gives_log_2_for_any_label(dtype, z):
    got = oracles.loss("sigmoid_ce", logits=0.0, labels=z, dtype=dtype)
    with mpmath.workdps(50):
        assert float(got) == correctly_rounded(+mpmath.log(2), dtype)


@pytest.mark.parametrize("k", [1, 2, 3, 10, 1000, 100_000])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_equal_logits_with_a_one_hot_label_give_log_k(k, dtype):
    logits = np.full(k, 3.5)
    labels = np.zeros(k)
    labels[k // 2] = 1.0
    got = oracles.loss("softmax_ce", logits=logits, labels=labels, dtype=dtype)
    sparse = oracles.loss("sparse_softmax_ce", logits=logits, labels=np.int64(k // 2), dtype=dtype)
    with mpmath.workdps(50):
        expected = correctly_rounded(+mpmath.log(k), dtype)
    assert float(got) == expected
    assert float(sparse) == expected


def test_sigmoid_ce_equals_two_class_softmax_ce_exactly():
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(400) * 10.0 ** rng.integers(-3, 4, 400)).astype(np.float32)
    z = rng.random(400).astype(np.float32)
    z[:50] = np.round(z[:50])
    for dtype in DTYPES:
        sig = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype=dtype)
        # 1 - z is exact in float64 for float32 z, so [z, 1 - z] are the same labels.
        soft = oracles.loss(
            "softmax_ce",
            logits=np.stack([x.astype(np.float64), np.zeros(400)], axis=-1),
            labels=np.stack([z.astype(np.float64), 1.0 - z.astype(np.float64)], axis=-1),
            dtype=dtype,
        )
        assert np.array_equal(sig.view(np.uint8), soft.view(np.uint8)), dtype


def test_sparse_softmax_ce_equals_softmax_ce_with_one_hot_labels():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, 7)) * 30
    c = rng.integers(0, 7, 60)
    one_hot = np.eye(7)[c]
    for dtype in DTYPES:
        a = oracles.loss("sparse_softmax_ce", logits=x, labels=c, dtype=dtype)
        b = oracles.loss("softmax_ce", logits=x, labels=one_hot, dtype=dtype)
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8))


def test_loss_matches_a_direct_200_digit_evaluation_of_the_textbook_formula():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(200) * 20
    z = rng.random(200)
    got = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float64")
    with mpmath.workdps(200):
        for xi, zi, gi in zip(x, z, got):
            s = 1 / (1 + mpmath.exp(-mpmath.mpf(xi)))
            exact = zi * -mpmath.log(s) + (1 - mpmath.mpf(zi)) * -mpmath.log(1 - s)
            assert float(gi) == correctly_rounded(exact, "float64")


def test_the_midpoint_case_from_the_brief_rounds_up():
    # float32 x = -6035051, z = 0.75: exact value 4526288.25 + exp(-6035051), just above a midpoint.
    got = oracles.loss("sigmoid_ce", logits=np.float32(-6035051.0), labels=np.float32(0.75), dtype="float32")
    assert float(got) == 4526288.5


def test_soft_label_near_one_with_large_logit():
    got = oracles.loss("sigmoid_ce", logits=np.float32(1e4), labels=np.float32(0.9999), dtype="float32")
    # (1 - z) * x with z = fl32(0.9999) exactly, plus log1p(exp(-1e4)) (negligible)
    with mpmath.workdps(60):
        expected = (1 - mpmath.mpf(float(np.float32(0.9999)))) * 10000
    assert float(got) == correctly_rounded(expected, "float32")
    assert abs(float(got) - 1.000166) < 1e-6


def test_a_loss_of_about_exp_minus_1600_settles():
    truth = oracles.evaluate("softmax_ce", logits=[800.0, -800.0], labels=[1.0, 0.0], dtype="float64")
    assert truth.status[()] == "converged"
    with mpmath.workdps(30):
        assert mpmath.almosteq(truth.exact[()], mpmath.exp(-1600), rel_eps=mpmath.mpf(2) ** -70)
    # too small for float64: correctly rounded to +0
    assert float(truth.rounded) == 0.0 and math.copysign(1, float(truth.rounded)) == 1


def test_huge_logits_settle_quickly():
    x = np.array([np.finfo(np.float64).max, -np.finfo(np.float64).max, 2.0**-1074])
    z = np.array([0.5, 0.5, 0.5])
    got = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float64")
    assert got[0] == got[1] == np.finfo(np.float64).max / 2
    with mpmath.workdps(50):
        assert float(got[2]) == correctly_rounded(mpmath.log(2) - mpmath.mpf(2) ** -1075, "float64")


@pytest.mark.parametrize("prec", [768, 1536])
@pytest.mark.parametrize("t", [-np.finfo(np.float64).max, -(2.0**70), 2.0**80 + 2.0**28, 2.0**1000])
def test_exp_of_a_huge_integer_is_a_tight_enclosure_taken_by_argument_reduction(t, prec):
    # above 600 bits mpmath powers e by squaring for an integer argument (milliseconds at 2**1024);
    # oracles._family.exp reduces the argument by k ln 2 instead: the enclosure must hold exp(t)
    from oracles._family import exp
    from oracles._ziv import interval_context, workprec

    ctx = interval_context()
    with workprec(ctx, prec):
        enclosure = exp(ctx, ctx.mpf(t))
    low, high = (mpmath.mp.make_mpf(end) for end in enclosure._mpi_)  # as they are: no rounding
    with mpmath.workprec(prec + 1100):  # exp(t) at far more bits than the enclosure's
        value = mpmath.exp(mpmath.mpf(t))
        assert low < value < high
        assert (high - low) / value < mpmath.mpf(2) ** (8 - prec)


class TestLimitValues:
    def test_sigmoid_ce_at_infinite_logits(self):
        x = np.array([np.inf, np.inf, -np.inf, -np.inf, np.nan, 1.0])
        z = np.array([1.0, 0.5, 0.0, 0.5, 0.5, np.nan])
        got = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32")
        assert got[:4].tolist() == [0.0, np.inf, 0.0, np.inf]
        assert np.isnan(got[4:]).all()
        grad = oracles.gradient("sigmoid_ce", logits=x[:4], labels=z[:4], dtype="float32")
        assert grad.tolist() == [0.0, 0.5, 0.0, -0.5]

    def test_binary_ce_takes_zero_log_zero_as_zero(self):
        p = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
        z = np.array([0.0, 1.0, 0.5, 0.5, 1.0])
        got = oracles.loss("binary_ce", probs=p, labels=z, dtype="float64")
        assert got[:4].tolist() == [0.0, 0.0, np.inf, np.inf]
        assert float(got[4]) == math.log(2)

    def test_softmax_ce_with_infinite_logits_uses_the_common_rate_limit(self):
        x = np.array([[np.inf, 3.0], [np.inf, np.inf], [-np.inf, -np.inf], [-np.inf, 2.0], [-np.inf, 2.0]])
        z = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.5, 0.5]])
        got = oracles.loss("softmax_ce", logits=x, labels=z, dtype="float64")
        assert got.tolist() == [0.0, math.log(2), math.log(2), 0.0, np.inf]


class TestDomainErrors:
    def test_label_above_one_names_value_and_position(self):
        with pytest.raises(ValueError, match=r"sigmoid_ce: labels\[1\] = 1\.5 is outside \[0, 1\]"):
            oracles.loss("sigmoid_ce", logits=[0.0, 0.0], labels=[0.5, 1.5], dtype="float32")

    def test_negative_probability_is_an_error(self):
        with pytest.raises(ValueError, match=r"binary_ce: probs\[0\] = -0\.1"):
            oracles.loss("binary_ce", probs=[-0.1], labels=[0.0], dtype="float32")

    def test_class_index_out_of_range_names_k(self):
        with pytest.raises(ValueError, match=r"labels\[1\] = 3 is outside \[0, 3\)"):
            oracles.loss("sparse_softmax_ce", logits=np.zeros((2, 3)), labels=[0, 3], dtype="float32")

    def test_unknown_dtype_lists_the_accepted_ones(self):
        with pytest.raises(ValueError, match=r"dtype='float24' is not one of: float16, bfloat16, float32, float64"):
            oracles.loss("sigmoid_ce", logits=[0.0], labels=[0.0], dtype="float24")

    def test_unknown_family_and_wrong_input_keyword(self):
        with pytest.raises(ValueError, match=r"family='hinge' is not one of"):
            oracles.loss("hinge", logits=[0.0], labels=[0.0], dtype="float32")
        with pytest.raises(ValueError, match=r"binary_ce takes probs=, not logits="):
            oracles.loss("binary_ce", logits=[0.0], labels=[0.0], dtype="float32")

    def test_mismatched_shapes(self):
        with pytest.raises(ValueError, match=r"logits shape \(2,\) differs from labels shape \(3,\)"):
            oracles.loss("sigmoid_ce", logits=[0.0, 1.0], labels=[0.0, 1.0, 0.0], dtype="float32")


class TestReductions:
    def test_mean_is_the_exact_mean_rounded_once(self):
        rng = np.random.default_rng(2)
        x = rng.standard_normal(50).astype(np.float32) * 5
        z = rng.random(50).astype(np.float32)
        got = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32", reduction="mean")
        with mpmath.workdps(60):
            total = mpmath.fsum(
                zi * mpmath.log1p(mpmath.exp(-mpmath.mpf(xi))) + (1 - mpmath.mpf(zi)) * mpmath.log1p(mpmath.exp(mpmath.mpf(xi)))
                for xi, zi in zip(x.astype(float), z.astype(float))
            )
            assert float(got) == correctly_rounded(total / 50, "float32")
            sum_got = oracles.loss("sigmoid_ce", logits=x, labels=z, dtype="float32", reduction="sum")
            assert float(sum_got) == correctly_rounded(total, "float32")

    def test_reduction_of_infinite_and_nan_elements(self):
        assert oracles.loss("sigmoid_ce", logits=[np.inf, 0.0], labels=[0.0, 0.0], dtype="float32", reduction="sum") == np.inf
        assert np.isnan(oracles.loss("sigmoid_ce", logits=[np.nan, 0.0], labels=[0.0, 0.0], dtype="float32", reduction="mean"))

    def test_mean_of_an_empty_batch_is_an_error(self):
        with pytest.raises(ValueError, match="empty batch"):
            oracles.loss("sigmoid_ce", logits=np.zeros(0), labels=np.zeros(0), dtype="float32", reduction="mean")


class TestGradients:
    def test_sigmoid_ce_gradient_matches_200_digit_sigmoid_minus_label(self):
        rng = np.random.default_rng(9)
        x = rng.standard_normal(200) * 15
        z = rng.random(200)
        got = oracles.gradient("sigmoid_ce", logits=x, labels=z, dtype="float64")
        with mpmath.workdps(200):
            for xi, zi, gi in zip(x, z, got):
                assert float(gi) == correctly_rounded(1 / (1 + mpmath.exp(-mpmath.mpf(xi))) - zi, "float64")

    def test_gradient_cancellation_when_label_equals_rounded_sigmoid(self):
        # z = fl64(sigmoid(x)): the gradient is the tiny rounding error of sigmoid, found exactly.
        x = 0.7
        with mpmath.workdps(200):
            s = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
            z = float(s)
            expected = correctly_rounded(s - z, "float64")
        assert expected != 0.0
        assert float(oracles.gradient("sigmoid_ce", logits=[x], labels=[z], dtype="float64")[0]) == expected

    def test_binary_ce_gradient_is_the_exact_rational(self):
        got = oracles.gradient("binary_ce", probs=[0.25, 0.0, 1.0, 0.0], labels=[0.5, 0.0, 1.0, 0.5], dtype="float64")
        # (p - z) / (p (1 - p)) = -0.25 / 0.1875 = -4/3
        assert got.tolist() == [-4 / 3, 1.0, -1.0, -np.inf]

    def test_softmax_gradient_matches_200_digit_evaluation_and_mean_scales_it(self):
        rng = np.random.default_rng(4)
        x = rng.standard_normal((20, 5)) * 4
        z = rng.random((20, 5))
        got = oracles.gradient("softmax_ce", logits=x, labels=z, dtype="float32")
        mean = oracles.gradient("softmax_ce", logits=x, labels=z, dtype="float32", reduction="mean")
        with mpmath.workdps(100):
            for i in range(20):
                e = [mpmath.exp(mpmath.mpf(v)) for v in x[i]]
                total = mpmath.fsum(e)
                s = mpmath.fsum(mpmath.mpf(v) for v in z[i])
                for j in range(5):
                    g = s * e[j] / total - z[i, j]
                    assert float(got[i, j]) == correctly_rounded(g, "float32")
                    assert float(mean[i, j]) == correctly_rounded(g / 20, "float32")

    def test_uniform_softmax_gradient_is_exact(self):
        got = oracles.gradient("sparse_softmax_ce", logits=np.zeros((1, 3)), labels=[1], dtype="float64")
        assert got.tolist() == [[1 / 3, -2 / 3, 1 / 3]]  # -2/3 correctly rounded, not fl(fl(1/3) - 1)
