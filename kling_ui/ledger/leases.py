"""Which runner runs a job: leases on the jobs table, one holder at a time whatever the
number of processes (a holder is "host:pid:token"; its hold lapses unless renewed).

Imports ``states`` and the ledger's ``table`` and ``job``.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..states import FINAL
from .job import Job
from .table import Table


class Leases(Table):
    """The lease queries (the runner's): hold, renew, release, who holds, claim the free."""

    def hold(self, job_id: str, holder: str, now: float, until: float) -> bool:
        """Take or renew ``holder``'s lease on an unfinished job until ``until``; False when
        another runner holds it and its lease has not lapsed (or the job has ended)."""
        marks = ",".join("?" * len(FINAL))
        return (
            self._write(
                "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE job_id = ?"
                f" AND state NOT IN ({marks})"
                " AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
                (holder, until, job_id, *sorted(FINAL), holder, now),
            )
            == 1
        )

    def renew(self, holder: str, until: float) -> int:
        """Every lease of ``holder`` on an unfinished job, renewed (its heartbeat)."""
        marks = ",".join("?" * len(FINAL))
        return self._write(
            f"UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND state NOT IN ({marks})",
            (until, holder, *sorted(FINAL)),
        )

    def release(self, holder: str) -> None:
        """Let go of every lease of ``holder`` (a runner stopping cleanly)."""
        self._write(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
            (holder,),
        )

    def holders(self) -> set[str]:
        """The runners holding a lease on an unfinished job now."""
        marks = ",".join("?" * len(FINAL))
        rows = self._db.rows(
            "SELECT DISTINCT lease_owner FROM jobs WHERE lease_owner IS NOT NULL"
            f" AND state NOT IN ({marks})",
            sorted(FINAL),
        )
        return {r["lease_owner"] for r in rows}

    def claim_free(
        self, holder: str, now: float, until: float, *, dead: Iterable[str] = (), most: int = 200
    ) -> list[Job]:
        """Unfinished jobs no live runner holds (never held, lapsed, or held by a runner
        known to be gone), now ``holder``'s, oldest first. On PostgreSQL in one statement
        that skips rows another process is claiming (``FOR UPDATE SKIP LOCKED``)."""
        final = sorted(FINAL)
        gone = sorted(set(dead)) or ["-"]
        free = (
            f"state NOT IN ({','.join('?' * len(final))}) AND (lease_owner IS NULL"
            f" OR lease_until < ? OR lease_owner IN ({','.join('?' * len(gone))}))"
        )
        if self.kind == "postgresql":
            return self._rows(
                "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE job_id IN ("
                f"SELECT job_id FROM jobs WHERE {free} ORDER BY created_at LIMIT ?"
                " FOR UPDATE SKIP LOCKED) RETURNING *",
                (holder, until, *final, now, *gone, most),
            )
        candidates = self._db.rows(
            f"SELECT job_id, lease_owner FROM jobs WHERE {free} ORDER BY created_at LIMIT ?",
            (*final, now, *gone, most),
        )
        taken = []
        for row in candidates:  # each a conditional update: two claimers never both win
            if self._write(
                "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE job_id = ?"
                " AND lease_owner IS ?",
                (holder, until, row["job_id"], row["lease_owner"]),
            ):
                taken.append(row["job_id"])
        return [job for job in (self.get(i) for i in taken) if job is not None]
