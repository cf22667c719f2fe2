"""The quadratic cost, on softmax outputs (the tutorial) and on sigmoid outputs (Nielsen).

Its gradient carries the output activation's derivative: on a sigmoid output
:math:`\\partial C / \\partial z = (a - y)\\,\\sigma'(z)`, which vanishes when the output
saturates near 0 or 1, right or wrong. That is the slowdown the loss study measures.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mnist_lit.losses._checks import check_logits_and_target, one_hot_like


class Quadratic(nn.Module):
    r"""Quadratic cost: mean squared error between softmax probabilities and one-hot targets.

    .. math:: C = \frac{1}{B\,K} \sum_{b, k} (\operatorname{softmax}(z_b)_k - [y_b = k])^2

    This is ``nn.MSELoss()(softmax(z), one_hot(y))``, the tutorial's comparison (note the
    mean over classes too, as ``MSELoss`` takes it).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(Quadratic()(logits, torch.tensor([0])).item(), 4)
        0.06
    """

    activation = "softmax"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        return F.mse_loss(logits.softmax(dim=-1), one_hot_like(logits, target))


class SigmoidQuadratic(nn.Module):
    r"""Nielsen's quadratic cost on independent sigmoid outputs.

    .. math:: C = \frac{1}{2B} \sum_{b, k} (\sigma(z_{b,k}) - [y_b = k])^2

    Summed over the outputs and halved, as in *Neural Networks and Deep Learning*,
    chapters 1-3, so :math:`\partial C_x / \partial z_k = (a_k - y_k)\,\sigma'(z_k)`. The
    model still predicts by the argmax of its logits.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(SigmoidQuadratic()(logits, torch.tensor([0])).item(), 4)
        0.3993
    """

    activation = "sigmoid"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        squared = (logits.sigmoid() - one_hot_like(logits, target)).square()
        return squared.sum(dim=-1).mean() / 2
