"""Broken MNIST files: each gives one message naming the file, what is wrong and the fix."""

from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_lit.cli import main
from mnist_lit.data import MNISTDataModule
from mnist_lit.data.mnist import RAW_FILES
from tests.cli_helpers import CONSOLE_SCRIPT, FAST, TUTORIAL
from tests.fake_mnist import LABEL_MAGIC, write_fake_mnist, write_idx

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"


def _load(data_dir: Path) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(data_dir), val_size=10)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _wrong_magic(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:4] = LABEL_MAGIC.to_bytes(4, "big")
    path.write_bytes(bytes(data))


def _fewer_labels(path: Path) -> None:
    write_idx(path, np.arange(50) % 10)


def _label_out_of_range(path: Path) -> None:
    write_idx(path, np.full(60, 12))


def _wrong_image_size(path: Path) -> None:
    write_idx(path, np.zeros((60, 32, 32), dtype=np.uint8))


@pytest.mark.parametrize(
    ("name", "damage", "expected"),
    [
        (TRAIN_IMAGES, lambda p: p.unlink(), "is missing"),
        (TRAIN_IMAGES, _truncate, "the file is truncated or corrupt"),
        (TRAIN_IMAGES, _wrong_magic, "has IDX magic number 0x00000801, expected 0x00000803"),
        (TRAIN_LABELS, _fewer_labels, "has 60 images but"),
        (TRAIN_LABELS, _label_out_of_range, "has label 12; MNIST labels are 0-9"),
        (TRAIN_IMAGES, _wrong_image_size, "holds images of 32x32 pixels"),
    ],
)
def test_broken_file_is_named_with_the_fix(
    tmp_path: Path, name: str, damage: Callable[[Path], None], expected: str
) -> None:
    raw = write_fake_mnist(tmp_path, n_train=60, n_test=20) / "MNIST" / "raw"
    damage(raw / name)
    if expected == "is missing":
        # Loading without prepare_data: no download attempt, the missing file is named.
        dm = MNISTDataModule(data_dir=str(tmp_path), val_size=10)
        with pytest.raises(ValueError, match=expected) as error:
            dm.setup("fit")
    else:
        with pytest.raises(ValueError, match=expected) as error:
            _load(tmp_path)
    message = str(error.value)
    assert message.startswith("data_dir holds")  # the argument, for the CLI's "data."
    assert str(raw / name) in message
    assert "Copy the four files" in message or f"Delete {raw / name}" in message


def _gzip_and_remove(raw: Path, name: str) -> Path:
    archive = raw / f"{name}.gz"
    archive.write_bytes(gzip.compress((raw / name).read_bytes()))
    (raw / name).unlink()
    return archive


def test_gz_files_are_extracted_without_network(tmp_path: Path) -> None:
    raw = write_fake_mnist(tmp_path, n_train=60, n_test=20) / "MNIST" / "raw"
    original = (raw / TRAIN_IMAGES).read_bytes()
    _gzip_and_remove(raw, TRAIN_IMAGES)
    dm = _load(tmp_path)
    assert (raw / TRAIN_IMAGES).read_bytes() == original
    assert len(dm.splits["train"][1]) == 50


def test_truncated_gz_is_named_and_leaves_no_half_extracted_file(tmp_path: Path) -> None:
    raw = write_fake_mnist(tmp_path, n_train=60, n_test=20) / "MNIST" / "raw"
    archive = _gzip_and_remove(raw, TRAIN_IMAGES)
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(ValueError, match="is truncated or not a gzip file") as error:
        _load(tmp_path)
    assert str(archive) in str(error.value) and "Delete it" in str(error.value)
    assert sorted(p.name for p in raw.iterdir() if p.name.startswith(("train-images", "."))) == [
        f"{TRAIN_IMAGES}.gz"
    ]


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """``folder`` made unwritable for this user: a read-only bind mount for root (whom a
    folder's mode does not stop), the mode 555 for anyone else."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"root here cannot mount a folder read-only: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_folder_of_the_archives_that_cannot_be_written_just_works(tmp_path: Path) -> None:
    raw = write_fake_mnist(tmp_path / "data", n_train=60, n_test=20) / "MNIST" / "raw"
    for name in [p.name for p in raw.iterdir()]:
        _gzip_and_remove(raw, name)
    with _read_only(raw):
        with pytest.raises(OSError):
            (raw / "probe").write_text("")  # the folder really cannot be written
        done = subprocess.run(
            [CONSOLE_SCRIPT, "fit", "--config", TUTORIAL, "--trainer.max_epochs=1",
             f"--data.data_dir={tmp_path / 'data'}", "--data.val_size=10", *FAST],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert sorted(p.name for p in raw.iterdir()) == sorted(RAW_FILES)  # nothing written
    assert list((tmp_path / "logs").rglob("metrics.csv"))


def test_bad_file_through_the_cli_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = write_fake_mnist(tmp_path / "data", n_train=60, n_test=20) / "MNIST" / "raw"
    _label_out_of_range(raw / TRAIN_LABELS)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--data.data_dir={tmp_path}/data", "--data.val_size=10"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(
        f"mnist-lit: error: data.data_dir holds a bad MNIST file: {raw / TRAIN_LABELS} has label 12"
    )


def test_val_size_must_be_smaller_than_the_training_set(fake_mnist_dir: Path) -> None:
    dm = MNISTDataModule(data_dir=str(fake_mnist_dir), val_size=600)
    with pytest.raises(ValueError, match=r"^val_size must be smaller than the training set \(600"):
        dm.setup("fit")
