"""``mnist-lit``: LightningCLI over :class:`MNISTClassifier` and :class:`MNISTDataModule`.

``mnist-lit fit|validate|test|predict --config configs/<name>.yaml [--key value ...]``
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.cloud_io import _load as pl_load
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from mnist_lit.checkpointing import BestAndLastCheckpoint
from mnist_lit.data import MNISTDataModule
from mnist_lit.errors import MnistLitError, first_line
from mnist_lit.models import MNISTClassifier
from mnist_lit.prediction_csv import PredictionCSV

# Giving --optimizer is how a user replaces the model's default SGD; that is not a mistake.
warnings.filterwarnings("ignore", message=r".*configure_optimizers` will be overridden by")
# The in-memory batches need no worker processes.
warnings.filterwarnings("ignore", message=r".*does not have many workers")
# Lightning 2.6 against newer torch; nothing for a user to do.
warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
# Testing a checkpoint from an earlier run is what --ckpt_path best|last is for.
warnings.filterwarnings("ignore", message=r"The dirpath has changed from")


class _NoAdverts(logging.Filter):
    """Drop Lightning's tips that advertise cloud services."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip")


BEST_FILENAME = "best-epoch{epoch:02d}-acc{val/acc:.4f}"
PROGRESS_BAR_STEPS = 20


class MNISTLightningCLI(LightningCLI):
    """LightningCLI with this project's defaults: best and last checkpoints by validation
    accuracy, a CSV logger under ``logs/``, and ``--ckpt_path best|last`` that finds the
    newest run's checkpoint also in a new process."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            MNISTClassifier,
            MNISTDataModule,
            trainer_defaults={
                "logger": {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": "logs", "name": "default"},
                },
                # A crash while saving keeps the previous checkpoint whole.
                "plugins": {"class_path": "mnist_lit.checkpointing.AtomicCheckpointIO"},
            },
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(BestAndLastCheckpoint, "checkpoint")
        parser.add_lightning_class_args(PredictionCSV, "predictions")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": True,
                "checkpoint.filename": BEST_FILENAME,
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        # Lightning's bar redraws after every step, which costs more than a step of the
        # tutorial's model; redrawn every PROGRESS_BAR_STEPS it stays live and a notebook's
        # output stays short. A bar of the user's own, or none, is left alone.
        config = (self.config_init[self.subcommand] if self.subcommand else self.config_init)[
            "trainer"
        ]
        callbacks = config.get("callbacks") or []
        callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
        wants_bar = config.get("enable_progress_bar") is not False
        if wants_bar and not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, TQDMProgressBar(refresh_rate=PROGRESS_BAR_STEPS)]
        return super().instantiate_trainer(**kwargs)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads an explicit --ckpt_path file while parsing, before any hook.
        try:
            super()._parse_ckpt_path()
        except Exception as error:
            ckpt_path = self.config[self.config.subcommand].get("ckpt_path")
            raise unreadable_checkpoint(ckpt_path, error) from error

    def before_fit(self) -> None:
        self._resolve_ckpt_path()

    def before_validate(self) -> None:
        self._resolve_ckpt_path()

    def before_test(self) -> None:
        self._resolve_ckpt_path()

    def before_predict(self) -> None:
        self._resolve_ckpt_path()

    def _resolve_ckpt_path(self) -> None:
        """Turn ``best``/``last`` into the newest run's file, so they work in a new process."""
        config = self.config_init[self.subcommand]
        ckpt_path = config.get("ckpt_path")
        if ckpt_path in ("best", "last") and not self._fitted_in_this_process():
            config["ckpt_path"] = ckpt_path = str(find_checkpoint(self._runs_dir(), ckpt_path))
        if ckpt_path in (None, "best", "last", "hpc", "registry"):
            return
        if not Path(ckpt_path).is_file():
            raise MnistLitError(
                f"--ckpt_path {ckpt_path}: no such file. Pass a .ckpt file, or `best` or `last` "
                "for the newest run of this config."
            )
        check_checkpoint_fits(Path(ckpt_path), self.model)

    def _fitted_in_this_process(self) -> bool:
        callback = self.trainer.checkpoint_callback
        return isinstance(callback, ModelCheckpoint) and bool(callback.best_model_path)

    def _runs_dir(self) -> Path:
        logger = self.trainer.logger
        if isinstance(logger, CSVLogger):
            return Path(logger.root_dir)
        return Path(self.trainer.default_root_dir)


def find_checkpoint(runs_dir: Path, which: str) -> Path:
    """The ``best`` or ``last`` checkpoint of the newest run under ``runs_dir``."""
    pattern = "best-*.ckpt" if which == "best" else "last*.ckpt"
    for run in sorted(runs_dir.glob("version_*"), key=_version_number, reverse=True):
        found = sorted((run / "checkpoints").glob(pattern), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    raise MnistLitError(
        f"--ckpt_path {which}: no {which} checkpoint under {runs_dir}/version_*/checkpoints. "
        "Run `mnist-lit fit` with the same --config first, or pass the path of a .ckpt file."
    )


def check_checkpoint_fits(path: Path, model: MNISTClassifier) -> None:
    """Fail with one message if the checkpoint's network weights do not fit ``model.net``."""
    try:
        state = pl_load(path, map_location="cpu")["state_dict"]
    except Exception as error:
        raise unreadable_checkpoint(path, error) from error
    saved = {k: tuple(v.shape) for k, v in state.items() if k.startswith("net.")}
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("net.")}
    if saved == wanted:
        return
    differences = [
        f"{key}: {saved.get(key, 'absent')} in the checkpoint, {wanted.get(key, 'absent')} here"
        for key in sorted(saved.keys() | wanted.keys())
        if saved.get(key) != wanted.get(key)
    ]
    raise MnistLitError(
        f"--ckpt_path {path} does not fit model.net ({type(model.net).__name__}) of this "
        f"config ({len(differences)} weights differ, e.g. {differences[0]}). Use the --config "
        "that trained it (its run folder has a config.yaml), or a checkpoint of this network."
    )


def unreadable_checkpoint(path: str | Path, error: BaseException) -> MnistLitError:
    return MnistLitError(
        f"--ckpt_path {path} is not a readable Lightning checkpoint ({first_line(error)}). "
        "Pass a .ckpt file written by `mnist-lit fit`."
    )


def _version_number(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.name)
    return int(match.group(1)) if match else -1


def main(args: list[str] | None = None) -> None:
    """Console entry point: run the CLI; a user's mistake ends in one message, no traceback."""
    for handler in logging.getLogger("lightning.pytorch").handlers:
        handler.addFilter(_NoAdverts())
    argv = sys.argv[1:] if args is None else args
    try:
        if argv[:1] == ["compare"]:
            from mnist_lit.compare import main as compare  # only this command needs matplotlib

            return compare(argv[1:])
        MNISTLightningCLI(args=args)
    except MnistLitError as error:
        print(f"mnist-lit: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
