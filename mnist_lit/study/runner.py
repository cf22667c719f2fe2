"""The study's units of work: for each network and loss, one tuning trial per rate of the
grid on the validation split, then one run per seed at the chosen rate, evaluated once on the
test set, its probabilities raw and temperature-scaled (the temperature fitted on the
validation split). :mod:`~mnist_lit.study.workers` hands them to one or several worker
processes.

Everything lands in the study folder and is looked for there first, so a rerun continues
where a killed one stopped: the tuning through Optuna's storage, each seed by its
``result.json``.

```
<study-dir>/study.yaml                          the plan, checked on every rerun
<study-dir>/tuning/<network>/<loss>/            a `mnist-lit tune` study folder
<study-dir>/runs/<network>/<loss>/seed_<s>/     metrics.csv, checkpoints, result.json,
                                                test_predictions.npy
<study-dir>/seeds.db                            which seed runs are waiting, running, done
<study-dir>/test_labels.npy                     the 10,000 test labels, in order
```
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from mnist_lit.catalog import LEARNING_RATE
from mnist_lit.errors import MnistLitError
from mnist_lit.runs.evaluation import calibrate, evaluate
from mnist_lit.runs.fit import ValidationCurve, fit_run, load_best
from mnist_lit.runs.records import differences, make_folder
from mnist_lit.study.plan import Network, Plan
from mnist_lit.tuning.search import Param, SearchSpace
from mnist_lit.tuning.spec import TuneSpec

MANIFEST = "study.yaml"


@dataclass
class SeedResult:
    """One seed of one network and loss, trained at the tuned rate and tested once."""

    network: str
    loss: str
    seed: int
    lr: float
    test_acc: float
    test_ce: float
    test_ece: float
    test_brier: float
    test_ce_scaled: float  # the probability metrics after temperature scaling
    test_ece_scaled: float
    test_brier_scaled: float
    temperature: float  # fitted on the validation split
    val_acc_best: float
    best_epoch: int
    epochs_to_threshold: int | None
    threshold: float
    val_acc: list[float]
    diverged: bool
    seconds: float


def check_manifest(study_dir: Path, plan: Plan) -> None:
    """Record the plan in a new study folder; in an old one, insist on the same plan."""
    make_folder(study_dir)
    path = study_dir / MANIFEST
    wanted = plan.describe()
    if path.is_file():
        stored = yaml.safe_load(path.read_text())
        if stored != wanted:
            raise MnistLitError(
                f"--study-dir {study_dir} holds a study of another configuration "
                f"({', '.join(differences(stored, wanted))} differ). Give a new --study-dir, "
                f"or the options it was started with (see {path})."
            )
        return
    if any(study_dir.iterdir()):
        raise MnistLitError(
            f"--study-dir {study_dir} is not empty and holds no {MANIFEST}: give a new or "
            "empty folder."
        )
    path.write_text(yaml.safe_dump(wanted, sort_keys=False))


def tune_spec(
    plan: Plan,
    network: Network,
    loss: str,
    study_dir: Path,
    data_dir: str,
    accelerator: str,
    heartbeat: int = 30,
    storage: str | None = None,
    study_name: str | None = None,
) -> TuneSpec:
    """The `mnist-lit tune` of one network and loss: its learning rate over the same grid
    for every loss (and the rates past its edges), seeded so that the study can be run
    again. Its trials are the rounds of :mod:`~mnist_lit.study.halving`; Optuna prunes
    none (its pruners' verdicts would depend on which trials happened to finish first,
    hence on the number of workers); a rate whose loss becomes non-finite stops there."""
    return TuneSpec(
        configs=(),
        search=SearchSpace("study", (Param(LEARNING_RATE, choices=plan.candidates(network)),)),
        study_dir=study_dir / "tuning" / network.name / loss,
        n_trials=plan.budget.n_trials,
        fit_args=(
            *plan.fit_args(network, loss, data_dir, accelerator),
            f"--seed_everything={plan.tuning_seed}",
            f"--data.seed={plan.tuning_seed}",
        ),
        seed=plan.tuning_seed,
        pruner="none",
        heartbeat=heartbeat,
        storage=storage,
        study_name=study_name,
    )


def seed_run(
    plan: Plan,
    network: Network,
    loss: str,
    lr: float,
    seed: int,
    study_dir: Path,
    data_dir: str,
    accelerator: str,
) -> SeedResult:
    """Train one seed at the tuned rate (or read its result from an earlier run)."""
    run_dir = study_dir / "runs" / network.name / loss / f"seed_{seed}"
    done = run_dir / "result.json"
    if done.is_file():
        return SeedResult(**json.loads(done.read_text()))
    args = [
        *plan.fit_args(network, loss, data_dir, accelerator),
        f"--{LEARNING_RATE}={lr}",
        f"--seed_everything={seed}",
        f"--data.seed={seed}",  # the split and the order of the batches vary too
    ]
    curve = ValidationCurve()
    start = time.monotonic()
    run = fit_run(args, run_dir, [curve], checkpoints=True)
    cli = run.cli
    model = load_best(cli)
    tested = evaluate(model, cli.datamodule, "test", calibrate(model, cli.datamodule, "val"))
    np.save(run_dir / "test_predictions.npy", tested.predictions.numpy().astype(np.uint8))
    labels_path = study_dir / "test_labels.npy"
    if not labels_path.is_file():
        np.save(labels_path, cli.datamodule.splits["test"][1].cpu().numpy().astype(np.uint8))
    result = SeedResult(
        network=network.name,
        loss=loss,
        seed=seed,
        lr=lr,
        **tested.metrics,
        val_acc_best=max(curve.acc, default=float("nan")),
        best_epoch=1 + int(np.argmax(curve.acc)) if curve.acc else 0,
        epochs_to_threshold=epochs_to_reach(curve.acc, network.threshold),
        threshold=network.threshold,
        val_acc=curve.acc,
        diverged=run.diverged is not None,
        seconds=round(time.monotonic() - start, 1),
    )
    done.write_text(json.dumps(asdict(result), indent=1))
    return result


def epochs_to_reach(val_acc: list[float], threshold: float) -> int | None:
    """The first epoch (from 1) whose validation accuracy reaches ``threshold``, if any.

    >>> epochs_to_reach([0.85, 0.91, 0.93], 0.9), epochs_to_reach([0.85], 0.9)
    (2, None)
    """
    return next((epoch for epoch, acc in enumerate(val_acc, 1) if acc >= threshold), None)
