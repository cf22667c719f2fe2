"""``mnist-lit compare``: train several losses on the same data, network, seed and initial
weights, and write what they did epoch by epoch.

Outputs, in ``--output-dir`` (default ``outputs/compare/<preset>/``):

- ``metrics.csv``: one row per loss, seed and epoch. Epoch 0 is the untrained network.
  Columns: validation and test accuracy, cross-entropy on logits and expected calibration
  error; ``dcdz``, the mean absolute per-sample gradient of the training loss with respect
  to the logits, and ``saturated``, the share of output activations within 0.01 of 0 or 1
  (for epochs >= 1 averaged over that epoch's training steps; for epoch 0 measured on the
  validation set at the initial weights, before any update).
- ``curves.png``: the learning curves, mean over seeds with a band of one standard deviation.
- ``summary.md``: the Markdown table also printed at the end (mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torchmetrics.functional.classification import multiclass_calibration_error

from mnist_lit.data import MNISTDataModule
from mnist_lit.errors import MnistLitError
from mnist_lit.losses import (
    BinaryCrossEntropy,
    CrossEntropy,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    Quadratic,
    SigmoidQuadratic,
    SoftmaxTwiceCrossEntropy,
)
from mnist_lit.models import MLP, MNISTClassifier, SoftmaxRegression
from mnist_lit.models.classifier import output_probabilities, saturated_share
from mnist_lit.models.nets import NUM_CLASSES

LOSSES: dict[str, Callable[[], nn.Module]] = {
    "ce": CrossEntropy,
    "softmax_twice": SoftmaxTwiceCrossEntropy,
    "quadratic": Quadratic,
    "sigmoid_quadratic": SigmoidQuadratic,
    "bce": BinaryCrossEntropy,
    "label_smoothing": LabelSmoothingCrossEntropy,
    "focal": FocalLoss,
}

# Nielsen's saturated start: every output neuron begins near 1, wrong for nine digits out
# of ten, like his neuron that starts at 0.98 and should output 0. A sigmoid output with
# bias 10 sits at sigma(10) = 0.99995, where sigma' = 4.5e-5.
SATURATED_OUTPUT_BIAS = 10.0

COLUMNS = (
    "preset",
    "loss",
    "seed",
    "epoch",
    "val_acc",
    "test_acc",
    "val_ce",
    "test_ce",
    "val_ece",
    "test_ece",
    "dcdz",
    "saturated",
)


def saturated_sigmoid_mlp() -> nn.Module:
    """Nielsen's 784-30-10 sigmoid network with its output layer pushed into saturation."""
    net = MLP(hidden_sizes=[30], activation="sigmoid")
    output_layer = net.layers[-1]
    assert isinstance(output_layer, nn.Linear)
    with torch.no_grad():
        output_layer.bias.fill_(SATURATED_OUTPUT_BIAS)
    return net


@dataclass(frozen=True)
class Preset:
    """One experiment: the network, the losses compared and how they are trained."""

    description: str
    make_net: Callable[[], nn.Module]
    losses: tuple[str, ...]
    epochs: int
    lr: float
    batch_size: int


PRESETS = {
    "tutorial": Preset(
        "the tutorial: softmax regression, SGD lr 0.5, batch 64, pixels in [0, 1]",
        SoftmaxRegression,
        ("softmax_twice", "ce", "quadratic"),
        epochs=10,
        lr=0.5,
        batch_size=64,
    ),
    "nielsen": Preset(
        "Nielsen ch. 3: 784-30-10 sigmoid MLP, outputs saturated near 1 at the start, "
        "SGD lr 0.5, mini-batch 10",
        saturated_sigmoid_mlp,
        ("sigmoid_quadratic", "bce"),
        epochs=2,
        lr=0.5,
        batch_size=10,
    ),
}


@torch.no_grad()
def _logits(net: nn.Module, images: Tensor, datamodule: MNISTDataModule) -> Tensor:
    device = next(net.parameters()).device
    chunks = [net(datamodule.preprocess(chunk.to(device))) for chunk in images.split(5_000)]
    return torch.cat(chunks).float()


