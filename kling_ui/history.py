"""The ledger of generations: what was submitted, and where each one stands.

A row is written the moment the create returns an id, before the first poll, so a
crash, a closed tab or a restart never loses a paid-for job. It holds the id, the
time, the prompt and settings, the backend it went to ("demo" or "live"), the status,
the credits and the local video path: never the API key, never the image bytes.

SQLite in the data directory, one short connection per call (WAL mode), so many
worker threads can write at once. Imports nothing from the rest of the package.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    backend TEXT NOT NULL,
    prompt TEXT NOT NULL,
    negative_prompt TEXT NOT NULL DEFAULT '',
    duration INTEGER NOT NULL,
    generate_audio INTEGER NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    credits REAL,
    video_path TEXT,
    queued_at REAL,
    generating_at REAL,
    finished_at REAL
)
"""
# Columns added after the first release: ledgers made before get them on open.
_ADDED_COLUMNS = ("queued_at REAL", "generating_at REAL", "finished_at REAL")
# When each phase was first seen; set once, never moved (see ``Ledger.mark_phase``).
PHASE_COLUMNS = {"queued": "queued_at", "generating": "generating_at", "finished": "finished_at"}


@dataclass(frozen=True)
class Entry:
    """One generation as the ledger keeps it."""

    id: str
    created_at: float
    updated_at: float
    backend: str
    prompt: str
    negative_prompt: str
    duration: int
    generate_audio: bool
    status: str
    message: str = ""
    credits: float | None = None
    video_path: str | None = None
    queued_at: float | None = None
    generating_at: float | None = None
    finished_at: float | None = None

    def timings(self, now: float) -> tuple[float, float, float]:
        """(elapsed, queued, generating) seconds, from the first time each phase was seen.

        The job waits from its create until it is first seen generating; it generates until
        it is first seen finished. Phases nobody saw (the tab was closed) count as the one
        before them, so the three always add up.
        """
        end = self.finished_at if self.finished_at is not None else now
        start_gen = self.generating_at if self.generating_at is not None else end
        elapsed = max(0.0, end - self.created_at)
        queued = max(0.0, min(start_gen, end) - self.created_at)
        return elapsed, queued, max(0.0, elapsed - queued)

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    """A small SQLite table of generations, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(generations)")}
            for column in _ADDED_COLUMNS:
                if column.split()[0] not in have:
                    db.execute(f"ALTER TABLE generations ADD COLUMN {column}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def _write(self, sql: str, params: Iterable[Any]) -> None:
        with self._lock:
            db = self._connect()
            try:
                db.execute(sql, tuple(params))
            finally:
                db.close()

    def record_submitted(
        self,
        generation_id: str,
        *,
        backend: str,
        prompt: str,
        negative_prompt: str,
        duration: int,
        generate_audio: bool,
        status: str = "queued",
        credits: float | None = None,
        created_at: float | None = None,
    ) -> Entry:
        now = time.time() if created_at is None else created_at
        self._write(
            "INSERT OR IGNORE INTO generations (id, created_at, updated_at, backend, prompt,"
            " negative_prompt, duration, generate_audio, status, credits)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                generation_id,
                now,
                now,
                backend,
                prompt,
                negative_prompt or "",
                int(duration),
                int(bool(generate_audio)),
                status,
                credits,
            ),
        )
        entry = self.get(generation_id)
        assert entry is not None
        return entry

    def update(
        self,
        generation_id: str,
        *,
        status: str | None = None,
        message: str | None = None,
        credits: float | None = None,
        video_path: str | None = None,
    ) -> None:
        """Change what is known; a value left as None keeps what was there."""
        self._write(
            "UPDATE generations SET updated_at = ?, status = COALESCE(?, status),"
            " message = COALESCE(?, message), credits = COALESCE(?, credits),"
            " video_path = COALESCE(?, video_path) WHERE id = ?",
            (time.time(), status, message, credits, video_path, generation_id),
        )

    def mark_phase(self, generation_id: str, phase: str, at: float) -> None:
        """Note when ``phase`` ("queued", "generating", "finished") was first seen."""
        column = PHASE_COLUMNS[phase]
        self._write(
            f"UPDATE generations SET {column} = ? WHERE id = ? AND {column} IS NULL",
            (at, generation_id),
        )

    def get(self, generation_id: str) -> Entry | None:
        db = self._connect()
        try:
            row = db.execute("SELECT * FROM generations WHERE id = ?", (generation_id,)).fetchone()
        finally:
            db.close()
        return _entry(row) if row else None

    def get_many(self, ids: Iterable[str]) -> dict[str, Entry]:
        ids = [i for i in ids if isinstance(i, str)]
        if not ids:
            return {}
        db = self._connect()
        try:
            marks = ",".join("?" * len(ids))
            rows = db.execute(f"SELECT * FROM generations WHERE id IN ({marks})", ids).fetchall()
        finally:
            db.close()
        return {row["id"]: _entry(row) for row in rows}

    def recent(self, limit: int = 50) -> list[Entry]:
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT * FROM generations ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
        finally:
            db.close()
        return [_entry(row) for row in rows]


def _entry(row: sqlite3.Row) -> Entry:
    data = dict(row)
    data["generate_audio"] = bool(data["generate_audio"])
    return Entry(**data)
