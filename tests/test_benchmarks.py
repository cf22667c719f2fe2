"""``benchmarks/run.py`` as a user runs it, on tiny fake data that holds only ``.gz`` files."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fake_mnist import write_fake_mnist, write_idx

pytestmark = pytest.mark.slow  # the script, then a process for each variant

REPO = Path(__file__).resolve().parents[1]
RUN = str(REPO / "benchmarks" / "run.py")
# The cheapest run the script allows: (a) and (b) are required, as the ratios' baselines.
CHEAP = ["--epochs", "1", "--repeats", "1", "--variants", "ab"]
# A closed local port: any download attempt fails at once, with or without internet.
NO_NETWORK = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}


def gzip_only(data_dir: Path) -> Path:
    """Replace each ``*-ubyte`` file in ``MNIST/raw`` by its ``.gz``, as MNIST ships."""
    for path in (data_dir / "MNIST" / "raw").glob("*-ubyte"):
        path.with_name(f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    return data_dir


def run_benchmark(data_dir: Path, work_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, RUN, "--data-dir", str(data_dir), "--work-dir", str(work_dir), *CHEAP],
        env={**os.environ, **NO_NETWORK},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_runs_from_the_gz_files_alone(tmp_path: Path) -> None:
    data = gzip_only(write_fake_mnist(tmp_path / "data", n_train=128, n_test=64))
    result = run_benchmark(data, tmp_path / "work")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| variant | train time | per step |" in result.stdout
    assert "| (a) tutorial loop" in result.stdout
    assert "| (b) in-memory floor" in result.stdout


def test_a_failed_variant_keeps_its_log(tmp_path: Path) -> None:
    data = write_fake_mnist(tmp_path / "data", n_train=128, n_test=64)
    # Extraction only checks that the files are there; label 10 breaks (a)'s loss.
    write_idx(data / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.full(128, 10))
    result = run_benchmark(gzip_only(data), tmp_path / "work")
    assert result.returncode != 0
    assert "tutorial_loop.py" in result.stderr
    assert "Target 10 is out of bounds" in result.stderr  # the log's last lines
    match = re.search(r"^log: (.+)$", result.stderr, re.MULTILINE)
    assert match, result.stderr
    log = Path(match[1])
    assert log.is_file() and log.is_relative_to(tmp_path / "work")
    assert "Target 10 is out of bounds" in log.read_text()


def test_missing_data_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = run_benchmark(tmp_path / "empty", tmp_path / "work")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"run.py: error: data_dir {tmp_path}/empty holds no MNIST")
    assert f"{tmp_path}/empty/MNIST/raw" in line
