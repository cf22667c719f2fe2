"""The models in LitServe's inference workers: loaded once per worker, run on batches of
images already checked and prepared (:mod:`~mnist_lit.serve.middleware`)."""

from __future__ import annotations

import json
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import litserve as ls
import torch
from litserve.loops import BatchedLoop
from starlette.responses import Response
from torch import Tensor

from mnist_lit.runs.inference import PixelClassifier, load_trained_model
from mnist_lit.serve.inputs import forwarded_image


class DigitAPI(ls.LitAPI):
    """Predicts a 28x28 uint8 image with every model of ``checkpoints`` (name -> path, in
    the order the answer lists them): the answer holds the image the models saw and, per
    model, the digit and the ten probabilities. ``max_batch_size`` 1 turns batching off."""

    def __init__(
        self, checkpoints: dict[str, Path], max_batch_size: int, batch_timeout: float
    ) -> None:
        loop = BlockingBatchedLoop() if max_batch_size > 1 else "auto"
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, loop=loop)
        self.checkpoints = dict(checkpoints)
        self.models: dict[str, PixelClassifier] = {}

    def setup(self, device: str) -> None:
        # One thread per worker: a batch of small images gains nothing from more, and the HTTP
        # server's process needs the other cores. More throughput comes from more workers.
        torch.set_num_threads(1)
        for name, path in self.checkpoints.items():
            self.models[name] = load_trained_model(path, f"--model {name}={path}").classifier

    # No annotation on `request`: LitServe reads it to choose how FastAPI parses the body;
    # without one, the body's JSON arrives, as PreparedInputs made it.
    def decode_request(self, request, **kwargs: Any) -> Tensor:
        return forwarded_image(request)

    @torch.inference_mode()
    def predict(self, x: Tensor, **kwargs: Any) -> list[dict[str, Any]] | dict[str, Any]:
        """A batch ``(B, 28, 28)`` -> one answer per image; one image (batching off) -> its
        answer."""
        images = x if x.ndim == 3 else x.unsqueeze(0)
        probabilities = {name: model(images)[1] for name, model in self.models.items()}
        answers = [
            {
                "image": image.tolist(),
                "models": {
                    name: {"digit": int(probs[i].argmax()), "probabilities": probs[i].tolist()}
                    for name, probs in probabilities.items()
                },
            }
            for i, image in enumerate(images)
        ]
        return answers if x.ndim == 3 else answers[0]

    # JSON made here, once, by the json module: returned as a Response, FastAPI passes it
    # on untouched instead of walking the lists of the answer with its own encoder. Not
    # annotated, as LitServe would take the annotation for FastAPI's response model.
    def encode_response(self, output, **kwargs: Any):
        return Response(json.dumps(output, separators=(",", ":")), media_type="application/json")


class BlockingBatchedLoop(BatchedLoop):
    """LitServe's batched loop, waiting for each batch's first request instead of polling.

    LitServe's own loop asks the request queue for work every millisecond, idle or not (a
    round trip to the queue's manager process each time), which keeps a fifth of a core busy
    on an idle server (docs/serving.md). This one blocks until a request comes, then has
    LitServe collect the batch from it as usual (for ``batch_timeout``, up to
    ``max_batch_size``). It relies on ``BatchedLoop`` asking ``get_batch_requests`` for each
    batch, and on LitServe's collection reading the queue only through ``get`` and
    ``get_nowait``; ``tests/test_serve_parts.py`` checks both against LitServe's own loop.
    """

    idle_wait_s = 1.0  # the longest wait on an idle queue, as in LitServe's unbatched loop

    def get_batch_requests(
        self, lit_api: ls.LitAPI, request_queue: Queue, transport: Any
    ) -> tuple[list, list]:
        try:
            first = request_queue.get(timeout=self.idle_wait_s)
        except Empty:
            return [], []
        return super().get_batch_requests(lit_api, _FirstThen(first, request_queue), transport)


class _FirstThen:
    """The request queue with ``first`` taken already: ``get`` gives it, then the queue's."""

    def __init__(self, first: Any, queue: Queue) -> None:
        self.first, self.queue = [first], queue

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self.first.pop() if self.first else self.queue.get(block, timeout)

    def get_nowait(self) -> Any:
        return self.get(block=False)
