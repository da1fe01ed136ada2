"""The ledger's schema: its tables and indexes, its version, and every migration from the
ledgers older versions left behind, in SQLite and in PostgreSQL (``set_up``).

Versions, kept in the ``ledger_meta`` table: 1 the first ``jobs`` table (no meta table); 2
parent_id and the leases; 3 the address each job came from; 4 the ``request`` column, the
request whole as JSON (``request.Request.to_json``), filled in for older rows from their
prompt, negative_prompt, duration and generate_audio columns. The ``kept`` table (the
vendor's answers kept: the model catalogue) and the ``helps`` table (the prompt helper's
paid calls) and the ``shares`` table (share links) came after 4 without a version of their own. A
newer version than this code knows is refused. SQLite ledgers from before the job runner
(a ``generations`` table keyed by the generation id) are copied in.

The queries the ledger runs live apart (``queries``, ``leases``, ``counts``); this module
runs none of them. Imports ``database`` and ``request`` only.
"""

from __future__ import annotations

from ..database import Database
from ..request import Request

_JOBS = """
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
    address TEXT NOT NULL DEFAULT '',
    request TEXT
)
"""
SCHEMA_VERSION = 4
_META = "CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
# Who else may see a job (a browser that resumed it with the right to): job -> owner.
_ACCESS = """
CREATE TABLE IF NOT EXISTS access (
    job_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (job_id, owner)
)
"""
# Answers of the vendor's kept between asks and restarts, shared by every replica: the video
# models' listing and each model's request schema (``kept``), with the validator to ask
# with next time. Added without a version: an older app on this database never reads it.
_KEPT = """
CREATE TABLE IF NOT EXISTS kept (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    etag TEXT,
    fetched_at REAL NOT NULL
)
"""
# The prompt helper's calls (a chat model asked to improve a prompt): spending that is no
# job, counted with the jobs against the budgets and the visitor's limits. Added without a
# version, like ``kept``.
_HELPS = """
CREATE TABLE IF NOT EXISTS helps (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    owner TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    key_ref TEXT NOT NULL,
    usd REAL,
    model TEXT NOT NULL DEFAULT ''
)
"""
# Share links (``ledger.shares``): a signed link is good while its row says so. Added
# without a version, like ``kept``.
_SHARES = """
CREATE TABLE IF NOT EXISTS shares (
    share_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL,
    jobs TEXT NOT NULL,
    kept TEXT NOT NULL DEFAULT '',
    shows TEXT NOT NULL DEFAULT '[]',
    kind TEXT NOT NULL DEFAULT 'page'
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
    ("request", "TEXT", None),  # filled by ``_fill_requests``
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
    "CREATE INDEX IF NOT EXISTS helps_key_at ON helps (key_ref, at)",
    "CREATE INDEX IF NOT EXISTS shares_owner ON shares (owner, expires_at)",
)
# The ledger before the runner: its statuses, as states of the machine.
_LEGACY_STATES = {
    "completed": "done",
    "failed": "failed",
    "queued": "queued",
    "generating": "generating",
}


def version_of(db: Database) -> int | None:
    """The stored schema version (None: a ledger from before versions, or a new one)."""
    value = db.value("SELECT value FROM ledger_meta WHERE name = 'schema_version'")
    return None if value is None else int(value)


def set_up(db: Database) -> None:
    """Create the tables, or bring an older ledger up to ``SCHEMA_VERSION`` (the caller
    holds the ``schema`` mutex: one process creates or upgrades it)."""
    db.execute(_META)
    version = version_of(db)
    if version is not None and version > SCHEMA_VERSION:
        raise RuntimeError(
            f"This ledger is version {version}, made by a newer kling-ui; this one knows "
            f"up to {SCHEMA_VERSION}. Update kling-ui, or point it at another database."
        )
    jobs = _JOBS.replace(" REAL", f" {db.time_type}")
    if db.kind == "postgresql":
        jobs = jobs.replace("job_id TEXT PRIMARY KEY,", "job_id TEXT PRIMARY KEY,\n"
                            "    seq BIGINT GENERATED ALWAYS AS IDENTITY,")  # fmt: skip
    db.execute(jobs)
    db.execute(_ACCESS)
    db.execute(_KEPT.replace(" REAL", f" {db.time_type}"))
    db.execute(_HELPS.replace(" REAL", f" {db.time_type}"))
    db.execute(_SHARES.replace(" REAL", f" {db.time_type}"))
    _add_columns(db)
    for sql in _INDEXES + (_BYTE_ORDER_INDEXES if db.kind == "postgresql" else ()):
        db.execute(sql)
    if db.kind == "sqlite":
        _copy_legacy(db)
    if version is None or version < 4:
        _fill_requests(db)
    db.execute(
        "INSERT INTO ledger_meta (name, value) VALUES ('schema_version', ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )


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


def _fill_requests(db: Database) -> None:
    """Schema 4: each older row's request, made from its old columns, stored whole (one
    transaction). Rows an older replica writes later stay without one: ``Job.request``
    reads those from the old columns too."""
    rows = db.rows(
        "SELECT job_id, prompt, negative_prompt, duration, generate_audio FROM jobs"
        " WHERE request IS NULL"
    )
    db.execute_many(
        "UPDATE jobs SET request = ? WHERE job_id = ? AND request IS NULL",
        [(Request.from_columns(row).to_json(), row["job_id"]) for row in rows],
    )


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
