"""The SQL database under the ledger: SQLite in the data folder (the default: nothing to set
up), or PostgreSQL (``KLING_UI_DATABASE_URL=postgresql://...``) when several app processes,
on one machine or many, share one ledger.

The ledger writes each query once, with ``?`` marks; here they become what the driver wants
(psycopg 3's ``%s``). The ledger's schema (``ledger/schema.py``) and its queries run on
``execute``, ``execute_many`` (one transaction: a migration's many rows), ``rows`` and
``value``; this module knows no table of the ledger's. What differs between the two is kept
here and named: the column type of times (PostgreSQL's ``REAL`` is 4 bytes), the insertion
order (``rowid``, or a ``seq`` column), and ``mutex``: a lock that holds across processes
(a lock file beside the SQLite ledger; a PostgreSQL advisory lock), for the checks that must
see every process's rows (a key's free slots, a budget).

Imports only the standard library and, for PostgreSQL, psycopg and psycopg_pool.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(where: object) -> bool:
    return isinstance(where, str) and where.startswith(POSTGRES_SCHEMES)


class Database:
    """One ledger's database. ``execute`` returns the rows changed, ``rows`` dicts, ``value``
    the first column of the first row (or None)."""

    kind = "sqlite"
    tie = "rowid"  # the insertion order, for equal times
    time_type = "REAL"

    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        raise NotImplementedError

    def execute_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """``sql`` once per row of parameters, all in one transaction."""
        raise NotImplementedError

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def value(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = self.rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def columns(self, table: str) -> set[str]:
        raise NotImplementedError

    def tables(self) -> set[str]:
        raise NotImplementedError

    @contextlib.contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        raise NotImplementedError
        yield

    def close(self) -> None:
        pass


class SQLite(Database):
    """A file in WAL mode, so many threads read while one writes. Connections are kept and
    reused (``IDLE`` at most wait between calls), each used by one thread at a time: opening
    one per call cost more than the query (the schema is read again by each new
    connection: 0.47 ms against 0.01 ms for a lookup by id; with 50 jobs at once, a
    quarter of the app's time, bench 3)."""

    IDLE = 8

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600, exist_ok=True)
        os.chmod(self.path, 0o600)  # prompts and ids: for the app's user only
        self._lock = threading.Lock()  # one writer at a time in this process
        self._mutexes: dict[str, threading.Lock] = {}
        self._idle: list[sqlite3.Connection] = []
        self._idle_lock = threading.Lock()
        self._closed = False
        self.execute("PRAGMA journal_mode=WAL")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        return db

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for one call: an idle one, or a new one. It goes back to the idle
        ones after, unless a transaction was left open (it is closed: rolled back), the
        database was closed, or ``IDLE`` already wait."""
        with self._idle_lock:
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = self._connect()
        keep = False
        try:
            yield db
            keep = not db.in_transaction
        finally:
            with self._idle_lock:
                if keep and not self._closed and len(self._idle) < self.IDLE:
                    self._idle.append(db)
                    db = None
            if db is not None:
                db.close()

    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        with self._lock, self._connection() as db:
            return db.execute(sql, tuple(params)).rowcount

    def execute_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        with self._lock, self._connection() as db:
            db.execute("BEGIN")
            db.executemany(sql, [tuple(r) for r in rows])
            db.execute("COMMIT")  # without it, the connection is closed: rolled back

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._connection() as db:
            return [dict(r) for r in db.execute(sql, tuple(params)).fetchall()]

    def close(self) -> None:
        with self._idle_lock:
            self._closed, idle, self._idle = True, self._idle, []
        for db in idle:
            db.close()

    def columns(self, table: str) -> set[str]:
        return {r["name"] for r in self.rows(f"PRAGMA table_info({table})")}

    def tables(self) -> set[str]:
        return {r["name"] for r in self.rows("SELECT name FROM sqlite_master WHERE type='table'")}

    @contextlib.contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        """A lock file beside the ledger (``flock``): other processes on the folder wait."""
        import fcntl

        lock = self._mutexes.setdefault(name, threading.Lock())
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        path = self.path.with_name(f".{self.path.name}.{digest}.lock")
        with lock:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


class Postgres(Database):
    """A PostgreSQL database through a pool of psycopg 3 connections, each in autocommit."""

    kind = "postgresql"
    tie = "seq"
    time_type = "DOUBLE PRECISION"

    def __init__(self, url: str, *, pool_size: int = 16) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            open=True,
            name="kling-ledger",
        )
        self._pool.wait(timeout=30)

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        with self._pool.connection() as db:
            return db.execute(self._sql(sql), _plain(params)).rowcount

    def execute_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        with self._pool.connection() as db, db.transaction():
            db.cursor().executemany(self._sql(sql), [_plain(r) for r in rows])

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._pool.connection() as db:
            cursor = db.execute(self._sql(sql), _plain(params))
            return list(cursor.fetchall()) if cursor.description else []

    def columns(self, table: str) -> set[str]:
        rows = self.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
            " AND table_schema = current_schema()",
            (table,),
        )
        return {r["column_name"] for r in rows}

    def tables(self) -> set[str]:
        rows = self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {r["table_name"] for r in rows}

    @contextlib.contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        """A session advisory lock, held on one pooled connection for the block: every
        process on this database that asks for the same name waits."""
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with self._pool.connection() as db:
            db.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                db.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        self._pool.close()


def _plain(params: Iterable[Any]) -> Sequence[Any]:
    """Booleans as 0/1: the ledger's flags are integer columns in both databases; text as
    plain ``str`` (the service's ``Visitor`` is a ``str`` that says where it asks from)."""
    return tuple(
        int(p) if isinstance(p, bool) else str(p) if isinstance(p, str) else p for p in params
    )


def open_database(where: Path | str, *, pool_size: int = 16) -> Database:
    """A PostgreSQL URL, or the path of a SQLite file."""
    if is_postgres(where):
        return Postgres(str(where), pool_size=pool_size)
    return SQLite(Path(where))
