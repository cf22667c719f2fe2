"""One fit as a Python call: :func:`fit` takes a :class:`Fit` and returns a
:class:`FitResult`, which carries everything a study keeps (its fits may run on another
machine). The fit goes through :class:`~mnist_lit.runs.lightning_cli.MNISTLightningCLI`, so
every config and option of ``mnist-lit fit`` works here too; only where it writes changes: a
CSV log and, for a tested fit, checkpoints, in the fit's folder, never in the user's ``logs/``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser

from mnist_lit.models import MNISTClassifier
from mnist_lit.models.divergence import Diverged
from mnist_lit.runs.catalog import LEARNING_RATE, config_path
from mnist_lit.runs.checkpointing import read_checkpoint
from mnist_lit.runs.evaluation import calibrate, evaluate
from mnist_lit.runs.lightning_cli import MNISTArgumentParser, MNISTLightningCLI
from mnist_lit.runs.quiet import RUN_NOTICES, quiet


@dataclass(frozen=True)
class Fit:
    """One ``mnist-lit fit``, described by values.

    Attributes:
        configs: the config files it starts from; a bare name (``cnn.yaml``) is one of the
            project's own.
        folder: where its log (and checkpoints) go, emptied first; ``None``: a temporary
            folder.
        lr, epochs, label_noise, optimizer: the optimiser's rate, ``trainer.max_epochs``,
            ``data.label_noise``, and the optimiser's class path.
        seed: ``seed_everything`` and ``data.seed`` (the split and the batches' order).
        options: any other config value, by its dotted key (``{"data.val_size": 100}``).
        args: options as typed for ``mnist-lit fit``; the values above are applied after.
        test: keep checkpoints, and test the best epoch (:class:`TestResult`).
    """

    configs: tuple[str, ...]
    folder: Path | None = None
    lr: float | None = None
    epochs: int | None = None
    seed: int | None = None
    label_noise: float | None = None
    optimizer: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    test: bool = False

    def values(self) -> dict[str, Any]:
        """Every value this fit sets, by dotted config key."""
        typed = {
            "model.optimizer": self.optimizer,
            LEARNING_RATE: self.lr,
            "trainer.max_epochs": self.epochs,
            "seed_everything": self.seed,
            "data.seed": self.seed,
            "data.label_noise": self.label_noise,
        }
        return {**{k: v for k, v in typed.items() if v is not None}, **self.options}

    def command_line(self) -> list[str]:
        """The configs and ``args`` as ``mnist-lit fit`` takes them."""
        return [*(a for c in self.configs for a in ("--config", str(config_path(c)))), *self.args]


@dataclass(frozen=True)
class TestResult:
    """The best epoch on the test set: the metrics of
    :func:`~mnist_lit.runs.evaluation.evaluate` (raw and temperature-scaled), each image's
    predicted class and label, in order, and the best checkpoint's bytes."""

    metrics: dict[str, float]
    predictions: np.ndarray  # (10000,) uint8
    labels: np.ndarray  # (10000,) uint8
    checkpoint: bytes | None = None


@dataclass(frozen=True)
class FitResult:
    """Each epoch's validation accuracy and cross-entropy, the epoch (from 0) whose loss
    became non-finite, if one did, the seconds, and the config trained, as YAML."""

    val_acc: list[float]
    val_ce: list[float]
    diverged_in: int | None
    seconds: float
    config: str
    test: TestResult | None = None

    @property
    def diverged(self) -> bool:
        return self.diverged_in is not None

    @property
    def best_epoch(self) -> int:
        """The epoch (from 1) of the best validation accuracy; 0 if none was measured."""
        return 1 + int(np.argmax(self.val_acc)) if self.val_acc else 0


class ValidationCurve(Callback):
    """Keeps each epoch's validation accuracy and cross-entropy (``val/acc``, ``val/ce``)."""

    def __init__(self) -> None:
        self.acc: list[float] = []
        self.ce: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        if not trainer.sanity_checking and "val/acc" in metrics and "val/ce" in metrics:
            self.acc.append(float(metrics["val/acc"]))
            self.ce.append(float(metrics["val/ce"]))


class FitCLI(MNISTLightningCLI):
    """The CLI of a :class:`Fit`, built but not run. ``asked`` is its config as YAML, before
    ``where`` (the values that only say where the fit writes)."""

    def __init__(self, run: Fit, where: Mapping[str, Any] | None = None) -> None:
        self.run, self.where, self.asked = run, where or {}, ""
        with quiet(RUN_NOTICES):
            super().__init__(args=run.command_line(), run=False)

    def parse_arguments(self, parser: MNISTArgumentParser, args: Any) -> None:  # type: ignore[override]
        super().parse_arguments(parser, args)
        self.config = with_values(parser, self.config, self.run.values())
        self.asked = parser.dump(self.config)
        self.config = with_values(parser, self.config, self.where)


def with_values(
    parser: LightningArgumentParser, config: Namespace, values: Mapping[str, Any]
) -> Namespace:
    """``config`` with ``values`` applied as a command line applies them: a key that others
    extend (a class path, ``model.optimizer``) before them (``model.optimizer.lr``); in one
    dict, its init_args would replace the class path."""
    parents = {k: v for k, v in values.items() if any(o.startswith(f"{k}.") for o in values)}
    rest = {k: v for k, v in values.items() if k not in parents}
    for part in (parents, rest):
        if part:
            config = parser.parse_object(part, namespace=config)
    return config


def _where(folder: Path, checkpoints: bool) -> dict[str, Any]:
    """The values that send a fit's log (and checkpoints) into ``folder``, quietly: the
    CLI names a run ``<save_dir>/<experiment>/<version>``."""
    logger = {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": str(folder.parent.parent), "version": folder.name},
    }
    return {
        "trainer.logger": [logger],
        "experiment": folder.parent.name,
        "trainer.enable_progress_bar": False,
        "trainer.enable_model_summary": False,
        **({} if checkpoints else {"trainer.enable_checkpointing": False}),
    }


@contextmanager
def _fit_folder(folder: Path | None) -> Iterator[Path]:
    """``folder`` emptied (a fit left by a killed process starts again), or a temporary
    one, removed afterwards."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="mnist-lit-fit-") as scratch:
            yield Path(scratch) / "fit" / "run"
        return
    if folder.exists():
        shutil.rmtree(folder)
    yield folder


def fit(run: Fit, callbacks: Sequence[Callback] = ()) -> FitResult:
    """Train ``run`` (with extra ``callbacks``), and test its best epoch if asked. A run
    whose loss became non-finite ends there: a result, not an error."""
    start = time.monotonic()
    with _fit_folder(run.folder) as folder, quiet(RUN_NOTICES):
        cli = FitCLI(run, _where(folder, checkpoints=run.test))
        curve = ValidationCurve()
        # Before the checkpoint callbacks, so that a pruned epoch is never saved as best.
        cli.trainer.callbacks[0:0] = [curve, *callbacks]  # type: ignore[attr-defined]
        diverged_in = None
        try:  # the classifier's StopOnDivergence ends a diverging run
            cli.trainer.fit(cli.model, cli.datamodule)
        except Diverged as error:
            diverged_in = error.epoch
        tested = _test(cli) if run.test else None
    return FitResult(
        val_acc=curve.acc,
        val_ce=curve.ce,
        diverged_in=diverged_in,
        seconds=round(time.monotonic() - start, 1),
        config=cli.asked,
        test=tested,
    )


def _test(cli: FitCLI) -> TestResult:
    """The best epoch by validation accuracy on the test set, temperature-scaled on the
    validation split."""
    model: MNISTClassifier = cli.model
    datamodule = cli.datamodule
    best = _best_checkpoint(cli.trainer)
    if best is not None:
        model.load_state_dict(read_checkpoint(best)["state_dict"])
    tested = evaluate(model, datamodule, "test", calibrate(model, datamodule, "val"))
    return TestResult(
        metrics=tested.metrics,
        predictions=tested.predictions.numpy().astype(np.uint8),
        labels=datamodule.splits["test"][1].cpu().numpy().astype(np.uint8),
        checkpoint=Path(best).read_bytes() if best else None,
    )


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, ModelCheckpoint) and callback.monitor == "val/acc":
            return str(callback.best_model_path) or None
    return None
