"""The study's fits, run by one or several worker processes (``mnist-lit study --workers N``).

A *unit* is one fit: a tuning trial (one rate of the grid, for one network and loss) or a
seed run (one seed at the tuned rate). Every unit is an Optuna trial, enqueued with fixed
values before any worker starts: the tuning trials in each network and loss's tuning study
(``tuning/<network>/<loss>/optuna.db``), the seed runs in the study ``seeds`` of
``seeds.db``. So the workers share nothing but the study folder and its storages:

- **Claiming.** A worker takes a waiting trial by turning it to running in the storage,
  under an exclusive lock on ``claims.lock`` (SQLite compares and sets in two statements,
  so two workers could otherwise both take the same trial). A tuning unit is done when
  its trial has finished (complete, or diverged); a seed run when its ``result.json`` is
  written. Tuning trials go first; a network and loss's seed runs wait until every rate of
  its grid has finished, while the other pairs' units keep the workers busy.
- **A killed run is done again.** A running trial records a heartbeat every
  ``--heartbeat`` seconds; one silent for twice as long is failed by the next worker that
  looks and enqueued again with the same values (Optuna's ``RetryHeartbeatStaleTrialCallback``).
  A worker stopped by a signal fails its trial at once; a unit failed and not enqueued
  again is enqueued by the next start of the study. A fit starts from an empty folder.
- **The same numbers for any number of workers.** Each fit is seeded on its own (the
  tuning seed for trials, the run's seed for seeds), runs on one CPU thread whatever the
  number of workers, and its result depends on nothing another fit did. The tuning prunes
  nothing: a median pruner stops a trial that falls behind the trials finished *so far*,
  which depends on which worker finished first. Every rate of the grid is trained to the
  end (a rate whose loss becomes non-finite stops there, diverged), and the chosen rate is
  the best validation accuracy, the smaller rate on a tie.
- **The parent** enqueues the units, starts the workers (``mnist-lit study ... --worker-of
  PID``, each with ``OMP_NUM_THREADS=1``), prints a progress line, and ends in one message
  when a worker fails, stopping the others. A worker whose parent is gone stops itself.
  With ``--workers 1`` the parent is the worker.

A worker keeps MNIST's files in memory across its fits
(:func:`~mnist_lit.data.raw_files.kept_in_memory`); each fit still draws its own split.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy
import torch
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from mnist_lit.catalog import LEARNING_RATE
from mnist_lit.data.raw_files import kept_in_memory
from mnist_lit.errors import MnistLitError, first_line
from mnist_lit.quiet import RUN_NOTICES, quiet
from mnist_lit.runs.records import differences, make_folder
from mnist_lit.study import halving
from mnist_lit.study.plan import STUDY_NETWORKS, Network, Plan
from mnist_lit.study.runner import SeedResult, check_manifest, seed_run, tune_spec
from mnist_lit.tuning.engine import (
    FINISHED,
    Objective,
    check_configuration,
    heartbeat_quiet,
    open_study,
    redact,
    storage_at,
    with_driver,
    worker_name,
)
from mnist_lit.tuning.outputs import write_best_config, write_plots, write_trials_csv

SEEDS_STUDY = "seeds"
LOCK = "claims.lock"
WORKER_LOGS = "workers"
# How often an idle worker looks for work, and the parent at the workers.
POLL_SECONDS = 1.0
# A progress line when something changed, and at least this often.
PROGRESS_SECONDS = 60.0
_PENDING = (TrialState.WAITING, TrialState.RUNNING)
_QUIET = {"optuna": logging.WARNING, **RUN_NOTICES}


@dataclass(frozen=True)
class Where:
    """What every worker is given: the plan, where the data and the study folder are, and
    the database the workers share: SQLite files in the study folder, or ``storage`` (a
    database URL that workers on several machines reach), where the study is ``name``."""

    plan: Plan
    study_dir: Path
    data_dir: str
    accelerator: str
    heartbeat: int = 30
    storage: str | None = None
    name: str | None = None

    def seeds_url(self) -> str:
        return self.storage or f"sqlite:///{(self.study_dir / 'seeds.db').resolve()}"

    def seeds_name(self) -> str:
        return f"{self.name}/{SEEDS_STUDY}" if self.storage else SEEDS_STUDY

    def tuning_name(self, network: Network, loss: str) -> str | None:
        return f"{self.name}/{network.name}/{loss}" if self.storage else None


def values(trial: FrozenTrial) -> dict[str, Any]:
    """The values a unit's trial was enqueued with (and those it suggested)."""
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def _load(name: str, storage: RDBStorage) -> optuna.Study:
    # A worker only runs trials enqueued with their values: it never samples or prunes.
    return optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.NopPruner(),
    )


