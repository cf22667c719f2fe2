"""Binary cross-entropy per class, one-vs-rest on sigmoid outputs (Nielsen's chapter 3)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mnist_lit.losses._checks import check_logits_and_target, one_hot_like


class BinaryCrossEntropy(nn.Module):
    r"""Binary cross-entropy of each sigmoid output against its one-hot target.

    .. math:: C = -\frac{1}{B} \sum_{b, k} \bigl[y_{b,k} \log \sigma(z_{b,k})
        + (1 - y_{b,k}) \log (1 - \sigma(z_{b,k}))\bigr]

    Summed over the outputs, averaged over the batch, as Nielsen writes it. Per sample
    :math:`\partial C_x / \partial z_k = \sigma(z_k) - y_k`: the :math:`\sigma'(z)` of the
    quadratic cost cancels, so a saturated wrong output still learns fast. The model still
    predicts by the argmax of its logits.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(BinaryCrossEntropy()(logits, torch.tensor([0])).item(), 4)
        2.1333
    """

    activation = "sigmoid"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        per_output = F.binary_cross_entropy_with_logits(
            logits, one_hot_like(logits, target), reduction="none"
        )
        return per_output.sum(dim=-1).mean()
