"""What a new user meets at the console: the nearest option named, a path that cannot be a
folder, a pipe closed early, ``python -m mnist_lit``, and anomaly detection's NaN, each one
message (or none) instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.demos.boring_classes import BoringModel

from tests.cli_helpers import (
    CONSOLE_SCRIPT,
    REPO,
    TUTORIAL,
    console,
    console_error,
    fake_data,
    with_pythonpath,
)

NAN_LOSS = '''
import torch
import yaml
import torch.nn.functional as F
from torch import nn


class NanAfterFour(nn.Module):
    """Cross-entropy for four steps, then a loss whose gradient is NaN."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, logits, target):
        self.calls += 1
        loss = F.cross_entropy(logits, target)
        return loss if self.calls <= 4 else torch.sqrt(loss - 100)
'''


@pytest.mark.parametrize(
    ("typed", "nearest"),
    [("--model.lrr", "--model.optimizer.lr"), ("--model.lr", "--model.optimizer.lr"),
     ("--dat.batch_size", "--data.batch_size")],
    ids=["typo", "old-name", "typo-in-group"],
)  # fmt: skip
def test_an_unknown_option_names_the_nearest(typed: str, nearest: str, tmp_path: Path) -> None:
    err = console_error("fit", "--config", TUTORIAL, typed, "0.1", cwd=tmp_path)
    assert f"(did you mean {nearest}?)" in err, err


def test_a_path_inside_a_file_says_that_it_is_not_a_folder(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "plain").write_text("a file, not a folder")
    err = console_error("fit", "--config", TUTORIAL, *fake_data(fake_mnist_dir),
                        "--trainer.max_epochs=1", "--checkpoint.dirpath=plain/ckpts",
                        cwd=tmp_path)  # fmt: skip
    assert f"({tmp_path / 'plain'} is a file, not a folder, so nothing can be written in it)" in err


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    shell = f"'{CONSOLE_SCRIPT}' --print_completion zsh | head -1"
    result = subprocess.run(shell, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.startswith("#compdef mnist-lit")
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_python_m_mnist_lit_calls_itself_mnist_lit(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mnist_lit", "--help"], cwd=tmp_path,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0 and result.stdout.startswith("usage: mnist-lit ")


def test_anomaly_detections_nan_is_one_message(fake_mnist_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "nan_loss.py").write_text(NAN_LOSS)
    anomaly = str(Path(TUTORIAL).parent / "debug" / "anomaly.yaml")
    result = console("fit", "--config", TUTORIAL, "--config", anomaly,
                     "--model.loss=nan_loss.NanAfterFour", *fake_data(fake_mnist_dir),
                     cwd=tmp_path, env=with_pythonpath(tmp_path))  # fmt: skip
    # Anomaly detection's own warning shows where the forward pass ran; no exception follows.
    err = result.stderr
    assert result.returncode == 2 and "Traceback (most recent call last)" not in err, err
    assert err.count("mnist-lit: error: ") == 1
    assert "anomaly detection found a NaN in the backward pass (Function 'SqrtBackward0'" in err


def test_a_checkpoint_of_python_objects_gets_no_advice_to_unpickle_it(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    torch.save({"state_dict": {}, "extra": Fraction(1, 3)}, tmp_path / "objects.ckpt")
    err = console_error("test", "--ckpt_path=objects.ckpt", *fake_data(fake_mnist_dir),
                        cwd=tmp_path)  # fmt: skip
    assert "holds Python objects besides tensors and plain values" in err, err
    assert "weights_only" not in err


def test_another_modules_checkpoint_was_not_written_by_the_classifier(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(BoringModel())
    trainer.save_checkpoint(tmp_path / "boring.ckpt")
    err = console_error("test", "--ckpt_path=boring.ckpt", *fake_data(fake_mnist_dir),
                        cwd=tmp_path)  # fmt: skip
    assert "boring.ckpt was not written by MNISTClassifier" in err, err


def test_ckpt_path_best_says_which_file_it_chose(fake_mnist_dir: Path, tmp_path: Path) -> None:
    fit = console("fit", "--config", TUTORIAL, "--trainer.max_epochs=1",
                  *fake_data(fake_mnist_dir), cwd=tmp_path)  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    tested = console("test", "--config", TUTORIAL, "--ckpt_path=best",
                     *fake_data(fake_mnist_dir), cwd=tmp_path)  # fmt: skip
    assert tested.returncode == 0, tested.stderr
    chosen = "--ckpt_path best: logs/seed_cross_entropy/version_0/checkpoints/best-epoch00-"
    assert chosen in tested.stderr, tested.stderr


def test_a_dry_run_test_keeps_no_figures(fake_mnist_dir: Path, tmp_path: Path) -> None:
    dry_run = str(Path(TUTORIAL).parent / "debug" / "fast_dev_run.yaml")
    result = console("test", "--config", TUTORIAL, "--config", dry_run,
                     *fake_data(fake_mnist_dir), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_print_config_files_the_loggers_where_the_run_goes(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    printed = console("fit", "--config", TUTORIAL, "--print_config", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    config = yaml.safe_load(printed.stdout)
    names = [logger["init_args"]["name"] for logger in config["trainer"]["logger"]]
    assert names == ["seed_cross_entropy", "seed_cross_entropy"]
    # No version: the printed config, saved and run twice, gives two runs.
    assert all(logger["init_args"].get("version") is None for logger in config["trainer"]["logger"])
    saved = tmp_path / "printed.yaml"
    saved.write_text(printed.stdout)
    for _ in range(2):
        run = console("fit", "--config", str(saved), *fake_data(fake_mnist_dir),
                      "--trainer.max_epochs=1", cwd=tmp_path)  # fmt: skip
        assert run.returncode == 0, run.stderr
    runs = sorted(p.name for p in (tmp_path / "logs" / "seed_cross_entropy").iterdir())
    assert runs == ["version_0", "version_1"]


def test_the_model_summary_counts_flops_and_sizes(fake_mnist_dir: Path, tmp_path: Path) -> None:
    run = console("fit", "--config", str(REPO / "configs" / "cnn.yaml"),
                  f"--data.data_dir={fake_mnist_dir}", "--data.val_size=100",
                  "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
                  cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    flops = next(line for line in run.stdout.splitlines() if "Total FLOPs" in line)
    assert flops.split(":")[1].split()[0] not in ("0", ""), flops


def test_hparams_yaml_has_the_options_and_the_checkpoint_rebuilds_the_model(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    run = console("fit", "--config", str(REPO / "configs" / "cnn.yaml"), *fake_data(fake_mnist_dir),
                  "--trainer.max_epochs=1", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "logs" / "cnn" / "version_0"
    hparams = yaml.safe_load((folder / "hparams.yaml").read_text())
    assert hparams["optimizer"]["init_args"]["lr"] == 0.05 and "_instantiator" not in hparams
    (best,) = (folder / "checkpoints").glob("best-*.ckpt")
    checkpoint = torch.load(best, weights_only=True)
    assert "_instantiator" in checkpoint["hyper_parameters"]  # what rebuilds the parts
    tested = console("test", f"--ckpt_path={best}", *fake_data(fake_mnist_dir), cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr
