"""The callback and debug overlays of configs/callbacks/ and configs/debug/: each one run on
the fake data, and its effect checked."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import (
    Callback,
    ModelSummary,
    RichModelSummary,
    RichProgressBar,
    TQDMProgressBar,
)

from mnist_lit.losses import CrossEntropy
from mnist_lit.runs.lightning_cli import MNISTLightningCLI
from tests.cli_helpers import REPO, TUTORIAL, fake_data

RUN = Path("logs/seed_cross_entropy/version_0")


def overlay(name: str) -> list[str]:
    return ["--config", str(REPO / "configs" / f"{name}.yaml")]


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _fit(data_dir: Path, *options: str, quiet: bool = True) -> MNISTLightningCLI:
    data = fake_data(data_dir) if quiet else [f"--data.data_dir={data_dir}", "--data.val_size=100"]
    return MNISTLightningCLI(args=["fit", "--config", TUTORIAL, *data, *options])


def _logged(name: str, run: Path = RUN) -> list[float]:
    """Every value of the metric ``name`` in the run's metrics.csv, in order."""
    with open(run / "metrics.csv") as f:
        return [float(row[name]) for row in csv.DictReader(f) if row.get(name)]


def test_early_stopping_and_the_lr_monitor_stack(fake_mnist_dir: Path) -> None:
    # The fake validation set is learnt in the first epoch: no improvement after it.
    cli = _fit(fake_mnist_dir, *overlay("callbacks/early_stopping"),
               *overlay("callbacks/lr_monitor"), "--trainer.max_epochs=20",
               "--model.lr_scheduler=StepLR", "--model.lr_scheduler.step_size=1",
               "--model.lr_scheduler.gamma=0.5")  # fmt: skip
    val_acc = _logged("val/acc")
    assert val_acc[0] == max(val_acc)
    assert len(val_acc) == 4  # the best epoch, then the patience of 3 epochs
    assert cli.trainer.current_epoch < 20
    assert _logged("lr-SGD") == [0.5, 0.25, 0.125, 0.0625]  # the rate of each epoch, as scheduled


def test_the_rich_overlay_replaces_the_bar_and_the_summary(fake_mnist_dir: Path) -> None:
    cli = _fit(fake_mnist_dir, *overlay("callbacks/rich"), "--trainer.max_epochs=1", quiet=False)
    callbacks = cli.trainer.callbacks
    assert isinstance(cli.trainer.progress_bar_callback, RichProgressBar)
    assert not any(isinstance(c, TQDMProgressBar) for c in callbacks)
    summaries = [c for c in callbacks if isinstance(c, ModelSummary)]
    assert len(summaries) == 1 and isinstance(summaries[0], RichModelSummary)


def test_fast_dev_run_runs_one_batch_and_keeps_nothing(fake_mnist_dir: Path) -> None:
    cli = _fit(fake_mnist_dir, *overlay("debug/fast_dev_run"))
    assert cli.trainer.global_step == 1
    assert not Path("logs").exists()
    assert not list(Path().rglob("*.ckpt"))


class BatchRecorder(Callback):
    """Keeps the labels of every training batch, per epoch."""

    epochs: ClassVar[list[list[list[int]]]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        BatchRecorder.epochs.append([])

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        BatchRecorder.epochs[-1].append(batch[1].tolist())


def test_overfit_batches_trains_on_the_same_batches_every_epoch(fake_mnist_dir: Path) -> None:
    BatchRecorder.epochs = []
    _fit(fake_mnist_dir, *overlay("debug/overfit_batches"), "--trainer.max_epochs=5",
         "--trainer.callbacks+=tests.test_overlays.BatchRecorder")  # fmt: skip
    first, *others = BatchRecorder.epochs
    assert len(BatchRecorder.epochs) == 5 and len(first) == 2
    assert all(epoch == first for epoch in others)
    assert _logged("train/acc")[-1] == 1.0


def test_limit_batches_limits_every_stage(fake_mnist_dir: Path) -> None:
    small_batches = ["--data.batch_size=16", "--data.eval_batch_size=10"]
    cli = _fit(fake_mnist_dir, *overlay("debug/limit_batches"), *small_batches)
    assert cli.trainer.num_training_batches == 10
    assert cli.trainer.num_val_batches == [5]
    assert cli.trainer.global_step == 20  # 2 epochs
    cli.trainer.test(cli.model, cli.datamodule, verbose=False)
    assert cli.trainer.num_test_batches == [5]


@pytest.mark.parametrize("name", ["profiler", "profiler_advanced"])
def test_the_profilers_report_goes_to_the_run_folder(name: str, fake_mnist_dir: Path) -> None:
    _fit(fake_mnist_dir, *overlay(f"debug/{name}"), "--trainer.max_epochs=1")
    report = (RUN / "fit-profile.txt").read_text()
    assert "run_training_epoch" in report
    if name == "profiler_advanced":
        assert "cumulative" in report  # cProfile's statistics


class AnomalyProbe(CrossEntropy):
    """Cross-entropy that notes whether autograd's anomaly detection is on when it runs."""

    seen: ClassVar[list[bool]] = []

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        AnomalyProbe.seen.append(torch.is_anomaly_enabled())
        return super().forward(logits, target)


def test_anomaly_detection_is_on_while_training(fake_mnist_dir: Path) -> None:
    AnomalyProbe.seen = []
    _fit(fake_mnist_dir, *overlay("debug/anomaly"), "--trainer.max_epochs=1",
         "--model.loss=tests.test_overlays.AnomalyProbe")  # fmt: skip
    # On in the 8 training steps (and validation), not yet in the loss's check at setup.
    assert AnomalyProbe.seen[0] is False
    assert AnomalyProbe.seen.count(True) >= 8
