"""Predicting your own digits: MNIST-style preprocessing and the CSV of predictions."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_lit.cli import main
from mnist_lit.data.own_digits import load_digits, mnist_style
from tests.cli_helpers import TUTORIAL, fake_data, fit_one_epoch
from tests.digit_images import draw_one, draw_zero


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


def test_unreadable_files_are_named_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draw_one((80, 80), dark_on_light=True).save(tmp_path / "a_one.png")
    draw_zero((60, 60)).save(tmp_path / "b_zero.jpg")
    (tmp_path / "c_notes.txt").write_text("not an image")
    (tmp_path / "d_cut.png").write_bytes((tmp_path / "a_one.png").read_bytes()[:60])
    Image.new("L", (40, 40), 255).save(tmp_path / "e_blank.png")
    digits, names = load_digits(tmp_path)
    assert names == [str(tmp_path / "a_one.png"), str(tmp_path / "b_zero.jpg")]
    assert digits.shape == (2, 28, 28)
    err = capsys.readouterr().err
    assert f"mnist-lit: skipped {tmp_path / 'c_notes.txt'}: not an image" in err
    assert f"mnist-lit: skipped {tmp_path / 'd_cut.png'}" in err
    assert f"mnist-lit: skipped {tmp_path / 'e_blank.png'}: no digit found" in err


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
    main(["predict", "--config", TUTORIAL, "--ckpt_path=best", f"--data.predict_path={digits}",
          "--predictions.path=out/predictions.csv", *fake_data(fake_mnist_dir)])  # fmt: skip
    captured = capsys.readouterr()
    assert f"mnist-lit: skipped {digits / 'broken.png'}: not an image" in captured.err
    assert "Predictions for 2 images written to out/predictions.csv" in captured.out
    with open(tmp_path / "out" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["file"] for row in rows] == [str(digits / "one.png"), str(digits / "zero.jpg")]
    for row in rows:
        probs = np.array([float(row[f"p{k}"]) for k in range(10)])
        assert probs.sum() == pytest.approx(1, abs=1e-3)
        assert int(row["digit"]) == probs.argmax()
