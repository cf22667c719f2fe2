"""Losses over logits, each an ``nn.Module``.

Every loss here has the signature ``loss(logits, target) -> scalar`` with ``logits`` of
shape ``(B, C)`` and integer ``target`` of shape ``(B,)``. Any ``nn.Module`` with that
signature can be passed to :class:`~mnist_lit.models.MNISTClassifier` as its loss, from
Python or from YAML by ``class_path`` (e.g. ``mnist_lit.losses.FocalLoss``).

Each class names its output activation in ``activation`` (``"softmax"`` or
``"sigmoid"``): the probabilities whose saturation the classifier reports. The square loss
on logits applies none itself and names ``"softmax"``, the model's probabilities.
"""

from mnist_lit.losses.binary import BinaryCrossEntropy
from mnist_lit.losses.cross_entropy import (
    CrossEntropy,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    SoftmaxTwiceCrossEntropy,
)
from mnist_lit.losses.margin import MulticlassHinge
from mnist_lit.losses.quadratic import Quadratic, SigmoidQuadratic
from mnist_lit.losses.square import SquareLoss, Squentropy

__all__ = [
    "BinaryCrossEntropy",
    "CrossEntropy",
    "FocalLoss",
    "LabelSmoothingCrossEntropy",
    "MulticlassHinge",
    "Quadratic",
    "SigmoidQuadratic",
    "SoftmaxTwiceCrossEntropy",
    "SquareLoss",
    "Squentropy",
]
