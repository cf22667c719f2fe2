"""``mnist-lit study`` when things go wrong around it, on tiny generated data: a full disk,
records damaged from outside, Ctrl-C, two studies on one folder, a killed invocation, a
scheduler without workers, and options that cannot make a study."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_lit.cli import INTERRUPTED, main
from mnist_lit.study.folder import INVOCATIONS, StudyFolder
from tests.cli_helpers import CONSOLE_SCRIPT, cli_error
from tests.study_helpers import (
    TOTAL,
    fit_lines,
    numbers,
    study_args,
    wait_for_results,
    written_results,
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def _report(study: Path) -> str:
    """summary.md without its last paragraph, the times taken."""
    return (study / "summary.md").read_text().split("\n\nTraining time recorded:")[0]


def _run(args: list[str]) -> str:
    """Run ``mnist-lit args`` in this process; what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(args)
    return out.getvalue()


@contextlib.contextmanager
def _small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` (tmpfs) mounted on ``folder``; skipped where this
    process may not mount (not root, or a container without the right)."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.slow
def test_a_full_disk_is_one_line_keeps_every_record_whole_and_a_rerun_finishes(
    one_worker: tuple[Path, str],
    fake_mnist_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _small_disk(tmp_path / "disk", "160k") as disk:
        study = disk / "study"
        err = cli_error(study_args(fake_mnist_dir, study), capsys)
        assert err.strip().splitlines() == [
            f"mnist-lit: error: --study-dir {study}: no space left on the disk (No space left "
            "on device). Free space there, or move the folder to a disk with room, then run "
            "the same command again: every result written before is kept."
        ]
        written = written_results(study)
        assert 0 < len(written) < TOTAL  # it stopped part of the way
        for path in written:
            json.loads(path.read_text())
        for path in study.rglob("*.npy"):
            np.load(path)
        assert not [p for p in study.rglob("*") if p.name.endswith(".part")]
        (invocation,) = _rows(study / INVOCATIONS)  # with its header
        assert invocation["ended"] == "False" and float(invocation["seconds"]) > 0
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        out = _run(study_args(fake_mnist_dir, study))
        assert len(fit_lines(out)) == TOTAL - len(written)
        assert numbers(study) == numbers(one_worker[0])
        assert _report(study) == _report(one_worker[0])
        summary = (study / "summary.md").read_text()
        assert "in 2 invocations (1 worker); not run to their end (stopped or killed): " in summary
        assert f"{invocation['started']} on {socket.gethostname()}." in summary


def _cut(path: Path) -> None:
    """Leave the first half of a file, as a copy that ran out of space does."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_damaged_records_are_set_aside_and_their_fits_run_again(
    one_worker: tuple[Path, str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "damaged"
    shutil.copytree(one_worker[0], study)
    cut = [
        study / "runs/softmax_regression/ce/seed_1/result.json",
        study / "runs/softmax_regression/square_logits/seed_0/test_predictions.npy",
        next(study.glob("tuning/softmax_regression/ce/round_0/lr_*/result.json")),
    ]
    for path in cut:
        _cut(path)
    out = _run(study_args(fake_mnist_dir, study))
    said = [line for line in out.splitlines() if "set aside" in line]
    assert len(said) == 3, out
    assert said[0].startswith(f"{cut[2]}: damaged (JSONDecodeError: ")  # read first
    assert said[0].endswith("set aside as result.json.damaged, its fit runs again.")
    assert said[1].startswith(f"{cut[0]}: damaged (JSONDecodeError: ")
    assert said[2].startswith(f"{cut[1]}: damaged (ValueError: ")
    assert all((p.parent / f"{p.name}.damaged").is_file() for p in cut)
    fits = sorted(line.split(":")[0] for line in fit_lines(out))
    lr = cut[2].parent.name.removeprefix("lr_")
    assert fits == [
        f"softmax_regression, ce, lr {float(lr):.3g}, 1 epochs",
        "softmax_regression, ce, seed 1",
        "softmax_regression, square_logits, seed 0",
    ]
    assert numbers(study) == numbers(one_worker[0])
    assert _report(study) == _report(one_worker[0])
    comparisons = (study / "comparisons.csv").read_text()
    assert comparisons == (one_worker[0] / "comparisons.csv").read_text()


@pytest.mark.parametrize(
    ("option", "values"), [("--losses", ["ce", "ce"]), ("--networks", ["mlp", "cnn", "mlp"])]
)
def test_a_loss_or_network_given_twice_is_refused_in_one_line(
    option: str, values: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = study_args(tmp_path, tmp_path / "s")
    at = args.index(option)
    end = next(i for i in range(at + 1, len(args) + 1) if i == len(args) or args[i][:2] == "--")
    args[at + 1 : end] = values
    err = cli_error(args, capsys)
    first = err.splitlines()[0]  # then the parser's hint, as for --seeds 0 0
    assert first == f"mnist-lit: error: {option} must be distinct, got {' '.join(values)}"
    assert not (tmp_path / "s").exists()


def test_one_rate_is_refused_as_nothing_to_tune(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = study_args(tmp_path, tmp_path / "s")
    args[args.index("--n-trials") + 1] = "1"
    err = cli_error(args, capsys)
    assert "--n-trials must be at least 2, got 1: one rate leaves nothing to tune" in err


def test_a_study_dir_that_is_a_file_is_said_to_be_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    err = cli_error(study_args(tmp_path, file), capsys)
    assert err.strip() == (
        f"mnist-lit: error: --study-dir {file} is a file, not a folder: choose a folder (a "
        "new one, or the folder of the study to continue)."
    )
    assert file.read_text() == "mine"


def test_a_study_folder_in_use_is_refused_naming_its_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "busy"
    with StudyFolder(study).locked():
        err = cli_error(study_args(tmp_path, study), capsys)
    holder = f"pid {os.getpid()} on {socket.gethostname()}"
    assert err.strip() == (
        f"mnist-lit: error: --study-dir {study} is in use by another study ({holder}): wait "
        "for it to end, or give another --study-dir."
    )
    assert sorted(p.name for p in study.iterdir()) == ["study.lock"]  # nothing else written
    with StudyFolder(study).locked():  # free again once its holder is done
        pass


def test_an_invocation_is_recorded_from_its_start_and_one_cut_short_is_named(
    tmp_path: Path,
) -> None:
    # A file that lost its header to a full disk: its row still counts.
    (tmp_path / INVOCATIONS).write_text("2026-01-01T00:00:00+00:00,60.0,2,elsewhere,True\n")
    killed = StudyFolder(tmp_path)
    killed.begin_invocation(1)
    (row,) = _rows(tmp_path / INVOCATIONS)[1:]  # there already, and the header with it
    assert row["ended"] == "False"
    started = row["started"]
    # killed here: never ended
    folder = StudyFolder(tmp_path)
    folder.begin_invocation(1)
    folder.end_invocation(True)
    rows = _rows(tmp_path / INVOCATIONS)
    assert [r["ended"] for r in rows] == ["True", "False", "True"]
    assert folder.wall_time() == (
        f"1.0 min in 3 invocations (2, 1 workers); not run to their end (stopped or killed): "
        f"{started} on {socket.gethostname()}"
    )


def test_a_scheduler_without_workers_is_said_to_be_waited_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from distributed import LocalCluster

    from mnist_lit.study.cluster import open_engine

    with LocalCluster(
        n_workers=0, processes=False, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        threading.Timer(2.0, cluster.scale, [1]).start()  # a worker joins a little later
        with open_engine(0, address) as engine:
            assert engine.slots == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"--scheduler {address} has no workers yet: waiting for them (start them with "
        f"`dask worker {address}`; Ctrl-C stops the wait)."
    ]


@pytest.mark.slow
def test_ctrl_c_with_one_worker_mid_fit_is_exit_130_and_one_line(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "stopped"
    # One pair whose last round trains 120 epochs: Ctrl-C lands inside Lightning's fit.
    args = study_args(fake_mnist_dir, study)
    args[args.index("--epochs") + 1] = "120"
    del args[args.index("square_logits")]
    process = subprocess.Popen(
        [CONSOLE_SCRIPT, *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a terminal of its own: Ctrl-C reaches the whole group
    )
    wait_for_results(study, process, 4)  # rounds 0 and 1; the last round's first fit runs
    time.sleep(1.5)
    os.killpg(process.pid, signal.SIGINT)
    err = process.communicate(timeout=60)[1]
    assert process.returncode == 130, err
    assert err.strip().splitlines() == [INTERRUPTED], err
    assert len(written_results(study)) == 4  # stopped mid-fit, that fit not recorded
    (invocation,) = _rows(study / INVOCATIONS)
    assert invocation["ended"] == "False"


@pytest.mark.slow
def test_two_studies_started_at_once_on_one_folder_train_once(
    one_worker: tuple[Path, str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "raced"
    args = [CONSOLE_SCRIPT, *study_args(fake_mnist_dir, study)]
    racing = [
        subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    outcomes = sorted(
        (p.returncode, out, err) for p in racing for out, err in [p.communicate(timeout=300)]
    )
    (won, out, _), (lost, _, err) = outcomes
    assert (won, lost) == (0, 2), outcomes
    assert err.strip().startswith(f"mnist-lit: error: --study-dir {study} is in use by another ")
    assert "(pid " in err and len(err.strip().splitlines()) == 1, err
    assert len(fit_lines(out)) == TOTAL
    assert numbers(study) == numbers(one_worker[0])
    assert len(_rows(study / INVOCATIONS)) == 1
