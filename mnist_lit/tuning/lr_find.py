"""``mnist-lit lr_find``: Lightning's learning-rate range test on any config, with every
option of ``mnist-lit fit`` (Lightning restores the weights afterwards), and its own
suggestion (:func:`steepest_fall`); and ``mnist-lit scale_batch_size``, refused with the
reason."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.tuner import Tuner

from mnist_lit.runs.catalog import LEARNING_RATE
from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.figures import lr_finder_curve
from mnist_lit.runs.lightning_cli import BATCH_SIZE_REFUSAL, MNISTLightningCLI
from mnist_lit.runs.parser import OneMessageParser
from mnist_lit.runs.tracking import log_figure

HELP = "Find a learning rate: Lightning's range test on a config, with its plot."
DESCRIPTION = (
    HELP + " Takes every option of `mnist-lit fit` (--config ...), and --lr_find.* for the "
    "range test. Writes lr_find.png and lr_find.csv (rate, smoothed loss) to the run folder "
    f"and prints the suggested --{LEARNING_RATE}."
)
BATCH_SIZE_HELP = (
    "Not offered: the batch-size finder does not fit in-memory MNIST "
    "(mnist-lit scale_batch_size says why)."
)
# Options of Tuner.lr_find that this command sets itself.
_FIXED = {"model", "train_dataloaders", "val_dataloaders", "dataloaders", "datamodule",
          "method", "update_attr", "attr_name"}  # fmt: skip


class LRFindCLI(MNISTLightningCLI):
    """``fit``'s options, plus ``--lr_find.*`` (Tuner.lr_find's), without subcommands."""

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.update(prog="mnist-lit lr_find", description=DESCRIPTION)
        return super().init_parser(**kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_method_arguments(Tuner, "lr_find", "lr_find", skip=_FIXED)


def build_parser() -> OneMessageParser:
    """What ``mnist-lit --help`` lists; ``mnist-lit lr_find --help`` shows every option."""
    return OneMessageParser(prog="mnist-lit lr_find", description=DESCRIPTION)


def main(argv: Sequence[str]) -> None:
    """Run the range test of ``argv`` (fit's options and ``--lr_find.*``), write its
    results to the run folder and print the suggested rate."""
    cli = LRFindCLI(args=list(argv), run=False)
    trainer = cli.trainer
    options = vars(cli.config["lr_find"])
    finder = Tuner(trainer).lr_find(
        cli.model, datamodule=cli.datamodule, update_attr=False, **options
    )
    if finder is None:  # fast_dev_run: Lightning skips the search
        raise MnistLitError("lr_find does not run with --trainer.fast_dev_run; leave it out.")
    # The curve ends at its first non-finite loss: from there the weights are not finite,
    # and every larger rate only repeats it.
    losses = finder.results["loss"]
    end = next((i + 1 for i, loss in enumerate(losses) if not math.isfinite(loss)), len(losses))
    lrs, losses = finder.results["lr"][:end], losses[:end]
    suggestion = steepest_fall(lrs, losses)
    folder = Path(trainer.log_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lr_find.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["lr", "loss"])
        writer.writerows(zip(lrs, losses, strict=True))
    figure = lr_finder_curve(lrs, losses, suggestion)
    figure.savefig(folder / "lr_find.png", dpi=100)
    for logger in trainer.loggers:
        log_figure(logger, "lr_find", figure, folder / "lr_find.png")
        # Written and closed now: a writer flushed later would follow a relative path from
        # wherever the process has moved to by then.
        logger.finalize("success")
    print(f"The loss against the learning rate: {folder / 'lr_find.png'}")
    if suggestion is None:
        raise MnistLitError(
            f"lr_find found no rate to suggest: the loss did not fall at any rate tried, or "
            f"was not finite at enough rates (see {folder / 'lr_find.png'}). Raise "
            "--lr_find.num_training, or move --lr_find.min_lr and --lr_find.max_lr."
        )
    print(f"Suggested learning rate: {suggestion:.3g}; train with --{LEARNING_RATE} "
          f"{suggestion:.3g}")  # fmt: skip


def steepest_fall(lrs: Sequence[float], losses: Sequence[float]) -> float | None:
    """The rate where the smoothed loss falls fastest per decade of rate, within its
    largest fall (from a high point to the lowest point after it); None when it never falls.

    The slope is taken over a window of a twentieth of the rates on either side (less in a
    short fall), and only inside the largest fall, so that noise on a flat stretch, where
    the rate is still too small to matter, is not taken for the fall (Lightning's own
    suggestion, the steepest step between neighbours anywhere, can be). The first 10 rates
    are left out, as Lightning does: the smoothing starts there.
    """
    kept = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    x = np.log10([lr for lr, _ in kept[10:]])
    y = np.array([loss for _, loss in kept[10:]])
    if len(y) < 3:
        return None
    # The largest fall: to the trough furthest below the highest point before it.
    drops = np.maximum.accumulate(y) - y
    trough = int(np.argmax(drops))
    if drops[trough] <= 0:
        return None
    peak = int(np.argmax(y[: trough + 1]))
    w = max(1, len(y) // 20)
    at = np.arange(peak, trough + 1)
    left, right = np.maximum(peak, at - w), np.minimum(trough, at + w)
    slopes = (y[right] - y[left]) / (x[right] - x[left])
    return float(kept[10 + peak + int(np.argmin(slopes))][0])


def build_batch_size_parser() -> OneMessageParser:
    return OneMessageParser(prog="mnist-lit scale_batch_size", description=BATCH_SIZE_REFUSAL)


def scale_batch_size(argv: Sequence[str]) -> None:
    raise MnistLitError(BATCH_SIZE_REFUSAL)
