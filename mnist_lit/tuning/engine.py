"""The tuning engine: an Optuna study whose trials are normal fits of a config.

Optuna samples, prunes, stores every trial (SQLite by default, any database URL it
supports otherwise) and runs again the trials whose process died. This module adds: a
trial is a fit (:func:`~mnist_lit.runs.fit.fit`) writing into the study folder, and a
study remembers which configuration it tunes, so that it is never continued with another.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import optuna
from jsonargparse import Namespace
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.runs.fit import Fit, FitCLI, ValidationCurve, fit
from mnist_lit.runs.records import differences, make_folder
from mnist_lit.tuning.spec import TuneSpec

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# The trials that count towards --n-trials while a worker decides to start one.
STARTED = (*FINISHED, TrialState.RUNNING)
# A config whose seed is not fixed is tuned with this one, so that trials are repeatable.
DEFAULT_SEED = 0
# The options of a config that decide what is trained (the rest only where and how fast).
_DATA_KEYS_IGNORED = ("data_dir", "eval_batch_size", "predict_path", "max_bytes", "max_pixels")
_TRAINER_KEYS_KEPT = (
    "max_epochs",
    "min_epochs",
    "max_steps",
    "limit_train_batches",
    "limit_val_batches",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "precision",
)
_ATTR = "mnist_lit"  # the study's user attribute that records its configuration


def tune(spec: TuneSpec) -> tuple[optuna.Study, Fit]:
    """Run (or continue) the study until it holds ``spec.n_trials`` finished trials.
    Returns it, and the fit that every trial starts from."""
    base, configuration = check_configuration(spec)
    make_folder(spec.study_dir)
    study = open_study(spec, configuration)
    print(
        f"tune {study.study_name}: {count(study, FINISHED)} of {spec.n_trials} trials finished, "
        f"{spec.monitor} to {spec.direction}; storage {redact(spec.storage_url())}",
        flush=True,
    )
    run_trials(study, spec, base)
    return study, base


def check_configuration(spec: TuneSpec) -> tuple[Fit, dict[str, Any]]:
    """Fail with one message unless every searched value fits the config; return the fit
    every trial starts from, and what it trains (to compare with a stored study)."""
    base = Fit(configs=spec.configs, args=spec.fit_args)
    cli = FitCLI(base)
    seed = cli.parser.parse_args(base.command_line()).get("seed_everything")
    if not isinstance(seed, int) or isinstance(seed, bool):
        base = replace(base, seed=DEFAULT_SEED)
        cli = FitCLI(base)
    if not cli.config["data"]["val_size"]:
        raise MnistLitError("tune chooses by validation: data.val_size must be above 0.")
    for param in spec.search.params:  # every choice, or both ends of the range
        for value in param.choices or (param.low, param.high):
            try:
                FitCLI(replace(base, options={**base.options, param.key: value}))
            except MnistLitError as error:
                raise MnistLitError(
                    f"--search {spec.search.source}: {param.key} = {value} does not fit the "
                    f"config: {first_line(error)}"
                ) from None
    configuration = {
        "trained": trained_config(cli.config),
        "search": spec.search.describe(),
        "objective": spec.monitor,
    }
    return base, json.loads(json.dumps(configuration))  # as stored: no tuples


def trained_config(config: Namespace) -> dict[str, Any]:
    """The part of a resolved config that decides the result: the model (network, loss,
    optimiser, schedule), seed, data and the length of training; not paths, devices or
    loggers."""
    plain = config.clone().as_dict()
    return {
        "model": plain["model"],  # the optimiser and schedule too: model.optimizer, ...
        "seed_everything": plain.get("seed_everything"),
        "data": {k: v for k, v in plain["data"].items() if k not in _DATA_KEYS_IGNORED},
        "trainer": {k: plain["trainer"].get(k) for k in _TRAINER_KEYS_KEPT},
    }


@contextlib.contextmanager
def heartbeat_quiet() -> Iterator[None]:
    """Without Optuna's warning that its heartbeat is experimental, within the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


