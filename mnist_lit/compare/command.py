"""``mnist-lit compare``: its options, and the run from data to report."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mnist_lit.compare.experiment import PRESETS, run_comparison
from mnist_lit.compare.report import best_table, plot_curves, summary_table, write_csv
from mnist_lit.runs.catalog import LOSSES
from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.options import add_run_options, check_run_options
from mnist_lit.runs.parser import OneMessageParser
from mnist_lit.runs.quiet import RUN_NOTICES, quiet

HELP = "Train several losses on the same data and weights; compare them epoch by epoch."


def build_parser() -> OneMessageParser:
    parser = OneMessageParser(
        prog="mnist-lit compare",
        description=HELP + " Writes metrics.csv, curves.png and summary.md.",
        formatter_class=argparse.HelpFormatter,  # the defaults are in the help texts
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="tutorial",
        help="; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items())
        + " (default: tutorial)",
    )
    parser.add_argument(
        "--losses",
        nargs="+",
        choices=sorted(LOSSES),
        metavar="LOSS",
        help=f"losses to compare, of {', '.join(LOSSES)} (default: the preset's)",
    )
    add_run_options(parser, "0", "the preset config's")
    parser.add_argument("--output-dir", help="(default: outputs/compare/<preset>)")
    return parser


def main(argv: Sequence[str]) -> None:
    """Run ``mnist-lit compare``; a user's mistake ends in a :class:`MnistLitError`."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    check_run_options(parser, args)
    args.seeds = args.seeds or [0]
    preset = PRESETS[args.preset]
    losses = args.losses or list(preset.losses)
    output_dir = Path(args.output_dir or Path("outputs") / "compare" / args.preset)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MnistLitError(f"--output-dir {output_dir}: cannot create it ({error}).") from None
    with quiet(RUN_NOTICES):  # the Trainer's notices about devices are noise here
        rows = run_comparison(
            args.preset, losses, args.epochs, args.seeds, args.data_dir, args.val_size,
            args.accelerator,
        )  # fmt: skip
    epochs = max(int(str(row["epoch"])) for row in rows)  # the config's, unless --epochs
    write_csv(rows, output_dir / "metrics.csv")
    title = f"{args.preset}: {preset.description}; {len(args.seeds)} seed(s)"
    plot_curves(rows, title, output_dir / "curves.png")
    table = summary_table(rows, losses, epochs) + "\n\n" + best_table(rows, losses, epochs)
    (output_dir / "summary.md").write_text(table + "\n")
    print(f"\n{table}\n")
    written = (output_dir / name for name in ("metrics.csv", "curves.png", "summary.md"))
    print(f"wrote {', '.join(map(str, written))}")
