"""``mnist-lit``: LightningCLI over :class:`MNISTClassifier` and :class:`MNISTDataModule`,
plus this project's own subcommands.

``mnist-lit fit|validate|test|predict --config configs/<name>.yaml [--key value ...]``
``mnist-lit compare [--preset ...]``
``mnist-lit lr_find --config configs/<name>.yaml [--lr_find.* ...]``
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jsonargparse
import lightning as L
import torch
from jsonargparse import ActionSubCommands, ArgumentParser, Namespace
from lightning.pytorch.callbacks import (
    BatchSizeFinder,
    Callback,
    ModelCheckpoint,
    ProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from mnist_lit.checkpointing import (
    BEST_FILENAME,
    LAST_FILENAME,
    check_checkpoint_fits,
    checkpoint_folders,
    find_checkpoint,
    read_checkpoint,
)
from mnist_lit.compare import command as compare
from mnist_lit.completion import PrintCompletion
from mnist_lit.data import MNISTDataModule
from mnist_lit.errors import MnistLitError, OneMessageParser, first_line
from mnist_lit.evaluation_figures import EvaluationFigures
from mnist_lit.export import command as export
from mnist_lit.models import MNISTClassifier
from mnist_lit.prediction_writer import PredictionCSV
from mnist_lit.serve import command as serve
from mnist_lit.study import command as study
from mnist_lit.tracking import EXTRAS, ConfigToTrackers, name_the_run
from mnist_lit.tuning import command as tune
from mnist_lit.tuning import finders

PROGRESS_BAR_STEPS = 20


@dataclass(frozen=True)
class Command:
    """A subcommand of this project's own, beside LightningCLI's fit/validate/test/predict."""

    help: str
    parser: Callable[[], ArgumentParser]
    run: Callable[[Sequence[str]], None]


COMMANDS = {
    "compare": Command(compare.HELP, compare.build_parser, compare.main),
    "tune": Command(tune.HELP, tune.build_parser, tune.main),
    "study": Command(study.HELP, study.build_parser, study.main),
    "lr_find": Command(finders.LR_FIND_HELP, finders.build_lr_find_parser, finders.lr_find),
    "scale_batch_size": Command(
        finders.BATCH_SIZE_HELP, finders.build_batch_size_parser, finders.scale_batch_size
    ),
    "export": Command(export.HELP, export.build_parser, export.main),
    "serve": Command(serve.HELP, serve.build_parser, serve.main),
}


class MNISTArgumentParser(OneMessageParser, LightningArgumentParser):
    """LightningCLI's parser, with one-message errors and this project's subcommands."""

    def add_subcommands(self, *args: Any, **kwargs: Any) -> ActionSubCommands:
        subcommands = super().add_subcommands(*args, **kwargs)
        self.subcommand_action = subcommands  # so that the CLI can add its own commands
        return subcommands


class MNISTLightningCLI(LightningCLI):
    """LightningCLI with this project's defaults: best and last checkpoints, CSV and
    TensorBoard logs in ``logs/<experiment>/version_<N>/``, ``--ckpt_path best|last`` for
    the newest run's files, and every mistake in the options reported as one message
    naming the option."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        self._checkpoint: tuple[str, dict[str, Any]] | None = None
        self._explicit_model: dict[str, Any] = {}
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
            parser_kwargs={
                "description": "MNIST with PyTorch Lightning: train, evaluate, "
                "predict, and compare the losses of a classifier."
            },
            args=None if args is None else list(args),
            run=run,
        )

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: Any
    ) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        if add_subcommands:  # listed in `mnist-lit --help`; main() runs them
            assert isinstance(self.parser, MNISTArgumentParser)
            for name, command in COMMANDS.items():
                self.parser.subcommand_action.add_subcommand(
                    name, command.parser(), help=command.help
                )
            self.parser.add_argument("--print_completion", action=PrintCompletion)

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
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand in COMMANDS:
            raise MnistLitError(f"put `{subcommand}` first: mnist-lit {subcommand} [options]")
        if subcommand:
            self._resolve_ckpt_path(self.config[subcommand])

    def _resolve_ckpt_path(self, config: Namespace) -> None:
        """Turn ``best``/``last`` into the newest run's file, read the file once, and take
        from it the options that the user did not give.

        Done while parsing, so that LightningCLI then reads the checkpoint's model
        (network, loss and options) into the config the same way whichever way the file
        was named. Model options given explicitly (``--config`` or the command line) are
        kept, and checked against the weights after instantiation.
        """
        ckpt_path = config.get("ckpt_path")
        if ckpt_path in ("best", "last"):
            folders, where = checkpoint_folders(config)
            config["ckpt_path"] = ckpt_path = str(find_checkpoint(ckpt_path, folders, where))
        if ckpt_path is None or ckpt_path in ("hpc", "registry"):
            return
        checkpoint = read_checkpoint(ckpt_path)
        hyperparameters = set(checkpoint.get("hyper_parameters", {})) - {"_instantiator"}
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
        # LightningCLI applies --lr_scheduler only together with --optimizer; alone, it
        # would be ignored. The model's own optimizer is SGD at model.lr: make it explicit.
        config = self.config.get(str(self.subcommand), self.config)
        # LightningCLI put the checkpoint's model into the config: what the user gave wins.
        for key, value in self._explicit_model.items():
            config["model"][key] = value
        if config.get("lr_scheduler") and not config.get("optimizer"):
            config["optimizer"] = Namespace(
                class_path="torch.optim.SGD", init_args=Namespace(lr=config["model"]["lr"])
            )
        name_the_run(config)

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
            failed = failures[0] if failures else _failed_init(error)
            config = self.config.get(str(self.subcommand), self.config)
            option = _option_of(config, failed[0]) if failed else None
            if failed is None or option is None:  # not a class the user chose: a bug
                raise
            class_type, cause = failed
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
            raise MnistLitError(
                f"trainer.callbacks (BatchSizeFinder): {finders.BATCH_SIZE_REFUSAL}"
            )
        wants_bar = trainer.get("enable_progress_bar") is not False
        if wants_bar and not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, TQDMProgressBar(refresh_rate=PROGRESS_BAR_STEPS)]
        return super().instantiate_trainer(**kwargs)


