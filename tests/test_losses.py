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


# --- the rest of the family --------------------------------------------------------------

from mnist_lit.losses import (  # noqa: E402
    BinaryCrossEntropy,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    SigmoidQuadratic,
)


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_sigmoid_quadratic_by_hand() -> None:
    total = 0.0
    for row, y in zip(LOGITS.tolist(), TARGET.tolist(), strict=True):
        total += sum((_sigmoid(z) - (k == y)) ** 2 for k, z in enumerate(row)) / 2
    assert SigmoidQuadratic()(LOGITS, TARGET).item() == pytest.approx(total / 2, rel=1e-6)


def test_binary_cross_entropy_by_hand() -> None:
    total = 0.0
    for row, y in zip(LOGITS.tolist(), TARGET.tolist(), strict=True):
        for k, z in enumerate(row):
            a = _sigmoid(z)
            total -= math.log(a) if k == y else math.log(1 - a)
    assert BinaryCrossEntropy()(LOGITS, TARGET).item() == pytest.approx(total / 2, rel=1e-6)


def test_label_smoothing_by_hand() -> None:
    eps, total = 0.2, 0.0
    for row, y in zip(LOGITS.tolist(), TARGET.tolist(), strict=True):
        p = _hand_softmax(row)
        total += (1 - eps) * -math.log(p[y]) + eps * sum(-math.log(pk) for pk in p) / 3
    value = LabelSmoothingCrossEntropy(eps)(LOGITS, TARGET).item()
    assert value == pytest.approx(total / 2, rel=1e-6)


def test_focal_by_hand() -> None:
    gamma, total = 2.0, 0.0
    for row, y in zip(LOGITS.tolist(), TARGET.tolist(), strict=True):
        p = _hand_softmax(row)[y]
        total += -((1 - p) ** gamma) * math.log(p)
    assert FocalLoss(gamma)(LOGITS, TARGET).item() == pytest.approx(total / 2, rel=1e-6)


