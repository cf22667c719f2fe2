"""The configured LightningCLI of ``mnist-lit fit|validate|test|predict``, and of every
command that runs fits (tune, study, lr_find)."""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
import warnings
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import jsonargparse
import lightning as L
from jsonargparse import ActionSubCommands, Namespace
from lightning.pytorch.callbacks import (
    BatchSizeFinder,
    Callback,
    ModelCheckpoint,
    ProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from mnist_lit.checkpointing import (
    BEST_FILENAME,
    LAST_FILENAME,
    check_checkpoint_fits,
    checkpoint_folders,
    continued_run,
    find_checkpoint,
    read_checkpoint,
)
from mnist_lit.data import MNISTDataModule
from mnist_lit.errors import MnistLitError, first_line
from mnist_lit.evaluation_figures import EvaluationFigures
from mnist_lit.models import MNISTClassifier
from mnist_lit.prediction_writer import PredictionCSV
from mnist_lit.runs.parser import OneMessageParser
from mnist_lit.tracking import (
    EXTRAS,
    ConfigToTrackers,
    hide_from_step,
    keep_rows_before,
    name_the_loggers,
    name_the_run,
)

PROGRESS_BAR_STEPS = 20
BATCH_SIZE_REFUSAL = (
    "batch-size scaling is not offered: Lightning's batch-size finder grows the batch until "
    "memory runs out, but here the images are already in memory and a batch only indexes "
    "them, so it would end at the largest batch that fits (up to the whole training set), "
    "not at one that trains well. The batch size is a hyperparameter here: set "
    "--data.batch_size and scale the learning rate with it (configs/large_batch.yaml: batch "
    "1024, lr 8); `mnist-lit lr_find --data.batch_size N` finds the rate for a batch size."
)


class MNISTArgumentParser(OneMessageParser, LightningArgumentParser):
    """LightningCLI's parser, with one-message errors; it keeps its subcommands' action, so
    that a command line above can list commands of its own beside fit/validate/test/predict."""

    subcommand_action: ActionSubCommands | None = None

    def add_subcommands(self, *args: Any, **kwargs: Any) -> ActionSubCommands:
        self.subcommand_action = super().add_subcommands(*args, **kwargs)
        return self.subcommand_action

    def dump(self, cfg: Namespace, *args: Any, **kwargs: Any) -> str:
        """The config as YAML, its loggers filed under the experiment's name as the run
        files them (``--print_config``, a tune's ``best.yaml``)."""
        if "experiment" in cfg and cfg.get("trainer") is not None:
            cfg = cfg.clone()
            name_the_loggers(cfg)
        if "skip_none" in kwargs:  # LightningCLI 2.6's name for jsonargparse's skip_unset
            kwargs["skip_unset"] = kwargs.pop("skip_none")
        return super().dump(cfg, *args, **kwargs)


class MNISTLightningCLI(LightningCLI):
    """LightningCLI with this project's defaults: best and last checkpoints, CSV and
    TensorBoard logs in ``logs/<experiment>/version_<N>/``, ``--ckpt_path best|last`` for
    the newest run's files, and every mistake in the options reported as one message
    naming the option."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        self._checkpoint: tuple[str, dict[str, Any]] | None = None
        self._explicit_model: dict[str, Any] = {}
        self._claimed: Path | None = None  # the run folder this run created for itself
        self._continued_from: int | None = None  # the step a fit continues its run from
        try:
            super().__init__(
                MNISTClassifier,
                MNISTDataModule,
                # metrics.csv to read, TensorBoard to watch; both in logs/<experiment>/version_N.
                trainer_defaults={
                    "logger": [
                        {
                            "class_path": "lightning.pytorch.loggers.CSVLogger",
                            "init_args": {"save_dir": "logs"},
                        },
                        {
                            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                            "init_args": {"save_dir": "logs", "default_hp_metric": False},
                        },
                    ],
                    # A crash while saving keeps the previous checkpoint whole.
                    "plugins": {"class_path": "mnist_lit.checkpointing.AtomicCheckpointIO"},
                },
                save_config_callback=ConfigToTrackers,
                parser_class=MNISTArgumentParser,
                # The optimiser and its schedule are the model's (model.optimizer, ...): one
                # home for the learning rate.
                auto_configure_optimizers=False,
                parser_kwargs={
                    "description": "MNIST with PyTorch Lightning: train, evaluate, "
                    "predict, and compare the losses of a classifier."
                },
                args=None if args is None else list(args),
                run=run,
            )
        finally:
            # Left empty, the run wrote nothing (it failed first, or kept nothing, as
            # fast_dev_run): no run folder is left behind, nor an empty logs/<experiment>.
            with contextlib.suppress(OSError):
                if self._claimed is not None:
                    for folder in (self._claimed, *self._claimed.parents[:2]):
                        folder.rmdir()

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--experiment",
            default="default",
            help="Name of the experiment: runs go to logs/<experiment>/version_<N>/, and "
            "every tracker files them under this name.",
        )
        # The best epoch by validation accuracy, and last.ckpt after every epoch.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.link_arguments("checkpoint.dirpath", "last_checkpoint.dirpath")
        parser.add_lightning_class_args(PredictionCSV, "predictions")
        parser.add_lightning_class_args(EvaluationFigures, "figures")  # at the end of `test`
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_top_k": 1,
                "checkpoint.filename": BEST_FILENAME,
                "checkpoint.auto_insert_metric_name": False,
                "last_checkpoint.filename": LAST_FILENAME,
                "last_checkpoint.enable_version_counter": False,  # overwrite, don't number
            }
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Turns ``--ckpt_path best|last`` into the newest run's file, and takes from the file
        the options not given. Done while parsing, so that LightningCLI then reads the
        checkpoint's model into the config however the file was named; model options given
        explicitly are kept, and checked against the weights after instantiation."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        ckpt_path = config.get("ckpt_path")
        if ckpt_path in ("best", "last"):
            folders, where = checkpoint_folders(config)
            found = str(find_checkpoint(ckpt_path, folders, where))
            print(f"--ckpt_path {ckpt_path}: {found}, the newest under {where}", file=sys.stderr)
            config["ckpt_path"] = ckpt_path = found
        if ckpt_path is None or ckpt_path in ("hpc", "registry"):
            return
        checkpoint = read_checkpoint(ckpt_path)
        hyperparameters = set(checkpoint.get("hyper_parameters", {})) - {"_instantiator"}
        if "lr" in hyperparameters and "optimizer" not in hyperparameters:
            raise MnistLitError(
                f"--ckpt_path {ckpt_path} was written by an earlier mnist-lit, whose model "
                "kept its learning rate in model.lr (now model.optimizer.lr). Train it again "
                "with `mnist-lit fit`, or load its state_dict into MNISTClassifier in Python."
            )
        unknown = hyperparameters - set(vars(config["model"]))
        if unknown:
            raise MnistLitError(
                f"--ckpt_path {ckpt_path} was not written by MNISTClassifier: its "
                f"hyperparameters name {', '.join(sorted(unknown))}. Pass a checkpoint "
                "written by `mnist-lit fit`."
            )
        self._checkpoint = (ckpt_path, checkpoint)
        self._explicit_model = explicit_options(config["model"], MNISTClassifier)
        # The inputs the weights were trained on: pixel scaling and the validation split.
        saved_data = checkpoint.get("datamodule_hyper_parameters", {})
        explicit_data = explicit_options(config["data"], MNISTDataModule)
        for key in ("normalize", "val_size", "seed"):
            if key in saved_data and key not in explicit_data:
                config["data"][key] = saved_data[key]

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config)
        # LightningCLI put the checkpoint's model into the config: what the user gave wins.
        for key, value in self._explicit_model.items():
            config["model"][key] = value
        # A CLI built but not run (run=False) writes nowhere yet: nothing to claim.
        self._claimed = name_the_run(
            config, claim=self.subcommand is not None, version=self._continued_run(config)
        )

    def _continued_run(self, config: Namespace) -> int | None:
        """The version of the run a fit from its own ``last.ckpt`` continues, in its folder:
        one run's metrics, TensorBoard curves and best checkpoint in one place."""
        if self.subcommand != "fit" or self._checkpoint is None:
            return None
        path, checkpoint = self._checkpoint
        version = continued_run(config, Path(path))
        if version is None or "global_step" not in checkpoint:
            return None
        self._continued_from = step = int(checkpoint["global_step"])
        hide_from_step(config, step)
        # The config that started the run stays; each continuation's is kept beside it.
        self.save_config_kwargs = {
            **self.save_config_kwargs,
            "config_filename": f"config-continued-step{step}.yaml",
            "overwrite": True,
        }
        return version

    def before_fit(self) -> None:
        if self._continued_from is None:
            return
        for logger in self.trainer.loggers:
            if isinstance(logger, CSVLogger):
                keep_rows_before(logger, self._continued_from)
        # Lightning's warning that the checkpoints folder is not empty: it is the run's own.
        folder = os.path.join(str(self.trainer.log_dir), "checkpoints")
        warnings.filterwarnings("ignore", f"Checkpoint directory {re.escape(folder)} exists")

    def instantiate_classes(self) -> None:
        # Consulted after LightningCLI's own, which build the model and the data module;
        # it only notes failures, and only while this CLI instantiates.
        jsonargparse.add_instantiator(_recording_failures, object)
        failures: list[tuple[type, BaseException]] = []
        recording = _FAILURES.set(failures)
        try:
            super().instantiate_classes()
        except (MnistLitError, MisconfigurationException):
            raise
        except Exception as error:
            # jsonargparse reports a nested class's error without the option it came from.
            config = self.config.get(str(self.subcommand), self.config)
            option = _option_of(config, failures[0][0]) if failures else None
            if option is None:  # not a class the user chose: a bug
                raise
            class_type, cause = failures[0]
            name = class_type.__name__
            if isinstance(cause, ImportError):
                extra = EXTRAS.get(name)
                fix = f"pip install 'mnist-lit[{extra}]'" if extra else "install what it names"
                problem = f"needs a package that is not installed ({first_line(cause)}): {fix}"
                raise MnistLitError(f"{option} ({name}) {problem}.") from error
            raise MnistLitError(
                f"{option} ({name}): {first_line(cause)}. Fix {option}'s init_args, or choose "
                "another class."
            ) from error
        finally:
            _FAILURES.reset(recording)

    def after_instantiate_classes(self) -> None:
        if self._checkpoint is not None:
            check_checkpoint_fits(*self._checkpoint, self.model.net)

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer = config["trainer"]
        if trainer.get("enable_checkpointing") is False:
            # No checkpoints wanted: the two checkpoint callbacks step aside.
            config["checkpoint"] = config["last_checkpoint"] = Callback()
        # Lightning's bar redraws after every step, which costs more than a step of the
        # tutorial's model; redrawn every PROGRESS_BAR_STEPS it stays live and a notebook's
        # output stays short. A bar of the user's own, or none, is left alone.
        callbacks = trainer.get("callbacks") or []
        callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
        if any(isinstance(c, BatchSizeFinder) for c in callbacks):
            raise MnistLitError(f"trainer.callbacks (BatchSizeFinder): {BATCH_SIZE_REFUSAL}")
        wants_bar = trainer.get("enable_progress_bar") is not False
        if wants_bar and not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, TQDMProgressBar(refresh_rate=PROGRESS_BAR_STEPS)]
        return super().instantiate_trainer(**kwargs)


