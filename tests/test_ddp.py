"""DDP on two CPU processes (gloo): ``fit`` matches one process, ``predict`` writes every
row once and in order."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_lit.cli import main
from tests.cli_helpers import FAST, REPO, TUTORIAL, console, fake_data, fit_one_epoch
from tests.digit_images import draw_one, draw_zero

DDP_CPU = str(REPO / "configs" / "trainer" / "ddp_cpu.yaml")


def _metrics(cwd: Path) -> list[dict[str, float]]:
    with open(cwd / "logs" / "seed_cross_entropy" / "version_0" / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["fit", "--config", TUTORIAL, f"--data.data_dir={fake_mnist_dir}",
            "--data.val_size=100", "--trainer.max_epochs=2", *FAST]  # fmt: skip
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    ddp.mkdir()
    single.mkdir()
    # Two processes of 32 images a step each: a global batch of 64.
    result = subprocess.run(
        [str(Path(sys.executable).with_name("mnist-lit")), *args, "--config", DDP_CPU,
         "--data.batch_size=32"],
        cwd=ddp, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Starting with 2 processes" in result.stderr + result.stdout

    monkeypatch.chdir(single)
    main([*args, "--data.batch_size=64"])

    ddp_rows, single_rows = _metrics(ddp), _metrics(single)
    assert [row.keys() for row in ddp_rows] == [row.keys() for row in single_rows]
    # Each process takes its own half of every global batch; were the shards not
    # distinct, or the metrics not synchronised, the numbers would differ.
    for ddp_row, single_row in zip(ddp_rows, single_rows, strict=True):
        for key, value in single_row.items():
            assert ddp_row[key] == pytest.approx(value, abs=1e-4), key


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_predict_with_two_processes_writes_every_row_once_in_order(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fit_one_epoch(fake_mnist_dir)
    # Five images: three for one process, two for the other.
    digits = tmp_path / "digits"
    digits.mkdir()
    for i in range(5):
        image = draw_zero((60 + 10 * i, 70)) if i % 2 else draw_one((80, 90), i < 3, 0.2 + i / 10)
        image.save(digits / f"{i}.png")
    predict = ["predict", "--config", TUTORIAL, "--ckpt_path=best", f"--data.predict_path={digits}",
               *fake_data(fake_mnist_dir)]  # fmt: skip
    result = console(*predict, "--config", DDP_CPU, "--predictions.path=ddp.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Starting with 2 processes" in result.stderr + result.stdout
    main([*predict, "--predictions.path=single.csv"])

    ddp, single = _rows(tmp_path / "ddp.csv"), _rows(tmp_path / "single.csv")
    assert [row["file"] for row in ddp] == [str(digits / f"{i}.png") for i in range(5)]
    assert ddp == single
