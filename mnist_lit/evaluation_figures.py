"""Figures of a test run: the confusion matrix, the most confident mistakes, a reliability
diagram and the accuracy per class, saved in the run folder and given to every tracker."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback
from matplotlib.figure import Figure
from torch import Tensor

from mnist_lit import figures
from mnist_lit.figures import CalibrationBins
from mnist_lit.mnist import NUM_CLASSES
from mnist_lit.tracking import log_figure


class Mistakes(NamedTuple):
    """Wrong predictions: images ``(K, H, W)``, true and predicted classes, confidence."""

    images: Tensor
    target: Tensor
    predicted: Tensor
    confidence: Tensor

    def join(self, other: Mistakes | None) -> Mistakes:
        if other is None:
            return self
        return Mistakes(*(torch.cat(pair) for pair in zip(self, other, strict=True)))

    def most_confident(self, keep: int) -> Mistakes:
        order = self.confidence.argsort(descending=True, stable=True)[:keep]
        return Mistakes(*(values[order] for values in self))


@dataclass
class EvaluationSummary:
    """What the figures need from one process's share of the test set: sums that add up
    across processes, and that process's most confident mistakes."""

    confusion: np.ndarray = field(default_factory=lambda: np.zeros((NUM_CLASSES,) * 2, int))
    calibration: CalibrationBins | None = None
    mistakes: Mistakes | None = None

    def add(self, images: Tensor, target: Tensor, probs: Tensor, n_bins: int, keep: int) -> None:
        """Count one batch of ``images`` with their ``target`` and predicted ``probs``,
        keeping the ``keep`` most confident mistakes so far."""
        confidence, predicted = probs.max(dim=-1)
        self.confusion += figures.confusion_counts(target, predicted)
        bins = CalibrationBins.of(confidence, predicted == target, n_bins)
        self.calibration = bins if self.calibration is None else self.calibration + bins
        wrong = predicted != target
        if keep and wrong.any():
            pictures = images[wrong].reshape(-1, *images.shape[-2:])
            found = Mistakes(pictures, target[wrong], predicted[wrong], confidence[wrong])
            found = Mistakes(*(values.detach().cpu() for values in found))
            self.mistakes = found.join(self.mistakes).most_confident(keep)

    def __add__(self, other: EvaluationSummary) -> EvaluationSummary:
        calibrations = [c for c in (self.calibration, other.calibration) if c is not None]
        return EvaluationSummary(
            self.confusion + other.confusion,
            sum(calibrations[1:], calibrations[0]) if calibrations else None,
            other.mistakes if self.mistakes is None else self.mistakes.join(other.mistakes),
        )


class EvaluationFigures(Callback):
    """At the end of ``mnist-lit test``: the confusion matrix, the most confident mistakes,
    a reliability diagram and the accuracy per class of the tested model.

    Each is saved as a PNG in ``<run folder>/<dirname>/``, with the confusion matrix's
    counts as ``confusion_matrix.csv`` (rows: true digit), and given to every tracker of
    the run (TensorBoard's IMAGES tab, MLflow's artifacts, W&B's media) as
    ``test/<figure>``. The predictions are taken from the model during the test batches;
    with several processes each counts its share of the test set and the first process
    draws the sum. ``fit`` is not slowed: nothing runs outside testing.

    Args:
        enabled: draw the figures (``--figures.enabled false`` for none).
        dirname: the folder for the PNGs, inside the run folder.
        mistakes: how many of the most confident mistakes to show.
        bins: confidence bins of the reliability diagram (15, as ``test/ece`` has).
    """

    NAMES = ("confusion_matrix", "confident_mistakes", "reliability", "per_class_accuracy")

    def __init__(
        self, enabled: bool = True, dirname: str = "figures", mistakes: int = 12, bins: int = 15
    ) -> None:
        self.enabled = enabled
        self.dirname = dirname
        self.mistakes = mistakes
        self.bins = bins
        self.summary = EvaluationSummary()

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.summary = EvaluationSummary()

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.enabled:
            return
        images, target = batch
        with torch.no_grad():  # the test step keeps no logits: one more forward pass
            probs = pl_module(images).float().softmax(dim=-1)
        self.summary.add(images, target, probs, self.bins, self.mistakes)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A dry run (fast_dev_run) keeps nothing.
        if not self.enabled or trainer.fast_dev_run:  # type: ignore[attr-defined]
            return
        summary = self.summary
        if dist.is_available() and dist.is_initialized():
            # The sum of every process's summary; all_gather_object fills every place.
            parts: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(parts, summary)
            summary = sum(parts[1:], parts[0])
        # Every process asks: the trainer's log_dir is broadcast from the first one.
        folder = Path(trainer.log_dir or ".") / self.dirname
        if not trainer.is_global_zero or summary.calibration is None:
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
    assert summary.calibration is not None
    nothing = torch.zeros(0)
    images, target, predicted, confidence = summary.mistakes or (nothing,) * 4
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
