"""``mnist-lit study`` on Dask, on tiny generated data: the same numbers for any number of
workers, a real cluster on loopback that loses a worker mid-fit, the study's own process
killed and run again, an unreachable scheduler, and MNIST kept in memory across a worker's
fits."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import torch

from mnist_lit.cli import INTERRUPTED
from mnist_lit.data import raw_files
from mnist_lit.data.datamodule import MNISTDataModule
from mnist_lit.data.raw_files import keep_in_memory, read_split
from tests.cli_helpers import CONSOLE_SCRIPT, cli_error, console, free_port
from tests.fake_mnist import write_fake_mnist
from tests.study_helpers import (
    TOTAL,
    fit_lines,
    numbers,
    study_args,
    wait_for_results,
    written_results,
)

DASK = str(Path(CONSOLE_SCRIPT).with_name("dask"))


def test_one_worker_prints_a_progress_line_per_finished_fit(one_worker: tuple[Path, str]) -> None:
    study, out = one_worker
    lines = [line for line in out.splitlines() if line.startswith("runs ")]
    assert lines[0].startswith(f"runs 0/{TOTAL} finished, ") and " 0s elapsed" in lines[0]
    assert [line.split()[1] for line in lines] == [f"{n}/{TOTAL}" for n in range(TOTAL + 1)]
    assert all("elapsed, about " in line and line.endswith(" left") for line in lines[1:-1])
    assert "softmax_regression, ce, seed 1: test acc" in out
    assert "successive halving over rounds of 1, 2 epochs" in out
    fits = fit_lines(out)
    assert len(fits) == len(set(fits)) == len(written_results(study)) == TOTAL


def test_an_unreachable_scheduler_is_one_message_within_seconds(
    fake_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    start = time.monotonic()
    err = cli_error(study_args(fake_mnist_dir, tmp_path / "s", "--scheduler", address), capsys)
    assert time.monotonic() - start < 30
    assert err.count("mnist-lit: error: ") == 1
    assert f"--scheduler {address}: no Dask scheduler answered" in err
    assert "dask scheduler" in err and "docs/distributed.md" in err


@pytest.mark.parametrize("workers", [1, 2])
def test_the_local_cluster_listens_on_loopback_only(workers: int) -> None:
    from mnist_lit.study.cluster import open_engine

    with open_engine(workers, None) as engine:
        assert engine.slots == workers
        processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
        listening = {
            (c.laddr.ip, c.laddr.port)
            for p in processes
            for c in p.net_connections("inet")
            if c.status == psutil.CONN_LISTEN
        }
    if workers == 1:  # the fits run in this process: no cluster, nothing listens
        assert not listening and engine.dashboard is None
    else:  # the scheduler's and each worker's server, and their HTTP servers
        assert len(listening) >= 2 * (1 + workers), listening
        assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening


def test_a_fit_that_fails_stops_the_study_with_one_message_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "no_data"
    empty.mkdir()
    err = cli_error(study_args(empty, tmp_path / "s"), capsys)
    assert err.count("mnist-lit: error: ") == 1
    assert "softmax_regression, ce, lr " in err and "Every result written before is kept" in err


@pytest.mark.slow
def test_two_workers_give_the_numbers_of_one(
    one_worker: tuple[Path, str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "two"
    result = console(*study_args(fake_mnist_dir, study, "--workers", "2"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"runs {TOTAL}/{TOTAL} finished, 0 running" in result.stdout
    assert numbers(study) == numbers(one_worker[0])
    assert len(set(fit_lines(result.stdout))) == len(fit_lines(result.stdout)) == TOTAL
    assert "Traceback" not in result.stderr, result.stderr


def _start(*args: str, folder: Path, own_group: bool = False) -> subprocess.Popen[bytes]:
    """A ``dask`` command in the background, quiet, configured as docs/distributed.md says."""
    config = folder / "dask_config"
    config.mkdir(exist_ok=True)
    (config / "mnist-lit.yaml").write_text(
        "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n"
    )
    return subprocess.Popen(
        [DASK, *args],
        cwd=folder,
        env={**os.environ, "DASK_CONFIG": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=own_group,
    )


@contextlib.contextmanager
def _dask_cluster(
    folder: Path, workers: int
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes on loopback, each worker
    in a process group of its own (its nanny and the worker process it starts)."""
    from distributed import Client

    address_file = folder / "scheduler.json"
    loopback = ["--host", "127.0.0.1", "--no-dashboard"]
    port = ["--port", str(free_port())]
    scheduler = _start(
        "scheduler", *loopback, *port, "--scheduler-file", str(address_file), folder=folder
    )
    started = []
    try:
        deadline = time.monotonic() + 60
        while not address_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        for _ in range(workers):
            worker = _start(
                "worker", address, *loopback, "--nthreads", "1", folder=folder, own_group=True
            )
            started.append(worker)
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, started
    finally:
        for worker in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        scheduler.kill()
        scheduler.wait()


