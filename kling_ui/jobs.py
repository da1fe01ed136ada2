"""The vendor's job, in our terms: the one parser of its poll answer, and what the page shows.

Owns ``parse_generation`` (any JSON the API sends about a job, as a ``JobStatus``; never
raises) and the typed ``Progress`` values the page renders. The vendor's status words are
mapped to our phases once, in ``states.vendor_phase``; a job is never called failed by us:
only the vendor's own failure words (or its 504) fail it. The runner does the polling; the
client's other answers are read in ``client.parsers``.
Imports ``states``; never gradio or Pillow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import states
from .states import VendorPhase, vendor_phase

log = logging.getLogger(__name__)

# Where the vendor says a job is (the vendor's words are mapped in ``states.vendor_phase``).
Phase = VendorPhase
# The page's words for a job that has ended, or that no one is watching any more.
FINAL_PHASES = states.FINAL_PHASES


@dataclass(frozen=True)
class JobStatus:
    """The vendor's answer about one job, in our terms."""

    generation_id: str
    status: str  # the vendor's word, lower-cased
    phase: Phase
    video_url: str | None = field(default=None, repr=False)
    error_name: str | None = None
    error_message: str | None = None
    credits: float | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_generation(payload: Any, generation_id: str | None = None) -> JobStatus:
    """Turn any JSON the API sends about a job into a ``JobStatus``; never raises."""
    data = payload if isinstance(payload, dict) else {}
    gid = data.get("id") if isinstance(data.get("id"), str) else None
    gid = gid or generation_id or ""
    raw_status = data.get("status")
    status = raw_status.strip().lower() if isinstance(raw_status, str) else ""

    video = data.get("video")
    url = video.get("url") if isinstance(video, dict) else None
    url = url if isinstance(url, str) and url else None

    error = data.get("error")
    error_name = error_message = None
    if isinstance(error, dict):
        error_name = str(error["name"]) if error.get("name") is not None else None
        error_message = str(error["message"]) if error.get("message") is not None else None
    elif isinstance(error, str) and error:
        error_message = error

    credits = None
    meta = data.get("meta")
    usage = meta.get("usage") if isinstance(meta, dict) else None
    if isinstance(usage, dict):
        credits = _number(usage.get("credits_used"))
        if credits is None:
            credits = _number(usage.get("tokens_used"))

    phase = vendor_phase(status, url is not None)
    return JobStatus(gid, status, phase, url, error_name, error_message, credits)


@dataclass(frozen=True)
class Progress:
    """One update about a job, as the page shows it."""

    generation_id: str
    phase: str  # the page's word: "waiting", "generating", "completed", "refused", ...
    message: str
    elapsed: float = 0.0
    queued_for: float = 0.0
    generating_for: float = 0.0
    credits: float | None = None
    video_path: Path | None = None
    simulated: bool = False  # a demo job: its credits are what a real one would use
    job_id: str = ""  # our id for the job (the create's X-Client-Request-Id)
    recovered: bool = False  # the create's answer was lost, and the job found again
    video_url: str | None = None  # where the page finds the video: /media/<token>.mp4
    estimate_usd: float | None = None  # the price when it was sent
    charged_usd: float | None = None  # what the vendor charged (0 when it made nothing)

    @property
    def final(self) -> bool:
        return self.phase in FINAL_PHASES
