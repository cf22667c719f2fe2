"""SLURM for real (tests.slurm: one node of two CPUs on loopback): the study's workers as
SLURM jobs, ``configs/slurm/fit.sbatch``'s fit over two tasks, a job stopped by SLURM and
requeued; and, with only a fake ``srun`` on the PATH, a study that says no srun hint."""

from __future__ import annotations

import csv
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import pytest
import torch

from mnist_lit.cli import main
from tests.cli_helpers import CONSOLE_SCRIPT, REPO, console
from tests.slurm import slurm_cluster, squeue
from tests.study_helpers import numbers as _numbers
from tests.study_helpers import study_args as _study

SBATCH_SCRIPT = REPO / "configs" / "slurm" / "fit.sbatch"
SRUN_HINT = "The `srun` command is available on your system but is not used"
FIT = ["--config", str(REPO / "configs" / "seed_cross_entropy.yaml"), "--data.val_size=100",
       "--trainer.accelerator=cpu", "--trainer.strategy=ddp", "--trainer.max_epochs=2"]  # fmt: skip
RUN = "logs/seed_cross_entropy/version_0"


@pytest.fixture(scope="module")
def slurm() -> Iterator[dict[str, str]]:
    """The environment of a running SLURM, the project's console script on its PATH."""
    with slurm_cluster() as env:
        env["PATH"] = f"{Path(CONSOLE_SCRIPT).parent}{os.pathsep}{env['PATH']}"
        yield env


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


def _dask_processes(study: int) -> set[int]:
    """The study's process and every Dask worker (and nanny) SLURM started."""
    pids = {study}
    for process in psutil.process_iter(["cmdline"]):
        if any("distributed.cli.dask_worker" in part for part in process.info["cmdline"] or []):
            pids.add(process.pid)
    return pids


