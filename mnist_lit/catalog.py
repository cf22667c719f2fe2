"""The losses, networks and optimisers that ``mnist-lit compare`` and ``mnist-lit study``
know by name: one table each, from which the commands' choices, the studies and the
reports derive.

A network is read from the config that trains it (``configs/<config>``): the study fits
exactly what ``mnist-lit fit --config configs/<config>`` fits, at its own learning rate.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from mnist_lit.errors import MnistLitError

# The repository's configs, beside the package.
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class Entry:
    """A loss, a network or an optimiser: its name on the command line, its class and its
    label."""

    key: str
    class_path: str
    label: str
    config: str | None = None  # a network's config, in CONFIGS

    def build(self) -> nn.Module:
        """A new instance with the class's defaults."""
        module_name, _, name = self.class_path.rpartition(".")
        module = getattr(importlib.import_module(module_name), name)()
        assert isinstance(module, nn.Module)
        return module

    def config_path(self) -> Path:
        """The config that trains this network."""
        return config_path(str(self.config))


def config_path(name: str) -> Path:
    """``name`` if it is a file, else the project's config of that name (``cnn.yaml``):
    a fit sent to another machine names the config of that machine's installation."""
    path = Path(name)
    if path.is_file():
        return path
    project = CONFIGS / name
    if not project.is_file():
        raise MnistLitError(
            f"{name}: no such config, and none of that name in {CONFIGS}. The project's "
            "configs are read from the repository's configs/ folder: run from a clone of "
            "mnist_lit, installed with `pip install -e .`."
        )
    return project


def _table(*entries: Entry) -> dict[str, Entry]:
    return {entry.key: entry for entry in entries}


LOSSES = _table(
    Entry("ce", "mnist_lit.losses.CrossEntropy", "cross-entropy"),
    Entry("softmax_twice", "mnist_lit.losses.SoftmaxTwiceCrossEntropy", "softmax-twice CE"),
    Entry("quadratic", "mnist_lit.losses.Quadratic", "quadratic (softmax)"),
    Entry("square_logits", "mnist_lit.losses.SquareLoss", "square loss (logits)"),
    Entry("sigmoid_quadratic", "mnist_lit.losses.SigmoidQuadratic", "quadratic (sigmoid)"),
    Entry("bce", "mnist_lit.losses.BinaryCrossEntropy", "binary cross-entropy"),
    Entry("label_smoothing", "mnist_lit.losses.LabelSmoothingCrossEntropy", "label-smoothed CE"),
    Entry("focal", "mnist_lit.losses.FocalLoss", "focal loss"),
)
NETWORKS = _table(
    Entry("softmax_regression", "mnist_lit.models.SoftmaxRegression", "softmax regression",
          "cross_entropy.yaml"),
    Entry("mlp", "mnist_lit.models.MLP", "MLP 784-100-10", "mlp.yaml"),
    Entry("cnn", "mnist_lit.models.CNN", "CNN", "cnn.yaml"),
)  # fmt: skip

OPTIMIZERS = _table(
    Entry("sgd", "torch.optim.SGD", "SGD"),
    Entry("adam", "torch.optim.Adam", "Adam"),
)

# The option of every config that holds the learning rate.
LEARNING_RATE = "model.optimizer.lr"
