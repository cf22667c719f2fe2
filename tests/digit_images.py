"""Digit images drawn on the fly, as a user's own photos or scans of digits would be."""

from __future__ import annotations

from PIL import Image, ImageDraw


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
