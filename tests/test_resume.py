"""Same seed, same run; resume is exact; a killed or diverged fit keeps its checkpoints."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lit.cli import INTERRUPTED, TERMINATED, main
from mnist_lit.runs.tracking import keep_rows_before
from tests.cli_helpers import FAST, REPO, TUTORIAL

# A small CNN with dropout (random draws every step), momentum and a decaying learning rate
# (optimizer and scheduler state): all of it must come back from a checkpoint.
STATEFUL = [
    "--model.loss=mnist_lit.losses.CrossEntropy",
    "--model.net=mnist_lit.models.CNN",
    "--model.net.channels=[4, 8]",
    "--model.net.hidden=16",
    "--model.optimizer=torch.optim.SGD",
    "--model.optimizer.lr=0.05",
    "--model.optimizer.momentum=0.9",
    "--model.lr_scheduler=torch.optim.lr_scheduler.StepLR",
    "--model.lr_scheduler.step_size=1",
    "--model.lr_scheduler.gamma=0.7",
    # The config's folder, as the runs without these options (a loss given here would
    # otherwise name it: seed_cross_entropy-CrossEntropy).
    "--experiment=seed_cross_entropy",
]


def _fit(cwd: Path, data_dir: Path, *args: str) -> None:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        main(["fit", "--config", TUTORIAL, f"--data.data_dir={data_dir}", "--data.val_size=100",
              *FAST, *STATEFUL, *args])  # fmt: skip
    finally:
        os.chdir(old)


def _run(cwd: Path, version: int = 0) -> Path:
    return cwd / "logs" / "seed_cross_entropy" / f"version_{version}"


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def _checkpoint_epoch(checkpoint: Path) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"]


def _metrics(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def _assert_same_metrics(a: list[dict[str, float]], b: list[dict[str, float]]) -> None:
    assert [row.keys() for row in a] == [row.keys() for row in b]
    for row_a, row_b in zip(a, b, strict=True):
        for key in row_a:
            assert row_a[key] == pytest.approx(row_b[key], abs=1e-6), key


def _assert_same_weights(a: Path, b: Path) -> None:
    weights_a, weights_b = _weights(a), _weights(b)
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        torch.testing.assert_close(weights_a[key], weights_b[key], atol=1e-6, rtol=0, msg=key)


def test_same_seed_gives_the_same_run(fake_mnist_dir: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for cwd in (first, second):
        cwd.mkdir()
        _fit(cwd, fake_mnist_dir, "--trainer.max_epochs=2")
    _assert_same_metrics(_metrics(_run(first)), _metrics(_run(second)))
    _assert_same_weights(
        _run(first) / "checkpoints" / "last.ckpt", _run(second) / "checkpoints" / "last.ckpt"
    )
    # And the seed matters: otherwise the comparison above proves nothing.
    other = tmp_path / "other"
    other.mkdir()
    _fit(other, fake_mnist_dir, "--trainer.max_epochs=2", "--seed_everything=7")
    assert _metrics(_run(other)) != _metrics(_run(first))


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every curve of the run as TensorBoard shows it: (step, value) per tag."""
    events = EventAccumulator(str(run))
    events.Reload()
    return {
        tag: [(event.step, round(event.value, 6)) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def test_resume_from_last_equals_a_straight_run(fake_mnist_dir: Path, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    straight.mkdir()
    resumed.mkdir()
    _fit(straight, fake_mnist_dir, "--trainer.max_epochs=4")
    _fit(resumed, fake_mnist_dir, "--trainer.max_epochs=2")
    assert _checkpoint_epoch(_run(resumed) / "checkpoints" / "last.ckpt") == 1
    _fit(resumed, fake_mnist_dir, "--trainer.max_epochs=4", "--ckpt_path=last")

    # The run continues in its own folder: one metrics.csv, one set of TensorBoard curves
    # and one best checkpoint, as if it had never stopped.
    assert not _run(resumed, version=1).exists()
    run = _run(resumed)
    _assert_same_metrics(_metrics(run), _metrics(_run(straight)))
    assert _scalars(run) == _scalars(_run(straight))
    _assert_same_weights(
        _run(straight) / "checkpoints" / "last.ckpt", run / "checkpoints" / "last.ckpt"
    )
    best = sorted(p.name for p in (_run(straight) / "checkpoints").glob("best-*"))
    assert sorted(p.name for p in (run / "checkpoints").glob("best-*")) == best
    # The config that started it is kept; the continuation's is beside it.
    assert "max_epochs: 2" in (run / "config.yaml").read_text()
    assert "max_epochs: 4" in (run / "config-continued-step16.yaml").read_text()

    # From any other checkpoint, a fit is a run of its own: the first one is left as it was.
    before = (run / "metrics.csv").read_text()
    _fit(
        resumed,
        fake_mnist_dir,
        "--trainer.max_epochs=5",
        f"--ckpt_path={run / 'checkpoints' / best[0]}",
    )
    assert (_run(resumed, version=1) / "metrics.csv").is_file()
    assert (run / "metrics.csv").read_text() == before


def test_a_crash_while_the_rows_are_rewritten_keeps_them(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="run", version=0)
    logger.log_metrics({"epoch": 0, "val/acc": 0.5}, step=7)
    logger.log_metrics({"epoch": 1, "val/acc": 0.75}, step=15)
    logger.log_metrics({"epoch": 2, "val/acc": 0.875}, step=23)
    logger.save()
    metrics = tmp_path / "run" / "version_0" / "metrics.csv"
    written = metrics.read_text()
    # A crash after Lightning deleted metrics.csv, before the rows were saved again; and
    # rows that are not whole (cut short by a kill, damaged) are left out, not a traceback.
    metrics.rename(metrics.with_name(".metrics.csv.earlier"))
    with metrics.with_name(".metrics.csv.earlier").open("a") as earlier:
        earlier.write("x,6,0.5\n0,5\n")
    keep_rows_before(CSVLogger(tmp_path, name="run", version=0), step=16)
    assert metrics.read_text() == "".join(written.splitlines(keepends=True)[:3])
    assert not metrics.with_name(".metrics.csv.earlier").exists()


KILLER = """
import os, signal
from lightning.pytorch.callbacks import Callback

class KillMidEpoch(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 3:
            os.kill(os.getpid(), signal.SIGKILL)

class KillAfterValidation(Callback):  # epoch 1's metrics logged, its last.ckpt not yet
    def on_validation_end(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

class StopAsSlurmDoes(Callback):  # Lightning's SIGUSR1 handler on SLURM, then the requeue's kill
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 3:
            for logger in trainer.loggers:
                logger.finalize("finished")
            trainer.save_checkpoint(os.path.join(trainer.default_root_dir, "hpc_ckpt_1.ckpt"))
            os.kill(os.getpid(), signal.SIGKILL)

class TerminateMidEpoch(Callback):  # as a scheduler or `docker stop` does
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 3:
            os.kill(os.getpid(), signal.SIGTERM)

class InterruptMidEpoch(Callback):  # as Ctrl-C in a terminal does
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 3:
            os.kill(os.getpid(), signal.SIGINT)
"""


@pytest.mark.slow
@pytest.mark.parametrize("killer", ["KillMidEpoch", "KillAfterValidation"])
def test_a_killed_fit_continues_its_run_as_if_it_had_never_stopped(
    killer: str, fake_mnist_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "killer.py").write_text(KILLER)
    command = [str(Path(sys.executable).with_name("mnist-lit")), "fit", "--config", TUTORIAL,
               f"--data.data_dir={fake_mnist_dir}", "--data.val_size=100", *FAST,
               "--trainer.max_epochs=3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}

    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )

    killed = run(f"--trainer.callbacks+=killer.{killer}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoints = _run(tmp_path) / "checkpoints"
    assert _checkpoint_epoch(checkpoints / "last.ckpt") == 0  # epoch 1 died
    if killer == "KillAfterValidation":  # records past the checkpoint, to be taken again
        assert max(row["epoch"] for row in _metrics(_run(tmp_path))) == 1
        assert max(step for step, _ in _scalars(_run(tmp_path))["val/acc"]) == 15

    resumed = run("--ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr
    assert "version_0/checkpoints/last.ckpt" in resumed.stderr
    assert not _run(tmp_path, version=1).exists()
    assert _checkpoint_epoch(checkpoints / "last.ckpt") == 2

    straight = tmp_path / "straight"
    straight.mkdir()
    assert run(cwd=straight).returncode == 0
    _assert_same_metrics(_metrics(_run(tmp_path)), _metrics(_run(straight)))
    assert _scalars(_run(tmp_path)) == _scalars(_run(straight))
    _assert_same_weights(checkpoints / "last.ckpt", _run(straight) / "checkpoints" / "last.ckpt")


@pytest.mark.slow
def test_a_fit_stopped_mid_epoch_by_slurm_goes_on_from_its_hpc_checkpoint_in_its_run(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "killer.py").write_text(KILLER)
    command = [str(Path(sys.executable).with_name("mnist-lit")), "fit", "--config", TUTORIAL,
               f"--data.data_dir={fake_mnist_dir}", "--data.val_size=100", *FAST, *STATEFUL,
               "--trainer.max_epochs=3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}

    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )

    stopped = run("--trainer.callbacks+=killer.StopAsSlurmDoes")
    assert stopped.returncode == -signal.SIGKILL, stopped.stderr
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    assert torch.load(hpc, weights_only=False)["global_step"] == 12  # epoch 1, batch 3 done
    # As the requeued job does: Lightning's --ckpt_path hpc (on SLURM, what no path means).
    resumed = run("--ckpt_path=hpc")
    assert resumed.returncode == 0, resumed.stderr
    assert "--ckpt_path hpc: hpc_ckpt_1.ckpt, saved when SLURM stopped" in resumed.stderr
    assert "not resumable" not in resumed.stderr  # Lightning's warning for a loader without state
    assert not _run(tmp_path, version=1).exists()
    assert not hpc.exists()  # spent: a later fit here starts a run of its own

    straight = tmp_path / "straight"
    straight.mkdir()
    assert run(cwd=straight).returncode == 0
    _assert_same_metrics(_metrics(_run(tmp_path)), _metrics(_run(straight)))
    assert _scalars(_run(tmp_path)) == _scalars(_run(straight))
    checkpoints = _run(tmp_path) / "checkpoints"
    _assert_same_weights(checkpoints / "last.ckpt", _run(straight) / "checkpoints" / "last.ckpt")
    best = sorted(p.name for p in (_run(straight) / "checkpoints").glob("best-*"))
    assert sorted(p.name for p in checkpoints.glob("best-*")) == best


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stopper", "status", "line"),
    [
        ("TerminateMidEpoch", 128 + signal.SIGTERM, TERMINATED),
        ("InterruptMidEpoch", 130, INTERRUPTED),  # Ctrl-C, which Lightning turns into exit 1
    ],
)
def test_a_fit_stopped_by_sigterm_or_ctrl_c_fails_in_one_line_and_keeps_its_checkpoints(
    stopper: str, status: int, line: str, fake_mnist_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "killer.py").write_text(KILLER)
    stopped = subprocess.run(
        [str(Path(sys.executable).with_name("mnist-lit")), "fit", "--config", TUTORIAL,
         f"--data.data_dir={fake_mnist_dir}", "--data.val_size=100", *FAST,
         "--trainer.max_epochs=3", f"--trainer.callbacks+=killer.{stopper}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])},
    )  # fmt: skip
    assert stopped.returncode == status, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == line, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert _checkpoint_epoch(_run(tmp_path) / "checkpoints" / "last.ckpt") == 0


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
    fake_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Epoch 0 trains at lr 0.1; then the scheduler multiplies it by 1e30 and the MLP diverges.
    diverging = ["--model.net=mnist_lit.models.MLP", "--model.loss=mnist_lit.losses.CrossEntropy",
                 "--data.normalize=true", "--model.optimizer=torch.optim.SGD",
                 "--model.optimizer.lr=0.1",
                 "--model.lr_scheduler=torch.optim.lr_scheduler.StepLR",
                 "--model.lr_scheduler.step_size=1", "--model.lr_scheduler.gamma=1e30",
                 "--experiment=seed_cross_entropy"]  # fmt: skip
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", "--config", TUTORIAL, f"--data.data_dir={fake_mnist_dir}",
                  "--data.val_size=100", "--trainer.max_epochs=3", *FAST, *diverging])  # fmt: skip
    finally:
        os.chdir(old)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        "mnist-lit: error: the training loss became non-finite (nan or inf) in epoch 1 at step"
        in err
    )
    checkpoints = _run(tmp_path) / "checkpoints"
    assert _checkpoint_epoch(checkpoints / "last.ckpt") == 0
    assert all(w.isfinite().all() for w in _weights(checkpoints / "last.ckpt").values())
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "best-epoch00-acc1.0000.ckpt",
        "last.ckpt",
    ]
