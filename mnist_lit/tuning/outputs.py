"""What ``mnist-lit tune`` leaves in its study folder: ``best.yaml``, ``trials.csv`` and
Optuna's own plots."""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mnist_lit.runs.fit import Fit, FitCLI
from mnist_lit.tuning.search import SearchSpace


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, or ``None`` while there is none."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def write_best_config(path: Path, base: Fit, trial: FrozenTrial, monitor: str) -> None:
    """A config for ``mnist-lit fit --config`` that trains the best trial again: the tuned
    config with the trial's values, resolved as the CLI resolves it."""
    best = replace(base, options={**base.options, **trial.params})
    values = ", ".join(f"{k}={v}" for k, v in trial.params.items())
    header = (
        f"# The best trial ({trial.number}) of study {path.parent.name}: {monitor} "
        f"{trial.value:.4f} with {values}.\n# Train it again: mnist-lit fit --config {path}\n"
    )
    path.write_text(header + FitCLI(best).asked)


def write_trials_csv(path: Path, study: optuna.Study, search: SearchSpace) -> None:
    """One row per trial: its values, state, objective, epochs run, time and curves."""
    keys = [p.key for p in search.params]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        header = ["number", "state", "value", *keys, "epochs", "diverged", "seconds", "worker"]
        writer.writerow([*header, "val_acc", "val_ce"])
        for trial in study.get_trials(deepcopy=False):
            attrs = trial.user_attrs
            writer.writerow(
                [
                    trial.number,
                    trial.state.name,
                    "" if trial.value is None else trial.value,
                    *(trial.params.get(k, "") for k in keys),
                    len(attrs.get("val_acc", [])),
                    attrs.get("diverged", False),
                    attrs.get("seconds", ""),
                    attrs.get("worker", ""),
                    " ".join(f"{v:.4f}" for v in attrs.get("val_acc", [])),
                    " ".join(f"{v:.4f}" for v in attrs.get("val_ce", []) if math.isfinite(v)),
                ]
            )


def write_plots(folder: Path, study: optuna.Study) -> list[Path]:
    """Optuna's optimisation history and parameter slices, as PNG (once a trial is done)."""
    if best_trial(study) is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore")
        for name, plot in (
            ("history.png", optuna_plots.plot_optimization_history),
            ("slices.png", optuna_plots.plot_slice),
        ):
            axes: Any = plot(study)
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            figure.set_size_inches(max(6.0, figure.get_size_inches()[0]), 4.0)
            figure.tight_layout()
            figure.savefig(folder / name, dpi=80)
            plt.close(figure)
            written.append(folder / name)
    return written
