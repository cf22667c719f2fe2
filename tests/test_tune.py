"""``mnist-lit tune`` on tiny generated data: search files, pruning, storage, resuming,
several workers, best.yaml, and one message per mistake."""

from __future__ import annotations

import contextlib
import csv
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import yaml

from mnist_lit.cli import main
from mnist_lit.tuning.engine import storage_at
from tests.cli_helpers import CONSOLE_SCRIPT, TUTORIAL, cli_error, console, fake_data

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search(folder: Path, text: str) -> str:
    path = folder / "search.yaml"
    path.write_text(text)
    return str(path)


def _tune_args(
    data: Path, search: str, study: Path, n_trials: int, epochs: int = 2, *extra: str
) -> list[str]:
    return [
        "tune", "--config", TUTORIAL, "--search", search, "--n-trials", str(n_trials),
        "--study-dir", str(study), *extra, "--", *fake_data(data),
        f"--trainer.max_epochs={epochs}",
    ]  # fmt: skip


def _trials(study: Path) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{study / 'optuna.db'}"
    return optuna.load_study(study_name=study.name, storage=storage).get_trials()


def _states(study: Path) -> list[str]:
    """The trials' states, a running one only once it has its values (a trial killed
    before it has them is retried with new ones); none while the tune has not begun."""
    if not (study / "trials").exists():  # the tune has not made its study yet
        return []
    return [t.state.name for t in _trials(study) if t.state.name != "RUNNING" or t.params]


