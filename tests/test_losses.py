import math

import pytest
import torch
import torch.nn.functional as F

from mnist_lit.losses import CrossEntropy, Quadratic, SoftmaxTwiceCrossEntropy

LOGITS = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
TARGET = torch.tensor([0, 1])


def _hand_softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def test_cross_entropy_by_hand() -> None:
    expected = (
        -(math.log(_hand_softmax([2.0, 1.0, 0.0])[0]) + math.log(_hand_softmax([0.0, 0.0, 3.0])[1]))
        / 2
    )
    assert CrossEntropy()(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_softmax_twice_by_hand() -> None:
    total = 0.0
    for row, y in zip(LOGITS.tolist(), TARGET.tolist(), strict=True):
        total -= math.log(_hand_softmax(_hand_softmax(row))[y])
    assert SoftmaxTwiceCrossEntropy()(LOGITS, TARGET).item() == pytest.approx(total / 2, rel=1e-6)


def test_quadratic_by_hand() -> None:
    total = 0.0
    for row, y in zip(LOGITS.tolist(), TARGET.tolist(), strict=True):
        p = _hand_softmax(row)
        total += sum((p[k] - (k == y)) ** 2 for k in range(3))
    assert Quadratic()(LOGITS, TARGET).item() == pytest.approx(total / 6, rel=1e-6)


@pytest.mark.parametrize(
    ("loss", "reference"),
    [
        pytest.param(CrossEntropy(), lambda z, y: torch.nn.CrossEntropyLoss()(z, y), id="ce"),
        pytest.param(
            SoftmaxTwiceCrossEntropy(),
            lambda z, y: torch.nn.CrossEntropyLoss()(torch.softmax(z, 1), y),
            id="softmax-twice",
        ),
        pytest.param(
            Quadratic(),
            lambda z, y: torch.nn.MSELoss()(torch.softmax(z, 1), F.one_hot(y, 10).float()),
            id="quadratic",
        ),
    ],
)
def test_matches_torch_reference_with_gradients(loss, reference) -> None:
    torch.manual_seed(0)
    logits = torch.randn(32, 10, requires_grad=True)
    target = torch.randint(0, 10, (32,))
    ours = loss(logits, target)
    (grad_ours,) = torch.autograd.grad(ours, logits)
    theirs = reference(logits, target)
    (grad_theirs,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(grad_ours, grad_theirs)
    assert grad_ours.abs().sum() > 0


def test_softmax_twice_has_a_floor_above_zero() -> None:
    # Even a perfectly confident, correct model cannot push the tutorial's loss below
    # -log(e / (e + 9)): the second softmax only sees values in [0, 1].
    confident = torch.full((1, 10), -100.0)
    confident[0, 3] = 100.0
    floor = -math.log(math.e / (math.e + 9))
    value = SoftmaxTwiceCrossEntropy()(confident, torch.tensor([3])).item()
    assert value == pytest.approx(floor, rel=1e-5)
    assert CrossEntropy()(confident, torch.tensor([3])).item() < 1e-6
