"""The study's statistics against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from mnist_lit.study.stats import holm, mcnemar_exact, paired_t_test, t_interval


def test_mcnemar_on_a_small_table() -> None:
    # Discordant pairs: A alone right on 1 image, B alone right on 6 (and 5 agree).
    # Under H0 only_a ~ Binomial(7, 1/2): P(X <= 1) = (1 + 7) / 128; two-sided: 16 / 128.
    a = [True, False, False, False, False, False, False, True, True, False, True, True]
    b = [False, True, True, True, True, True, True, True, True, False, True, True]
    result = mcnemar_exact(a, b)
    assert (result.only_a, result.only_b) == (1, 6)
    assert result.p_value == pytest.approx(16 / 128)


def test_mcnemar_without_discordant_images_finds_nothing() -> None:
    assert mcnemar_exact([True, False], [True, False]).p_value == 1.0
    with pytest.raises(ValueError, match="same images"):
        mcnemar_exact([True], [True, False])


def test_t_interval_on_known_numbers() -> None:
    # 92.0, 92.2, 92.4, 92.6: mean 92.3, sd sqrt(0.2/3) = 0.2582, t(0.975, 3) = 3.1824.
    interval = t_interval([92.0, 92.2, 92.4, 92.6])
    half = 3.182446 * math.sqrt(0.2 / 3) / 2
    assert interval.mean == pytest.approx(92.3)
    assert (interval.low, interval.high) == pytest.approx((92.3 - half, 92.3 + half), rel=1e-6)
    assert t_interval([0.5]).half_width == 0


def test_paired_t_test_by_hand() -> None:
    # Differences 0.1, 0.3, 0.2, 0.2: mean 0.2, sd sqrt(0.02/3), t = 0.2 / (sd / 2) = 4.899,
    # 3 degrees of freedom: two-sided p = 0.01628.
    a = [0.93, 0.95, 0.94, 0.94]
    b = [0.92, 0.92, 0.92, 0.92]
    assert paired_t_test([x * 10 for x in a], [x * 10 for x in b]) == pytest.approx(
        0.01628, abs=2e-5
    )
    assert paired_t_test([1.0, 2.0], [1.0, 2.0]) == 1.0
    assert paired_t_test([2.0, 3.0], [1.0, 2.0]) == 0.0


def test_holm_by_hand() -> None:
    # m = 4, sorted 0.005, 0.01, 0.03, 0.04: x4 = 0.02, x3 = 0.03, x2 = 0.06, x1 = 0.04 -> 0.06.
    assert holm([0.03, 0.005, 0.04, 0.01]) == pytest.approx([0.06, 0.02, 0.06, 0.03])
    assert holm([0.6, 0.5]) == [1.0, 1.0]
