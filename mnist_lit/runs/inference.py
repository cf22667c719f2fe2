"""A checkpoint's trained network together with the pixel scaling it was trained with:
the model that ``mnist-lit export`` writes and ``mnist-lit serve`` runs.

Its input is what MNIST's files and :func:`~mnist_lit.data.own_digits.mnist_style` hold,
``(B, 28, 28)`` uint8 pixels (light digit on black); its outputs are the network's logits
and their softmax, ``(B, 10)`` each. Softmax applied once, whatever loss trained the model,
as ``mnist-lit predict`` reports probabilities.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from mnist_lit.data.pixels import network_input
from mnist_lit.models import MNISTClassifier
from mnist_lit.runs.checkpointing import read_checkpoint
from mnist_lit.runs.errors import MnistLitError, first_line


class PixelClassifier(nn.Module):
    """``net`` behind the conversion of pixels that training used (``normalize`` or not).

    Args:
        net: maps ``(B, 1, 28, 28)`` float images to ``(B, 10)`` logits.
        normalize: the data module's ``normalize`` that the network was trained with.
    """

    def __init__(self, net: nn.Module, normalize: bool) -> None:
        super().__init__()
        self.net = net
        self.normalize = normalize

    def forward(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 28, 28)`` uint8 -> logits and probabilities, ``(B, 10)`` each."""
        logits = self.net(network_input(pixels, self.normalize))
        return logits, logits.softmax(dim=-1)


@dataclass(frozen=True)
class TrainedModel:
    """A checkpoint ready for inference, and what it is, for messages and ``/info``."""

    classifier: PixelClassifier
    path: Path
    net: str
    loss: str
    normalize: bool

    def describe(self) -> dict[str, object]:
        """What the model is, without where its file lies."""
        return {"net": self.net, "loss": self.loss, "normalize": self.normalize}


def load_trained_model(path: str | Path, label: str | None = None) -> TrainedModel:
    """The checkpoint at ``path`` as a :class:`TrainedModel` in eval mode, on the CPU.

    ``label`` is how the user named the file (``--ckpt_path PATH`` by default), for the one
    message that any unusable file ends in.
    """
    label = label or f"--ckpt_path {path}"
    if not Path(path).is_file():
        raise MnistLitError(f"{label}: no such file. Pass a .ckpt file written by `mnist-lit fit`.")
    checkpoint = read_checkpoint(path, label)  # safe to unpickle, or one message
    try:
        with warnings.catch_warnings():  # Lightning's notes on loading are noise here
            warnings.simplefilter("ignore")
            # Compiling is a training-speed option; inference and export run the plain net.
            model = MNISTClassifier.load_from_checkpoint(
                path, map_location="cpu", weights_only=True, compile=False
            )
    except Exception as error:
        raise MnistLitError(
            f"{label} does not rebuild an MNISTClassifier ({first_line(error)}). Pass a "
            "checkpoint written by `mnist-lit fit`, with the classes it names importable."
        ) from error
    normalize = bool(checkpoint.get("datamodule_hyper_parameters", {}).get("normalize", False))
    classifier = PixelClassifier(model.net, normalize).eval()
    classifier.requires_grad_(False)
    return TrainedModel(
        classifier, Path(path), type(model.net).__name__, type(model.loss).__name__, normalize
    )
