"""``mnist-lit lr_find``: Lightning's learning-rate range test on any config.

The range test trains from the config's initial weights for ``num_training`` steps while the
rate grows from ``min_lr`` to ``max_lr``, records the smoothed training loss, and suggests
the rate where the loss falls fastest. It uses the same model, data (the in-memory batches)
and trainer as ``mnist-lit fit``, so every option of ``fit`` applies; the weights are
restored afterwards and nothing is trained.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.tuner import Tuner

from mnist_lit.cli import MNISTLightningCLI
from mnist_lit.errors import MnistLitError
from mnist_lit.figures import lr_finder_curve
from mnist_lit.models import MNISTClassifier
from mnist_lit.tracking import log_figure
from mnist_lit.tuning.finders import LR_FIND_DESCRIPTION

# Options of Tuner.lr_find that this command sets itself.
_FIXED = {"model", "train_dataloaders", "val_dataloaders", "dataloaders", "datamodule",
          "method", "update_attr", "attr_name"}  # fmt: skip


class LRFindCLI(MNISTLightningCLI):
    """``fit``'s options, plus ``--lr_find.*`` (Tuner.lr_find's), without subcommands."""

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.update(prog="mnist-lit lr_find", description=LR_FIND_DESCRIPTION)
        return super().init_parser(**kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_method_arguments(Tuner, "lr_find", "lr_find", skip=_FIXED)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        # An optimizer of the user's own takes its rate from --optimizer.lr, else model.lr.
        self.rate_option = "--optimizer.lr" if self.config.get("optimizer") else "--model.lr"


def run(argv: Sequence[str]) -> None:
    """Run the range test of ``argv`` (fit's options and ``--lr_find.*``), write its
    results to the run folder and print the suggested rate."""
    cli = LRFindCLI(args=argv, run=False)
    trainer, model = cli.trainer, cli.model
    options = vars(cli.config["lr_find"])
    with _divergence_ends_the_search(model, trainer):
        finder = Tuner(trainer).lr_find(
            model, datamodule=cli.datamodule, update_attr=False, **options
        )
    if finder is None:  # fast_dev_run: Lightning skips the search
        raise MnistLitError("lr_find does not run with --trainer.fast_dev_run; leave it out.")
    suggestion = finder.suggestion()
    folder = Path(trainer.log_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    _write_results(finder.results, folder / "lr_find.csv")
    figure = lr_finder_curve(finder.results["lr"], finder.results["loss"], suggestion)
    figure.savefig(folder / "lr_find.png", dpi=100)
    for logger in trainer.loggers:
        log_figure(logger, "lr_find", figure, folder / "lr_find.png")
    print(f"The loss against the learning rate: {folder / 'lr_find.png'}")
    if suggestion is None:
        raise MnistLitError(
            f"lr_find found no rate to suggest: the loss was not finite at enough rates "
            f"(see {folder / 'lr_find.png'}). Lower --lr_find.max_lr or raise "
            "--lr_find.num_training."
        )
    print(f"Suggested learning rate: {suggestion:.3g}; train with {cli.rate_option} "
          f"{suggestion:.3g}")  # fmt: skip


def _write_results(results: dict[str, list[float]], path: Path) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["lr", "loss"])
        writer.writerows(zip(results["lr"], results["loss"], strict=True))


@contextlib.contextmanager
def _divergence_ends_the_search(model: L.LightningModule, trainer: L.Trainer) -> Iterator[None]:
    """While the range test runs, a non-finite loss stops it (every larger rate diverges
    too) instead of failing the run, as :class:`MNISTClassifier` does in training; the
    finder leaves the non-finite losses out when it suggests a rate."""
    if isinstance(model, MNISTClassifier):

        def stop() -> None:
            if int(model.nonfinite_step) >= 0:
                trainer.should_stop = True

        model.raise_if_loss_was_nonfinite = stop  # type: ignore[method-assign]
    try:
        yield
    finally:
        model.__dict__.pop("raise_if_loss_was_nonfinite", None)
