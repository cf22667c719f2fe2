"""``mnist-lit``: the dispatcher. It owns the list of commands: LightningCLI's
fit/validate/test/predict (:mod:`mnist_lit.runs.lightning_cli`) and this project's own,
and turns a user's mistake into one message and exit status 2.

``mnist-lit fit|validate|test|predict --config configs/<name>.yaml [--key value ...]``
``mnist-lit compare|study|tune|lr_find|export|serve [options]``
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from jsonargparse import ArgumentParser
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from mnist_lit.compare import command as compare
from mnist_lit.data.own_digits import OwnDigitsDataModule
from mnist_lit.export import command as export
from mnist_lit.models.divergence import Diverged
from mnist_lit.runs.catalog import LEARNING_RATE, with_project_configs
from mnist_lit.runs.completion import PrintCompletion
from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.runs.lightning_cli import MNISTArgumentParser, MNISTLightningCLI, options_named
from mnist_lit.runs.quiet import quiet
from mnist_lit.serve import command as serve
from mnist_lit.study import command as study
from mnist_lit.tuning import command as tune
from mnist_lit.tuning import lr_find


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
    "lr_find": Command(lr_find.HELP, lr_find.build_parser, lr_find.main),
    "scale_batch_size": Command(
        lr_find.BATCH_SIZE_HELP, lr_find.build_batch_size_parser, lr_find.scale_batch_size
    ),
    "export": Command(export.HELP, export.build_parser, export.main),
    "serve": Command(serve.HELP, serve.build_parser, serve.main),
}


# LightningCLI lists its commands with the first line of the Trainer method's docstring,
# which stops mid-sentence; these say what each does here.
LIGHTNING_COMMANDS = {
    "fit": "Train a config's network and loss, with checkpoints and logs.",
    "validate": "Evaluate a checkpoint on the validation split.",
    "test": "Evaluate a checkpoint once on the 10,000 test images, with figures.",
    "predict": "Classify your own images (or the test set) with a checkpoint; writes a CSV.",
}


INTERRUPTED = (
    "mnist-lit: interrupted. What was written before is kept: the same study or tune command "
    "continues it, and a fit resumes with --ckpt_path last."
)


TERMINATED = (
    "mnist-lit: stopped by SIGTERM. The checkpoints of the finished epochs are kept: a fit "
    "resumes with --ckpt_path last."
)


class MainCLI(MNISTLightningCLI):
    """The LightningCLI of ``mnist-lit``, whose ``--help`` lists every command."""

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: Any
    ) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        assert isinstance(self.parser, MNISTArgumentParser)
        subcommands = self.parser.subcommand_action
        if subcommands is not None:  # listed in `mnist-lit --help`; main() runs them
            for listed in subcommands._choices_actions:
                listed.help = LIGHTNING_COMMANDS.get(listed.dest, listed.help)
            for name, command in COMMANDS.items():
                subcommands.add_subcommand(name, command.parser(), help=command.help)
            self.parser.add_argument("--print_completion", action=PrintCompletion)

    def before_predict(self) -> None:
        # Your own images are read before the trainer opens a run folder: a path without
        # one readable image fails with nothing written.
        datamodule = self.datamodule
        if isinstance(datamodule, OwnDigitsDataModule) and datamodule.predict_path is not None:
            datamodule.own_digits()

    def _say_where(self) -> None:
        """One line at the end: the run folder, and after a fit its best checkpoint."""
        trainer = self.trainer
        folder = trainer.log_dir  # on every process: Lightning broadcasts it from rank 0
        if not trainer.is_global_zero or folder is None:
            return
        line = f"{self.subcommand}: run folder {folder}"
        callback = trainer.checkpoint_callback
        best = callback.best_model_path if isinstance(callback, ModelCheckpoint) else ""
        if self.subcommand == "fit" and best:
            line += f", best checkpoint {best}"
        print(line, flush=True)

    def after_fit(self) -> None:
        super().after_fit()
        self._say_where()

    after_validate = after_test = after_predict = _say_where

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand in COMMANDS:
            raise MnistLitError(f"put `{subcommand}` first: mnist-lit {subcommand} [options]")


def main(args: Sequence[str] | None = None) -> None:
    """Console entry point: run the CLI; a user's mistake ends in one message, no traceback."""
    argv = with_project_configs(sys.argv[1:] if args is None else args)
    if args is None and "" not in sys.path:
        # The console script, like `python -m`, imports a user's own module (a loss in
        # my_losses.py: --model.loss my_losses.Hinge) from the working folder.
        sys.path.insert(0, os.getcwd())
    with quiet(), _ctrl_c_noted() as ctrl_c:
        try:
            command = COMMANDS.get(argv[0]) if argv else None
            with options_named():
                if command is not None:
                    command.run(argv[1:])
                else:
                    MainCLI(args=argv)
        except MnistLitError as error:
            _fail(str(error))
        except Diverged as error:  # the learning rate is too large for this loss
            _fail(
                f"the training loss became non-finite (nan or inf) in epoch {error.epoch} at "
                f"step {error.step}; training stopped, checkpoints saved before are kept. "
                f"Lower {LEARNING_RATE}, or normalise the data (data.normalize)."
            )
        except MisconfigurationException as error:
            _fail(_trainer_problem(error))
        except SIGTERMException:  # Lightning's stop on SIGTERM, a SystemExit with status 0
            print(TERMINATED, file=sys.stderr)
            raise SystemExit(128 + signal.SIGTERM) from None
        except KeyboardInterrupt:  # Ctrl-C: one line, not the stack it stopped in
            print(INTERRUPTED, file=sys.stderr)
            raise SystemExit(130) from None
        except SystemExit as error:
            # Lightning stops a fit on Ctrl-C with sys.exit(1), its own line quieted in a
            # study: said as any Ctrl-C is.
            if not (ctrl_c and error.code == 1):
                raise
            print(INTERRUPTED, file=sys.stderr)
            raise SystemExit(130) from None
        except BrokenPipeError:  # the reader stopped reading (`| head`): nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(1) from None
        except OSError as error:
            if error.filename is None:  # not about a file the user named: a bug, show it
                raise
            _fail(_file_problem(error))
        except RuntimeError as error:
            if "returned nan values" not in str(error):  # anomaly detection's finding
                raise
            _fail(
                "anomaly detection found a NaN in the backward pass "
                f"({first_line(error).rstrip('.')}); "
                f"training stopped, checkpoints saved before are kept. Lower {LEARNING_RATE}, "
                "or normalise the data (data.normalize)."
            )
        finally:
            _leave_process_group()


