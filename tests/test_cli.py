"""The ``mnist-lit`` command, run as a user runs it, on the fake IDX data."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torchvision

from mnist_lit.cli import MNISTLightningCLI
from tests.cli_helpers import FAST, TUTORIAL, cli_error


def mnist_lit(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run the installed console script; fail the test with its output if it fails."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("mnist-lit")), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_fit_then_test_best_in_a_new_process(fake_mnist_dir: Path, tmp_path: Path) -> None:
    data = [f"--data.data_dir={fake_mnist_dir}", "--data.val_size=100"]
    mnist_lit("fit", "--config", TUTORIAL, "--trainer.max_epochs=2", *data, *FAST, cwd=tmp_path)
    run = tmp_path / "logs" / "seed_cross_entropy" / "version_0"
    assert (run / "config.yaml").is_file()
    (best,) = (run / "checkpoints").glob("best-epoch*.ckpt")
    assert (run / "checkpoints" / "last.ckpt").is_file()

    out = mnist_lit("test", "--config", TUTORIAL, "--ckpt_path", "best", *data, *FAST, cwd=tmp_path)
    assert best.name in out
    (row,) = _metrics(tmp_path / "logs" / "seed_cross_entropy" / "version_1")
    assert float(row["test/acc"]) > 0.8


def test_user_loss_from_own_module(fake_mnist_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "my_losses.py").write_text(
        "import torch.nn.functional as F\n"
        "from torch import nn\n\n"
        "class Hinge(nn.Module):\n"
        "    def __init__(self, margin: float = 1.0):\n"
        "        super().__init__()\n"
        "        self.margin = margin\n\n"
        "    def forward(self, logits, target):\n"
        "        return F.multi_margin_loss(logits, target, margin=self.margin)\n"
    )
    mnist_lit(
        "fit",
        "--config",
        TUTORIAL,
        "--model.loss=my_losses.Hinge",
        "--model.loss.margin=0.5",
        "--trainer.max_epochs=1",
        f"--data.data_dir={fake_mnist_dir}",
        "--data.val_size=100",
        *FAST,
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])},
    )
    run = tmp_path / "logs" / "seed_cross_entropy" / "version_0"
    saved = (run / "config.yaml").read_text()
    assert "class_path: my_losses.Hinge" in saved and "margin: 0.5" in saved
    assert any(row["train/loss"] for row in _metrics(run))


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mnist_lit", "fit", "--config", TUTORIAL, "--print_config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "class_path: mnist_lit.losses.SoftmaxTwiceCrossEntropy" in result.stdout
    assert "lr: 0.5" in result.stdout


def test_missing_data_offline_is_one_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.chdir(tmp_path)
    err = cli_error(["fit", "--config", TUTORIAL, f"--data.data_dir={tmp_path}/empty"], capsys)
    assert err.startswith("mnist-lit: error: MNIST is not in")
    assert f"{tmp_path}/empty/MNIST/raw" in err


def test_best_without_a_previous_fit_is_explained(
    tmp_path: Path,
    fake_mnist_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "test",
        "--config",
        TUTORIAL,
        "--ckpt_path",
        "best",
        f"--data.data_dir={fake_mnist_dir}",
    ]
    err = cli_error(args, capsys)
    assert "no best checkpoint under logs/seed_cross_entropy" in err
    assert "Run `mnist-lit fit` with the same --config first" in err


def test_bad_option_value_names_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    err = cli_error(["fit", "--config", TUTORIAL, "--data.batch_size=0"], capsys)
    assert "data.batch_size must be a positive integer, got 0" in err


@pytest.mark.parametrize(("flag", "refresh_rate"), [("true", 20), ("false", None)])
def test_progress_bar_redraws_every_20_steps_or_is_off(
    flag: str, refresh_rate: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = MNISTLightningCLI(
        args=["--config", TUTORIAL, f"--trainer.enable_progress_bar={flag}"], run=False
    )
    bar = cli.trainer.progress_bar_callback
    assert (bar.refresh_rate if bar else None) == refresh_rate
