"""Where the study's fits run: an embedded Dask ``LocalCluster`` on this machine
(``--workers N``), a running Dask cluster that this process joins (``--scheduler``), or
workers started as SLURM jobs by dask-jobqueue (``--slurm-jobs N``).

The local cluster listens on loopback only, its dashboard included (Dask's dashboards bind
every interface by default). With one worker there is no cluster: the fits run in this
process, one after another.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shlex
import shutil
import signal
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING

import torch

from mnist_lit.data.raw_files import keep_in_memory
from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.runs.fit import Fit, FitResult, fit
from mnist_lit.runs.quiet import NOISE_AND_SRUN, quiet

if TYPE_CHECKING:
    from distributed import Client

# How long joining a scheduler may take before it is taken as unreachable.
CONNECT_SECONDS = 10
LOOPBACK = "127.0.0.1"
# Dask's nannies start each worker with glibc told to give memory back above 64 KiB
# (MALLOC_TRIM_THRESHOLD_), which makes torch's CPU training half again slower; unset, the
# worker allocates as any process does. (Dask already gives its workers one OpenMP thread.)
GLIBC_DEFAULTS = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def fit_on_worker(run: Fit) -> FitResult:
    """A study's fit, as a Dask task: on one CPU thread, MNIST's files kept in memory for
    the worker's later fits."""
    keep_in_memory()
    torch.set_num_threads(1)
    with quiet(ignore=NOISE_AND_SRUN):  # a worker on a login node: no srun hint per fit
        return fit(run)


class InProcess:
    """``--workers 1``: the fits one at a time in this process, each when the study waits
    for a result. No cluster to start, so the quick study stays quick, and Ctrl-C stops the
    running fit at once."""

    slots = 1
    dashboard: str | None = None

    def __init__(self) -> None:
        self.waiting: deque[tuple[Future[FitResult], Fit]] = deque()

    def submit(self, run: Fit) -> Future[FitResult]:
        future: Future[FitResult] = Future()
        self.waiting.append((future, run))
        return future

    def finished(self, pending: set[Future[FitResult]]) -> set[Future[FitResult]]:
        future, run = self.waiting.popleft()
        try:
            future.set_result(fit_on_worker(run))
        except Exception as error:  # the study names the fit that raised
            future.set_exception(error)
        return {future}


class OnDask:
    """The fits as tasks of a Dask cluster, as many at once as its workers have threads."""

    def __init__(self, client: Client, slots: int) -> None:
        self.executor = client.get_executor(pure=False)
        self.slots = slots
        # Dask serves its dashboard only with Bokeh, which is optional.
        link = client.dashboard_link if importlib.util.find_spec("bokeh") else None
        self.dashboard = f"Dask dashboard: {link}" if link else None

    def submit(self, run: Fit) -> Future[FitResult]:
        return self.executor.submit(fit_on_worker, run)

    def finished(self, pending: set[Future[FitResult]]) -> set[Future[FitResult]]:
        return wait(pending, return_when=FIRST_COMPLETED).done


Engine = InProcess | OnDask


@contextlib.contextmanager
def open_engine(
    workers: int, scheduler: str | None, slurm_jobs: int = 0, interface: str = "lo"
) -> Iterator[Engine]:
    """Where the fits run: this process, a local cluster of ``workers`` processes, the
    cluster of ``scheduler``, or ``slurm_jobs`` SLURM jobs listening on ``interface``."""
    if slurm_jobs:
        with _slurm_cluster(slurm_jobs, interface) as client:
            yield OnDask(client, slurm_jobs)
        return
    if scheduler is None and workers == 1:
        yield InProcess()
        return
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, ValueError) as error:
            raise MnistLitError(
                f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_SECONDS} "
                f"s ({first_line(error)}). Start one there with `dask scheduler` and its "
                "workers with `dask worker ADDRESS`, give its address as tcp://HOST:PORT, or "
                "leave out --scheduler to run on this machine (see docs/distributed.md)."
            ) from None
        with client:
            if not client.nthreads():  # else the study would wait, saying nothing
                print(
                    f"--scheduler {scheduler} has no workers yet: waiting for them (start "
                    f"them with `dask worker {scheduler}`; Ctrl-C stops the wait).",
                    flush=True,
                )
                client.wait_for_workers(1)
            yield OnDask(client, max(1, sum(client.nthreads().values())))
        return
    # Every HTTP server (the dashboards, or Dask's health and metrics pages without Bokeh)
    # binds loopback too: Dask's default is every interface. Dask's own logs stay quiet: a
    # fit that fails, or whose workers all died, is the study's one message; a stop (Ctrl-C)
    # would otherwise print each worker's complaint that its scheduler went away.
    with (
        dask.config.set(GLIBC_DEFAULTS),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            host=LOOPBACK,
            dashboard_address=f"{LOOPBACK}:0",
            worker_dashboard_address=f"{LOOPBACK}:0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_ignore_ctrl_c)
        yield OnDask(client, workers)


@contextlib.contextmanager
def _slurm_cluster(jobs: int, interface: str) -> Iterator[Client]:
    """``jobs`` Dask workers of one thread each, each a SLURM job submitted by dask-jobqueue
    (its resources from Dask's ``jobqueue.slurm`` config), the scheduler in this process.
    Every server, the dashboards included, listens on ``interface`` only: on this machine
    the scheduler's, on each node its worker's (found there when the job starts)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as error:
        raise MnistLitError(
            f"--slurm-jobs needs dask-jobqueue, which is not installed ({error}): "
            "pip install 'mnist-lit[slurm]'."
        ) from None
    if shutil.which("sbatch") is None:
        raise MnistLitError(
            "--slurm-jobs: SLURM's sbatch is not on the PATH; run the study on a machine that "
            "submits SLURM jobs (a login node)."
        )
    import dask
    from distributed import Client
    from distributed.utils import get_ip_interface

    try:
        host = get_ip_interface(interface)
    except ValueError as error:
        raise MnistLitError(f"--slurm-interface {interface}: {error}.") from None
    # Dask's worker command opens its dashboard on every interface unless told an address.
    find = f"from distributed.utils import get_ip_interface as ip; print(ip({interface!r}))"
    worker_host = f"$({shlex.quote(sys.executable)} -c {shlex.quote(find)})"
    config = dask.config.get("jobqueue.slurm", {})
    with (
        dask.config.set(GLIBC_DEFAULTS),
        quiet({"distributed": logging.CRITICAL, "dask_jobqueue": logging.CRITICAL}),
        SLURMCluster(
            cores=1,
            processes=1,
            memory=config.get("memory") or "4GB",
            interface=interface,
            scheduler_options={"interface": interface, "dashboard_address": f"{host}:0"},
            worker_extra_args=[
                *(config.get("worker-extra-args") or []),
                "--dashboard-address",
                f"{worker_host}:0",
            ],
        ) as cluster,
        Client(cluster) as client,
    ):
        cluster.scale(jobs=jobs)
        yield client


def _ignore_ctrl_c() -> None:
    """In each local worker process, run on its main thread: Ctrl-C reaches the terminal's
    whole process group, and the study's own process stops the workers; each worker would
    otherwise print the traceback of its interrupted loop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
