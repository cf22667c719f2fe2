"""The parts of ``mnist-lit serve`` on their own: the batching loop, the prepared image on
its way to a worker, and JSON arrays that Python reads but no client should send."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from litserve.loops.base import _SENTINEL_VALUE, _StopLoopError

from mnist_lit.serve.api import BlockingBatchedLoop, DigitAPI
from mnist_lit.serve.inputs import InputError, Limits, forwarded_body, forwarded_image, prepare
from tests.cli_helpers import REPO


class CountingQueue(queue.Queue):
    """A request queue that counts how often it is asked for an item."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self.gets += 1
        return super().get(block, timeout)


def _api(max_batch_size: int = 16, batch_timeout: float = 0.05) -> DigitAPI:
    api = DigitAPI({}, max_batch_size=max_batch_size, batch_timeout=batch_timeout)
    api.request_timeout = 30
    return api


def _request(i: int, queued_at: float | None = None) -> tuple[int, str, float, dict[str, str]]:
    return (0, f"uid-{i}", time.monotonic() if queued_at is None else queued_at, {"n": str(i)})


def test_an_idle_loop_waits_on_the_queue_instead_of_polling_it() -> None:
    loop, requests = BlockingBatchedLoop(), CountingQueue()
    loop.idle_wait_s = 0.3
    started = time.monotonic()
    assert loop.get_batch_requests(_api(), requests, transport=None) == ([], [])
    assert time.monotonic() - started >= 0.29
    assert requests.gets == 1  # LitServe's own loop asks every millisecond: about 300 times


def test_a_batch_takes_what_comes_within_the_timeout_up_to_the_largest_batch() -> None:
    loop, requests = BlockingBatchedLoop(), CountingQueue()
    for i in range(20):
        requests.put(_request(i))
    batch, timed_out = loop.get_batch_requests(_api(max_batch_size=16), requests, None)
    assert [uid for _, uid, _ in batch] == [f"uid-{i}" for i in range(16)] and timed_out == []
    # The first request of a batch waits batch_timeout for company, not longer.
    requests = CountingQueue()
    requests.put(_request(0))
    threading.Timer(0.01, requests.put, [_request(1)]).start()
    threading.Timer(0.9, requests.put, [_request(2)]).start()
    batch, _ = loop.get_batch_requests(_api(batch_timeout=0.3), requests, None)
    assert [uid for _, uid, _ in batch] == ["uid-0", "uid-1"]
    batch, _ = loop.get_batch_requests(_api(batch_timeout=0.3), requests, None)
    assert [uid for _, uid, _ in batch] == ["uid-2"]


def test_requests_queued_too_long_are_set_apart_and_the_stop_signal_stops() -> None:
    loop, requests = BlockingBatchedLoop(), CountingQueue()
    requests.put(_request(0, queued_at=time.monotonic() - 60))
    requests.put(_request(1))
    batch, timed_out = loop.get_batch_requests(_api(), requests, None)
    assert ([uid for _, uid, _ in batch], timed_out) == (["uid-1"], [(0, "uid-0")])
    requests.put(_SENTINEL_VALUE)
    with pytest.raises(_StopLoopError):
        loop.get_batch_requests(_api(), requests, None)


def test_batching_off_uses_litserves_own_loop() -> None:
    assert isinstance(_api(max_batch_size=4).loop, BlockingBatchedLoop)
    assert not isinstance(_api(max_batch_size=1).loop, BlockingBatchedLoop)


def test_the_prepared_image_reaches_the_worker_unchanged() -> None:
    digit = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    assert torch.equal(forwarded_image(json.loads(forwarded_body(digit))), digit)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" + b"[" * 100_000, "the body is not valid JSON"),
        (("[" + ",".join(["[" + ",".join(["NaN"] * 28) + "]"] * 28) + "]").encode(),
         "row 0 holds NaN"),
        (("[" + ",".join(["[" + ",".join(["Infinity"] * 28) + "]"] * 28) + "]").encode(),
         "row 0 holds Infinity"),
        (("[" + ",".join(["[" + ",".join(["true"] * 28) + "]"] * 28) + "]").encode(),
         "row 0 holds true"),
        (b"\xff\xfe[[0]]", "the body is not valid JSON"),
    ],
    ids=["deeply-nested", "nan", "infinity", "booleans", "not-utf8"],
)  # fmt: skip
def test_json_that_python_reads_but_is_no_image_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(InputError) as refused:
        prepare(body, "application/json", Limits())
    assert refused.value.status in (400, 422) and message in refused.value.message


@pytest.mark.slow
def test_the_page_is_installed_with_the_package(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes into the source tree
    shutil.copytree(REPO / "mnist_lit", source / "mnist_lit",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(tmp_path / "wheel"), str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("mnist_lit-*.whl")
    installed = set(zipfile.ZipFile(wheel).namelist())
    static = REPO / "mnist_lit" / "serve" / "static"
    assert {p.name for p in static.iterdir()} == {"index.html", "page.css", "page.js"}
    for page_file in static.iterdir():
        assert f"mnist_lit/serve/static/{page_file.name}" in installed
