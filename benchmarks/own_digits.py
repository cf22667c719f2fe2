"""The time to prepare one of your own digit images, from its file's bytes to the 28x28
digit (decoding included), at sizes from MNIST's 28x28 to the limits of ``mnist-lit
predict`` and ``serve``: scans (PNG, a clean dark 7 on white) and photos (JPEG, a 7 on grey
paper with a sensor's grain, at quality 95).

*before* is the preparation as it was, a max filter over the whole image at full size,
copied here as the baseline; it grows with the fourth power of the side, so it is timed
only up to ``--before-up-to`` pixels a side (at 1200x900 it took over 2 minutes). Each time
is the fastest of ``--repeats``; *decoding* is the part of *after* that decodes the file
(a JPEG at the fraction of its size that preparation needs); *same* says whether before and
after give the same 28x28 digit.

    python benchmarks/own_digits.py                  # a minute or so on 2 cores
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from mnist_lit.data import own_digits
from mnist_lit.data.own_digits import Limits, mnist_style

SIZES = [(28, 28), (280, 280), (400, 400), (800, 600), (1200, 900), (2048, 2048),
         (4032, 3024), (8192, 8192)]  # fmt: skip


def drawn(size: tuple[int, int], grain: float) -> Image.Image:
    """A dark 7 across the middle of the image; ``grain`` the noise's standard deviation."""
    width, height = size
    paper = Image.new("L", size, 255 if grain == 0 else 200)
    stroke = [(0.45 * width, 0.26 * height), (0.57 * width, 0.26 * height),
              (0.47 * width, 0.76 * height)]  # fmt: skip
    ImageDraw.Draw(paper).line(stroke, fill=40, width=max(2, height // 19))
    if grain == 0:
        return paper
    noise = np.random.default_rng(0).normal(0, grain, (height, width, 3)).astype(np.float32)
    pixels = np.asarray(paper, dtype=np.float32)[..., None] + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encoded(image: Image.Image, image_format: str) -> bytes:
    body = io.BytesIO()
    image.save(body, image_format, quality=95)
    return body.getvalue()


def before(image: Image.Image) -> torch.Tensor:
    """The preparation as it was: the whole image, and a max filter of an eighth of its
    side around the strong ink, to tell the border's paper from the digit's soft edge."""
    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255
    border = own_digits._border(gray)
    if np.median(border) > 0.5:
        gray, border = 1 - gray, 1 - border
    paper = np.median(border)
    light = np.clip(gray - paper, 0, 1)
    reach = max(1, max(gray.shape) // 8)
    near_ink = Image.fromarray((light > own_digits.STRONG * light.max()).astype(np.uint8) * 255)
    away = own_digits._border(np.asarray(near_ink.filter(ImageFilter.MaxFilter(2 * reach + 1))))
    grain = np.abs(border - paper)[away == 0]
    floor = 3 * float(np.quantile(grain, 0.9)) if grain.size else 0.0
    rows, cols = own_digits._ink_box(light, floor)
    crop = light[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop = np.where(crop > floor, crop, 0)
    return own_digits._centre_by_mass(own_digits._fitted(crop) * 255)


def decoded(image: Image.Image) -> None:
    own_digits.draft(image)
    image.load()


def fastest(prepare: Callable[[Image.Image], object], body: bytes, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        prepare(Image.open(io.BytesIO(body)))
        times.append(time.perf_counter() - start)
    return min(times)


def cpu() -> str:
    """The processor's name, from ``/proc/cpuinfo`` on Linux."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before-up-to", type=int, default=400, metavar="PIXELS",
                        help="time the baseline up to this longer side (default: 400)")  # fmt: skip
    args = parser.parse_args()
    limits = Limits()
    print(f"{cpu()}, {os.cpu_count()} cores; limits: "
          f"{limits.max_bytes:,} bytes, {limits.max_pixels:,} pixels\n")  # fmt: skip
    print("| image | file | before | after | decoding | before / after | same |")
    print("|---|---|---|---|---|---|---|")
    for size in SIZES:
        for image_format, grain in (("PNG", 0.0), ("JPEG", 8.0)):
            body = encoded(drawn(size, grain), image_format)
            if len(body) > limits.max_bytes:
                continue
            after_s = fastest(mnist_style, body, args.repeats)
            decoding_s = fastest(decoded, body, args.repeats)
            row = [f"{size[0]}x{size[1]} {image_format}", f"{len(body) / 1e6:.3f} MB", "-",
                   f"{after_s * 1e3:.1f} ms", f"{decoding_s * 1e3:.1f} ms", "-", "-"]  # fmt: skip
            if max(size) <= args.before_up_to:
                before_s = fastest(before, body, args.repeats)
                same = torch.equal(before(Image.open(io.BytesIO(body))),
                                   mnist_style(Image.open(io.BytesIO(body))))  # fmt: skip
                row[2], row[5] = f"{before_s * 1e3:.1f} ms", f"{before_s / after_s:.0f}x"
                row[6] = "yes" if same else "no"
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
