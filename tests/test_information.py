import math

import pytest
import torch

from mnist_lit.losses.information import cross_entropy, entropy, kl_divergence

LABEL = [1.0, 0.0, 0.0, 0.0, 0.0]
Q1 = [0.4, 0.3, 0.05, 0.05, 0.2]
Q2 = [0.98, 0.01, 0.0, 0.0, 0.01]


def test_the_tutorials_example_in_nats_and_bits() -> None:
    assert cross_entropy(LABEL, Q1).item() == pytest.approx(-math.log(0.4))
    assert cross_entropy(LABEL, Q2).item() == pytest.approx(-math.log(0.98))
    assert round(cross_entropy(LABEL, Q1).item(), 3) == 0.916
    assert round(cross_entropy(LABEL, Q2).item(), 4) == 0.0202
    assert round(cross_entropy(LABEL, Q1, base=2).item(), 2) == 1.32
    assert round(cross_entropy(LABEL, Q2, base=2).item(), 4) == 0.0291


def test_entropy_by_hand_and_its_bounds() -> None:
    p = [0.5, 0.25, 0.25]
    assert entropy(p, base=2).item() == pytest.approx(1.5)
    assert entropy(LABEL).item() == 0.0
    assert entropy([0.2] * 5).item() == pytest.approx(math.log(5))


def test_kl_is_cross_entropy_minus_entropy_and_zero_on_itself() -> None:
    p, q = [0.7, 0.2, 0.1], [0.3, 0.3, 0.4]
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert kl_divergence(p, q).item() == pytest.approx(expected)
    assert kl_divergence(p, p).item() == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(
        torch.nn.functional.kl_div(torch.tensor(q).log(), torch.tensor(p), reduction="sum"),
        kl_divergence(p, q).float(),
    )


def test_batches_along_leading_axes() -> None:
    values = cross_entropy([LABEL, LABEL], [Q1, Q2])
    torch.testing.assert_close(
        values, cross_entropy(LABEL, Q1).new_tensor([0.9163, 0.0202]), atol=1e-4, rtol=0
    )


def test_zero_probability_on_a_possible_outcome_is_infinite() -> None:
    assert math.isinf(cross_entropy([0.5, 0.5], [1.0, 0.0]).item())


@pytest.mark.parametrize(
    ("p", "message"),
    [
        ([0.5, 0.6], "sum to 1"),
        ([1.2, -0.2], "non-negative"),
        ([float("nan"), 1.0], "non-negative finite"),
        (0.5, "last axis"),
    ],
)
def test_bad_distributions_are_named(p, message) -> None:
    with pytest.raises(ValueError, match=message):
        entropy(p)
    with pytest.raises(ValueError, match=rf"q must .*{message}"):
        cross_entropy([0.5, 0.5] if isinstance(p, list) else [1.0], p)


def test_base_must_be_a_logarithm_base() -> None:
    with pytest.raises(ValueError, match="base"):
        entropy([0.5, 0.5], base=1)
