"""What the limits, budgets, waiting line and retention count in the jobs table: a visitor's
or an address's unfinished jobs, the jobs waiting to be sent and whose turn it is, what a
key spent, what ended long ago, how long videos took.

Each is one or a few indexed queries; the states each counts are ``states``' sets (``FINAL``,
``AT_VENDOR``, ``NOT_MADE``, ``VIDEO_MADE``). Imports ``states`` and the ledger's ``table``
and ``job``.
"""

from __future__ import annotations

from typing import Any

from ..states import AT_VENDOR, FINAL, NOT_MADE, VIDEO_MADE, State
from .job import Job
from .table import Table


class Counts(Table):
    """The counting queries (the service's limits and budgets, the runner's turns)."""

    def unfinished_of(self, owner: str, *, column: str = "owner") -> int:
        """How many of this owner's jobs (``column="address"``: of this address's) have not
        ended (one indexed query)."""
        marks = ",".join("?" * len(FINAL))
        count = self._db.value(
            f"SELECT COUNT(*) FROM jobs WHERE {_who(column)} = ? AND state NOT IN ({marks})",
            [str(owner), *sorted(FINAL)],
        )
        return int(count or 0)

    def waiting(self, address: str = "") -> int:
        """How many jobs wait here to be sent, on every key (from ``address``, when given:
        one indexed query)."""
        if address:
            sql = "SELECT COUNT(*) FROM jobs WHERE address = ? AND state = 'queued_here'"
            return int(self._db.value(sql, (str(address),)) or 0)
        return int(self._db.value("SELECT COUNT(*) FROM jobs WHERE state = 'queued_here'") or 0)

    def has_jobs(self, owner: str) -> bool:
        """Whether ``owner`` made a job here or was let see one (two indexed lookups)."""
        if not owner:
            return False
        made = self._db.value("SELECT 1 FROM jobs WHERE owner = ? LIMIT 1", (str(owner),))
        return made is not None or (
            self._db.value("SELECT 1 FROM access WHERE owner = ? LIMIT 1", (str(owner),))
            is not None
        )

    def waiting_turns(self, key_ref: str) -> list[tuple[str, int, float, int, float]]:
        """This key's jobs waiting to be sent, oldest first, each with facts about where it
        came from (its address; its owner for a job with none) and about its owner: how many
        of their jobs are at the vendor now, and when they last sent one (-1 if never):
        (job_id, address's active, address's last_sent, owner's active, owner's last_sent)."""
        at = ",".join("?" * len(AT_VENDOR))
        db = self._db
        active_rows = db.rows(
            f"SELECT owner, address, COUNT(*) AS n FROM jobs WHERE key_ref = ?"
            f" AND state IN ({at}) GROUP BY owner, address",
            [key_ref, *sorted(AT_VENDOR)],
        )
        last_rows = db.rows(
            "SELECT owner, address, MAX(sent_at) AS last FROM jobs WHERE key_ref = ?"
            " AND sent_at IS NOT NULL GROUP BY owner, address",
            (key_ref,),
        )
        active: dict[str, int] = {}
        last: dict[str, float] = {}
        for r in active_rows:
            for who in {"o:" + r["owner"], "p:" + (r["address"] or r["owner"])}:
                active[who] = active.get(who, 0) + int(r["n"])
        for r in last_rows:
            for who in {"o:" + r["owner"], "p:" + (r["address"] or r["owner"])}:
                last[who] = max(last.get(who, -1.0), float(r["last"]))
        rows = db.rows(
            "SELECT job_id, owner, address FROM jobs WHERE key_ref = ? AND state = 'queued_here'"
            f" ORDER BY created_at, {db.tie}",
            (key_ref,),
        )
        turns = []
        for r in rows:
            owner, place = "o:" + r["owner"], "p:" + (r["address"] or r["owner"])
            turns.append((r["job_id"], active.get(place, 0), last.get(place, -1.0),
                          active.get(owner, 0), last.get(owner, -1.0)))  # fmt: skip
        return turns

    def spent_since(
        self, since: float, *, key_ref: str, owner: str | None = None, column: str = "owner"
    ) -> float:
        """What this key's jobs made since ``since`` count as spending (``Job.cost_usd``),
        and its prompt helper's calls, all of them, or one owner's (``column="address"``:
        one address's)."""
        jobs = sum(j.cost_usd or 0.0 for j in self._since(since, key_ref, owner, column))
        sql, values = "SELECT SUM(usd) FROM helps WHERE key_ref = ? AND at >= ?", [key_ref, since]
        if owner is not None:
            sql, values = sql + f" AND {_who(column)} = ?", [*values, str(owner)]
        return jobs + float(self._db.value(sql, values) or 0.0)

    def add_help(
        self, help_id: str, owner: str, *, key_ref: str, usd: float | None, model: str, at: float
    ) -> None:
        """One call of the prompt helper, written before it is sent with its price: who, on
        which key, what it costs (its ``address`` from the owner's ``place``, as a job's).
        ``settle_help`` then writes what it cost, or takes it back (not sent, or failed:
        a failed call costs nothing)."""
        self._db.execute(
            "INSERT INTO helps (id, at, owner, address, key_ref, usd, model)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (help_id, at, str(owner), str(getattr(owner, "place", "") or ""), key_ref, usd,
             model),
        )  # fmt: skip

    def settle_help(self, help_id: str, usd: float | None) -> None:
        """What a helper's call cost (None: it failed, and costs nothing: its row goes)."""
        if usd is None:
            self._db.execute("DELETE FROM helps WHERE id = ?", (help_id,))
        else:
            self._db.execute("UPDATE helps SET usd = ? WHERE id = ?", (usd, help_id))

    def forget_helps_before(self, when: float) -> None:
        """The helper's calls older than ``when`` go (the retention sweep's)."""
        self._db.execute("DELETE FROM helps WHERE at < ?", (when,))

    def helps_since(self, since: float, *, key_ref: str, owner: str, column: str = "owner") -> int:
        """How many calls of the prompt helper this owner (or address) made on this key."""
        sql = f"SELECT COUNT(*) FROM helps WHERE key_ref = ? AND {_who(column)} = ? AND at >= ?"
        return int(self._db.value(sql, (key_ref, str(owner), since)) or 0)

    def jobs_since(self, since: float, *, key_ref: str, owner: str, column: str = "owner") -> int:
        """How many of this owner's (or address's) jobs on this key since ``since`` made (or
        may make) a video: refused and cancelled ones don't count."""
        return sum(
            1 for j in self._since(since, key_ref, owner, column)
            if j.state not in NOT_MADE
        )  # fmt: skip

    def _since(self, since: float, key_ref: str, owner: str | None, column: str) -> list[Job]:
        if owner is None:
            return self._rows(
                "SELECT * FROM jobs WHERE key_ref = ? AND created_at >= ?", (key_ref, since)
            )
        return self._rows(
            f"SELECT * FROM jobs WHERE key_ref = ? AND {_who(column)} = ? AND created_at >= ?",
            (key_ref, str(owner), since),
        )

    def ended_before(self, when: float) -> list[Job]:
        """Jobs that ended before ``when`` (for the retention sweep)."""
        marks = ",".join("?" * len(FINAL))
        return self._rows(
            f"SELECT * FROM jobs WHERE state IN ({marks}) AND updated_at < ?",
            [*sorted(FINAL), when],
        )

    def shortest_run(self, backend: str) -> float | None:
        """The shortest submit-to-finish time of this backend's finished jobs, in seconds."""
        marks = ",".join("?" * len(VIDEO_MADE))
        least = self._db.value(
            "SELECT MIN(finished_at - submitted_at) FROM jobs WHERE backend = ?"
            " AND finished_at IS NOT NULL AND submitted_at IS NOT NULL"
            f" AND state IN ({marks})",
            [backend, *sorted(VIDEO_MADE)],
        )
        return float(least) if least is not None and least > 0 else None

    def durations(self, backend: str, duration: int | None, limit: int = 50) -> list[float]:
        """How long this backend's most recent ``limit`` videos took, newest first: seconds
        from the create's sending (or the row, for jobs from before ``sent_at``) to the
        vendor's finish, of jobs that ended ``done``; of one video ``duration`` (seconds of
        video), or of any when it is None."""
        where = "backend = ? AND state = ? AND finished_at IS NOT NULL"
        params: list[Any] = [backend, State.DONE.value]
        if duration is not None:
            where += " AND duration = ?"
            params.append(int(duration))
        rows = self._db.rows(
            f"SELECT finished_at - COALESCE(sent_at, created_at) AS took FROM jobs WHERE {where}"
            " ORDER BY finished_at DESC LIMIT ?",
            [*params, int(limit)],
        )
        return [float(r["took"]) for r in rows if r["took"] is not None and r["took"] >= 0]


def _who(column: str) -> str:
    """The column a count is by: the job's owner, or the address it came from."""
    if column not in ("owner", "address"):
        raise ValueError(f"not a column to count by: {column}")
    return column
