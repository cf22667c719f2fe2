"""``mnist-lit fit`` with DDP on two CPU processes (gloo) matches one process."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_lit.cli import main
from tests.cli_helpers import FAST, REPO, TUTORIAL

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
