"""Write ``mnist-lit predict``'s results as a CSV: file, predicted digit, probabilities."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from mnist_lit.models.nets import NUM_CLASSES


class PredictionCSV(Callback):
    """Collect the predictions of ``predict`` and write one CSV row per image.

    Columns: ``file``, ``digit`` and ``p0`` ... ``p9``. The file names come from the data
    module's ``predict_names`` (``test:<i>`` for the test set).

    Args:
        path: where to write; default ``predictions.csv`` in the run's log folder.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.outputs: list[dict[str, Tensor]] = []

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.outputs = []

    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.outputs.append({k: v.detach().cpu() for k, v in outputs.items()})

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.outputs:
            return
        digits = torch.cat([out["digit"] for out in self.outputs])
        probs = torch.cat([out["probs"] for out in self.outputs])
        names = getattr(getattr(trainer, "datamodule", None), "predict_names", None) or [
            str(i) for i in range(len(digits))
        ]
        path = Path(self.path or os.path.join(trainer.log_dir or ".", "predictions.csv"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "digit", *(f"p{k}" for k in range(NUM_CLASSES))])
            for name, digit, row in zip(names, digits.tolist(), probs.tolist(), strict=True):
                writer.writerow([name, digit, *(f"{p:.4f}" for p in row)])
        print(f"Predictions for {len(digits)} images written to {path}")
