"""Losses over logits: each a functional core and a thin ``nn.Module`` on top.

Every loss here has the signature ``loss(logits, target) -> scalar`` with ``logits`` of
shape ``(B, C)`` and integer ``target`` of shape ``(B,)``. Any ``nn.Module`` with that
signature can be passed to :class:`~mnist_lit.models.MNISTClassifier` as its loss, from
Python or from YAML by ``class_path`` (e.g. ``mnist_lit.losses.FocalLoss``).

Each class names its output activation in ``activation`` (``"softmax"`` or
``"sigmoid"``): the probabilities whose saturation the classifier reports. The square loss
on logits applies none itself and names ``"softmax"``, the model's probabilities.
"""

from mnist_lit.losses.binary import BinaryCrossEntropy, one_vs_rest_binary_cross_entropy
from mnist_lit.losses.cross_entropy import (
    CrossEntropy,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    SoftmaxTwiceCrossEntropy,
    focal_loss,
    label_smoothing_cross_entropy,
    softmax_cross_entropy,
    softmax_twice_cross_entropy,
)
from mnist_lit.losses.quadratic import Quadratic, SigmoidQuadratic, quadratic, sigmoid_quadratic
from mnist_lit.losses.square import SquareLoss, square_loss

__all__ = [
    "BinaryCrossEntropy",
    "CrossEntropy",
    "FocalLoss",
    "LabelSmoothingCrossEntropy",
    "Quadratic",
    "SigmoidQuadratic",
    "SoftmaxTwiceCrossEntropy",
    "SquareLoss",
    "focal_loss",
    "label_smoothing_cross_entropy",
    "one_vs_rest_binary_cross_entropy",
    "quadratic",
    "sigmoid_quadratic",
    "softmax_cross_entropy",
    "softmax_twice_cross_entropy",
    "square_loss",
]