def explicit_options(config: Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` in ``config`` whose values differ from the class's defaults."""
    defaults = {
        name: parameter.default for name, parameter in inspect.signature(cls).parameters.items()
    }
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


def _failed_init(error: BaseException) -> tuple[type, BaseException] | None:
    """The class whose ``__init__`` raised the first exception behind ``error``, and that
    exception; ``None`` if it was not raised by a constructor."""
    cause = error
    while (cause.__cause__ or cause.__context__) is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    for frame, _ in traceback.walk_tb(cause.__traceback__):
        in_jsonargparse = frame.f_globals.get("__name__", "").startswith("jsonargparse")
        if frame.f_code.co_name == "__init__" and "self" in frame.f_locals and not in_jsonargparse:
            return type(frame.f_locals["self"]), cause
    return None


def _option_of(config: Any, class_type: type, key: str = "") -> str | None:
    """The dotted option in ``config`` whose ``class_path`` names ``class_type``."""
    if isinstance(config, Namespace):
        class_path = config.get("class_path")
        if isinstance(class_path, str) and class_path.rsplit(".", 1)[-1] == class_type.__name__:
            return key
        children = [
            (f"{key}.{name}" if key else name, value) for name, value in vars(config).items()
        ]
    elif isinstance(config, list):
        children = [(key, value) for value in config]
    else:
        return None
    for child_key, value in children:
        found = _option_of(value, class_type, child_key)
        if found is not None:
            return found
    return None


class _NoAdverts(logging.Filter):
    """Drop Lightning's tips that advertise cloud services."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip")


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence what is noise for this command line, and only while it runs."""
    no_adverts = _NoAdverts()
    handlers = logging.getLogger("lightning.pytorch").handlers
    for handler in handlers:
        handler.addFilter(no_adverts)
    with warnings.catch_warnings():
        # Giving --optimizer is how a user replaces the model's default SGD.
        warnings.filterwarnings("ignore", message=r".*configure_optimizers` will be overridden by")
        # Testing or resuming a checkpoint from an earlier run is what --ckpt_path is for.
        warnings.filterwarnings("ignore", message=r"The dirpath has changed from")
        # Each prediction carries its image's index itself (PredictionCSV).
        warnings.filterwarnings("ignore", message=r"Couldn't infer the batch indices")
        # Lightning 2.6 against newer torch; nothing for a user to do.
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(no_adverts)


def main(args: Sequence[str] | None = None) -> None:
    """Console entry point: run the CLI; a user's mistake ends in one message, no traceback."""
    argv = sys.argv[1:] if args is None else list(args)
    with _quiet_lightning():
        try:
            command = COMMANDS.get(argv[0]) if argv else None
            if command is not None:
                command.run(argv[1:])
            else:
                MNISTLightningCLI(args=args)
        except MnistLitError as error:
            _fail(str(error))
        except MisconfigurationException as error:
            _fail(_trainer_problem(error))
        except OSError as error:
            if error.filename is None:  # not about a file the user named: a bug, show it
                raise
            _fail(f"{error.filename}: {error.strerror}. Check the path and its permissions.")
        finally:
            _leave_process_group()


def _leave_process_group() -> None:
    """End this process's part in a distributed run (Lightning leaves the group open), so
    that the communication threads stop before the interpreter exits rather than being
    torn down under it, which can abort the process after its work is done."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _trainer_problem(error: MisconfigurationException) -> str:
    message = first_line(error)
    if "gpu" in message.lower() and not torch.cuda.is_available():
        message += (
            " This machine has no usable GPU: leave out configs/trainer/gpu*.yaml or "
            "pass --trainer.accelerator=cpu."
        )
    return f"the trainer's options do not work here: {message}"


def _fail(message: str) -> None:
    print(f"mnist-lit: error: {message}", file=sys.stderr)
    raise SystemExit(2) from None
