"""Comparing an exported model with its checkpoint, image by image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from mnist_lit.export.formats import Runner

# Float32 arithmetic in another order (ONNX Runtime's kernels, an exported graph) moves
# logits by about 1e-6 per unit of their size; a wrong weight or scaling moves them by far
# more than this.
TOLERANCE = 1e-4
_CHUNK = 1_000  # images per forward pass: bounded memory for convolutional networks


@dataclass(frozen=True)
class ExportCheck:
    """The largest differences between the exported model and the checkpoint."""

    images: int
    logits: float  # max absolute difference, relative to max(1, largest |logit|)
    probabilities: float  # max absolute difference
    same_digit: int  # images whose predicted digit agrees

    @property
    def passed(self) -> bool:
        # The digits may differ only where two logits tie within rounding: not a criterion.
        return self.logits <= TOLERANCE and self.probabilities <= TOLERANCE

    def summary(self) -> str:
        verdict = "passed" if self.passed else f"FAILED (tolerance {TOLERANCE:g})"
        return (
            f"max |logit difference| {self.logits:.1e} (relative), max |probability "
            f"difference| {self.probabilities:.1e}, same digit on {self.same_digit:,} of "
            f"{self.images:,}: {verdict}"
        )


@torch.no_grad()
def check_export(model: nn.Module, run: Runner, images: Tensor) -> ExportCheck:
    """Run the checkpoint's ``model`` (PyTorch, eager) and the exported file's ``run`` on
    ``images``, ``(N, 28, 28)`` uint8, and compare their outputs."""
    logit_diff = probability_diff = 0.0
    same = 0
    largest = 1.0
    for chunk in images.split(_CHUNK):
        expected_logits, expected_probabilities = (t.numpy() for t in model(chunk))
        logits, probabilities = run(np.ascontiguousarray(chunk.numpy()))
        logit_diff = max(logit_diff, float(np.abs(logits - expected_logits).max()))
        largest = max(largest, float(np.abs(expected_logits).max()))
        probability_diff = max(
            probability_diff, float(np.abs(probabilities - expected_probabilities).max())
        )
        same += int((logits.argmax(-1) == expected_logits.argmax(-1)).sum())
    return ExportCheck(len(images), logit_diff / largest, probability_diff, same)
