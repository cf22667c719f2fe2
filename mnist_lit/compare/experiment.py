"""The experiment of ``mnist-lit compare``: several losses trained on the same data,
network, seed and initial weights, measured epoch by epoch (validation and test metrics,
dC/dz and saturated outputs)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from mnist_lit.catalog import LOSSES
from mnist_lit.data import MNISTDataModule
from mnist_lit.diagnostics import output_probabilities, per_sample_dcdz, saturated_share
from mnist_lit.models import MLP, MNISTClassifier, SoftmaxRegression
from mnist_lit.runs.evaluation import evaluate, split_logits

# Nielsen's saturated start: every output neuron begins near 1, wrong for nine digits out
# of ten, like his neuron that starts at 0.98 and should output 0. A sigmoid output with
# bias 10 sits at sigma(10) = 0.99995, where sigma' = 4.5e-5.
SATURATED_OUTPUT_BIAS = 10.0

Row = dict[str, object]


def saturated_sigmoid_mlp() -> nn.Module:
    """Nielsen's 784-30-10 sigmoid network with its output layer pushed into saturation."""
    net = MLP(hidden_sizes=[30], activation="sigmoid")
    output_layer = net.layers[-1]
    assert isinstance(output_layer, nn.Linear)
    nn.init.constant_(output_layer.bias, SATURATED_OUTPUT_BIAS)
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


def initial_diagnostics(model: MNISTClassifier, datamodule: MNISTDataModule) -> dict[str, float]:
    """dC/dz and the saturated share at the initial weights, on the validation set."""
    logits = split_logits(model, datamodule, "val").requires_grad_()
    labels = datamodule.splits["val"][1].to(logits.device)
    (grad,) = torch.autograd.grad(model.loss(logits, labels), logits)
    probs = output_probabilities(logits.detach(), model.output_activation)
    return {"dcdz": per_sample_dcdz(grad).item(), "saturated": saturated_share(probs).item()}


class EpochRecorder(Callback):
    """Appends one row per epoch: validation and test metrics, and the epoch's dC/dz."""

    def __init__(self, datamodule: MNISTDataModule, labels: Row) -> None:
        self.datamodule = datamodule
        self.labels = labels
        self.rows: list[Row] = []

    def record(self, model: MNISTClassifier, epoch: int, diagnostics: dict[str, float]) -> None:
        row: Row = {**self.labels, "epoch": epoch, **diagnostics}
        for split in ("val", "test"):
            row.update(evaluate(model, self.datamodule, split).metrics)
        self.rows.append(row)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, MNISTClassifier)
        # Runs before the module logs (and resets) its epoch metrics.
        diagnostics = {
            name: pl_module.metric("train", name).compute().item() for name in ("dcdz", "saturated")
        }
        self.record(pl_module, trainer.current_epoch + 1, diagnostics)


def run_comparison(
    preset_name: str,
    losses: Sequence[str],
    epochs: int,
    seeds: Sequence[int],
    data_dir: str,
    val_size: int,
    accelerator: str,
) -> list[Row]:
    """Every loss for every seed; within a seed all losses share data order and weights.
    Each loss's rows start at epoch 0, the untrained network."""
    preset = PRESETS[preset_name]
    optimizer = functools.partial(torch.optim.SGD, lr=preset.lr)
    rows: list[Row] = []
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
            # The study measures dC/dz on every batch, not on a sample.
            model = MNISTClassifier(net, LOSSES[loss_name].build(), optimizer, diagnostics_every=1)
            labels: Row = {"preset": preset_name, "loss": loss_name, "seed": seed}
            recorder = EpochRecorder(datamodule, labels)
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
                callbacks=[recorder],
            )
            trainer.fit(model, datamodule)
            print(
                f"{preset_name} seed {seed} {loss_name}: test acc "
                f"{recorder.rows[-1]['test_acc']:.4f} after {epochs} epoch{'s' * (epochs != 1)}",
                flush=True,
            )
            rows += recorder.rows
    return rows
