"""How far the preparation of your own digits carries a network trained on MNIST into
handwriting from elsewhere: scikit-learn's copy of the UCI handwritten digits (1,797 images
of 8x8 pixels, 0 to 16, by 43 writers), drawn dark on white and upscaled to 64x64, as a
scan or a photo gives them. Their ink runs to the top and bottom of the image.

Each way of making the 64x64 image (bilinear, nearest) is predicted as it is, with a white
margin of 16 pixels pasted around it, and, as a baseline, resized straight to 28x28 and
inverted with no preparation at all:

    pip install scikit-learn
    python benchmarks/outside_digits.py --ckpt_path logs/cnn/version_0/checkpoints/last.ckpt
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageOps

from mnist_lit.data.own_digits import mnist_style
from mnist_lit.runs.inference import load_trained_model

SIDE, MARGIN = 64, 16


def images(resample: Image.Resampling) -> list[Image.Image]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    return [
        Image.fromarray((255 - digit * 255 / 16).astype(np.uint8), mode="L").resize(
            (SIDE, SIDE), resample
        )
        for digit in load_digits().images
    ]


def with_margin(image: Image.Image) -> Image.Image:
    return ImageOps.expand(image, MARGIN, fill=255)


def unprepared(image: Image.Image) -> torch.Tensor:
    resized = ImageOps.invert(image).resize((28, 28), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(resized).copy())


@torch.inference_mode()
def accuracy(model: torch.nn.Module, digits: list[torch.Tensor], labels: np.ndarray) -> float:
    probabilities = model(torch.stack(digits))[1]
    return float((probabilities.argmax(-1).numpy() == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint of `mnist-lit fit`")
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    labels = load_digits().target
    model = load_trained_model(args.ckpt_path).classifier
    print(f"{args.ckpt_path}: {len(labels)} UCI digits, 8x8 upscaled to {SIDE}x{SIDE}\n")
    print("| upscaled | prepared, ink to the edge | prepared, 16-pixel margin | unprepared |")
    print("|---|---|---|---|")
    for name, resample in (("bilinear", Image.Resampling.BILINEAR),
                           ("nearest", Image.Resampling.NEAREST)):  # fmt: skip
        drawn = images(resample)
        edge = accuracy(model, [mnist_style(i) for i in drawn], labels)
        margin = accuracy(model, [mnist_style(with_margin(i)) for i in drawn], labels)
        raw = accuracy(model, [unprepared(i) for i in drawn], labels)
        print(f"| {name} | {edge:.1%} | {margin:.1%} | {raw:.1%} |")


if __name__ == "__main__":
    main()
