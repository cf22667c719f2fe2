"""Your own digit images, prepared as MNIST's were: grayscale, light digit on a dark
background, cropped to the ink and its faint edge, its longer side scaled to 20 pixels and
its centre of mass moved by whole pixels to the centre of 28x28. MNIST's own test digits
come back unchanged (tests/test_own_digits_fidelity.py)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader

from mnist_lit.data.datamodule import MNISTDataModule, check_positive
from mnist_lit.data.mnist import IMAGE_SIDE


@dataclass(frozen=True)
class Limits:
    """The largest file (or request body), in bytes, and the largest image, in pixels
    (width x height): the same defaults for ``mnist-lit predict`` and ``mnist-lit serve``.
    A phone's photo fits (48 megapixels, a JPEG of 20 MB or so); the pixels bound the
    memory that decoding takes, below Pillow's own guard against decompression bombs."""

    max_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 8192 * 8192

    def too_many_bytes(self, what: str, size: int, option: str) -> str:
        return (
            f"{what} holds {size:,} bytes or more; the limit is {self.max_bytes:,}. Scale "
            f"the image down or save it as JPEG, or raise the limit with {option}"
        )

    def too_many_pixels(self, width: int, height: int, option: str) -> str | None:
        if width * height <= self.max_pixels:
            return None
        return (
            f"the image is {width}x{height} pixels; the limit is {self.max_pixels:,} pixels "
            f"(width x height). Scale it down, or raise the limit with {option}"
        )


BOX = 20  # MNIST fitted each digit into 20x20 pixels, keeping its aspect ratio
STRONG = 0.3  # of the brightest ink: where a digit is, which faint specks cannot start
# A larger image is first scaled down by a whole factor to at most this side: the digit ends
# up 20 pixels high, and the work after it is the same for a phone's photo as for a scan.
WORKING_SIDE = 512


def mnist_style(image: Image.Image) -> Tensor:
    """One image of any size and polarity -> ``(28, 28)`` uint8, light digit on black."""
    gray, floor = _light_on_dark(np.asarray(working_copy(image), dtype=np.float32) / 255)
    if gray.max() < 0.1:
        raise ValueError("no digit found, the image is blank")
    rows, cols = _ink_box(gray, floor)
    if not rows.size:
        raise ValueError("no digit found, nothing stands out from the paper's grain")
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop = np.where(crop > floor, crop, 0)  # the paper's grain is not ink
    return _centre_by_mass(_fitted(crop) * 255)


def working_copy(image: Image.Image) -> Image.Image:
    """``image`` in grayscale, its longer side at most :data:`WORKING_SIDE`: scaled down by
    a whole factor, each pixel the mean of a square of them (``Image.reduce``); turned
    upright as its EXIF orientation says, as a phone's photo needs."""
    draft(image)
    factor = _factor(image.size)
    gray = image.convert("L")
    return ImageOps.exif_transpose(gray.reduce(factor) if factor > 1 else gray)


def draft(image: Image.Image) -> None:
    """Have a JPEG not yet decoded decode at an eighth, a quarter or half of its size where
    that is still no smaller than its working copy (``Image.draft``): a fraction of the
    time and memory. Other images, and any already decoded, are left as they are."""
    factor = _factor(image.size)
    if factor > 1:
        width, height = image.size
        image.draft("L", (math.ceil(width / factor), math.ceil(height / factor)))


def _factor(size: tuple[int, int]) -> int:
    return math.ceil(max(size) / WORKING_SIDE)


