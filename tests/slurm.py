"""A real single-node SLURM for the tests: Debian's ``munged``, ``slurmctld`` and ``slurmd``
started in a temporary folder, listening on loopback only (the host name resolves to
127.0.0.1 where the tests run), with two CPUs, stopped at the end.

The daemons run as root (munged as ``munge``, as it must). Where SLURM is not installed, or
the tests do not run as root, they are skipped with the reason, unless
``MNIST_LIT_REQUIRE_SLURM=1`` (set by ``make check``) makes that a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scancel", "scontrol")
CPUS = 2


def unavailable(reason: str) -> None:
    if os.environ.get("MNIST_LIT_REQUIRE_SLURM") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _daemon(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _slurm_conf(folder: Path, host: str, munge_socket: Path) -> str:
    return f"""\
ClusterName=mnist-lit-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
# Both daemons listen on the address the host name resolves to, not on every interface.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
# A requeued job waits cred_expire seconds (120 by default) before it may start again.
AuthInfo=socket={munge_socket},cred_expire=5
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
# A requeued job may start again at once.
MinJobAge=2
# The scheduler looks at pending jobs every second (60 s by default).
SchedulerParameters=sched_interval=1
NodeName={host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _wait_for_node(env: dict[str, str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    state = ""
    while time.monotonic() < deadline:
        result = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False
        )
        state = result.stdout.strip() + result.stderr.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    raise RuntimeError(f"the SLURM node did not become idle: {state!r}")


@contextlib.contextmanager
def slurm_cluster() -> Iterator[dict[str, str]]:
    """A running SLURM of one node; yields the environment its commands need
    (``SLURM_CONF``)."""
    missing = [n for n in DAEMONS if _daemon(n) is None] + [
        n for n in CLIENTS if shutil.which(n) is None
    ]
    if missing:
        unavailable(f"SLURM not found ({', '.join(missing)}): apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        unavailable("the SLURM daemons are started as root: run the SLURM tests as root")
    try:
        munge = pwd.getpwnam("munge")
    except KeyError:
        unavailable("no 'munge' user to run munged as (apt-get install munge)")
    folder = Path(tempfile.mkdtemp(prefix="mnist-lit-slurm-"))
    folder.chmod(0o755)
    sockets = folder / "munge"
    sockets.mkdir(mode=0o755)
    os.chown(sockets, munge.pw_uid, munge.pw_gid)
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_slurm_conf(folder, host, sockets / "munge.socket"))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[subprocess.Popen[bytes]] = []
    try:
        munged = [
            "runuser", "-u", "munge", "--", str(_daemon("munged")), "--foreground",
            f"--socket={sockets}/munge.socket", f"--pid-file={sockets}/munged.pid",
            f"--log-file={sockets}/munged.log", f"--seed-file={sockets}/munged.seed",
        ]  # fmt: skip
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # logs: *.log
        started.append(subprocess.Popen(munged, **quiet))
        deadline = time.monotonic() + 20
        while not (sockets / "munge.socket").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for daemon in ("slurmctld", "slurmd"):
            # -D: in the foreground, a child of this process; -f: this configuration.
            command = [str(_daemon(daemon)), "-D", "-f", str(conf)]
            started.append(subprocess.Popen(command, env=env, **quiet))
            time.sleep(1)
        try:
            _wait_for_node(env)
        except RuntimeError as error:
            logs = "\n".join(
                f"{p.name}: {p.read_text()[-2000:]}" for p in sorted(folder.glob("*.log"))
            )
            pytest.fail(f"{error}\n{logs}")
        yield env
    finally:
        with contextlib.suppress(Exception):
            jobs = subprocess.run(
                ["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, timeout=10
            )
            for job in jobs.stdout.split():
                subprocess.run(["scancel", job], env=env, check=False, timeout=10)
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def squeue(env: dict[str, str]) -> list[str]:
    """The jobs SLURM still holds: one ``id state name`` line each."""
    result = subprocess.run(
        ["squeue", "-h", "-o", "%i %T %j"], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()
