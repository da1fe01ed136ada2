"""What one click does, without any web framework: check, submit, record, watch, deliver.

Owns the choice of backend for a request (the real API with the user's key or the
server's, or the demo simulator), the ledger writes that make a paid-for job
impossible to lose, and the names of downloaded videos. The page (``ui.py``) only
renders the ``Progress`` values these generators yield; programs and tests can use
them directly.

Imports: ``client``, ``config``, ``errors``, ``history``, ``images``, ``jobs``, ``rules``;
the simulator's ``DemoSimulator`` is handed in by app.py. Never gradio.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import errors
from .client import AIMLClient, Sessions
from .config import Settings
from .history import Entry, Ledger
from .images import prepare_image
from .jobs import Progress, submit_generation, watch_generation
from .rules import (
    GenerationRequest,
    check_generation_id,
    check_new_generation_id,
    check_text_fields,
)

if TYPE_CHECKING:
    from .simulator import DemoSimulator

log = logging.getLogger(__name__)

DEMO = "demo"  # the local simulator (as recorded in the ledger)
LIVE = "live"  # the real API (as recorded in the ledger)
TYPED = "typed"  # the real API with the key typed in the page
SERVER = "server"  # the real API with the server's key


def choose_backend(
    settings: Settings, *, typed_key: str, recorded: str | None, demo_ready: bool
) -> str:
    """Where one request goes: ``TYPED``, ``SERVER`` or ``DEMO``; or a refusal in words.

    The one rule, in order: a job keeps the backend it was made on (a demo job stays in the
    demo; a real one is never sent to the simulator); a typed key means the real API; a
    Space or ``--require-user-key`` wants a typed key; demo mode; the server's key.
    """
    if recorded == DEMO:
        if demo_ready:
            return DEMO
        raise errors.AuthenticationError(
            "This job ran in demo mode, which is off now. It can't be resumed here."
        )
    if typed_key:
        return TYPED
    if settings.require_user_key:
        raise errors.AuthenticationError(
            "This app needs your own AIML API key: enter it in the API key field."
        )
    server_key_usable = bool(settings.api_key) and not settings.demo
    if recorded == LIVE and not server_key_usable:
        raise errors.AuthenticationError(
            "This job was made on the real API: enter your AIML API key to resume it."
        )
    if recorded != LIVE and settings.demo_mode and demo_ready:
        return DEMO
    if settings.api_key:
        return SERVER
    raise errors.AuthenticationError(
        "No API key is set. Enter your AIML API key in the API key field."
    )


@dataclass(frozen=True)
class Backend:
    """Where one request goes, and with which key."""

    name: str  # DEMO or LIVE
    settings: Settings
    api_key: str = field(repr=False)


def video_filename(prompt: str, generation_id: str) -> str:
    """A file name a person recognises: words of the prompt, then the start of the id."""
    text = unicodedata.normalize("NFKD", prompt or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-") or "video"
    short = re.sub(r"[^a-zA-Z0-9]", "", generation_id.split(":", 1)[0])[:8] or "job"
    return f"kling-{slug}-{short}.mp4"


class GenerationService:
    """Runs and resumes generations for every user of one app process."""

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        demo: DemoSimulator | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.ledger = ledger or Ledger(settings.ledger_path)
        self.demo = demo
        self._clock = clock
        self._sleep = sleep
        self._sessions = Sessions.for_settings(settings)
        settings.videos_dir.mkdir(parents=True, exist_ok=True)

    # --- which API, which key ---------------------------------------------------------

    @property
    def demo_mode(self) -> bool:
        """True when a request without a typed key goes to the simulator."""
        return self.demo is not None and self.settings.demo_mode

    def backend_for(self, user_key: str | None, *, recorded: str | None = None) -> Backend:
        """The backend for one request (see ``choose_backend``), with its address and key."""
        typed = (user_key or "").strip()
        choice = choose_backend(
            self.settings, typed_key=typed, recorded=recorded, demo_ready=self.demo is not None
        )
        if choice == DEMO:
            assert self.demo is not None
            url = self.demo.base_url()
            return Backend(DEMO, self.settings.with_(base_url=url), self.demo.key)
        key = typed if choice == TYPED else self.settings.api_key
        return Backend(LIVE, self.settings, key or "")

    def _client(self, backend: Backend) -> AIMLClient:
        sessions = self._sessions if backend.name == LIVE else None
        return AIMLClient(backend.api_key, backend.settings, sessions)

    # --- the two flows ------------------------------------------------------------------

    def generate(
        self,
        image: str | None,
        prompt: str,
        negative_prompt: str = "",
        duration: int = 5,
        generate_audio: bool = True,
        api_key: str | None = None,
        *,
        fit: str = "reject",
    ) -> Iterator[Progress]:
        """Check everything, create the job once, record it, then watch it to the end.

        Raises ``KlingUIError`` before anything is sent (bad input, no key) and when the
        create fails; once there is an id, problems are reported as ``Progress``.
        """
        if image is None or (isinstance(image, str) and not image.strip()):
            raise errors.InputError("Add an image first: upload, paste or take a photo.")
        # The text fields are checked before the image work starts.
        fields = check_text_fields(prompt, negative_prompt, duration, generate_audio)
        backend = self.backend_for(api_key)
        prepared = prepare_image(image, fit=fit)  # type: ignore[arg-type]
        request = GenerationRequest(prepared.data_uri, *fields)
        client = self._client(backend)
        job = submit_generation(client, request)
        self._record_new(job.generation_id, request, backend.name, job.credits)
        note = f" ({prepared.adjusted})" if prepared.adjusted else ""
        yield Progress(
            generation_id=job.generation_id,
            phase="submitted",
            message=f"Submitted{note}. Keep this id: the job can be resumed with it.",
            vendor_status=job.status,
            credits=job.credits,
            simulated=backend.name == DEMO,
        )
        yield from self._watch(client, job.generation_id, backend.name)

    def _record_new(
        self, gid: str, request: GenerationRequest, backend: str, credits: float | None
    ) -> None:
        """The ledger row of a job just created: written before the first poll."""
        self.ledger.record_submitted(
            gid,
            backend=backend,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            duration=request.duration,
            generate_audio=request.generate_audio,
            status="submitted",
            credits=credits,
            created_at=self._clock(),
        )

    def resume(self, generation_id: str, api_key: str | None = None) -> Iterator[Progress]:
        """Pick a job up again by id: play it if we have it, else watch it to the end.

        An id the ledger doesn't know must look like the vendor's ids, and is recorded only
        once the vendor has answered about it: a mistyped id leaves no trace.
        """
        gid = check_generation_id(generation_id)
        entry = self.ledger.get(gid)
        if entry is None:
            check_new_generation_id(gid)
        if entry and entry.video_path and Path(entry.video_path).exists():
            elapsed, queued, generating = entry.timings(self._clock())
            yield Progress(
                generation_id=gid,
                phase="completed",
                message="Done. The video is ready.",
                vendor_status="completed",
                elapsed=elapsed,
                queued_for=queued,
                generating_for=generating,
                credits=entry.credits,
                video_path=Path(entry.video_path),
                simulated=entry.backend == DEMO,
            )
            return
        backend = self.backend_for(api_key, recorded=entry.backend if entry else None)
        yield from self._watch(self._client(backend), gid, backend.name)

    def entry(self, generation_id: str) -> Entry | None:
        """The ledger's row for this id, or None."""
        return self.ledger.get(generation_id) if generation_id else None

    def knows(self, generation_id: str) -> bool:
        """True when the ledger holds this id (it was created here, or the vendor knew it)."""
        return bool(generation_id) and self.ledger.get(generation_id) is not None

    def _watch(self, client: AIMLClient, gid: str, backend: str) -> Iterator[Progress]:
        """Poll to the end, keeping the ledger's status and phase times up to date."""
        entry = self.ledger.get(gid)
        prompt = entry.prompt if entry else ""
        created = entry.created_at if entry else self._clock()
        dest = self.settings.videos_dir / video_filename(prompt, gid)
        last_status = None
        for update in watch_generation(
            client,
            gid,
            poll_interval=self.settings.poll_interval,
            deadline=self.settings.watch_deadline,
            started_at=created,
            download_to=dest,
            clock=self._clock,
            sleep=self._sleep,
        ):
            if entry is None and _vendor_knows(update):
                entry = self.ledger.record_submitted(
                    gid,
                    backend=backend,
                    prompt="",
                    negative_prompt="",
                    duration=5,
                    generate_audio=True,
                    status="submitted",
                    created_at=created,
                )
            if entry is not None:
                status = _ledger_status(update)
                if update.final or status != last_status:
                    self.ledger.update(
                        gid,
                        status=status,
                        message=update.message,
                        credits=update.credits,
                        video_path=str(update.video_path) if update.video_path else None,
                    )
                    last_status = status
                entry = self._mark_phases(entry, update)
                elapsed, queued, generating = entry.timings(self._clock())
                update = replace(
                    update, elapsed=elapsed, queued_for=queued, generating_for=generating
                )
            yield replace(update, simulated=backend == DEMO)

    def _mark_phases(self, entry: Entry, update: Progress) -> Entry:
        """Note the first time each phase was seen; return the ledger's fresh view."""
        phase = _phase_seen(update)
        if phase is None:
            return entry
        self.ledger.mark_phase(entry.id, phase, self._clock())
        return self.ledger.get(entry.id) or entry

    def entries(self, ids: list[str]) -> list[Entry]:
        """The ledger's view of these ids, newest first; unknown ids are left out."""
        found = self.ledger.get_many(ids)
        return sorted(found.values(), key=lambda e: e.created_at, reverse=True)

    def mark_stopped(self, generation_id: str) -> None:
        entry = self.ledger.get(generation_id)
        if entry and not entry.finished:
            self.ledger.update(
                generation_id,
                status="stopped",
                message="Stopped watching; the job goes on at the vendor. Resume it any time.",
            )


def _vendor_knows(update: Progress) -> bool:
    """The vendor answered about this id (a status, or its own failure of the job)."""
    return (
        update.error is None
        and update.phase != "stopped"
        or isinstance(update.error, errors.GenerationFailed)
    )


def _phase_seen(update: Progress) -> str | None:
    if update.phase == "queued":
        return "queued"
    if update.phase == "generating":
        return "generating"
    if update.phase in ("downloading", "completed") or isinstance(
        update.error, errors.GenerationFailed
    ):
        return "finished"
    return None


def _ledger_status(update: Progress) -> str:
    if update.phase in ("retrying", "unknown", "downloading"):
        return "generating" if update.vendor_status != "queued" else "queued"
    if update.phase == "failed" and update.resumable:
        return "interrupted"
    return update.phase
