"""The formats a trained model is exported to, each written and run back the same way.

Every exported model takes ``pixels``, ``(batch, 28, 28)`` uint8, any batch size, and
returns ``logits`` and ``probabilities``, ``(batch, 10)`` float32 each: the
:class:`~mnist_lit.runs.inference.PixelClassifier` of the checkpoint, preprocessing included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnist_lit.data.mnist import IMAGE_SIDE
from mnist_lit.runs.errors import MnistLitError, first_line

INPUT_NAME = "pixels"
OUTPUT_NAMES = ("logits", "probabilities")
# Traced on a batch of two, so that the batch axis is not specialised to 1.
_EXAMPLE = (torch.zeros(2, IMAGE_SIDE, IMAGE_SIDE, dtype=torch.uint8),)
_DYNAMIC_BATCH = {INPUT_NAME: {0: torch.export.Dim("batch")}}

# uint8 pixels (B, 28, 28) -> logits and probabilities (B, 10) as numpy arrays.
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ExportFormat:
    """How to write a model in one format, and how to run the written file."""

    suffix: str
    runtime: str  # what runs the file for the check
    write: Callable[[nn.Module, Path], None]
    load: Callable[[Path], Runner]
    extra: str | None = None  # the package extra it needs beyond torch


def write_onnx(model: nn.Module, path: Path) -> None:
    """One self-contained ``.onnx`` file (weights inside), opset chosen by torch."""
    torch.onnx.export(
        model,
        _EXAMPLE,
        str(path),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes=_DYNAMIC_BATCH,
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def load_onnx(path: Path) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, probabilities = session.run(list(OUTPUT_NAMES), {INPUT_NAME: pixels})
        return logits, probabilities

    return run


def write_pt2(model: nn.Module, path: Path) -> None:
    """A ``torch.export`` program, saved with ``torch.export.save``."""
    program = torch.export.export(model, _EXAMPLE, dynamic_shapes=_DYNAMIC_BATCH)
    torch.export.save(program, str(path))


def load_pt2(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()

    @torch.no_grad()
    def run(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, probabilities = module(torch.from_numpy(pixels))
        return logits.numpy(), probabilities.numpy()

    return run


FORMATS = {
    "onnx": ExportFormat(".onnx", "onnxruntime", write_onnx, load_onnx, extra="export"),
    "pt2": ExportFormat(".pt2", "torch.export.load", write_pt2, load_pt2),
}


def write_model(name: str, model: nn.Module, net: str, path: Path) -> None:
    """Write ``model`` as format ``name`` to ``path``, or fail with one message."""
    export_format = FORMATS[name]
    try:
        export_format.write(model, path)
    except ImportError as error:
        raise missing_package(name, error) from error
    except Exception as error:  # the exporters report an unsupported network in many ways
        others = ", ".join(f"--format {other}" for other in FORMATS if other != name)
        raise MnistLitError(
            f"model.net ({net}) cannot be exported as {name}: {first_line(error)}. Try "
            f"{others}, or a network made of standard PyTorch layers."
        ) from error


def load_runner(name: str, path: Path) -> Runner:
    try:
        return FORMATS[name].load(path)
    except ImportError as error:
        raise missing_package(name, error) from error


def missing_package(name: str, error: ImportError) -> MnistLitError:
    extra = FORMATS[name].extra
    return MnistLitError(
        f"--format {name} needs a package that is not installed ({first_line(error)}): "
        f"pip install 'mnist-lit[{extra}]'."
    )
