"""The one vocabulary of a job: the vendor's words, the ledger's states, the page's phases
and the typed reason a job made no video.

Three layers of words, each mapped to the next once, here:

    vendor status ("queued", "active", "succeeded", "error", ...)   -> ``vendor_phase``
    ledger state  (``State``: the runner's machine, stored per job)  -> ``PHASE_OF_STATE``
    page phase    ("waiting", "generating", "completed", "refused", ...) shown on the card

A job that ended without a video carries a ``Reason`` (stored in the ledger's ``reason``
column); the page shows its phase word, the command line picks its exit code from it and
MCP answers it as a field, so no one parses a message's text.

And how each phase is shown, as data: its title and step on the page's card (``SHOWN``,
``CARD_STEPS``), which phases are good news, notices or still running, which have no times
to show, and the command line's progress bar (``BAR_STEPS``). The page (``ui.card``,
``ui.words``, ``ui.wiring``), the command line (``cli.display``) and the ledger's counts read
them here. Imports nothing of ours.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal


class State(str, Enum):
    """Where the ledger says a job is: the runner's machine (``ALLOWED`` says its moves)."""

    QUEUED_HERE = "queued_here"  # waiting for a free slot at the vendor (per key)
    SUBMITTING = "submitting"  # the create is being sent
    UNKNOWN = "unknown"  # the create's answer was lost: looking for the job by its id
    SUBMITTED = "submitted"  # the vendor took it; no status seen yet
    QUEUED = "queued"
    GENERATING = "generating"
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"  # the vendor's job failed (it made no video)
    NOT_CREATED = "not_created"  # no job was made at the vendor (see the reason)
    EXPIRED = "expired"  # made, but its video could not be fetched before its link expired
    CANCELLED = "cancelled"  # stopped before it was sent

    def __str__(self) -> str:
        return self.value


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
STATES = frozenset(s.value for s in State)
FINAL = frozenset({"done", "failed", "not_created", "expired", "cancelled"})
# States in which the vendor may be working (or about to) on the job.
AT_VENDOR = frozenset({"submitting", "unknown", "submitted", "queued", "generating"})
# Ended states in which no job was made at the vendor (never sent, refused, cancelled).
NOT_MADE = frozenset({"not_created", "cancelled"})
# Ended states that made no video at the vendor: nothing is owed for them.
UNPAID = NOT_MADE | {"failed"}
# States in which the vendor has finished the video (being fetched, or fetched).
VIDEO_MADE = frozenset({"downloading", "done"})


class Reason(str, Enum):
    """Why a job made no video, typed: stored in the ledger, read by the page, CLI and MCP.

    The values are the words older ledgers already hold, so old rows read as before."""

    NOT_SENT = "not sent"  # it never left us: a request the API would refuse, no connection
    REFUSED = "refused"  # the API refused the create (the request, its size, its content)
    KEY_OR_MONEY = "key or money"  # refused for the key (wrong, revoked) or the balance
    NOT_CREATED = "not created"  # the create's answer was lost and the job never showed
    FAILED = "failed"  # the vendor's job failed
    EXPIRED = "expired"  # the video's link expired before it could be fetched
    CANCELLED = "cancelled"  # stopped before it was sent

    def __str__(self) -> str:
        return self.value

    @property
    def phase(self) -> str:
        """The page's word for a job that ended this way."""
        return "refused" if self is Reason.KEY_OR_MONEY else self.value

    @classmethod
    def read(cls, value: object) -> Reason | None:
        """A stored reason (``None`` for a job without one, or a word we no longer know)."""
        try:
            return cls(value) if value else None
        except ValueError:
            return None


# --- the vendor's words -------------------------------------------------------------------

# Where the vendor says a job is.
VendorPhase = Literal[
    "queued",
    "generating",
    "completed",  # with a video address
    "failed",
    "unknown",  # a status the contract does not list (or "completed" without a video)
]
# The contract's statuses, plus the ones the vendor's own samples treat as pending or done.
VENDOR_QUEUED = frozenset({"queued", "waiting"})
VENDOR_GENERATING = frozenset({"generating", "active", "processing", "in_progress"})
VENDOR_COMPLETED = frozenset({"completed", "complete", "succeeded", "success"})
VENDOR_FAILED = frozenset({"error", "failed", "failure"})


def vendor_phase(status: str, has_video: bool) -> VendorPhase:
    """The vendor's status word (lower-cased) as our phase; never raises.

    A job is never called failed by us: only the vendor's own failure words fail it, and
    "completed" without a video address is still unknown (the next poll may bring it)."""
    if status in VENDOR_QUEUED:
        return "queued"
    if status in VENDOR_GENERATING:
        return "generating"
    if status in VENDOR_COMPLETED and has_video:
        return "completed"
    if status in VENDOR_FAILED:
        return "failed"
    return "unknown"