# What PostgreSQL raises to the loser of a race to create a new database's tables: a
# duplicate type or table, a duplicate key in its catalogue, or a lock.
_CREATION_RACE = (IntegrityError, OperationalError, ProgrammingError)


def storage_at(url: str, heartbeat: int) -> RDBStorage:
    """Optuna's RDB storage at ``url``: a running trial records a sign of life every
    ``heartbeat`` seconds, and one silent for twice as long is failed and run again. A
    plain ``postgresql://`` URL uses the driver of the ``postgres`` extra, psycopg 3."""
    url = with_driver(url)
    # Workers on one SQLite file take turns to write; wait for the lock, not fail.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    retries = 0
    while True:
        try:
            with heartbeat_quiet():
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat,
                    grace_period=2 * heartbeat,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
        except Exception as error:  # SQLAlchemy and the database drivers raise many kinds
            if isinstance(error, _CREATION_RACE) and retries < 3:
                # Two workers creating the tables of a new database at the same moment: the
                # other one won (or holds the lock), and the tables are there soon.
                retries += 1
                time.sleep(0.5 * retries)
                continue
            fix = first_line(error)
            if isinstance(error, ImportError):
                psycopg = url.startswith("postgresql+psycopg://")
                extra = " with pip install 'mnist-lit[postgres]'" if psycopg else ""
                fix = f"install its driver{extra} ({fix})"
            raise MnistLitError(
                f"--storage {redact(url)} cannot be opened: {fix}. Give a database URL that "
                "Optuna supports, e.g. sqlite:///path/optuna.db or "
                "postgresql://user:password@host/database."
            ) from None


def with_driver(url: str) -> str:
    """``url``, a plain PostgreSQL one naming psycopg 3 as its driver.

    >>> with_driver("postgresql://me@db/tune"), with_driver("sqlite:///optuna.db")
    ('postgresql+psycopg://me@db/tune', 'sqlite:///optuna.db')
    """
    return re.sub("^postgresql://", "postgresql+psycopg://", url)


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def open_study(spec: TuneSpec, configuration: dict[str, Any]) -> optuna.Study:
    """Create the study, or load it and check that it tunes the same configuration."""
    grid = spec.search.grid()
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.GridSampler(grid, seed=spec.seed)
        if grid is not None
        else optuna.samplers.TPESampler(
            seed=spec.seed, n_startup_trials=min(10, max(2, spec.n_trials // 2))
        )
    )
    study = optuna.create_study(
        storage=storage_at(spec.storage_url(), spec.heartbeat),
        sampler=sampler,
        # It prunes only through a trial's callback, which --pruner none leaves out.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
        study_name=spec.study_name or spec.study_dir.resolve().name,
        direction=optuna.study.StudyDirection[spec.direction.upper()],
        load_if_exists=True,
    )
    stored = study.user_attrs.get(_ATTR)
    if stored is None and not study.trials:
        study.set_user_attr(_ATTR, configuration)
    elif stored != configuration:
        raise MnistLitError(
            f"study {study.study_name} in {redact(spec.storage_url())} tunes another "
            f"configuration ({', '.join(differences(stored or {}, configuration)) or 'unknown'}"
            " differ). Give a new --study-dir (or --study-name), or the --config, --search, "
            "--objective and fit options it was started with."
        )
    return study


def count(study: optuna.Study, states: Sequence[TrialState]) -> int:
    return len(study.get_trials(deepcopy=False, states=tuple(states)))


def run_trials(study: optuna.Study, spec: TuneSpec, base: Fit) -> None:
    """Run trials until the study holds ``n_trials`` finished ones (counting every
    worker's), or ``timeout`` seconds have passed.

    Optuna's :class:`~optuna.study.MaxTrialsCallback`, counting the finished and running
    trials of all workers, ends this worker's ``optimize`` once ``n_trials`` are finished or
    under way. It looks only after a trial (optuna/optuna#3518), so the rest is here: this
    loop looks before the first one, and waits while the last trials run elsewhere, failing
    those whose worker died (the storage queues each again, to be run here); and two
    workers that start the last trial at the same moment both see room, so the later new
    trial is failed before it trains (:func:`is_surplus`), without Optuna's warning.
    """
    deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
    n_trials = min(spec.n_trials, spec.search.grid_size() or spec.n_trials)
    objective = functools.partial(run_trial, spec=spec, base=base, n_trials=n_trials)
    enough = MaxTrialsCallback(n_trials, states=STARTED)
    while count(study, FINISHED) < n_trials:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        with heartbeat_quiet():
            fail_stale_trials(study)  # the dead workers' trials failed, and queued again
        if count(study, STARTED) < n_trials:
            with _surplus_unreported():
                study.optimize(
                    objective, timeout=left, callbacks=[enough], catch=(Surplus,),
                    gc_after_trial=True,
                )  # fmt: skip
        else:  # the last trials are running elsewhere
            time.sleep(min(spec.heartbeat, 2))


class Surplus(Exception):
    """A new trial beyond ``n_trials``, started at the moment another worker started the last."""


@contextlib.contextmanager
def _surplus_unreported() -> Iterator[None]:
    """Without Optuna's warning that a surplus trial failed: it is no failure to report.
    On Optuna's handlers: a logger's filters never see its children's records (the warning's)."""

    def keep(record: logging.LogRecord) -> bool:
        return Surplus.__name__ not in record.getMessage()

    handlers = logging.getLogger("optuna").handlers
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)


