"""``mnist-lit serve`` through real HTTP on a loopback port: every model's answer for an
image prepared as ``mnist-lit predict`` prepares it, each bad input refused with its 4xx
while the server keeps serving, and the processes gone after SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mnist_lit.data.own_digits import mnist_style
from mnist_lit.runs.inference import load_trained_model
from tests.cli_helpers import CONSOLE_SCRIPT, cli_error, free_port
from tests.digit_images import draw_one, draw_zero
from tests.serve_helpers import (
    MAX_BYTES,
    MAX_PIXELS,
    encoded,
    get,
    post,
    wait_until_healthy,
)

SERVER = pytest.mark.serve  # a server is three processes or more


@torch.no_grad()
def _expected_probabilities(checkpoint: Path, digit: torch.Tensor) -> list[float]:
    model = load_trained_model(checkpoint).classifier
    return model(digit.unsqueeze(0))[1][0].tolist()


def _check_answer(answer: dict[str, Any], image: Image.Image, checkpoints: dict[str, Path]) -> None:
    """The answer holds the image prepared by mnist_style, and each model's prediction of it."""
    digit = mnist_style(image)
    assert answer["image"] == digit.tolist()
    assert list(answer["models"]) == list(checkpoints)
    for name, checkpoint in checkpoints.items():
        probabilities = answer["models"][name]["probabilities"]
        np.testing.assert_allclose(probabilities, _expected_probabilities(checkpoint, digit),
                                   atol=1e-6)  # fmt: skip
        assert answer["models"][name]["digit"] == int(np.argmax(probabilities))


def _slanted_stroke(k: int) -> Image.Image:
    """One of 16 strokes, each at its own slant: 16 different prepared images."""
    image = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(image).line([(20 + 5 * k, 10), (100 - 5 * k, 110)], fill=0, width=9)
    return image


@SERVER
def test_health_and_the_models_on_show(served_url: str) -> None:
    assert get(served_url + "health") == (200, b"ok")
    status, body = get(served_url + "info")
    assert status == 200
    assert json.loads(body) == {
        "models": {
            "tutorial": {"net": "SoftmaxRegression", "loss": "SoftmaxTwiceCrossEntropy",
                         "normalize": False},
            "mlp": {"net": "MLP", "loss": "CrossEntropy", "normalize": True},
        },
        "limits": {"max_bytes": MAX_BYTES, "max_pixels": MAX_PIXELS},
        "max_batch_size": 16, "batch_timeout": 0.002, "workers": 1,
    }  # fmt: skip


@SERVER
def test_a_png_gets_every_models_prediction_of_the_image_prepared_as_predict_does(
    served_url: str, small_checkpoints: dict[str, Path]
) -> None:
    image = draw_one((120, 160), dark_on_light=True)
    status, answer = post(served_url + "predict", encoded(image), "image/png")
    assert status == 200, answer
    _check_answer(answer, image, small_checkpoints)
    for name in small_checkpoints:
        assert sum(answer["models"][name]["probabilities"]) == pytest.approx(1, abs=1e-5)


@SERVER
def test_a_jpeg_and_a_json_array_are_prepared_the_same_way(
    served_url: str, small_checkpoints: dict[str, Path]
) -> None:
    jpeg = encoded(draw_zero((90, 120)), "JPEG")
    status, answer = post(served_url + "predict", jpeg, "image/jpeg")
    assert status == 200, answer
    _check_answer(answer, Image.open(io.BytesIO(jpeg)), small_checkpoints)
    # Dark ink on light paper, as a list of 28 rows: prepared like any image.
    pixels = 255 - np.asarray(draw_one((28, 28), dark_on_light=False), dtype=np.uint8)
    status, answer = post(served_url + "predict", json.dumps(pixels.tolist()).encode(),
                          "application/json")  # fmt: skip
    assert status == 200, answer
    _check_answer(answer, Image.fromarray(pixels), small_checkpoints)


@SERVER
def test_concurrent_requests_each_get_the_answer_for_their_own_image(
    served_url: str, small_checkpoints: dict[str, Path]
) -> None:
    images = [_slanted_stroke(k) for k in range(16)]
    assert len({mnist_style(image).numpy().tobytes() for image in images}) == 16
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(
            lambda image: post(served_url + "predict", encoded(image), "image/png"), images
        ))  # fmt: skip
    for image, (status, answer) in zip(images, answers, strict=True):
        assert status == 200, answer
        _check_answer(answer, image, small_checkpoints)


