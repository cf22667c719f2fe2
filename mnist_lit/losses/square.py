"""The square loss on logits (Hui and Belkin, ICLR 2021): no softmax, the raw outputs are
regressed onto the one-hot target.

Unlike the quadratic cost on softmax outputs (:mod:`mnist_lit.losses.quadratic`), its
gradient :math:`\\partial C_x / \\partial z_k = \\tfrac{2}{K}(z_k - y_k)` carries no
activation's derivative, so it does not vanish when an output is confidently wrong; but it
also does not saturate when an output is confidently right, which is why large learning
rates make it diverge.

Squentropy (Hui, Belkin and Wright, ICML 2023) adds the square term of the wrong classes to
cross-entropy.
"""

from __future__ import annotations

import torch.nn.functional as F
from lightning.pytorch.core.mixins import HyperparametersMixin
from torch import Tensor, nn

from mnist_lit.losses._checks import check_logits_and_target, one_hot_like


class SquareLoss(HyperparametersMixin, nn.Module):
    r"""Mean squared error between the logits and the (rescaled) one-hot target.

    .. math:: C = \frac{1}{B\,K} \sum_b \Bigl[k\,(z_{b,y_b} - M)^2
        + \sum_{i \ne y_b} z_{b,i}^2\Bigr]

    With :math:`k = M = 1` (the default) this is ``F.mse_loss(logits, one_hot(target))``;
    Hui and Belkin raise :math:`k` (the true class's weight) and :math:`M` (its target
    value) for data sets with many classes.

    The loss applies no activation; the model's probabilities (for predictions, calibration
    and the saturated share) are the softmax of its logits, as for every other loss here.

    Args:
        true_class_weight: :math:`k > 0`.
        true_class_target: :math:`M > 0`.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(SquareLoss()(logits, torch.tensor([0])).item(), 4)  # (1 + 1 + 0) / 3
        0.6667
        >>> round(SquareLoss(2.0, 3.0)(logits, torch.tensor([0])).item(), 4)  # (2 + 1) / 3
        1.0
    """

    activation = "softmax"

    def __init__(self, true_class_weight: float = 1.0, true_class_target: float = 1.0) -> None:
        super().__init__()
        if not true_class_weight > 0:
            raise ValueError(f"true_class_weight must be positive, got {true_class_weight}")
        if not true_class_target > 0:
            raise ValueError(f"true_class_target must be positive, got {true_class_target}")
        self.save_hyperparameters()  # so that a checkpoint can rebuild it
        self.true_class_weight = true_class_weight
        self.true_class_target = true_class_target

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        one_hot = one_hot_like(logits, target)
        weights = 1 + (self.true_class_weight - 1) * one_hot
        return (weights * (logits - self.true_class_target * one_hot).square()).mean()


class Squentropy(nn.Module):
    r"""Squentropy (Hui, Belkin and Wright, ICML 2023): cross-entropy plus the mean, over the
    wrong classes, of the squared logits.

    .. math:: C = \frac{1}{B} \sum_b \Bigl[-\log \operatorname{softmax}(z_b)_{y_b}
        + \frac{1}{K - 1} \sum_{i \ne y_b} z_{b,i}^2\Bigr]

    The square term pulls the wrong classes' logits to 0, which cross-entropy alone lets
    drift to minus infinity; its authors report better calibration at cross-entropy's
    learning rate.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(Squentropy()(logits, torch.tensor([0])).item(), 4)  # 0.4076 + (1 + 0) / 2
        0.9076
    """

    activation = "softmax"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        wrong = 1 - one_hot_like(logits, target)
        square = (wrong * logits.square()).sum(dim=-1) / (logits.shape[-1] - 1)
        return F.cross_entropy(logits, target) + square.mean()
