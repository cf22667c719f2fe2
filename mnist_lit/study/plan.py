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

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
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

    name: str  # in mnist_lit.runs.catalog.NETWORKS (or a user's config's stem), in the files
    # Per optimiser (by its name in mnist_lit.runs.catalog.OPTIMIZERS), the lowest and highest
    # rate tried; the others lie evenly between on the log scale.
    lr_ranges: dict[str, tuple[float, float]]
    threshold: float  # the validation accuracy whose epoch of arrival is reported
    config: str | None = None  # a user's config file; None: the catalogue's
    epochs: int | None = None  # a user's config's trainer.max_epochs

    def __post_init__(self) -> None:
        assert set(self.lr_ranges) == set(OPTIMIZERS), f"{self.name}: a range per optimiser"

    def config_path(self) -> Path:
        return Path(self.config) if self.config else NETWORKS[self.name].config_path()

    @property
    def label(self) -> str:
        """``MLP 784-100-10 (configs/mlp.yaml)``, or a user's config's path."""
        if self.config:
            return f"{self.name} ({self.config})"
        entry = NETWORKS[self.name]
        return f"{entry.label} (configs/{entry.config})"

    def schedule_ends_with_training(self) -> bool:
        """Whether its config schedules the rate over the epochs (``T_max``), which then
        follows the study's number of epochs."""
        config = yaml.safe_load(self.config_path().read_text())
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
class Loss:
    """One loss of the study: its class and arguments, its name in the study's files and
    its label in the report."""

    name: str  # a catalogue name, or the class path (with its arguments)
    class_path: str
    init_args: tuple[tuple[str, Any], ...] = ()
    label: str = ""
    control_of: str | None = None  # the loss this one trains again, on other seeds
    given: str = field(default="", compare=False)  # as the user wrote it, for messages

    def option(self) -> str | dict[str, Any]:
        """The value of ``model.loss``."""
        if not self.init_args:
            return self.class_path
        return {"class_path": self.class_path, "init_args": dict(self.init_args)}

    def describe(self) -> dict[str, Any]:
        return {"class_path": self.class_path, "init_args": dict(self.init_args)}


def catalogue_loss(name: str) -> Loss:
    entry = LOSSES[name]
    return Loss(name, entry.class_path, label=entry.label)


def control_of(loss: Loss) -> Loss:
    """``loss`` trained again on other seeds, at its tuned rate: the negative control."""
    return replace(
        loss, name=f"{loss.name}_control", label=f"{loss.label} (control)", control_of=loss.name
    )


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
    split and share of wrong training labels, and whether the first loss is trained again
    on other seeds as a negative control."""

    networks: tuple[Network, ...]
    losses: tuple[Loss, ...]
    budget: Budget
    val_size: int = 5_000
    tuning_seed: int = 42
    label_noise: float = 0.0  # the share of training labels made wrong in every fit
    optimizer: str = CONFIG_OPTIMIZER
    control: bool = False

    @property
    def control_seeds(self) -> tuple[int, ...]:
        """As many seeds as the study's, after its last: disjoint from them."""
        if not self.control:
            return ()
        start = max(self.budget.seeds) + 1
        return tuple(range(start, start + len(self.budget.seeds)))

    def all_losses(self) -> tuple[Loss, ...]:
        """The losses, and the control after them when there is one."""
        return (*self.losses, *((control_of(self.losses[0]),) if self.control else ()))

    def loss(self, name: str) -> Loss:
        return next(loss for loss in self.all_losses() if loss.name == name)

    def network(self, name: str) -> Network:
        return next(network for network in self.networks if network.name == name)

    def fit(self, network: Network, loss: Loss, data_dir: str, accelerator: str) -> Fit:
        """The fit of one network and loss at its full length, without its rate or seed.

        The optimiser's class follows the config: jsonargparse keeps the config's
        ``init_args`` for the same class, and for another class only those the new class
        takes, so Adam gets no SGD momentum (and its rate is the tuned one).
        """
        epochs = self.budget.epochs[network.name]
        options: dict[str, Any] = {
            "model.loss": loss.option(),
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
            configs=(str(network.config or NETWORKS[network.name].config),),
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

        >>> plan = Plan((), (), QUICK_BUDGET, label_noise=0.2, optimizer="adam")
        >>> plan.conditions()
        'Adam, 20% of the training labels wrong'
        """
        labels = f"{self.label_noise:.0%} of the training labels wrong" if self.label_noise else ""
        return ", ".join(filter(None, (OPTIMIZERS[self.optimizer].label, labels)))

    def describe(self) -> dict[str, Any]:
        """The plan as plain values: what a study folder records and is checked against."""
        return {
            "networks": [network.name for network in self.networks],
            "losses": [loss.name for loss in self.losses],
            # A loss by its class and arguments: another argument is another study.
            "loss_classes": {loss.name: loss.describe() for loss in self.losses},
            "network_configs": {n.name: n.config for n in self.networks if n.config},
            "control_seeds": list(self.control_seeds),
            "budget": {**asdict(self.budget), "seeds": list(self.budget.seeds)},
            "val_size": self.val_size,
            "tuning_seed": self.tuning_seed,
            "label_noise": self.label_noise,
            "optimizer": self.optimizer,
            "search": {
                network.name: {
                    "key": LEARNING_RATE,
                    "rates": list(self.rates(network)),
                    "round_epochs": list(round_epochs(self.budget.epochs[network.name])),
                }
                for network in self.networks
            },
        }


def make_plan(
    quick: bool,
    networks: Sequence[str | Network] | None = None,
    losses: Sequence[str | Loss] | None = None,
    n_trials: int | None = None,
    seeds: list[int] | None = None,
    epochs: int | None = None,
    val_size: int = 5_000,
    label_noise: float = 0.0,
    optimizer: str = CONFIG_OPTIMIZER,
    control: bool = False,
) -> Plan:
    """The default (or quick) plan, with the options a user gave in its place: networks
    and losses by their catalogue names or as built by :mod:`mnist_lit.study.choices`."""
    chosen = tuple(
        STUDY_NETWORKS[n] if isinstance(n, str) else n for n in networks or STUDY_NETWORKS
    )
    budget = QUICK_BUDGET if quick else DEFAULT_BUDGET
    own = {n.name: 1 if quick else n.epochs or 10 for n in chosen if n.config}
    names = [*STUDY_NETWORKS, *own]
    budget = replace(
        budget,
        n_trials=budget.n_trials if n_trials is None else n_trials,
        seeds=budget.seeds if seeds is None else tuple(seeds),
        epochs={**budget.epochs, **own} if epochs is None else dict.fromkeys(names, epochs),
    )
    if len(budget.seeds) < 2:
        raise MnistLitError("--seeds: give at least 2 seeds; a paired test needs them.")
    return Plan(
        chosen,
        tuple(catalogue_loss(x) if isinstance(x, str) else x for x in losses or STUDY_LOSSES),
        budget,
        val_size=val_size,
        label_noise=label_noise,
        optimizer=optimizer,
        control=control,
    )
