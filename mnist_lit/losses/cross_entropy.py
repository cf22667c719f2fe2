"""Softmax cross-entropy and its variants: the tutorial's softmax-twice mistake, label
smoothing and focal loss. All take logits ``(B, C)`` and integer targets ``(B,)`` and
average over the batch."""

from __future__ import annotations

import torch.nn.functional as F
from lightning.pytorch.core.mixins import HyperparametersMixin
from torch import Tensor, nn

from mnist_lit.losses._checks import check_logits_and_target


class CrossEntropy(nn.Module):
    r"""Cross-entropy on logits, the correct form.

    .. math:: C = -\frac{1}{B} \sum_b \log \operatorname{softmax}(z_b)_{y_b}

    Its gradient is :math:`\partial C / \partial z_k = p_k - [y = k]` per sample: no
    activation derivative, so it does not vanish when the output saturates.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(CrossEntropy()(logits, torch.tensor([0])).item(), 4)
        0.4076
    """

    activation = "softmax"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        return F.cross_entropy(logits, target)


class SoftmaxTwiceCrossEntropy(nn.Module):
    r"""The tutorial's loss: softmax in the model, then ``CrossEntropyLoss`` on its output.

    ``CrossEntropyLoss`` applies log-softmax itself, so the probabilities are squashed
    by a second softmax:

    .. math:: C = -\log \operatorname{softmax}(\operatorname{softmax}(z))_y

    Because :math:`\operatorname{softmax}(z) \in [0, 1]`, the second softmax can never put
    more than :math:`e / (e + C - 1)` on the true class (0.232 for 10 classes), so the loss
    never falls below 1.46 and its gradient stays small. Kept to reproduce the tutorial.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(SoftmaxTwiceCrossEntropy()(logits, torch.tensor([0])).item(), 4)
        0.7972
    """

    activation = "softmax"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        return F.cross_entropy(logits.softmax(dim=-1), target)


class LabelSmoothingCrossEntropy(HyperparametersMixin, nn.Module):
    r"""Cross-entropy against targets smoothed towards the uniform distribution.

    .. math:: C = (1 - \varepsilon) \bigl(-\log p_y\bigr)
        + \frac{\varepsilon}{K} \sum_{k=1}^{K} -\log p_k,
        \quad p = \operatorname{softmax}(z)

    The same as ``F.cross_entropy(logits, target, label_smoothing=smoothing)``.

    Args:
        smoothing: :math:`\varepsilon \in [0, 1)`, the share of the target mass spread
            uniformly over all classes; 0 is plain cross-entropy.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(LabelSmoothingCrossEntropy(0.1)(logits, torch.tensor([0])).item(), 4)
        0.5076
    """

    activation = "softmax"

    def __init__(self, smoothing: float = 0.1) -> None:
        super().__init__()
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.save_hyperparameters()  # so that a checkpoint can rebuild it
        self.smoothing = smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        log_p = logits.log_softmax(dim=-1)
        true_class = -log_p.gather(1, target[:, None]).squeeze(1)
        uniform = -log_p.mean(dim=-1)
        return ((1 - self.smoothing) * true_class + self.smoothing * uniform).mean()


class FocalLoss(HyperparametersMixin, nn.Module):
    r"""Focal loss (Lin et al., 2017) over softmax: easy examples weigh less.

    .. math:: C = -\frac{1}{B} \sum_b (1 - p_{b, y_b})^{\gamma} \log p_{b, y_b},
        \quad p = \operatorname{softmax}(z)

    Args:
        gamma: focusing parameter, :math:`\gamma \ge 0`; 0 is plain cross-entropy.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(FocalLoss(gamma=2.0)(logits, torch.tensor([0])).item(), 4)
        0.0457
    """

    activation = "softmax"

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be non-negative, got {gamma}")
        self.save_hyperparameters()
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_logits_and_target(logits, target)
        log_p_true = logits.log_softmax(dim=-1).gather(1, target[:, None]).squeeze(1)
        weight = (1 - log_p_true.exp()).pow(self.gamma)
        return -(weight * log_p_true).mean()
