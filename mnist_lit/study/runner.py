"""The study's run: this process submits the fits, and is the only writer of the study
folder.

Each fit is one task (:func:`~mnist_lit.study.cluster.fit_on_worker`), submitted as soon
as its network and loss call for it (:mod:`~mnist_lit.study.schedule`); its result, test
predictions included, comes back as the task's value and is written at once. A worker
that dies mid-fit has its task run again elsewhere by Dask's scheduler (up to
``distributed.scheduler.allowed-failures`` times); a fit that raises stops the study with
one message naming it. The same command run again skips every fit already written.

Each fit runs on one CPU thread, seeded on its own: the same fit gives the same numbers on
any worker, so the results do not depend on the number of workers.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING

from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.runs.fit import Fit, FitResult
from mnist_lit.study.folder import SeedResult, StudyFolder, TuningFit, TuningResult, record_of
from mnist_lit.study.plan import Plan
from mnist_lit.study.schedule import Control, NetworkAndLoss, StudyFit

if TYPE_CHECKING:
    from mnist_lit.study.cluster import Engine


@dataclasses.dataclass(frozen=True)
class StudySetup:
    """What every fit of the study shares: the plan, and where the data is."""

    plan: Plan
    data_dir: str
    accelerator: str

    def fit_of(self, wanted: StudyFit) -> Fit:
        network = self.plan.network(wanted.network)
        base = self.plan.fit(network, self.plan.loss(wanted.loss), self.data_dir, self.accelerator)
        if isinstance(wanted, TuningFit):
            seed = self.plan.tuning_seed
            return dataclasses.replace(base, lr=wanted.lr, epochs=wanted.epochs, seed=seed)
        return dataclasses.replace(base, lr=wanted.lr, seed=wanted.seed, test=True)


def duration(seconds: float) -> str:
    """``4m10s``, ``1h02m``, ``12s``.

    >>> duration(250), duration(3720), duration(12.4)
    ('4m10s', '1h02m', '12s')
    """
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """``runs 12/96 finished, 2 running, 4m10s elapsed, about 28m left``. The estimate
    counts epochs, not fits: the last rounds and the seeds train far longer than round 0."""

    def __init__(self, pairs: list[NetworkAndLoss], slots: int) -> None:
        self.pairs = pairs
        self.slots = slots
        self.start = time.monotonic()
        self.first_epochs = sum(epochs for epochs, written in self._fits() if written)

    def _fits(self) -> list[tuple[int, bool]]:
        return [fit for pair in self.pairs for fit in pair.planned()]

    def show(self, running: int) -> None:
        fits = self._fits()
        finished = sum(written for _, written in fits)
        done = sum(epochs for epochs, written in fits if written)
        elapsed = time.monotonic() - self.start
        text = f"runs {finished}/{len(fits)} finished, {min(running, self.slots)} running, "
        text += f"{duration(elapsed)} elapsed"
        pace = done - self.first_epochs
        if pace and finished < len(fits):
            left = sum(epochs for epochs, _ in fits) - done
            text += f", about {duration(elapsed / pace * left)} left"
        print(text, flush=True)


def said(record: TuningResult | SeedResult) -> str:
    """One line on what a fit gave."""
    if isinstance(record, TuningResult):
        if record.value is None:
            return f"{record}: diverged"
        return f"{record}: val acc {record.value:.4f} ({record.seconds:.0f} s)"
    note = ", diverged" if record.diverged else ""
    return (
        f"{record}: test acc {record.test_acc:.4f}, best epoch {record.best_epoch} "
        f"({record.seconds:.0f} s{note})"
    )


def run_study(setup: StudySetup, folder: StudyFolder, engine: Engine) -> list[NetworkAndLoss]:
    """Run every fit the study still needs on ``engine``, writing each result as it
    arrives; return the pairs, all done."""
    plan = setup.plan
    pairs = study_pairs(plan, folder)
    progress = Progress(pairs, engine.slots)
    submitted: dict[Future[FitResult], tuple[NetworkAndLoss, StudyFit]] = {}

    def submit(pair: NetworkAndLoss) -> None:
        asked = {fit for _, fit in submitted.values()}
        for wanted in pair.to_run():
            if wanted not in asked:
                submitted[engine.submit(setup.fit_of(wanted))] = (pair, wanted)

    for pair in pairs:
        submit(pair)
    progress.show(len(submitted))
    while submitted:
        for future in engine.finished(set(submitted)):
            pair, wanted = submitted.pop(future)
            result = _fit_result(future, wanted)
            record = record_of(wanted, result, plan.network(pair.network).threshold)
            folder.write(record, result)
            pair.keep(record)
            print(said(record))
            for same in pairs:  # the control waits for its loss's tuning
                if same.network == pair.network:
                    submit(same)
            progress.show(len(submitted))
    return pairs


def study_pairs(plan: Plan, folder: StudyFolder) -> list[NetworkAndLoss]:
    """Every network and loss of ``plan``, each network's control after its losses."""
    pairs: list[NetworkAndLoss] = []
    for network in plan.networks:
        mine = [NetworkAndLoss(plan, network, loss.name, folder) for loss in plan.losses]
        pairs += mine
        if plan.control:
            pairs.append(Control(plan, network, mine[0], folder))
    return pairs


def _fit_result(future: Future[FitResult], wanted: StudyFit) -> FitResult:
    try:
        result = future.result()
    except MnistLitError as error:
        raise MnistLitError(f"{wanted}: {error} Every result written before is kept.") from None
    except Exception as error:
        raise MnistLitError(
            f"the fit {wanted} failed ({type(error).__name__}: {first_line(error)}). Every "
            "result written before is kept: run the same command again to continue."
        ) from error
    return result
