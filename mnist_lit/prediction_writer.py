"""``mnist-lit predict`` writes a CSV: file, predicted digit and the ten probabilities."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter

from mnist_lit.errors import MnistLitError
from mnist_lit.mnist import NUM_CLASSES

Row = tuple[int, str, int, list[float]]  # index, name, digit, probabilities


class PredictionCSV(BasePredictionWriter):
    """One CSV row per predicted image, in the order of the predicted set.

    Columns: ``file``, ``digit`` and ``p0`` ... ``p9``. Each prediction carries its image's
    index and name (:class:`~mnist_lit.data.PredictBatch`); with several processes each
    predicts its own share, and the first process gathers the rows and writes the file.

    Args:
        path: where to write; default ``predictions.csv`` in the run's log folder.
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__(write_interval="batch_and_epoch")
        self.path = path
        self.rows: list[Row] = []

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rows = []

    def write_on_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any, *args: Any
    ) -> None:
        digits, probs = prediction["digit"].tolist(), prediction["probs"].tolist()
        if "index" in prediction:
            index, names = prediction["index"].tolist(), prediction["names"]
        elif trainer.world_size == 1:  # batches without identity: number them as they come
            index = list(range(len(self.rows), len(self.rows) + len(digits)))
            names = [str(i) for i in index]
        else:
            raise MnistLitError(
                "predict with several processes needs batches that carry each image's index "
                "(mnist_lit.data.PredictBatch), as MNISTDataModule's do; predict with "
                "--trainer.devices=1 otherwise."
            )
        self.rows += zip(index, names, digits, probs, strict=True)

    def write_on_epoch_end(self, trainer: L.Trainer, *args: Any) -> None:
        rows = sorted(_gather(self.rows))
        if not trainer.is_global_zero or not rows:
            return
        path = Path(self.path or os.path.join(trainer.log_dir or ".", "predictions.csv"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["file", "digit", *(f"p{k}" for k in range(NUM_CLASSES))])
            for _, name, digit, probs in rows:
                writer.writerow([name, digit, *(f"{p:.4f}" for p in probs)])
        print(f"Predictions for {len(rows)} images written to {path}")


def _gather(rows: list[Row]) -> list[Row]:
    """Every process's rows, on every process (the rows themselves when there is one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return rows
    parts: list[list[Row] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, rows)
    return [row for part in parts for row in part or []]
