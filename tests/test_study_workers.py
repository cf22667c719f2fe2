"""``mnist-lit study --workers N`` on tiny generated data: the same numbers for any N, each
run done by one worker, a killed run done again, the progress line, and MNIST kept in
memory across a worker's fits."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch

from mnist_lit.cli import main
from mnist_lit.data.datamodule import MNISTDataModule
from mnist_lit.data.raw_files import kept_in_memory, read_split
from tests.cli_helpers import CONSOLE_SCRIPT, console
from tests.fake_mnist import write_fake_mnist

PAIRS = [("softmax_regression", "ce"), ("softmax_regression", "square_logits")]
# Two rates for one epoch, then both for two epochs, then two seeds, for each pair.
TOTAL = len(PAIRS) * (2 + 2 + 2)


def _study(data: Path, study: Path, *extra: str) -> list[str]:
    return [
        "study", "--quick", "--study-dir", str(study), "--data-dir", str(data),
        "--val-size", "100", "--n-trials", "2", "--seeds", "0", "1", "--epochs", "2",
        "--networks", "softmax_regression", "--losses", "ce", "square_logits", *extra,
    ]  # fmt: skip


def _numbers(study: Path) -> dict[tuple[str, ...], dict[str, str]]:
    """results.csv and tuning_trials.csv by run, without the seconds each took."""
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    with (study / "results.csv").open() as file:
        for row in csv.DictReader(file):
            rows[(row["network"], row["loss"], row.pop("seed"))] = row
            row.pop("seconds")
    with (study / "tuning_trials.csv").open() as file:
        for row in csv.DictReader(file):
            for column in ("seconds", "number"):
                row.pop(column)
            rows[(row["network"], row["loss"], "lr " + row["lr"], row["round"])] = row
    return rows


def _studies(study: Path) -> list[optuna.Study]:
    tunings = [
        optuna.load_study(
            study_name=loss, storage=f"sqlite:///{study}/tuning/{network}/{loss}/optuna.db"
        )
        for network, loss in PAIRS
    ]
    return [*tunings, optuna.load_study(study_name="seeds", storage=f"sqlite:///{study}/seeds.db")]


def _trials(study: Path) -> list[optuna.trial.FrozenTrial]:
    """Every trial of the study, each with the name of its Optuna study as a user attribute."""
    trials = []
    for optuna_study in _studies(study):
        for trial in optuna_study.get_trials():
            trial.user_attrs["study"] = optuna_study.study_name
            trials.append(trial)
    return trials


def _unit(trial: optuna.trial.FrozenTrial) -> tuple[object, ...]:
    values = {**trial.system_attrs["fixed_params"], **trial.params}
    return (trial.user_attrs["study"], trial.user_attrs.get("round"), *sorted(values.items()))


@pytest.fixture(scope="module")
def one_worker(fake_mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The study with one worker (this process), and what it printed."""
    study = tmp_path_factory.mktemp("one") / "out"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(_study(fake_mnist_dir, study))
    return study, out.getvalue()


def test_one_worker_prints_a_progress_line_per_finished_run(one_worker: tuple[Path, str]) -> None:
    _, out = one_worker
    lines = [line for line in out.splitlines() if line.startswith("runs ")]
    assert lines[0] == f"runs 0/{TOTAL} finished, 0 running, 0s elapsed"
    assert [line.split()[1] for line in lines] == [f"{n}/{TOTAL}" for n in range(TOTAL + 1)]
    assert all("elapsed, about " in line and line.endswith(" left") for line in lines[1:-1])
    assert "softmax_regression, ce, seed 1: test acc" in out
    assert "successive halving over rounds of 1, 2 epochs" in out


