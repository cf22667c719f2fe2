import csv
from pathlib import Path

import pytest
import torch

from mnist_lit.cli import main
from mnist_lit.compare.experiment import PRESETS, SaturatedMLP
from mnist_lit.losses import BinaryCrossEntropy, SigmoidQuadratic
from mnist_lit.runs.fit import Fit, FitCLI


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_compare_writes_csv_png_and_table(
    fake_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    main(
        [
            "compare",
            "--losses",
            "ce",
            "quadratic",
            "--epochs",
            "2",
            "--seeds",
            "0",
            "1",
            "--data-dir",
            str(fake_mnist_dir),
            "--val-size",
            "100",
            "--output-dir",
            str(out),
        ]
    )
    rows = _rows(out / "metrics.csv")
    # 2 losses x 2 seeds x (initial + 2 epochs)
    assert len(rows) == 12
    assert {(r["loss"], r["seed"]) for r in rows} == {
        (loss, seed) for loss in ("ce", "quadratic") for seed in ("0", "1")
    }
    for seed in ("0", "1"):
        # Same initial weights for every loss within a seed.
        starts = [r for r in rows if r["epoch"] == "0" and r["seed"] == seed]
        assert starts[0]["val_acc"] == starts[1]["val_acc"]
        assert starts[0]["val_ce"] == starts[1]["val_ce"]
    last = [r for r in rows if r["epoch"] == "2"]
    assert all(float(r["test_acc"]) > 0.5 for r in last)
    assert all(float(r["dcdz"]) > 0 and 0 <= float(r["saturated"]) <= 1 for r in rows)
    assert (out / "curves.png").stat().st_size > 10_000
    printed = capsys.readouterr().out.strip()
    table, last = printed.rsplit("\n", 1)
    assert "| ce |" in table and "| quadratic |" in table and " ± " in table
    # Which loss is best on each yardstick, at the last epoch, by the means over the seeds.
    for label, column, higher in (("accuracy", "test_acc", True), ("Brier", "test_brier", False)):
        means = {
            loss: sum(float(r[column]) for r in rows if (r["loss"], r["epoch"]) == (loss, "2")) / 2
            for loss in ("ce", "quadratic")
        }
        best = (max if higher else min)(means, key=means.__getitem__)
        assert f"| {label} | {best} ({means[best]:.4f}) |" in table, table
    assert "| yardstick (test, epoch 2) | best (mean over seeds) | runner-up |" in table
    assert (out / "summary.md").read_text().strip() == table[table.index("| loss") :].strip()
    assert last.startswith("wrote ") and last.endswith(str(out / "summary.md")), last


def test_seeds_change_the_initial_weights(fake_mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    # fit's spelling of the data folder works here too.
    args = ["--epochs", "1", "--data.data_dir", str(fake_mnist_dir), "--val-size", "100"]
    args += ["--output-dir", str(out)]
    main(["compare", "--losses", "ce", "--seeds", "3", "4", *args])
    starts = [r for r in _rows(out / "metrics.csv") if r["epoch"] == "0"]
    assert starts[0]["val_ce"] != starts[1]["val_ce"]


def test_nielsen_start_is_saturated_and_quadratic_gradient_is_tiny() -> None:
    torch.manual_seed(0)
    net = SaturatedMLP()
    logits = net(torch.rand(64, 1, 28, 28)).detach().requires_grad_()
    assert (logits.sigmoid() > 0.99).float().mean() > 0.9
    target = torch.randint(0, 10, (64,))
    (quadratic_grad,) = torch.autograd.grad(SigmoidQuadratic()(logits, target), logits)
    (bce_grad,) = torch.autograd.grad(BinaryCrossEntropy()(logits, target), logits)
    assert quadratic_grad.abs().mean() * 1000 < bce_grad.abs().mean()
    preset = PRESETS["nielsen"]
    assert preset.losses == ("sigmoid_quadratic", "bce")
    # The preset is its config: that network, rate, batch and length.
    config = FitCLI(Fit(configs=(preset.config,))).config
    assert config.model.net.class_path == "mnist_lit.compare.experiment.SaturatedMLP"
    assert config.model.optimizer.init_args.lr == 0.5 and config.data.batch_size == 10
    assert config.trainer.max_epochs == 2


def test_a_preset_trains_its_config(fake_mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    # No --epochs: the config's 2; the saturated start of its network shows at epoch 0.
    main(["compare", "--preset", "nielsen", "--losses", "bce", "--data-dir", str(fake_mnist_dir),
          "--val-size", "100", "--output-dir", str(out)])  # fmt: skip
    rows = _rows(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert float(rows[0]["saturated"]) == 1.0
    assert "test acc, epoch 2" in (out / "summary.md").read_text()


def test_missing_data_gets_one_message(tmp_path: Path, capsys, monkeypatch) -> None:
    # No internet: torchvision's download fails and the CLI names the folder.
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--data-dir", str(tmp_path / "none"), "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "mnist-lit: error: data.data_dir" in err
    # Each way to name the folder is named: fit's, the other commands', make's.
    assert all(spelling in err for spelling in ("--data.data_dir", "--data-dir", "DATA_DIR="))


@pytest.mark.real_data
def test_nielsen_slowdown_on_real_mnist(real_mnist_dir: Path, tmp_path: Path) -> None:
    # The Nielsen slowdown on the real digits: from the saturated start the quadratic cost is
    # clearly behind after one epoch, and its dC/dz starts at least 10 times smaller.
    out = tmp_path / "nielsen"
    main(["compare", "--preset", "nielsen", "--epochs", "1", "--data-dir", str(real_mnist_dir),
          "--output-dir", str(out)])  # fmt: skip
    rows = {(r["loss"], r["epoch"]): r for r in _rows(out / "metrics.csv")}
    quadratic, bce = rows[("sigmoid_quadratic", "1")], rows[("bce", "1")]
    assert float(quadratic["test_acc"]) < float(bce["test_acc"]) - 0.2
    start_ratio = float(rows[("bce", "0")]["dcdz"]) / float(
        rows[("sigmoid_quadratic", "0")]["dcdz"]
    )
    assert start_ratio > 10


def test_compare_takes_the_square_loss_on_logits(
    fake_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    main(["compare", "--losses", "square_logits", "--epochs", "1", "--data-dir",
          str(fake_mnist_dir), "--val-size", "100", "--output-dir", str(out)])  # fmt: skip
    rows = _rows(out / "metrics.csv")
    assert {r["loss"] for r in rows} == {"square_logits"}
    assert float(rows[-1]["test_acc"]) > 0.1
    # One seed and one epoch: no spread of zero, no "1 epochs".
    printed = capsys.readouterr().out
    assert " ± " not in printed and "One seed: no spread to show" in printed
    assert "after 1 epoch\n" in printed
