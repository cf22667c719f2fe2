"""A checkpoint carries the classes and options that trained it: it rebuilds its own model
from Python in one call, and ``mnist-lit test|validate|predict`` need no ``--config``."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from mnist_lit import MLP, MNISTClassifier, MNISTDataModule
from mnist_lit.cli import main
from mnist_lit.losses import LabelSmoothingCrossEntropy
from tests.cli_helpers import REPO, TUTORIAL, cli_error, console_error, fake_data

MLP_CONFIG = str(REPO / "configs" / "mlp.yaml")
MLP_RUN = Path("logs/mlp/version_0")


@pytest.fixture
def mlp_checkpoint(fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The best checkpoint of configs/mlp.yaml (an MLP on normalised pixels), one epoch."""
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", MLP_CONFIG, "--trainer.max_epochs=1", *fake_data(fake_mnist_dir)])
    (best,) = (tmp_path / MLP_RUN / "checkpoints").glob("best-*.ckpt")
    return best


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        return torch.equal(a.eval()(images), b.eval()(images))


def test_load_from_checkpoint_rebuilds_a_cli_model(mlp_checkpoint: Path) -> None:
    model = MNISTClassifier.load_from_checkpoint(mlp_checkpoint)
    assert isinstance(model.net, MLP)
    assert (model.net.hidden_sizes, model.net.activation) == ([100], "relu")
    assert type(model.loss).__name__ == "CrossEntropy"
    assert model.optimizer(model.parameters()).defaults["lr"] == 0.1
    weights = torch.load(mlp_checkpoint, weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        if key.startswith("net."):
            assert torch.equal(value, weights[key]), key


def test_load_from_checkpoint_rebuilds_a_model_built_in_python(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    sgd = functools.partial(torch.optim.SGD, lr=0.3, momentum=0.5)
    model = MNISTClassifier(MLP([30], activation="sigmoid"), LabelSmoothingCrossEntropy(0.2), sgd)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, MNISTDataModule(str(fake_mnist_dir), val_size=100))
    trainer.save_checkpoint(tmp_path / "python.ckpt")
    loaded = MNISTClassifier.load_from_checkpoint(tmp_path / "python.ckpt", weights_only=True)
    assert (loaded.net.hidden_sizes, loaded.net.activation) == ([30], "sigmoid")
    assert isinstance(loaded.loss, LabelSmoothingCrossEntropy) and loaded.loss.smoothing == 0.2
    optimizer = loaded.optimizer(loaded.parameters())
    assert isinstance(optimizer, torch.optim.SGD)
    assert (optimizer.defaults["lr"], optimizer.defaults["momentum"]) == (0.3, 0.5)
    assert _same_outputs(model.net, loaded.net)


def test_test_without_a_config_uses_the_checkpoints_model_and_inputs(
    mlp_checkpoint: Path, fake_mnist_dir: Path, tmp_path: Path
) -> None:
    data = [f"--data.data_dir={fake_mnist_dir}", "--trainer.enable_progress_bar=false"]
    main(["test", f"--ckpt_path={mlp_checkpoint}", *data])  # in tmp_path, as mlp_checkpoint left it
    config = yaml.safe_load((tmp_path / "logs/default/version_0/config.yaml").read_text())
    assert config["model"]["net"]["class_path"] == "mnist_lit.models.MLP"
    # The data as the MLP was trained on it: normalised pixels, the same validation split.
    assert config["data"]["normalize"] is True and config["data"]["val_size"] == 100
    main(["test", "--config", MLP_CONFIG, f"--ckpt_path={mlp_checkpoint}", *data])
    with_config = (tmp_path / MLP_RUN.parent / "version_1" / "metrics.csv").read_text()
    assert (tmp_path / "logs/default/version_0/metrics.csv").read_text() == with_config


def test_predict_without_a_config(mlp_checkpoint: Path, fake_mnist_dir: Path) -> None:
    main(["predict", f"--ckpt_path={mlp_checkpoint}", f"--data.data_dir={fake_mnist_dir}",
          "--predictions.path=out.csv", "--trainer.enable_progress_bar=false"])  # fmt: skip
    rows = Path("out.csv").read_text().splitlines()
    assert rows[0].startswith("file,digit,p0") and len(rows) == 1 + 200  # the test set


def test_a_config_that_does_not_fit_the_checkpoint_is_named(
    mlp_checkpoint: Path, fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tutorial's config names its network explicitly: it wins, and does not fit.
    err = cli_error(["test", "--config", TUTORIAL, f"--ckpt_path={mlp_checkpoint}",
                     *fake_data(fake_mnist_dir)], capsys)  # fmt: skip
    assert "does not fit model.net (SoftmaxRegression) of this config" in err


# A network that does not keep its init argument: only the config that built it knows.
MY_NETS = """
from torch import nn

class Wide(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.Linear(width, 10))

    def forward(self, x):
        return self.layers(x)
"""


def test_a_checkpoint_keeps_the_init_args_given_on_the_command_line(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_nets.py").write_text(MY_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", TUTORIAL, "--model.net=my_nets.Wide", "--model.net.width=48",
          "--trainer.max_epochs=1", *fake_data(fake_mnist_dir)])  # fmt: skip
    (best,) = (tmp_path / "logs/seed_cross_entropy/version_0/checkpoints").glob("best-*.ckpt")
    model = MNISTClassifier.load_from_checkpoint(best)
    assert model.net.layers[1].out_features == 48


def test_a_checkpoint_with_the_rate_in_model_lr_is_one_message(
    mlp_checkpoint: Path, fake_mnist_dir: Path, tmp_path: Path
) -> None:
    # Written before the optimiser was the model's: its rate sat in model.lr.
    checkpoint = torch.load(mlp_checkpoint, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    del hparams["optimizer"], hparams["lr_scheduler"]
    hparams["lr"] = 0.1
    torch.save(checkpoint, tmp_path / "old.ckpt")
    err = console_error("test", "--ckpt_path=old.ckpt", *fake_data(fake_mnist_dir), cwd=tmp_path)
    assert "old.ckpt was written by an earlier mnist-lit" in err
    assert "model.optimizer.lr" in err


class _Wide(torch.nn.Module):
    """A network that does not record its argument: it cannot be described exactly."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, width), torch.nn.Linear(width, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_a_part_that_cannot_be_described_is_named_when_saved_never_loaded_as_a_default(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    plateau = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, min_lr=1e-4)
    model = MNISTClassifier(_Wide(48), lr_scheduler=plateau)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.fit(model, MNISTDataModule(str(fake_mnist_dir), val_size=100))
    with pytest.warns(UserWarning, match=r"^net \(_Wide\) is saved without its arguments"):
        trainer.save_checkpoint(tmp_path / "wide.ckpt")
    # Not rebuilt with the default width (16), which would not fit the weights: refused.
    path = tmp_path / "wide.ckpt"
    with pytest.raises(Exception, match=r"_Wide built in Python, its arguments not recorded"):
        MNISTClassifier.load_from_checkpoint(path, weights_only=True)
    # Given the part again, the checkpoint rebuilds the rest (no code unpickled).
    loaded = MNISTClassifier.load_from_checkpoint(path, weights_only=True, net=_Wide(48))
    assert _same_outputs(model.net, loaded.net)
    # The schedule's min_lr, which ReduceLROnPlateau keeps as min_lrs, is kept.
    schedule = loaded.lr_scheduler(loaded.optimizer(loaded.parameters()))
    assert schedule.min_lrs == [1e-4]


def test_a_model_option_given_wins_over_the_checkpoint_even_at_its_default(
    mlp_checkpoint: Path, fake_mnist_dir: Path, tmp_path: Path
) -> None:
    # Saved with diagnostics_every 1 and data.seed 5; 10 and 42, the classes' defaults, given
    # on the command line or in a config, are the user's choice all the same.
    checkpoint = torch.load(mlp_checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["diagnostics_every"] = 1
    checkpoint["datamodule_hyper_parameters"]["seed"] = 5
    torch.save(checkpoint, tmp_path / "saved.ckpt")
    (tmp_path / "given.yaml").write_text("model:\n  diagnostics_every: 10\ndata:\n  seed: 42\n")
    data = [f"--data.data_dir={fake_mnist_dir}", "--trainer.enable_progress_bar=false"]
    given = [[], ["--model.diagnostics_every=10", "--data.seed=42"], ["--config=given.yaml"]]
    for options in given:
        main(["test", "--ckpt_path=saved.ckpt", *data, *options])
    runs = [yaml.safe_load((tmp_path / f"logs/default/version_{v}/config.yaml").read_text())
            for v in range(3)]  # fmt: skip
    saved = [(run["model"]["diagnostics_every"], run["data"]["seed"]) for run in runs]
    assert saved == [(1, 5), (10, 42), (10, 42)]
