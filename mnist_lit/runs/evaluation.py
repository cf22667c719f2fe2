"""A trained model measured on one split, the same way for ``mnist-lit compare`` and
``mnist-lit study``: its predictions, accuracy, and how good the softmax of its logits is as
probabilities (cross-entropy, expected calibration error, Brier score), raw and, given a
temperature, after temperature scaling.

Temperature scaling (Guo et al., ICML 2017) divides the logits by one scalar :math:`T`
fitted on held-out data by minimising the cross-entropy (:func:`fit_temperature`, on the
validation split); it changes no prediction, only how confident the probabilities are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error

from mnist_lit.data import MNISTDataModule
from mnist_lit.data.mnist import NUM_CLASSES
from mnist_lit.models import MNISTClassifier
from mnist_lit.models.diagnostics import brier_score

CHUNK = 5_000  # images per forward pass: the whole split would need a large activation
# The temperatures searched: wide enough for logits on any loss's scale (the square loss on
# logits wants T well below 1, an overconfident network T above it).
TEMPERATURE_RANGE = (1e-3, 1e3)
LOG_T_TOLERANCE = 1e-6
INVERSE_GOLDEN_RATIO = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class Evaluation:
    """Attributes:
    predictions: the predicted class of every image of the split, in order ``(N,)``.
    metrics: ``<split>_acc``, ``<split>_ce``, ``<split>_ece`` and ``<split>_brier``; with
        a temperature also ``<split>_ce_scaled``, ``<split>_ece_scaled``,
        ``<split>_brier_scaled`` and ``temperature``.
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


def probability_metrics(logits: Tensor, labels: Tensor, prefix: str) -> dict[str, float]:
    """``<prefix>_ce``, ``<prefix>_ece`` (15 bins) and ``<prefix>_brier`` of the softmax of
    ``logits``."""
    probs = logits.softmax(-1)
    ece = multiclass_calibration_error(probs, labels, NUM_CLASSES, n_bins=15)
    return {
        f"{prefix}_ce": F.cross_entropy(logits, labels).item(),
        f"{prefix}_ece": ece.item(),
        f"{prefix}_brier": brier_score(probs, labels).item(),
    }


@torch.no_grad()
def fit_temperature(logits: Tensor, labels: Tensor) -> float:
    r"""The temperature :math:`T` that minimises the cross-entropy of ``logits / T``.

    A golden-section search on :math:`\log T` within :data:`TEMPERATURE_RANGE`: the
    cross-entropy is convex in :math:`1/T`, hence has a single minimum along :math:`\log T`,
    which the search finds to :data:`LOG_T_TOLERANCE`. Logits that rank every image's label
    first want :math:`T \to 0`; the search then ends at the range's lower end. Non-finite
    logits (a diverged run) have nothing to fit: :math:`T = 1`.
    """
    logits = logits.double()
    if not torch.isfinite(logits).all():
        return 1.0

    def nll(log_t: float) -> float:
        return F.cross_entropy(logits * math.exp(-log_t), labels).item()

    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    inner_low = high - INVERSE_GOLDEN_RATIO * (high - low)
    inner_high = low + INVERSE_GOLDEN_RATIO * (high - low)
    nll_low, nll_high = nll(inner_low), nll(inner_high)
    while high - low > LOG_T_TOLERANCE:
        if nll_low <= nll_high:  # the minimum lies in [low, inner_high]
            high, inner_high, nll_high = inner_high, inner_low, nll_low
            inner_low = high - INVERSE_GOLDEN_RATIO * (high - low)
            nll_low = nll(inner_low)
        else:  # in [inner_low, high]
            low, inner_low, nll_low = inner_low, inner_high, nll_high
            inner_high = low + INVERSE_GOLDEN_RATIO * (high - low)
            nll_high = nll(inner_high)
    return math.exp((low + high) / 2)


def calibrate(model: MNISTClassifier, datamodule: MNISTDataModule, split: str = "val") -> float:
    """The temperature fitted to ``model``'s logits on ``split`` (:func:`fit_temperature`)."""
    logits = split_logits(model, datamodule, split)
    return fit_temperature(logits, datamodule.splits[split][1].to(logits.device))


def evaluate(
    model: MNISTClassifier,
    datamodule: MNISTDataModule,
    split: str,
    temperature: float | None = None,
) -> Evaluation:
    """``model``'s predictions and metrics on ``split`` (``"val"`` or ``"test"``); with a
    ``temperature`` (fitted on another split, :func:`calibrate`), the probability metrics
    of the logits divided by it too."""
    logits = split_logits(model, datamodule, split)
    labels = datamodule.splits[split][1].to(logits.device)
    predictions = logits.argmax(-1)
    metrics = {
        f"{split}_acc": (predictions == labels).float().mean().item(),
        **probability_metrics(logits, labels, split),
    }
    if temperature is not None:
        scaled = probability_metrics(logits / temperature, labels, split)
        metrics.update({f"{name}_scaled": value for name, value in scaled.items()})
        metrics["temperature"] = temperature
    return Evaluation(predictions.cpu(), metrics)
