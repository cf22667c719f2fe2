"""The LightningModule: any network, any loss, an injected optimiser (the tutorial's SGD by
default), accuracy per split."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from mnist_lit.diagnostics import (
    brier_score,
    output_probabilities,
    per_sample_dcdz,
    saturated_share,
)
from mnist_lit.errors import MnistLitError, first_line
from mnist_lit.hyperparameters import TrackedHyperparameters
from mnist_lit.losses import CrossEntropy
from mnist_lit.mnist import IMAGE_SIDE, NUM_CLASSES
from mnist_lit.models.divergence import StopOnDivergence
from mnist_lit.models.nets import SoftmaxRegression

Batch = tuple[Tensor, Tensor]
LOSS_CONTRACT = (
    "loss(logits, target) -> a scalar tensor, differentiable in the logits, with logits of "
    "shape (B, 10) and integer class indices of shape (B,) as target"
)


def spec_of(cls: type, init_args: dict[str, Any]) -> dict[str, Any]:
    """``cls`` as ``class_path`` and the plain values of ``init_args``."""
    plain = {
        k: v for k, v in init_args.items() if isinstance(v, (bool, int, float, str, list, tuple))
    }
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": plain}


def class_spec(obj: object) -> dict[str, Any]:
    """``obj`` as ``class_path`` and ``init_args``: its class, and each argument of its
    ``__init__`` that it keeps as an attribute of the same name (plain values only)."""
    names = list(inspect.signature(type(obj).__init__).parameters)[1:]
    return spec_of(type(obj), {name: getattr(obj, name, None) for name in names})


def optimizer_spec(make: Callable[..., torch.optim.Optimizer]) -> dict[str, Any]:
    """The optimiser that ``make`` builds, as ``class_path`` and ``init_args``: built once
    on a dummy parameter, so classes, partials and lambdas are described alike."""
    optimizer = make([nn.Parameter(torch.zeros(1))])
    return spec_of(type(optimizer), optimizer.defaults)


def scheduler_spec(make: Callable[..., Any]) -> dict[str, Any]:
    """The schedule that ``make`` builds, as ``class_path`` and ``init_args`` (less its
    position, ``last_epoch``, which a new schedule starts from)."""
    spec = class_spec(make(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)))
    spec["init_args"].pop("last_epoch", None)
    return spec


def _class_name(spec: Any, part: Any) -> str:
    """The class that ``part`` builds, from its ``class_path`` when LightningCLI gave one."""
    if isinstance(spec, dict):
        return str(spec.get("class_path", "")).rsplit(".", 1)[-1]
    return str(getattr(getattr(part, "func", part), "__name__", type(part).__name__))


# What each split measures, logged in this order.
SPLIT_METRICS = {
    "train": ("acc", "loss", "dcdz", "saturated"),
    "val": ("acc", "loss", "ce", "ece", "brier"),
    "test": ("acc", "loss", "ce", "ece", "brier"),
}


def new_metric(name: str) -> Metric:
    if name == "acc":
        # The inputs come from this module, so torchmetrics' input checks are skipped.
        return MulticlassAccuracy(NUM_CLASSES, average="micro", validate_args=False)
    if name == "ece":
        return MulticlassCalibrationError(NUM_CLASSES, n_bins=15)
    # A running mean. Its NaN check would read the value on the host every step; a
    # non-finite training loss is recorded by the classifier itself (nonfinite_step).
    return MeanMetric(nan_strategy="disable")


class MNISTClassifier(TrackedHyperparameters, L.LightningModule):
    r"""Trains ``net`` with ``loss`` and reports comparable metrics for every split.

    Logged per epoch: ``{train,val,test}/loss`` (the training loss), ``{train,val,test}/acc``,
    ``val/acc_best``, and ``{val,test}/ce``, the plain cross-entropy on logits, so that runs
    trained with different losses can be compared on one scale.

    The loss study's diagnostics, also per epoch:

    - ``train/dcdz``: mean absolute gradient of the loss with respect to the output
      pre-activations (logits), per sample, :math:`|\partial C_x / \partial z_k|` averaged
      over samples and outputs. The quadratic cost's carries :math:`\sigma'(z)` and
      vanishes when outputs saturate; cross-entropy's does not.
    - ``train/saturated``: share of output activations within 0.01 of 0 or 1, taken
      through the loss's own output activation (``loss.activation``: ``"softmax"`` or
      ``"sigmoid"``; softmax when the loss does not say).
    - ``{val,test}/ece``: expected calibration error (15 bins, L1) of the softmax of
      the logits, the same probabilities for every loss.
    - ``{val,test}/brier``: the Brier score of those probabilities, the mean over images
      of :math:`\sum_k (p_k - y_k)^2` with :math:`y` one-hot.

    Args:
        net: maps ``(B, 1, 28, 28)`` images to ``(B, 10)`` logits; default the tutorial's
            :class:`SoftmaxRegression`.
        loss: ``loss(logits, target) -> scalar``; default :class:`CrossEntropy`.
        optimizer: builds the optimiser from the parameters; default the tutorial's SGD at
            learning rate 0.5. From the command line, ``--model.optimizer Adam
            --model.optimizer.lr 0.001``: the one place of the learning rate.
        lr_scheduler: builds a schedule from the optimiser, stepped once per epoch; default
            none (a constant rate).
        diagnostics_every: measure ``train/dcdz`` and ``train/saturated`` on every n-th
            training batch (1: all of them). Measuring costs a quarter of a step of the
            tutorial's model, and a sample of batches estimates an epoch's mean well.
        compile: compile the network with ``torch.compile`` (in place, so checkpoints keep
            their keys); pays off on a GPU for networks larger than the tutorial's.
    """

    def __init__(
        self,
        net: nn.Module | None = None,
        loss: nn.Module | None = None,
        optimizer: OptimizerCallable = lambda params: torch.optim.SGD(params, lr=0.5),
        lr_scheduler: LRSchedulerCallable | None = None,
        diagnostics_every: int = 10,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.net = net if net is not None else SoftmaxRegression()
        self.loss = loss if loss is not None else CrossEntropy()
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.save_hyperparameters_with_classes()
        self.output_activation = str(getattr(self.loss, "activation", "softmax"))
        if diagnostics_every <= 0:
            raise MnistLitError(
                f"model.diagnostics_every must be a positive integer, got {diagnostics_every}."
            )
        self.diagnostics_every = diagnostics_every
        if compile:
            self.net.compile()
        else:  # the model summary's sizes and FLOPs (not worth a compilation)
            self.example_input_array = torch.zeros(1, 1, 28, 28)
        self.metrics = nn.ModuleDict(
            {
                f"{split}_{name}": new_metric(name)
                for split, names in SPLIT_METRICS.items()
                for name in names
            }
        )
        self.val_acc_best = MaxMetric()
        # Saved in checkpoints, so that a resumed run knows the best accuracy so far.
        self.val_acc_best.persistent(True)
        # Global step of the first non-finite training loss, or -1; kept on the device.
        self.register_buffer("nonfinite_step", torch.tensor(-1), persistent=False)
        self.nonfinite_step: Tensor
        self._rng_states_to_restore: dict[str, Any] | None = None

    def save_hyperparameters_with_classes(self) -> None:
        """Save the hyperparameters, each part (net, loss, optimiser, schedule) as
        ``class_path`` and ``init_args``, so that a checkpoint rebuilds its own model:
        ``load_from_checkpoint(path)`` and ``mnist-lit test --ckpt_path FILE`` need nothing
        else.

        From LightningCLI they arrive so; parts built in Python are described here.
        """
        with warnings.catch_warnings():  # modules from Python are replaced below
            warnings.filterwarnings("ignore", message=r"Attribute '(net|loss)' is an instance")
            self.save_hyperparameters()
        hparams = dict(self.hparams)
        describe = {"net": class_spec, "loss": class_spec, "optimizer": optimizer_spec,
                    "lr_scheduler": scheduler_spec}  # fmt: skip
        for name, spec in describe.items():
            part = getattr(self, name)
            if part is None:
                continue
            try:  # built once on a dummy parameter: a bad option fails here, not in fit
                described = spec(part)
            except Exception as error:
                option = f"model.{name} ({_class_name(hparams.get(name), part)})"
                raise MnistLitError(
                    f"{option}: {first_line(error)}. Fix model.{name}'s init_args, or choose "
                    "another class."
                ) from error
            if not isinstance(hparams.get(name), (dict, str)):
                hparams[name] = described
        # Rebuild the classes from their class_path, as LightningCLI's own checkpoints do.
        hparams.setdefault("_instantiator", "lightning.pytorch.cli.instantiate_module")
        self.save_hyperparameters(hparams)

    def setup(self, stage: str) -> None:
        # Every stage (fit, validate, test, predict) passes here before its first batch.
        self.check_net_output()
        if stage != "predict":  # predicting needs no loss
            self.check_loss()

    def check_net_output(self) -> None:
        """Fail before any training if ``net`` does not map an image to 10 logits."""
        was_training = self.net.training
        self.net.eval()  # no dropout, no batch-norm statistics from this dummy batch
        images = torch.zeros(2, 1, IMAGE_SIDE, IMAGE_SIDE, device=self.device)
        try:
            with torch.no_grad():
                logits = self.net(images)
        except Exception as error:
            raise MnistLitError(
                f"model.net ({type(self.net).__name__}) fails on a batch of {IMAGE_SIDE}x"
                f"{IMAGE_SIDE} images: {first_line(error)}"
            ) from error
        finally:
            self.net.train(was_training)
        if not isinstance(logits, Tensor) or logits.shape != (2, NUM_CLASSES):
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise MnistLitError(
                f"model.net must output {NUM_CLASSES} logits per image, got {shape} for 2 "
                f"images from {type(self.net).__name__}; set the network's last layer to "
                f"{NUM_CLASSES} outputs."
            )

    def check_loss(self) -> None:
        """Fail before any training if ``loss`` does not keep :data:`LOSS_CONTRACT`.

        Tried on fixed dummy logits, so no random number is drawn.
        """
        name = f"model.loss ({type(self.loss).__name__})"
        logits = torch.linspace(-2, 2, 4 * NUM_CLASSES, device=self.device)
        logits = logits.reshape(4, NUM_CLASSES).requires_grad_()
        target = torch.arange(4, device=self.device)
        try:
            with warnings.catch_warnings():  # warnings about dummy data are noise
                warnings.simplefilter("ignore")
                value = self.loss(logits, target)
        except Exception as error:
            raise MnistLitError(
                f"{name} fails on a dummy batch of 4: {first_line(error)}. A loss is "
                f"{LOSS_CONTRACT}."
            ) from error
        if not isinstance(value, Tensor) or value.ndim != 0:
            got = f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value)
            problem = f"returns {got}, not a scalar tensor (reduce it, e.g. with .mean())"
        elif not torch.isfinite(value):
            problem = f"returns {value.item()} on a dummy batch of 4"
        elif torch.autograd.grad(value, logits, allow_unused=True)[0] is None:
            problem = "returns a value that does not depend on the logits (no gradient)"
        else:
            return
        raise MnistLitError(f"{name} {problem}. A loss is {LOSS_CONTRACT}.")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def model_step(self, batch: Batch, split: str, diagnose: bool = False) -> Tensor:
        """Forward one batch, update ``split``'s metrics and return the training loss."""
        images, target = batch
        logits = self.net(images)  # (B, 10): checked once in setup
        loss = self.loss(logits, target)
        # Metrics accumulate on the device; nothing here waits for the GPU.
        self.metric(split, "acc").update(logits.detach(), target)
        self.metric(split, "loss").update(loss.detach(), weight=len(target))
        if split == "train":
            if diagnose:
                self.record_output_diagnostics(logits)
        else:
            ce = F.cross_entropy(logits.detach(), target)
            self.metric(split, "ce").update(ce, weight=len(target))
            probs = logits.detach().softmax(dim=-1)
            self.metric(split, "ece").update(probs, target)
            self.metric(split, "brier").update(brier_score(probs, target), weight=len(target))
        return loss

    def record_output_diagnostics(self, logits: Tensor) -> None:
        """Accumulate dC/dz and the saturated share of this batch, on the device.

        The hook receives dC/dz during the backward pass Lightning runs anyway, so this
        costs one small reduction per step and never waits for the device (no ``.item()``).
        """
        probs = output_probabilities(logits.detach(), self.output_activation)
        self.metric("train", "saturated").update(saturated_share(probs), weight=len(logits))
        if logits.requires_grad:

            def record(grad: Tensor) -> None:
                self.metric("train", "dcdz").update(per_sample_dcdz(grad), weight=len(grad))

            logits.register_hook(record)

    def metric(self, split: str, name: str) -> Metric:
        return cast(Metric, self.metrics[f"{split}_{name}"])

    def log_split(self, split: str) -> None:
        """Log ``split``'s epoch metrics once, synchronised across processes."""
        for name in SPLIT_METRICS[split]:
            self.log(f"{split}/{name}", self.metric(split, name), prog_bar=name == "acc")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning saves weights, optimizer, scheduler and loops, not the random generators;
        # dropout draws from them, so an exact resume needs them too.
        # Only torch's generators: nothing here draws from numpy or ``random``, and tensors
        # keep the checkpoint loadable with ``weights_only=True``.
        checkpoint["rng_states"] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_states_to_restore = checkpoint.get("rng_states")

    def on_train_start(self) -> None:
        # Restored here, after everything that runs between loading and training.
        states, self._rng_states_to_restore = self._rng_states_to_restore, None
        if states is not None:
            torch.set_rng_state(states["cpu"])
            if "cuda" in states and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(states["cuda"])

    def on_fit_start(self) -> None:
        # A new fit starts a new best; a resumed one keeps the best from its checkpoint.
        if self.trainer.ckpt_path is None:
            self.val_acc_best.reset()

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        diagnose = batch_idx % self.diagnostics_every == 0
        loss = self.model_step(batch, "train", diagnose)
        # Remember the first non-finite loss without waiting for the device; a callback
        # (StopOnDivergence) acts on it.
        first = ~torch.isfinite(loss.detach()) & (self.nonfinite_step < 0)
        self.nonfinite_step = torch.where(first, self.global_step, self.nonfinite_step)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log_split("train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.model_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.log_split("val")
        # The sanity check's validation must not count as the best.
        if not self.trainer.sanity_checking:
            self.val_acc_best.update(self.metric("val", "acc").compute())
            # Every process holds the same synchronised value; sync_dist only silences
            # Lightning's warning about epoch-level values under DDP.
            self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.model_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.log_split("test")

    def predict_step(self, batch: Batch | Tensor, batch_idx: int) -> dict[str, Any]:
        """The predicted ``digit`` ``(B,)`` and class ``probs`` ``(B, 10)`` of a batch of
        images, or of ``(images, targets)``."""
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        probs = self.net(images).softmax(dim=-1)
        return {"digit": probs.argmax(dim=-1), "probs": probs}

    def configure_callbacks(self) -> list[Callback]:
        # A non-finite training loss ends training with Diverged, a user's error that the
        # caller may catch (a tuning trial records the run as diverged).
        return [StopOnDivergence()]

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(self.parameters())
        if self.lr_scheduler is None:
            return optimizer
        # The monitor serves ReduceLROnPlateau; every other schedule ignores it.
        schedule = {"scheduler": self.lr_scheduler(optimizer), "monitor": "val/loss"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}
