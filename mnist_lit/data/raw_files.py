"""MNIST's four IDX files: extracted from their ``.gz`` safely where the folder can be
written, read from the ``.gz`` itself where it cannot, and read with checks, so that a
missing, truncated or wrong file gives one message naming it and the fix."""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mnist_lit.data.mnist import IMAGE_SIDE, NUM_CLASSES, RAW_FILES

IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension

# The splits read since :func:`keep_in_memory`, by their two files' paths and their
# (inode, size, modification time): a process running many fits reads each file once.
_KEPT: dict[tuple[object, ...], tuple[Tensor, Tensor]] | None = None


def keep_in_memory() -> None:
    """From now on in this process (a worker that runs many fits), :func:`read_split` reads
    each split's files once and hands out copies of what it read; a file that changed
    (another inode, size or modification time) is read again. Off by default: a single fit
    reads its data once anyway."""
    global _KEPT
    if _KEPT is None:
        _KEPT = {}


def raw_folder(data_dir: str | Path) -> Path:
    return Path(data_dir).resolve() / "MNIST" / "raw"


def _bad_file(problem: str) -> ValueError:
    """The error for a damaged file: ``data_dir`` is the argument that leads to it."""
    return ValueError(f"data_dir holds a bad MNIST file: {problem}")


def _redo(path: Path) -> str:
    return (
        f"Delete {path} (and {path.name}.gz next to it, if any) so that the next run "
        "downloads it again, or copy a good file there."
    )


def extract_archives(raw: Path) -> None:
    """Extract every ``.gz`` in ``raw`` whose ``-ubyte`` file is missing, where ``raw`` can
    be written (a read-only folder's archives are read as they are, by :func:`read_idx`).

    The file is written under a name of this process's own and renamed when complete, so a
    truncated archive or a crash never leaves a half-extracted file for the next run to trip
    on, and processes that start together on one folder (tune workers, several fits, nodes
    on a shared disk) each extract whole and rename the same content into place.
    """
    for name in RAW_FILES:
        archive, target = raw / name, raw / name.removesuffix(".gz")
        if target.is_file() or not archive.is_file():
            continue
        partial = target.with_name(f".{target.name}.{socket.gethostname()}.{os.getpid()}.partial")
        try:
            with open(partial, "wb") as out:
                out.write(_idx_bytes(target))  # from the archive, as the target is missing
            os.replace(partial, target)
        except OSError:  # a read-only folder, a full disk: read_idx reads the archive itself
            return
        finally:
            with contextlib.suppress(OSError):  # on a read-only mount even this fails
                partial.unlink(missing_ok=True)


def _idx_bytes(path: Path) -> bytes:
    """The bytes of the IDX file ``path``, or of its archive ``path.gz`` where only that is
    there (a folder that cannot be written keeps its archives)."""
    archive = path.with_name(f"{path.name}.gz")
    if path.is_file():
        return path.read_bytes()
    if not archive.is_file():
        raise ValueError(
            f"data_dir holds no MNIST: {path} is missing. Copy the four files "
            f"{', '.join(RAW_FILES)} into {path.parent}/, or download them with internet "
            "(MNISTDataModule.prepare_data does, before every fit)."
        )
    try:
        with gzip.open(archive, "rb") as source:
            return source.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise _bad_file(
            f"{archive} is truncated or not a gzip file ({error}). Delete it so that the next "
            "run downloads it again, or copy a good file there."
        ) from error


def read_idx(path: Path, magic: int) -> Tensor:
    """Read one uint8 IDX file, checking its magic number, shape and length."""
    data = _idx_bytes(path)
    dims = magic & 0xFF
    header = 4 + 4 * dims
    if len(data) < header:
        raise _bad_file(f"{path} is truncated: {len(data)} bytes, no IDX header. {_redo(path)}")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise _bad_file(
            f"{path} has IDX magic number {found:#010x}, expected {magic:#010x}: it is not an "
            f"MNIST {'images' if dims == 3 else 'labels'} file. {_redo(path)}"
        )
    shape = struct.unpack(f">{dims}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise _bad_file(
            f"{path} holds {len(data) - header} bytes of data, but its header promises "
            f"{'x'.join(map(str, shape))} = {expected}: the file is truncated or corrupt. "
            f"{_redo(path)}"
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    return torch.from_numpy(array.copy())


def read_split(data_dir: str | Path, train: bool) -> tuple[Tensor, Tensor]:
    """``(images (N, 28, 28) uint8, labels (N,) int64)`` of one split, every file checked."""
    raw = raw_folder(data_dir)
    prefix = "train" if train else "t10k"
    images_path = raw / f"{prefix}-images-idx3-ubyte"
    labels_path = raw / f"{prefix}-labels-idx1-ubyte"
    if _KEPT is None:
        return _read_split(images_path, labels_path)
    key = (str(images_path), str(labels_path), *map(_identity, (images_path, labels_path)))
    if key not in _KEPT:
        _KEPT[key] = _read_split(images_path, labels_path)
    images, labels = _KEPT[key]
    return images.clone(), labels.clone()


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None  # read_idx says what is wrong
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _read_split(images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC).long()
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise _bad_file(
            f"{images_path} holds images of {images.shape[1]}x{images.shape[2]} pixels; MNIST "
            f"images are {IMAGE_SIDE}x{IMAGE_SIDE}. {_redo(images_path)}"
        )
    if len(images) != len(labels):
        raise _bad_file(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
            f"labels: the two files do not belong together. {_redo(labels_path)}"
        )
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        raise _bad_file(
            f"{labels_path} has label {int(labels.max())}; MNIST labels are 0-9. "
            f"{_redo(labels_path)}"
        )
    return images, labels
