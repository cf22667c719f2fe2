"""What ``mnist-lit study`` trains: three networks, four losses, and the budget.

The networks are those of ``configs/cross_entropy.yaml``, ``configs/mlp.yaml`` and
``configs/cnn.yaml``, read from those files (:mod:`mnist_lit.runs.catalog`), trained with their
config's SGD or with Adam. Each is tuned on its optimiser's learning rate, over a log range
of that optimiser wide enough for every loss (SGD's: the quadratic cost's gradients are
tens of times smaller than cross-entropy's, and the square loss on logits diverges where
cross-entropy is still fine; Adam's step does not grow with the gradient, so its range lies
around its usual rate, 1e-3). The rates tried are a grid, evenly spaced on the log scale
and the same for every loss: no loss is luckier in its draws than another, and the trials
trace accuracy against rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import yaml

from mnist_lit.runs.catalog import LEARNING_RATE, LOSSES, NETWORKS, OPTIMIZERS
from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.fit import Fit
from mnist_lit.study.halving import round_epochs

# The losses compared, by their names in mnist_lit.runs.catalog.LOSSES.
STUDY_LOSSES = ("ce", "softmax_twice", "quadratic", "square_logits")
# The optimiser of the networks' configs, by its name in mnist_lit.runs.catalog.OPTIMIZERS.
CONFIG_OPTIMIZER = "sgd"


@dataclass(frozen=True)
class Network:
    """One network of the study, and how its learning rate is searched."""

    name: str  # in mnist_lit.runs.catalog.NETWORKS and in the study's files
    # Per optimiser (by its name in mnist_lit.runs.catalog.OPTIMIZERS), the lowest and highest
    # rate tried; the others lie evenly between on the log scale.
    lr_ranges: dict[str, tuple[float, float]]
    threshold: float  # the validation accuracy whose epoch of arrival is reported

    def __post_init__(self) -> None:
        assert set(self.lr_ranges) == set(OPTIMIZERS), f"{self.name}: a range per optimiser"

    def schedule_ends_with_training(self) -> bool:
        """Whether its config schedules the rate over the epochs (``T_max``), which then
        follows the study's number of epochs."""
        config = yaml.safe_load(NETWORKS[self.name].config_path().read_text())
        schedule = config["model"].get("lr_scheduler") or {}
        return "T_max" in schedule.get("init_args", {})


STUDY_NETWORKS = {
    network.name: network
    for network in (
        Network("softmax_regression", {"sgd": (0.01, 10**1.5), "adam": (1e-4, 0.1)}, 0.90),
        Network("mlp", {"sgd": (0.01, 10**1.5), "adam": (1e-4, 0.1)}, threshold=0.96),
        Network("cnn", {"sgd": (10**-3.5, 1.0), "adam": (1e-4, 0.1)}, threshold=0.98),
    )
}


@dataclass(frozen=True)
class Budget:
    """How much the study trains: trials per loss (the rates of the grid), seeds, epochs
    per network, the share of the training batches each epoch sees (1.0: all), and how
    many rates past its edge a grid may grow by (mnist_lit.study.halving)."""

    n_trials: int
    seeds: tuple[int, ...]
    epochs: dict[str, int]
    train_fraction: float = 1.0
    extensions: int = 2


# Each network's config's own length; the tuning affords it by successive halving
# (mnist_lit.study.halving). Timed on 2 CPU cores in benchmarks/study.md.
DEFAULT_BUDGET = Budget(
    n_trials=8, seeds=(0, 1, 2, 3, 4), epochs={"softmax_regression": 10, "mlp": 10, "cnn": 8}
)
# A few minutes: every network and loss, fewer and shorter runs.
QUICK_BUDGET = Budget(
    n_trials=3,
    seeds=(0, 1, 2),
    epochs={"softmax_regression": 1, "mlp": 1, "cnn": 1},
    train_fraction=0.25,
    extensions=0,
)


