"""The multi-class hinge loss: a margin on the logits, no probabilities."""

from __future__ import annotations

import torch.nn.functional as F
from lightning.pytorch.core.mixins import HyperparametersMixin
from torch import Tensor, nn

from mnist_lit.losses._checks import check_logits_and_target


class MulticlassHinge(HyperparametersMixin, nn.Module):
    r"""The multi-class hinge loss of Weston and Watkins (1999), as ``nn.MultiMarginLoss``:

    .. math:: C = \frac{1}{B\,K} \sum_b \sum_{i \ne y_b}
        \max\bigl(0,\ m - z_{b,y_b} + z_{b,i}\bigr)

    Each wrong class costs only while its logit is within the margin :math:`m` of the
    true class's; beyond it the gradient is exactly 0, so nothing ties the logits to
    probabilities. The model's probabilities (for calibration) are still the softmax of
    its logits, which is why this loss is badly calibrated until temperature scaling.

    Args:
        margin: :math:`m > 0`.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> MulticlassHinge()(logits, torch.tensor([0])).item()  # (0 + 0) / 3
        0.0
        >>> round(MulticlassHinge()(logits, torch.tensor([1])).item(), 4)  # (2 + 0) / 3
        0.6667
    """

    activation = "softmax"

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        if not margin > 0:
            raise ValueError(f"margin must be positive, got {margin}")
        self.save_hyperparameters()  # so that a checkpoint can rebuild it
        self.margin = margin

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        return F.multi_margin_loss(logits, target, margin=self.margin)
