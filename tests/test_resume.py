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

from mnist_lit.cli import TERMINATED, main
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


def test_resume_from_last_equals_a_straight_run(fake_mnist_dir: Path, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    straight.mkdir()
    resumed.mkdir()
    _fit(straight, fake_mnist_dir, "--trainer.max_epochs=4")
    _fit(resumed, fake_mnist_dir, "--trainer.max_epochs=2")
    assert _checkpoint_epoch(_run(resumed) / "checkpoints" / "last.ckpt") == 1
    _fit(resumed, fake_mnist_dir, "--trainer.max_epochs=4", "--ckpt_path=last")

    # last.ckpt is written after epoch 1's validation, so the resumed run first ends epoch 1
    # again (one more validation, logged again); epochs 2 and 3 are the new ones.
    def later_epochs(run: Path) -> list[dict[str, float]]:
        return [row for row in _metrics(run) if row["epoch"] >= 2]

    _assert_same_metrics(later_epochs(_run(resumed, version=1)), later_epochs(_run(straight)))
    _assert_same_weights(
        _run(straight) / "checkpoints" / "last.ckpt",
        _run(resumed, version=1) / "checkpoints" / "last.ckpt",
    )


KILLER = """
import os, signal
from lightning.pytorch.callbacks import Callback

class KillMidEpoch(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 3:
            os.kill(os.getpid(), signal.SIGKILL)

class TerminateMidEpoch(Callback):  # as a scheduler or `docker stop` does
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 3:
            os.kill(os.getpid(), signal.SIGTERM)
"""


@pytest.mark.slow
def test_a_fit_killed_mid_epoch_resumes_from_last_and_finishes(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "killer.py").write_text(KILLER)
    command = [str(Path(sys.executable).with_name("mnist-lit")), "fit", "--config", TUTORIAL,
               f"--data.data_dir={fake_mnist_dir}", "--data.val_size=100", *FAST,
               "--trainer.max_epochs=3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )

    killed = run("--trainer.callbacks+=killer.KillMidEpoch")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoints = _run(tmp_path) / "checkpoints"
    assert _checkpoint_epoch(checkpoints / "last.ckpt") == 0  # epoch 1 died half-way

    resumed = run("--ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr
    assert "version_0/checkpoints/last.ckpt" in resumed.stderr
    assert _checkpoint_epoch(_run(tmp_path, version=1) / "checkpoints" / "last.ckpt") == 2


@pytest.mark.slow
def test_a_fit_stopped_by_sigterm_fails_in_one_line_and_keeps_its_checkpoints(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "killer.py").write_text(KILLER)
    stopped = subprocess.run(
        [str(Path(sys.executable).with_name("mnist-lit")), "fit", "--config", TUTORIAL,
         f"--data.data_dir={fake_mnist_dir}", "--data.val_size=100", *FAST,
         "--trainer.max_epochs=3", "--trainer.callbacks+=killer.TerminateMidEpoch"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])},
    )  # fmt: skip
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == TERMINATED, stopped.stderr
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
                 "--model.lr_scheduler.step_size=1", "--model.lr_scheduler.gamma=1e30"]  # fmt: skip
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
