"""The job store: the simulator's jobs and everything that follows from them, behind one lock.

Each job moves through queued, generating and completed (or error) on its schedule, worked
out lazily from ``clock`` (``jobs.py``); it is priced at create by the pricing block in force
and charged to its key's account once it completes (``money.py``); its create is a row of
the usage log (``usage_log.py``); its clip is served by ``clips.py``. The outcomes of the
next jobs, the log lag, the active limit per key and the price are scripted here. With a
state file every change is written whole (``files.write_atomic``), so demo mode's jobs
outlive the process; its times are then wall-clock times.

``server.Simulator`` is a JobStore that also serves it over HTTP. Imports ``files`` and the
package's ``jobs``, ``money``, ``usage_log``, ``clips``, ``schemas`` and ``vendor``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..files import write_atomic
from . import schemas
from .clips import Clips
from .jobs import Job, LogEntry, Schedule, job_view, key_id
from .money import Accounts, price_credits, pricing_document, usd
from .usage_log import UsageLog
from .vendor import MODEL, MODERATION, valid_client_request_id

SIBLINGS = ("klingai/video-v2-6-pro-",)  # ours and its text-to-video sibling

log = logging.getLogger(__name__)

OUTCOMES = ("complete", "error", "never")


class JobStore:
    """The jobs, their money, their usage log and their clips; ``_lock`` guards it all."""

    def __init__(
        self,
        *,
        schedule: Schedule | None,
        state_path: Path | None,
        clock: Callable[[], float],
        log_lag: float,
        max_active_per_key: int | None,
        scope_jobs_to_keys: bool,
        balance: float,
        video_path: Path,
        video_bytes: int | None,
        clips: str,
        video_url: Callable[[Job], str],
    ) -> None:
        # As the vendor: a job is shown only to the key that made it (demo mode turns this off:
        # its key is made anew each start, and its jobs outlive that).
        self.scope_jobs_to_keys = scope_jobs_to_keys
        self.schedule = schedule or Schedule()
        self.state_path = state_path
        # A state file outlives the process, so its times must be wall-clock times.
        self.clock = time.time if self.state_path else clock
        self.log_lag = self._initial_log_lag = log_lag
        self.max_active_per_key = self._initial_max_active = max_active_per_key
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._outcomes: deque[str] = deque()
        self._pricing: dict[str, Any] | None = pricing_document("variants")
        self._accounts = Accounts(balance)
        # What the usage log adds to ``clock`` to show a time as a UTC wall-clock time.
        self._usage = UsageLog(0.0 if self.state_path else time.time() - self.clock())
        # What a completed job's video is: the sample clip, or ("zoom") a clip made from the
        # job's own image whose last frame is known (media.zoom_clip).
        self._clips = Clips(
            self.jobs,
            video_path=video_path,
            video_bytes=video_bytes,
            clips=clips,
            state_path=self.state_path,
            secret=uuid.uuid4().hex,
        )
        self._link = video_url  # the signed link of a completed job's clip
        self._load_state()

    # --- scripting the jobs -------------------------------------------------------------

    def script_outcome(self, *outcomes: str) -> None:
        with self._lock:
            for outcome in outcomes:
                if outcome not in OUTCOMES:
                    raise ValueError(f"unknown outcome {outcome!r}")
            self._outcomes.extend(outcomes)

    def script_log_lag(self, seconds: float) -> None:
        """Show each create in the usage log only ``seconds`` after it (for creates from now)."""
        if seconds < 0:
            raise ValueError(f"log lag must not be negative, got {seconds!r}")
        with self._lock:
            self.log_lag = float(seconds)

    def script_max_active(self, n: int | None) -> None:
        """Turn a create away (429) while its key has ``n`` jobs queued or generating;
        None lifts the limit."""
        if n is not None and n < 0:
            raise ValueError(f"max active must not be negative, got {n!r}")
        with self._lock:
            self.max_active_per_key = n

    def script_pricing(self, pricing: str | dict[str, Any] | None) -> None:
        """The model's price in the catalogue from now on: ``"variants"`` (the default: a
        rate per second by generate_audio), ``"fixed"`` (one rate per second), ``"variable"``
        (no quote), a whole pricing block as the vendor shapes it, or None (no price at all).
        Jobs created from now on are charged by it where it quotes them, else at the default
        rates."""
        if isinstance(pricing, str):
            pricing = pricing_document(pricing)
        elif pricing is not None and not isinstance(pricing, dict):
            raise ValueError(f"a pricing block is a dict, not {type(pricing).__name__}")
        with self._lock:
            self._pricing = json.loads(json.dumps(pricing)) if pricing is not None else None

    def set_schedule(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def complete_now(self, generation_id: str) -> None:
        """Force a job to ``completed`` at once, whatever its schedule or outcome."""
        with self._lock:
            job = self.jobs[generation_id]
            job.ended_at = min(self.clock(), job.finished_at())  # a job ends only once
            job.outcome = "complete"
            self._save_state()

    def fail_job(
        self, generation_id: str, name: str = MODERATION[0], message: str = MODERATION[1]
    ) -> None:
        """Force a job to ``error`` at once, with this vendor error."""
        with self._lock:
            job = self.jobs[generation_id]
            job.ended_at = min(self.clock(), job.finished_at())  # a job ends only once
            job.outcome = "error"
            job.error_name, job.error_message = name, message
            self._save_state()

    def set_balance(self, usd: float, key: str | None = None) -> None:
        """Put ``usd`` in ``key``'s account, or (no key) in every account, those not used yet
        too. Jobs that ended before this are not charged again."""
        with self._lock:
            self._accounts.settle(self.jobs, self.clock())
            self._accounts.set(usd, None if key is None else key_id(key))
            self._save_state()

    def balance(self, key: str) -> float:
        """What ``key``'s account holds now, in USD, as ``GET /v2/billing`` shows it."""
        with self._lock:
            self._accounts.settle(self.jobs, self.clock())
            return usd(self._accounts.held(key_id(key)))

    def charge(self, generation_id: str) -> float:
        """What a job is charged (USD) if it completes: its price at create (if it fails, the
        account is charged nothing)."""
        with self._lock:
            return usd(self.jobs[generation_id].charge_credits())

    def _forget(self) -> None:
        """Forget the usage log, restore the constructor's log lag, limit and balance and the
        default price, and drop the scripted outcomes (the caller holds ``_lock``). Jobs that
        ended before this are not charged again."""
        self._outcomes.clear()
        self._usage.entries.clear()
        self.log_lag = self._initial_log_lag
        self.max_active_per_key = self._initial_max_active
        self._pricing = pricing_document("variants")
        self._accounts.settle(self.jobs, self.clock())
        self._accounts.reset()
        self._save_state()

    # --- the jobs -------------------------------------------------------------------

    def job(self, generation_id: str) -> dict[str, Any]:
        view = self.job_view(generation_id)
        if view is None:
            raise KeyError(generation_id)
        return view

    def peak_active(self, key: str) -> int:
        """The most jobs made with ``key`` that were queued or generating at one time (since
        start or the last reset)."""
        with self._lock:
            return self._usage.peak(key_id(key), self.jobs)

    def create_job(
        self,
        body: dict[str, Any] | None = None,
        *,
        key: str = "",
        client_request_id: str | None = None,
        request_id: str | None = None,
        image: bytes | None = None,
    ) -> dict[str, Any] | None:
        """Start a job for a create's (checked) ``body`` with the next scripted outcome and the
        current schedule, priced by the catalogue in force, log it under ``key`` (with
        ``client_request_id`` if valid, else none) and return its view; None, creating
        nothing, when ``key`` already has ``max_active_per_key`` jobs running. The vendor's
        defaults stand for fields the body leaves out (5 seconds, with audio)."""
        body = body or {}
        model = body.get("model") or MODEL
        added = getattr(self, "added", None)  # the simulator's models served beside
        asked = {
            "duration": int(body.get("duration", schemas.default_duration(model, added))),
            "generate_audio": body.get("generate_audio", True),
        }
        # Ours (and its text-to-video sibling) by the pricing in force; the other models by
        # the fixed block the catalogue shows for them.
        pricing = self._pricing if model.startswith(SIBLINGS) else pricing_document("fixed")
        duration, generate_audio = asked["duration"], asked["generate_audio"]
        key_digest = key_id(key)
        with self._lock:
            now = self.clock()
            limit = self.max_active_per_key
            if limit is not None and self._usage.active(key_digest, now, self.jobs) >= limit:
                return None
            job = Job(
                id=f"{uuid.uuid4()}:{model}",
                token=uuid.uuid4().hex,
                created=now,
                duration=duration,
                outcome=self._outcomes.popleft() if self._outcomes else "complete",
                schedule=Schedule(self.schedule.queued_s, self.schedule.generating_s),
                key_id=key_digest,
                generate_audio=generate_audio,
                credits=price_credits(pricing, asked),
            )
            self._clips.keep_image(job.token, image)
            self.jobs[job.id] = job
            self._accounts.unsettled.add(job.id)
            client_id = valid_client_request_id(client_request_id)
            request_id = request_id or uuid.uuid4().hex
            entry = LogEntry(job.id, key_digest, request_id, client_id, now, now + self.log_lag)
            self._usage.entries.append(entry)
            self._save_state()
            view = job_view(job, "queued", self._link)
            # The job's price, as the vendor holds it at create; it is charged once it completes.
            view["meta"] = {"usage": {"credits_used": job.charge_credits()}}
            return view

    def log_page(self, key: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """One page of the usage log (``GET /v2/logs``) of the creates made with ``key``, for
        the parsed query string ``query``; ValueError, with the vendor's message, if bad."""
        with self._lock:
            return self._usage.page(key_id(key), query, self.clock(), self.jobs)

    def job_view(
        self, generation_id: str, *, status: str | None = None, key: str | None = None
    ) -> dict[str, Any] | None:
        """A job as a poll shows it, ``status`` replacing its own if given; None if unknown,
        or made with another key than ``key`` (as the vendor, which scopes jobs to accounts)."""
        with self._lock:
            job = self.jobs.get(generation_id)
            other_key = key is not None and job is not None and job.key_id != key_id(key)
            if job is None or (self.scope_jobs_to_keys and job.key_id and other_key):
                return None
            return job_view(job, status or job.status(self.clock()), self._link)

    def link_is_valid(self, token: str, expires: int, signature: str | None) -> bool:
        """Whether a video link names a job's file, has not expired, and is signed by us."""
        return self._clips.link_is_valid(token, expires, signature)

    def video_size(self, token: str = "") -> int:
        """The size in bytes of the clip a completed job (by its link's token) serves."""
        return self._clips.video_size(token)

    def clip_path(self, token: str = "") -> Path:
        """The file of a job's clip (``Clips.clip_path``)."""
        return self._clips.clip_path(token)

    def image_of(self, generation_id: str) -> bytes | None:
        """The image bytes the create of this job sent, with ``clips`` "zoom" only."""
        return self._clips.image_of(generation_id)

    def video_chunks(self, start: int, stop: int, token: str = "") -> Iterator[bytes]:
        """The clip's bytes ``start`` to ``stop`` (exclusive), in chunks of at most 256 KiB."""
        return self._clips.video_chunks(start, stop, token)

    # --- state ---------------------------------------------------------------------------

    def _load_state(self) -> None:
        if not self.state_path or not self.state_path.exists():
            return
        try:
            data = json.loads(self.state_path.read_text())
            for raw in data.get("jobs", []):
                raw["schedule"] = Schedule(**raw["schedule"])
                if "completed_at" in raw:  # the field's name in older state files
                    raw["ended_at"] = raw.pop("completed_at")
                job = Job(**raw)
                self.jobs[job.id] = job
            entries = (LogEntry(**raw) for raw in data.get("log", []))
            self._usage.entries = [e for e in entries if e.job_id in self.jobs]
            self._clips.secret = data.get("secret", self._clips.secret)
            self._accounts.load_state(data.get("billing", {}), set(self.jobs))
        except (OSError, ValueError, TypeError, KeyError):
            log.warning("simulator: ignoring unreadable state file %s", self.state_path)

    def _save_state(self) -> None:
        if not self.state_path:
            return
        data = {
            "secret": self._clips.secret,
            "jobs": [asdict(j) for j in self.jobs.values()],
            "log": [asdict(e) for e in self._usage.entries],
            "billing": self._accounts.to_state(),
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state_path, json.dumps(data))

    def _signature(self, token: str, expires: int) -> str:  # the tests sign links with it
        return self._clips.signature(token, expires)