class Pair:
    """One network and loss: its tuning study in rounds (:mod:`~mnist_lit.study.halving`),
    and its rate once the rounds have finished."""

    def __init__(self, where: Where, network: Network, loss: str) -> None:
        self.network = network
        self.loss = loss
        self.spec = tune_spec(
            where.plan,
            network,
            loss,
            where.study_dir,
            where.data_dir,
            where.accelerator,
            where.heartbeat,
            where.storage,
            where.tuning_name(network, loss),
        )
        self.key = self.spec.search.params[0].key
        self.grid = where.plan.rates(network)
        self.extensions = where.plan.budget.extensions
        self.round_epochs = halving.round_epochs(where.plan.budget.epochs[network.name])
        # The options every trial starts from, as the tuning engine builds them (the study
        # gives the seed, so none is added).
        self.base_args = list(self.spec.fit_args)
        make_folder(self.spec.study_dir)
        self.storage = storage_at(self.spec.storage_url(), where.heartbeat)
        self._study: optuna.Study | None = None
        self.best: float | None = None

    def __str__(self) -> str:
        return f"{self.network.name}, {self.loss}"

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self._study = _load(self.spec.name(), self.storage)
        return self._study

    def unit(self, trial: FrozenTrial) -> halving.Unit:
        return values(trial)[self.key], trial.user_attrs.get("round", 0)

    def finished(self) -> dict[halving.Unit, float | None]:
        """Each finished unit's validation accuracy; None where it diverged."""
        return {
            self.unit(t): t.value if t.state == TrialState.COMPLETE else None
            for t in self.study.get_trials(deepcopy=False, states=FINISHED)
        }

    def wanted(
        self, finished: dict[halving.Unit, float | None] | None = None
    ) -> list[halving.Unit]:
        """The units that the finished ones (read from the study unless given) call for."""
        done = self.finished() if finished is None else finished
        return halving.wanted(self.grid, len(self.round_epochs), done, self.extensions)

    def top_up(self, retry_failed: bool) -> None:
        """Enqueue each unit that the finished ones call for and that has no trial yet (or,
        with ``retry_failed``, none waiting, running or finished). Under :meth:`Board.lock`."""
        states = (*_PENDING, *FINISHED) if retry_failed else None
        have = {self.unit(t) for t in self.study.get_trials(deepcopy=False, states=states)}
        for rate, k in self.wanted():
            if (rate, k) not in have:
                attrs = {"round": k, "epochs": self.round_epochs[k]}
                self.study.enqueue_trial({self.key: rate}, user_attrs=attrs)

    def expected(self, units: list[halving.Unit]) -> int:
        """Units in all: ``units``, those called for so far, and the sizes of the rounds to
        come."""
        sizes = halving.round_sizes(len(self.grid), len(self.round_epochs))
        return len(units) + sum(sizes[1 + max(k for _, k in units) :])

    def rate(self) -> float | None:
        """The tuned rate, once every round has finished."""
        if self.best is None:
            try:
                self.best = halving.chosen(
                    self.grid, len(self.round_epochs), self.finished(), self.extensions
                )
            except ValueError:
                raise MnistLitError(
                    f"no finalist of {self.spec.study_dir} completed: every one diverged. "
                    "Widen the search towards smaller rates."
                ) from None
        return self.best

    def best_trial(self) -> FrozenTrial:
        """The last round's trial of the tuned rate."""
        last = len(self.round_epochs) - 1
        return next(
            t
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if self.unit(t) == (self.rate(), last)
        )


@dataclass
class Unit:
    """A claimed trial: a tuning trial (``seed`` None) or a seed run of ``pair``."""

    pair: Pair
    study: optuna.Study
    storage: RDBStorage
    trial_id: int
    seed: int | None = None


