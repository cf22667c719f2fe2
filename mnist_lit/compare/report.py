"""Reporting the loss study: the CSV of every epoch, the Markdown summary and the curves."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from pathlib import Path

from mnist_lit.compare.experiment import Row
from mnist_lit.runs.figures import Panel, learning_curves

# The metrics of each split (as runs.evaluation names them), between the labels and dC/dz.
_METRICS = [
    f"{split}_{name}" for name in ("acc", "ce", "ece", "brier") for split in ("val", "test")
]
COLUMNS = ("preset", "loss", "seed", "epoch", *_METRICS, "dcdz", "saturated")


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _series(rows: Sequence[Row], loss: str, epoch: int, column: str) -> list[float]:
    return [float(str(r[column])) for r in rows if r["loss"] == loss and r["epoch"] == epoch]


def _mean_std(values: Sequence[float], spec: str) -> str:
    """``mean ± std``; one seed has no spread to show, so its value alone."""
    if len(values) < 2:
        return f"{statistics.mean(values):{spec}}"
    return f"{statistics.mean(values):{spec}} ± {statistics.stdev(values):{spec}}"


def summary_table(rows: Sequence[Row], losses: Sequence[str], epochs: int) -> str:
    """Markdown: per loss, mean ± std over seeds at the start, after epoch 1 and at the end."""
    n_seeds = len(_series(rows, losses[0], 0, "test_acc"))
    columns = [
        ("test acc, epoch 1", 1, "test_acc", ".4f"),
        (f"test acc, epoch {epochs}", epochs, "test_acc", ".4f"),
        (f"val CE, epoch {epochs}", epochs, "val_ce", ".4f"),
        (f"test ECE, epoch {epochs}", epochs, "test_ece", ".4f"),
        ("dC/dz, start", 0, "dcdz", ".2e"),
        ("dC/dz, epoch 1", 1, "dcdz", ".2e"),
        ("saturated, start", 0, "saturated", ".3f"),
    ]
    columns = list({column[0]: column for column in columns}.values())  # epochs == 1
    lines = [
        "| loss | " + " | ".join(title for title, *_ in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for loss in losses:
        cells = [_mean_std(_series(rows, loss, e, c), spec) for _, e, c, spec in columns]
        lines.append(f"| {loss} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Mean ± standard deviation over {n_seeds} seeds."
        if n_seeds > 1
        else "One seed: no spread to show (give --seeds 0 1 2 for one)."
    )
    return "\n".join(lines)


# The yardsticks of the best-loss table: test accuracy, and the probabilities' NLL (the
# cross-entropy), Brier score and calibration error; higher is better on the first only.
YARDSTICKS = (
    ("accuracy", "test_acc", True),
    ("NLL (cross-entropy)", "test_ce", False),
    ("Brier", "test_brier", False),
    ("ECE", "test_ece", False),
)


def best_table(rows: Sequence[Row], losses: Sequence[str], epochs: int) -> str:
    """Markdown: which loss is best on each test yardstick at the last epoch, by the mean
    over seeds, and the runner-up."""
    lines = [
        f"| yardstick (test, epoch {epochs}) | best (mean over seeds) | runner-up |",
        "|---|---|---|",
    ]
    for label, column, higher in YARDSTICKS:
        means = {loss: statistics.fmean(_series(rows, loss, epochs, column)) for loss in losses}
        ranked = sorted(losses, key=lambda loss: -means[loss] if higher else means[loss])
        cells = [f"{loss} ({means[loss]:.4f})" for loss in ranked[:2]]
        lines.append(f"| {label} | {' | '.join(cells + ['-'] * (2 - len(cells)))} |")
    lines.append("")
    lines.append(
        "By the means alone, untested: `mnist-lit study` tests each difference, with each "
        "loss at its own tuned rate."
    )
    return "\n".join(lines)


CURVES = (
    Panel("val_acc", "validation accuracy"),
    Panel("val_ce", "validation cross-entropy", "log"),
    Panel("dcdz", "mean |dC/dz| (training)", "log"),
    Panel("test_ece", "test calibration error (ECE)"),
)


def plot_curves(rows: Sequence[Row], title: str, path: Path) -> None:
    """Validation accuracy and cross-entropy, training dC/dz and test ECE against epoch,
    one curve per loss (mean over seeds, a band of one standard deviation)."""
    learning_curves(rows, CURVES, group="loss", title=title).savefig(path, dpi=80)
