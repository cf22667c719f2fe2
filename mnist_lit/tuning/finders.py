"""``mnist-lit lr_find`` and ``mnist-lit scale_batch_size`` as ``mnist-lit`` lists them:
their help, parsers and entry points."""

from __future__ import annotations

from collections.abc import Sequence

from mnist_lit.errors import MnistLitError, OneMessageParser

LR_FIND_HELP = "Find a learning rate: Lightning's range test on a config, with its plot."
LR_FIND_DESCRIPTION = (
    LR_FIND_HELP + " Takes every option of `mnist-lit fit` (--config ...), and --lr_find.* "
    "for the range test. Writes lr_find.png and lr_find.csv (rate, smoothed loss) to the run "
    "folder and prints the suggested --model.lr, or --optimizer.lr when --optimizer is given."
)
BATCH_SIZE_HELP = "Not offered: the batch-size finder does not fit in-memory MNIST (why)."
BATCH_SIZE_REFUSAL = (
    "batch-size scaling is not offered: Lightning's batch-size finder grows the batch until "
    "memory runs out, but here the images are already in memory and a batch only indexes "
    "them, so it would end at the largest batch that fits (up to the whole training set), "
    "not at one that trains well. The batch size is a hyperparameter here: set "
    "--data.batch_size and scale the learning rate with it (configs/large_batch.yaml: batch "
    "1024, lr 8); `mnist-lit lr_find --data.batch_size N` finds the rate for a batch size."
)


def build_lr_find_parser() -> OneMessageParser:
    """What ``mnist-lit --help`` lists; ``mnist-lit lr_find --help`` shows every option."""
    return OneMessageParser(prog="mnist-lit lr_find", description=LR_FIND_DESCRIPTION)


def lr_find(argv: Sequence[str]) -> None:
    """Run ``mnist-lit lr_find``; a user's mistake ends in a :class:`MnistLitError`."""
    # Imported when run: it builds on mnist_lit.cli, which lists this command.
    from mnist_lit.tuning.lr_find import run

    run(argv)


def build_batch_size_parser() -> OneMessageParser:
    return OneMessageParser(prog="mnist-lit scale_batch_size", description=BATCH_SIZE_REFUSAL)


def scale_batch_size(argv: Sequence[str]) -> None:
    raise MnistLitError(BATCH_SIZE_REFUSAL)
