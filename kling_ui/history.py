"""The ledger of jobs: every job from before its create until its video is on disk.

A row is written before anything is sent (its ``job_id`` is the ``X-Client-Request-Id`` the
create carries), so a crash at any point loses nothing and never repeats a create: a row found
in ``submitting`` after a restart is looked up in the vendor's log, never sent again. It holds
the ids, the time, the prompt and settings, the backend ("demo" or "live"), the state, the
credits, when each phase was first seen and the local video path: never an API key, never
the image bytes (a batch item's prepared image waits in a file of its own until it is sent;
the service keeps each job's image for Remix in a file of its own too).

The ledger enforces the job's state machine (``transition``): no skipped or backward step::

    queued_here ─► submitting ─► submitted ─► queued ─► generating ─► downloading ─► done
      │   ▲            │   │  └──► unknown ─┘ (found in the vendor's log)   │
      │   └────────────┘   │         │                                      │
      │   turned away (429/503:      ▼                                      ▼
      ▼   nothing was created)   not_created ◄── refused at create       failed, expired
    cancelled                                                  (from submitted onward)

``submitted``, ``queued`` and ``generating`` may each go straight to any later phase (a job
watched by nobody can finish between two polls). ``cancelled`` is for batch items a person
cancelled before they were sent.

SQLite in the data directory, one short connection per call (WAL mode), so many threads can
write at once. Ledgers from before the job runner (a ``generations`` table keyed by the
generation id) are copied in on open. Imports ``database`` (SQLite or PostgreSQL) only.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .database import Database, open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    generation_id TEXT UNIQUE,
    batch_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    backend TEXT NOT NULL,
    key_ref TEXT NOT NULL DEFAULT '',
    prompt TEXT NOT NULL,
    negative_prompt TEXT NOT NULL DEFAULT '',
    duration INTEGER NOT NULL,
    generate_audio INTEGER NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    reason TEXT,
    credits REAL,
    video_path TEXT,
    recovered INTEGER NOT NULL DEFAULT 0,
    sent_at REAL,
    submitted_at REAL,
    queued_at REAL,
    generating_at REAL,
    finished_at REAL,
    owner TEXT NOT NULL DEFAULT '',
    video_token TEXT,
    estimate_usd REAL,
    charged_usd REAL,
    parent_id TEXT,
    lease_owner TEXT,
    lease_until REAL,
    address TEXT NOT NULL DEFAULT ''
)
"""
# The ledger's schema version, kept in the database: 2 added parent_id and the leases (and
# this table; a ledger without it is version 1); 3 the address each job came from. A newer
# one than this code knows is refused.
SCHEMA_VERSION = 3
_META = "CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
# Who else may see a job (a browser that resumed it with the right to): job -> owner.
_ACCESS = """
CREATE TABLE IF NOT EXISTS access (
    job_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (job_id, owner)
)
"""
LEGACY_OWNER = "legacy"  # the owner of rows made before jobs had owners
# Columns added since the first ``jobs`` table: (name, declaration, value for old rows).
_ADDED = (
    ("owner", "TEXT NOT NULL DEFAULT ''", LEGACY_OWNER),
    ("video_token", "TEXT", None),
    ("estimate_usd", "REAL", None),
    ("charged_usd", "REAL", None),
    ("parent_id", "TEXT", None),
    ("lease_owner", "TEXT", None),
    ("lease_until", "REAL", None),
    ("address", "TEXT NOT NULL DEFAULT ''", None),
)
# PostgreSQL's own, for ``short_id_query``'s ranges in byte order (SQLite's is that already).
_BYTE_ORDER_INDEXES = (
    'CREATE INDEX IF NOT EXISTS jobs_job_id_bytes ON jobs (job_id COLLATE "C")',
    'CREATE INDEX IF NOT EXISTS jobs_generation_id_bytes ON jobs (generation_id COLLATE "C")',
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state)",
    "CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch_id)",
    "CREATE INDEX IF NOT EXISTS jobs_key_state ON jobs (key_ref, state)",
    "CREATE INDEX IF NOT EXISTS jobs_owner_state ON jobs (owner, state)",
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_video_token ON jobs (video_token)",
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at)",
    "CREATE INDEX IF NOT EXISTS jobs_key_created ON jobs (key_ref, created_at)",
    "CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id)",
    "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_owner)",
    "CREATE INDEX IF NOT EXISTS jobs_address_state ON jobs (address, state)",
    "CREATE INDEX IF NOT EXISTS access_owner ON access (owner)",
)

