"""Every mistake a user can make ends in one message: each must exit with status 2, print
``mnist-lit: error:`` and no traceback, and train nothing. They run in the test's own
process, through ``mnist_lit.cli.main``, the installed console script's entry point."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from mnist_lit.cli import main
from mnist_lit.runs.lightning_cli import option_error
from tests.cli_helpers import (
    REPO,
    TUTORIAL,
    cli_error,
    fake_data,
    fit_one_epoch,
)

MLP = str(REPO / "configs" / "mlp.yaml")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
# Any download goes to a closed port and fails at once: the same as no internet.
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}

MY_LOSSES = """
import torch.nn.functional as F
from torch import nn

class Hinge(nn.Module):
    def __init__(self, margin: float = 1.0):
        super().__init__()
        if margin <= 0:
            raise ValueError(f"margin must be positive, got {margin}")
        self.margin = margin

    def forward(self, logits, target):
        return F.multi_margin_loss(logits, target, margin=self.margin)
"""


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run starts in ``tmp_path``, which is on the import path for the user's modules."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_losses", raising=False)


def _error(
    args: list[str],
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str] | None = None,
) -> str:
    os.environ.update(env or {})  # restored after each test (tests/conftest.py)
    err = cli_error(args, capsys)
    assert err.count("mnist-lit: error: ") == 1, err
    assert not list(cwd.glob("logs/*/version_*/checkpoints/*")), "something was trained"
    return err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["fit", "--config", "nowhere.yaml"], "nowhere.yaml: no such config file",
                     id="no-config"),
        pytest.param(["fit", "--config", TUTORIAL, "--trainer.max_epochs=abc"],
                     "trainer.max_epochs: expected an int, got 'abc'", id="bad-value"),
        pytest.param([], 'expected "subcommand"', id="no-subcommand"),
        pytest.param(["fit", "--config", MLP, "--model.net.init_args.activation=swish"],
                     "model.net (MLP): MLP activation must be one of", id="net-init-args"),
        pytest.param(["fit", "--config", TUTORIAL,
                      "--model.loss=mnist_lit.losses.LabelSmoothingCrossEntropy",
                      "--model.loss.smoothing=1.5"],
                     "model.loss (LabelSmoothingCrossEntropy): smoothing must be in [0, 1), got "
                     "1.5", id="loss-init-args"),
        pytest.param(["fit", "--config", TUTORIAL, "--model.loss=my_losses.Hinge",
                      "--model.loss.margin=-1"],
                     "model.loss (Hinge): margin must be positive, got -1.0", id="own-class"),
        pytest.param(["fit", "--config", TUTORIAL, "--model.net=mnist_lit.models.NoSuchNet"],
                     'Parser key "model.net"', id="unknown-class"),
        pytest.param(["fit", "--config", TUTORIAL, "--model.optimizer=torch.optim.Adam",
                      "--model.optimizer.lr=-1"],
                     "model.optimizer (Adam): Invalid learning rate: -1.0",
                     id="optimizer-init-args"),
        pytest.param(["fit", "--config", TUTORIAL,
                      "--model.lr_scheduler=torch.optim.lr_scheduler.CosineAnnealingWarmRestarts",
                      "--model.lr_scheduler.T_0=0"],
                     "model.lr_scheduler (CosineAnnealingWarmRestarts): Expected positive integer",
                     id="scheduler-init-args"),
        pytest.param(["fit", "--config", TUTORIAL, "--data.batch_size=0"],
                     "data.batch_size must be a positive integer, got 0", id="data-option"),
        pytest.param(["fit", "--config", TUTORIAL, "--data.label_noise=1"],
                     "data.label_noise is the share of training labels made wrong, from 0 up "
                     "to but not including 1; got 1.0", id="label-noise"),
        pytest.param(["fit", "--config", TUTORIAL, "--model.diagnostics_every=0"],
                     "model.diagnostics_every must be a positive integer, got 0",
                     id="model-option"),
        pytest.param(["fit", "--config", TUTORIAL, "--trainer.accelerator=gpu"],
                     "the trainer's options do not work here: No supported gpu backend",
                     id="no-gpu", marks=NO_GPU),
        pytest.param(["test", "--config", TUTORIAL, "--ckpt_path=nowhere.ckpt"],
                     "--ckpt_path nowhere.ckpt: no such file", id="no-checkpoint-file"),
        pytest.param(["test", "--config", TUTORIAL, "--ckpt_path=best"],
                     "no best checkpoint under logs/seed_cross_entropy/version_*/checkpoints",
                     id="best-before-fit"),
        pytest.param(["predict", "--config", TUTORIAL, "--data.predict_path=nowhere"],
                     "data.predict_path nowhere: no such file or folder", id="no-images"),
        pytest.param(["compare", "--seeds", "a"], "seeds: expected an int, got 'a'",
                     id="compare-value"),
        pytest.param(["compare", "--epochs", "0"], "--epochs must be at least 1, got 0",
                     id="compare-epochs"),
        pytest.param(["compare", "--losses", "hinges"], "invalid choice: 'hinges'",
                     id="compare-loss"),
        pytest.param(["compare", "--accelerator", "gpu"],
                     "--accelerator gpu: this machine has no usable GPU", id="compare-no-gpu",
                     marks=NO_GPU),
        pytest.param(["study", "--label-noise", "-0.5"], "--label-noise is the share",
                     id="study-label-noise"),
        pytest.param(["--config", TUTORIAL, "compare"], "not accepted before subcommand",
                     id="compare-after-options"),
    ],
)  # fmt: skip
def test_a_mistake_in_the_options_is_one_message(
    args: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_losses.py").write_text(MY_LOSSES)
    err = _error(args, tmp_path, capsys)
    assert expected in err


def test_a_mistyped_config_name_lists_the_projects_configs_and_the_nearest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _error(["fit", "--config", "configs/cross_entropi.yaml"], tmp_path, capsys)
    assert err.strip().splitlines() == [
        "mnist-lit: error: --config configs/cross_entropi.yaml: no such config file. The "
        "project's configs in configs/: cnn, cross_entropy, large_batch, mlp, nielsen, "
        "nielsen_saturated, quadratic, seed_cross_entropy. Did you mean "
        "configs/cross_entropy.yaml?"
    ]
    # An overlay's folder lists that folder's configs.
    err = _error(["fit", "--config", "configs/trainer/gpo.yaml"], tmp_path, capsys)
    assert "configs in configs/trainer/: ddp, ddp_cpu, gpu, gpu_fast. Did you mean " in err
    assert "configs/trainer/gpu.yaml?" in err


def test_a_value_of_the_wrong_type_is_one_line_naming_the_option_and_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _error(["fit", "--config", TUTORIAL, "--model.optimizer.lr", "abc"], tmp_path, capsys)
    (line,) = err.strip().splitlines()
    assert line.startswith("mnist-lit: error: model.optimizer.lr: expected a float, got 'abc'. ")
    assert line.endswith(" fit --help` lists the options."), line


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("model:\n  lr: [\n", "Problems parsing config"),
        ("model:\n  lrr: 0.1\n", "does not accept option 'model.lrr'"),
        (
            "model:\n  diagnostics_every: often\n",
            "model.diagnostics_every: expected an int, got 'often'",
        ),
    ],
    ids=["broken-yaml", "unknown-key", "wrong-type"],
)
def test_a_mistake_in_a_config_file_is_one_message(
    config: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.yaml").write_text(config)
    assert expected in _error(["fit", "--config", "mine.yaml"], tmp_path, capsys)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--model.loss=torch.nn.MSELoss"], "model.loss (MSELoss) fails on a dummy batch of 4"),
        (["--model.loss=torch.nn.CrossEntropyLoss", "--model.loss.reduction=none"],
         "model.loss (CrossEntropyLoss) returns shape (4,), not a scalar tensor"),
        (["--model.net=torch.nn.Flatten"], "model.net (Flatten) must output 10 logits per image"),
        (["--data.val_size=600"], "data.val_size must be smaller than the training set (600"),
    ],
    ids=["loss-needs-other-target", "loss-not-scalar", "net-not-ten-logits", "val-size"],
)  # fmt: skip
def test_a_model_or_data_that_does_not_fit_is_named_before_training(
    options: list[str],
    expected: str,
    fake_mnist_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["fit", "--config", TUTORIAL, *fake_data(fake_mnist_dir), *options]
    err = _error(args, tmp_path, capsys)
    assert expected in err
    if "model.loss" in expected:
        assert "A loss is loss(logits, target) -> a scalar tensor" in err


MY_CALLBACKS = """
from lightning.pytorch.callbacks import Callback

