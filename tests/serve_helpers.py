"""What the export and serving tests share: small checkpoints, and `mnist-lit serve` started
on a loopback port and stopped again."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from mnist_lit.cli import main
from tests.cli_helpers import CONSOLE_SCRIPT, REPO, TUTORIAL, fake_data, free_port

MLP_CONFIG = str(REPO / "configs" / "mlp.yaml")  # normalised pixels
STARTUP_S = 180  # a cold start imports torch in three processes on a busy machine
SHUTDOWN_S = 60  # LitServe gives its HTTP servers 30 s to finish
# The limits of the shared test server, small so that refusals are cheap to provoke.
MAX_BYTES = 200_000
MAX_PIXELS = 1_000_000


def train_small_checkpoints(data_dir: Path, folder: Path) -> dict[str, Path]:
    """One epoch each on the fake data, in ``folder``: the tutorial's softmax regression
    (pixels in [0, 1]) and an MLP (normalised pixels)."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        for config in (TUTORIAL, MLP_CONFIG):
            main(["fit", "--config", config, "--trainer.max_epochs=1", *fake_data(data_dir)])
    finally:
        os.chdir(previous)
    return {
        "tutorial": folder / "logs/seed_cross_entropy/version_0/checkpoints/last.ckpt",
        "mlp": folder / "logs/mlp/version_0/checkpoints/last.ckpt",
    }


@contextlib.contextmanager
def serving(checkpoints: dict[str, Path], *options: str, cwd: Path) -> Iterator[str]:
    """Run ``mnist-lit serve`` with ``checkpoints`` on a free loopback port; yield its base
    URL once ``/health`` answers, and stop it (SIGTERM, as ``kill`` does) afterwards."""
    port = free_port()
    models = [f"--model={name}={path}" for name, path in checkpoints.items()]
    log = (cwd / f"serve-{port}.log").open("w")
    server = subprocess.Popen(
        [CONSOLE_SCRIPT, "serve", *models, "--port", str(port), *options],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, to clean up after a failure
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_healthy(url, server, cwd / f"serve-{port}.log")
        yield url
    finally:
        stop(server)
        log.close()


def wait_until_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mnist-lit serve exited:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            if get(url + "health")[0] == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"mnist-lit serve not healthy after {STARTUP_S} s:\n{log.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server and wait; kill its process group if it does not stop."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=SHUTDOWN_S)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        raise AssertionError("mnist-lit serve did not stop on SIGTERM") from None


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post(url: str, body: bytes, content_type: str | None, chunked: bool = False) -> tuple[int, Any]:
    """POST ``body`` to ``url`` with exactly the headers given (none added); the status and
    the JSON answer. ``chunked`` sends the body without a Content-Length."""
    address = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        if chunked:
            connection.request("POST", address.path, iter([body]), headers, encode_chunked=True)
        else:
            connection.request("POST", address.path, body, headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def encoded(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()