# --- the page's words ---------------------------------------------------------------------

PHASE_OF_STATE: dict[str, str] = {
    "queued_here": "waiting",
    "submitting": "submitting",
    "unknown": "checking",
    "submitted": "submitted",
    "queued": "queued",
    "generating": "generating",
    "downloading": "downloading",
    "done": "completed",
    "failed": "failed",
    "not_created": "not created",
    "expired": "expired",
    "cancelled": "cancelled",
}
# Phases of a job that is still going somewhere.
RUNNING_PHASES = frozenset(
    {"waiting", "submitting", "checking", "submitted", "queued", "generating", "unknown",
     "downloading"}
)  # fmt: skip
# Phases of a job that has ended, or that no one is watching any more.
FINAL_PHASES = frozenset(
    {"completed", "failed", "stopped", "refused", "not sent", "not created", "not found",
     "expired", "cancelled", "paused"}
)  # fmt: skip


def phase_of(state: str, reason: object = None) -> str:
    """The page's word for a ledger state (a job that made nothing says why)."""
    typed = Reason.read(reason)
    if state == "not_created" and typed is not None:
        return typed.phase
    return PHASE_OF_STATE.get(state, "unknown")


# --- how each phase is shown ----------------------------------------------------------------

# Phases the page says about a watch, not about a job: no ledger state maps to them.
STOPPED = "stopped"  # this page stopped watching; the job carries on
PAUSED = "paused"  # the runner holds the job for its owner
NOT_FOUND = "not found"  # an id the vendor did not know
NOT_RESUMED = "not resumed"  # a resume that failed (its message says why)
OUTCOME_UNKNOWN = "outcome unknown"  # the create's answer was lost before there was a job
WATCH_PHASES = frozenset({STOPPED, PAUSED, NOT_FOUND, NOT_RESUMED, OUTCOME_UNKNOWN})

# The card's steps, in order: (name, label).
CARD_STEPS: tuple[tuple[str, str], ...] = (
    ("checked", "Checked"),
    ("sent", "Sent"),
    ("queued", "Queued"),
    ("generating", "Generating"),
    ("downloading", "Downloading"),
    ("done", "Done"),
)
# Every phase the page can show -> (the card's step it is at, its title on the card).
SHOWN: dict[str, tuple[str, str]] = {
    "waiting": ("sent", "Waiting for a free slot here"),
    "submitting": ("sent", "Sending to the API"),
    "checking": ("sent", "Checking whether the job was made"),
    "submitted": ("queued", "Sent; waiting for the API"),
    "queued": ("queued", "Queued at the API"),
    "generating": ("generating", "Generating"),
    "unknown": ("generating", "Still running"),
    "downloading": ("downloading", "Downloading the video"),
    "completed": ("done", "Done"),
    "failed": ("generating", "Failed"),
    "expired": ("downloading", "Expired"),
    "refused": ("sent", "Refused"),
    "not sent": ("sent", "Not sent"),
    "not created": ("sent", "Not created"),
    NOT_FOUND: ("checked", "Not found"),
    NOT_RESUMED: ("checked", "Not resumed"),
    OUTCOME_UNKNOWN: ("sent", "Outcome unknown"),
    "cancelled": ("sent", "Cancelled"),
    STOPPED: ("generating", "Stopped watching"),
    PAUSED: ("sent", "Paused"),
}
# The one phase that is good news: the video is there.
GOOD_PHASES = frozenset({"completed"})
# Ended without a video, or not watched any more, but no one's fault: said as a notice.
NOTICE_PHASES = frozenset({STOPPED, PAUSED, "cancelled"})
# Phases before the vendor has a job: the card shows no total time for them ...
BEFORE_VENDOR = frozenset({"waiting", "submitting", "checking"})
# ... and no time left for those with no create on its way.
NO_ETA = frozenset({"waiting", "checking"})
# Phases before the vendor has a job, or when it never had one: no times to show.
NO_TIMES = (
    BEFORE_VENDOR
    | {NOT_FOUND}
    | {r.phase for r in (Reason.REFUSED, Reason.NOT_SENT, Reason.NOT_CREATED, Reason.CANCELLED)}
)
# Phases in which the vendor has made the video (it may still be on its way here).
VIDEO_PHASES = frozenset(PHASE_OF_STATE[s] for s in VIDEO_MADE)

# The command line's progress bar: its steps, in order (a phase that ends a job without a
# video fills it too); "checking" stands with "submitting", "paused" with "queued".
BAR_STEPS = (
    "waiting",
    "submitting",
    "submitted",
    "queued",
    "generating",
    "downloading",
    "completed",
)
BAR_STEP_OF: dict[str, int] = {
    "checking": 1,
    PAUSED: 3,
    **{phase: n for n, phase in enumerate(BAR_STEPS)},
}
