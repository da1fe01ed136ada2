"""A job's life in the simulator: its schedule, its status at any moment (queued, generating,
then completed or error, worked out lazily from the clock), its price, and how a poll shows
it; with the usage log's entry for the create that made it, the record of a request, and the
digest that stands for a key.

Imports the constants of ``vendor.py`` and the rates of ``money.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .money import CREDITS_PER_SECOND, usd
from .vendor import MODERATION


@dataclass
class Schedule:
    queued_s: float = 1.0
    generating_s: float = 3.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict | None
    time: float
    took: float = 0.0  # seconds from its arrival until its answer was written


@dataclass
class Job:
    id: str
    token: str
    created: float
    duration: int
    outcome: str  # complete, error, never
    schedule: Schedule
    ended_at: float | None = None  # set by complete_now / fail_job: the schedule no longer counts
    error_name: str = MODERATION[0]
    error_message: str = MODERATION[1]
    key_id: str = ""  # the key that made it (a digest): another key is told "not found"
    generate_audio: bool = True  # the vendor's default
    credits: int | None = None  # its price, fixed at create (None in older state files)

    @property
    def model(self) -> str:
        """The model the job was made with: its id's suffix (``<uuid>:<model>``)."""
        return self.id.split(":", 1)[1] if ":" in self.id else ""

    def charge_credits(self) -> int:
        """What the job costs once it completes (its price at create)."""
        if self.credits is not None:
            return self.credits
        return self.duration * CREDITS_PER_SECOND[self.generate_audio]

    def finished_at(self) -> float:
        """When the job left queued and generating (or will: inf if never by its schedule)."""
        if self.ended_at is not None:
            return self.ended_at
        if self.outcome == "never":
            return float("inf")
        return self.created + self.schedule.queued_s + self.schedule.generating_s

    def status(self, now: float) -> str:
        if now >= self.finished_at():
            return "error" if self.outcome == "error" else "completed"
        return "queued" if now - self.created < self.schedule.queued_s else "generating"


@dataclass
class LogEntry:
    """One create that made a job, as the usage log keeps it (the key only as a digest)."""

    job_id: str
    key_id: str
    request_id: str
    client_request_id: str | None
    created: float
    visible_at: float  # created + the log lag in force then


def job_view(job: Job, status: str, video_url: Callable[[Job], str]) -> dict[str, Any]:
    """A job as a poll shows it, with ``status``; ``video_url`` makes its link once completed."""
    view: dict[str, Any] = {"id": job.id, "status": status, "video": None, "error": None}
    if status == "completed":
        view["video"] = {"url": video_url(job), "duration": job.duration}
        # The charge lands with completed (request-tracing-and-cost.md).
        credits = job.charge_credits()
        view["meta"] = {"usage": {"credits_used": credits, "usd_spent": usd(credits)}}
    elif status == "error":
        view["error"] = {"name": job.error_name, "message": job.error_message}
    else:
        view["meta"] = None
    return view


def key_id(key: str) -> str:
    """What the usage log keeps of a key: a digest, so no key is ever written to disk."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]
