"""The life of one generation: submit it, then watch it until it is done.

Owns the one parser of the vendor's job shape (``parse_generation``), the typed
``Progress`` values the page renders, and the polling generator ``watch_generation``
with its soft deadline. Its clock and sleep are arguments, so tests never sleep.

A job is never called failed by us: only the vendor's ``error`` status (or its 504)
fails it. When our deadline passes we stop watching and say it can be resumed.
Imports: ``client``, ``errors``, ``rules``; never gradio or Pillow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from . import errors
from .client import AIMLClient
from .rules import GenerationRequest

log = logging.getLogger(__name__)

# The contract's statuses, plus the two the vendor's own sample treats as pending.
PENDING_QUEUED = frozenset({"queued", "waiting"})
PENDING_GENERATING = frozenset({"generating", "active", "processing", "in_progress"})

Phase = Literal[
    "submitted",  # the create returned an id
    "queued",
    "generating",
    "unknown",  # a status the contract does not list: still watching
    "retrying",  # a poll failed for a passing reason: still watching
    "downloading",
    "completed",  # the video is on our disk (or, without a download, at its URL)
    "failed",  # the vendor failed it, or a permanent error ended the watch
    "stopped",  # we stopped watching (deadline or the user): the job may go on
]
FINAL_PHASES = frozenset({"completed", "failed", "stopped"})


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

    phase: Phase
    if status in PENDING_QUEUED:
        phase = "queued"
    elif status in PENDING_GENERATING:
        phase = "generating"
    elif status in ("completed", "complete", "succeeded", "success") and url:
        phase = "completed"
    elif status in ("error", "failed", "failure"):
        phase = "failed"
    else:
        phase = "unknown"  # includes "completed" without a video URL
    return JobStatus(gid, status, phase, url, error_name, error_message, credits)


@dataclass(frozen=True)
class Progress:
    """One update about a job, as the page shows it."""

    generation_id: str
    phase: Phase
    message: str
    vendor_status: str = ""
    elapsed: float = 0.0
    queued_for: float = 0.0
    generating_for: float = 0.0
    credits: float | None = None
    polls: int = 0
    video_url: str | None = field(default=None, repr=False)
    video_path: Path | None = None
    error: errors.KlingUIError | None = field(default=None, repr=False)
    simulated: bool = False  # a demo job: its credits are what a real one would use

    @property
    def final(self) -> bool:
        return self.phase in FINAL_PHASES

    @property
    def resumable(self) -> bool:
        """Worth resuming: the job may still finish, or its video can still be fetched."""
        if self.phase == "stopped":
            return True
        if self.phase == "failed":
            # A failed download, a wrong key or a lost connection can be retried by id;
            # a job the vendor failed or does not know cannot.
            return not isinstance(
                self.error, (errors.GenerationFailed, errors.NotFoundError, errors.InputError)
            )
        return not self.final


def submit_generation(client: AIMLClient, request: GenerationRequest) -> JobStatus:
    """Create the job once. Any failure here raises; nothing is ever re-sent by us."""
    response = client.create_generation(request)
    job = parse_generation(response.payload)
    if job.credits is None and response.credits_header is not None:
        job = replace(job, credits=response.credits_header)
    log.info("submitted generation %s", job.generation_id)
    return job


# Errors after which the next poll may well succeed: keep watching.
_TRANSIENT = (errors.RateLimitError, errors.ServerError, errors.APIConnectionError)


@dataclass
class _Watch:
    """What one watch has seen so far: polls, credits, the vendor's word, time per phase.

    Time in a phase is counted from the poll that first saw it."""

    generation_id: str
    created: float
    clock: Callable[[], float]
    polls: int = 0
    credits: float | None = None
    vendor_status: str = ""
    queued_for: float = 0.0
    generating_for: float = 0.0
    last_phase: str | None = None
    last_time: float = 0.0
    last_job: JobStatus | None = None

    def progress(self, phase: Phase, message: str, **extra: Any) -> Progress:
        return Progress(
            generation_id=self.generation_id,
            phase=phase,
            message=message,
            vendor_status=self.vendor_status,
            elapsed=max(0.0, self.clock() - self.created),
            queued_for=self.queued_for,
            generating_for=self.generating_for,
            credits=self.credits,
            polls=self.polls,
            **extra,
        )

    def saw(self, job: JobStatus, credits_header: float | None, now: float) -> None:
        """Take in one answer of the vendor's."""
        self.last_job = job
        if job.credits is not None:
            self.credits = job.credits
        elif credits_header is not None:
            self.credits = credits_header
        self.vendor_status = job.status
        if self.last_phase == "queued":
            self.queued_for += now - self.last_time
        elif self.last_phase == "generating":
            self.generating_for += now - self.last_time
        if job.phase in ("queued", "generating"):
            self.last_phase = job.phase
        self.last_time = now


