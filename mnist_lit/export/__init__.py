"""``mnist-lit export``: a checkpoint as an ONNX file or a ``torch.export`` program, checked
against the checkpoint on MNIST's test images before it is written.

:mod:`~mnist_lit.export.formats` writes and runs each format, :mod:`~mnist_lit.export.check`
compares an exported model with its checkpoint, :mod:`~mnist_lit.export.command` holds the
options.
"""

from mnist_lit.export.check import ExportCheck, check_export
from mnist_lit.export.formats import FORMATS, ExportFormat

__all__ = ["FORMATS", "ExportCheck", "ExportFormat", "check_export"]
