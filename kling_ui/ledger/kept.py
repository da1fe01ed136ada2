"""The vendor's answers kept in the database (the ``kept`` table), so every replica and a
restart start from the last one: the video models' listing and each model's request schema
(``service.models``). One row a name: the body as text, the validator (ETag) to ask with
next time, and when it was last fetched or found unchanged.

Imports the ledger's ``table`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .table import Table


@dataclass(frozen=True)
class Kept:
    """One kept answer."""

    body: str
    etag: str | None
    fetched_at: float


class KeptAnswers(Table):
    """Read and write kept answers by name."""

    def kept(self, name: str) -> Kept | None:
        rows = self._db.rows("SELECT body, etag, fetched_at FROM kept WHERE name = ?", (name,))
        if not rows:
            return None
        row = rows[0]
        return Kept(str(row["body"]), row["etag"], float(row["fetched_at"]))

    def keep(self, name: str, body: str, etag: str | None, fetched_at: float) -> None:
        """Keep ``body`` as ``name``'s answer (the last writer wins: they are the same answer)."""
        self._db.execute(
            "INSERT INTO kept (name, body, etag, fetched_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET body = excluded.body, etag = excluded.etag,"
            " fetched_at = excluded.fetched_at",
            (name, body, etag, fetched_at),
        )

    def still(self, name: str, fetched_at: float) -> None:
        """``name``'s kept answer was found unchanged (a 304) at ``fetched_at``."""
        self._db.execute("UPDATE kept SET fetched_at = ? WHERE name = ?", (fetched_at, name))