class AboutAnArgument(Callback):  # as the data module's setup says a value does not fit
    def on_fit_start(self, trainer, pl_module):
        raise ValueError("val_size must be smaller than the training set (600 images), got 600.")

class ABug(Callback):
    def on_fit_start(self, trainer, pl_module):
        raise ValueError("math domain error")
"""


def test_a_value_error_about_an_argument_during_a_run_names_the_option(
    fake_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_callbacks.py").write_text(MY_CALLBACKS)
    args = ["fit", "--config", TUTORIAL, *fake_data(fake_mnist_dir)]
    err = _error([*args, "--trainer.callbacks+=my_callbacks.AboutAnArgument"], tmp_path, capsys)
    assert "mnist-lit: error: data.val_size must be smaller than the training set" in err
    # Any other ValueError is a bug: its traceback is shown.
    with pytest.raises(ValueError, match="math domain error"):
        main([*args, "--trainer.callbacks+=my_callbacks.ABug"])


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ("batch_size must be a positive integer, got 0.",
         "data.batch_size must be a positive integer, got 0."),
        ("data_dir nowhere holds no MNIST: copy the files there.",
         "data.data_dir nowhere holds no MNIST: copy the files there. It is --data.data_dir, "
         "--data-dir for compare, study and tune, DATA_DIR= for make."),
        ("net (MyNet) must output 10 logits per image, got (2, 7).",
         "model.net (MyNet) must output 10 logits per image, got (2, 7)."),
        ("diagnostics_every must be a positive integer, got 0.",
         "model.diagnostics_every must be a positive integer, got 0."),
        ("Expected more than 1 value per channel when training", None),
    ],
)  # fmt: skip
def test_a_value_error_is_named_by_the_argument_it_begins_with(
    message: str, named: str | None
) -> None:
    error = option_error(ValueError(message))
    assert (None if error is None else str(error)) == named


def test_missing_data_offline_says_where_the_files_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", "--config", TUTORIAL, "--data.data_dir=empty"]
    err = _error(args, tmp_path, capsys, env=OFFLINE)
    assert "data.data_dir empty holds no MNIST" in err
    assert f"missing from {tmp_path}/empty/MNIST/raw" in err
    assert "copy the four files train-images-idx3-ubyte.gz" in err


def test_a_log_folder_that_cannot_be_made_is_named(
    fake_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    args = ["fit", "--config", TUTORIAL, "--trainer.logger.init_args.save_dir=taken/logs"]
    err = _error([*args, *fake_data(fake_mnist_dir)], tmp_path, capsys)
    assert "taken/logs" in err and "Not a directory" in err


def test_a_second_run_without_a_logger_keeps_the_first(
    fake_mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Without a logger a run writes into the working folder itself: a second one there
    # would write over the first's config and checkpoints.
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", TUTORIAL, "--trainer.max_epochs=1", "--trainer.logger=false",
            *fake_data(fake_mnist_dir)]  # fmt: skip
    main(args)
    written = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert tmp_path / "config.yaml" in written
    err = cli_error(args, capsys)
    assert f"{tmp_path} holds a run already" in err and "--trainer.default_root_dir" in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == written


@pytest.fixture
def fitted(fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path``, where the tutorial's config was fitted for one epoch."""
    monkeypatch.chdir(tmp_path)
    fit_one_epoch(fake_mnist_dir)
    return tmp_path


