"""The parts of ``mnist-lit serve`` on their own: the batching loop beside LitServe's own, the
prepared image on its way to a worker, and JSON arrays that Python reads but no client should
send."""

from __future__ import annotations

import contextlib
import io
import json
import queue
import threading
import time
from typing import Any
from unittest import mock

import pytest
import torch
from litserve.callbacks import CallbackRunner
from litserve.loops import BatchedLoop, SingleLoop
from PIL import Image

from mnist_lit.data.own_digits import mnist_style
from mnist_lit.serve.api import BlockingBatchedLoop, DigitAPI
from mnist_lit.serve.inputs import (
    InputError,
    Limits,
    forwarded_body,
    forwarded_image,
    prepare,
    quick_to_prepare,
)
from tests.digit_images import PHONE, draw_one, phone_photo
from tests.serve_helpers import encoded


class CountingQueue(queue.Queue):
    """A request queue that counts how often it is asked for an item; ``closed`` makes the
    next ``get`` raise :class:`Closed`, to end a loop."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.closed = False

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self.gets += 1
        if self.closed:
            raise Closed
        return super().get(block, timeout)


class Closed(Exception):
    pass


class Transport:
    """LitServe's transport to the HTTP servers, keeping what is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send(self, item: tuple[str, tuple[Any, ...]], consumer_id: int) -> None:
        uid, (_, status, *_) = item
        self.sent.append((uid, status))


def _api(max_batch_size: int = 16, batch_timeout: float = 0.05) -> DigitAPI:
    api = DigitAPI({}, max_batch_size=max_batch_size, batch_timeout=batch_timeout)
    api.request_timeout = 30
    api.pre_setup()
    return api


def _request(i: int, queued_at: float | None = None) -> tuple[int, str, float, Any]:
    image = json.loads(forwarded_body(torch.full((28, 28), i, dtype=torch.uint8)))
    return (0, f"uid-{i}", time.monotonic() if queued_at is None else queued_at, image)


def test_the_loop_waits_while_idle_and_litserve_answers_the_batch_it_takes() -> None:
    loop, requests, transport = BlockingBatchedLoop(), CountingQueue(), Transport()
    loop.idle_wait_s = 0.1
    run = threading.Thread(target=_run, args=(loop, _api(), requests, transport), daemon=True)
    run.start()
    try:
        time.sleep(0.5)
        idle_gets = requests.gets
        for i in range(3):
            requests.put(_request(i))
        deadline = time.monotonic() + 10
        while len(transport.sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        requests.closed = True
        run.join(timeout=10)
    assert 1 <= idle_gets <= 10  # LitServe's own loop asks every millisecond: ~500 times
    assert transport.sent == [(f"uid-{i}", "OK") for i in range(3)]


def _run(loop: BatchedLoop, api: DigitAPI, requests: CountingQueue, transport: Transport) -> None:
    with contextlib.suppress(Closed):
        loop(api, "cpu", 0, requests, transport, {}, CallbackRunner())


def test_litserves_own_loop_polls_an_idle_queue() -> None:
    """The reason for BlockingBatchedLoop: when this fails, LitServe's loop will do."""
    requests, deadline = CountingQueue(), time.monotonic() + 0.3
    while time.monotonic() < deadline:
        BatchedLoop().get_batch_requests(_api(), requests, None)
    assert requests.gets > 30


@pytest.mark.parametrize("batch_timeout", [0.05, 0.0])
def test_a_batch_is_what_litserves_own_loop_collects(batch_timeout: float) -> None:
    collected = []
    for loop in (BlockingBatchedLoop(), BatchedLoop()):
        requests = CountingQueue()
        requests.put(_request(0, queued_at=time.monotonic() - 60))  # queued too long: a 504
        for i in range(1, 20):
            requests.put(_request(i))
        with mock.patch.object(loop, "put_response") as put_response:  # START, per request
            batch = loop.get_batch_requests(_api(batch_timeout=batch_timeout), requests, "t")
        collected.append((batch, put_response.call_args_list))
    assert collected[0] == collected[1]
    (batch, timed_out), started = collected[0]
    assert [uid for _, uid, _ in batch] == [f"uid-{i}" for i in range(1, 17)]
    assert timed_out == [(0, "uid-0")] and len(started) == 17


def test_a_batch_waits_batch_timeout_from_its_first_request() -> None:
    loop, requests = BlockingBatchedLoop(), CountingQueue()
    requests.put(_request(0))
    threading.Timer(0.01, requests.put, [_request(1)]).start()
    threading.Timer(0.9, requests.put, [_request(2)]).start()
    batch, _ = loop.get_batch_requests(_api(batch_timeout=0.3), requests, None)
    assert [uid for _, uid, _ in batch] == ["uid-0", "uid-1"]
    batch, _ = loop.get_batch_requests(_api(batch_timeout=0.3), requests, None)
    assert [uid for _, uid, _ in batch] == ["uid-2"]


def test_batching_off_uses_litserves_own_loop() -> None:
    assert isinstance(_api(max_batch_size=4).loop, BlockingBatchedLoop)
    assert isinstance(_api(max_batch_size=1).loop, SingleLoop)


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


def test_a_phone_photo_is_prepared_with_the_default_limits_as_predict_prepares_it() -> None:
    photo = phone_photo()
    digit = prepare(photo, "image/jpeg", Limits())
    assert torch.equal(digit, mnist_style(Image.open(io.BytesIO(photo))))
    with pytest.raises(InputError) as refused:
        prepare(photo, "image/jpeg", Limits(max_bytes=len(photo) - 1))
    assert refused.value.status == 413
    assert "Scale the image down" in refused.value.message
    assert "raise the limit with mnist-lit serve --max_bytes" in refused.value.message


def test_a_small_file_of_many_pixels_is_prepared_off_the_event_loop() -> None:
    drawn = encoded(draw_one((120, 120), dark_on_light=True))
    blank_photo = encoded(Image.new("L", PHONE, 255))
    assert len(blank_photo) < 64 * 1024  # a few kilobytes, 12 megapixels
    assert quick_to_prepare(drawn, "image/png")
    assert quick_to_prepare(json.dumps([[0] * 28] * 28).encode(), "application/json")
    assert not quick_to_prepare(blank_photo, "image/png")
    assert not quick_to_prepare(phone_photo(), "image/jpeg")
