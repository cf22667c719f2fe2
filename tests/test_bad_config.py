"""Bad options and wrong checkpoints: rejected before training, one message naming them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import TUTORIAL, cli_error, fake_data, fit_one_epoch


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--data.batch_size=-3", "data.batch_size must be a positive integer, got -3"),
        ("--data.val_size=-1", "data.val_size must be between 0 and 59999, got -1"),
        ("--data.val_size=600", "data.val_size must be smaller than the training set (600"),
        ("--model.lr=0", "model.lr must be positive, got 0.0"),
        ("--model.loss=mnist_lit.losses.NoSuchLoss", "model.loss"),
        ("--model.net=mnist_lit.models.NoSuchNet", "model.net"),
        ("--model.net=torch.nn.Flatten", "model.net must output 10 logits per image"),
    ],
)
def test_bad_option_is_rejected_before_training(
    option: str,
    expected: str,
    fake_mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    err = cli_error(["fit", "--config", TUTORIAL, *fake_data(fake_mnist_dir), option], capsys)
    assert expected in err
    assert not list(tmp_path.glob("logs/*/version_*/checkpoints/*"))  # nothing was trained


def test_checkpoint_of_another_network_is_named(
    fake_mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    fit_one_epoch(fake_mnist_dir)
    (best,) = tmp_path.glob("logs/seed_cross_entropy/version_0/checkpoints/best-*.ckpt")
    err = cli_error(
        ["test", "--config", TUTORIAL, "--model.net=mnist_lit.models.MLP", "--ckpt_path=best",
         *fake_data(fake_mnist_dir)],
        capsys,
    )  # fmt: skip
    assert err.startswith(f"mnist-lit: error: --ckpt_path {best.relative_to(tmp_path)} does not "
                          "fit model.net (MLP) of this config")  # fmt: skip
    assert "Use the --config that trained it" in err
    assert "state_dict" not in err and err.count("\n") == 1


def test_file_that_is_not_a_checkpoint_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    err = cli_error(["test", "--config", TUTORIAL, "--ckpt_path=notes.ckpt"], capsys)
    assert "--ckpt_path notes.ckpt is not a readable Lightning checkpoint" in err
