"""What ``mnist-lit tune`` is asked to do, in one value (no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnist_lit.tuning.search import SearchSpace

# What a trial maximises or minimises: the best epoch's validation accuracy or cross-entropy.
OBJECTIVES = {"acc": ("val/acc", "maximize"), "ce": ("val/ce", "minimize")}


@dataclass(frozen=True)
class TuneSpec:
    configs: tuple[str, ...]
    search: SearchSpace
    study_dir: Path
    n_trials: int
    fit_args: tuple[str, ...] = ()
    storage: str | None = None
    study_name: str | None = None
    timeout: float | None = None
    objective: str = "acc"
    seed: int | None = None
    pruner: str = "median"
    heartbeat: int = 30

    @property
    def monitor(self) -> str:
        return OBJECTIVES[self.objective][0]

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective][1]

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.study_dir / 'optuna.db').resolve()}"
