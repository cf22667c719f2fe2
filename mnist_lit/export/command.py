"""``mnist-lit export``: its options, and the run from checkpoint to a checked file."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import Namespace

from mnist_lit.data.datamodule import download_mnist
from mnist_lit.data.raw_files import read_split
from mnist_lit.export.check import check_export
from mnist_lit.export.formats import FORMATS, load_runner, write_model
from mnist_lit.runs.checkpointing import find_checkpoint, run_checkpoint_folders
from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.inference import TrainedModel, load_trained_model
from mnist_lit.runs.parser import OneMessageParser

HELP = "Export a checkpoint as ONNX or a torch.export program, checked on MNIST's test images."


def build_parser() -> OneMessageParser:
    parser = OneMessageParser(
        prog="mnist-lit export",
        description=HELP + " The file takes uint8 pixels (batch, 28, 28) and returns logits "
        "and probabilities (batch, 10); the checkpoint's pixel scaling is inside.",
        formatter_class=argparse.HelpFormatter,  # the defaults are in the help texts
    )
    parser.add_argument(
        "--ckpt_path",
        required=True,
        help="a .ckpt file written by `mnist-lit fit`, or best or last: the newest run's "
        "of --experiment",
    )
    parser.add_argument(
        "--experiment",
        default="default",
        help="whose runs (logs/<experiment>/) --ckpt_path best|last searches (default: default)",
    )
    parser.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default="onnx",
        help="onnx: one .onnx file, run by ONNX Runtime and others; pt2: a torch.export "
        "program, torch.export.load(path).module() (default: onnx)",
    )
    parser.add_argument(
        "--output", help="the file to write (default: beside the checkpoint, its suffix changed)"
    )
    parser.add_argument(
        "--data.data_dir",
        default="data",
        help="folder holding MNIST/raw/, whose test images check the export (default: data)",
    )
    return parser


def checkpoint_path(args: Namespace) -> Path:
    """``--ckpt_path`` as a file: ``best`` and ``last`` are the newest run's of the experiment."""
    if args.ckpt_path in ("best", "last"):
        runs = Path("logs") / args.experiment
        folders = run_checkpoint_folders(runs)
        return find_checkpoint(args.ckpt_path, folders, f"{runs}/version_*/checkpoints")
    return Path(args.ckpt_path)


def output_path(args: Namespace, checkpoint: Path) -> Path:
    suffix = FORMATS[args.format].suffix
    output = Path(args.output or checkpoint.with_suffix(suffix))
    if output.suffix != suffix:  # torch.export.load, for one, reads only .pt2 files
        raise MnistLitError(
            f"--output {output}: a --format {args.format} file's name ends in {suffix}."
        )
    if not output.parent.is_dir():
        raise MnistLitError(f"--output {output}: the folder {output.parent} does not exist.")
    return output


def export_checked(model: TrainedModel, format_name: str, output: Path, data_dir: str) -> str:
    """Write ``model`` to ``output`` only if the written file, run back, gives the
    checkpoint's outputs on the test images; return the check's summary."""
    download_mnist(data_dir)  # the test images first: no export without its check
    images, _ = read_split(data_dir, train=False)
    # Written beside the target and renamed over it only once checked.
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    try:
        write_model(format_name, model.classifier, model.net, partial)
        check = check_export(model.classifier, load_runner(format_name, partial), images)
        if not check.passed:
            raise MnistLitError(
                f"the {format_name} export of {model.path} does not give the checkpoint's "
                f"outputs ({check.summary()}); nothing written. Try another --format."
            )
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    runtime = FORMATS[format_name].runtime
    return f"check on {check.images:,} test images ({runtime}): {check.summary()}"


def main(argv: Sequence[str]) -> None:
    """Run ``mnist-lit export``; a user's mistake ends in a :class:`MnistLitError`."""
    args = build_parser().parse_args(list(argv))
    checkpoint = checkpoint_path(args)
    model = load_trained_model(checkpoint)
    output = output_path(args, checkpoint)
    summary = export_checked(model, args.format, output, args.data.data_dir)
    size_kib = output.stat().st_size / 1024
    print(
        f"wrote {output} ({size_kib:,.1f} KiB, {args.format}; {model.net} trained with "
        f"{model.loss}, normalize={model.normalize}): uint8 pixels (batch, 28, 28) -> "
        "logits, probabilities (batch, 10)"
    )
    print(summary)
