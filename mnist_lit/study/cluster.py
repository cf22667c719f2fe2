"""Where the study's fits run: an embedded Dask ``LocalCluster`` on this machine
(``--workers N``), or a running Dask cluster that this process joins (``--scheduler``).

The local cluster listens on loopback only, its dashboard included (Dask's dashboards bind
every interface by default). With one worker it runs in this process, in a thread: no
process to start, so a quick study stays quick.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mnist_lit.errors import MnistLitError, first_line

if TYPE_CHECKING:
    from distributed import Client

# How long joining a scheduler may take before it is taken as unreachable.
CONNECT_SECONDS = 10
LOOPBACK = "127.0.0.1"
# Each fit takes one thread; a worker's other libraries take none either.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def has_dashboard() -> bool:
    """Whether Dask can serve its dashboard here (it needs Bokeh, which is optional)."""
    return importlib.util.find_spec("bokeh") is not None


@contextlib.contextmanager
def open_client(workers: int, scheduler: str | None) -> Iterator[tuple[Client, int]]:
    """A Dask client, and how many fits its cluster runs at once."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        client = _join(scheduler)
        try:
            yield client, max(1, sum(w["nthreads"] for w in _workers(client)))
        finally:
            client.close()
        return
    # One worker runs in this process and talks to the scheduler in memory; several are
    # processes on loopback. Every HTTP server (the dashboards, or Dask's health and
    # metrics pages without Bokeh) binds loopback too: Dask's default is every interface.
    network = {"host": LOOPBACK, "env": ONE_THREAD} if workers > 1 else {}
    with (
        _dask_logs_quiet(),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=workers > 1,
            dashboard_address=f"{LOOPBACK}:0",
            worker_dashboard_address=f"{LOOPBACK}:0",
            **network,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client, workers


def _workers(client: Client) -> list[dict]:
    return list(client.scheduler_info(n_workers=-1)["workers"].values())


def _join(address: str) -> Client:
    from distributed import Client

    try:
        return Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as error:
        raise MnistLitError(
            f"--scheduler {address}: no Dask scheduler answered within {CONNECT_SECONDS} s "
            f"({first_line(error)}). Start one there with `dask scheduler` and its workers "
            "with `dask worker ADDRESS`, give its address as tcp://HOST:PORT, or leave out "
            "--scheduler to run on this machine (see docs/distributed.md)."
        ) from None


def dashboard_line(client: Client) -> str | None:
    """Where the dashboard is, when this installation can serve one."""
    link = client.dashboard_link if has_dashboard() else None
    return f"Dask dashboard: {link}" if link else None


@contextlib.contextmanager
def _dask_logs_quiet() -> Iterator[None]:
    """Without Dask's notices about its own start and stop (its warnings stay)."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