# state -> the states it may be entered from.
ALLOWED: dict[str, frozenset[str]] = {
    "submitting": frozenset({"queued_here"}),
    "queued_here": frozenset({"submitting"}),  # turned away (429/503): nothing was created
    "cancelled": frozenset({"queued_here"}),
    "submitted": frozenset({"submitting", "unknown"}),
    "unknown": frozenset({"submitting"}),
    "not_created": frozenset({"queued_here", "submitting", "unknown"}),
    "queued": frozenset({"submitted"}),
    "generating": frozenset({"submitted", "queued"}),
    "downloading": frozenset({"submitted", "queued", "generating"}),
    "done": frozenset({"downloading"}),
    "failed": frozenset({"submitted", "queued", "generating", "downloading"}),
    "expired": frozenset({"submitted", "queued", "generating", "downloading"}),
}
STATES = frozenset(ALLOWED) | {"queued_here"}
FINAL = frozenset({"done", "failed", "not_created", "expired", "cancelled"})
AT_VENDOR = frozenset({"submitting", "unknown", "submitted", "queued", "generating"})
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
# The ledger before the runner: its statuses, as states of the machine.
_LEGACY_STATES = {
    "completed": "done",
    "failed": "failed",
    "queued": "queued",
    "generating": "generating",
}


class IllegalTransition(ValueError):
    """A state change the job's machine does not allow (a bug of ours, never the user's)."""


SHORT_ID = 8  # characters in a short id (``Job.short_id``); fewer find nothing
_SHORT = re.compile(rf"[A-Za-z0-9:._-]{{{SHORT_ID},80}}")


def new_job_id() -> str:
    """Our id for a job, sent as ``X-Client-Request-Id`` (1-128 of ``A-Za-z0-9._:-``)."""
    return "kui-" + uuid.uuid4().hex


@dataclass(frozen=True)
class Job:
    """One job as the ledger keeps it."""

    job_id: str
    generation_id: str | None
    batch_id: str | None
    created_at: float
    updated_at: float
    backend: str
    key_ref: str
    prompt: str
    negative_prompt: str
    duration: int
    generate_audio: bool
    state: str
    message: str = ""
    reason: str | None = None  # how a job that made no video ended: "refused", "not sent", ...
    credits: float | None = None
    video_path: str | None = None
    recovered: bool = False
    sent_at: float | None = None  # when its create was last sent
    submitted_at: float | None = None
    queued_at: float | None = None
    generating_at: float | None = None
    finished_at: float | None = None
    # Who made it: "browser:<hash>" (a page), "address:<hash>" (a program), "" (in-process),
    # or "legacy" (made before jobs had owners; the first browser that shows it claims it).
    owner: str = ""
    video_token: str | None = None  # the video's address is /media/<token>.mp4
    estimate_usd: float | None = None  # the price when it was sent (None: not known in advance)
    charged_usd: float | None = None  # what the vendor reported it cost (0 when it failed)
    parent_id: str | None = None  # the job it continues (from that job's last frame)
    lease_owner: str | None = None  # the runner that runs it now ("host:pid:token")
    lease_until: float | None = None  # when that runner's hold lapses unless renewed
    # Where it was asked from: "address:<hash>" of the client's address (behind our
    # proxies), "" when not known (in-process, or made before addresses were kept). Every
    # per-visitor limit is counted per address too: fresh browsers are cheap to make.
    address: str = ""

    @property
    def cost_usd(self) -> float | None:
        """What the job counts as spending: the charge once known, else the price at submit;
        nothing for a job that made no video at the vendor (failed, refused, cancelled). A
        charge of $0 for a video is taken as not known (the price stands): a budget must
        never count a video as free."""
        unpaid = self.state in ("failed", "not_created", "cancelled")
        if self.charged_usd is not None and (self.charged_usd > 0 or unpaid):
            return self.charged_usd
        if unpaid:
            return 0.0
        return self.estimate_usd

    @property
    def shown_id(self) -> str:
        """The id a person sees: the vendor's once there is one, else ours."""
        return self.generation_id or self.job_id

    @property
    def short_id(self) -> str:
        """The job's one short id: the first 8 characters of our id after its "kui-" (it
        exists from the row's first moment, before the vendor's id; ``Ledger.find_short``
        finds the job by it, or by the first characters of the vendor's)."""
        return self.job_id.split("-", 1)[-1][:SHORT_ID]

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def timings(self, now: float) -> tuple[float, float, float]:
        """(elapsed, queued, generating) seconds, from the first time each phase was seen.

        The job waits from its create until it is first seen generating; it generates until
        it is first seen finished. Phases nobody saw count as the one before them, so the
        three always add up.
        """
        start = self.submitted_at if self.submitted_at is not None else self.created_at
        end = self.finished_at if self.finished_at is not None else now
        start_gen = self.generating_at if self.generating_at is not None else end
        elapsed = max(0.0, end - start)
        queued = max(0.0, min(start_gen, end) - start)
        return elapsed, queued, max(0.0, elapsed - queued)