def explicit_options(config: Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` in ``config`` whose values differ from the class's defaults."""
    defaults = {name: param.default for name, param in inspect.signature(cls).parameters.items()}
    return {key: value for key, value in vars(config).items() if defaults.get(key) != value}


# The classes that failed to build while the CLI instantiates, with their errors.
_FAILURES: ContextVar[list[tuple[type, BaseException]] | None] = ContextVar(
    "mnist_lit_failures", default=None
)


def _recording_failures(class_type: type, *args: Any, **kwargs: Any) -> Any:
    """Builds a class as jsonargparse would, noting a failure for the CLI's message."""
    try:
        return class_type(*args, **kwargs)
    except Exception as error:
        failures = _FAILURES.get()
        if failures is not None:
            failures.append((class_type, error))
        raise


def _option_of(config: Any, class_type: type, key: str = "") -> str | None:
    """The dotted option in ``config`` whose ``class_path`` names ``class_type``."""
    if isinstance(config, list):
        children = [(key, value) for value in config]
    elif isinstance(config, Namespace):
        if config.get("class_path", "").rsplit(".", 1)[-1] == class_type.__name__:
            return key
        children = [(f"{key}.{name}".lstrip("."), value) for name, value in vars(config).items()]
    else:
        return None
    found = (_option_of(value, class_type, child_key) for child_key, value in children)
    return next((option for option in found if option is not None), None)
