"""The queries the ledger runs to write and read jobs (``Ledger``): a job's row added with
its request whole, moved through the job's machine (``transition``), noted, forgotten; who
may see it; found by any of its ids, its batch, its chain.

``Ledger`` is this module's queries on top of the lease queries (``leases``) and the
counting ones (``counts``), all on ``table.Table`` (the database, its schema set up).
Imports ``states``, ``request`` and the ledger's ``job``, ``schema``, ``leases`` and
``counts``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ..request import Request
from ..states import ALLOWED, FINAL, STATES, Reason
from .counts import Counts
from .job import COLUMNS, SHORT, IllegalTransition, Job, new_job_id
from .kept import KeptAnswers
from .leases import Leases
from .schema import LEGACY_OWNER
from .shares import SharesTable

# The first time each phase was seen; set once, never moved.
PHASE_COLUMNS = {
    "submitted": "submitted_at",
    "queued": "queued_at",
    "generating": "generating_at",
    "downloading": "finished_at",
    "done": "finished_at",
    "failed": "finished_at",
    "expired": "finished_at",
}


class Ledger(Leases, Counts, KeptAnswers, SharesTable):
    """The ledger of jobs (SQLite or PostgreSQL), safe to share between threads."""

    # --- writing ------------------------------------------------------------------------

    def add(
        self,
        request: Request | None,
        *,
        backend: str,
        key_ref: str = "",
        state: str = "queued_here",
        generation_id: str | None = None,
        batch_id: str | None = None,
        job_id: str | None = None,
        created_at: float | None = None,
        owner: str = "",
        estimate_usd: float | None = None,
        parent_id: str | None = None,
        lease: tuple[str, float] | None = None,
    ) -> Job:
        """A new row: a job about to be sent (``queued_here``) with its ``request``, or an
        adopted id (``submitted``, with its ``generation_id``; ``request`` None: what was
        asked is not known). ``parent_id``: the job it continues. ``lease``: (holder,
        until), so the row is never free for another runner to claim between its insert and
        its maker's hold. ``owner`` may carry where it asks from (the service's
        ``Visitor``, its ``place``): that is recorded as the job's address."""
        address = str(getattr(owner, "place", "") or "")
        if state not in ("queued_here", "submitted"):
            raise IllegalTransition(f"a job starts queued_here or submitted, not {state}")
        asked = request or Request.from_columns({})  # adopted: the old columns' defaults
        job_id = job_id or new_job_id()
        now = time.time() if created_at is None else created_at
        # The request is stored whole (``request``), and its fields in the columns before
        # it too: an older replica on the same PostgreSQL still reads (and writes) those
        # during a rolling upgrade, and ``durations`` selects by ``duration``.
        self._write(
            "INSERT INTO jobs (job_id, generation_id, batch_id, created_at, updated_at, backend,"
            " key_ref, prompt, negative_prompt, duration, generate_audio, state, submitted_at,"
            " owner, estimate_usd, parent_id, lease_owner, lease_until, address, request)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, generation_id, batch_id, now, now, backend, key_ref, asked.prompt,
             asked.negative_prompt, int(asked.duration), int(bool(asked.generate_audio)),
             state, now if state == "submitted" else None, str(owner), estimate_usd,
             parent_id, *(lease or (None, None)), address,
             None if request is None else asked.to_json()),
        )  # fmt: skip
        job = self.get(job_id)
        assert job is not None
        return job

    def transition(
        self, job_id: str, state: str, *, at: float | None = None, **changes: Any
    ) -> Job:
        """Move the job to ``state`` (staying put is allowed) and record ``changes``.

        Raises ``IllegalTransition`` for a step the machine does not have."""
        if state not in STATES:
            raise IllegalTransition(f"no state {state!r}")
        now = time.time() if at is None else at
        sets, params = ["state = ?", "updated_at = ?"], [state, now]
        for name, value in changes.items():
            if name not in COLUMNS or name in ("job_id", "state"):
                raise ValueError(f"not a column: {name}")
            if name == "reason" and value is not None:
                value = Reason(value).value  # a word no reader knows is a bug: ValueError
            sets.append(f"{name} = ?")
            params.append(int(value) if isinstance(value, bool) else value)
        if state in FINAL:  # an ended job is no runner's any more
            sets += ["lease_owner = NULL", "lease_until = NULL"]
        column = PHASE_COLUMNS.get(state)
        if column and column not in changes:
            sets.append(f"{column} = COALESCE({column}, ?)")
            params.append(now)
        # Staying put is a change of details, except for a create under way: a second
        # "submitting" would be a second create.
        stay = set() if state == "submitting" else {state}
        allowed = sorted(ALLOWED.get(state, frozenset()) | stay)
        marks = ",".join("?" * len(allowed))
        count = self._write(
            f"UPDATE jobs SET {', '.join(sets)} WHERE job_id = ? AND state IN ({marks})",
            [*params, job_id, *allowed],
        )
        job = self.get(job_id)
        if count == 0:
            have = job.state if job else "no such job"
            raise IllegalTransition(f"{job_id}: {have} -> {state} is not allowed")
        assert job is not None
        return job

    def note(self, job_id: str, message: str, *, at: float | None = None) -> None:
        """Change only the message (what a person reads about the job now), at ``at`` (the
        runner's clock; the real one by default)."""
        self._write(
            "UPDATE jobs SET message = ?, updated_at = ? WHERE job_id = ?",
            (message, time.time() if at is None else at, job_id),
        )

    def forget(self, job_id: str) -> None:
        """Remove a row that never stood for a job (an adopted id the vendor did not know)."""
        self._write("DELETE FROM jobs WHERE job_id = ?", (job_id,))
        self._write("DELETE FROM access WHERE job_id = ?", (job_id,))

    def grant(self, job_id: str, owner: str) -> None:
        """Let ``owner`` see this job too (it resumed the job with the right to)."""
        if owner:
            self._write("INSERT INTO access (job_id, owner) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        (job_id, owner))  # fmt: skip

    def claim(self, job_id: str, owner: str) -> bool:
        """Give a job made before jobs had owners to the first browser that shows it."""
        return (
            bool(owner)
            and self._write(
                "UPDATE jobs SET owner = ? WHERE job_id = ? AND owner = ?",
                (owner, job_id, LEGACY_OWNER),
            )
            == 1
        )

    def may_see(self, job: Job, owner: str) -> bool:
        """True when ``owner`` made this job or was let see it."""
        if not owner:
            return False
        if job.owner == owner:
            return True
        row = self._db.value(
            "SELECT 1 FROM access WHERE job_id = ? AND owner = ?", (job.job_id, owner)
        )
        return row is not None

    def set_video_token(self, job_id: str, token: str) -> None:
        self._write(
            "UPDATE jobs SET video_token = COALESCE(video_token, ?) WHERE job_id = ?",
            (token, job_id),
        )

    def by_video_token(self, token: str) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE video_token = ?", (token,))
        return rows[0] if rows else None

    # --- reading ------------------------------------------------------------------------

    def find(self, any_id: str) -> Job | None:
        """The job with this id, ours or the vendor's."""
        rows = self._rows(
            "SELECT * FROM jobs WHERE job_id = ? OR generation_id = ?", (any_id, any_id)
        )
        return rows[0] if rows else None

    def find_short(self, prefix: str) -> Job | None:
        """The one job whose id (ours, with or without its "kui-", or the vendor's) starts
        with ``prefix`` (``SHORT_ID`` characters or more); None when none does or several
        do. Each id is looked up as a range of its index (``short_id_query``): a miss costs
        what a hit does, whatever the ledger's size."""
        bare = prefix.removeprefix("kui-") if isinstance(prefix, str) else ""
        if not SHORT.fullmatch(bare):
            return None
        sql, params = short_id_query(prefix, self.kind)
        rows = self._rows(sql, params)
        return rows[0] if len(rows) == 1 else None

    def find_many(self, ids: Iterable[str]) -> dict[str, Job]:
        """Each id (ours or the vendor's) that the ledger knows, with its job."""
        ids = [i for i in ids if isinstance(i, str)]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._rows(
            f"SELECT * FROM jobs WHERE job_id IN ({marks}) OR generation_id IN ({marks})",
            [*ids, *ids],
        )
        found: dict[str, Job] = {}
        for job in rows:
            for key in (job.job_id, job.generation_id):
                if key in ids:
                    found[key] = job
        return found

    def unfinished(self) -> list[Job]:
        """Every job the runner still owns, oldest first."""
        marks = ",".join("?" * len(FINAL))
        return self._rows(
            f"SELECT * FROM jobs WHERE state NOT IN ({marks}) ORDER BY created_at", sorted(FINAL)
        )

    def ids_in(self, states: Iterable[str], *, key_ref: str) -> set[str]:
        """The ids of this key's jobs in these states (one indexed query, no rows built)."""
        states = sorted(states)
        marks = ",".join("?" * len(states))
        rows = self._db.rows(
            f"SELECT job_id FROM jobs WHERE key_ref = ? AND state IN ({marks})",
            [key_ref, *states],
        )
        return {row["job_id"] for row in rows}

    def batch(self, batch_id: str) -> list[Job]:
        return self._rows(
            f"SELECT * FROM jobs WHERE batch_id = ? ORDER BY created_at, {self._db.tie}",
            (batch_id,),
        )

    def chain(self, job_id: str, most: int = 100) -> list[Job]:
        """The job and the jobs it continues, first part first (at most ``most``: a loop,
        which the service never makes, ends there)."""
        parts: list[Job] = []
        job = self.get(job_id)
        while job is not None and len(parts) < most and job not in parts:
            parts.append(job)
            job = self.get(job.parent_id) if job.parent_id else None
        return parts[::-1]

    def continuations(self, job_id: str) -> list[Job]:
        """The jobs that continue this one from its last frame (its next parts), oldest first."""
        return self._rows(
            f"SELECT * FROM jobs WHERE parent_id = ? ORDER BY created_at, {self._db.tie}",
            (job_id,),
        )

    def recent(self, limit: int = 50) -> list[Job]:
        return self._rows("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))


def short_id_query(prefix: str, kind: str = "sqlite") -> tuple[str, list[Any]]:
    """``find_short``'s query: the jobs (at most 2) whose id ("kui-" + the prefix without
    its "kui-", or the prefix as typed) or vendor's id starts with ``prefix``, each as a
    range ``id >= prefix AND id < prefix's successor`` that the column's index answers.
    Ranges compare bytes (PostgreSQL: ``COLLATE "C"``, with indexes of its own, since a
    locale's order need not keep a prefix's strings together); ``substr`` keeps it exact."""
    c = ' COLLATE "C"' if kind == "postgresql" else ""
    ours = "kui-" + prefix.removeprefix("kui-")
    terms, params = [], []
    for column, start in (("job_id", ours), ("job_id", prefix), ("generation_id", prefix)):
        terms.append(f"({column}{c} >= ? AND {column}{c} < ? AND substr({column}, 1, ?) = ?)")
        params += [start, start[:-1] + chr(ord(start[-1]) + 1), len(start), start]
    return f"SELECT * FROM jobs WHERE {' OR '.join(terms)} LIMIT 2", params
