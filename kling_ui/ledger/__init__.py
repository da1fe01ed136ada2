"""The ledger of jobs: every job from before its create until its video is on disk.

A row is written before anything is sent (its ``job_id`` is the ``X-Client-Request-Id`` the
create carries), so a crash at any point loses nothing and never repeats a create: a row found
in ``submitting`` after a restart is looked up in the vendor's log, never sent again. It holds
the ids, the time, the request whole (as JSON: model, prompt, the model's fields, image
links), the backend ("demo" or "live"), the state, the typed reason a job made no video
(``states.Reason``), the credits, when each phase was first seen and the local video path:
never an API key, never the image bytes (a batch item's prepared image waits in a file of
its own until it is sent; the service keeps each job's image for Remix in a file of its own
too).

The ledger enforces the job's state machine (``states.ALLOWED``, in ``Ledger.transition``):
no skipped or backward step::

    queued_here ─► submitting ─► submitted ─► queued ─► generating ─► downloading ─► done
      │   ▲            │   │  └──► unknown ─┘ (found in the vendor's log)   │
      │   └────────────┘   │         │                                      │
      │   turned away (429/503:      ▼                                      ▼
      ▼   nothing was created)   not_created ◄── refused at create       failed, expired
    cancelled                                                  (from submitted onward)

``submitted``, ``queued`` and ``generating`` may each go straight to any later phase (a job
watched by nobody can finish between two polls). ``cancelled`` is for batch items a person
cancelled before they were sent.

The schema apart from the queries (as procrastinate keeps them): ``schema`` holds the
tables, indexes, versions and migrations (SQLite and PostgreSQL); ``job`` a row as a value
(``Job``); ``table`` the database opened with its schema set up; ``queries`` (``Ledger``:
write and read jobs), ``leases`` (which runner runs a job), ``counts`` (what limits and
budgets count), ``kept`` (the vendor's answers kept) and ``shares`` (share links) the
queries. Under it, ``database`` (SQLite, one short connection per call in
WAL mode, or PostgreSQL). Imports ``database``, ``states`` and ``request``.
"""

from __future__ import annotations

from ..states import ALLOWED, AT_VENDOR, FINAL, STATES
from .job import SHORT_ID, IllegalTransition, Job, new_job_id
from .queries import PHASE_COLUMNS, Ledger, short_id_query
from .schema import LEGACY_OWNER, SCHEMA_VERSION

__all__ = [
    "ALLOWED",
    "AT_VENDOR",
    "FINAL",
    "LEGACY_OWNER",
    "PHASE_COLUMNS",
    "SCHEMA_VERSION",
    "SHORT_ID",
    "STATES",
    "IllegalTransition",
    "Job",
    "Ledger",
    "new_job_id",
    "short_id_query",
]
