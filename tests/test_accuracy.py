"""The tutorial's results on the real MNIST: about 30 s of training each on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.cli import LightningCLI

from mnist_lit.runs.lightning_cli import MNISTLightningCLI

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.real_data


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the configs' CSV logger writes to logs/ here


def fit_and_test(config: str, data_dir: Path, workdir: Path) -> float:
    """Train a shipped config as is, then test its best checkpoint; return test accuracy."""
    cli: LightningCLI = MNISTLightningCLI(
        args=[
            "fit",
            "--config",
            str(REPO / "configs" / config),
            f"--data.data_dir={data_dir}",
            f"--trainer.default_root_dir={workdir}",
            f"--trainer.logger.save_dir={workdir}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    (result,) = cli.trainer.test(cli.model, cli.datamodule, ckpt_path="best", verbose=False)
    return result["test/acc"]


def test_tutorial_config_reaches_92_percent(real_mnist_dir: Path, tmp_path: Path) -> None:
    assert fit_and_test("seed_cross_entropy.yaml", real_mnist_dir, tmp_path) >= 0.920


def test_quadratic_config_reaches_91_5_percent(real_mnist_dir: Path, tmp_path: Path) -> None:
    assert fit_and_test("quadratic.yaml", real_mnist_dir, tmp_path) >= 0.915
