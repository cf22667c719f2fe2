"""What happens when the training loss becomes non-finite: the classifier records the
step (``nonfinite_step``), and :class:`StopOnDivergence` ends training with
:class:`Diverged`, before any checkpoint of the diverged weights can be written, as
``EarlyStopping(check_finite=True)`` does for a monitored metric. The caller decides what
the error means: the command line prints it as the user's mistake, a tuning trial or a
study's seed records the run as diverged.
"""

from __future__ import annotations

from typing import cast

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from mnist_lit.catalog import LEARNING_RATE
from mnist_lit.errors import MnistLitError

# Reading the record makes the host wait for the device: free on the CPU, so every step
# there; on a GPU every this many steps, and always before validation (and checkpoints).
GPU_CHECK_EVERY = 50


class Diverged(RuntimeError):
    """The training loss became non-finite: the learning rate is too large for this loss.

    Attributes:
        epoch: the epoch (from 0) in which it happened.
        step: the global step at which it happened.
    """

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(
            f"the training loss became non-finite (nan or inf) in epoch {epoch} at step "
            f"{step}; training stopped, checkpoints saved before are kept. Lower "
            f"{LEARNING_RATE}, or normalise the data (data.normalize)."
        )
        self.epoch = epoch
        self.step = step


class StopOnDivergence(Callback):
    """Ends training with :class:`Diverged` once the classifier has recorded a non-finite
    training loss."""

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The global step of the classifier's first non-finite training loss, or -1.
        step = int(cast(Tensor, pl_module.nonfinite_step))
        if step >= 0:
            raise Diverged(trainer.current_epoch, step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object
    ) -> None:
        if pl_module.device.type == "cpu" or trainer.global_step % GPU_CHECK_EVERY == 0:
            self.check(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer, pl_module)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Checkpoints are saved after validation: never from a diverged run.
        if not trainer.sanity_checking:
            self.check(trainer, pl_module)
