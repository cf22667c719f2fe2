"""Figures of a test run: the confusion matrix, the most confident mistakes, a reliability
diagram and the accuracy per class, saved in the run folder and given to every tracker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from mnist_lit.models import MNISTClassifier
from mnist_lit.runs import figures
from mnist_lit.runs.figures import CalibrationBins
from mnist_lit.runs.tracking import log_figure


class Mistakes(NamedTuple):
    """Wrong predictions: images ``(K, H, W)``, true and predicted classes, confidence."""

    images: Tensor
    target: Tensor
    predicted: Tensor
    confidence: Tensor

    def most_confident(self, keep: int) -> Mistakes:
        order = self.confidence.argsort(descending=True, stable=True)[:keep]
        return Mistakes(*(values[order] for values in self))


class ConfidentMistakes(Metric):
    """The ``keep`` wrong predictions made with the highest confidence. Each process keeps
    its own; torchmetrics gathers them, and the most confident of all are kept."""

    full_state_update = False

    def __init__(self, keep: int = 12) -> None:
        super().__init__()
        self.keep = keep
        for name in Mistakes._fields:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, images: Tensor, target: Tensor, probs: Tensor) -> None:
        confidence, predicted = probs.max(dim=-1)
        wrong = predicted != target
        found = Mistakes(images[wrong].flatten(0, -3), target[wrong], predicted[wrong],
                         confidence[wrong].float())  # fmt: skip
        kept = Mistakes(*(dim_zero_cat([*getattr(self, name), new])
                          for name, new in zip(Mistakes._fields, found, strict=True)))  # fmt: skip
        # One tensor per state: a process's share never holds more than ``keep``.
        for name, values in zip(Mistakes._fields, kept.most_confident(self.keep), strict=True):
            setattr(self, name, [values])

    def compute(self) -> Mistakes:
        states = [getattr(self, name) for name in Mistakes._fields]
        if any(isinstance(state, list) and not state for state in states):  # no batch
            return Mistakes(*(torch.zeros(0) for _ in states))
        return Mistakes(*map(dim_zero_cat, states)).most_confident(self.keep)


@dataclass
class EvaluationSummary:
    """What the figures show of a test set: the confusion matrix (rows: true class), the
    calibration bins and the most confident mistakes."""

    confusion: np.ndarray
    calibration: CalibrationBins
    mistakes: Mistakes


class EvaluationFigures(Callback):
    """At the end of ``mnist-lit test``: the confusion matrix, the most confident mistakes,
    a reliability diagram and the accuracy per class of the tested model.

    Each is saved as a PNG in ``<run folder>/<dirname>/``, with the confusion matrix's
    counts as ``confusion_matrix.csv`` (rows: true digit), and given to every tracker of
    the run (TensorBoard's IMAGES tab, MLflow's artifacts, W&B's media) as
    ``test/<figure>``. They come from the classifier's test metrics (the confusion matrix
    and the reliability bins, in ``test/ece``'s 15 bins) and the logits its test steps
    return, synchronised across processes by torchmetrics; the first process draws them.
    ``fit`` is not slowed: nothing runs outside testing.

    Args:
        enabled: draw the figures (``--figures.enabled false`` for none).
        dirname: the folder for the PNGs, inside the run folder.
        mistakes: how many of the most confident mistakes to show.
    """

    NAMES = ("confusion_matrix", "confident_mistakes", "reliability", "per_class_accuracy")

    def __init__(self, enabled: bool = True, dirname: str = "figures", mistakes: int = 12) -> None:
        self.enabled = enabled
        self.dirname = dirname
        self.mistakes = mistakes
        self.found = ConfidentMistakes(mistakes)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.found = ConfidentMistakes(self.mistakes).to(pl_module.device)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.enabled:
            images, target = batch
            self.found.update(images, target, cast(Tensor, outputs).float().softmax(dim=-1))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A dry run (fast_dev_run) keeps nothing.
        if not self.enabled or trainer.fast_dev_run:  # type: ignore[attr-defined]
            return
        model = cast(MNISTClassifier, pl_module)
        # Every process computes: torchmetrics sums (and gathers) across them.
        summary = EvaluationSummary(
            model.metric("test", "confusion").compute().cpu().numpy(),
            CalibrationBins.from_tensor(model.metric("test", "reliability").compute()),
            Mistakes(*(values.cpu() for values in self.found.compute())),
        )
        # Every process asks: the trainer's log_dir is broadcast from the first one.
        folder = Path(trainer.log_dir or ".") / self.dirname
        if not trainer.is_global_zero or summary.confusion.sum() == 0:
            return
        folder.mkdir(parents=True, exist_ok=True)
        # The numbers behind the first figure, to read without a picture.
        np.savetxt(folder / "confusion_matrix.csv", summary.confusion, fmt="%d", delimiter=",")
        for name, figure in draw(summary, self.mistakes).items():
            path = folder / f"{name}.png"
            figure.savefig(path, dpi=100)
            for logger in trainer.loggers:
                log_figure(logger, f"test/{name}", figure, path, trainer.global_step)
        print(f"Figures of the test set written to {folder}{os.sep}")


def draw(summary: EvaluationSummary, mistakes: int = 12) -> dict[str, Figure]:
    """The four figures of a test set's ``summary``, by name."""
    images, target, predicted, confidence = summary.mistakes
    total = int(summary.confusion.sum())
    wrong = total - int(np.trace(summary.confusion))
    title = f"most confident mistakes ({wrong} of {total} test images wrong)"
    return {
        "confusion_matrix": figures.confusion_matrix(summary.confusion, "test set"),
        "confident_mistakes": figures.confident_mistakes(
            images, target, predicted, confidence, count=mistakes, title=title
        ),
        "reliability": figures.reliability_diagram({"test set": summary.calibration}),
        "per_class_accuracy": figures.per_class_accuracy({"test set": summary.confusion}),
    }
