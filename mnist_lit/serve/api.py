"""The models in LitServe's inference workers: loaded once per worker, run on batches.

Each request arrives already checked and prepared (:mod:`~mnist_lit.serve.middleware`): a
28x28 uint8 image. Every model predicts every image, and the answer holds the image the
models saw and, per model, the digit and the ten probabilities.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import litserve as ls
import torch
from litserve.loops import BatchedLoop
from litserve.loops.base import _SENTINEL_VALUE, _StopLoopError
from starlette.responses import Response
from torch import Tensor

from mnist_lit.inference import PixelClassifier, load_trained_model
from mnist_lit.serve.inputs import forwarded_image

# One thread per worker: a batch of small images gains nothing from more, and the HTTP
# server's process needs the other cores. More throughput comes from more workers.
WORKER_THREADS = 1


class DigitAPI(ls.LitAPI):
    """Predicts a 28x28 image with every named model.

    Args:
        checkpoints: model name -> checkpoint path, in the order the answer lists them.
        max_batch_size: requests run together at most; 1 turns batching off.
        batch_timeout: seconds to wait for more requests once one has come.
    """

    def __init__(
        self, checkpoints: dict[str, Path], max_batch_size: int = 16, batch_timeout: float = 0.002
    ) -> None:
        loop = BlockingBatchedLoop() if max_batch_size > 1 else "auto"
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, loop=loop)
        self.checkpoints = dict(checkpoints)
        self.models: dict[str, PixelClassifier] = {}

    def setup(self, device: str) -> None:
        torch.set_num_threads(WORKER_THREADS)
        for name, path in self.checkpoints.items():
            self.models[name] = load_trained_model(path, f"--model {name}={path}").classifier

    # No annotation on `request`: LitServe reads it to choose how FastAPI parses the body;
    # without one, the body's JSON arrives, as PreparedInputs made it.
    def decode_request(self, request, **kwargs: Any) -> Tensor:
        return forwarded_image(request)

    def batch(self, inputs: list[Tensor]) -> Tensor:
        return torch.stack(inputs)

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
    """LitServe's batched loop, collecting each batch without polling.

    LitServe's own loop asks the request queue for work every millisecond, idle or not (a
    round trip to the queue's manager process each time), which kept about a tenth of a
    core busy on an idle server. This one blocks until a batch's first request comes, then
    waits up to ``batch_timeout`` for the batch to fill, and takes every request queued by
    then, up to ``max_batch_size``.
    """

    idle_wait_s = 1.0  # how often the loop looks for its stop signal while idle

    def get_batch_requests(
        self, lit_api: ls.LitAPI, request_queue: Queue, transport: Any
    ) -> tuple[list, list]:
        batch: list[tuple[int, str, Any]] = []
        timed_out: list[tuple[int, str]] = []
        deadline = None
        while len(batch) + len(timed_out) < lit_api.max_batch_size:
            try:
                if deadline is None:
                    item = request_queue.get(timeout=self.idle_wait_s)
                    deadline = time.monotonic() + lit_api.batch_timeout
                else:
                    item = request_queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except Empty:
                break
            if item == _SENTINEL_VALUE:
                raise _StopLoopError()
            response_queue_id, uid, queued_at, request = item
            if _waited_too_long(lit_api, queued_at):
                timed_out.append((response_queue_id, uid))
            else:
                batch.append((response_queue_id, uid, request))
        return batch, timed_out


def _waited_too_long(lit_api: ls.LitAPI, queued_at: float) -> bool:
    """A request queued for longer than the server's ``timeout``, answered 504 unrun."""
    timeout = lit_api.request_timeout
    return timeout not in (None, False, -1) and time.monotonic() - queued_at > timeout
