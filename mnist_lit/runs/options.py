"""The options that ``mnist-lit compare`` and ``mnist-lit study`` share (the data, the
split, the seeds, the epochs, the device), and their checks."""

from __future__ import annotations

import argparse

import torch

from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.parser import OneMessageParser


def add_run_options(parser: OneMessageParser, seeds: str, epochs: str) -> None:
    """Add the shared options; ``seeds`` and ``epochs`` say their defaults in the help."""
    folder = "folder holding MNIST/raw/ (default: data; both spellings, as fit's)"
    parser.add_argument(
        "--data-dir", "--data.data_dir", dest="data_dir", default="data", help=folder
    )
    parser.add_argument("--seeds", type=int, nargs="+", help=f"(default: {seeds})")
    parser.add_argument("--epochs", type=int, help=f"epochs per run (default: {epochs})")
    held_out = "training images held out (default: 5000)"
    parser.add_argument("--val-size", type=int, default=5_000, help=held_out)
    devices = ["cpu", "gpu", "auto"]
    parser.add_argument("--accelerator", choices=devices, default="cpu", help="(default: cpu)")


def check_run_options(parser: OneMessageParser, args: argparse.Namespace, *counts: str) -> None:
    """Fail with one message unless ``epochs``, ``val_size`` and the ``counts`` named are at
    least 1, the seeds (and losses and networks, where a command takes them) distinct, and a
    GPU asked for is there."""
    for option in ("epochs", "val_size", *counts):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    for option in ("seeds", "losses", "networks"):  # the lists a command has of these
        values = getattr(args, option, None)
        if values is not None and len(set(values)) != len(values):
            parser.error(f"--{option} must be distinct, got {' '.join(map(str, values))}")
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        raise MnistLitError("--accelerator gpu: this machine has no usable GPU; use cpu or auto.")