def is_surplus(trial: optuna.Trial, n_trials: int) -> bool:
    """Whether ``trial``, new (neither enqueued nor a retry), comes after ``n_trials``
    trials that are started or waiting to run."""
    alive = trial.study.get_trials(deepcopy=False, states=(*STARTED, TrialState.WAITING))
    mine = next(t for t in alive if t.number == trial.number)
    if {"fixed_params", "failed_trial"} & set(mine.system_attrs):  # enqueued, or a retry
        return False
    return sum(t.number < trial.number for t in alive) >= n_trials


def run_trial(trial: optuna.Trial, spec: TuneSpec, base: Fit, n_trials: int) -> float:
    """One trial: the config with the trial's values, fitted into ``trials/trial_NNNN``;
    a surplus trial (:func:`is_surplus`) is failed before it trains."""
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    if is_surplus(trial, n_trials):
        trial.set_user_attr("surplus", True)
        raise Surplus(f"trial {trial.number}: {n_trials} trials were started already")
    values = spec.search.suggest(trial)
    folder = spec.study_dir / "trials" / f"trial_{trial.number:04d}"
    run = replace(base, folder=folder, options={**base.options, **values})
    curve = ValidationCurve()  # kept here too: a pruned trial's fit returns nothing
    callbacks = [curve]
    if spec.pruner != "none":
        callbacks.append(PyTorchLightningPruningCallback(trial, monitor=spec.monitor))
    start = time.monotonic()
    try:
        diverged_in = fit(run, callbacks).diverged_in
    finally:
        trial.set_user_attr("val_acc", curve.acc)
        trial.set_user_attr("val_ce", curve.ce)
        trial.set_user_attr("seconds", round(time.monotonic() - start, 2))
    if diverged_in is not None:
        # Too large a rate for this loss: a result for the sampler, not an error.
        trial.set_user_attr("diverged", True)
        raise optuna.TrialPruned(f"diverged in epoch {diverged_in}")
    if not curve.acc:
        raise MnistLitError("the trial ran no validation epoch: check trainer.max_epochs.")
    return max(curve.acc) if spec.objective == "acc" else min(curve.ce)