def evaluate(model: MNISTClassifier, datamodule: MNISTDataModule, split: str) -> dict[str, float]:
    """Accuracy, cross-entropy on logits and calibration error of ``model`` on ``split``."""
    images, labels = datamodule.splits[split]
    was_training = model.training
    model.eval()
    logits = _logits(model.net, images, datamodule)
    model.train(was_training)
    labels = labels.to(logits.device)
    ece = multiclass_calibration_error(logits.softmax(-1), labels, NUM_CLASSES, n_bins=15)
    return {
        f"{split}_acc": (logits.argmax(-1) == labels).float().mean().item(),
        f"{split}_ce": F.cross_entropy(logits, labels).item(),
        f"{split}_ece": ece.item(),
    }


def initial_diagnostics(model: MNISTClassifier, datamodule: MNISTDataModule) -> dict[str, float]:
    """dC/dz and the saturated share at the initial weights, on the validation set."""
    images, labels = datamodule.splits["val"]
    logits = _logits(model.net, images, datamodule).requires_grad_()
    labels = labels.to(logits.device)
    (grad,) = torch.autograd.grad(model.loss(logits, labels), logits)
    probs = output_probabilities(logits.detach(), model.output_activation)
    return {
        "dcdz": (grad.abs().mean() * len(labels)).item(),
        "saturated": saturated_share(probs).item(),
    }


class EpochRecorder(Callback):
    """Appends one row per epoch: validation and test metrics, and the epoch's dC/dz."""

    def __init__(self, datamodule: MNISTDataModule, labels: dict[str, object]) -> None:
        self.datamodule = datamodule
        self.labels = labels
        self.rows: list[dict[str, object]] = []

    def record(self, model: MNISTClassifier, epoch: int, diagnostics: dict[str, float]) -> None:
        row: dict[str, object] = {**self.labels, "epoch": epoch, **diagnostics}
        for split in ("val", "test"):
            row.update(evaluate(model, self.datamodule, split))
        self.rows.append(row)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, MNISTClassifier)
        # Runs before the module logs (and resets) its epoch metrics.
        diagnostics = {
            name: pl_module.metric("train", name).compute().item() for name in ("dcdz", "saturated")
        }
        self.record(pl_module, trainer.current_epoch + 1, diagnostics)


def train_one(
    net: nn.Module,
    loss_name: str,
    preset_name: str,
    seed: int,
    epochs: int,
    datamodule: MNISTDataModule,
    accelerator: str,
) -> list[dict[str, object]]:
    """Train ``net`` with one loss; return its rows, epoch 0 (untrained) included."""
    preset = PRESETS[preset_name]
    # The study measures dC/dz on every batch, not on a sample.
    model = MNISTClassifier(net, LOSSES[loss_name](), lr=preset.lr, diagnostics_every=1)
    recorder = EpochRecorder(datamodule, {"preset": preset_name, "loss": loss_name, "seed": seed})
    recorder.record(model, 0, initial_diagnostics(model, datamodule))
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[recorder],
    )
    trainer.fit(model, datamodule)
    return recorder.rows


def run_comparison(
    preset_name: str,
    losses: Sequence[str],
    epochs: int,
    seeds: Sequence[int],
    data_dir: str,
    val_size: int = 5_000,
    accelerator: str = "cpu",
) -> list[dict[str, object]]:
    """Every loss for every seed; within a seed all losses share data order and weights."""
    preset = PRESETS[preset_name]
    rows: list[dict[str, object]] = []
    for seed in seeds:
        L.seed_everything(seed, verbose=False)
        initial_net = preset.make_net()
        datamodule = MNISTDataModule(
            data_dir, batch_size=preset.batch_size, val_size=val_size, seed=seed
        )
        datamodule.prepare_data()
        datamodule.setup("fit")
        for loss_name in losses:
            L.seed_everything(seed, verbose=False)
            net = copy.deepcopy(initial_net)
            new = train_one(net, loss_name, preset_name, seed, epochs, datamodule, accelerator)
            last = new[-1]
            print(
                f"{preset_name} seed {seed} {loss_name}: test acc {last['test_acc']:.4f} "
                f"after {epochs} epochs",
                flush=True,
            )
            rows += new
    return rows


def write_csv(rows: Sequence[dict[str, object]], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _series(rows: Sequence[dict[str, object]], loss: str, epoch: int, column: str) -> list[float]:
    return [
        float(str(r[column])) for r in rows if r["loss"] == loss and int(str(r["epoch"])) == epoch
    ]


def _mean_std(values: Sequence[float], spec: str) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{spec}} ± {std:{spec}}"


