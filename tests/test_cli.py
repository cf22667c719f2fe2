"""The ``mnist-lit`` command, run as a user runs it, on the fake IDX data."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mnist_lit.cli import LIGHTNING_COMMANDS, main
from mnist_lit.runs.checkpointing import read_checkpoint
from mnist_lit.runs.lightning_cli import MNISTLightningCLI
from tests.cli_helpers import FAST, REPO, TUTORIAL, console, fake_data


def mnist_lit(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run the installed console script; fail the test with its output if it fails."""
    result = console(*args, cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_fit_then_test_best_in_a_new_process(
    fake_mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = [f"--data.data_dir={fake_mnist_dir}", "--data.val_size=100"]
    monkeypatch.chdir(tmp_path)  # the fit runs here, the test in a process of its own
    main(["fit", "--config", TUTORIAL, "--trainer.max_epochs=2", *data, *FAST])
    run = tmp_path / "logs" / "seed_cross_entropy" / "version_0"
    assert (run / "config.yaml").is_file()
    (best,) = (run / "checkpoints").glob("best-epoch*.ckpt")
    assert (run / "checkpoints" / "last.ckpt").is_file()
    # As docs/tools.md says: two rows per epoch, the training metrics and the validation's.
    assert "`metrics.csv`, two rows per\nepoch" in (REPO / "docs" / "tools.md").read_text()
    rows = _metrics(run)
    assert len(rows) == 2 * 2 and [bool(r["val/acc"]) for r in rows] == [True, False] * 2
    # The last line says where the run went.
    last = capsys.readouterr().out.strip().splitlines()[-1]
    where = f"fit: run folder {Path('logs/seed_cross_entropy/version_0')}"
    assert last == f"{where}, best checkpoint {best.relative_to(tmp_path)}", last

    out = mnist_lit("test", "--config", TUTORIAL, "--ckpt_path", "best", *data, *FAST, cwd=tmp_path)
    assert best.name in out
    assert "test: run folder logs/seed_cross_entropy/version_1" in out.splitlines(), out
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
    # The console script, run from the folder holding my_losses.py, as the README says,
    # its output a pipe: no progress bar is drawn into it.
    out = mnist_lit(
        "fit",
        "--config",
        TUTORIAL,
        "--model.loss=my_losses.Hinge",
        "--model.loss.margin=0.5",
        "--trainer.max_epochs=1",
        f"--data.data_dir={fake_mnist_dir}",
        "--data.val_size=100",
        "--trainer.enable_model_summary=false",
        cwd=tmp_path,
    )
    assert "Epoch 0" not in out and "it/s" not in out, out
    # Filed under the config's experiment and the loss that trained it, not the config's.
    assert not (tmp_path / "logs" / "seed_cross_entropy").exists()
    run = tmp_path / "logs" / "seed_cross_entropy-Hinge" / "version_0"
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


@pytest.mark.parametrize(("terminal", "refresh_rate"), [(True, 20), (False, None)])
def test_progress_bar_only_on_a_terminal(
    terminal: bool, refresh_rate: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("mnist_lit.runs.lightning_cli._terminal", lambda: terminal)
    cli = MNISTLightningCLI(args=["--config", TUTORIAL], run=False)
    bar = cli.trainer.progress_bar_callback
    assert (bar.refresh_rate if bar else None) == refresh_rate


CROSS_ENTROPY = str(REPO / "configs" / "cross_entropy.yaml")


@pytest.mark.parametrize(
    ("options", "experiment"),
    [
        ([], "cross_entropy"),
        (["--model.loss", "mnist_lit.losses.Quadratic"], "cross_entropy-Quadratic"),
        (["--model.loss=mnist_lit.losses.FocalLoss", "--model.loss.gamma=1"],
         "cross_entropy-FocalLoss"),
        (["--model.loss", "mnist_lit.losses.CrossEntropy"], "cross_entropy"),  # the config's
        (["--model.loss", "mnist_lit.losses.Quadratic", "--experiment", "mine"], "mine"),
    ],
    ids=["config", "other-loss", "other-loss-with-args", "same-loss", "named"],
)  # fmt: skip
def test_a_loss_given_on_the_command_line_names_the_run_folder(
    options: list[str], experiment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = MNISTLightningCLI(args=["--config", CROSS_ENTROPY, *options], run=False)
    assert cli.config["experiment"] == experiment
    assert [logger.name for logger in cli.trainer.loggers] == [experiment, experiment]


def test_best_and_the_file_it_names_give_the_same_model_and_options(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # diagnostics_every is saved among the checkpoint's hyperparameters, and the test runs
    # below do not give it: the checkpoint's value must come back however it is named.
    monkeypatch.chdir(tmp_path)
    data = fake_data(fake_mnist_dir)
    main(["fit", "--config", TUTORIAL, "--trainer.max_epochs=1", "--model.diagnostics_every=3",
          *data])  # fmt: skip
    (best,) = Path("logs/seed_cross_entropy/version_0/checkpoints").glob("best-*.ckpt")
    for name in ("best", str(best)):
        main(["test", "--config", TUTORIAL, f"--ckpt_path={name}", *data])
    runs = [Path(f"logs/seed_cross_entropy/version_{v}") for v in (1, 2)]
    by_name, by_file = (yaml.safe_load((run / "config.yaml").read_text()) for run in runs)
    assert by_name["model"] == by_file["model"]
    assert by_name["model"]["diagnostics_every"] == 3
    assert by_name["ckpt_path"] == by_file["ckpt_path"] == str(best)
    assert _metrics(runs[0]) == _metrics(runs[1])


def test_help_lists_every_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = mnist_lit("--help", cwd=tmp_path)
    for subcommand in ("fit", "validate", "test", "predict", "compare"):
        assert f"    {subcommand} " in out, subcommand
    # Each command's line ends its sentence (Lightning's own stop mid-sentence).
    listing = " ".join(out.split("Available subcommands:")[1].split())
    for text in LIGHTNING_COMMANDS.values():
        assert " ".join(text.split()) in listing, text
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0
    assert "Train several losses" in capsys.readouterr().out


def test_checkpointing_can_be_turned_off(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", TUTORIAL, "--trainer.max_epochs=1",
          "--trainer.enable_checkpointing=false", *fake_data(fake_mnist_dir)])  # fmt: skip
    run = tmp_path / "logs" / "seed_cross_entropy" / "version_0"
    assert _metrics(run) and not (run / "checkpoints").exists()


def test_a_scheduler_alone_schedules_the_default_sgd(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", TUTORIAL, "--trainer.max_epochs=2", *fake_data(fake_mnist_dir),
          "--model.lr_scheduler=torch.optim.lr_scheduler.StepLR",
          "--model.lr_scheduler.step_size=1", "--model.lr_scheduler.gamma=0.1"])  # fmt: skip
    last = read_checkpoint("logs/seed_cross_entropy/version_0/checkpoints/last.ckpt")
    # The tutorial's lr 0.5, divided by 10 after each of the two epochs.
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.005)
