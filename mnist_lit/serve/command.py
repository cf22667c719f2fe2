"""``mnist-lit serve``: its options, and the server from checkpoints to a listening port."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from jsonargparse import Namespace

from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.runs.inference import TrainedModel, load_trained_model
from mnist_lit.runs.parser import OneMessageParser
from mnist_lit.runs.quiet import quiet
from mnist_lit.serve.inputs import Limits

if TYPE_CHECKING:
    from litserve import LitServer

HELP = "Serve checkpoints over HTTP (LitServe): POST /predict, and a page to draw digits on."
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
READY_WITHIN_S = 300  # how long the announcement waits for the workers
# The numeric options: name, default (its type is the option's), help.
_NUMBERS = (
    ("--port", 8000, "1024 to 65535"),
    ("--max_batch_size", 16, "requests that a worker runs together at most; 1 turns batching off"),
    ("--batch_timeout", 0.002, "seconds a worker waits for more requests to batch"),
    ("--workers", 1, "inference processes, each with every model"),
    ("--max_bytes", Limits().max_bytes, "largest request body in bytes"),
    ("--max_pixels", Limits().max_pixels, "largest image, width x height, in pixels"),
)


def build_parser() -> OneMessageParser:
    parser = OneMessageParser(
        prog="mnist-lit serve",
        description=HELP + " Each request is one image, a PNG or JPEG or a JSON 28x28 array, "
        "prepared as `mnist-lit predict` prepares your own digits; the answer gives every "
        "model's digit and probabilities.",
        formatter_class=argparse.HelpFormatter,  # the defaults are in the help texts
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a name and a .ckpt file written by `mnist-lit fit`; repeat it to compare "
        "models, e.g. --model ce=A.ckpt --model quadratic=B.ckpt",
    )
    parser.add_argument(
        "--host",
        choices=("127.0.0.1", "0.0.0.0", "::"),  # what LitServe binds to
        default="127.0.0.1",
        help="127.0.0.1: this machine only; 0.0.0.0 or ::: every network (default: 127.0.0.1)",
    )
    for option, default, help_text in _NUMBERS:
        parser.add_argument(
            option, type=type(default), default=default, help=f"{help_text} (default: {default})"
        )
    return parser


def parse_args(argv: Sequence[str]) -> Namespace:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if not 1024 <= args.port <= 65535:
        parser.error(f"--port must be between 1024 and 65535, got {args.port}")
    for option in ("max_batch_size", "workers", "max_bytes", "max_pixels"):
        if args[option] < 1:
            parser.error(f"--{option} must be at least 1, got {args[option]}")
    if args.batch_timeout < 0:
        parser.error(f"--batch_timeout must be 0 or more, got {args.batch_timeout}")
    return args


def named_checkpoints(values: Sequence[str]) -> dict[str, Path]:
    """``["ce=a.ckpt", ...]`` -> ``{"ce": Path("a.ckpt"), ...}``, names checked."""
    checkpoints: dict[str, Path] = {}
    for value in values:
        name, equals, path = value.partition("=")
        if not equals or not path:
            raise MnistLitError(
                f"--model {value}: give a name and a checkpoint, NAME=PATH, e.g. "
                "--model ce=logs/cross_entropy/version_0/checkpoints/last.ckpt."
            )
        if not _NAME.fullmatch(name):
            raise MnistLitError(
                f"--model {value}: a name is letters, digits, '_', '.' or '-', got {name!r}."
            )
        if name in checkpoints:
            raise MnistLitError(f"--model {value}: the name {name} is given twice.")
        checkpoints[name] = Path(path)
    return checkpoints


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise MnistLitError(
                f"--port {port}: cannot listen on {host}:{port} ({error.strerror}). Choose "
                "another --port, or stop what uses it."
            ) from None


def announce_when_ready(url: str, names: Sequence[str]) -> None:
    """Print the page's address once the server answers ``/health``."""
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}health", timeout=1) as response,
        ):
            if response.status == 200:
                print(f"mnist-lit serve: ready, {', '.join(names)} at {url}", flush=True)
                return
        time.sleep(0.1)


@contextlib.contextmanager
def _sigterm_stops_gracefully() -> Iterator[None]:
    """SIGTERM (``kill``) shuts down workers and HTTP servers as Ctrl+C does."""
    main_process = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main_process:  # an HTTP server forked from here: SIGTERM's default
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str]) -> None:
    """Run ``mnist-lit serve`` until Ctrl+C or SIGTERM; a user's mistake ends in a
    :class:`MnistLitError` before anything starts."""
    args = parse_args(argv)
    checkpoints = named_checkpoints(args.model)
    # Every checkpoint is loaded once here, so that a bad one is one message, not a
    # worker's traceback; the workers load their own copies.
    models = {
        name: load_trained_model(path, f"--model {name}={path}")
        for name, path in checkpoints.items()
    }
    check_port_free(args.host, args.port)
    server = build_server(models, args)
    local = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(args.host, args.host)
    url = f"http://{local}:{args.port}/"
    threading.Thread(target=announce_when_ready, args=(url, list(models)), daemon=True).start()
    # LitServe's notices (its Swagger address names 0.0.0.0 whatever the host) are noise.
    with quiet({"litserve": logging.WARNING}), _sigterm_stops_gracefully():
        server.run(host=args.host, port=args.port, generate_client_file=False, log_level="warning")


def build_server(models: dict[str, TrainedModel], args: Namespace) -> LitServer:
    """The LitServer for ``models``, with the page and the input checks in front."""
    try:
        import litserve as ls
    except ImportError as error:
        raise MnistLitError(
            f"mnist-lit serve needs LitServe, which is not installed ({first_line(error)}): "
            "pip install 'mnist-lit[serve]'."
        ) from error

    from mnist_lit.serve.api import DigitAPI
    from mnist_lit.serve.middleware import PageAndInfo, PreparedInputs

    api = DigitAPI(
        {name: model.path for name, model in models.items()},
        max_batch_size=args.max_batch_size,
        batch_timeout=args.batch_timeout,
    )
    limits = Limits(max_bytes=args.max_bytes, max_pixels=args.max_pixels)
    info = {
        "models": {name: model.describe() for name, model in models.items()},
        "limits": dataclasses.asdict(limits),
        "max_batch_size": args.max_batch_size,
        "batch_timeout": args.batch_timeout,
        "workers": args.workers,
    }
    return ls.LitServer(
        api,
        accelerator="cpu",
        workers_per_device=args.workers,
        middlewares=[(PreparedInputs, {"limits": limits}), (PageAndInfo, {"info": info})],
    )
