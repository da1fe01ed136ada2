"""A job as the page and programs see it: ``Progress`` snapshots, watched, and a status.

Owns the view of a ledger row: its page phase (``states.phase_of``; "paused" while the
runner holds it for its owner), its video's address or, for a continuation, its whole
chain's, what it cost, why it made no video (the typed ``Reason``, in ``status``), and the
watch that yields a snapshot at each change until the job ends or ``watch_deadline``
passes. The runner owns the job itself: watching ends when the watcher goes, never the job.

Imports ``config``, ``errors``, ``history``, ``jobs``, ``runner``, ``states`` and the
service's ``access`` (the demo's name) and ``library`` (addresses, chains).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import errors
from ..config import Settings
from ..history import Job, Ledger
from ..jobs import Progress
from ..runner import Runner
from ..states import UNPAID, Reason, phase_of
from .access import DEMO
from .library import Library

NOT_KNOWN = (
    "The API does not know this generation id. Check that it was copied whole and belongs "
    "to the same API key."
)
SUBMITTED_REST = "Keep this id: the job can be resumed with it."


class JobViews:
    """Snapshots of jobs for the page (``Progress``) and for programs (``status``)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        runner: Runner,
        library: Library,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.runner = runner
        self.library = library
        self._clock = clock

    def follow(self, job_id: str, *, submitted_note: str = "") -> Iterator[Progress]:
        """The job as it changes, until it ends or ``watch_deadline`` passes."""
        last = None
        for job in self.runner.watch(job_id, timeout=self.settings.watch_deadline):
            last = self.progress(job)
            if job.state == "submitted" and submitted_note:
                last = replace(last, message=f"Submitted{submitted_note}. {SUBMITTED_REST}")
            yield last
        if self.ledger.get(job_id) is None:  # an adopted id the vendor did not know
            yield Progress("", "not found", NOT_KNOWN, job_id=job_id)
        elif last is not None and not last.final and last.phase != "paused":
            timeout = errors.GenerationTimeout()
            yield replace(last, phase="stopped", message=timeout.user_message)

    def progress(self, job: Job) -> Progress:
        """One snapshot of a job, as the page shows it."""
        elapsed, queued, generating = job.timings(self._clock())
        why = Reason.read(job.reason) if job.state == "not_created" else None
        paused = why is None and self.runner.paused(job.job_id)
        phase = "paused" if paused else phase_of(job.state, job.reason)
        video = Path(job.video_path) if job.video_path else None
        url = self.library.video_url(job) if video and video.exists() else None
        message = job.message
        # A continuation: the page and programs get the whole chain; a part continued since
        # shows itself (the line's one stitched copy is the latest chain's, chains.py).
        chains = self.library.chains
        chain = self.library.chain_video(job) if job.parent_id and chains.latest(job) else None
        if chain is not None:
            video, url = chain, self.library.chain_url(job)
            message = f"{message} The whole chain ({len(chains.parts(job))} parts) is ready."
        confirmed = not self.runner.unconfirmed(job.job_id)
        return Progress(
            generation_id=job.shown_id if confirmed else "",
            phase=phase,
            message=message,
            elapsed=elapsed,
            queued_for=queued,
            generating_for=generating,
            credits=job.credits,
            video_path=video if video and video.exists() else None,
            simulated=job.backend == DEMO,
            job_id=job.job_id,
            recovered=job.recovered,
            video_url=url,
            estimate_usd=job.estimate_usd,
            charged_usd=job.charged_usd if job.charged_usd is not None else _unpaid(job),
        )

    def status(self, job: Job) -> dict[str, Any]:
        """One snapshot of a job, for programs: never waits. ``reason``: why it ended without
        a video, typed (``states.Reason``), or None."""
        update = self.progress(job)
        return {
            "job_id": job.job_id,
            "generation_id": job.generation_id,
            "state": job.state,
            "phase": update.phase,
            # Why it made no video, typed (``states.Reason``'s value; null while it may still
            # make one): "key or money" and "refused" call for different next steps.
            "reason": job.reason.value if job.reason is not None else None,
            "message": job.message,
            "final": job.final,
            "recovered": job.recovered,
            "elapsed_s": round(update.elapsed, 1),
            "credits": job.credits,
            "estimate_usd": job.estimate_usd,
            "charged_usd": update.charged_usd,
            "video": update.video_url,
            "simulated": update.simulated,
            "batch_id": job.batch_id,
            # What was asked: the model and every field the create carried (not the images).
            "model": job.request.model,
            "options": dict(job.request.options),
        }


def _unpaid(job: Job) -> float | None:
    """$0 for a job that made nothing at the vendor; None (not known yet) otherwise."""
    return 0.0 if job.state in UNPAID else None
