"""What ``mnist-lit study`` trains: three networks, four losses, and the budget.

The networks are those of ``configs/cross_entropy.yaml``, ``configs/mlp.yaml`` and
``configs/cnn.yaml``, written here as ``mnist-lit fit`` options so that the study runs from
any folder. Each is tuned on the learning rate that its optimiser uses, over a log range
wide enough for every loss (the quadratic cost's gradients are tens of times smaller than
cross-entropy's; the square loss on logits diverges where cross-entropy is still fine). The
rates tried are a grid, evenly spaced on the log scale and the same for every loss: no loss
is luckier in its draws than another, and the trials trace accuracy against rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mnist_lit.errors import MnistLitError

# The losses compared, by the names `mnist-lit compare` uses, with their classes.
LOSSES = {
    "ce": "mnist_lit.losses.CrossEntropy",
    "softmax_twice": "mnist_lit.losses.SoftmaxTwiceCrossEntropy",
    "quadratic": "mnist_lit.losses.Quadratic",
    "square_logits": "mnist_lit.losses.SquareLoss",
}
LOSS_LABELS = {
    "ce": "cross-entropy",
    "softmax_twice": "softmax-twice CE",
    "quadratic": "quadratic (softmax)",
    "square_logits": "square loss (logits)",
}


@dataclass(frozen=True)
class Network:
    """One network of the study, and how its learning rate is searched.

    Attributes:
        name: its name in the study's files.
        description: for the summary.
        args: ``mnist-lit fit`` options that build it (net, data scaling, optimiser).
        lr_key: the option that holds its learning rate.
        lr_range: the lowest and highest rate tried; the others lie evenly between on the
            log scale.
        threshold: the validation accuracy whose epoch of arrival is reported.
    """

    name: str
    description: str
    args: tuple[str, ...]
    lr_key: str
    lr_range: tuple[float, float]
    threshold: float


NETWORKS = {
    network.name: network
    for network in (
        Network(
            "softmax_regression",
            "Linear(784, 10), SGD, batch 64, pixels in [0, 1] (configs/cross_entropy.yaml)",
            ("--model.net=mnist_lit.models.SoftmaxRegression", "--data.normalize=false"),
            "model.lr",
            (0.01, 10**1.5),
            threshold=0.90,
        ),
        Network(
            "mlp",
            "784-100-10 ReLU MLP, SGD, batch 64, normalised pixels (configs/mlp.yaml)",
            (
                "--model.net=mnist_lit.models.MLP",
                "--model.net.hidden_sizes=[100]",
                "--model.net.activation=relu",
                "--data.normalize=true",
            ),
            "model.lr",
            (0.01, 10**1.5),
            threshold=0.96,
        ),
        Network(
            "cnn",
            "LeNet-style CNN, SGD momentum 0.9, cosine decay, normalised pixels (configs/cnn.yaml)",
            (
                "--model.net=mnist_lit.models.CNN",
                "--data.normalize=true",
                "--optimizer=torch.optim.SGD",
                "--optimizer.momentum=0.9",
                "--lr_scheduler=torch.optim.lr_scheduler.CosineAnnealingLR",
            ),
            "optimizer.lr",
            (10**-3.5, 1.0),
            threshold=0.98,
        ),
    )
}


@dataclass(frozen=True)
class Budget:
    """How much the study trains: trials per loss (the rates of the grid), seeds, epochs
    per network, and the share of the training batches each epoch sees (1.0: all)."""

    n_trials: int
    seeds: tuple[int, ...]
    epochs: dict[str, int]
    train_fraction: float = 1.0


# Measured on 2 CPU cores (docs/loss_study.md): within the hour with room to spare.
DEFAULT_BUDGET = Budget(
    n_trials=8, seeds=(0, 1, 2, 3, 4), epochs={"softmax_regression": 10, "mlp": 5, "cnn": 2}
)
# A few minutes: every network and loss, fewer and shorter runs.
QUICK_BUDGET = Budget(
    n_trials=3,
    seeds=(0, 1, 2),
    epochs={"softmax_regression": 1, "mlp": 1, "cnn": 1},
    train_fraction=0.25,
)


@dataclass(frozen=True)
class Plan:
    """One study: which networks and losses, on which budget, with which data split."""

    networks: tuple[str, ...]
    losses: tuple[str, ...]
    budget: Budget
    val_size: int = 5_000
    tuning_seed: int = 42

    def fit_args(self, network: Network, loss: str, data_dir: str, accelerator: str) -> list[str]:
        """``mnist-lit fit`` options of one network and loss, without its learning rate."""
        epochs = self.budget.epochs[network.name]
        args = [
            *network.args,
            f"--model.loss={LOSSES[loss]}",
            f"--data.data_dir={data_dir}",
            f"--data.val_size={self.val_size}",
            "--data.batch_size=64",
            f"--trainer.max_epochs={epochs}",
            f"--trainer.accelerator={accelerator}",
            "--trainer.devices=1",
        ]
        if network.lr_key.startswith("optimizer"):  # the schedule ends with the training
            args.append(f"--lr_scheduler.T_max={epochs}")
        if self.budget.train_fraction < 1:
            args.append(f"--trainer.limit_train_batches={self.budget.train_fraction}")
        return args

    def rates(self, network: Network) -> tuple[float, ...]:
        """The learning rates tried for every loss of ``network``: ``n_trials`` of them,
        evenly spaced on the log scale, to three significant digits."""
        low, high = network.lr_range
        rates = np.geomspace(low, high, self.budget.n_trials) if self.budget.n_trials > 1 else [low]
        return tuple(float(f"{rate:.3g}") for rate in rates)

    def describe(self) -> dict[str, Any]:
        """The plan as plain values: what a study folder records and is checked against."""
        return {
            "networks": list(self.networks),
            "losses": list(self.losses),
            "budget": {**asdict(self.budget), "seeds": list(self.budget.seeds)},
            "val_size": self.val_size,
            "tuning_seed": self.tuning_seed,
            "search": {
                name: {"key": NETWORKS[name].lr_key, "rates": list(self.rates(NETWORKS[name]))}
                for name in self.networks
            },
        }


def make_plan(
    quick: bool,
    networks: list[str] | None = None,
    losses: list[str] | None = None,
    n_trials: int | None = None,
    seeds: list[int] | None = None,
    epochs: int | None = None,
    val_size: int = 5_000,
) -> Plan:
    """The default (or quick) plan, with the options a user gave in its place."""
    budget = QUICK_BUDGET if quick else DEFAULT_BUDGET
    if n_trials is not None or seeds is not None or epochs is not None:
        budget = Budget(
            n_trials if n_trials is not None else budget.n_trials,
            tuple(seeds) if seeds is not None else budget.seeds,
            {name: epochs for name in NETWORKS} if epochs is not None else budget.epochs,
            budget.train_fraction,
        )
    if len(budget.seeds) < 2:
        raise MnistLitError("--seeds: give at least 2 seeds; a paired test needs them.")
    return Plan(tuple(networks or NETWORKS), tuple(losses or LOSSES), budget, val_size=val_size)