@pytest.mark.slow
def test_two_workers_give_the_numbers_of_one(
    one_worker: tuple[Path, str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "two"
    result = console(*_study(fake_mnist_dir, study, "--workers", "2"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"runs {TOTAL}/{TOTAL} finished, 0 running" in result.stdout
    assert _numbers(study) == _numbers(one_worker[0])
    # Each run was done once, by one of the two workers, and both had work.
    trials = _trials(study)
    assert {t.state.name for t in trials} == {"COMPLETE"}
    assert len({_unit(t) for t in trials}) == len(trials) == TOTAL
    assert len({t.user_attrs["worker"] for t in trials}) == 2


@pytest.mark.slow
@pytest.mark.postgres
def test_two_machines_share_one_study_on_postgresql(
    one_worker: tuple[Path, str],
    fake_mnist_dir: Path,
    tmp_path: Path,
    postgres: Callable[[], str],
) -> None:
    url = postgres()
    shared = ["--storage", url, "--study-name", "shared"]
    # Two machines: each its own study folder and working folder, one database.
    machines = [tmp_path / name for name in ("a", "b")]
    for machine in machines:
        machine.mkdir()
    processes = [
        subprocess.Popen(
            [CONSOLE_SCRIPT, *_study(fake_mnist_dir, machine / "study", *shared)],
            cwd=machine,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for machine in machines
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    # Each machine's folder ends with every result; each run was done once, on one of them.
    for machine in machines:
        assert _numbers(machine / "study") == _numbers(one_worker[0])
    trials = [
        t
        for name in [f"shared/{network}/{loss}" for network, loss in PAIRS] + ["shared/seeds"]
        for t in optuna.load_study(study_name=name, storage=url).get_trials()
    ]
    assert {t.state.name for t in trials} == {"COMPLETE"} and len(trials) == TOTAL
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    # The same study name with another plan is one message.
    other = _study(fake_mnist_dir, tmp_path / "c", *shared, "--seeds", "0", "2")
    result = console(*other, cwd=tmp_path)
    assert result.returncode == 2 and "study shared in postgresql+psycopg://" in result.stderr
    assert "is a study of another configuration" in result.stderr


def _wait_for_a_running_run(study: Path, process: subprocess.Popen[bytes]) -> list[int]:
    """Once a run has finished and another is running: the pids of the running runs."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        with contextlib.suppress(Exception):  # the storages are not all there yet
            trials = _trials(study)
            running = [t for t in trials if t.state.name == "RUNNING" and "worker" in t.user_attrs]
            if running and any(t.state.name == "COMPLETE" for t in trials):
                return [int(t.user_attrs["worker"].split(":")[1]) for t in running]
    raise AssertionError(f"no run was caught running (exit status {process.poll()})")


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_killed_study_does_its_running_runs_again(
    one_worker: tuple[Path, str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "killed"
    args = _study(fake_mnist_dir, study, "--workers", "2", "--heartbeat", "1")
    parent = subprocess.Popen(
        [CONSOLE_SCRIPT, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        pids = _wait_for_a_running_run(study, parent)
        parent.send_signal(signal.SIGKILL)
    finally:
        parent.wait()
    # Its workers notice, and stop: no orphan keeps running.
    assert all(_gone(pid, 30) for pid in pids), pids
    killed = {_unit(t) for t in _trials(study) if t.state.name in ("RUNNING", "FAIL")}
    assert killed

    result = console(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = _trials(study)
    # Every killed run was done again, once, and the numbers are those of an unbroken study.
    assert {_unit(t) for t in trials if t.state.name == "FAIL"} == killed
    assert "RUNNING" not in {t.state.name for t in trials}
    finished = [_unit(t) for t in trials if t.state.name == "COMPLETE"]
    assert len(finished) == len(set(finished)) == TOTAL
    assert _numbers(study) == _numbers(one_worker[0])


def test_mnist_kept_in_memory_is_read_once_and_split_by_each_run(tmp_path: Path) -> None:
    data = write_fake_mnist(tmp_path, n_train=300, n_test=50)
    plain = read_split(data, train=True)
    with kept_in_memory():
        first = read_split(data, train=True)
        first[0].zero_()  # a fit that changed its copy changes no other
        again = read_split(data, train=True)
        assert torch.equal(again[0], plain[0]) and torch.equal(again[1], plain[1])
        splits = {}
        for seed, val_size in ((0, 50), (1, 50), (0, 80)):
            module = MNISTDataModule(str(data), val_size=val_size, seed=seed)
            module.setup("fit")
            splits[seed, val_size] = module.splits
        write_fake_mnist(tmp_path, n_train=200, n_test=50, seed=1)  # the files change
        assert len(read_split(data, train=True)[1]) == 200
    for (seed, val_size), kept in splits.items():
        copy = write_fake_mnist(tmp_path / "copy", n_train=300, n_test=50)
        fresh = MNISTDataModule(str(copy), val_size=val_size, seed=seed)
        fresh.setup("fit")
        for name in ("train", "val", "test"):
            assert torch.equal(kept[name][0], fresh.splits[name][0]), (seed, val_size, name)
            assert torch.equal(kept[name][1], fresh.splits[name][1])
    assert not torch.equal(splits[0, 50]["val"][1], splits[1, 50]["val"][1])
