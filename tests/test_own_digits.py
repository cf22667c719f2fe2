"""Predicting your own digits: MNIST-style preprocessing and the CSV of predictions."""

from __future__ import annotations

import csv
import io
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from mnist_lit.cli import main
from mnist_lit.data.own_digits import Limits, _border, _ink_near_border, load_digits, mnist_style
from tests.cli_helpers import TUTORIAL, fake_data, fit_one_epoch
from tests.digit_images import PHONE, draw_one, draw_zero, phone_photo


def _centre_of_mass(digit: torch.Tensor) -> tuple[float, float]:
    pixels = digit.double()
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    return float((ys * pixels).sum() / pixels.sum()), float((xs * pixels).sum() / pixels.sum())


@pytest.mark.parametrize(
    "image",
    [draw_one((300, 200), dark_on_light=True), draw_one((64, 90), dark_on_light=False),
     draw_zero((500, 500))],
    ids=["dark-on-light-one", "light-on-dark-one", "rgb-zero"],
)  # fmt: skip
def test_preprocessing_is_mnist_style(image: Image.Image) -> None:
    digit = mnist_style(image)
    assert digit.shape == (28, 28) and digit.dtype == torch.uint8
    # Light digit on a black background, fitted into 20x20, its centre of mass moved by whole
    # pixels to (14, 14) in pixel indices, where MNIST's are.
    border = torch.cat([digit[0], digit[-1], digit[:, 0], digit[:, -1]])
    assert border.max() == 0 and digit.max() > 200
    rows, cols = torch.nonzero(digit > 0, as_tuple=True)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 20
    cy, cx = _centre_of_mass(digit)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_polarity_does_not_change_the_result() -> None:
    dark = mnist_style(draw_one((120, 120), dark_on_light=True))
    light = mnist_style(draw_one((120, 120), dark_on_light=False))
    assert torch.equal(dark, light)


def _seven_to_the_edge() -> Image.Image:
    """A 7 whose ink fills its 8x8 box from the top row to the bottom one, 0 to 16 as in
    scikit-learn's handwritten digits, upscaled smoothly to 64x64, dark on white."""
    seven = np.array([
        [0, 4, 12, 16, 16, 16, 9, 0],
        [0, 2, 6, 5, 7, 16, 8, 0],
        [0, 0, 0, 0, 9, 14, 1, 0],
        [0, 0, 0, 2, 16, 6, 0, 0],
        [0, 0, 0, 9, 13, 0, 0, 0],
        [0, 0, 2, 16, 5, 0, 0, 0],
        [0, 0, 8, 14, 0, 0, 0, 0],
        [0, 0, 12, 10, 0, 0, 0, 0],
    ])  # fmt: skip
    image = Image.fromarray((255 - seven * 255 / 16).astype(np.uint8), mode="L")
    return image.resize((64, 64), Image.Resampling.BILINEAR)


def test_a_digit_drawn_to_the_edge_is_prepared_as_with_a_margin_around_it() -> None:
    edge = _seven_to_the_edge()
    margin = Image.new("L", (96, 96), 255)
    margin.paste(edge, (16, 16))
    digit = mnist_style(edge)
    assert torch.equal(digit, mnist_style(margin))  # all of its ink, its faint edge too
    assert (digit > 0).sum() > 60


def _png_header(width: int, height: int) -> bytes:
    """A PNG file of a grey image of that size, its pixels missing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_unreadable_files_are_named_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draw_one((80, 80), dark_on_light=True).save(tmp_path / "a_one.png")
    draw_zero((60, 60)).save(tmp_path / "b_zero.jpg")
    (tmp_path / "c_notes.txt").write_text("not an image")
    (tmp_path / "d_cut.png").write_bytes((tmp_path / "a_one.png").read_bytes()[:60])
    Image.new("L", (40, 40), 255).save(tmp_path / "e_blank.png")
    (tmp_path / "f_huge.png").write_bytes(_png_header(8200, 8200))  # refused from its header
    (tmp_path / "g_heavy.png").write_bytes(b"\x89PNG" + bytes(Limits().max_bytes))
    _seven_to_the_edge().save(tmp_path / "h_edge.png")
    (tmp_path / "i_bomb.png").write_bytes(_png_header(20_000, 20_000))  # PIL refuses to open it
    digits, names = load_digits(tmp_path)
    assert names == [str(tmp_path / n) for n in ("a_one.png", "b_zero.jpg", "h_edge.png")]
    assert digits.shape == (3, 28, 28)
    err = capsys.readouterr().err
    assert f"mnist-lit: skipped {tmp_path / 'c_notes.txt'}: not an image" in err
    assert f"mnist-lit: skipped {tmp_path / 'd_cut.png'}" in err
    assert f"mnist-lit: skipped {tmp_path / 'e_blank.png'}: no digit found" in err
    # The limits of `mnist-lit serve`, said as it says them, and how to raise them.
    assert (f"mnist-lit: skipped {tmp_path / 'f_huge.png'}: the image is 8200x8200 pixels; "
            "the limit is 67,108,864 pixels (width x height). Scale it down, or raise the "
            "limit with --data.max_pixels") in err  # fmt: skip
    assert (f"mnist-lit: skipped {tmp_path / 'g_heavy.png'}: the file holds 33,554,436 bytes "
            "or more; the limit is 33,554,432. Scale the image down or save it as JPEG, or "
            "raise the limit with --data.max_bytes") in err  # fmt: skip
    assert f"mnist-lit: skipped {tmp_path / 'i_bomb.png'}: it cannot be prepared" in err


def test_a_phone_photo_is_predicted_with_the_default_limits(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(phone_photo())
    assert 2**21 < photo.stat().st_size < Limits().max_bytes  # 7 MB
    digits, names = load_digits(photo)
    assert names == [str(photo)]
    # As a copy a few hundred pixels wide gives it: the photo holds far more than 20x20 needs.
    small = Image.open(photo).convert("L").resize((504, 378), Image.Resampling.BOX)
    difference = (digits[0].int() - mnist_style(small).int()).abs().float().mean()
    assert difference < 5 and (digits[0] > 0).sum() > 60


def test_a_photo_is_turned_upright_as_its_exif_orientation_says() -> None:
    turned = Image.open(io.BytesIO(phone_photo(orientation=6)))
    as_stored = Image.open(io.BytesIO(phone_photo()))
    as_stored.draft("L", (504, 378))  # as it is decoded for its preparation
    upright = as_stored.transpose(Image.Transpose.ROTATE_270)
    assert torch.equal(mnist_style(turned), mnist_style(upright))
    assert not torch.equal(mnist_style(turned), mnist_style(as_stored))


def _seconds(prepare: Callable[[], object]) -> float:
    """The fastest of three runs: the least disturbed by other work on the machine."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        prepare()
        times.append(time.perf_counter() - start)
    return min(times)


