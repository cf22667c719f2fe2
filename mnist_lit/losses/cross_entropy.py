"""Softmax cross-entropy and its variants: the tutorial's softmax-twice mistake, label
smoothing and focal loss. All take logits ``(B, C)`` and integer targets ``(B,)`` and
average over the batch."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mnist_lit.losses._checks import check_logits_and_target


def softmax_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    r"""Cross-entropy on logits, the correct form.

    .. math:: C = -\frac{1}{B} \sum_b \log \operatorname{softmax}(z_b)_{y_b}

    Its gradient is :math:`\partial C / \partial z_k = p_k - [y = k]` per sample: no
    activation derivative, so it does not vanish when the output saturates.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(softmax_cross_entropy(logits, torch.tensor([0])).item(), 4)
        0.4076
    """
    check_logits_and_target(logits, target)
    return F.cross_entropy(logits, target)


def softmax_twice_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
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
        >>> round(softmax_twice_cross_entropy(logits, torch.tensor([0])).item(), 4)
        0.7972
    """
    check_logits_and_target(logits, target)
    return F.cross_entropy(logits.softmax(dim=-1), target)


def label_smoothing_cross_entropy(logits: Tensor, target: Tensor, smoothing: float = 0.1) -> Tensor:
    r"""Cross-entropy against targets smoothed towards the uniform distribution.

    .. math:: C = (1 - \varepsilon) \bigl(-\log p_y\bigr)
        + \frac{\varepsilon}{K} \sum_{k=1}^{K} -\log p_k,
        \quad p = \operatorname{softmax}(z)

    The same as ``F.cross_entropy(logits, target, label_smoothing=smoothing)``.

    Args:
        logits: ``(B, K)`` scores.
        target: ``(B,)`` class indices.
        smoothing: :math:`\varepsilon \in [0, 1)`; 0 is plain cross-entropy.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(label_smoothing_cross_entropy(logits, torch.tensor([0]), 0.1).item(), 4)
        0.5076
    """
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    check_logits_and_target(logits, target)
    log_p = logits.log_softmax(dim=-1)
    true_class = -log_p.gather(1, target[:, None]).squeeze(1)
    uniform = -log_p.mean(dim=-1)
    return ((1 - smoothing) * true_class + smoothing * uniform).mean()


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    r"""Focal loss (Lin et al., 2017) over softmax: easy examples weigh less.

    .. math:: C = -\frac{1}{B} \sum_b (1 - p_{b, y_b})^{\gamma} \log p_{b, y_b},
        \quad p = \operatorname{softmax}(z)

    :math:`\gamma = 0` is plain cross-entropy.

    Args:
        logits: ``(B, K)`` scores.
        target: ``(B,)`` class indices.
        gamma: focusing parameter, :math:`\gamma \ge 0`.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(focal_loss(logits, torch.tensor([0]), gamma=2.0).item(), 4)
        0.0457
    """
    if gamma < 0:
        raise ValueError(f"gamma must be non-negative, got {gamma}")
    check_logits_and_target(logits, target)
    log_p_true = logits.log_softmax(dim=-1).gather(1, target[:, None]).squeeze(1)
    weight = (1 - log_p_true.exp()).pow(gamma)
    return -(weight * log_p_true).mean()


class CrossEntropy(nn.Module):
    r"""Cross-entropy on logits: :math:`C = -\log \operatorname{softmax}(z)_y`.

    See :func:`softmax_cross_entropy`.
    """

    activation = "softmax"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return softmax_cross_entropy(logits, target)


class SoftmaxTwiceCrossEntropy(nn.Module):
    """The tutorial's cross-entropy, with softmax applied twice.

    See :func:`softmax_twice_cross_entropy`.
    """

    activation = "softmax"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return softmax_twice_cross_entropy(logits, target)


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross-entropy with label smoothing; see :func:`label_smoothing_cross_entropy`.

    Args:
        smoothing: share of the target mass spread uniformly over all classes, in [0, 1).
    """

    activation = "softmax"

    def __init__(self, smoothing: float = 0.1) -> None:
        super().__init__()
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return label_smoothing_cross_entropy(logits, target, self.smoothing)


class FocalLoss(nn.Module):
    """Softmax focal loss; see :func:`focal_loss`.

    Args:
        gamma: focusing parameter, non-negative; 0 is plain cross-entropy.
    """

    activation = "softmax"

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be non-negative, got {gamma}")
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return focal_loss(logits, target, self.gamma)
