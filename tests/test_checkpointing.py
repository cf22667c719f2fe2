"""Checkpoints are written whole or not at all; ``last.ckpt`` follows every epoch."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from mnist_lit.cli import main
from mnist_lit.runs.checkpointing import AtomicCheckpointIO, read_checkpoint
from mnist_lit.runs.errors import MnistLitError
from tests.cli_helpers import TUTORIAL, console, fake_data, with_pythonpath


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.arange(3)}, tmp_path / "sub" / "last.ckpt")
    assert torch.equal(io.load_checkpoint(tmp_path / "sub" / "last.ckpt")["w"], torch.arange(3))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["last.ckpt"]


def test_a_checkpoint_that_cannot_be_serialised_touches_no_file(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(1000)}, path)
    good = path.read_bytes()
    with pytest.raises(Exception, match="pickle"):  # a lambda cannot be pickled
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(1000), "bad": lambda: 0}, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_partial_file_left_by_a_kill_is_replaced_by_the_next_save(tmp_path: Path) -> None:
    (tmp_path / ".last.ckpt.partial").write_bytes(b"half a checkpoint")
    AtomicCheckpointIO().save_checkpoint({"epoch": 3}, tmp_path / "last.ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    assert AtomicCheckpointIO().load_checkpoint(tmp_path / "last.ckpt")["epoch"] == 3


def test_last_checkpoint_follows_every_epoch(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # lr ~0 learns nothing: val/acc never improves, so only epoch 0 is ever the best.
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", TUTORIAL, "--model.optimizer.lr=1e-12", "--trainer.max_epochs=3",
          *fake_data(fake_mnist_dir)])  # fmt: skip
    checkpoints = tmp_path / "logs" / "seed_cross_entropy" / "version_0" / "checkpoints"
    (best,) = checkpoints.glob("best-*.ckpt")
    assert read_checkpoint(best)["epoch"] == 0
    assert read_checkpoint(checkpoints / "last.ckpt")["epoch"] == 2


# Killed in the middle of saving epoch 1's checkpoint: the bomb goes off while the
# checkpoint is being serialised, after the writer has begun its work.
KILLER = """
import os, signal
from lightning.pytorch.callbacks import Callback

class Bomb:
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)

class KillWhileSaving(Callback):
    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        if trainer.current_epoch == 1:
            checkpoint["bomb"] = Bomb()
"""

# A writer that is not atomic: it opens the target itself, so a kill leaves it broken.
DIRECT_WRITER = """
import os, torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

class DirectWriteIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint, path, storage_options=None):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.save(checkpoint, path)
"""


def _fit_killed_while_saving(data_dir: Path, cwd: Path, *options: str) -> Path:
    (cwd / "killer.py").write_text(KILLER)
    (cwd / "direct_io.py").write_text(DIRECT_WRITER)
    # lr ~0: epoch 1 does not improve on epoch 0, so last.ckpt is the only file it saves.
    killed = console("fit", "--config", TUTORIAL, "--model.optimizer.lr=1e-12",
                     "--trainer.max_epochs=3", "--trainer.callbacks+=killer.KillWhileSaving",
                     *fake_data(data_dir), *options, cwd=cwd, env=with_pythonpath(cwd))  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return cwd / "logs" / "seed_cross_entropy" / "version_0" / "checkpoints"


@pytest.mark.slow
def test_a_kill_while_saving_keeps_the_previous_checkpoint(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    checkpoints = _fit_killed_while_saving(fake_mnist_dir, tmp_path)
    assert read_checkpoint(checkpoints / "last.ckpt")["epoch"] == 0
    # Nothing half-written remains: just epoch 0's two checkpoints.
    best, last = sorted(p.name for p in checkpoints.iterdir())
    assert best.startswith("best-epoch00-") and last == "last.ckpt"


@pytest.mark.slow
def test_the_same_kill_breaks_a_writer_that_is_not_atomic(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    # Shows that the test above can fail: here last.ckpt is lost.
    checkpoints = _fit_killed_while_saving(
        fake_mnist_dir, tmp_path, "--trainer.plugins=direct_io.DirectWriteIO"
    )
    with pytest.raises(MnistLitError, match="not a readable Lightning checkpoint"):
        read_checkpoint(checkpoints / "last.ckpt")
