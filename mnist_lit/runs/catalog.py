"""The losses, networks and optimisers that ``mnist-lit compare`` and ``mnist-lit study``
know by name: one table each, from which the commands' choices, the studies and the
reports derive.

A network is read from the config that trains it (``configs/<config>``): the study fits
exactly what ``mnist-lit fit --config configs/<config>`` fits, at its own learning rate.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from mnist_lit.runs.errors import MnistLitError

# The project's configs: the repository's configs/ (the package's configs/ links to it),
# shipped inside the wheel.
CONFIGS = (Path(__file__).parents[1] / "configs").resolve()
# The options that name a config file, in every command.
CONFIG_OPTIONS = ("--config", "--search")


@dataclass(frozen=True)
class Entry:
    """A loss, a network or an optimiser (named on the command line by its key in its table):
    its class and its label."""

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
    """``name`` if it is a file, else the project's config of that name (``cnn.yaml`` or
    ``configs/cnn.yaml``), so that the README's commands work from any folder and a fit sent
    to another machine names the config of that machine's installation."""
    path = Path(name)
    if path.is_file():
        return path
    project = CONFIGS / name.removeprefix("configs/")
    if not project.is_file():
        raise MnistLitError(missing_config(name))
    return project


def missing_config(name: str) -> str:
    """One line for a config file that is neither here nor the project's: the project's
    configs of that folder (``configs/trainer/...``: the trainer overlays), and the nearest."""
    folder = Path(name).parent.name
    folder = folder if (CONFIGS / folder).is_dir() and folder != CONFIGS.name else ""
    names = sorted(path.stem for path in (CONFIGS / folder).glob("*.yaml"))
    names = [n for n in names if n != "defaults"]
    where = f"configs/{folder}/" if folder else "configs/"
    nearest = difflib.get_close_matches(Path(name).stem, names, n=1, cutoff=0.6)
    hint = f" Did you mean {where}{nearest[0]}.yaml?" if nearest else ""
    return (
        f"{name}: no such config file. The project's configs in {where}: {', '.join(names)}.{hint}"
    )


def with_project_configs(argv: Sequence[str]) -> list[str]:
    """``argv`` with each config file it names (``--config configs/cnn.yaml``) that is not
    in the working folder replaced by the project's own of that name, where there is one."""
    resolved = list(argv)
    for i, arg in enumerate(resolved):
        option, equals, value = arg.partition("=")
        if equals and option in CONFIG_OPTIONS:
            resolved[i] = f"{option}={_project_or_given(value)}"
        elif i and resolved[i - 1] in CONFIG_OPTIONS:
            resolved[i] = _project_or_given(arg)
    return resolved


def _project_or_given(name: str) -> str:
    try:
        return str(config_path(name))
    except MnistLitError:
        return name  # not the project's: the command says what is wrong with it


LOSSES = {
    "ce": Entry("mnist_lit.losses.CrossEntropy", "cross-entropy"),
    "softmax_twice": Entry("mnist_lit.losses.SoftmaxTwiceCrossEntropy", "softmax-twice CE"),
    "quadratic": Entry("mnist_lit.losses.Quadratic", "quadratic (softmax)"),
    "square_logits": Entry("mnist_lit.losses.SquareLoss", "square loss (logits)"),
    "sigmoid_quadratic": Entry("mnist_lit.losses.SigmoidQuadratic", "quadratic (sigmoid)"),
    "bce": Entry("mnist_lit.losses.BinaryCrossEntropy", "binary cross-entropy"),
    "label_smoothing": Entry("mnist_lit.losses.LabelSmoothingCrossEntropy", "label-smoothed CE"),
    "focal": Entry("mnist_lit.losses.FocalLoss", "focal loss"),
    "squentropy": Entry("mnist_lit.losses.Squentropy", "squentropy"),
    "hinge": Entry("mnist_lit.losses.MulticlassHinge", "multi-class hinge"),
}
NETWORKS = {
    "softmax_regression": Entry(
        "mnist_lit.models.SoftmaxRegression", "softmax regression", "cross_entropy.yaml"
    ),
    "mlp": Entry("mnist_lit.models.MLP", "MLP 784-100-10", "mlp.yaml"),
    "cnn": Entry("mnist_lit.models.CNN", "CNN", "cnn.yaml"),
}
OPTIMIZERS = {
    "sgd": Entry("torch.optim.SGD", "SGD"),
    "adam": Entry("torch.optim.Adam", "Adam"),
}

# The option of every config that holds the learning rate.
LEARNING_RATE = "model.optimizer.lr"