_COLUMNS = tuple(f.name for f in fields(Job))


class Ledger:
    """The SQLite table of jobs, safe to share between threads."""

    def __init__(self, where: Path | str, *, pool_size: int = 16) -> None:
        """``where``: the SQLite file, or a ``postgresql://`` URL (``database``)."""
        self.path = where
        self._db = open_database(where, pool_size=pool_size)
        self.kind = self._db.kind
        with self._db.mutex("schema"):  # one process creates or upgrades it
            self._set_up()

    def _set_up(self) -> None:
        """Create the tables, or bring an older ledger up to ``SCHEMA_VERSION``."""
        db = self._db
        db.execute(_META)
        version = db.value("SELECT value FROM ledger_meta WHERE name = 'schema_version'")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise RuntimeError(
                f"This ledger is version {version}, made by a newer kling-ui; this one knows "
                f"up to {SCHEMA_VERSION}. Update kling-ui, or point it at another database."
            )
        jobs = _SCHEMA.replace(" REAL", f" {db.time_type}")
        if db.kind == "postgresql":
            jobs = jobs.replace("job_id TEXT PRIMARY KEY,", "job_id TEXT PRIMARY KEY,\n"
                                "    seq BIGINT GENERATED ALWAYS AS IDENTITY,")  # fmt: skip
        db.execute(jobs)
        db.execute(_ACCESS)
        _add_columns(db)
        for sql in _INDEXES + (_BYTE_ORDER_INDEXES if db.kind == "postgresql" else ()):
            db.execute(sql)
        if db.kind == "sqlite":
            _copy_legacy(db)
        db.execute(
            "INSERT INTO ledger_meta (name, value) VALUES ('schema_version', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )

    @property
    def version(self) -> int:
        return int(self._db.value("SELECT value FROM ledger_meta WHERE name = 'schema_version'"))

    def mutex(self, name: str):
        """A lock every process on this ledger shares (``Database.mutex``)."""
        return self._db.mutex(name)

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, params: Iterable[Any]) -> int:
        return self._db.execute(sql, params)

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Job]:
        return [_job(row) for row in self._db.rows(sql, params)]

    # --- writing ------------------------------------------------------------------------

    def add(
        self,
        *,
        backend: str,
        prompt: str,
        negative_prompt: str = "",
        duration: int = 5,
        generate_audio: bool = True,
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
        """A new row: a job about to be sent (``queued_here``), or an adopted id
        (``submitted``, with its ``generation_id``). ``parent_id``: the job it continues.
        ``lease``: (holder, until), so the row is never free for another runner to claim
        between its insert and its maker's hold. ``owner`` may carry where it asks from
        (the service's ``Visitor``, its ``place``): that is recorded as the job's address."""
        address = str(getattr(owner, "place", "") or "")
        if state not in ("queued_here", "submitted"):
            raise IllegalTransition(f"a job starts queued_here or submitted, not {state}")
        job_id = job_id or new_job_id()
        now = time.time() if created_at is None else created_at
        self._write(
            "INSERT INTO jobs (job_id, generation_id, batch_id, created_at, updated_at, backend,"
            " key_ref, prompt, negative_prompt, duration, generate_audio, state, submitted_at,"
            " owner, estimate_usd, parent_id, lease_owner, lease_until, address) VALUES (?, ?,"
            " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, generation_id, batch_id, now, now, backend, key_ref, prompt,
             negative_prompt or "", int(duration), int(bool(generate_audio)), state,
             now if state == "submitted" else None, str(owner), estimate_usd, parent_id,
             *(lease or (None, None)), address),
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
            if name not in _COLUMNS or name in ("job_id", "state"):
                raise ValueError(f"not a column: {name}")
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

    def note(self, job_id: str, message: str) -> None:
        """Change only the message (what a person reads about the job now)."""
        self._write(
            "UPDATE jobs SET message = ?, updated_at = ? WHERE job_id = ?",
            (message, time.time(), job_id),
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

    # --- leases: which runner runs a job (one at a time, whatever the number of processes)

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

    def set_video_token(self, job_id: str, token: str) -> None:
        self._write(
            "UPDATE jobs SET video_token = COALESCE(video_token, ?) WHERE job_id = ?",
            (token, job_id),
        )

    def by_video_token(self, token: str) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE video_token = ?", (token,))
        return rows[0] if rows else None

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
        all of them, or one owner's (``column="address"``: one address's)."""
        return sum(j.cost_usd or 0.0 for j in self._since(since, key_ref, owner, column))

    def jobs_since(self, since: float, *, key_ref: str, owner: str, column: str = "owner") -> int:
        """How many of this owner's (or address's) jobs on this key since ``since`` made (or
        may make) a video: refused and cancelled ones don't count."""
        return sum(
            1 for j in self._since(since, key_ref, owner, column)
            if j.state not in ("not_created", "cancelled")
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

    # --- reading ------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return rows[0] if rows else None

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
        if not _SHORT.fullmatch(bare):
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

    def shortest_run(self, backend: str) -> float | None:
        """The shortest submit-to-finish time of this backend's finished jobs, in seconds."""
        least = self._db.value(
            "SELECT MIN(finished_at - submitted_at) FROM jobs WHERE backend = ?"
            " AND finished_at IS NOT NULL AND submitted_at IS NOT NULL"
            " AND state IN ('downloading', 'done')",
            (backend,),
        )
        return float(least) if least is not None and least > 0 else None

    def durations(self, backend: str, duration: int | None, limit: int = 50) -> list[float]:
        """How long this backend's most recent ``limit`` videos took, newest first: seconds
        from the create's sending (or the row, for jobs from before ``sent_at``) to the
        vendor's finish, of jobs that ended ``done``; of one video ``duration`` (seconds of
        video), or of any when it is None."""
        where = "backend = ? AND state = 'done' AND finished_at IS NOT NULL"
        params: list[Any] = [backend]
        if duration is not None:
            where += " AND duration = ?"
            params.append(int(duration))
        rows = self._db.rows(
            f"SELECT finished_at - COALESCE(sent_at, created_at) AS took FROM jobs WHERE {where}"
            " ORDER BY finished_at DESC LIMIT ?",
            [*params, int(limit)],
        )
        return [float(r["took"]) for r in rows if r["took"] is not None and r["took"] >= 0]


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


def _who(column: str) -> str:
    """The column a count is by: the job's owner, or the address it came from."""
    if column not in ("owner", "address"):
        raise ValueError(f"not a column to count by: {column}")
    return column


def _job(row: dict[str, Any]) -> Job:
    data = {k: v for k, v in row.items() if k in _COLUMNS}
    data["generate_audio"] = bool(data["generate_audio"])
    data["recovered"] = bool(data["recovered"])
    return Job(**data)


def _add_columns(db: Database) -> None:
    """Bring a ledger made by an older version up to today's columns (old rows get each
    column's value for them)."""
    have = db.columns("jobs")
    for name, declaration, old_value in _ADDED:
        if name not in have:
            declaration = declaration.replace("REAL", db.time_type)
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
            if old_value is not None:
                db.execute(f"UPDATE jobs SET {name} = ?", (old_value,))


def _copy_legacy(db: Database) -> None:
    """Bring rows of the ledger before the runner (table ``generations``) into ``jobs``,
    once: unfinished ones become the runner's to finish. (SQLite only: it came before.)"""
    if "generations" not in db.tables():
        return
    cols = db.columns("generations")
    for old in db.rows("SELECT * FROM generations"):
        state = _LEGACY_STATES.get(old["status"], "submitted")
        if state == "done" and not old.get("video_path"):
            state = "submitted"  # completed at the vendor, never downloaded: fetch it
        db.execute(
            "INSERT INTO jobs (job_id, generation_id, created_at, updated_at, backend,"
            " prompt, negative_prompt, duration, generate_audio, state, message, credits,"
            " video_path, submitted_at, queued_at, generating_at, finished_at, owner)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            ("legacy-" + old["id"], old["id"], old["created_at"], old["updated_at"],
             old["backend"], old["prompt"], old["negative_prompt"], old["duration"],
             old["generate_audio"], state, old["message"], old["credits"], old["video_path"],
             old["created_at"],
             *(old[c] if c in cols else None for c in ("queued_at", "generating_at",
                                                        "finished_at")), LEGACY_OWNER),
        )  # fmt: skip
    db.execute("ALTER TABLE generations RENAME TO generations_before_runner")