def watch_generation(
    client: AIMLClient,
    generation_id: str,
    *,
    poll_interval: float = 2.0,
    deadline: float = 30 * 60.0,
    started_at: float | None = None,
    download_to: Path | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Progress]:
    """Poll one job until it is done; yield a ``Progress`` after every poll.

    ``started_at`` is when the job was created (for elapsed time after a resume).
    ``deadline`` counts from the start of this watch: when it passes we yield a final
    ``stopped`` update that says the job may still finish. With ``download_to`` set, the
    finished video is fetched there before the final ``completed`` update.
    """
    watch_start = clock()
    created = started_at if started_at is not None else watch_start
    state = _Watch(generation_id, created, clock, last_time=watch_start)
    while True:
        poll_started = clock()
        update = _poll_once(client, state)
        if update is None:  # the job is done: the vendor's answer says how
            yield from _ended(client, state, download_to)
            return
        yield update
        if update.final:
            return
        if clock() - watch_start >= deadline:
            timeout = errors.GenerationTimeout()
            yield state.progress("stopped", timeout.user_message, error=timeout)
            return
        sleep(max(0.0, poll_interval - (clock() - poll_started)))


def _poll_once(client: AIMLClient, state: _Watch) -> Progress | None:
    """One poll, as the update to show; ``None`` when the vendor says the job has ended."""
    state.polls += 1
    try:
        response = client.get_generation(state.generation_id)
    except _TRANSIENT as exc:
        return state.progress("retrying", f"{exc.user_message} Still watching.", error=exc)
    except errors.KlingUIError as exc:
        # Permanent: a bad key, an unknown id, the vendor's 504. Stop, and say why.
        return state.progress("failed", exc.user_message, error=exc)
    job = parse_generation(response.payload, state.generation_id)
    state.saw(job, response.credits_header, state.clock())
    if job.phase in ("completed", "failed"):
        return None
    if job.phase == "queued":
        return state.progress("queued", "Queued at the vendor, waiting for a worker.")
    if job.phase == "generating":
        return state.progress("generating", "Generating the video.")
    shown = job.status or "(none)"
    return state.progress(
        "unknown", f"The API reported a status we don't know ({shown!r}); still watching."
    )


def _ended(client: AIMLClient, state: _Watch, download_to: Path | None) -> Iterator[Progress]:
    job = state.last_job
    assert job is not None  # only called after the vendor answered
    if job.phase == "failed":
        vendor_text = job.error_message or job.error_name
        # The vendor may echo a credential: the client scrubs its own key, not just shapes.
        failure = errors.GenerationFailed(
            vendor_message=client.redact(vendor_text) if vendor_text else None
        )
        yield state.progress("failed", failure.user_message, error=failure)
        return
    if download_to is None:
        yield state.progress("completed", "Done.", video_url=job.video_url)
        return
    yield state.progress("downloading", "Done at the vendor; downloading the video.")
    try:
        path = client.download_video(job.video_url or "", download_to)
    except errors.KlingUIError as exc:
        yield state.progress("failed", exc.user_message, error=exc, video_url=job.video_url)
        return
    yield state.progress(
        "completed", "Done. The video is ready.", video_url=job.video_url, video_path=path
    )