class Board:
    """Every unit of the study as its storages hold them: waiting, running or done."""

    def __init__(self, where: Where) -> None:
        self.where = where
        plan = where.plan
        self.pairs = [
            Pair(where, STUDY_NETWORKS[name], loss)
            for name in plan.networks
            for loss in plan.losses
        ]
        self.seeds = plan.budget.seeds
        self.seed_storage = storage_at(where.seeds_url(), where.heartbeat)
        self._seed_study: optuna.Study | None = None
        self.shared_lock = SharedLock.for_study(where)

    @property
    def seed_study(self) -> optuna.Study:
        if self._seed_study is None:
            self._seed_study = _load(self.where.seeds_name(), self.seed_storage)
        return self._seed_study

    def pair(self, network: str, loss: str) -> Pair:
        return next(p for p in self.pairs if (p.network.name, p.loss) == (network, loss))

    def result_path(self, pair: Pair, seed: int) -> Path:
        return self.where.study_dir / "runs" / pair.network.name / pair.loss / f"seed_{seed}"

    def done_seeds(self) -> set[tuple[str, str, int]]:
        """The seed runs done, by any worker: their trial is complete."""
        trials = self.seed_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return {_seed_unit(t) for t in trials}

    def seed_done(self, pair: Pair, seed: int, done: set[tuple[str, str, int]]) -> bool:
        return (pair.network.name, pair.loss, seed) in done

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive among every process of this study, for claiming and enqueuing."""
        with self.shared_lock.held():
            yield

    def enqueue(self) -> None:
        """Create the storages and enqueue every unit that is neither done, waiting nor
        running (all of them in a new study; a failed one in an old). Under :meth:`lock`."""
        for pair in self.pairs:
            _, configuration = check_configuration(pair.spec, check_values=False)
            open_study(pair.spec, configuration)  # checks what it tunes
            with heartbeat_quiet():
                fail_stale_trials(pair.study)
            pair.top_up(retry_failed=True)
        seeds = optuna.create_study(
            storage=self.seed_storage,
            study_name=self.where.seeds_name(),
            direction="maximize",
            load_if_exists=True,
        )
        self.check_plan(seeds)
        with heartbeat_quiet():
            fail_stale_trials(seeds)
        pending = {_seed_unit(t) for t in seeds.get_trials(deepcopy=False, states=_PENDING)}
        done = self.done_seeds()
        for pair in self.pairs:
            for seed in self.seeds:
                if (pair.network.name, pair.loss, seed) in pending | done:
                    continue
                seeds.enqueue_trial({"network": pair.network.name, "loss": pair.loss, "seed": seed})

    def check_plan(self, seeds: optuna.Study) -> None:
        """Record the plan in a shared database's study; there, insist on the same plan
        (each machine's own folder checks it too)."""
        if not self.where.storage:
            return
        wanted = self.where.plan.describe()
        stored = seeds.user_attrs.get("plan")
        if stored is None:
            seeds.set_user_attr("plan", wanted)
        elif stored != wanted:
            raise MnistLitError(
                f"study {self.where.name} in {redact(self.where.storage)} is a study of another "
                f"configuration ({', '.join(differences(stored, wanted))} differ). Give "
                "another --study-name, or the options it was started with."
            )

    def claim(self) -> Unit | None:
        """Take a waiting unit that can run now, or None. Under :meth:`lock`."""
        with heartbeat_quiet():
            for pair in self.pairs:
                fail_stale_trials(pair.study)
            fail_stale_trials(self.seed_study)
        for pair in self.pairs:
            pair.top_up(retry_failed=False)
            for trial in pair.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                if _take(pair.storage, trial):
                    return Unit(pair, pair.study, pair.storage, trial._trial_id)
        ready: dict[str, bool] = {}
        for trial in self.seed_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            fixed = values(trial)
            pair = self.pair(fixed["network"], fixed["loss"])
            if str(pair) not in ready:
                ready[str(pair)] = pair.rate() is not None
            if ready[str(pair)] and _take(self.seed_storage, trial):
                return Unit(
                    pair, self.seed_study, self.seed_storage, trial._trial_id, fixed["seed"]
                )
        return None

    def counts(self) -> tuple[int, int, int]:
        """Units finished, running, and in all (the rounds to come as their sizes)."""
        finished = running = total = 0
        seeds_done = self.done_seeds()
        for pair in self.pairs:
            done = pair.finished()
            units = pair.wanted(done)
            finished += sum(unit in done for unit in units)
            running += len(pair.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            finished += sum(self.seed_done(pair, seed, seeds_done) for seed in self.seeds)
            total += pair.expected(units) + len(self.seeds)
        running += len(self.seed_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        return finished, running, total

    def all_done(self) -> bool:
        done = self.done_seeds()
        return all(
            pair.rate() is not None and all(self.seed_done(pair, s, done) for s in self.seeds)
            for pair in self.pairs
        )

    def check_lost(self) -> None:
        """Fail with one message if a unit is neither done, waiting nor running: its run
        failed (and said why), or was killed more often than it is retried."""
        for pair in self.pairs:
            trials = pair.study.get_trials(deepcopy=False)
            alive = {pair.unit(t) for t in trials if t.state in (*_PENDING, *FINISHED)}
            for rate, k in pair.wanted():
                if (rate, k) not in alive:
                    failed = [t for t in trials if pair.unit(t) == (rate, k)]
                    _lost(f"{pair}, {LEARNING_RATE} {rate:.3g} (round {k})", failed)
        trials = self.seed_study.get_trials(deepcopy=False)
        done = self.done_seeds()
        for pair in self.pairs:
            for seed in self.seeds:
                mine = [t for t in trials if _seed_unit(t) == (pair.network.name, pair.loss, seed)]
                if self.seed_done(pair, seed, done) or any(t.state in _PENDING for t in mine):
                    continue
                _lost(f"{pair}, seed {seed}", mine)

    def run(self, unit: Unit) -> str:
        """Run a claimed unit, with a heartbeat; return a line saying what it gave."""
        trial = optuna.Trial(unit.study, unit.trial_id)
        pair, where = unit.pair, self.where
        unit.storage.set_trial_user_attr(unit.trial_id, "worker", worker_name())
        start = time.monotonic()
        with beating(unit.storage, unit.trial_id, where.heartbeat), failing(unit):
            if unit.seed is None:
                frozen = unit.storage.get_trial(unit.trial_id)
                rate, epochs = values(frozen)[pair.key], frozen.user_attrs["epochs"]
                what = f"{pair}, {LEARNING_RATE} {rate:.3g}, {epochs} epochs"
                try:
                    args = [*pair.base_args, f"--trainer.max_epochs={epochs}"]
                    value = Objective(pair.spec, args)(trial)
                except optuna.TrialPruned:
                    unit.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
                    return f"{what}: diverged"
                # Finished already only if another worker took this run for dead: it runs
                # again, to the same result.
                unit.study.tell(trial, value, skip_if_finished=True)
                seconds = time.monotonic() - start
                return f"{what}: val acc {value:.4f} ({seconds:.0f} s)"
            lr = pair.rate()
            assert lr is not None
            plan, study_dir = where.plan, where.study_dir
            result = seed_run(
                plan,
                pair.network,
                pair.loss,
                lr,
                unit.seed,
                study_dir,
                where.data_dir,
                where.accelerator,
            )
            self.share(unit, result)
            unit.study.tell(trial, result.test_acc, skip_if_finished=True)
        note = ", diverged" if result.diverged else ""
        return (
            f"{pair}, seed {unit.seed}: test acc {result.test_acc:.4f}, best epoch "
            f"{result.best_epoch} ({result.seconds:.0f} s{note})"
        )

    def share(self, unit: Unit, result: SeedResult) -> None:
        """Keep a seed run's result and test predictions in its trial, and the test labels
        in the seeds' study, for the machines whose folders lack them."""
        folder = self.result_path(unit.pair, result.seed)
        predictions = np.load(folder / "test_predictions.npy")
        unit.storage.set_trial_user_attr(unit.trial_id, "result", asdict(result))
        unit.storage.set_trial_user_attr(unit.trial_id, "predictions", _digits(predictions))
        if "test_labels" not in self.seed_study.user_attrs:
            labels = np.load(self.where.study_dir / "test_labels.npy")
            self.seed_study.set_user_attr("test_labels", _digits(labels))

    def fetch(self) -> None:
        """Write into this machine's folder each seed run's ``result.json`` and test
        predictions that another machine's worker made, and the test labels."""
        labels = self.where.study_dir / "test_labels.npy"
        if not labels.is_file():
            np.save(labels, _from_digits(self.seed_study.user_attrs["test_labels"]))
        for trial in self.seed_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            network, loss, seed = _seed_unit(trial)
            folder = self.result_path(self.pair(network, loss), seed)
            if not (folder / "result.json").is_file():
                folder.mkdir(parents=True, exist_ok=True)
                np.save(
                    folder / "test_predictions.npy", _from_digits(trial.user_attrs["predictions"])
                )
                (folder / "result.json").write_text(
                    json.dumps(trial.user_attrs["result"], indent=1)
                )

    def finish(self) -> list[SeedResult]:
        """Write each tuning's outputs (``trials.csv``, ``best.yaml``, plots); return every
        seed's result, in the plan's order."""
        self.fetch()
        results = []
        for pair in self.pairs:
            rate = pair.rate()
            assert rate is not None
            folder, spec = pair.spec.study_dir, pair.spec
            write_trials_csv(folder / "trials.csv", pair.study, spec.search, ("round",))
            write_plots(folder, pair.study)
            write_best_config(
                folder / "best.yaml", pair.base_args, pair.best_trial(), spec.search, spec.monitor
            )
            for seed in self.seeds:
                where = self.where
                results.append(
                    seed_run(
                        where.plan,
                        pair.network,
                        pair.loss,
                        rate,
                        seed,
                        where.study_dir,
                        where.data_dir,
                        where.accelerator,
                    )
                )
        return results


def _seed_unit(trial: FrozenTrial) -> tuple[str, str, int]:
    fixed = values(trial)
    return fixed["network"], fixed["loss"], fixed["seed"]


def _digits(labels: np.ndarray) -> str:
    """Class labels 0-9 as a string of digits, for a trial's attributes.

    >>> _digits(np.array([3, 0, 9], dtype=np.uint8)), _from_digits("309").tolist()
    ('309', [3, 0, 9])
    """
    return "".join(map(str, labels.tolist()))


def _from_digits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8) - ord("0")


class SharedLock:
    """One lock for every process of a study: a file lock beside its SQLite database (or
    in its folder), or a PostgreSQL advisory lock for workers on several machines."""

    def __init__(self, file: Path | None = None, url: str | None = None, key: int = 0) -> None:
        self.file, self.url, self.key = file, url, key
        self._engine: Any = None

    @classmethod
    def for_study(cls, where: Where) -> SharedLock:
        if where.storage is None:
            return cls(file=where.study_dir / LOCK)
        url = make_url(with_driver(where.storage))
        if url.get_backend_name() == "sqlite" and url.database:
            return cls(file=Path(url.database).with_suffix(".lock"))
        if url.get_backend_name() == "postgresql":
            digest = hashlib.sha256(f"mnist-lit study {where.name}".encode()).digest()
            return cls(
                url=with_driver(where.storage), key=int.from_bytes(digest[:8], "big", signed=True)
            )
        raise MnistLitError(
            f"--storage {redact(where.storage)}: the study's workers share a PostgreSQL "
            "database (postgresql://user:password@host/database) or a SQLite file."
        )

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self.file is not None:
            with open(self.file, "a") as file:
                fcntl.flock(file, fcntl.LOCK_EX)
                yield  # released when the file closes
            return
        if self._engine is None:
            assert self.url is not None
            self._engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
        # Released when the connection closes, also when this process dies.
        with self._engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
            try:
                yield
            finally:
                connection.execute(
                    sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}
                )


def _take(storage: RDBStorage, trial: FrozenTrial) -> bool:
    """Turn a waiting trial to running, with a first heartbeat; False if another worker
    took it first."""
    try:
        taken = storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    if taken:
        storage.record_heartbeat(trial._trial_id)
    return taken


def _lost(unit: str, trials: Sequence[FrozenTrial]) -> None:
    last = max(trials, key=lambda t: t.number, default=None)
    why = last.user_attrs.get("error") if last is not None else None
    raise MnistLitError(
        f"{unit} failed ({why or 'its worker was killed several times'}); the other runs "
        "are kept: run the same command again to continue."
    )


@contextlib.contextmanager
def beating(storage: RDBStorage, trial_id: int, every: float) -> Iterator[None]:
    """Record the trial's heartbeat every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            with contextlib.suppress(Exception):  # a busy database: the next beat will do
                storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def failing(unit: Unit) -> Iterator[None]:
    """A unit whose run raises (or whose worker is stopped) is failed at once, with why."""
    try:
        yield
    except BaseException as error:
        why = (
            "its worker was stopped" if isinstance(error, (KeyboardInterrupt, SystemExit)) else None
        )
        with contextlib.suppress(Exception):
            unit.storage.set_trial_user_attr(unit.trial_id, "error", why or first_line(error))
            unit.storage.set_trial_state_values(unit.trial_id, state=TrialState.FAIL)
        raise


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One CPU thread for every fit, with one worker or many: a thread count changes how
    sums are split, and so the last digits of a result."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def work(board: Board, done: Callable[[str], None] = print) -> None:
    """Claim and run units until every unit of the study is done; ``done`` is told of each."""
    with kept_in_memory(), quiet(_QUIET), one_thread():
        while True:
            with board.lock():
                unit = board.claim()
                if unit is None:
                    if board.all_done():
                        return
                    board.check_lost()
            if unit is None:
                time.sleep(POLL_SECONDS)
                continue
            done(board.run(unit))


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
    """``runs 12/96 finished, 3 running, 4m10s elapsed, about 28m left``: the tuning trials
    and seed runs; the estimate from the pace of the runs finished since the start."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.start = time.monotonic()
        self.first: int | None = None
        self.shown: tuple[int, int] | None = None
        self.shown_at = 0.0
        self.counts = (0, 0)

    def line(self) -> str:
        finished, running, total = self.board.counts()
        if self.first is None:
            self.first = finished
        elapsed = time.monotonic() - self.start
        text = f"runs {finished}/{total} finished, {running} running, {duration(elapsed)} elapsed"
        pace = finished - self.first
        if pace and finished < total:
            text += f", about {duration(elapsed / pace * (total - finished))} left"
        self.counts = (finished, running)
        return text

    def show(self) -> None:
        """Print the line if the counts changed, or a while after the last one."""
        text = self.line()
        if self.counts != self.shown or time.monotonic() - self.shown_at > PROGRESS_SECONDS:
            print(text, flush=True)
            self.shown, self.shown_at = self.counts, time.monotonic()


def run_study(where: Where, workers: int, argv: Sequence[str]) -> list[SeedResult]:
    """Enqueue every unit, run them in ``workers`` processes (this one when 1), and return
    every seed's result. ``argv``: this ``mnist-lit study``'s options, given to each worker."""
    check_manifest(where.study_dir, where.plan)
    board = Board(where)
    with board.lock(), quiet(_QUIET):
        board.enqueue()
    progress = Progress(board)
    progress.show()
    if workers == 1:

        def done(line: str) -> None:
            print(line, flush=True)
            progress.show()

        work(board, done)
    else:
        with started(where.study_dir / WORKER_LOGS, workers, argv) as processes:
            watch(processes, progress)
    progress.show()
    return board.finish()


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def why(self) -> str:
        """What a stopped worker said last: its one message, or its traceback's end."""
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line]
        said = next((line for line in reversed(lines) if "error: " in line), None)
        code = self.process.returncode
        if said is None and code is not None and code < 0:
            said = f"killed by {signal.Signals(-code).name}"
        return (said or (lines[-1] if lines else f"exit status {code}")).removeprefix(
            "mnist-lit: error: "
        )


