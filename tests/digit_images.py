"""Digit images drawn on the fly, as a user's own photos or scans of digits would be."""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import ExifTags, Image, ImageDraw


def draw_one(size: tuple[int, int], dark_on_light: bool, at: float = 0.3) -> Image.Image:
    """A thick vertical stroke, a "1", off-centre at ``at`` of the width."""
    paper, ink = (255, 0) if dark_on_light else (0, 255)
    image = Image.new("L", size, paper)
    x, height = int(size[0] * at), size[1]
    ImageDraw.Draw(image).line(
        [(x, height // 5), (x, 4 * height // 5)], fill=ink, width=size[0] // 12
    )
    return image


def draw_zero(size: tuple[int, int]) -> Image.Image:
    """A dark ellipse on white, in colour (RGB)."""
    image = Image.new("RGB", size, "white")
    w, h = size
    ImageDraw.Draw(image).ellipse(
        [w // 4, h // 8, 3 * w // 4, 7 * h // 8], outline="black", width=w // 15
    )
    return image


PHONE = (4032, 3024)  # a 12-megapixel phone camera's photo


@functools.cache
def phone_photo(orientation: int = 1) -> bytes:
    """A JPEG as a phone takes it: 4032x3024, a dark 7 on grey paper with the sensor's
    grain, about 7 MB; ``orientation`` is its EXIF orientation (6: turn it a quarter
    clockwise to see it upright)."""
    width, height = PHONE
    paper = Image.new("L", PHONE, 200)
    ImageDraw.Draw(paper).line([(1800, 800), (2300, 800), (1900, 2300)], fill=40, width=160)
    grain = np.random.default_rng(0).normal(0, 8, (height // 2, width // 2, 3))
    grain = grain.astype(np.float32).repeat(2, axis=0).repeat(2, axis=1)
    pixels = np.asarray(paper, dtype=np.float32)[..., None] + grain
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    body = io.BytesIO()
    photo.save(body, "JPEG", quality=97, exif=exif)
    return body.getvalue()
