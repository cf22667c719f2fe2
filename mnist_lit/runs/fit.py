"""One normal ``mnist-lit fit`` run, started from Python, that writes into a folder of its
own: the unit of work that ``mnist-lit tune`` (a trial) and ``mnist-lit study`` (a seed)
share.

The run goes through :class:`~mnist_lit.runs.lightning_cli.MNISTLightningCLI`, so every
config, overlay and option that ``mnist-lit fit`` takes works here too. Only where it writes
changes: a CSV log (``metrics.csv``, ``config.yaml``) and, when wanted, checkpoints in
``run_dir``, never in the user's ``logs/``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from mnist_lit.checkpointing import read_checkpoint
from mnist_lit.models import MNISTClassifier
from mnist_lit.models.divergence import Diverged
from mnist_lit.quiet import RUN_NOTICES, quiet
from mnist_lit.runs.lightning_cli import MNISTLightningCLI

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


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


def build_cli(args: Sequence[str]) -> MNISTLightningCLI:
    """``MNISTLightningCLI`` over ``mnist-lit fit``'s ``args``, built but not run: the
    config resolved, the model, data module and trainer instantiated."""
    with quiet(RUN_NOTICES):
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


@dataclass
class FitRun:
    """A finished fit: the CLI, whose ``model``, ``datamodule`` and ``trainer`` hold the
    trained run, and where its loss became non-finite, if it did."""

    cli: MNISTLightningCLI
    diverged: Diverged | None = None


def fit_run(
    args: Sequence[str],
    run_dir: Path,
    callbacks: Sequence[Callback] = (),
    checkpoints: bool = False,
) -> FitRun:
    """Fit ``mnist-lit fit``'s ``args`` with extra ``callbacks``, logging into ``run_dir``
    (emptied first: a run left by a killed process starts again). A run whose loss became
    non-finite ends there, with the checkpoints saved before: a result, not an error."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cli = build_cli([*args, *run_args(run_dir, checkpoints)])
    # Before the checkpoint callbacks, so that a pruned epoch is never saved as the best.
    cli.trainer.callbacks[0:0] = list(callbacks)  # type: ignore[attr-defined]
    try:  # the classifier's StopOnDivergence ends a diverging run
        with quiet(RUN_NOTICES):
            cli.trainer.fit(cli.model, cli.datamodule)
    except Diverged as diverged:
        return FitRun(cli, diverged)
    return FitRun(cli)


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """The path of the run's best checkpoint by validation accuracy, if it kept one."""
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, ModelCheckpoint) and callback.monitor == "val/acc":
            return str(callback.best_model_path) or None
    return None


def load_best(cli: MNISTLightningCLI) -> MNISTClassifier:
    """The run's model, given back the weights of its best epoch by validation accuracy
    (as it ended when it kept no checkpoint)."""
    model: MNISTClassifier = cli.model
    best = best_checkpoint(cli.trainer)
    if best is not None:
        model.load_state_dict(read_checkpoint(best)["state_dict"])
    return model
