"""A trained model measured on one split, the same way for ``mnist-lit compare`` and
``mnist-lit study``: its predictions, accuracy, cross-entropy on the logits and expected
calibration error of their softmax."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error

from mnist_lit.data import MNISTDataModule
from mnist_lit.mnist import NUM_CLASSES
from mnist_lit.models import MNISTClassifier

CHUNK = 5_000  # images per forward pass: the whole split would need a large activation


@dataclass(frozen=True)
class Evaluation:
    """Attributes:
    predictions: the predicted class of every image of the split, in order ``(N,)``.
    metrics: ``<split>_acc``, ``<split>_ce`` and ``<split>_ece``.
    """

    predictions: Tensor
    metrics: dict[str, float]


@torch.no_grad()
def split_logits(model: MNISTClassifier, datamodule: MNISTDataModule, split: str) -> Tensor:
    """The logits ``(N, 10)`` of every image of ``split``, in eval mode, on the model's
    device; the model is left in the mode it was in."""
    images, _ = datamodule.splits[split]
    device = next(model.net.parameters()).device
    was_training = model.training
    model.eval()
    try:
        chunks = [model(datamodule.preprocess(c.to(device))) for c in images.split(CHUNK)]
    finally:
        model.train(was_training)
    return torch.cat(chunks).float()


def evaluate(model: MNISTClassifier, datamodule: MNISTDataModule, split: str) -> Evaluation:
    """``model``'s predictions and metrics on ``split`` (``"val"`` or ``"test"``)."""
    logits = split_logits(model, datamodule, split)
    labels = datamodule.splits[split][1].to(logits.device)
    predictions = logits.argmax(-1)
    ece = multiclass_calibration_error(logits.softmax(-1), labels, NUM_CLASSES, n_bins=15)
    metrics = {
        f"{split}_acc": (predictions == labels).float().mean().item(),
        f"{split}_ce": F.cross_entropy(logits, labels).item(),
        f"{split}_ece": ece.item(),
    }
    return Evaluation(predictions.cpu(), metrics)
