"""The experiment of ``mnist-lit compare``: several losses trained from one of the project's
configs on the same data, network, seed and initial weights, measured epoch by epoch
(validation and test metrics, dC/dz and saturated outputs). Each run is a configured fit
(:func:`~mnist_lit.runs.fit.fit`), as ``mnist-lit fit`` and ``mnist-lit study`` run it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from mnist_lit.data import MNISTDataModule
from mnist_lit.models import MLP, MNISTClassifier
from mnist_lit.models.diagnostics import output_probabilities, per_sample_dcdz, saturated_share
from mnist_lit.runs.catalog import LOSSES
from mnist_lit.runs.evaluation import evaluate, split_logits
from mnist_lit.runs.fit import Fit, fit

# Nielsen's saturated start: every output neuron begins near 1, wrong for nine digits out
# of ten, like his neuron that starts at 0.98 and should output 0. A sigmoid output with
# bias 10 sits at sigma(10) = 0.99995, where sigma' = 4.5e-5.
SATURATED_OUTPUT_BIAS = 10.0

Row = dict[str, object]


class SaturatedMLP(MLP):
    """An :class:`~mnist_lit.models.MLP` whose output layer starts with every bias at
    ``output_bias``: Nielsen's 784-30-10 sigmoid network pushed into saturation."""

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (30,),
        activation: str = "sigmoid",
        output_bias: float = SATURATED_OUTPUT_BIAS,
    ) -> None:
        super().__init__(hidden_sizes, activation)
        self.output_bias = output_bias
        output_layer = self.layers[-1]
        assert isinstance(output_layer, nn.Linear)
        nn.init.constant_(output_layer.bias, output_bias)


@dataclass(frozen=True)
class Preset:
    """One experiment: the config it trains (``configs/``) and the losses it compares."""

    description: str
    config: str
    losses: tuple[str, ...]


PRESETS = {
    "tutorial": Preset(
        "the tutorial (seed_cross_entropy.yaml): softmax regression, SGD lr 0.5, batch 64, "
        "10 epochs, pixels in [0, 1]",
        "seed_cross_entropy.yaml",
        ("softmax_twice", "ce", "quadratic"),
    ),
    "nielsen": Preset(
        "Nielsen ch. 3 (nielsen_saturated.yaml): 784-30-10 sigmoid MLP, outputs saturated "
        "near 1 at the start, SGD lr 0.5, mini-batch 10, 2 epochs",
        "nielsen_saturated.yaml",
        ("sigmoid_quadratic", "bce"),
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
    """Appends one row per epoch, from epoch 0 (the untrained network): validation and
    test metrics, and the epoch's dC/dz and saturated share."""

    def __init__(self, labels: Row) -> None:
        self.labels = labels
        self.rows: list[Row] = []

    def record(self, trainer: L.Trainer, model: MNISTClassifier, diagnostics: Row) -> None:
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        row: Row = {**self.labels, "epoch": len(self.rows), **diagnostics}
        for split in ("val", "test"):
            row.update(evaluate(model, datamodule, split).metrics)
        self.rows.append(row)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, MNISTClassifier)
        diagnostics = initial_diagnostics(pl_module, trainer.datamodule)  # type: ignore[attr-defined]
        self.record(trainer, pl_module, dict(diagnostics))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, MNISTClassifier)
        # Runs before the module logs (and resets) its epoch metrics.
        diagnostics: Row = {
            name: pl_module.metric("train", name).compute().item() for name in ("dcdz", "saturated")
        }
        self.record(trainer, pl_module, diagnostics)


def run_comparison(
    preset_name: str,
    losses: Sequence[str],
    epochs: int | None,
    seeds: Sequence[int],
    data_dir: str,
    val_size: int,
    accelerator: str,
) -> list[Row]:
    """Every loss for every seed, each a fit of the preset's config (for ``epochs``, or the
    config's); within a seed all losses share the data order and the initial weights (the
    fit seeds both). Each loss's rows start at epoch 0, the untrained network."""
    preset = PRESETS[preset_name]
    rows: list[Row] = []
    for seed in seeds:
        for loss_name in losses:
            recorder = EpochRecorder({"preset": preset_name, "loss": loss_name, "seed": seed})
            options = {
                "model.loss": LOSSES[loss_name].class_path,
                "model.diagnostics_every": 1,  # dC/dz on every batch, not on a sample
                "data.data_dir": data_dir,
                "data.val_size": val_size,
                "trainer.accelerator": accelerator,
                "trainer.devices": 1,
            }
            run = Fit(configs=(preset.config,), epochs=epochs, seed=seed, options=options)
            fit(run, [recorder])
            trained = len(recorder.rows) - 1
            print(
                f"{preset_name} seed {seed} {loss_name}: test acc "
                f"{recorder.rows[-1]['test_acc']:.4f} after {trained} epoch{'s' * (trained != 1)}",
                flush=True,
            )
            rows += recorder.rows
    return rows