def test_checkpoint_of_another_network_is_named(
    fake_mnist_dir: Path, fitted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (best,) = fitted.glob("logs/seed_cross_entropy/version_0/checkpoints/best-*.ckpt")
    err = cli_error(["test", "--config", TUTORIAL, "--model.net=mnist_lit.models.MLP",
                     "--ckpt_path=best", *fake_data(fake_mnist_dir)], capsys)  # fmt: skip
    assert (f"mnist-lit: error: --ckpt_path {best.relative_to(fitted)} does not fit model.net "
            "(MLP) of this config") in err  # fmt: skip
    assert "Use the --config that trained it" in err and "state_dict" not in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not a checkpoint", "is not a readable Lightning checkpoint"),
        # A text file (as /etc/passwd): torch's reader fails inside, with nothing to tell.
        (b"root:x:0:0:root:/root:/bin/bash\n",
         "is not a readable Lightning checkpoint (not a file written by torch.save). Pass"),
        ({"epoch": 3}, "is not a readable Lightning checkpoint (it holds no state_dict)"),
        ({"state_dict": {}, "hyper_parameters": {"hidden_dim": 64}},
         "was not written by MNISTClassifier: its hyperparameters name hidden_dim"),
    ],
    ids=["not-a-checkpoint", "a-text-file", "no-weights", "another-model"],
)  # fmt: skip
def test_a_file_that_is_not_our_checkpoint_is_named(
    content: bytes | dict, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    err = _error(["test", "--config", TUTORIAL, "--ckpt_path=other.ckpt"], tmp_path, capsys)
    assert f"--ckpt_path other.ckpt {expected}" in err


def test_a_folder_without_images_is_named(
    fake_mnist_dir: Path, fitted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fitted / "junk").mkdir()
    (fitted / "junk" / "notes.txt").write_text("no digits here")
    args = ["--ckpt_path=best", "--data.predict_path=junk", *fake_data(fake_mnist_dir)]
    runs = sorted(p.name for p in (fitted / "logs" / "seed_cross_entropy").iterdir())
    err = cli_error(["predict", "--config", TUTORIAL, *args], capsys)
    assert "mnist-lit: skipped junk/notes.txt: not an image" in err
    assert "mnist-lit: error: data.predict_path junk: no readable image" in err
    # It failed before it opened a run folder: no empty run is left behind.
    assert sorted(p.name for p in (fitted / "logs" / "seed_cross_entropy").iterdir()) == runs