def _focal_reference(z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    # PyTorch has no softmax focal loss: write it the long way from softmax probabilities.
    p = torch.softmax(z, 1)[torch.arange(len(y)), y]
    return (-((1 - p) ** gamma) * torch.log(p)).mean()


@pytest.mark.parametrize(
    ("loss", "reference"),
    [
        pytest.param(
            SigmoidQuadratic(),
            lambda z, y: (
                F.mse_loss(torch.sigmoid(z), F.one_hot(y, 10).float(), reduction="sum")
                / (2 * len(y))
            ),
            id="sigmoid-quadratic",
        ),
        pytest.param(
            BinaryCrossEntropy(),
            lambda z, y: (
                F.binary_cross_entropy(torch.sigmoid(z), F.one_hot(y, 10).float(), reduction="sum")
                / len(y)
            ),
            id="bce-one-vs-rest",
        ),
        pytest.param(
            LabelSmoothingCrossEntropy(0.1),
            lambda z, y: F.cross_entropy(z, y, label_smoothing=0.1),
            id="label-smoothing",
        ),
        pytest.param(FocalLoss(0.0), F.cross_entropy, id="focal-gamma0-is-ce"),
        pytest.param(FocalLoss(2.0), lambda z, y: _focal_reference(z, y, 2.0), id="focal"),
    ],
)
def test_family_matches_reference_with_gradients(loss, reference) -> None:
    test_matches_torch_reference_with_gradients(loss, reference)


def test_sigmoid_losses_gradients_differ_by_the_sigmoid_slope() -> None:
    # Nielsen's point, exactly: dC/dz of the quadratic cost is BCE's times sigma'(z).
    logits = torch.tensor([[4.0, -3.0, 0.5], [6.0, 2.0, -5.0]], requires_grad=True)
    target = torch.tensor([1, 0])
    (quadratic_grad,) = torch.autograd.grad(SigmoidQuadratic()(logits, target), logits)
    (bce_grad,) = torch.autograd.grad(BinaryCrossEntropy()(logits, target), logits)
    a = logits.detach().sigmoid()
    torch.testing.assert_close(quadratic_grad, bce_grad * a * (1 - a))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LabelSmoothingCrossEntropy(1.0), "smoothing"),
        (lambda: LabelSmoothingCrossEntropy(-0.1), "smoothing"),
        (lambda: FocalLoss(-1.0), "gamma"),
    ],
)
def test_bad_hyperparameters_are_named(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "loss", [CrossEntropy(), Quadratic(), SigmoidQuadratic(), BinaryCrossEntropy(), FocalLoss()]
)
def test_bad_shapes_are_named(loss) -> None:
    with pytest.raises(ValueError, match="target must have shape"):
        loss(torch.zeros(4, 10), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="logits must have shape"):
        loss(torch.zeros(10), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class indices"):
        loss(torch.zeros(4, 10), torch.zeros(4))


def test_every_loss_declares_its_output_activation() -> None:
    softmax = [CrossEntropy, SoftmaxTwiceCrossEntropy, Quadratic, LabelSmoothingCrossEntropy]
    assert all(cls.activation == "softmax" for cls in [*softmax, FocalLoss])
    assert SigmoidQuadratic.activation == BinaryCrossEntropy.activation == "sigmoid"


# --- the square loss on logits (Hui and Belkin) ------------------------------------------

from mnist_lit.losses import SquareLoss  # noqa: E402


def test_square_loss_by_hand() -> None:
    # Row 1, target 0: (2-1)^2 + 1^2 + 0^2 = 2; row 2, target 1: 0^2 + (0-1)^2 + 3^2 = 10.
    assert SquareLoss()(LOGITS, TARGET).item() == pytest.approx((2 + 10) / 6, rel=1e-6)
    # k = 2, M = 3: row 1: 2 (2-3)^2 + 1 + 0 = 3; row 2: 0 + 2 (0-3)^2 + 9 = 27.
    rescaled = SquareLoss(true_class_weight=2.0, true_class_target=3.0)
    assert rescaled(LOGITS, TARGET).item() == pytest.approx((3 + 27) / 6, rel=1e-6)


def test_square_loss_gradient_by_hand() -> None:
    # dC/dz = 2 k_i (z_i - M y_i) / (B K), with k_i = k on the true class, 1 elsewhere.
    logits = LOGITS.clone().requires_grad_()
    SquareLoss(true_class_weight=2.0, true_class_target=3.0)(logits, TARGET).backward()
    expected = torch.tensor([[2 * 2 * (2 - 3), 2 * 1, 0], [0, 2 * 2 * (0 - 3), 2 * 3]]) / 6
    assert torch.allclose(logits.grad, expected.float())


def test_square_loss_needs_no_softmax_and_keeps_the_contract() -> None:
    # The default is plain MSE between the logits and the one-hot target.
    one_hot = F.one_hot(TARGET, 3).float()
    assert SquareLoss()(LOGITS, TARGET).item() == pytest.approx(F.mse_loss(LOGITS, one_hot).item())
    assert SquareLoss.activation == "softmax"
    with pytest.raises(ValueError, match="true_class_weight must be positive"):
        SquareLoss(true_class_weight=0.0)


# --- the contenders: squentropy and the multi-class hinge, against loops by hand ----------

from mnist_lit.losses import MulticlassHinge, Squentropy  # noqa: E402


def _rows() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(6, 10, generator=generator) * 3, torch.arange(6) % 10


def test_squentropy_is_cross_entropy_plus_the_wrong_classes_mean_square() -> None:
    logits, target = _rows()
    total = 0.0
    for z, y in zip(logits.tolist(), target.tolist(), strict=True):
        log_sum = math.log(sum(math.exp(v) for v in z))
        wrong = [v * v for i, v in enumerate(z) if i != y]
        total += (log_sum - z[y]) + sum(wrong) / len(wrong)
    assert Squentropy()(logits, target).item() == pytest.approx(total / len(logits), rel=1e-5)


def test_multiclass_hinge_is_the_weston_watkins_margin() -> None:
    logits, target = _rows()
    for margin in (1.0, 2.5):
        total = 0.0
        for z, y in zip(logits.tolist(), target.tolist(), strict=True):
            total += sum(max(0.0, margin - z[y] + v) for i, v in enumerate(z) if i != y) / len(z)
        loss = MulticlassHinge(margin)(logits, target).item()
        assert loss == pytest.approx(total / len(logits), rel=1e-5)
    with pytest.raises(ValueError, match="margin must be positive"):
        MulticlassHinge(0.0)


@pytest.mark.parametrize("loss", [Squentropy(), MulticlassHinge()])
def test_contenders_keep_the_contract(loss: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="target must have shape"):
        loss(torch.zeros(4, 10), torch.zeros(3, dtype=torch.long))
    assert loss.activation == "softmax"
