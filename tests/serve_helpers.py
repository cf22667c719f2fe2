"""What the export and serving tests share: small checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

from mnist_lit.cli import main
from tests.cli_helpers import REPO, TUTORIAL, fake_data

MLP_CONFIG = str(REPO / "configs" / "mlp.yaml")  # normalised pixels


def train_small_checkpoints(data_dir: Path, folder: Path) -> dict[str, Path]:
    """One epoch each on the fake data, in ``folder``: the tutorial's softmax regression
    (pixels in [0, 1]) and an MLP (normalised pixels)."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        for config in (TUTORIAL, MLP_CONFIG):
            main(["fit", "--config", config, "--trainer.max_epochs=1", *fake_data(data_dir)])
    finally:
        os.chdir(previous)
    return {
        "tutorial": folder / "logs/seed_cross_entropy/version_0/checkpoints/last.ckpt",
        "mlp": folder / "logs/mlp/version_0/checkpoints/last.ckpt",
    }