def _png(image: Image.Image) -> bytes:
    body = io.BytesIO()
    image.save(body, "PNG")
    return body.getvalue()


@pytest.mark.parametrize(
    "body",
    [_png(draw_zero((800, 600))), _png(draw_zero((1200, 900))), phone_photo()],
    ids=["png-800x600", "png-1200x900", f"jpeg-{PHONE[0]}x{PHONE[1]}"],
)
def test_a_large_image_is_prepared_about_as_fast_as_a_small_one(body: bytes) -> None:
    small = _png(draw_zero((280, 280)))
    small_s = _seconds(lambda: mnist_style(Image.open(io.BytesIO(small))))
    large_s = _seconds(lambda: mnist_style(Image.open(io.BytesIO(body))))
    # Decoding a file grows with its size; the preparation after it does not.
    assert large_s < 5 * small_s + 0.5, (large_s, small_s)


def test_the_ink_near_the_border_is_the_border_of_a_max_filter() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        height, width = rng.integers(3, 60, size=2)
        ink = rng.random((height, width)) < rng.choice([0.003, 0.02, 0.1])
        reach = max(1, max(height, width) // 8)
        mask = Image.fromarray(ink.astype(np.uint8) * 255)
        filtered = np.asarray(mask.filter(ImageFilter.MaxFilter(2 * reach + 1)))
        assert np.array_equal(_ink_near_border(ink, reach), _border(filtered) > 0)


def test_predict_a_folder_writes_a_csv(
    fake_mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    fit_one_epoch(fake_mnist_dir)
    digits = tmp_path / "my_digits"
    digits.mkdir()
    draw_one((100, 150), dark_on_light=True).save(digits / "one.png")
    draw_zero((90, 90)).save(digits / "zero.jpg")
    (digits / "broken.png").write_text("no pixels here")
    _seven_to_the_edge().save(digits / "seven_to_the_edge.png")
    (digits / "too_large.png").write_bytes(_png_header(20_000, 20_000))
    (digits / "wide.png").write_bytes(_png_header(1100, 1000))
    for k in range(10):
        draw_one((60 + k, 80), dark_on_light=True).save(digits / f"strokes_{k}.png")
    main(["predict", "--config", TUTORIAL, "--ckpt_path=best", f"--data.predict_path={digits}",
          "--data.max_pixels=1000000", "--predictions.path=out/predictions.csv",
          *fake_data(fake_mnist_dir)])  # fmt: skip
    captured = capsys.readouterr()
    assert f"mnist-lit: skipped {digits / 'broken.png'}: not an image" in captured.err
    assert f"mnist-lit: skipped {digits / 'too_large.png'}: it cannot be prepared" in captured.err
    assert (f"mnist-lit: skipped {digits / 'wide.png'}: the image is 1100x1000 pixels; the "
            "limit is 1,000,000 pixels") in captured.err  # fmt: skip
    assert "Predictions for 13 images written to out/predictions.csv" in captured.out
    with open(tmp_path / "out" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    predicted = [str(digits / n) for n in ("one.png", "seven_to_the_edge.png",
                 *(f"strokes_{k}.png" for k in range(10)), "zero.jpg")]  # fmt: skip
    assert [row["file"] for row in rows] == predicted
    # The first ten, each with its digit and that digit's probability, then how many more.
    shown = [f"  {row['file']}: {row['digit']} ({float(row['p' + row['digit']]):.1%})"
             for row in rows[:10]]  # fmt: skip
    lines = captured.out.splitlines()
    start = lines.index("Predictions for 13 images written to out/predictions.csv") + 1
    assert lines[start : start + 11] == [*shown, "  ... and 3 more"]
    for row in rows:
        probs = np.array([float(row[f"p{k}"]) for k in range(10)])
        assert probs.sum() == pytest.approx(1, abs=1e-3)
        assert int(row["digit"]) == probs.argmax()


def test_real_handwriting_drawn_to_the_edge_is_prepared_as_with_a_margin() -> None:
    """scikit-learn's UCI digits (43 writers; their ink runs to the top and bottom rows),
    upscaled as a scan would give them: every one is prepared, all but one in a thousand
    exactly as with a margin around it."""
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn comes with mlflow")
    differ = 0
    for pixels in datasets.load_digits().images:
        dark = Image.fromarray((255 - pixels * 255 / 16).astype(np.uint8), mode="L")
        edge = dark.resize((64, 64), Image.Resampling.BILINEAR)
        margin = Image.new("L", (96, 96), 255)
        margin.paste(edge, (16, 16))
        differ += not torch.equal(mnist_style(edge), mnist_style(margin))
    assert differ <= 2