@dataclass(frozen=True)
class Plan:
    """One study: which networks and losses, on which budget, with which optimiser, data
    split and share of wrong training labels."""

    networks: tuple[str, ...]
    losses: tuple[str, ...]
    budget: Budget
    val_size: int = 5_000
    tuning_seed: int = 42
    label_noise: float = 0.0  # the share of training labels made wrong in every fit
    optimizer: str = CONFIG_OPTIMIZER

    def fit(self, network: Network, loss: str, data_dir: str, accelerator: str) -> Fit:
        """The fit of one network and loss at its full length, without its rate or seed.

        The optimiser's class follows the config: jsonargparse keeps the config's
        ``init_args`` for the same class, and for another class only those the new class
        takes, so Adam gets no SGD momentum (and its rate is the tuned one).
        """
        epochs = self.budget.epochs[network.name]
        options: dict[str, Any] = {
            "model.loss": LOSSES[loss].class_path,
            "data.data_dir": data_dir,
            "data.val_size": self.val_size,
            "trainer.accelerator": accelerator,
            "trainer.devices": 1,
        }
        if network.schedule_ends_with_training():
            options["model.lr_scheduler.T_max"] = epochs
        if self.budget.train_fraction < 1:
            options["trainer.limit_train_batches"] = self.budget.train_fraction
        return Fit(
            configs=(str(NETWORKS[network.name].config),),
            epochs=epochs,
            label_noise=self.label_noise,
            optimizer=OPTIMIZERS[self.optimizer].class_path,
            options=options,
        )

    def rates(self, network: Network) -> tuple[float, ...]:
        """The learning rates tried for every loss of ``network``: ``n_trials`` of them,
        evenly spaced on the log scale, to three significant digits."""
        low, high = network.lr_ranges[self.optimizer]
        rates = np.geomspace(low, high, self.budget.n_trials)
        return tuple(float(f"{rate:.3g}") for rate in rates)

    def conditions(self) -> str:
        """The optimiser and the labels, for a report's title.

        >>> Plan(("mlp",), ("ce",), QUICK_BUDGET, label_noise=0.2, optimizer="adam").conditions()
        'Adam, 20% of the training labels wrong'
        """
        labels = f"{self.label_noise:.0%} of the training labels wrong" if self.label_noise else ""
        return ", ".join(filter(None, (OPTIMIZERS[self.optimizer].label, labels)))

    def describe(self) -> dict[str, Any]:
        """The plan as plain values: what a study folder records and is checked against."""
        return {
            "networks": list(self.networks),
            "losses": list(self.losses),
            "budget": {**asdict(self.budget), "seeds": list(self.budget.seeds)},
            "val_size": self.val_size,
            "tuning_seed": self.tuning_seed,
            "label_noise": self.label_noise,
            "optimizer": self.optimizer,
            "search": {
                name: {
                    "key": LEARNING_RATE,
                    "rates": list(self.rates(STUDY_NETWORKS[name])),
                    "round_epochs": list(round_epochs(self.budget.epochs[name])),
                }
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
    label_noise: float = 0.0,
    optimizer: str = CONFIG_OPTIMIZER,
) -> Plan:
    """The default (or quick) plan, with the options a user gave in its place."""
    budget = QUICK_BUDGET if quick else DEFAULT_BUDGET
    budget = replace(
        budget,
        n_trials=budget.n_trials if n_trials is None else n_trials,
        seeds=budget.seeds if seeds is None else tuple(seeds),
        epochs=budget.epochs if epochs is None else dict.fromkeys(STUDY_NETWORKS, epochs),
    )
    if len(budget.seeds) < 2:
        raise MnistLitError("--seeds: give at least 2 seeds; a paired test needs them.")
    return Plan(
        tuple(networks or STUDY_NETWORKS),
        tuple(losses or STUDY_LOSSES),
        budget,
        val_size=val_size,
        label_noise=label_noise,
        optimizer=optimizer,
    )
