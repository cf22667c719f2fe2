"""Losses over logits: each a functional core and a thin ``nn.Module`` on top.

Every loss here has the signature ``loss(logits, target) -> scalar`` with ``logits`` of
shape ``(B, C)`` and integer ``target`` of shape ``(B,)``. Any ``nn.Module`` with that
signature can be passed to :class:`~mnist_lit.models.MNISTClassifier` as its loss, from
Python or from YAML by ``class_path``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def softmax_twice_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    r"""The tutorial's loss: softmax in the model, then ``CrossEntropyLoss`` on its output.

    ``CrossEntropyLoss`` applies log-softmax itself, so the probabilities are squashed
    by a second softmax:

    .. math:: C = -\log \operatorname{softmax}(\operatorname{softmax}(z))_y

    Because :math:`\operatorname{softmax}(z) \in [0, 1]`, the second softmax can never put
    more than :math:`e / (e + C - 1)` on the true class (0.232 for 10 classes), so the loss
    never falls below 1.46 and its gradient stays small. Kept to reproduce the tutorial.
    """
    return F.cross_entropy(logits.softmax(dim=-1), target)


def quadratic(logits: Tensor, target: Tensor) -> Tensor:
    r"""Quadratic cost: mean squared error between softmax probabilities and one-hot targets.

    .. math:: C = \frac{1}{B\,C} \sum_{b, k} (\operatorname{softmax}(z_b)_k - [y_b = k])^2

    This is ``nn.MSELoss()(softmax(z), one_hot(y))``, the tutorial's comparison.
    """
    one_hot = F.one_hot(target, num_classes=logits.shape[-1]).to(logits.dtype)
    return F.mse_loss(logits.softmax(dim=-1), one_hot)


class CrossEntropy(nn.Module):
    r"""Cross-entropy on logits, the correct form: :math:`C = -\log \operatorname{softmax}(z)_y`."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target)


class SoftmaxTwiceCrossEntropy(nn.Module):
    """The tutorial's cross-entropy, with softmax applied twice.

    See :func:`softmax_twice_cross_entropy`.
    """

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return softmax_twice_cross_entropy(logits, target)


class Quadratic(nn.Module):
    """Quadratic cost (MSE) on softmax outputs against one-hot targets; see :func:`quadratic`."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return quadratic(logits, target)


__all__ = [
    "CrossEntropy",
    "Quadratic",
    "SoftmaxTwiceCrossEntropy",
    "quadratic",
    "softmax_twice_cross_entropy",
]
