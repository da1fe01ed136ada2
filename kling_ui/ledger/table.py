"""The ledger's table as the queries see it: the database opened (``database.open_database``)
and its schema set up (``schema.set_up``), with the few helpers every query module uses.

``leases``, ``counts`` and ``queries`` each add their queries on top of ``Table``.
Imports ``database``, ``schema`` and ``job``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..database import open_database
from . import schema
from .job import Job, job_of


class Table:
    """The jobs table on SQLite or PostgreSQL, safe to share between threads."""

    def __init__(self, where: Path | str, *, pool_size: int = 16) -> None:
        """``where``: the SQLite file, or a ``postgresql://`` URL (``database``)."""
        self.path = where
        self._db = open_database(where, pool_size=pool_size)
        self.kind = self._db.kind
        with self._db.mutex("schema"):  # one process creates or upgrades it
            schema.set_up(self._db)

    @property
    def version(self) -> int:
        return int(schema.version_of(self._db) or 0)

    def mutex(self, name: str):
        """A lock every process on this ledger shares (``Database.mutex``)."""
        return self._db.mutex(name)

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, params: Iterable[Any]) -> int:
        return self._db.execute(sql, params)

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Job]:
        return [job_of(row) for row in self._db.rows(sql, params)]

    def get(self, job_id: str) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return rows[0] if rows else None
