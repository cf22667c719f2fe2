"""The configured LightningCLI of ``mnist-lit fit|validate|test|predict``, and of every
command that runs fits (tune, study, lr_find)."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from jsonargparse import ActionSubCommands, Namespace
from lightning.fabric.plugins.environments import SLURMEnvironment
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

from mnist_lit.data.own_digits import OwnDigitsDataModule
from mnist_lit.models import MNISTClassifier
from mnist_lit.runs.catalog import CONFIGS
from mnist_lit.runs.checkpointing import (
    check_checkpoint_fits,
    checkpoint_folders,
    continued_run,
    find_checkpoint,
    hpc_checkpoint,
    is_hpc_checkpoint,
    read_checkpoint,
    remove_hpc_checkpoints,
)
from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.runs.evaluation_figures import EvaluationFigures
from mnist_lit.runs.parser import OneMessageParser
from mnist_lit.runs.prediction_writer import PredictionCSV
from mnist_lit.runs.tracking import (
    EXTRAS,
    ConfigToTrackers,
    hide_from_step,
    keep_rows_before,
    name_the_loggers,
    name_the_run,
)

# What every run starts from, before its configs and options: loggers, checkpoints, bar.
DEFAULTS = CONFIGS / "defaults.yaml"
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures: list[MnistLitError] = []  # of the chosen classes, while they are built

    def add_subcommands(self, *args: Any, **kwargs: Any) -> ActionSubCommands:
        self.subcommand_action = super().add_subcommands(*args, **kwargs)
        return self.subcommand_action

    def instantiate(
        self,
        namespace: Namespace,
        instantiate_groups: bool = True,
        *,
        instantiators: Sequence[tuple[Callable[..., Any], type, bool]] | None = None,
    ) -> Namespace:
        """Builds the config's classes; a class chosen by its ``class_path`` that fails to
        build says which option chose it (jsonargparse's message names none)."""
        self.failures = []
        chosen = _chosen(namespace)
        naming = [(_naming(option, self.failures), cls, False) for option, cls in chosen]
        return super().instantiate(
            namespace, instantiate_groups, instantiators=[*(instantiators or ()), *naming]
        )

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
    """LightningCLI with this project's defaults (:data:`DEFAULTS`: best and last
    checkpoints, CSV and TensorBoard logs in ``logs/<experiment>/version_<N>/``),
    ``--ckpt_path best|last`` for the newest run's files, and every mistake in the options
    reported as one message naming the option."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        self._checkpoint: tuple[str, dict[str, Any]] | None = None
        self._given_model: dict[str, Any] = {}
        self._claimed: Path | None = None  # the run folder this run created for itself
        self._continued_from: int | None = None  # the step a fit continues its run from
        defaults = {"default_config_files": [str(DEFAULTS)]}
        try:
            super().__init__(
                MNISTClassifier,
                OwnDigitsDataModule,
                save_config_callback=ConfigToTrackers,
                parser_class=MNISTArgumentParser,
                # The optimiser and its schedule are the model's (model.optimizer, ...): one
                # home for the learning rate.
                auto_configure_optimizers=False,
                # The defaults file holds the subcommands' keys: each subcommand's parser
                # reads it, or the one parser of a CLI without subcommands (run=False).
                parser_kwargs={
                    "description": "MNIST with PyTorch Lightning: train, evaluate, "
                    "predict, and compare the losses of a classifier.",
                    **({name: dict(defaults) for name in self.subcommands()} if run else defaults),
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
        # LightningCLI's place for options and callbacks of its own (settings in DEFAULTS).
        parser.add_argument(
            "--experiment",
            default="default",
            help="Name of the experiment: runs go to logs/<experiment>/version_<N>/, and "
            "every tracker files them under this name.",
        )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.link_arguments("checkpoint.dirpath", "last_checkpoint.dirpath")
        parser.add_lightning_class_args(TQDMProgressBar, "progress_bar")
        parser.add_lightning_class_args(PredictionCSV, "predictions")
        parser.add_lightning_class_args(EvaluationFigures, "figures")  # at the end of `test`

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Turns ``--ckpt_path best|last`` into the newest run's file, and makes the file's
        options the defaults: what a config or the command line gives wins."""
        # Overridden: the file and its options are needed before LightningCLI reads its model.
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        typed = list(sys.argv[1:] if args is None else args)
        config["experiment"] = experiment_of(config, typed)
        if not subcommand:
            return
        ckpt_path = config.get("ckpt_path")
        on_slurm = ckpt_path is None and SLURMEnvironment.detect()
        if subcommand == "fit" and (ckpt_path == "hpc" or on_slurm):
            ckpt_path = self._hpc_resume(config) or ckpt_path
        if ckpt_path in ("best", "last"):
            folders, where = checkpoint_folders(config)
            found = str(find_checkpoint(ckpt_path, folders, where))
            print(f"--ckpt_path {ckpt_path}: {found}, the newest under {where}", file=sys.stderr)
            ckpt_path = found
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
        # The model as trained, and the inputs it was trained on: pixel scaling and the
        # validation split.
        saved = {f"model.{key}": checkpoint["hyper_parameters"][key] for key in hyperparameters}
        data = checkpoint.get("datamodule_hyper_parameters", {})
        inputs = [key for key in ("normalize", "val_size", "seed") if key in data]
        saved |= {f"data.{key}": data[key] for key in inputs}
        assert isinstance(parser, MNISTArgumentParser) and parser.subcommand_action is not None
        subparser = parser.subcommand_action.choices[subcommand]
        subparser.set_defaults(saved)
        super().parse_arguments(parser, args)
        config = self.config[subcommand]
        config["experiment"] = experiment_of(config, typed)
        config["ckpt_path"] = ckpt_path
        # The model's options that a config or the command line gave.
        self._given_model = {
            key: value
            for key, value in vars(config["model"]).items()
            if value != subparser.get_default(f"model.{key}")
        }

    @staticmethod
    def _hpc_resume(config: Namespace) -> str | None:
        """The hpc checkpoint where Lightning looks for one, if any: saved when SLURM
        stopped the job before requeueing it. Lightning resumes a fit on SLURM from it
        whenever no other checkpoint is given (or `--ckpt_path hpc`); named here, the fit
        continues its run in the run's own folder."""
        found = hpc_checkpoint(config)
        if found is not None:
            print(f"--ckpt_path hpc: {found}, saved when SLURM stopped the job", file=sys.stderr)
        return None if found is None else str(found)

    def before_instantiate_classes(self) -> None:
        # Overridden: the loggers' names and version are set before they are built.
        config = self.config.get(str(self.subcommand), self.config)
        for key, value in self._given_model.items():  # LightningCLI put the checkpoint's over them
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
        version = continued_run(config, Path(path), checkpoint)
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
        # Overridden: the continued run's rows are rewritten once its CSV logger exists.
        if self._continued_from is None:
            return
        for logger in self.trainer.loggers:
            if isinstance(logger, CSVLogger):
                keep_rows_before(logger, self._continued_from)
        # Lightning's warning that the checkpoints folder is not empty: it is the run's own.
        folder = os.path.join(str(self.trainer.log_dir), "checkpoints")
        warnings.filterwarnings("ignore", f"Checkpoint directory {re.escape(folder)} exists")

    def after_fit(self) -> None:
        # Overridden: the hpc checkpoints of a requeued job are spent once its fit has ended;
        # left there, a later fit from this folder would resume from them.
        if self._checkpoint is not None and self.trainer.is_global_zero:
            path = Path(self._checkpoint[0])
            if is_hpc_checkpoint(path):
                remove_hpc_checkpoints(path)

    def instantiate_classes(self) -> None:
        # Overridden: jsonargparse wraps a chosen class's failure in a message of its own.
        try:
            super().instantiate_classes()
        except (MnistLitError, MisconfigurationException):
            raise
        except Exception as error:
            parser = self.parser
            assert isinstance(parser, MNISTArgumentParser)
            if self.subcommand and parser.subcommand_action is not None:
                parser = parser.subcommand_action.choices[self.subcommand]
            if not parser.failures:  # not a class the user chose: a bug
                raise
            raise parser.failures[0] from error

    def after_instantiate_classes(self) -> None:
        # Overridden: a checkpoint of another network is named before the trainer loads it.
        if self._checkpoint is not None:
            check_checkpoint_fits(*self._checkpoint, self.model.net)

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        # Overridden: Lightning refuses these callbacks beside the flags that turn them off.
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer = config["trainer"]
        callbacks = trainer.get("callbacks") or []
        callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
        if any(isinstance(c, BatchSizeFinder) for c in callbacks):
            raise MnistLitError(f"trainer.callbacks (BatchSizeFinder): {BATCH_SIZE_REFUSAL}")
        # This CLI's checkpoints and bar step aside (a bare Callback does nothing) for
        # enable_checkpointing=False, enable_progress_bar=False or a bar of the user's own.
        if trainer.get("enable_checkpointing") is False:
            config["checkpoint"] = config["last_checkpoint"] = Callback()
        other_bar = any(isinstance(c, ProgressBar) for c in callbacks)
        if trainer.get("enable_progress_bar") is None and not other_bar and not _terminal():
            # Lightning's bar writes every redraw into a file or pipe: a log of bars.
            trainer["enable_progress_bar"] = False
        if other_bar or trainer.get("enable_progress_bar") is False:
            config["progress_bar"] = Callback()
        return super().instantiate_trainer(**kwargs)


def _terminal() -> bool:
    """Whether the progress bar's stream (Lightning's bar writes to stdout) is a terminal."""
    return hasattr(sys.stdout, "isatty") and sys.stdout.isatty()


def experiment_of(config: Namespace, typed: Sequence[str]) -> str:
    """The experiment a run is filed under: the config's, or with a loss given on the
    command line in place of the configs' own, ``<experiment>-<loss class>`` (a fit of
    ``configs/cross_entropy.yaml --model.loss my_losses.Squentropy`` is not cross-entropy's).
    An ``--experiment`` typed names it as given."""
    experiment = str(config["experiment"])
    options = [arg.partition("=")[0] for arg in typed]
    loss = config.get("model.loss.class_path")
    if "--experiment" in options or "--model.loss" not in options or not isinstance(loss, str):
        return experiment
    name = loss.rsplit(".", 1)[-1]
    return experiment if name == _configured_loss(typed) else f"{experiment}-{name}"


def _configured_loss(typed: Sequence[str]) -> str | None:
    """The class name of the loss the last ``--config`` file that names one gives."""
    loss = None
    for i, arg in enumerate(typed):
        option, equals, value = arg.partition("=")
        path = value if equals else (typed[i + 1] if i + 1 < len(typed) else "")
        if option != "--config" or not Path(path).is_file():
            continue
        with contextlib.suppress(yaml.YAMLError, AttributeError, TypeError):
            given = (yaml.safe_load(Path(path).read_text()) or {}).get("model", {}).get("loss")
            given = given.get("class_path") if isinstance(given, dict) else given
            loss = str(given).rsplit(".", 1)[-1] if given else loss
    return loss


# The sections of the config whose classes' __init__ arguments are options.
SECTIONS = {"model": MNISTClassifier, "data": OwnDigitsDataModule}
# Where an argument has other spellings on the command lines, they are named too.
SPELLINGS = {
    "data_dir": " It is --data.data_dir, --data-dir for compare, study and tune, "
    "DATA_DIR= for make.",
}


def option_error(error: ValueError) -> MnistLitError | None:
    """The model's or the data's ValueError about one of its ``__init__`` arguments (its
    message begins with the argument's name) as the option's message: ``batch_size must
    ...`` becomes ``data.batch_size must ...``. None for any other: a bug."""
    message = str(error)
    name = re.match(r"\w+", message)
    for section, cls in SECTIONS.items():
        if name is not None and name.group() in inspect.signature(cls).parameters:
            return MnistLitError(f"{section}.{message}{SPELLINGS.get(name.group(), '')}")
    return None


@contextlib.contextmanager
def options_named() -> Iterator[None]:
    """Raise the model's and the data's ValueErrors about their arguments, while they are
    built or later in a run, as :func:`option_error` names them."""
    try:
        yield
    except ValueError as error:
        named = option_error(error)
        if named is None:
            raise
        raise named from error


def _chosen(config: Any, key: str = "") -> Iterator[tuple[str, type]]:
    """Each dotted option of ``config`` that names a class by ``class_path``, with the class;
    a subcommand's section is left to its own parser."""
    if isinstance(config, list):
        for value in config:
            yield from _chosen(value, key)
        return
    if not isinstance(config, Namespace):
        return
    class_path = config.get("class_path")
    if isinstance(class_path, str) and "." in class_path:
        module, _, name = class_path.rpartition(".")
        with contextlib.suppress(ImportError, AttributeError):  # jsonargparse says what is wrong
            yield key, getattr(importlib.import_module(module), name)
    subcommand = config.get("subcommand") if not key else None
    for name, value in vars(config).items():
        if name != subcommand:
            yield from _chosen(value, f"{key}.{name}".lstrip(".").replace(".init_args", ""))


def _naming(option: str, failures: list[MnistLitError]) -> Callable[..., Any]:
    """An instantiator that builds a class as jsonargparse does, and notes a failure in
    ``failures`` as the user's mistake in ``option``; the error itself goes on."""

    def build(class_type: type, *args: Any, **kwargs: Any) -> Any:
        try:
            return class_type(*args, **kwargs)
        except Exception as error:
            name = class_type.__name__
            if isinstance(error, ImportError):
                extra = EXTRAS.get(name)
                fix = f"pip install 'mnist-lit[{extra}]'" if extra else "install what it names"
                problem = f"needs a package that is not installed ({first_line(error)}): {fix}"
                named = MnistLitError(f"{option} ({name}) {problem}.")
            else:
                named = MnistLitError(
                    f"{option} ({name}): {first_line(error)}. Fix {option}'s init_args, or "
                    "choose another class."
                )
            failures.append(named)
            raise

    return build