@contextlib.contextmanager
def started(logs: Path, count: int, argv: Sequence[str]) -> Iterator[list[Worker]]:
    """``count`` workers running this study, each logging to ``logs/worker_<i>.log``;
    those still running when the block ends are stopped (and their runs failed, so that the
    next start does them again)."""
    logs.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "mnist_lit", "study", *argv, "--worker-of", str(os.getpid())]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    workers: list[Worker] = []
    try:
        for index in range(count):
            log = logs / f"worker_{index}.log"
            with log.open("wb") as out:
                # Its own session: Ctrl-C reaches the parent, which stops the workers.
                process = subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            workers.append(Worker(process, log))
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        deadline = time.monotonic() + 30
        for worker in workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def watch(workers: list[Worker], progress: Progress) -> None:
    """Print progress until every worker has ended; one message if one of them failed."""
    while True:
        progress.show()
        codes = [w.process.poll() for w in workers]
        for index, (worker, code) in enumerate(zip(workers, codes, strict=True)):
            if code not in (None, 0):
                raise MnistLitError(f"worker {index} stopped: {worker.why()} (log: {worker.log})")
        if all(code == 0 for code in codes):
            return
        time.sleep(POLL_SECONDS)


def be_worker(where: Where, parent: int) -> None:
    """A worker process of ``mnist-lit study --workers N``: run units until the study is
    done; stop (failing the run at hand) when stopped by a signal or when ``parent`` ends."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, name="parent-watch", daemon=True).start()
    work(Board(where))
