"""One data folder for many processes, and a missing file named: processes that start
together on a folder holding only the four ``.gz`` files all extract and read it."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_lit.data.datamodule import download_mnist
from mnist_lit.data.mnist import RAW_FILES
from tests.fake_mnist import write_fake_mnist

READ = """
import sys
from mnist_lit.data.datamodule import download_mnist
from mnist_lit.data.raw_files import read_split
download_mnist(sys.argv[1])
images, labels = read_split(sys.argv[1], train=True)
print(len(labels))
"""


def _only_archives(root: Path, n_train: int) -> Path:
    """``root/MNIST/raw`` with the four files as ``.gz`` only, as a user copies them."""
    raw = write_fake_mnist(root, n_train=n_train, n_test=100) / "MNIST" / "raw"
    for name in RAW_FILES:
        extracted = raw / name.removesuffix(".gz")
        with open(extracted, "rb") as source, gzip.open(raw / name, "wb", compresslevel=1) as out:
            shutil.copyfileobj(source, out)
        extracted.unlink()
    return root


@pytest.mark.slow  # several processes
def test_processes_starting_together_on_one_fresh_folder_all_read_it(tmp_path: Path) -> None:
    root = _only_archives(tmp_path / "data", n_train=6_000)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", READ, str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert out.strip() == "6000"
    left = sorted(p.name for p in (root / "MNIST" / "raw").iterdir())
    assert left == sorted([*RAW_FILES, *(n.removesuffix(".gz") for n in RAW_FILES)])


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    raw = write_fake_mnist(tmp_path, n_train=60, n_test=20) / "MNIST" / "raw"
    (raw / "train-images-idx3-ubyte").unlink()
    with pytest.raises(ValueError) as error:
        download_mnist(tmp_path)
    message = str(error.value)
    assert message.startswith(f"data_dir {tmp_path} holds no MNIST: train-images-idx3-ubyte.gz")
    assert f"missing from {raw.resolve()}" in message
    assert "t10k-images" not in message.split(" missing")[0]
