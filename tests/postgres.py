"""A real PostgreSQL server for the tests, started with Debian's ``initdb`` and ``pg_ctl`` in
a temporary folder, listening on a free loopback port only, stopped at the end.

The server refuses to run as root: as root, its commands run as the ``postgres`` user
(which Debian's package creates). Where PostgreSQL is not installed the tests are skipped
with the reason, unless ``MNIST_LIT_REQUIRE_POSTGRES=1`` (set by ``make check``) makes that
a failure.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import free_port

USER = "mnist"  # the database's superuser, trusted on loopback


def _binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, or Debian's versioned folder."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(f.split("/")[-2]))
    return Path(folders[-1]) if folders and Path(folders[-1], "pg_ctl").exists() else None


def unavailable(reason: str) -> None:
    if os.environ.get("MNIST_LIT_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@contextlib.contextmanager
def postgres_server() -> Iterator[Callable[[], str]]:
    """A running server; yields ``new_database()``, which creates a new, empty database and
    gives its SQLAlchemy URL (``postgresql+psycopg://...``)."""
    binaries = _binaries()
    if binaries is None:
        unavailable("PostgreSQL not found: apt-get install postgresql (initdb, pg_ctl)")
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg not installed: pip install -e '.[postgres]'")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="mnist-lit-postgres-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root, and no 'postgres' user to run the server as")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log, port = folder / "data", folder / "server.log", free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True)

    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    except subprocess.CalledProcessError as error:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {error.stderr or error.stdout}")

    names = (f"study_{n}" for n in itertools.count())

    def new_database() -> str:
        name = next(names)
        admin = f"host=127.0.0.1 port={port} user={USER} dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{USER}@127.0.0.1:{port}/{name}"

    try:
        yield new_database
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
