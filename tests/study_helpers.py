"""What the study's tests share: one tiny study (two pairs on generated data), how its
numbers and printed lines are read, and its run with one worker, in this process."""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import time
from pathlib import Path
from typing import Any

from mnist_lit.cli import main

PAIRS = [("softmax_regression", "ce"), ("softmax_regression", "square_logits")]
# Two rates for one epoch, then both for two epochs, then two seeds, for each pair.
TOTAL = len(PAIRS) * (2 + 2 + 2)


def study_args(data: Path, study: Path, *extra: str) -> list[str]:
    return [
        "study", "--quick", "--study-dir", str(study), "--data-dir", str(data),
        "--val-size", "100", "--n-trials", "2", "--seeds", "0", "1", "--epochs", "2",
        "--networks", "softmax_regression", "--losses", "ce", "square_logits", "--no-control",
        *extra,
    ]  # fmt: skip


def run_one_worker(data: Path, study: Path) -> tuple[Path, str]:
    """The study with one worker (in this process), and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(study_args(data, study))
    return study, out.getvalue()


def numbers(study: Path) -> dict[tuple[str, ...], dict[str, str]]:
    """results.csv and tuning_trials.csv by fit, without the seconds each took."""
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    with (study / "results.csv").open() as file:
        for row in csv.DictReader(file):
            rows[(row["network"], row["loss"], row.pop("seed"))] = row
            row.pop("seconds")
    with (study / "tuning_trials.csv").open() as file:
        for row in csv.DictReader(file):
            for column in ("seconds", "number"):
                row.pop(column)
            rows[(row["network"], row["loss"], "lr " + row["lr"], row["round"])] = row
    return rows


def fit_lines(out: str) -> list[str]:
    """The line each fit's result gave, as the study printed them."""
    return [line for line in out.splitlines() if ": val acc " in line or ": test acc " in line]


def written_results(study: Path) -> dict[Path, float]:
    """Each fit's result.json written so far, with its time of writing."""
    paths = [
        *study.glob("tuning/*/*/round_*/lr_*/result.json"),
        *study.glob("runs/*/*/*/result.json"),
    ]
    return {p: p.stat().st_mtime_ns for p in paths}


def wait_for_results(study: Path, process: subprocess.Popen[Any], count: int) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if len(written_results(study)) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {count} results while it ran (exit status {process.poll()})")
