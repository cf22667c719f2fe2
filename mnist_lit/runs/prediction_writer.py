"""``mnist-lit predict`` writes a CSV: file, predicted digit and the ten probabilities."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from mnist_lit.data import MNISTDataModule
from mnist_lit.data.mnist import NUM_CLASSES
from mnist_lit.runs.errors import MnistLitError


class PredictionCSV(BasePredictionWriter):
    """One CSV row per predicted image, in the order of the predicted set.

    Columns: ``file``, ``digit`` and ``p0`` ... ``p9``. Lightning gives each batch its
    images' indices in the predicted set (any ``DataLoader``'s, also under DDP, where each
    process predicts its own share); the first process gathers the rows and writes the file,
    naming each image by ``MNISTDataModule.predict_names()`` (else by its index).

    Args:
        path: where to write; default ``predictions.csv`` in the run's log folder.
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__(write_interval="batch_and_epoch")
        self.path = path
        self.index: list[Tensor] = []
        self.digits: list[Tensor] = []
        self.probs: list[Tensor] = []

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.index, self.digits, self.probs = [], [], []

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        *args: Any,
    ) -> None:
        digits, probs = prediction["digit"], prediction["probs"]
        if not batch_indices:  # not a DataLoader: no indices from Lightning
            if trainer.world_size > 1:
                raise MnistLitError(
                    "predict with several processes needs a DataLoader, whose indices tell "
                    "each image's place; predict with --trainer.devices=1 otherwise."
                )
            start = sum(len(index) for index in self.index)
            batch_indices = range(start, start + len(digits))
        self.index.append(torch.tensor(list(batch_indices), device=digits.device))
        self.digits.append(digits)
        self.probs.append(probs)

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        # Empty to start with: a process without images still takes part in the gathering.
        none = torch.zeros(0, NUM_CLASSES, device=pl_module.device)
        index, digits, probs = _gather(
            trainer,
            torch.cat([none[:, 0].long(), *self.index]),
            torch.cat([none[:, 0].long(), *self.digits]),
            torch.cat([none, *self.probs]),
        )
        if not trainer.is_global_zero or not len(index):
            return
        order = index.argsort()
        datamodule = getattr(trainer, "datamodule", None)  # Lightning sets it, undeclared
        names = datamodule.predict_names() if isinstance(datamodule, MNISTDataModule) else None
        path = Path(self.path or os.path.join(trainer.log_dir or ".", "predictions.csv"))
        path.parent.mkdir(parents=True, exist_ok=True)
        files = [names[i] if names else str(i) for i in index[order].tolist()]
        predicted, probabilities = digits[order].tolist(), probs[order].tolist()
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["file", "digit", *(f"p{k}" for k in range(NUM_CLASSES))])
            for name, digit, p in zip(files, predicted, probabilities, strict=True):
                writer.writerow([name, digit, *(f"{q:.4f}" for q in p)])
        print(f"Predictions for {len(files)} images written to {path}")
        print(shown(files, predicted, probabilities))


SHOWN = 10  # predictions printed after the CSV's path; the CSV holds all of them


def shown(files: list[str], digits: list[int], probs: list[list[float]]) -> str:
    """The first :data:`SHOWN` predictions, one line each: the file, its digit and the
    probability of that digit; then how many more the CSV holds."""
    lines = [
        f"  {name}: {digit} ({max(p):.1%})"
        for name, digit, p in zip(files[:SHOWN], digits, probs, strict=False)
    ]
    if len(files) > SHOWN:
        lines.append(f"  ... and {len(files) - SHOWN} more")
    return "\n".join(lines)


def _gather(
    trainer: L.Trainer, index: Tensor, digits: Tensor, probs: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Every process's rows, on every process (the rows themselves when there is one).

    ``all_gather`` takes tensors of one shape: each share is padded to the longest with
    rows of index -1, dropped after."""
    if trainer.world_size == 1:
        return index, digits, probs
    strategy = trainer.strategy
    longest = int(strategy.all_gather(torch.tensor(len(index), device=index.device)).max())
    pad = longest - len(index)
    index = strategy.all_gather(F.pad(index, (0, pad), value=-1)).flatten()
    kept = index >= 0
    digits = strategy.all_gather(F.pad(digits, (0, pad))).flatten()[kept]
    probs = strategy.all_gather(F.pad(probs, (0, 0, 0, pad))).flatten(0, 1)[kept]
    return index[kept], digits, probs