def summary_table(rows: Sequence[dict[str, object]], losses: Sequence[str], epochs: int) -> str:
    """Markdown: per loss, mean ± std over seeds at the start, after epoch 1 and at the end."""
    n_seeds = len(_series(rows, losses[0], 0, "test_acc"))
    columns = [
        ("test acc, epoch 1", 1, "test_acc", ".4f"),
        (f"test acc, epoch {epochs}", epochs, "test_acc", ".4f"),
        (f"val CE, epoch {epochs}", epochs, "val_ce", ".4f"),
        (f"test ECE, epoch {epochs}", epochs, "test_ece", ".4f"),
        ("dC/dz, start", 0, "dcdz", ".2e"),
        ("dC/dz, epoch 1", 1, "dcdz", ".2e"),
        ("saturated, start", 0, "saturated", ".3f"),
    ]
    columns = list({column[0]: column for column in columns}.values())  # epochs == 1
    lines = [
        "| loss | " + " | ".join(title for title, *_ in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for loss in losses:
        cells = [_mean_std(_series(rows, loss, e, c), spec) for _, e, c, spec in columns]
        lines.append(f"| {loss} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Mean ± standard deviation over {n_seeds} seed(s).")
    return "\n".join(lines)


def plot_curves(
    rows: Sequence[dict[str, object]], losses: Sequence[str], epochs: int, title: str, path: Path
) -> None:
    """Validation accuracy and cross-entropy, training dC/dz and test ECE against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("val_acc", "validation accuracy", "linear"),
        ("val_ce", "validation cross-entropy", "log"),
        ("dcdz", "mean |dC/dz| (training)", "log"),
        ("test_ece", "test calibration error (ECE)", "linear"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    x = list(range(epochs + 1))
    for ax, (column, label, scale) in zip(axes, panels, strict=True):
        for loss in losses:
            stats = [_series(rows, loss, e, column) for e in x]
            mean = [statistics.mean(s) for s in stats]
            std = [statistics.stdev(s) if len(s) > 1 else 0.0 for s in stats]
            ax.plot(x, mean, marker="o", markersize=3, label=loss)
            low = [m - s for m, s in zip(mean, std, strict=True)]
            high = [m + s for m, s in zip(mean, std, strict=True)]
            ax.fill_between(x, low, high, alpha=0.25)
        ax.set_yscale(scale)
        ax.set_xlabel("epoch (0 = initial weights)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mnist-lit compare",
        description="Train several losses on the same data, network, seed and initial "
        "weights; write metrics.csv, curves.png and summary.md.",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="tutorial",
        help="; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items())
        + " (default: tutorial)",
    )
    parser.add_argument(
        "--losses",
        nargs="+",
        choices=sorted(LOSSES),
        metavar="LOSS",
        help=f"losses to compare, of {', '.join(LOSSES)} (default: the preset's)",
    )
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the preset's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="default: 0")
    parser.add_argument("--data-dir", default="data", help="folder holding MNIST/raw/")
    parser.add_argument(
        "--val-size", type=int, default=5_000, help="training images held out (default 5000)"
    )
    parser.add_argument("--output-dir", type=Path, help="default: outputs/compare/<preset>")
    parser.add_argument("--accelerator", default="cpu", help="cpu (default), gpu or auto")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.val_size < 1:
        parser.error(f"--val-size must be at least 1, got {args.val_size}")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds must be distinct, got {args.seeds}")
    return args


def main(argv: Sequence[str]) -> None:
    """Run ``mnist-lit compare``; bad data ends in a :class:`MnistLitError`."""
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    losses = args.losses or list(preset.losses)
    epochs = args.epochs or preset.epochs
    output_dir = args.output_dir or Path("outputs") / "compare" / args.preset
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MnistLitError(f"--output-dir {output_dir}: cannot create it ({error}).") from None
    # The Trainer's notices about devices and workers are noise here.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers")
    rows = run_comparison(
        args.preset, losses, epochs, args.seeds, args.data_dir, args.val_size, args.accelerator
    )
    write_csv(rows, output_dir / "metrics.csv")
    title = f"{args.preset}: {preset.description}; {len(args.seeds)} seed(s)"
    plot_curves(rows, losses, epochs, title, output_dir / "curves.png")
    table = summary_table(rows, losses, epochs)
    (output_dir / "summary.md").write_text(table + "\n")
    print(f"\nwrote {output_dir / 'metrics.csv'}, {output_dir / 'curves.png'}\n")
    print(table)
