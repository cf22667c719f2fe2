"""A passive callback that times ``fit`` from its first to its last training step.

Added to a shipped config from the command line, so the config itself is unchanged:
``mnist-lit fit --config ... --trainer.callbacks+=benchmarks.fit_timer.FitTimer
--trainer.callbacks.output=timing.json``
"""

import json
import time

import lightning as L
from lightning.pytorch.callbacks import Callback


class FitTimer(Callback):
    def __init__(self, output: str) -> None:
        self.output = output
        self.start = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self.start
        with open(self.output, "w") as f:
            json.dump({"train_seconds": seconds, "steps": trainer.global_step}, f)
