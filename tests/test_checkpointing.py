"""Checkpoints are written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from mnist_lit import MNISTClassifier, MNISTDataModule
from mnist_lit.checkpointing import AtomicCheckpointIO, BestAndLastCheckpoint


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.arange(3)}, tmp_path / "sub" / "last.ckpt")
    assert torch.equal(io.load_checkpoint(tmp_path / "sub" / "last.ckpt")["w"], torch.arange(3))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["last.ckpt"]


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(1000)}, path)
    good = path.read_bytes()
    # A lambda cannot be pickled: torch.save fails after writing part of the file.
    with pytest.raises(Exception, match="pickle"):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(1000), "bad": lambda: 0}, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_last_checkpoint_follows_every_epoch(fake_mnist_dir: Path, tmp_path: Path) -> None:
    # lr ~0 learns nothing: val/acc never improves, so only epoch 0 is ever the best.
    callback = BestAndLastCheckpoint(
        dirpath=tmp_path, monitor="val/acc", mode="max", save_top_k=1, save_last=True
    )
    trainer = L.Trainer(
        max_epochs=3, callbacks=[callback], logger=False, enable_progress_bar=False,
        enable_model_summary=False, plugins=[AtomicCheckpointIO()],
    )  # fmt: skip
    datamodule = MNISTDataModule(str(fake_mnist_dir), batch_size=100, val_size=100)
    trainer.fit(MNISTClassifier(lr=1e-12), datamodule)
    load = AtomicCheckpointIO().load_checkpoint
    assert load(tmp_path / "last.ckpt")["epoch"] == 2
    assert load(callback.best_model_path)["epoch"] == 0
