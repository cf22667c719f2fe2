"""Pixels as the networks take them: the one conversion from MNIST's uint8 images, shared
by training, export and serving."""

from __future__ import annotations

from torch import Tensor

from mnist_lit.data.mnist import PIXEL_MEAN, PIXEL_STD


def network_input(images: Tensor, normalize: bool) -> Tensor:
    """``(B, 28, 28)`` uint8 -> ``(B, 1, 28, 28)`` float in [0, 1], or standardised with
    MNIST's pixel mean and standard deviation when ``normalize``."""
    # In place on the new float tensor: one allocation per batch.
    x = images.unsqueeze(1).float().div_(255)
    if normalize:
        x = x.sub_(PIXEL_MEAN).div_(PIXEL_STD)
    return x
