"""The study folder: what each fit of the study gave, written by the study's own process
as each result arrives, and read back by the next run of the same command (the resume).
Its layout is written here and nowhere else:

```
<study-dir>/study.yaml                                   the plan, checked on every rerun
<study-dir>/tuning/<network>/<loss>/round_<k>/lr_<rate>/ result.json, config.yaml
<study-dir>/tuning/<network>/<loss>/best.yaml            the chosen rate's config
<study-dir>/runs/<network>/<loss>/seed_<s>/              result.json, config.yaml,
                                                         test_predictions.npy, best.ckpt
<study-dir>/test_labels.npy                              the 10,000 test labels, in order
<study-dir>/invocations.csv                              each invocation's wall time
```

A fit's ``result.json`` is written last, and atomically: a folder without one holds no
result, and its fit runs again.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.fit import FitResult
from mnist_lit.runs.records import differences, make_folder
from mnist_lit.study.plan import Plan

MANIFEST = "study.yaml"
RESULT = "result.json"
INVOCATIONS = "invocations.csv"


@dataclass(frozen=True)
class TuningFit:
    """A fit of the tuning: one rate of one network and loss, for one round's epochs."""

    network: str
    loss: str
    lr: float
    round: int
    epochs: int

    def __str__(self) -> str:
        return f"{self.network}, {self.loss}, lr {self.lr:.3g}, {self.epochs} epochs"


@dataclass(frozen=True)
class SeedFit:
    """A fit at the tuned rate with one seed, for the network's full epochs, tested once."""

    network: str
    loss: str
    seed: int
    lr: float

    def __str__(self) -> str:
        return f"{self.network}, {self.loss}, seed {self.seed}"


# A result is its fit and what the fit gave: its ``result.json`` holds the fields of both.
@dataclass(frozen=True)
class TuningResult(TuningFit):
    """What a tuning fit gave: its validation curve, and whether it diverged."""

    val_acc: list[float]
    val_ce: list[float]
    diverged: bool
    seconds: float

    @property
    def value(self) -> float | None:
        """The best epoch's validation accuracy; None when the fit diverged."""
        return None if self.diverged else max(self.val_acc)


@dataclass(frozen=True)
class SeedResult(SeedFit):
    """One seed of one network and loss, trained at the tuned rate and tested once."""

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


def record_of(
    fit: TuningFit | SeedFit, result: FitResult, threshold: float
) -> TuningResult | SeedResult:
    """What ``fit`` gave, as its ``result.json`` keeps it (``threshold``: its network's)."""
    run = {name: getattr(result, name) for name in ("val_acc", "diverged", "seconds")}
    if isinstance(fit, TuningFit):
        if not result.val_acc and not result.diverged:
            raise MnistLitError(f"{fit}: the fit ran no validation epoch.")
        return TuningResult(**asdict(fit), val_ce=result.val_ce, **run)
    assert result.test is not None, "a seed's fit is tested"
    metrics: dict[str, Any] = result.test.metrics  # test_acc to temperature
    return SeedResult(
        **asdict(fit),
        **metrics,
        val_acc_best=max(result.val_acc, default=float("nan")),
        best_epoch=result.best_epoch,
        epochs_to_threshold=epochs_to_reach(result.val_acc, threshold),
        threshold=threshold,
        **run,
    )


def epochs_to_reach(val_acc: list[float], threshold: float) -> int | None:
    """The first epoch (from 1) whose validation accuracy reaches ``threshold``, if any.

    >>> epochs_to_reach([0.85, 0.91, 0.93], 0.9), epochs_to_reach([0.85], 0.9)
    (2, None)
    """
    return next((epoch for epoch, acc in enumerate(val_acc, 1) if acc >= threshold), None)


