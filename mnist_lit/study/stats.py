"""Statistics for comparing classifiers: intervals, paired tests and their correction.

Pure functions of plain numbers (no training, no files), each checked by hand in its
docstring. The two kinds of noise are tested apart: the test images' by
:func:`mcnemar_exact`, the training's by :func:`paired_t_test` over seeds (a seed gives
both losses the same split, data order and initial weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean and its confidence interval."""

    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    r"""Student's t confidence interval for the mean of ``values``.

    .. math:: \bar x \pm t_{1 - \alpha/2,\,n-1}\, s / \sqrt{n}

    One value gives a zero-width interval (nothing to estimate the spread from).

    Example:
        Mean 2, standard deviation 1, n = 3, :math:`t_{0.975, 2} = 4.3027`:
        half-width :math:`4.3027 / \sqrt 3 = 2.4841`.

        >>> interval = t_interval([1.0, 2.0, 3.0])
        >>> interval.mean, round(interval.low, 4), round(interval.high, 4)
        (2.0, -0.4841, 4.4841)
    """
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, mean, mean)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of two classifiers on the same images."""

    only_a: int  # images that A gets right and B wrong
    only_b: int  # images that B gets right and A wrong
    p_value: float  # two-sided


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemar:
    """Exact McNemar test: under "A and B are equally accurate", each image that only one
    of them gets right is A's with probability 1/2, so ``only_a`` is Binomial(n, 1/2) with
    n the number of such images. Images both get right or both get wrong say nothing.

    Example:
        Of 12 discordant images, A alone is right on 10:
        p = 2 (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 x 79 / 4096 = 0.0386.

        >>> a = [True] * 10 + [False] * 2 + [True] * 5
        >>> b = [False] * 10 + [True] * 2 + [True] * 5
        >>> result = mcnemar_exact(a, b)
        >>> result.only_a, result.only_b, round(result.p_value, 4)
        (10, 2, 0.0386)
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(
            f"both classifiers must be judged on the same images, got {len(a_correct)} "
            f"and {len(b_correct)}"
        )
    only_a = sum(1 for a, b in zip(a_correct, b_correct, strict=True) if a and not b)
    only_b = sum(1 for a, b in zip(a_correct, b_correct, strict=True) if b and not a)
    if only_a + only_b == 0:
        return McNemar(0, 0, 1.0)
    p_value = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    return McNemar(only_a, only_b, float(p_value))


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the paired t-test of ``a`` against ``b`` (e.g. accuracies of
    two losses, paired by seed).

    With five pairs the Wilcoxon signed-rank test cannot go below p = 0.0625, so the
    t-test is the one that can detect a difference at all. Identical pairs give 1; a
    difference that is the same for every pair (no spread) gives 0.

    Example:
        Differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.4641 with 2 degrees
        of freedom, p = 0.0742.

        >>> round(paired_t_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]), 4)
        0.0742
    """
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired test needs two equally long series of 2 or more, got {a}, {b}")
    differences = [x - y for x, y in zip(a, b, strict=True)]
    if all(d == differences[0] for d in differences):
        return 1.0 if differences[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the i-th smallest of m p-values is multiplied by
    m - i + 1 (i from 1), then made non-decreasing and capped at 1. Rejecting where the
    adjusted value is below alpha keeps the chance of any false rejection below alpha.

    Example:
        m = 3: 0.01 x 3 = 0.03; 0.02 x 2 = 0.04; 0.04 x 1 = 0.04.

        >>> holm([0.04, 0.01, 0.02])
        [0.04, 0.03, 0.04]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = round(running, 12)
    return adjusted