def _worker_running_a_fit(address: str, study: Path) -> int:
    """Once a fit's result is written and a worker is busy with another: that worker's pid."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if written_results(study) and busy:
                return int(client.run(os.getpid, workers=busy[:1])[busy[0]])
            time.sleep(0.1)
    raise AssertionError("no worker was caught running a fit")


@pytest.mark.slow
def test_a_cluster_that_loses_a_worker_mid_fit_ends_with_the_same_numbers(
    one_worker: tuple[Path, str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "cluster"
    with _dask_cluster(tmp_path, workers=2) as (address, workers):
        client_process = subprocess.Popen(
            [CONSOLE_SCRIPT, *study_args(fake_mnist_dir, study, "--scheduler", address)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        busy = _worker_running_a_fit(address, study)
        (victim,) = [w for w in workers if os.getpgid(busy) == w.pid]
        os.killpg(victim.pid, signal.SIGKILL)  # the nanny and its worker, mid-fit
        out, err = client_process.communicate(timeout=300)
    assert client_process.returncode == 0, out + err
    assert victim.wait() == -signal.SIGKILL
    assert numbers(study) == numbers(one_worker[0])
    fits = fit_lines(out)  # each fit recorded once
    assert len(fits) == len(set(fits)) == len(written_results(study)) == TOTAL


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_killed_study_run_again_redoes_only_the_fits_not_recorded(
    one_worker: tuple[Path, str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "killed"
    args = study_args(fake_mnist_dir, study, "--workers", "2")
    parent = subprocess.Popen(
        [CONSOLE_SCRIPT, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_results(study, parent, 3)
        workers = [p.pid for p in psutil.Process(parent.pid).children(recursive=True)]
        parent.send_signal(signal.SIGKILL)
    finally:
        parent.wait()
    assert workers and _gone(workers, 30), workers  # its worker processes end with it
    recorded = written_results(study)
    assert 3 <= len(recorded) < TOTAL

    result = console(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p: t for p, t in written_results(study).items() if p in recorded} == recorded
    fits = fit_lines(result.stdout)
    assert len(fits) == len(set(fits)) == TOTAL - len(recorded)
    assert numbers(study) == numbers(one_worker[0])
    # The killed invocation counts in the wall time, up to its last result, and is named.
    with (study / "invocations.csv").open() as file:
        killed, rerun = csv.DictReader(file)
    assert (killed["ended"], rerun["ended"]) == ("False", "True")
    assert float(killed["seconds"]) > 0
    summary = (study / "summary.md").read_text()
    assert f"not run to their end (stopped or killed): {killed['started']} on " in summary


@pytest.mark.slow
def test_ctrl_c_stops_the_study_in_one_line_and_its_workers_with_it(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "stopped"
    process = subprocess.Popen(
        [CONSOLE_SCRIPT, *study_args(fake_mnist_dir, study, "--workers", "2")],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a terminal of its own: Ctrl-C reaches the whole group
    )
    wait_for_results(study, process, 2)
    workers = [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C does: the study and its workers
    err = process.communicate(timeout=60)[1]
    assert process.returncode == 130, err
    assert err.strip().splitlines() == [INTERRUPTED], err
    assert _gone(workers, 30)
    assert len(written_results(study)) >= 2  # kept


def test_mnist_kept_in_memory_is_read_once_and_split_by_each_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_fake_mnist(tmp_path, n_train=300, n_test=50)
    plain = read_split(data, train=True)
    with monkeypatch.context() as patched:
        patched.setattr(raw_files, "_KEPT", None)  # keep_in_memory's switch, off again after
        keep_in_memory()
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
