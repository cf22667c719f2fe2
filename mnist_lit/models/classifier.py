"""The LightningModule: any network, any loss, an injected optimiser (the tutorial's SGD by
default), accuracy per split."""

from __future__ import annotations

import inspect
import warnings
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric, Metric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
)

from mnist_lit.data.batches import trained_batches
from mnist_lit.data.hyperparameters import TrackedHyperparameters
from mnist_lit.data.mnist import IMAGE_SIDE, NUM_CLASSES
from mnist_lit.losses import CrossEntropy
from mnist_lit.models.diagnostics import (
    ReliabilityBins,
    brier_score,
    output_probabilities,
    per_sample_dcdz,
    saturated_share,
)
from mnist_lit.models.divergence import StopOnDivergence
from mnist_lit.models.nets import SoftmaxRegression
from mnist_lit.models.parts import describe

Batch = tuple[Tensor, Tensor]
LOSS_CONTRACT = (
    "loss(logits, target) -> a scalar tensor, differentiable in the logits, with logits of "
    "shape (B, 10) and integer class indices of shape (B,) as target"
)
# The parts of the model, each a class and its arguments in a checkpoint.
PARTS = ("net", "loss", "optimizer", "lr_scheduler")
# What the default optimizer builds, as LightningCLI records it.
TUTORIAL_SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.5}}


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (or its type), to quote inside ours."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _class_name(part: Any) -> str:
    return str(getattr(getattr(part, "func", part), "__name__", type(part).__name__))


# What each split measures, logged in this order.
SPLIT_METRICS = {
    "train": ("acc", "loss", "dcdz", "saturated"),
    "val": ("acc", "loss", "ce", "ece", "brier"),
    "test": ("acc", "loss", "ce", "ece", "brier"),
}
# Kept for the test figures (EvaluationFigures), not logged.
TEST_FIGURE_METRICS = ("confusion", "reliability")