class StudyFolder:
    """The files of one study (see the module's docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def tuning_dir(self, network: str, loss: str) -> Path:
        return self.root / "tuning" / network / loss

    def fit_dir(self, fit: TuningFit | SeedFit) -> Path:
        if isinstance(fit, TuningFit):
            return self.tuning_dir(fit.network, fit.loss) / f"round_{fit.round}" / f"lr_{fit.lr!r}"
        return self.root / "runs" / fit.network / fit.loss / f"seed_{fit.seed}"

    @property
    def test_labels(self) -> Path:
        return self.root / "test_labels.npy"

    def check_plan(self, plan: Plan) -> None:
        """Record the plan in a new study folder; in an old one, insist on the same plan."""
        make_folder(self.root)
        path = self.root / MANIFEST
        wanted = plan.describe()
        if path.is_file():
            stored = yaml.safe_load(path.read_text())
            if stored != wanted:
                raise MnistLitError(
                    f"--study-dir {self.root} holds a study of another configuration "
                    f"({', '.join(differences(stored, wanted))} differ). Give a new "
                    f"--study-dir, or the options it was started with (see {path})."
                )
            return
        if any(self.root.iterdir()):
            raise MnistLitError(
                f"--study-dir {self.root} is not empty and holds no {MANIFEST}: give a new or "
                "empty folder."
            )
        path.write_text(yaml.safe_dump(wanted, sort_keys=False))

    def write(self, record: TuningResult | SeedResult, result: FitResult) -> None:
        """Keep what a fit gave: its config, for a seed its test predictions and best
        checkpoint, and last, atomically, its ``result.json``."""
        folder = self.fit_dir(record)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RESULT).unlink(missing_ok=True)
        (folder / "config.yaml").write_text(result.config)
        tested = result.test
        if tested is not None:
            np.save(folder / "test_predictions.npy", tested.predictions)
            if tested.checkpoint is not None:
                (folder / "best.ckpt").write_bytes(tested.checkpoint)
            if not self.test_labels.is_file():
                np.save(self.test_labels, tested.labels)
        partial = folder / f".{RESULT}.{os.getpid()}"
        partial.write_text(json.dumps(asdict(record), indent=1))
        partial.replace(folder / RESULT)

    def read(self, network: str, loss: str) -> tuple[list[TuningResult], list[SeedResult]]:
        """Every tuning fit and every seed of ``network`` and ``loss`` written so far."""
        tuning = self.tuning_dir(network, loss).glob(f"round_*/lr_*/{RESULT}")
        seeds = (self.root / "runs" / network / loss).glob(f"seed_*/{RESULT}")
        return (
            [TuningResult(**json.loads(p.read_text())) for p in sorted(tuning)],
            [SeedResult(**json.loads(p.read_text())) for p in sorted(seeds)],
        )

    def predictions(self, result: SeedResult) -> np.ndarray:
        return np.load(self.fit_dir(result) / "test_predictions.npy")

    def write_best_config(self, best: TuningResult) -> None:
        """The chosen rate's last-round config, as ``mnist-lit fit --config`` takes it."""
        path = self.tuning_dir(best.network, best.loss) / "best.yaml"
        header = (
            f"# The rate chosen for {best.network} with {best.loss}: lr {best.lr:g}, "
            f"validation accuracy {best.value:.4f} after {best.epochs} epochs.\n"
            f"# Train it again: mnist-lit fit --config {path}\n"
        )
        path.write_text(header + (self.fit_dir(best) / "config.yaml").read_text())

    def record_invocation(self, seconds: float, workers: int, ended: bool) -> None:
        """Add this invocation's wall time to ``invocations.csv``: a study resumed after a
        stop took the sum of its invocations."""
        path = self.root / INVOCATIONS
        new = not path.is_file()
        with path.open("a", newline="") as file:
            writer = csv.writer(file)
            if new:
                writer.writerow(["started", "seconds", "workers", "host", "ended"])
            started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
            start = started.isoformat(timespec="seconds")
            writer.writerow([start, f"{seconds:.1f}", workers, socket.gethostname(), ended])

    def wall_time(self) -> str:
        """``18.5 min in 2 invocations (2 workers)``, from ``invocations.csv``."""
        with (self.root / INVOCATIONS).open() as file:
            rows = list(csv.DictReader(file))
        minutes = sum(float(r["seconds"]) for r in rows) / 60
        workers = ", ".join(dict.fromkeys(r["workers"] for r in rows))
        count = f"{len(rows)} invocation{'s' * (len(rows) != 1)}"
        return f"{minutes:.1f} min in {count} ({workers} worker{'s' * (workers != '1')})"