@contextlib.contextmanager
def _ctrl_c_noted() -> Iterator[list[int]]:
    """Within the block, a Ctrl-C (SIGINT) raises KeyboardInterrupt as Python's own handler
    does, and is noted in the list given: Lightning turns it into ``sys.exit(1)``. Left
    alone where SIGINT is not Python's default (ignored, as in a study's worker), or off
    the main thread."""
    pressed: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        pressed.append(signum)
        signal.default_int_handler(signum, frame)

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield pressed
        return
    signal.signal(signal.SIGINT, note)
    try:
        yield pressed
    finally:  # Lightning leaves Ctrl-C ignored after its shutdown
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _leave_process_group() -> None:
    """End this process's part in a distributed run (Lightning leaves the group open), so
    that the communication threads stop before the interpreter exits rather than being
    torn down under it, which can abort the process after its work is done."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _file_problem(error: OSError) -> str:
    """A file or folder the run must write or read, named with what is wrong."""
    if error.errno in (errno.EEXIST, errno.ENOTDIR):
        path = Path(error.filename)
        while not path.exists() and path != path.parent:
            path = path.parent  # the part of the path that is there: a file, not a folder
        if path.exists() and not path.is_dir():
            return (
                f"{error.filename}: {error.strerror} ({path} is a file, not a folder, so "
                "nothing can be written in it). Choose another path."
            )
    return f"{error.filename}: {error.strerror}. Check the path and its permissions."


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
