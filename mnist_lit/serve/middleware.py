"""ASGI middleware in front of LitServe's app, in each HTTP server process.

:class:`PreparedInputs` checks and prepares every ``POST /predict`` before it is queued for
a worker: a refused request is answered here, with its 4xx and a message, so it never joins
a batch (LitServe fails a whole batch when one request in it fails), and decoding images
runs beside the workers rather than in them. :class:`DrawingPage` serves the page, and
:class:`ServerInfo` says what the server does.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist_lit.serve.inputs import (
    InputError,
    Limits,
    check_media_type,
    forwarded_body,
    prepare,
    too_large,
)

PREDICT_PATH = "/predict"
INFO_PATH = "/info"
# Bodies this small are prepared on the event loop; larger ones in a thread, so that a big
# image does not hold up the requests around it.
INLINE_BYTES = 64 * 1024


class _Disconnected(Exception):
    """The client went away while sending its body."""


class PreparedInputs:
    """Turns the body of ``POST /predict`` into the prepared 28x28 image
    (:func:`~mnist_lit.serve.inputs.forwarded_body`), or answers the client with
    ``{"detail": message}`` and a 4xx status."""

    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._prepared_body(scope, receive)
        except InputError as error:
            response = JSONResponse({"detail": error.message}, status_code=error.status)
            await response(scope, receive, send)
            return
        except _Disconnected:
            return
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"content-type", b"content-length", b"transfer-encoding")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await self.app({**scope, "headers": headers}, _replay(body, receive), send)

    async def _prepared_body(self, scope: Scope, receive: Receive) -> bytes:
        headers = Headers(scope=scope)
        kind = check_media_type(headers.get("content-type"))
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise too_large(int(declared), self.limits)  # refused before reading it
        body = await _read_body(receive, self.limits)
        if len(body) <= INLINE_BYTES:
            digit = prepare(body, kind, self.limits)
        else:
            digit = await run_in_threadpool(prepare, body, kind, self.limits)
        return forwarded_body(digit)


async def _read_body(receive: Receive, limits: Limits) -> bytes:
    """The request body, read no further than ``limits.max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits.max_bytes:
            raise too_large(size, limits)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class DrawingPage:
    """Serves the page, ``static/index.html``, at ``/`` and its files at ``/static/...``,
    from the installed package."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.files = StaticFiles(packages=[("mnist_lit.serve", "static")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/":
            await self._file({**scope, "path": "/index.html"}, receive, send)
        elif path.startswith("/static/"):
            await self._file({**scope, "path": path.removeprefix("/static")}, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _file(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.files(scope, receive, send)
        except HTTPException as error:  # no such file (404), not GET or HEAD (405)
            response = PlainTextResponse(error.detail, error.status_code, error.headers)
            await response(scope, receive, send)


class ServerInfo:
    """Answers ``GET /info`` with ``info`` (the models, the limits on a request, batching
    and workers), in place of LitServe's own, which lists LitServe's settings."""

    def __init__(self, app: ASGIApp, info: dict[str, Any]) -> None:
        self.app = app
        self.info = JSONResponse(info)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == INFO_PATH and scope["method"] == "GET":
            await self.info(scope, receive, send)
        else:
            await self.app(scope, receive, send)