@pytest.mark.slurm
def test_the_study_on_slurm_jobs_gives_the_numbers_of_one_worker(
    slurm: dict[str, str], fake_mnist_dir: Path, tmp_path: Path
) -> None:
    main(_study(fake_mnist_dir, tmp_path / "one"))
    config = tmp_path / "dask"
    config.mkdir()
    (config / "jobqueue.yaml").write_text("jobqueue:\n  slurm:\n    memory: 3GB\n")
    env = {**slurm, "DASK_CONFIG": str(config)}
    study = tmp_path / "slurm"
    args = _study(fake_mnist_dir, study, "--slurm-jobs", "2", "--slurm-interface", "lo")
    process = subprocess.Popen(
        [CONSOLE_SCRIPT, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    listening: set[tuple[str, int]] = set()
    jobs: set[str] = set()
    while process.poll() is None:  # every server of the study and its workers, while it runs
        listening |= _listening(_dask_processes(process.pid))
        jobs |= {line.split()[0] for line in squeue(slurm) if "dask-worker" in line}
        time.sleep(1)
    out, err = process.communicate()
    assert process.returncode == 0, out + err
    assert len(jobs) == 2, jobs
    assert _numbers(study) == _numbers(tmp_path / "one")
    assert squeue(slurm) == []
    # The scheduler, both workers and nannies, and their dashboards: on loopback only.
    assert len(listening) >= 4, listening
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def _sbatch(env: dict[str, str], folder: Path, *args: str, options: Sequence[str] = ()) -> str:
    """``sbatch options configs/slurm/fit.sbatch args`` from ``folder``; the job's id."""
    result = subprocess.run(
        ["sbatch", "--parsable", *options, str(SBATCH_SCRIPT), *args],
        cwd=folder, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip().split(";")[0]


def _wait_until_gone(env: dict[str, str], job: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(line.split()[0] == job for line in squeue(env)):
            return
        time.sleep(1)
    raise AssertionError(f"job {job} still in squeue: {squeue(env)}")


def _job_state(env: dict[str, str], job: str) -> str:
    result = subprocess.run(
        ["scontrol", "show", "job", job], env=env, capture_output=True, text=True, check=False
    )
    return result.stdout


@pytest.fixture(scope="module")
def single_process(fake_mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fit of the sbatch tests in one process, with the two tasks' global batch."""
    folder = tmp_path_factory.mktemp("single")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        main(["fit", *FIT, f"--data.data_dir={fake_mnist_dir}", "--data.batch_size=64",
              "--trainer.devices=1"])  # fmt: skip
    finally:
        os.chdir(cwd)
    return folder / RUN


def _metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as file:
        return [row for row in csv.DictReader(file) if row.get("val/acc")]


def _best(run: Path) -> Path:
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    return best


def _same_fit(run: Path, single: Path) -> None:
    assert [r["val/acc"] for r in _metrics(run)] == [r["val/acc"] for r in _metrics(single)]
    for a, b in zip(_metrics(run), _metrics(single), strict=True):
        assert float(a["val/loss"]) == pytest.approx(float(b["val/loss"]), abs=1e-4)
    expected = _weights(_best(single))
    for name, value in _weights(_best(run)).items():
        assert torch.allclose(value, expected[name], atol=1e-5), name


@pytest.mark.slurm
def test_the_sbatch_fit_on_two_tasks_is_the_fit_of_one_process(
    slurm: dict[str, str], fake_mnist_dir: Path, single_process: Path, tmp_path: Path
) -> None:
    job = _sbatch(slurm, tmp_path, *FIT, f"--data.data_dir={fake_mnist_dir}",
                  "--data.batch_size=32")  # fmt: skip
    _wait_until_gone(slurm, job)
    log = (tmp_path / f"slurm-{job}.out").read_text()
    assert "ExitCode=0:0" in _job_state(slurm, job) or "fit: run folder" in log, log
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log, log
    assert [p.name for p in (tmp_path / "logs" / "seed_cross_entropy").iterdir()] == [
        "version_0"
    ], log
    _same_fit(tmp_path / RUN, single_process)
    test = console("test", *FIT[:2], f"--data.data_dir={fake_mnist_dir}",
                   f"--ckpt_path={_best(tmp_path / RUN)}", cwd=tmp_path)  # fmt: skip
    single = console("test", *FIT[:2], f"--data.data_dir={fake_mnist_dir}",
                     f"--ckpt_path={_best(single_process)}", cwd=tmp_path)  # fmt: skip
    assert test.returncode == single.returncode == 0, test.stderr + single.stderr
    tested = [line for line in test.stdout.splitlines() if "test/acc" in line]
    assert tested and tested == [line for line in single.stdout.splitlines() if "test/acc" in line]


def test_a_study_with_srun_on_the_path_says_no_srun_hint(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    srun = bin_folder / "srun"  # what a login node has: srun, but the study not run by it
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    for key in [k for k in env if k.startswith("SLURM_")]:
        del env[key]
    args = _study(fake_mnist_dir, tmp_path / "s", "--losses", "ce", "--epochs", "1")
    result = subprocess.run(
        [CONSOLE_SCRIPT, *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert SRUN_HINT not in result.stderr + result.stdout, result.stderr
    # The same fits without the study's quiet say it: the fake srun is found.
    fit = subprocess.run(
        [CONSOLE_SCRIPT, "fit", *FIT[:2], f"--data.data_dir={fake_mnist_dir}",
         "--trainer.max_epochs=1", "--data.val_size=100"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert fit.stderr.count(SRUN_HINT) == 1, fit.stderr


# Steps slowed down, so that the test catches the job mid-epoch; the numbers stay the same.
SLOW = """
import time
from lightning.pytorch.callbacks import Callback

class SlowSteps(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(0.5)
"""


def _all_rows(run: Path) -> list[dict[str, float]]:
    with (run / "metrics.csv").open() as file:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(file)]


@pytest.mark.slurm
def test_a_requeued_sbatch_fit_goes_on_in_its_run_as_if_it_had_not_stopped(
    slurm: dict[str, str], fake_mnist_dir: Path, single_process: Path, tmp_path: Path
) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    env = {**slurm, "PYTHONPATH": path}
    started = time.monotonic()
    job = _sbatch(env, tmp_path, *FIT, f"--data.data_dir={fake_mnist_dir}",
                  "--data.batch_size=32", "--trainer.callbacks+=slow.SlowSteps",
                  options=["--ntasks-per-node=2"])  # fmt: skip
    run = tmp_path / RUN
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "last.ckpt").exists():  # epoch 0 done: epoch 1 runs
        assert time.monotonic() < deadline, (tmp_path / f"slurm-{job}.out").read_text()
        time.sleep(0.2)
    # What SLURM sends 90 s before the time limit (--signal=SIGUSR1@90): Lightning saves
    # an hpc checkpoint and requeues the job.
    subprocess.run(["scancel", "--signal=USR1", job], env=env, check=True)
    signalled = time.monotonic()
    _wait_until_gone(env, job)
    after = time.monotonic() - signalled
    print(f"signalled {signalled - started:.0f} s after sbatch, done {after:.0f} s later")
    log = (tmp_path / f"slurm-{job}.out").read_text()
    assert "Handling auto-requeue signal" in log, log
    assert "DUE TO JOB REQUEUE" in log, log
    assert "--ckpt_path hpc: hpc_ckpt_1.ckpt, saved when SLURM stopped the job" in log, log
    assert "fit: run folder" in log, log
    # One run folder, continued mid-epoch 1 (steps 8 to 15) from the checkpoint's step.
    assert [p.name for p in run.parent.iterdir()] == ["version_0"], log
    (continued,) = run.glob("config-continued-step*.yaml")
    assert 8 < int(continued.stem.removeprefix("config-continued-step")) < 16, continued
    assert not list(tmp_path.glob("hpc_ckpt_*.ckpt"))  # spent once the fit ended
    _same_fit(run, single_process)
    rows, expected = _all_rows(run), _all_rows(single_process)
    assert [row.keys() for row in rows] == [row.keys() for row in expected]
    for row, other in zip(rows, expected, strict=True):
        for key, value in row.items():
            assert value == pytest.approx(other[key], abs=1e-5), key