def test_search_file_drives_each_trial(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    search = _search(
        tmp_path,
        "model.optimizer.lr: {low: 1e-2, high: 1.0, log: true}\n"
        "data.batch_size: {choices: [32, 128]}\n",
    )
    study = tmp_path / "lr_study"
    main(_tune_args(fake_mnist_dir, search, study, 3, 1, "--seed", "0"))
    trials = _trials(study)
    assert len(trials) == 3
    for trial in trials:
        config = yaml.safe_load(
            (study / "trials" / f"trial_{trial.number:04d}" / "config.yaml").read_text()
        )
        assert config["model"]["optimizer"]["init_args"]["lr"] == trial.params["model.optimizer.lr"]
        assert config["data"]["batch_size"] == trial.params["data.batch_size"]
        assert 1e-2 <= config["model"]["optimizer"]["init_args"]["lr"] <= 1.0
    # Trials write into the study folder, never into the user's logs/.
    assert not (tmp_path / "logs").exists()
    rows = list(csv.DictReader((study / "trials.csv").open()))
    assert [r["model.optimizer.lr"] for r in rows] == [
        str(t.params["model.optimizer.lr"]) for t in trials
    ]
    for name in ("best.yaml", "history.png", "slices.png"):
        assert (study / name).stat().st_size > 500


def test_a_grid_is_tried_once_and_unpromising_trials_are_pruned(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    # Choices only make a grid: each rate once, however many trials are asked for. Half the
    # rates cannot learn in time: the median pruner stops them after an epoch.
    rates = [0.5, 0.3, 0.2, 1.0e-6, 2.0e-6, 3.0e-6]
    search = _search(tmp_path, f"model.optimizer.lr: {{choices: {rates}}}\n")
    study = tmp_path / "pruned"
    main(_tune_args(fake_mnist_dir, search, study, 10, 3, "--seed", "2"))
    trials = _trials(study)
    assert sorted(t.params["model.optimizer.lr"] for t in trials) == sorted(rates)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and all(t.params["model.optimizer.lr"] < 1e-5 for t in pruned)
    assert all(len(t.intermediate_values) < 3 for t in pruned)
    assert all(t.state.name == "COMPLETE" for t in trials if t.params["model.optimizer.lr"] > 0.1)


def test_best_yaml_reproduces_the_best_trial(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small rates so that the validation metrics still move between epochs.
    search = _search(tmp_path, "model.optimizer.lr: {low: 1e-3, high: 1e-2, log: true}\n")
    study = tmp_path / "best"
    main(_tune_args(fake_mnist_dir, search, study, 2, 2, "--seed", "0"))
    best = max((t for t in _trials(study) if t.value is not None), key=lambda t: t.value)
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(study / "best.yaml"), "--trainer.enable_progress_bar=false"])
    (metrics,) = tmp_path.glob("logs/*/version_0/metrics.csv")
    rows = [r for r in csv.DictReader(metrics.open()) if r["val/acc"]]
    assert max(float(r["val/acc"]) for r in rows) == pytest.approx(best.value, abs=1e-6)
    assert [float(r["val/ce"]) for r in rows] == pytest.approx(best.user_attrs["val_ce"], rel=1e-5)


def test_objective_can_be_validation_cross_entropy(fake_mnist_dir: Path, tmp_path: Path) -> None:
    search = _search(tmp_path, "model.optimizer.lr: {low: 1e-2, high: 1.0, log: true}\n")
    study = tmp_path / "ce"
    main(_tune_args(fake_mnist_dir, search, study, 2, 2, "--objective", "ce", "--pruner", "none"))
    trials = _trials(study)
    assert all(t.value == pytest.approx(min(t.user_attrs["val_ce"])) for t in trials)
    assert "val/ce" in (study / "best.yaml").read_text().splitlines()[0]


def _command(data: Path, search: str, study: Path, n_trials: int, epochs: int) -> list[str]:
    return [CONSOLE_SCRIPT, *_tune_args(data, search, study, n_trials, epochs, "--heartbeat", "1")]


@pytest.mark.slow
def test_a_killed_tune_loses_only_its_running_trial(fake_mnist_dir: Path, tmp_path: Path) -> None:
    search = _search(tmp_path, "model.optimizer.lr: {low: 1e-2, high: 1.0, log: true}\n")
    study = tmp_path / "killed"
    command = _command(fake_mnist_dir, search, study, 4, 30)
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill it in the middle of its second trial
            time.sleep(0.2)
            states = _states(study)
            if states.count("COMPLETE") + states.count("PRUNED") >= 1 and "RUNNING" in states:
                break
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    before = {t.number: t.value for t in _trials(study) if t.state.name != "RUNNING"}
    killed = next(t for t in _trials(study) if t.state.name == "RUNNING")
    assert before, "the tune was killed before it finished a trial"

    result = console(*command[1:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = _trials(study)
    assert {t.number: t.value for t in after if t.number in before} == before
    assert after[killed.number].state.name == "FAIL"
    finished = [t for t in after if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4
    # The killed trial's values are tried again.
    retried = [t.params for t in finished if t.number > killed.number]
    assert retried.count(killed.params) == 1, (killed.params, retried)


def _worker_command(data: Path, search: str, folder: Path, storage: str, epochs: int) -> list[str]:
    """A tune worker of the study ``shared`` in ``storage``, 6 trials, writing to ``folder``."""
    command = _command(data, search, folder, 6, epochs)
    split = command.index("--")  # the options after `--` stay last
    return [*command[:split], "--storage", storage, "--study-name", "shared", *command[split:]]


def _storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres")()


STORAGES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", STORAGES)
def test_two_workers_share_one_storage(
    backend: str, fake_mnist_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    search = _search(tmp_path, "model.optimizer.lr: {low: 1e-2, high: 1.0, log: true}\n")
    storage = _storage(backend, tmp_path, request)
    commands = [
        _worker_command(fake_mnist_dir, search, tmp_path / f"worker{i}", storage, 4) for i in (0, 1)
    ]
    workers = [
        subprocess.Popen(c, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    assert "RUNNING" not in {t.state.name for t in trials}
    # Exactly the trials asked for finished, each once, in one worker's folder; a trial
    # started at the same moment as the last one was failed before it trained.
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6
    assert all(t.user_attrs.get("surplus") for t in trials if t.state.name == "FAIL")
    folders = [p.name for w in (0, 1) for p in (tmp_path / f"worker{w}" / "trials").glob("trial_*")]
    assert sorted(folders) == sorted(f"trial_{t.number:04d}" for t in finished)
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    assert "Surplus" not in "".join(err for _, err in outputs)


@pytest.mark.postgres
def test_workers_opening_a_new_postgresql_database_at_once_all_open_it(
    postgres: Callable[[], str],
) -> None:
    # The losers of the race to create the tables meet a duplicate type, table or catalogue
    # key; each must wait for the winner's tables, not report the storage as unusable.
    errors: list[BaseException] = []

    def open_it(url: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            storage_at(url, heartbeat=10).engine.dispose()  # its connections back at once
        except BaseException as error:
            errors.append(error)

    for _ in range(5):
        url, start = postgres(), threading.Barrier(6)
        workers = [threading.Thread(target=open_it, args=(url, start)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert not errors, errors


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_killed_on_postgresql_has_its_trial_done_again(
    postgres: Callable[[], str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    search = _search(tmp_path, "model.optimizer.lr: {low: 1e-2, high: 1.0, log: true}\n")
    storage = postgres()
    commands = [
        _worker_command(fake_mnist_dir, search, tmp_path / f"worker{i}", storage, 20)
        for i in (0, 1)
    ]
    said = tmp_path / "victim.err"
    with said.open("w") as err:
        victim = subprocess.Popen(commands[0], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    # One storage for all the looking: one opened per look holds its connections until the
    # garbage collector runs, and enough of them fill the server's connection slots.
    watched = storage_at(storage, heartbeat=10)
    try:
        deadline = time.monotonic() + 120
        running: list[optuna.trial.FrozenTrial] = []
        while not running and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(KeyError):  # the study is not there yet
                trials = optuna.load_study(study_name="shared", storage=watched).get_trials()
                running = [t for t in trials if t.state.name == "RUNNING" and t.params]
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait()
        watched.engine.dispose()
    assert len(running) == 1, f"no trial seen running; the worker said:\n{said.read_text()}"
    (killed,) = running
    result = subprocess.run(commands[1], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    assert trials[killed.number].state.name == "FAIL"
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6
    # The survivor took the killed trial for dead after its heartbeat and ran it again.
    assert [t.params for t in finished if t.number > killed.number].count(killed.params) == 1


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        pytest.param(
            "model.optimizer.lrr: {low: 0.1, high: 1.0}\n",
            "model.optimizer.lrr = 0.1 does not fit the config",
            id="unknown-key",
        ),
        pytest.param(
            "model.optimizer.lr: {low: 1.0, high: 0.1}\n",
            "model.optimizer.lr: low must be below high",
            id="low-above-high",
        ),
        pytest.param(
            "model.optimizer.lr: {low: 0, high: 1.0, log: true}\n",
            "a log range must start above 0",
            id="log-from-zero",
        ),
        pytest.param(
            "model.optimizer.lr: {low: -1.0, high: 1.0}\n",
            "model.optimizer.lr = -1.0 does not fit the config: model.optimizer (SGD): Invalid",
            id="value-the-model-refuses",
        ),
        pytest.param(
            "model.optimizer.lr: {low: 0.1, hihg: 1.0}\n", "unknown field(s) hihg", id="typo"
        ),
        pytest.param("model.optimizer.lr: 0.5\n", "give a range", id="not-a-range"),
        pytest.param(  # its example is a key of the configs
            "- model.lr\n",
            "must map config keys to ranges, e.g. `model.optimizer.lr: {",
            id="not-a-mapping",
        ),
    ],
)
def test_bad_search_file_is_one_message(
    search: str,
    expected: str,
    fake_mnist_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _search(tmp_path, search)
    err = cli_error(_tune_args(fake_mnist_dir, path, tmp_path / "s", 1), capsys)
    assert err.count("mnist-lit: error: ") == 1 and expected in err, err
    assert not (tmp_path / "s" / "trials").exists()


def test_storage_that_cannot_be_opened_is_one_message(
    fake_mnist_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    search = _search(tmp_path, "model.optimizer.lr: {low: 0.1, high: 1.0}\n")
    unreachable = "postgresql://user:secret@127.0.0.1:9/db"
    for storage, expected in (
        (f"sqlite:///{tmp_path}/no/such/folder/x.db", "unable to open database file"),
        (unreachable, "--storage postgresql+psycopg://user:***@127.0.0.1:9/db cannot be opened"),
        ("nosuchdb://somewhere", "cannot be opened"),
    ):
        args = _tune_args(fake_mnist_dir, search, tmp_path / "s", 1, 1, "--storage", storage)
        err = cli_error(args, capsys)
        assert err.count("mnist-lit: error: ") == 1 and expected in err, err
        assert "secret" not in err
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    err = cli_error(_tune_args(fake_mnist_dir, search, tmp_path / "s", 1, 1, "--storage",
                               unreachable), capsys)  # fmt: skip
    assert "install its driver with pip install 'mnist-lit[postgres]'" in err, err
    assert "secret" not in err and err.count("mnist-lit: error: ") == 1


def test_a_trial_started_beside_the_last_one_is_surplus() -> None:
    from mnist_lit.tuning.engine import is_surplus

    study = optuna.create_study()
    study.enqueue_trial({"x": 1.0})
    enqueued = study.ask()
    first, second = study.ask(), study.ask()  # two workers, at the same moment
    assert not is_surplus(enqueued, 2) and not is_surplus(first, 2)
    assert is_surplus(second, 2)
    study.tell(first, state=optuna.trial.TrialState.FAIL)  # the one before it failed
    assert not is_surplus(second, 2)


def test_a_worker_starts_no_trial_beyond_those_finished_or_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist_lit.tuning import engine
    from mnist_lit.tuning.search import load_search
    from mnist_lit.tuning.spec import TuneSpec

    search = load_search(_search(tmp_path, "model.optimizer.lr: {low: 0.1, high: 1.0}\n"))
    spec = TuneSpec(configs=(TUTORIAL,), search=search, study_dir=tmp_path, n_trials=3)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    elsewhere = study.ask()  # another worker's, running: it counts towards the 3
    ran: list[int] = []

    def trial(trial: optuna.Trial, **_: object) -> float:
        ran.append(trial.number)
        return 0.0

    monkeypatch.setattr(engine, "run_trial", trial)
    spec = replace(spec, timeout=1.0)  # it waits for the trial elsewhere, up to --timeout
    engine.run_trials(study, spec, base=None)  # type: ignore[arg-type]
    assert ran == [1, 2]
    study.tell(elsewhere, 0.0)
    engine.run_trials(study, spec, base=None)  # type: ignore[arg-type]
    assert ran == [1, 2] and len(study.trials) == 3  # a full study: not one trial more


def test_a_surplus_trial_fails_without_a_warning() -> None:
    from mnist_lit.tuning.engine import Surplus, _surplus_unreported

    class Messages(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.said: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.said.append(record.getMessage())

    def surplus(trial: optuna.Trial) -> float:
        raise Surplus(f"trial {trial.number}: 1 trials were started already")

    messages = Messages()
    optuna_logger = logging.getLogger("optuna")
    optuna_logger.addHandler(messages)
    try:
        study = optuna.create_study()
        with _surplus_unreported():
            study.optimize(surplus, n_trials=1, catch=(Surplus,))
        assert not any("Surplus" in said for said in messages.said), messages.said
        study.optimize(surplus, n_trials=1, catch=(Surplus,))  # outside: reported
        assert any("Surplus" in said for said in messages.said), messages.said
    finally:
        optuna_logger.removeHandler(messages)


def test_study_folder_of_another_configuration_is_one_message(
    fake_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    search = _search(tmp_path, "model.optimizer.lr: {low: 0.1, high: 1.0}\n")
    study = tmp_path / "s"
    main(_tune_args(fake_mnist_dir, search, study, 1, 1))
    args = _tune_args(fake_mnist_dir, search, study, 2, 1)
    args.append("--model.loss=mnist_lit.losses.Quadratic")
    capsys.readouterr()  # what the first tune printed
    err = cli_error(args, capsys)
    assert "tunes another configuration (trained.model.loss" in err, err
    assert len(_trials(study)) == 1


def test_rerunning_the_same_command_continues_the_study(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    # The CNN's config holds a tuple (its channels): it must compare equal once stored.
    search = _search(tmp_path, "model.optimizer.lr: {low: 1e-3, high: 0.1, log: true}\n")
    study = tmp_path / "cnn"
    args = _tune_args(fake_mnist_dir, search, study, 1, 1)
    args[args.index(TUTORIAL)] = str(Path(TUTORIAL).with_name("cnn.yaml"))
    main(args)
    first = _trials(study)
    args[args.index("--n-trials") + 1] = "2"
    main(args)
    trials = _trials(study)
    assert len(trials) == 2 and trials[0].params == first[0].params
    assert trials[0].value == first[0].value


def test_without_optuna_is_one_message(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    search = _search(tmp_path, "model.optimizer.lr: {low: 0.1, high: 1.0}\n")
    err = cli_error(_tune_args(fake_mnist_dir, search, tmp_path / "s", 1), capsys)
    assert "pip install 'mnist-lit[tune]'" in err
    monkeypatch.setitem(sys.modules, "distributed", None)  # the study's engine
    err = cli_error(["study", "--study-dir", str(tmp_path / "t")], capsys)
    assert "the study needs Dask's distributed" in err and "pip install 'mnist-lit[tune]'" in err
    assert not (tmp_path / "t").exists()


def test_a_study_records_only_keys_its_config_has() -> None:
    from mnist_lit.runs.fit import Fit, FitCLI
    from mnist_lit.tuning.engine import trained_config

    config = FitCLI(Fit(configs=(TUTORIAL,))).config
    trained = trained_config(config)
    assert set(trained) <= set(config.as_dict()), set(trained) - set(config.as_dict())
    assert trained["model"]["optimizer"]["init_args"]["lr"] == 0.5  # the optimiser is in it