def _light_on_dark(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Light ink on a black background, and the level below which it is the paper's grain,
    measured on the border's paper: not on a digit drawn to the edge, nor near one."""
    border = _border(gray)
    if np.median(border) > 0.5:  # dark ink on light paper: MNIST is the other way round
        gray, border = 1 - gray, 1 - border
    paper = np.median(border)
    light = np.clip(gray - paper, 0, 1)
    # A blurred or upscaled digit's soft edge runs up to an eighth of the image beyond its
    # strong ink (an 8x8 digit upscaled: one source pixel).
    reach = max(1, max(gray.shape) // 8)
    away = ~_ink_near_border(light > STRONG * light.max(), reach)
    # A quantile, not the maximum, so that a stray speck does not raise it; 3 times the
    # 90th percentile is 4 to 5 standard deviations of noise, clipped or not.
    grain = np.abs(border - paper)[away]
    return light, 3 * float(np.quantile(grain, 0.9)) if grain.size else 0.0


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def _ink_near_border(ink: np.ndarray, reach: int) -> np.ndarray:
    """For each pixel of the border, in :func:`_border`'s order: whether ``ink`` holds a
    pixel within ``reach`` of it, in a square window clipped to the image. The border of a
    max filter of side ``2 * reach + 1``, at the cost of the image's border strips, not of
    the filter's window at every pixel."""
    strip = reach + 1
    return np.concatenate([
        _within(ink[:strip], 0, reach),
        _within(ink[-strip:], 0, reach),
        _within(ink[:, :strip], 1, reach),
        _within(ink[:, -strip:], 1, reach),
    ])  # fmt: skip


def _within(strip: np.ndarray, axis: int, reach: int) -> np.ndarray:
    """Along a strip of the border: whether it holds ink within ``reach`` of each place
    (``axis`` runs across the strip), counted by running sums."""
    count = np.concatenate([[0], np.cumsum(strip.any(axis=axis))])
    place = np.arange(len(count) - 1)
    start = np.clip(place - reach, 0, len(place))
    end = np.clip(place + reach + 1, 0, len(place))
    return count[end] > count[start]


def _ink_box(gray: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of the digit: its strong ink and the pixel of faint edge around
    it. An anti-aliased edge is one pixel wide at any resolution, and MNIST's box holds it:
    without it, a 20-pixel digit's box is 18 or 19 pixels and the digit comes back enlarged."""
    ink = gray > STRONG * gray.max()
    grown = ink.copy()
    grown[1:] |= ink[:-1]
    grown[:-1] |= ink[1:]
    grown[:, 1:] |= ink[:, :-1]
    grown[:, :-1] |= ink[:, 1:]
    grown &= gray > floor
    return np.flatnonzero(grown.any(axis=1)), np.flatnonzero(grown.any(axis=0))


def _fitted(crop: np.ndarray) -> np.ndarray:
    """``crop`` in [0, 1] scaled so that its longer side is 20 pixels, keeping its aspect
    ratio; resampled as floats, so that grey levels are rounded once, at the end."""
    scale = BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    digit = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        size, Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(digit), 0, 1)  # Lanczos overshoots at sharp edges


def _centre_by_mass(digit: np.ndarray) -> Tensor:
    """Paste ``digit`` into a 28x28 black canvas with its centre of mass at the centre,
    moved by whole pixels as MNIST's were: (14, 14) in pixel indices, where MNIST's test
    digits have theirs on average (13.99, 14.01, each spread uniformly over one pixel)."""
    height, width = digit.shape
    ys, xs = np.indices(digit.shape)
    mass = digit.sum()
    cy, cx = (ys * digit).sum() / mass, (xs * digit).sum() / mass
    top = int(np.clip(round(IMAGE_SIDE / 2 - cy), 0, IMAGE_SIDE - height))
    left = int(np.clip(round(IMAGE_SIDE / 2 - cx), 0, IMAGE_SIDE - width))
    canvas = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    canvas[top : top + height, left : left + width] = digit
    return torch.from_numpy(canvas.round().clip(0, 255).astype(np.uint8))


def image_files(path: str | Path) -> list[Path]:
    """``path`` itself if a file, else the files in the folder ``path`` (not recursive)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    raise ValueError(
        f"predict_path {path}: no such file or folder. Pass an image file or a folder "
        "of images (PNG, JPG, ...)."
    )


def load_digits(path: str | Path, limits: Limits = Limits()) -> tuple[Tensor, list[str]]:
    """All readable images under ``path`` as ``(N, 28, 28)`` uint8, and their file names.

    A file that cannot be read or prepared, whatever the reason, is named on stderr with
    that reason and skipped; the others are predicted.
    """
    digits, names = [], []
    for file in image_files(path):
        try:
            digits.append(_read_digit(file, limits))
            names.append(str(file))
        except Exception as error:  # one unusable file, whatever is wrong, never ends the rest
            print(f"mnist-lit: skipped {file}: {_reason(error)}", file=sys.stderr)
    if not digits:
        raise ValueError(
            f"predict_path {path}: no readable image (PNG, JPG, ...) there; see the "
            "files skipped above."
        )
    return torch.stack(digits), names


def _read_digit(file: Path, limits: Limits) -> Tensor:
    size = file.stat().st_size
    if size > limits.max_bytes:
        raise ValueError(limits.too_many_bytes("the file", size, "--data.max_bytes"))
    with Image.open(file) as image:  # the header only: its size before its pixels
        too_large = limits.too_many_pixels(*image.size, "--data.max_pixels")
        if too_large:
            raise ValueError(too_large)
        return mnist_style(image)


def _reason(error: Exception) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "not an image"
    if isinstance(error, (ValueError, OSError)):
        return str(error)
    return f"it cannot be prepared ({type(error).__name__}: {error})"


class OwnDigitsDataModule(MNISTDataModule):
    """MNIST: 55,000 train / 5,000 validation images by a seeded split, and the official
    10,000 test images, whole; and your own digit images to predict, those of
    ``predict_path``, prepared as MNIST's were. The data module of ``mnist-lit``'s commands:
    :class:`~mnist_lit.data.datamodule.MNISTDataModule` with ``predict_path``. When it
    predicts your own digits, MNIST itself is not read.

    Args:
        predict_path: an image file or a folder of them (your own digits) for
            ``mnist-lit predict``; default the test set.
        max_bytes: the largest file of ``predict_path`` read, in bytes; a larger one is
            skipped (``mnist-lit serve --max_bytes`` has the same default).
        max_pixels: the largest image of ``predict_path`` read, width x height (``mnist-lit
            serve --max_pixels`` has the same default).

    The other arguments are ``MNISTDataModule``'s.
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        eval_batch_size: int = 1_000,
        val_size: int = 5_000,
        seed: int = 42,
        normalize: bool = False,
        predict_path: str | None = None,
        label_noise: float = 0.0,
        max_bytes: int = Limits.max_bytes,
        max_pixels: int = Limits.max_pixels,
    ) -> None:
        check_positive(batch_size=batch_size, eval_batch_size=eval_batch_size,
                       max_bytes=max_bytes, max_pixels=max_pixels)  # fmt: skip
        super().__init__(
            data_dir, batch_size, eval_batch_size, val_size, seed, normalize, label_noise
        )
        self.predict_path = predict_path
        self.limits = Limits(max_bytes=max_bytes, max_pixels=max_pixels)
        self._own_digits: tuple[Tensor, list[str]] | None = None

    def own_digits(self) -> tuple[Tensor, list[str]]:
        """The images of ``predict_path`` and their names, read once: ``mnist-lit predict``
        reads them before it opens a run folder, so that a bad path leaves none behind."""
        assert self.predict_path is not None
        if self._own_digits is None:
            self._own_digits = load_digits(self.predict_path, self.limits)
        return self._own_digits

    def _predicts_own_digits(self) -> bool:
        """Predicting images from ``predict_path``: MNIST itself is not needed."""
        predicting = self.trainer is not None and self.trainer.predicting
        return predicting and self.predict_path is not None

    def prepare_data(self) -> None:
        if not self._predicts_own_digits():
            super().prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if not self._predicts_own_digits():
            super().setup(stage)

    def predict_dataloader(self) -> DataLoader:
        """Batches of ``(images, index)``: your own digits, or else the test set; each
        image's name is ``predict_names()[index]``."""
        if self.predict_path is None:
            return super().predict_dataloader()
        return self._indexed(self.own_digits()[0])

    def predict_names(self) -> list[str]:
        """The name of each image :meth:`predict_dataloader` gives: its file, or
        ``test:<i>`` for the test set."""
        if self.predict_path is None:
            return super().predict_names()
        return self.own_digits()[1]
