"""Tiny MNIST look-alikes written in the real IDX format, so torchvision's loader runs offline.

Each class is a bright 8x8 square at its own place in the 28x28 image, plus noise: easy
enough that a few epochs of softmax regression learn it, so tests can check learning.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801


def square(label: int) -> tuple[slice, slice]:
    """Where the bright square of ``label`` sits: 10 squares on a 3x4 grid."""
    row, col = divmod(label, 4)
    return slice(2 + 8 * row, 10 + 8 * row), slice(1 + 7 * col, 7 + 7 * col)


def make_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i][square(int(label))] = 255
    return images


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
    header = struct.pack(">II", magic, len(array))
    if array.ndim == 3:
        header += struct.pack(">II", *array.shape[1:])
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_fake_mnist(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write ``root/MNIST/raw/*-ubyte`` and return ``root``, for ``--data.data_dir``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", make_images(labels, rng))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root