def new_metric(name: str) -> Metric:
    if name == "acc":
        # The inputs come from this module, so torchmetrics' input checks are skipped.
        return MulticlassAccuracy(NUM_CLASSES, average="micro", validate_args=False)
    if name == "ece":
        return MulticlassCalibrationError(NUM_CLASSES, n_bins=15)
    if name == "confusion":
        return MulticlassConfusionMatrix(NUM_CLASSES, validate_args=False)
    if name == "reliability":
        return ReliabilityBins(n_bins=15)  # test/ece's bins
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

    A checkpoint rebuilds its model (``load_from_checkpoint(path)``, ``mnist-lit test
    --ckpt_path FILE``) from the hyperparameters: LightningCLI's record of each part's
    ``class_path`` and ``init_args``, or, for a model built in Python, the same record of
    each part described exactly (see :func:`describe`); a part that cannot be is named in
    a warning when a checkpoint is saved.

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
            their keys), once it has passed its check; pays off on a GPU for networks
            larger than the tutorial's.
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
        if diagnostics_every <= 0:
            raise ValueError(
                f"diagnostics_every must be a positive integer, got {diagnostics_every}."
            )
        self.save_hyperparameters(ignore=list(PARTS))
        if "_instantiator" in self.hparams:  # built by LightningCLI: its record of the parts
            self.save_hyperparameters()
        else:
            self.describe_parts(net, loss, optimizer, lr_scheduler)
        self.net = net if net is not None else SoftmaxRegression()
        self.loss = loss if loss is not None else CrossEntropy()
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.check_optimizer()
        self.output_activation = str(getattr(self.loss, "activation", "softmax"))
        self.diagnostics_every = diagnostics_every
        self.compile_pending = compile  # compiled in setup, after the check on the CPU
        if not compile:  # the model summary's sizes and FLOPs (not worth a compilation)
            self.example_input_array = torch.zeros(1, 1, IMAGE_SIDE, IMAGE_SIDE)
        self.metrics = nn.ModuleDict(
            {
                f"{split}_{name}": new_metric(name)
                for split, names in SPLIT_METRICS.items()
                for name in names
            }
            | {f"test_{name}": new_metric(name) for name in TEST_FIGURE_METRICS}
        )
        self.val_acc_best = MaxMetric()
        # Saved in checkpoints, so that a resumed run knows the best accuracy so far.
        self.val_acc_best.persistent(True)
        # Global step of the first non-finite training loss, or -1; kept on the device.
        self.register_buffer("nonfinite_step", torch.tensor(-1), persistent=False)
        self.nonfinite_step: Tensor
        self._rng_states_to_restore: dict[str, Any] | None = None
        self._train_metric_states: dict[str, dict[str, Any]] | None = None

    def describe_parts(self, *parts: Any) -> None:
        """Save each part built in Python as LightningCLI records it, so that
        ``load_from_checkpoint`` rebuilds it from plain values (no code unpickled).

        A part with no exact description is saved as a note that fails loudly on loading
        (never as a default): :meth:`on_save_checkpoint` names it.
        """
        described: dict[str, Any] = {}
        self.undescribed: list[str] = []
        default_optimizer = inspect.signature(MNISTClassifier).parameters["optimizer"].default
        for name, part in zip(PARTS, parts, strict=True):
            spec: Any = TUTORIAL_SGD if part is default_optimizer else describe(part)
            if part is not None and spec is None:
                self.undescribed.append(f"{name} ({_class_name(part)})")
                spec = f"{_class_name(part)} built in Python, its arguments not recorded"
            described[name] = spec
        # The instantiator LightningCLI records, which builds class_path/init_args again.
        self.save_hyperparameters(
            {**described, "_instantiator": "lightning.pytorch.cli.instantiate_module"}
        )

    def check_optimizer(self) -> None:
        """Fail now, not in fit, on an optimiser or schedule that does not build: each is
        built once on a dummy parameter."""
        name = "optimizer"
        try:
            optimizer = self.optimizer([nn.Parameter(torch.zeros(1))])
            name = "lr_scheduler"
            if self.lr_scheduler is not None:
                self.lr_scheduler(optimizer)
        except Exception as error:
            spec = self.hparams.get(name)
            cls = spec["class_path"].rsplit(".", 1)[-1] if isinstance(spec, dict) else None
            raise ValueError(
                f"{name} ({cls or _class_name(getattr(self, name))}): {first_line(error)}. "
                "Fix its arguments, or choose another class."
            ) from error

    def setup(self, stage: str) -> None:
        # Every stage (fit, validate, test, predict) passes here before its first batch,
        # while the model is still on the CPU: the checks run the plain network there.
        self.check_net_output()
        if stage != "predict":  # predicting needs no loss
            self.check_loss()
        if self.compile_pending:  # compiled for the device it will run on, at its first batch
            self.net.compile()
            self.compile_pending = False

    def check_net_output(self) -> None:
        """Fail before any training if ``net`` does not map an image to 10 logits."""
        name = f"net ({type(self.net).__name__})"
        was_training = self.net.training
        self.net.eval()  # no dropout, no batch-norm statistics from this dummy batch
        images = torch.zeros(2, 1, IMAGE_SIDE, IMAGE_SIDE, device=self.device)
        try:
            with torch.no_grad():
                logits = self.net(images)
        except Exception as error:
            raise ValueError(
                f"{name} fails on a batch of {IMAGE_SIDE}x{IMAGE_SIDE} images: {first_line(error)}"
            ) from error
        finally:
            self.net.train(was_training)
        if not isinstance(logits, Tensor) or logits.shape != (2, NUM_CLASSES):
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(
                f"{name} must output {NUM_CLASSES} logits per image, got {shape} for 2 "
                f"images; set the network's last layer to {NUM_CLASSES} outputs."
            )

    def check_loss(self) -> None:
        """Fail before any training if ``loss`` does not keep :data:`LOSS_CONTRACT`.

        Tried on fixed dummy logits, so no random number is drawn.
        """
        name = f"loss ({type(self.loss).__name__})"
        logits = torch.linspace(-2, 2, 4 * NUM_CLASSES, device=self.device)
        logits = logits.reshape(4, NUM_CLASSES).requires_grad_()
        target = torch.arange(4, device=self.device)
        try:
            with warnings.catch_warnings():  # warnings about dummy data are noise
                warnings.simplefilter("ignore")
                value = self.loss(logits, target)
        except Exception as error:
            raise ValueError(
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
        raise ValueError(f"{name} {problem}. A loss is {LOSS_CONTRACT}.")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def model_step(self, batch: Batch, split: str, diagnose: bool = False) -> tuple[Tensor, Tensor]:
        """Forward one batch, update ``split``'s metrics; the training loss and the logits."""
        images, target = batch
        logits = self.net(images)  # (B, 10): checked once in setup
        loss = self.loss(logits, target)
        # Metrics accumulate on the device; nothing here waits for the GPU.
        self.metric(split, "acc").update(logits.detach(), target)
        self.metric(split, "loss").update(loss.detach(), weight=len(target))
        if split == "train":
            if diagnose:
                self.record_output_diagnostics(logits, loss)
            return loss, logits
        ce = F.cross_entropy(logits.detach(), target)
        self.metric(split, "ce").update(ce, weight=len(target))
        probs = logits.detach().float().softmax(dim=-1)
        self.metric(split, "ece").update(probs, target)
        self.metric(split, "brier").update(brier_score(probs, target), weight=len(target))
        if split == "test":  # for the test figures
            self.metric(split, "confusion").update(probs, target)
            self.metric(split, "reliability").update(probs, target)
        return loss, logits

    def record_output_diagnostics(self, logits: Tensor, loss: Tensor) -> None:
        """Accumulate dC/dz and the saturated share of this batch, on the device.

        dC/dz is the gradient of this batch's loss itself: the one Lightning backpropagates
        is divided by ``accumulate_grad_batches`` and scaled under ``16-mixed``. Taken
        through the loss alone (not the network), it costs one small backward pass, and
        never waits for the device (no ``.item()``).
        """
        probs = output_probabilities(logits.detach(), self.output_activation)
        self.metric("train", "saturated").update(saturated_share(probs), weight=len(logits))
        if loss.requires_grad:
            (grad,) = torch.autograd.grad(loss, logits, retain_graph=True)
            self.metric("train", "dcdz").update(per_sample_dcdz(grad), weight=len(grad))

    def metric(self, split: str, name: str) -> Metric:
        return cast(Metric, self.metrics[f"{split}_{name}"])

    def log_split(self, split: str) -> None:
        """Log ``split``'s epoch metrics once, synchronised across processes."""
        for name in SPLIT_METRICS[split]:
            self.log(f"{split}/{name}", self.metric(split, name), prog_bar=name == "acc")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for part in getattr(self, "undescribed", ()):
            rank_zero_warn(
                f"{part} is saved without its arguments, which were not recorded: "
                f"load_from_checkpoint rebuilds this model only when given it again "
                f"(load_from_checkpoint(path, {part.split()[0]}=...)). Pass a class, a "
                "functools.partial of one, or a module that records its arguments "
                "(Lightning's HyperparametersMixin, self.save_hyperparameters())."
            )
        # Lightning saves weights, optimizer, scheduler and loops, not the random generators;
        # dropout draws from them, so an exact resume needs them too.
        # Only torch's generators: nothing here draws from numpy or ``random``, and tensors
        # keep the checkpoint loadable with ``weights_only=True``.
        checkpoint["rng_states"] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()
        # Taken mid-epoch (SLURM's requeue), the epoch's training metrics so far too: the run
        # resumed from it logs them over the whole epoch.
        if trained_batches(self._trainer) > 0:
            checkpoint["train_metric_states"] = {
                name: self._metric_state(self.metric("train", name))
                for name in SPLIT_METRICS["train"]
            }

    @staticmethod
    def _metric_state(metric: Metric) -> dict[str, Any]:
        """The metric's state summed over the processes (every training metric's state is a
        sum), and its count of updates: torchmetrics warns of a compute before any."""
        with metric.sync_context():  # every process takes the checkpoint; the first saves it
            state = {k: v.clone() for k, v in metric.metric_state.items() if isinstance(v, Tensor)}
        return {**state, "_update_count": metric._update_count}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_states_to_restore = checkpoint.get("rng_states")
        self._train_metric_states = checkpoint.get("train_metric_states")

    def on_train_start(self) -> None:
        # Restored here, after everything that runs between loading and training.
        states, self._rng_states_to_restore = self._rng_states_to_restore, None
        if states is not None:
            torch.set_rng_state(states["cpu"])
            if "cuda" in states and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(states["cuda"])
        metric_states, self._train_metric_states = self._train_metric_states, None
        for name, values in (metric_states or {}).items():
            metric = self.metric("train", name)
            metric._update_count = values.pop("_update_count")
            if self.global_rank == 0:  # the sums over every process, counted once
                for key, value in values.items():
                    setattr(metric, key, value.to(self.device))

    def on_fit_start(self) -> None:
        # A new fit starts a new best; a resumed one keeps the best from its checkpoint.
        if self.trainer.ckpt_path is None:
            self.val_acc_best.reset()

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        diagnose = batch_idx % self.diagnostics_every == 0
        loss, _ = self.model_step(batch, "train", diagnose)
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

    def on_test_epoch_start(self) -> None:
        for name in TEST_FIGURE_METRICS:  # not logged, so not reset by Lightning
            self.metric("test", name).reset()

    def test_step(self, batch: Batch, batch_idx: int) -> Tensor:
        # The logits, for callbacks (the test figures' mistakes): no second forward pass.
        return self.model_step(batch, "test")[1].detach()

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
