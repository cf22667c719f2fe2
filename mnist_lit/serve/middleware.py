"""ASGI middleware in front of LitServe's app, in each HTTP server process.

:class:`PreparedInputs` checks and prepares every ``POST /predict`` before it is queued for
a worker: a refused request is answered here, with its 4xx and a message, so it never joins
a batch (LitServe fails a whole batch when one request in it fails), and decoding images
runs beside the workers rather than in them. :class:`PageAndInfo` serves the page and says
what the server does.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist_lit.serve.inputs import (
    InputError,
    Limits,
    check_media_type,
    forwarded_body,
    prepare,
    quick_to_prepare,
    too_large,
)


class PreparedInputs:
    """Turns the body of ``POST /predict`` into the prepared 28x28 image
    (:func:`~mnist_lit.serve.inputs.forwarded_body`), or answers the client with
    ``{"detail": message}`` and a 4xx status."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._prepared_body(scope, receive)
        except InputError as error:
            response = JSONResponse({"detail": error.message}, status_code=error.status)
            await response(scope, receive, send)
            return
        except ClientDisconnect:
            return
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"content-type", b"content-length", b"transfer-encoding")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await self.app({**scope, "headers": headers}, _replay(body, receive), send)

    async def _prepared_body(self, scope: Scope, receive: Receive) -> bytes:
        request = Request(scope, receive)
        kind = check_media_type(request.headers.get("content-type"))
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise too_large(int(declared), self.limits)  # refused before reading it
        body = bytearray()
        async for chunk in request.stream():  # read no further than the limit
            body += chunk
            if len(body) > self.limits.max_bytes:
                raise too_large(len(body), self.limits)
        if quick_to_prepare(bytes(body), kind):
            digit = prepare(bytes(body), kind, self.limits)
        else:
            digit = await run_in_threadpool(prepare, bytes(body), kind, self.limits)
        return forwarded_body(digit)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the client sends next."""
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return messages.pop() if messages else await receive()

    return replay


class PageAndInfo:
    """Serves the page, ``static/index.html``, at ``/`` and its files at ``/static/...``,
    from the installed package; answers ``GET /info`` with ``info`` (the models, the limits
    on a request, batching and workers), in place of LitServe's own, which lists LitServe's
    settings."""

    def __init__(self, app: ASGIApp, info: dict[str, Any]) -> None:
        self.app = app
        self.files = StaticFiles(packages=[("mnist_lit.serve", "static")])
        self.info = JSONResponse(info)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path == "/info" and scope["method"] == "GET":
            await self.info(scope, receive, send)
        elif path == "/" or path.startswith("/static/"):
            name = "/index.html" if path == "/" else path.removeprefix("/static")
            try:
                await self.files({**scope, "path": name}, receive, send)
            except HTTPException as error:  # no such file (404), not GET or HEAD (405)
                response = PlainTextResponse(error.detail, error.status_code, error.headers)
                await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)
