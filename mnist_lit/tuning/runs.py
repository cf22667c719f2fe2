"""One normal ``mnist-lit fit`` run, started from Python, that writes into a folder of its
own: the unit of work of ``mnist-lit tune`` (a trial) and ``mnist-lit study`` (a seed).

The run goes through :class:`~mnist_lit.cli.MNISTLightningCLI`, so every config, overlay
and option that ``mnist-lit fit`` takes works here too. Only where it writes changes: a
CSV log (``metrics.csv``, ``config.yaml``) and, when wanted, checkpoints in ``run_dir``,
never in the user's ``logs/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from mnist_lit.checkpointing import read_checkpoint
from mnist_lit.errors import MnistLitError
from mnist_lit.models import MNISTClassifier

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Without the notices that every run would repeat: seeds, devices, batch counts."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for message in (
            r"LightningCLI's args parameter",  # runs from Python are what it is for here
            r".*smaller than the logging interval",  # metrics are logged per epoch
            r".*does not have many workers",  # batches are cut from tensors in memory
        ):
            warnings.filterwarnings("ignore", message=message)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


class ValidationCurve(Callback):
    """Keeps each epoch's validation accuracy and cross-entropy (``val/acc``, ``val/ce``)."""

    def __init__(self) -> None:
        self.acc: list[float] = []
        self.ce: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if "val/acc" in metrics and "val/ce" in metrics:
            self.acc.append(float(metrics["val/acc"]))
            self.ce.append(float(metrics["val/ce"]))


def build_cli(args: Sequence[str]) -> Any:
    """``MNISTLightningCLI`` over ``mnist-lit fit``'s ``args``, built but not run: the
    config resolved, the model, data module and trainer instantiated."""
    from mnist_lit.cli import MNISTLightningCLI  # the CLI registers commands built on this

    with quiet():
        return MNISTLightningCLI(args=list(args), run=False)


def run_args(run_dir: Path, checkpoints: bool) -> list[str]:
    """The options that send a fit's log (and checkpoints) into ``run_dir``.

    The CLI names a run ``<save_dir>/<experiment>/<version>``: here the experiment is the
    folder's parent, the version the folder itself.
    """
    logger = {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": str(run_dir.parent.parent), "version": run_dir.name},
    }
    args = [f"--trainer.logger={json.dumps([logger])}", f"--experiment={run_dir.parent.name}"]
    return [*args, *QUIET] + ([] if checkpoints else ["--trainer.enable_checkpointing=false"])


def fit_run(
    args: Sequence[str],
    run_dir: Path,
    callbacks: Sequence[Callback] = (),
    checkpoints: bool = False,
) -> Any:
    """Fit ``mnist-lit fit``'s ``args`` with extra ``callbacks``, logging into ``run_dir``
    (emptied first: a run left by a killed process starts again). Returns the CLI, whose
    ``model``, ``datamodule`` and ``trainer`` hold the trained run."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cli = build_cli([*args, *run_args(run_dir, checkpoints)])
    # Before the checkpoint callbacks, so that a pruned epoch is never saved as the best.
    cli.trainer.callbacks[0:0] = list(callbacks)
    try:
        with quiet():
            cli.trainer.fit(cli.model, cli.datamodule)
    except MnistLitError as error:
        if int(cli.model.nonfinite_step) >= 0:
            raise Diverged(cli.trainer.current_epoch, cli) from error
        raise
    return cli


class Diverged(MnistLitError):
    """The training loss became non-finite: the learning rate is too large for this loss.

    Attributes:
        epoch: the epoch (from 0) in which it happened.
        cli: the run, with the checkpoints it saved before.
    """

    def __init__(self, epoch: int, cli: Any) -> None:
        super().__init__(f"the training loss became non-finite in epoch {epoch}")
        self.epoch = epoch
        self.cli = cli


def best_checkpoint(trainer: L.Trainer) -> str:
    """The path of the run's best checkpoint by validation accuracy."""
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, ModelCheckpoint) and callback.monitor == "val/acc":
            return str(callback.best_model_path)
    raise RuntimeError("the run kept no checkpoint of its best epoch")


def load_best(cli: Any) -> MNISTClassifier:
    """The run's model, given back the weights of its best epoch by validation accuracy."""
    model: MNISTClassifier = cli.model
    model.load_state_dict(read_checkpoint(best_checkpoint(cli.trainer))["state_dict"])
    return model