def _answer_seconds(url: str, body: bytes) -> float:
    """The fastest of three answers to ``body``, in seconds."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        status, answer = post(url + "predict", body, "image/png")
        times.append(time.perf_counter() - start)
        assert status == 200, answer
    return min(times)


@SERVER
def test_an_image_at_the_limits_is_answered_about_as_fast_as_a_small_one_beside_others(
    served_url: str, small_checkpoints: dict[str, Path]
) -> None:
    side = int(MAX_PIXELS**0.5)
    largest = draw_zero((side, side))  # as many pixels as the server takes
    body = encoded(largest)
    assert len(body) <= MAX_BYTES
    small_s = _answer_seconds(served_url, encoded(draw_zero((100, 100))))
    large_s = _answer_seconds(served_url, body)
    assert large_s < 5 * small_s + 0.5, (large_s, small_s)
    strokes = [_slanted_stroke(k) for k in range(8)]
    with ThreadPoolExecutor(max_workers=9) as pool:
        answer_to_largest = pool.submit(post, served_url + "predict", body, "image/png")
        answers = list(pool.map(
            lambda image: post(served_url + "predict", encoded(image), "image/png"), strokes
        ))  # fmt: skip
        status, answer = answer_to_largest.result()
    assert status == 200, answer
    _check_answer(answer, largest, small_checkpoints)
    for image, (status, answer) in zip(strokes, answers, strict=True):
        assert status == 200, answer
        _check_answer(answer, image, small_checkpoints)


def _huge_png() -> bytes:
    """A few kilobytes that decode to more pixels than the server takes."""
    return encoded(Image.new("L", (1100, 1000), 255))


BAD_INPUTS = {
    "not-an-image": (b"just some text", "image/png", 400, "the body is not a PNG image"),
    "jpeg-said-png": (encoded(draw_zero((40, 40)), "JPEG"), "image/png", 400, "not a PNG"),
    "cut-short": (encoded(draw_zero((80, 80)))[:300], "image/png", 400, "damaged or cut short"),
    "empty": (b"", "image/png", 400, "the body is empty"),
    "wrong-content-type": (b"hello", "text/plain", 415, "Content-Type text/plain: send one of"),
    "no-content-type": (b"hello", None, 415, "no Content-Type: send one of"),
    "malformed-json": (b"[[0, 1", "application/json", 400, "the body is not valid JSON"),
    "json-object": (b'{"image": 1}', "application/json", 422, "is an object, not an array"),
    "27-rows": (json.dumps([[0] * 28] * 27).encode(), "application/json", 422,
                "the array has 27 rows, not 28"),
    "short-row": (json.dumps([[0] * 28] * 27 + [[0] * 5]).encode(), "application/json", 422,
                  "row 27 has 5 values, not 28"),
    "not-pixels": (json.dumps([["white"] * 28] * 28).encode(), "application/json", 422,
                   'row 0 holds "white", not a number from 0 to 255'),
    "out-of-range": (json.dumps([[300] * 28] * 28).encode(), "application/json", 422,
                     "row 0 holds 300"),
    "blank": (json.dumps([[0] * 28] * 28).encode(), "application/json", 422,
              "no digit found, the image is blank"),
    "too-many-bytes": (b"\x89PNG" + bytes(MAX_BYTES), "image/png", 413,
                       f"the limit is {MAX_BYTES:,}"),
    "too-many-pixels": (_huge_png(), "image/png", 413,
                        f"the image is 1100x1000 pixels; the limit is {MAX_PIXELS:,}"),
}  # fmt: skip


@SERVER
@pytest.mark.parametrize(("body", "content_type", "status", "message"), BAD_INPUTS.values(),
                         ids=BAD_INPUTS.keys())  # fmt: skip
def test_bad_input_is_refused_with_a_message_and_the_server_keeps_serving(
    served_url: str, body: bytes, content_type: str | None, status: int, message: str
) -> None:
    got, answer = post(served_url + "predict", body, content_type)
    assert (got, type(answer)) == (status, dict), answer
    assert message in answer["detail"]
    good, _ = post(served_url + "predict", encoded(draw_one((60, 60), True)), "image/png")
    assert good == 200


@SERVER
def test_a_body_over_the_limit_is_refused_without_a_declared_length(served_url: str) -> None:
    status, answer = post(served_url + "predict", bytes(MAX_BYTES + 1), "image/png", chunked=True)
    assert status == 413 and f"the limit is {MAX_BYTES:,}" in answer["detail"]
    assert post(served_url + "predict", encoded(draw_zero((50, 50))), "image/png")[0] == 200


@SERVER
def test_the_page_and_its_files_come_from_the_package(served_url: str) -> None:
    status, page = get(served_url)
    assert status == 200 and b'<canvas id="pad"' in page
    for name in ("page.js", "page.css"):
        assert get(f"{served_url}static/{name}")[0] == 200
    assert get(served_url + "static/missing.js")[0] == 404


@SERVER
def test_unbatched_server_answers_alike_and_sigterm_ends_every_process(
    small_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    checkpoint = small_checkpoints["mlp"]
    server = subprocess.Popen(
        [CONSOLE_SCRIPT, "serve", f"--model=mlp={checkpoint}", "--port", str(port),
         "--max_batch_size", "1"],
        cwd=tmp_path, stdout=(tmp_path / "serve.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_healthy(url, server, tmp_path / "serve.log")
        image = draw_one((100, 100), dark_on_light=False)
        status, answer = post(url + "predict", encoded(image), "image/png")
        assert status == 200, answer
        _check_answer(answer, image, {"mlp": checkpoint})
        processes = _process_group(server.pid)
        assert len(processes) >= 3  # the main process, an HTTP server, a worker
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while _process_group(server.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _process_group(server.pid) == []
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    log = (tmp_path / "serve.log").read_text()
    assert f"mnist-lit serve: ready, mlp at {url}" in log
    assert "Traceback" not in log


def _process_group(pgid: int) -> list[int]:
    """The live processes of the process group ``pgid`` (Linux's /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_a_file_that_is_not_a_checkpoint_is_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.ckpt"
    notes.write_text("not a checkpoint")
    err = cli_error(["serve", "--model", f"ce={notes}"], capsys)
    assert f"--model ce={notes} is not a readable Lightning checkpoint" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "CKPT"], "give a name and a checkpoint, NAME=PATH"),
        (["--model", "a b=CKPT"], "a name is letters, digits"),
        (["--model", "ce=CKPT", "--model", "ce=CKPT"], "the name ce is given twice"),
        (["--model", "ce=missing.ckpt"], "--model ce=missing.ckpt: no such file"),
        (["--model", "ce=CKPT", "--port", "80"], "--port must be between 1024 and 65535"),
        (["--model", "ce=CKPT", "--host", "example.org"], "--host"),
        (["--model", "ce=CKPT", "--max_batch_size", "0"], "--max_batch_size must be at least 1"),
        (["--model", "ce=CKPT", "--max_pixels", "0"], "--max_pixels must be at least 1"),
        (["--model", "ce=CKPT", "--batch_timeout", "-1"], "--batch_timeout must be 0 or more"),
        ([], "the following arguments are required: model"),
    ],
    ids=["no-name", "bad-name", "twice", "missing", "port", "host", "batch", "pixels",
         "timeout", "no-model"],
)  # fmt: skip
def test_a_bad_option_is_one_message(
    options: list[str],
    message: str,
    small_checkpoints: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoint = str(small_checkpoints["tutorial"])
    err = cli_error(["serve", *(option.replace("CKPT", checkpoint) for option in options)], capsys)
    assert message in err


def test_a_port_in_use_is_one_message(
    small_checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = cli_error(["serve", f"--model=ce={small_checkpoints['tutorial']}",
                         "--port", str(port)], capsys)  # fmt: skip
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in err


def test_serve_without_litserve_names_the_extra(
    small_checkpoints: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "litserve", None)  # as if not installed
    err = cli_error(["serve", f"--model=ce={small_checkpoints['tutorial']}",
                     "--port", str(free_port())], capsys)  # fmt: skip
    assert "pip install 'mnist-lit[serve]'" in err
