"""What ``POST /predict`` accepts, checked and prepared as ``mnist-lit predict`` prepares
your own digits, before any model sees it.

A body is a PNG or JPEG image (``Content-Type: image/png`` or ``image/jpeg``) or a JSON array
of 28 rows of 28 pixel values, 0 (black) to 255 (white) (``application/json``). Either is
an image of any polarity, prepared by :func:`~mnist_lit.data.own_digits.mnist_style`.
Everything refused is an :class:`InputError`: an HTTP status and a message for the client.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from mnist_lit.data.mnist import IMAGE_SIDE
from mnist_lit.data.own_digits import Limits, draft, mnist_style

IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
JSON_TYPE = "application/json"
ACCEPTED = ", ".join([*IMAGE_TYPES, JSON_TYPE])


class InputError(Exception):
    """A request refused: ``status`` is the HTTP status, the message tells the client why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_media_type(content_type: str | None) -> str:
    """The body's media type (``image/png; charset=...`` -> ``image/png``) if accepted, else
    a 415."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in IMAGE_TYPES or kind == JSON_TYPE:
        return kind
    got = f"Content-Type {kind}" if kind else "no Content-Type"
    raise InputError(415, f"{got}: send one of {ACCEPTED}.")


def too_large(size: int, limits: Limits) -> InputError:
    return InputError(
        413, limits.too_many_bytes("the body", size, "mnist-lit serve --max_bytes") + "."
    )


# Bodies this small, of images this small, take a millisecond or two to prepare: on the
# event loop. Larger ones in a thread, so that they do not hold up the requests around them.
INLINE_BYTES = 64 * 1024
INLINE_PIXELS = 512 * 512


def quick_to_prepare(body: bytes, kind: str) -> bool:
    """Whether ``body`` is small in bytes and, for an image, in pixels (by its header): a
    PNG of a few kilobytes can hold a photo's 12 megapixels of blank paper."""
    if len(body) > INLINE_BYTES:
        return False
    if kind not in IMAGE_TYPES:
        return True
    try:
        with Image.open(io.BytesIO(body), formats=[IMAGE_TYPES[kind]]) as image:
            return image.width * image.height <= INLINE_PIXELS
    except Exception:  # not an image, or a bomb: refused in a moment by prepare()
        return True


def prepare(body: bytes, kind: str, limits: Limits) -> Tensor:
    """The body as the models take it: ``(28, 28)`` uint8, prepared MNIST-style."""
    if not body:
        raise InputError(400, f"the body is empty: send a PNG or JPEG image or {_ARRAY}.")
    if len(body) > limits.max_bytes:
        raise too_large(len(body), limits)
    image = decode_image(body, kind, limits) if kind in IMAGE_TYPES else parse_array(body)
    try:
        return mnist_style(image)
    except ValueError as error:  # a blank image: no digit to find
        raise InputError(422, f"{error}; draw or send a digit.") from error


def decode_image(body: bytes, kind: str, limits: Limits) -> Image.Image:
    """Decode a PNG or JPEG body, refusing one larger than ``limits.max_pixels`` before
    its pixels are decoded (the header alone gives the size); a large JPEG is decoded at
    the fraction of its size that its preparation needs."""
    image_format = IMAGE_TYPES[kind]
    try:
        image = Image.open(io.BytesIO(body), formats=[image_format])
    except Image.DecompressionBombError as error:
        raise InputError(413, f"the image is too large: {error}") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(
            400, f"the body is not a {image_format} image, as its Content-Type {kind} says."
        ) from error
    too_many_pixels = limits.too_many_pixels(*image.size, "mnist-lit serve --max_pixels")
    if too_many_pixels:
        raise InputError(413, too_many_pixels + ".")
    draft(image)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(400, f"the {image_format} image is damaged or cut short.") from error
    return image


_ARRAY = f"a JSON array of {IMAGE_SIDE} rows of {IMAGE_SIDE} pixel values, 0 (black) to 255 (white)"


def parse_array(body: bytes) -> Image.Image:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:  # ValueError: bad JSON or bad UTF-8
        raise InputError(400, f"the body is not valid JSON ({error}); send {_ARRAY}.") from error
    problem = _array_problem(data)
    if problem:
        raise InputError(422, f"{problem}; send {_ARRAY}.")
    return Image.fromarray(np.rint(np.array(data, dtype=np.float64)).astype(np.uint8), mode="L")


def _array_problem(data: Any) -> str | None:
    """What keeps ``data`` from being 28 rows of 28 numbers in [0, 255], or ``None``."""
    if not isinstance(data, list):
        return f"the JSON is {_json_kind(data)}, not an array"
    if len(data) != IMAGE_SIDE:
        return f"the array has {_count(len(data), 'row')}, not {IMAGE_SIDE}"
    for i, row in enumerate(data):
        if not isinstance(row, list):
            return f"row {i} is {_json_kind(row)}, not an array"
        if len(row) != IMAGE_SIDE:
            return f"row {i} has {_count(len(row), 'value')}, not {IMAGE_SIDE}"
        for value in row:
            # bool is an int in Python, but true/false are no pixel values.
            # NaN and infinity, which Python's JSON reads, fail the range check too.
            if type(value) not in (int, float) or not 0 <= value <= 255:
                return f"row {i} holds {json.dumps(value)[:20]}, not a number from 0 to 255"
    return None


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return kinds.get(type(value), "null" if value is None else "a number")


def forwarded_body(digit: Tensor) -> bytes:
    """A prepared ``(28, 28)`` uint8 image as the JSON body queued for a worker: its bytes,
    row by row, in base64 (a tenth of the work of a list of lists, both ways)."""
    pixels = base64.b64encode(digit.numpy().tobytes()).decode()
    return json.dumps({"pixels": pixels}).encode()


def forwarded_image(request: dict[str, Any]) -> Tensor:
    """The image of a :func:`forwarded_body`, ``(28, 28)`` uint8."""
    pixels = np.frombuffer(base64.b64decode(request["pixels"]), dtype=np.uint8)
    return torch.from_numpy(pixels.reshape(IMAGE_SIDE, IMAGE_SIDE).copy())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
