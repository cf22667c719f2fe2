"""Load test of ``mnist-lit serve`` on loopback: images per second and p50/p99 latency at
concurrency 1 and 16, with batching on and off, for JSON 28x28 arrays and for PNGs like
the drawing page sends; and the CPU time an idle server uses.

    python benchmarks/serve.py --data-dir data --model cross_entropy=A.ckpt --model quadratic=B.ckpt

Each variant is its own ``mnist-lit serve`` on a free loopback port, run from this tree or,
with ``--server NAME=DIR``, from the package in each DIR, to compare versions in one run. The
load comes from this process: ``concurrency`` keep-alive connections, each sending its next
request when the last is answered, over MNIST's test images. Every cell is bounded by
``--requests`` and by ``--seconds``; nothing but 127.0.0.1 is ever sent anything. The
server's CPU time is read from /proc (Linux) for all its processes together: per image under
load and, after the cells, over ``--idle-seconds`` without requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.run import machine as training_machine  # noqa: E402
from mnist_lit.data.datamodule import download_mnist  # noqa: E402
from mnist_lit.data.raw_files import read_split  # noqa: E402

VARIANTS = {  # name -> mnist-lit serve options
    "on (16, 2 ms)": ["--max_batch_size", "16", "--batch_timeout", "0.002"],
    "off": ["--max_batch_size", "1"],
}
CONCURRENCY = (1, 16)
WARM_UP = 100  # requests per cell before timing
STARTUP_S = 180
SETTLE_S = 2.0  # after the last cell, before the idle CPU time is measured
TARGET_P99_MS = 20.0  # at concurrency 1
TARGET_IMAGES_PER_S = 500.0  # at concurrency 16


@dataclass(frozen=True)
class Cell:
    server: str
    variant: str
    payload: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    server_cpu_s: float | None
    load: float

    @property
    def images_per_s(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1e3


def payloads(data_dir: str, count: int) -> dict[str, tuple[str, list[bytes]]]:
    """Request bodies from the first ``count`` test images: JSON arrays, and PNGs of 280x280
    dark digits on white, as the drawing page's canvas is."""
    download_mnist(data_dir)
    images, _ = read_split(data_dir, train=False)
    arrays = [image.numpy() for image in images[:count]]
    as_json = [json.dumps(array.tolist()).encode() for array in arrays]
    as_png = []
    for array in arrays:
        drawn = Image.fromarray(255 - array).resize((280, 280), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        drawn.save(buffer, "PNG")
        as_png.append(buffer.getvalue())
    return {"JSON 28x28": ("application/json", as_json), "PNG 280x280": ("image/png", as_png)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(
    models: Sequence[str], options: Sequence[str], log: Path, source: Path
) -> Iterator[tuple[int, int]]:
    """``mnist-lit serve`` from the package in ``source`` on a free loopback port: yields
    (port, pid) once healthy. ``models`` are NAME=PATH with absolute paths."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mnist_lit",  # from the current folder, which -m puts first on sys.path
        "serve",
        *(f"--model={m}" for m in models),
        "--port",
        str(port),
        *options,
    ]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=source, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + STARTUP_S
            while not healthy(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"mnist-lit serve did not start; see {log}")
                time.sleep(0.2)
            yield port, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def healthy(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/health"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
        return response.status == 200
    return False


def cpu_seconds(pgid: int) -> float | None:
    """User and system CPU time of every process in the group ``pgid`` so far (Linux)."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    try:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / ticks


def idle_cpu_seconds(pgid: int, seconds: float) -> float | None:
    """CPU time used by the process group ``pgid`` over ``seconds`` without requests."""
    time.sleep(SETTLE_S)
    before = cpu_seconds(pgid)
    time.sleep(seconds)
    after = cpu_seconds(pgid)
    return None if before is None or after is None else after - before


async def _client(
    port: int,
    content_type: str,
    bodies: list[bytes],
    start: int,
    quota: list[int],
    deadline: float,
    latencies: list[float] | None,
) -> int:
    """One keep-alive connection sending requests until the quota or the time is used up;
    returns its count of answers other than 200."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors, i = 0, start
    try:
        while quota[0] > 0 and time.perf_counter() < deadline:
            quota[0] -= 1
            body = bodies[i % len(bodies)]
            i += 1
            head = (
                f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}"
                f"\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            sent = time.perf_counter()
            writer.write(head + body)
            status, length = _status_and_length(await reader.readuntil(b"\r\n\r\n"))
            await reader.readexactly(length)
            if latencies is not None:
                latencies.append(time.perf_counter() - sent)
            errors += status != 200
    finally:
        writer.close()
    return errors


def _status_and_length(head: bytes) -> tuple[int, int]:
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length")
    )
    return int(lines[0].split()[1]), length


async def _load(
    port: int,
    content_type: str,
    bodies: list[bytes],
    concurrency: int,
    requests: int,
    seconds: float,
    latencies: list[float] | None,
) -> tuple[int, float]:
    quota = [requests]
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(
            _client(port, content_type, bodies, k * 997, quota, started + seconds, latencies)
            for k in range(concurrency)
        )
    )
    return sum(errors), time.perf_counter() - started


def measure(
    port: int,
    pgid: int,
    server: str,
    variant: str,
    payload: str,
    content_type: str,
    bodies: list[bytes],
    concurrency: int,
    requests: int,
    seconds: float,
) -> Cell:
    asyncio.run(_load(port, content_type, bodies, concurrency, WARM_UP, seconds, None))
    load = os.getloadavg()[0]
    latencies: list[float] = []
    cpu_before = cpu_seconds(pgid)
    errors, elapsed = asyncio.run(
        _load(port, content_type, bodies, concurrency, requests, seconds, latencies)
    )
    cpu_after = cpu_seconds(pgid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Cell(
        server, variant, payload, concurrency, len(latencies), elapsed, latencies, errors, cpu, load
    )


def table(cells: Sequence[Cell]) -> str:
    lines = [
        "| server | batching | payload | concurrency | requests | images/s | p50 | p99 | server "
        "CPU per image | load before |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        cpu = "n/a" if c.server_cpu_s is None else f"{c.server_cpu_s / c.requests * 1e3:.2f} ms"
        errors = f" ({c.errors} errors)" if c.errors else ""
        lines.append(
            f"| {c.server} | {c.variant} | {c.payload} | {c.concurrency} | {c.requests}{errors} | "
            f"{c.images_per_s:.0f} | {c.percentile(50):.1f} ms | {c.percentile(99):.1f} ms | "
            f"{cpu} | {c.load:.1f} |"
        )
    return "\n".join(lines)


def idle_table(idle: dict[tuple[str, str], float | None], seconds: float) -> str:
    lines = [f"| server | batching | CPU time over {seconds:g} idle seconds |", "|---|---|---|"]
    for (server, variant), cpu in idle.items():
        lines.append(f"| {server} | {variant} | {'n/a' if cpu is None else f'{cpu:.2f} s'} |")
    return "\n".join(lines)


def targets(cells: Sequence[Cell]) -> str:
    lines = []
    for c in cells:
        if c.concurrency == 1:
            met = c.percentile(99) < TARGET_P99_MS
            lines.append(
                f"- p99 under {TARGET_P99_MS:.0f} ms at concurrency 1, {c.server}, batching "
                f"{c.variant}, {c.payload}: {c.percentile(99):.1f} ms, "
                f"{'met' if met else 'missed'}"
            )
        else:
            met = c.images_per_s >= TARGET_IMAGES_PER_S
            lines.append(
                f"- at least {TARGET_IMAGES_PER_S:.0f} images/s at concurrency "
                f"{c.concurrency}, {c.server}, batching {c.variant}, {c.payload}: "
                f"{c.images_per_s:.0f}, {'met' if met else 'missed'}"
            )
    return "\n".join(lines)


def machine() -> str:
    import litserve

    return f"{training_machine()}, LitServe {litserve.__version__}"


def _named_path(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (NAME, absolute PATH)."""
    name, _, path = spec.partition("=")
    return name, Path(path).resolve()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder holding MNIST/raw/")
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="checkpoints to serve, as for mnist-lit serve",
    )
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per cell")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per cell")
    parser.add_argument("--images", type=int, default=1000, help="test images to cycle through")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--server",
        action="append",
        metavar="NAME=DIR",
        help="run mnist-lit serve from the package in DIR (a checkout), named NAME in the "
        "tables; repeat it to compare versions (default: this tree)",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="idle time measured per server"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("outputs/benchmarks"),
        help="where the servers' logs go",
    )
    args = parser.parse_args(argv)
    bodies = payloads(args.data_dir, args.images)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    sources = dict(_named_path(spec) for spec in args.server or [f"this tree={REPO}"])
    models = [f"{name}={path}" for name, path in map(_named_path, args.model)]
    cells, idle = [], {}
    for variant in args.variants:
        for name, source in sources.items():
            log = args.work_dir / f"serve-{len(idle)}.log"
            with server(models, VARIANTS[variant], log, source) as (port, pgid):
                for payload, (content_type, examples) in bodies.items():
                    for concurrency in CONCURRENCY:
                        cell = measure(
                            port,
                            pgid,
                            name,
                            variant,
                            payload,
                            content_type,
                            examples,
                            concurrency,
                            args.requests,
                            args.seconds,
                        )
                        print(
                            f"{name}, batching {variant}, {payload}, concurrency "
                            f"{concurrency}: {cell.images_per_s:.0f} images/s, p50 "
                            f"{cell.percentile(50):.1f} ms, p99 {cell.percentile(99):.1f} ms",
                            flush=True,
                        )
                        cells.append(cell)
                idle[name, variant] = idle_cpu_seconds(pgid, args.idle_seconds)
    names = ", ".join(name for name, _ in map(_named_path, args.model))
    print(
        f"\n{machine()}; models {names}; up to {args.requests} requests or "
        f"{args.seconds:g} s per cell\n"
    )
    print(table(cells))
    print()
    print(idle_table(idle, args.idle_seconds))
    print()
    print(targets(cells))


if __name__ == "__main__":
    main()
