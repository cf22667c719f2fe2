"""Checkpoints are written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mnist_lit.checkpoint_io import AtomicCheckpointIO


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
