"""A throwaway PostgreSQL cluster for the tests: Debian's server programs (``apt-get install
postgresql``; ``.ci/run`` installs them), ``initdb`` run as an unprivileged user into a
temporary folder, the server on a Unix socket in that folder only (no TCP port to pick, so
no race between parallel runs) with trust authentication, one fresh database per test,
everything removed after.

Without the programs (or psycopg) the PostgreSQL tests skip with that reason, except under
``CI=true``, where they fail: there they must run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

UNPRIVILEGED = "postgres"  # Debian's package makes this user


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def missing() -> str | None:
    """Why PostgreSQL can't be used here, or None."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg (requirements.txt) is not installed"
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL's server programs are not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(UNPRIVILEGED)
        except KeyError:
            return f"running as root, and there is no {UNPRIVILEGED!r} user to run initdb as"
    return None


def skip_or_fail() -> None:
    reason = missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the PostgreSQL tests must run on CI: {reason}", pytrace=False)
        pytest.skip(reason)


def _as_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", UNPRIVILEGED, "--", *argv]


class Cluster:
    """One server for the test session; ``database()`` makes a fresh database's URL.

    It listens on no TCP address, only on its socket in ``folder`` (the socket's name says
    ``port``, which no other server shares)."""

    port = 5432

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="kling-pg-"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            entry = pwd.getpwnam(UNPRIVILEGED)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        initdb = [_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8"]  # fmt: skip
        subprocess.run(_as_user(initdb), check=True, capture_output=True, timeout=120)
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        start = [_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                 str(self.folder / "log"), "-w", "-t", "60", "start"]  # fmt: skip
        subprocess.run(_as_user(start), check=True, capture_output=True, timeout=90)

    def url(self, name: str) -> str:
        """Database ``name``'s URL: libpq takes a socket folder as ``host``."""
        return f"postgresql://postgres@/{name}?host={self.folder}&port={self.port}"

    def database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        stop = [_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_user(stop), capture_output=True, timeout=60)
        for _ in range(50):
            if not (self.data / "postmaster.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    skip_or_fail()
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A fresh, empty PostgreSQL database of the session's cluster."""
    return pg_cluster.database()
