"""A local stand-in for the AIML API's video endpoints, served over real HTTP.

For the tests, for demo mode, and for anyone trying a client offline:
``python -m kling_ui.simulator --port 8000``. It serves create and poll on the
universal path and on the legacy path of the vendor's own sample, validates bodies as
the vendor does (400 with the vendor's error shape), moves each job through queued,
generating and completed on a schedule, and serves a real H.264/AAC clip behind a
signed-looking URL that supports Range requests.

Like the vendor, it keeps a client's ``X-Client-Request-Id`` (1-128 characters of
``A-Za-z0-9._:-``; any other value is silently ignored) and echoes it back, names the
generation in an ``x-inference-id`` header on create and poll answers, and lists every
create that made a job in the usage log, ``GET /v2/logs`` (one row per create, newest first,
per key; ``period`` or ``start`` + ``end``, ``status``, ``model``, ``limit``, ``offset``).
A row shows up ``log_lag`` seconds after its create, as the vendor's analytics lag; a job
that ends in error is a ``failed`` row that cost nothing.

Money, as the vendor documents it (aimlapi/complete-model-list.md, account-balance.md,
request-tracing-and-cost.md): the model catalogue ``GET /v1/models`` (no key; ``id``,
``include`` and the other filters; an ``ETag``, and ``304`` with no body on a matching
``If-None-Match``) prices the model as ``variants`` on ``generate_audio``, per second of video.
A create answers with the job's price in ``x-aimlapi-credits-used`` / ``x-aimlapi-usd-spent``
and ``meta.usage.credits_used`` (the vendor's hold); a poll after ``completed`` reports the
charge in ``meta.usage``. ``GET /v2/billing`` (key needed) shows ``current_balance``, one
account per key, starting at ``balance`` and going down by a job's charge once it completes;
a job that ends in error is never charged.

It can be scripted to misbehave (``Fault``, ``DownloadFault``, ``script_outcome``,
``script_log_lag``, ``script_max_active``, ``script_catalogue``, ``script_billing``,
``script_outage``) and to price or hold money differently (``script_pricing``,
``set_balance``), from Python or, for an app in another process, through
``POST /__sim__/script``. With ``max_active_per_key`` it turns a create away (429,
``Retry-After: 1``, nothing created) while the caller's key already has that many jobs
queued or generating, and ``peak_active(key)`` says how many a key ever had at once.
Every request is recorded (the image replaced by its length) so tests can count
creates and check headers. Job times come from ``clock`` (injectable); the usage log shows
them as UTC wall-clock times, ``clock`` shifted by its distance from ``time.time`` at start.

``Simulator`` owns all of that state (jobs, the usage log, scripted faults, the request
log, the link-signing secret, the optional state file) behind one lock; its HTTP handler only
turns requests into calls of the Simulator's public methods and writes the answers.

It shares no parsing or validation code with ``client.py`` on purpose: a mistake the
two shared would pass every test. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .. import media

log = logging.getLogger(__name__)

MODEL = "klingai/video-v2-6-pro-image-to-video"
CREATE_PATHS = ("/v2/video/generations", "/v2/generate/video/kling/generation")
DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "assets" / "sample.mp4"
MAX_TEXT = 2500
USD_PER_CREDIT = 0.0000005  # the vendor's own examples: 500000 credits are $0.25
# Kling v2.6 Pro's price per second of video, by generate_audio. The vendor prints no Kling
# price on the model's page (CONTRACT.md) and the docs give none: these are plausible figures,
# issue 12's own ("10 s with audio: $1.40"), audio doubling the price as the issue says.
USD_PER_SECOND = {True: 0.14, False: 0.07}
CREDITS_PER_SECOND = {audio: round(usd / USD_PER_CREDIT) for audio, usd in USD_PER_SECOND.items()}
DEFAULT_BALANCE = 100.0  # USD: what each key's account holds until set_balance says otherwise
LOGS_PATH = "/v2/logs"
BILLING_PATH = "/v2/billing"
# The catalogue's canonical path and the two the vendor says serve exactly the same data.
CATALOGUE_PATHS = ("/v1/models", "/models", "/api/v1/models")
CATALOGUE_SECTIONS = ("pricing", "modalities", "capabilities")
PRICING_KINDS = ("fixed", "variants", "variable")
OUTAGE_ENDPOINTS = ("catalogue", "billing")
MAX_LOG_WINDOW = 92 * 86400  # seconds: the vendor refuses a longer window
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MODERATION = ("ContentModeration", "The image or prompt was flagged by content moderation.")
_CHUNK = 256 * 1024


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


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour for one create or poll response.

    As a spec for ``POST /__sim__/script``: ``{"kind": "status", "code": 401}``,
    ``{"kind": "rate_limit", "retry_after": 1}``, ``{"kind": "non_json", "code": 502}``,
    ``{"kind": "drop"}``, ``{"kind": "created_then_drop"}``, ``{"kind": "slow", "seconds": 2}``,
    ``{"kind": "no_id"}``, ``{"kind": "weird_status", "status": "paused"}``.

    On a create, ``drop`` closes the connection before anything is created, while
    ``created_then_drop`` creates the job (it runs and is in the usage log) and then closes
    the connection without an answer.
    """

    kind: str
    code: int = 0
    message: str | None = None
    headers: dict[str, str] | None = None
    seconds: float = 0.0
    vendor_status: str = ""

    @classmethod
    def status(cls, code: int, message: str | None = None, headers: dict | None = None) -> Fault:
        return cls("status", code=code, message=message, headers=headers)

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1) -> Fault:
        headers = None if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return cls("status", code=429, message="Too many requests", headers=headers)

    @classmethod
    def non_json(cls, status: int = 200) -> Fault:
        return cls("non_json", code=status)

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def create_then_drop(cls) -> Fault:
        return cls("created_then_drop")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", seconds=seconds)

    @classmethod
    def no_id(cls) -> Fault:
        return cls("no_id")

    @classmethod
    def weird_status(cls, status: str = "paused") -> Fault:
        return cls("weird_status", vendor_status=status)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Fault:
        kind = spec.get("kind")
        if kind == "status":
            return cls.status(int(spec["code"]), spec.get("message"), spec.get("headers"))
        if kind == "rate_limit":
            return cls.rate_limit(spec.get("retry_after", 1))
        if kind == "non_json":
            return cls.non_json(int(spec.get("code", spec.get("status", 200))))
        if kind in ("drop", "created_then_drop", "no_id"):
            return cls(kind)
        if kind == "slow":
            return cls.slow(float(spec["seconds"]))
        if kind == "weird_status":
            return cls.weird_status(str(spec.get("status", "paused")))
        raise ValueError(f"unknown fault kind {kind!r}")


@dataclass(frozen=True)
class DownloadFault:
    """One scripted misbehaviour of the video host, for one download of a valid link.

    As a spec: ``{"kind": "status", "code": 403}``, ``{"kind": "redirect", "to": URL}``,
    ``{"kind": "truncated"}``, ``{"kind": "not_mp4"}``, ``{"kind": "huge", "size": N}``,
    ``{"kind": "slow", "seconds": S}`` (the whole clip, spread over S seconds).
    """

    kind: str
    code: int = 0
    location: str = ""
    size: int = 0

    @classmethod
    def status(cls, code: int) -> DownloadFault:
        return cls("status", code=code)

    @classmethod
    def redirect(cls, to_url: str) -> DownloadFault:
        return cls("redirect", location=to_url)

    @classmethod
    def truncated(cls) -> DownloadFault:
        return cls("truncated")

    @classmethod
    def not_mp4(cls) -> DownloadFault:
        return cls("not_mp4")

    @classmethod
    def slow(cls, seconds: float) -> DownloadFault:
        return cls("slow", size=int(seconds * 1000))  # milliseconds, in the size field

    @classmethod
    def huge(cls, n_bytes: int) -> DownloadFault:
        return cls("huge", size=n_bytes)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> DownloadFault:
        kind = spec.get("kind")
        if kind == "status":
            return cls("status", code=int(spec["code"]))
        if kind == "redirect":
            return cls.redirect(str(spec["to"] if "to" in spec else spec["to_url"]))
        if kind == "slow":
            return cls.slow(float(spec["seconds"]))
        if kind in ("truncated", "not_mp4"):
            return cls(kind)
        if kind == "huge":
            return cls.huge(int(spec["size"] if "size" in spec else spec["n_bytes"]))
        raise ValueError(f"unknown download fault kind {kind!r}")


@dataclass
class _Job:
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
class _LogEntry:
    """One create that made a job, as the usage log keeps it (the key only as a digest)."""

    job_id: str
    key_id: str
    request_id: str
    client_request_id: str | None
    created: float
    visible_at: float  # created + the log lag in force then


def _data_uri_bytes(value: object) -> bytes | None:
    """The bytes of a ``data:...;base64,`` image; None for a link or anything else."""
    if not isinstance(value, str) or not value.startswith("data:") or "," not in value:
        return None
    try:
        return base64.b64decode(value.split(",", 1)[1], validate=True)
    except ValueError:
        return None


def _ftyp_header() -> bytes:
    # A minimal ISO-BMFF ftyp box, so a synthetic file looks like an MP4 to a client.
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


class Simulator:
    """The fake API. ``start()`` serves it in a daemon thread; ``url`` is its base."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        schedule: Schedule | None = None,
        video_path: str | Path | None = None,
        video_bytes: int | None = None,
        cdn_host: str | None = None,
        state_path: str | Path | None = None,
        clock=time.monotonic,
        log_lag: float = 0.0,
        max_active_per_key: int | None = None,
        control_token: str | None = None,
        scope_jobs_to_keys: bool = True,
        balance: float = DEFAULT_BALANCE,
        clips: str = "sample",
    ) -> None:
        # As the vendor: a job is shown only to the key that made it (demo mode turns this off:
        # its key is made anew each start, and its jobs outlive that).
        self.scope_jobs_to_keys = scope_jobs_to_keys
        # When set, the /__sim__/ scripting and request log answer only to a caller sending
        # it as X-Sim-Token (demo mode sets one: no other local process may script it).
        self.control_token = control_token
        self.host = host
        self.port = port
        self.api_key = api_key
        self.schedule = schedule or Schedule()
        self.video_path = Path(video_path) if video_path else DEFAULT_VIDEO
        self.video_bytes = video_bytes
        self.cdn_host = cdn_host
        self.state_path = Path(state_path) if state_path else None
        # A state file outlives the process, so its times must be wall-clock times.
        self.clock = time.time if self.state_path else clock
        # What the usage log adds to ``clock`` to show a time as a UTC wall-clock time.
        self._wall_offset = 0.0 if self.state_path else time.time() - self.clock()
        self.log_lag = self._initial_log_lag = log_lag
        self.max_active_per_key = self._initial_max_active = max_active_per_key
        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, _Job] = {}
        self._log: list[_LogEntry] = []
        self._lock = threading.Lock()
        self._create_faults: deque[Fault] = deque()
        self._poll_faults: deque[Fault] = deque()
        self._download_faults: deque[DownloadFault] = deque()
        self._outcomes: deque[str] = deque()
        self._periodic: tuple[int, Fault] | None = None
        self._poll_count = 0
        self._catalogue_faults: deque[Fault] = deque()
        self._billing_faults: deque[Fault] = deque()
        self._outages: dict[str, Fault] = {}
        self._pricing: dict[str, Any] | None = pricing_document("variants")
        # Money is kept in credits (integers), so a balance never drifts by float rounding.
        self._initial_balance = _credits(balance)
        self._starting_balance = self._initial_balance  # each key's account, until set
        self._balances: dict[str, int] = {}  # by key digest
        self._unsettled: set[str] = set()  # jobs not yet ended as far as billing knows
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._secret = uuid.uuid4().hex
        # What a completed job's video is: the sample clip, or ("zoom") a clip made from the
        # job's own image whose last frame is known (media.zoom_clip), kept in ``clip_dir``.
        if clips not in ("sample", "zoom"):
            raise ValueError(f"unknown clips {clips!r}")
        self.clips = clips
        self._temp_clips = None
        if self.state_path:
            self.clip_dir = self.state_path.parent / "demo-clips"
        else:
            self._temp_clips = tempfile.TemporaryDirectory(prefix="kling-sim-clips-")
            self.clip_dir = Path(self._temp_clips.name)
        self._clip_lock = threading.Lock()
        self._load_state()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Simulator:
        handler = type("Handler", (_Handler,), {"sim": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns at once
            name="kling-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- scripting ---------------------------------------------------------------------

    def script_create(self, *faults: Fault) -> None:
        with self._lock:
            self._create_faults.extend(faults)

    def script_poll(self, *faults: Fault) -> None:
        with self._lock:
            self._poll_faults.extend(faults)

    def script_poll_every(self, every: int, fault: Fault | None) -> None:
        """Answer every ``every``-th poll (of all jobs) with ``fault``; None turns it off.

        For load tests: ``script_poll_every(3, Fault.rate_limit(1))`` rate-limits a third.
        """
        with self._lock:
            self._periodic = (every, fault) if fault is not None and every > 0 else None
            self._poll_count = 0

    def script_download(self, *faults: DownloadFault) -> None:
        with self._lock:
            self._download_faults.extend(faults)

    def script_outcome(self, *outcomes: str) -> None:
        for outcome in outcomes:
            if outcome not in ("complete", "error", "never"):
                raise ValueError(f"unknown outcome {outcome!r}")
        with self._lock:
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

    def script_catalogue(self, *faults: Fault) -> None:
        """Answer the next catalogue requests (``GET /v1/models``) with these faults."""
        with self._lock:
            self._catalogue_faults.extend(faults)

    def script_billing(self, *faults: Fault) -> None:
        """Answer the next balance requests (``GET /v2/billing``) with these faults."""
        with self._lock:
            self._billing_faults.extend(faults)

    def script_outage(self, endpoint: str, fault: Fault | None = None) -> None:
        """Answer every request to ``endpoint`` (``catalogue`` or ``billing``) with ``fault``
        until it is lifted with None: ``script_outage("catalogue", Fault.status(503))``."""
        if endpoint not in OUTAGE_ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}: one of {OUTAGE_ENDPOINTS}")
        with self._lock:
            if fault is None:
                self._outages.pop(endpoint, None)
            else:
                self._outages[endpoint] = fault

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

    def set_balance(self, usd: float, key: str | None = None) -> None:
        """Put ``usd`` in ``key``'s account, or (no key) in every account, those not used yet
        too. Jobs that ended before this are not charged again."""
        with self._lock:
            self._settle(self.clock())
            if key is None:
                self._starting_balance = _credits(usd)
                self._balances.clear()
            else:
                self._balances[_key_id(key)] = _credits(usd)
            self._save_state()

    def balance(self, key: str) -> float:
        """What ``key``'s account holds now, in USD, as ``GET /v2/billing`` shows it."""
        with self._lock:
            self._settle(self.clock())
            return _usd(self._balances.get(_key_id(key), self._starting_balance))

    def charge(self, generation_id: str) -> float:
        """What a job is charged (USD) if it completes: its price at create (if it fails, the
        account is charged nothing)."""
        with self._lock:
            return _usd(self.jobs[generation_id].charge_credits())

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

    def reset(self) -> None:
        """Forget the script and the records (requests, the usage log, the peaks), restoring
        the constructor's log lag, limit and balance and the default price. Jobs stay, so
        their polls still answer (those that end from now on are charged)."""
        with self._lock:
            self.requests.clear()
            self._create_faults.clear()
            self._poll_faults.clear()
            self._download_faults.clear()
            self._catalogue_faults.clear()
            self._billing_faults.clear()
            self._outages.clear()
            self._outcomes.clear()
            self._periodic = None
            self._log.clear()
            self.log_lag = self._initial_log_lag
            self.max_active_per_key = self._initial_max_active
            self._pricing = pricing_document("variants")
            self._settle(self.clock())
            self._starting_balance = self._initial_balance
            self._balances.clear()
            self._save_state()

    def job(self, generation_id: str) -> dict[str, Any]:
        view = self.job_view(generation_id)
        if view is None:
            raise KeyError(generation_id)
        return view

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        """The recorded requests whose path starts with ``path_prefix``, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    @property
    def creates(self) -> int:
        """Create POSTs received on either path, including those answered with a fault."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == "POST" and r.path in CREATE_PATHS)

    @property
    def polls(self) -> int:
        """Poll GETs received on either path, including those answered with a fault."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == "GET" and r.path in CREATE_PATHS)

    def peak_active(self, key: str) -> int:
        """The most jobs made with ``key`` that were queued or generating at one time (since
        start or the last reset). Statuses are worked out lazily, so this is the peak of the
        overlapping ``[created, finished)`` intervals, which is exact all the same."""
        key_id = _key_id(key)
        with self._lock:
            jobs = [self.jobs[e.job_id] for e in self._log if e.key_id == key_id]
            events = [(j.created, 1) for j in jobs] + [(j.finished_at(), -1) for j in jobs]
        peak = active = 0
        for _, step in sorted(events):  # at one instant, ends before starts: half-open intervals
            active += step
            peak = max(peak, active)
        return peak

    # --- what the HTTP handler asks of it -------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        """Add one received request to the log."""
        with self._lock:
            self.requests.append(request)

    def recorded_requests(self) -> list[dict[str, Any]]:
        """Every recorded request as a JSON-ready dict, oldest first."""
        with self._lock:
            return [asdict(r) for r in self.requests]

    def accepts_key(self, key: str) -> bool:
        """Whether ``key`` is accepted: any non-empty key, or only ``api_key`` when set."""
        return bool(key) and (self.api_key is None or key == self.api_key)

    def next_create_fault(self) -> Fault | None:
        """Take the next scripted create fault, if any."""
        with self._lock:
            return self._create_faults.popleft() if self._create_faults else None

    def next_poll_fault(self) -> Fault | None:
        """Take the next scripted poll fault; failing that, count the poll for the periodic one."""
        with self._lock:
            if self._poll_faults:
                return self._poll_faults.popleft()
            if self._periodic is None:
                return None
            self._poll_count += 1
            every, fault = self._periodic
            return fault if self._poll_count % every == 0 else None

    def next_download_fault(self) -> DownloadFault | None:
        """Take the next scripted download fault, if any."""
        with self._lock:
            return self._download_faults.popleft() if self._download_faults else None

    def next_fault(self, endpoint: str) -> Fault | None:
        """The fault for the next ``catalogue`` or ``billing`` answer: the next scripted one,
        else the outage in force, else None."""
        with self._lock:
            queue = self._catalogue_faults if endpoint == "catalogue" else self._billing_faults
            return queue.popleft() if queue else self._outages.get(endpoint)

    def catalogue(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """The model catalogue (``GET /v1/models``) for the parsed query string: the models
        its filters keep (a parameter's values OR'd, comma-separated or repeated, any case;
        parameters AND'd), with the sections ``include`` asks for."""
        with self._lock:
            pricing = self._pricing
        wanted = _query_values(query, "include")
        if "all" in wanted or any(v in ("true", "1") for v in _query_values(query, "details")):
            wanted = set(CATALOGUE_SECTIONS)
        models = []
        for model in _catalogue_models(pricing):
            if not _catalogue_filters_keep(model, query):
                continue
            item = {k: v for k, v in model.items() if k not in CATALOGUE_SECTIONS}
            item.update({k: model[k] for k in CATALOGUE_SECTIONS if k in wanted and k in model})
            models.append(item)
        return {"object": "list", "data": models}

    def billing(self, key: str) -> dict[str, Any]:
        """``GET /v2/billing`` for ``key``'s account."""
        return {"current_balance": self.balance(key), "currency": "USD"}

    def create_job(
        self,
        duration: int,
        *,
        key: str = "",
        client_request_id: str | None = None,
        request_id: str | None = None,
        generate_audio: bool = True,
        image: bytes | None = None,
    ) -> dict[str, Any] | None:
        """Start a job with the next scripted outcome and the current schedule, priced by the
        catalogue in force, log it under ``key`` (with ``client_request_id`` if valid, else
        none) and return its view; None, creating nothing, when ``key`` already has
        ``max_active_per_key`` jobs running."""
        key_id = _key_id(key)
        with self._lock:
            now = self.clock()
            limit = self.max_active_per_key
            if limit is not None and self._active(key_id, now) >= limit:
                return None
            outcome = self._outcomes.popleft() if self._outcomes else "complete"
            job = _Job(
                id=f"{uuid.uuid4()}:{MODEL}",
                token=uuid.uuid4().hex,
                created=now,
                duration=duration,
                outcome=outcome,
                schedule=Schedule(self.schedule.queued_s, self.schedule.generating_s),
                key_id=key_id,
                generate_audio=generate_audio,
                credits=_price_credits(self._pricing, duration, generate_audio),
            )
            if image is not None and self.clips == "zoom":
                self.clip_dir.mkdir(parents=True, exist_ok=True)
                (self.clip_dir / f"{job.token}.img").write_bytes(image)
            self.jobs[job.id] = job
            self._unsettled.add(job.id)
            client_id = _valid_client_request_id(client_request_id)
            request_id = request_id or uuid.uuid4().hex
            entry = _LogEntry(job.id, key_id, request_id, client_id, now, now + self.log_lag)
            self._log.append(entry)
            self._save_state()
            view = self._view(job, status="queued")
            # The job's price, as the vendor holds it at create; it is charged once it completes.
            view["meta"] = {"usage": {"credits_used": job.charge_credits()}}
            return view

    def log_page(self, key: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """One page of the usage log (``GET /v2/logs``) of the creates made with ``key``, for
        the parsed query string ``query``; ValueError, with the vendor's message, if bad."""
        with self._lock:
            now = self.clock()
            start, end = _log_window(query, now + self._wall_offset)
            statuses, models, limit, offset = _log_filters(query)
            key_id = _key_id(key)
            entries = [
                e
                for e in reversed(self._log)
                if e.key_id == key_id
                and e.visible_at <= now
                and start <= e.created + self._wall_offset <= end
            ]
            entries.sort(key=lambda e: e.created, reverse=True)  # stable: later creates first
            rows = [self._log_row(e, now) for e in entries]
        if not _model_matches(models):
            rows = []
        rows = [r for r in rows if not statuses or r["status"] in statuses]
        page = rows[offset : offset + limit]
        return {
            "data": page,
            "pagination": {
                "limit": limit,
                "offset": offset,
                "total": len(rows),
                "has_more": offset + len(page) < len(rows),
            },
        }

    def job_view(
        self, generation_id: str, *, status: str | None = None, key: str | None = None
    ) -> dict[str, Any] | None:
        """A job as a poll shows it, ``status`` replacing its own if given; None if unknown,
        or made with another key than ``key`` (as the vendor, which scopes jobs to accounts)."""
        with self._lock:
            job = self.jobs.get(generation_id)
            other_key = key is not None and job is not None and job.key_id != _key_id(key)
            if job is None or (self.scope_jobs_to_keys and job.key_id and other_key):
                return None
            return self._view(job, status=status)

    def link_is_valid(self, token: str, expires: int, signature: str | None) -> bool:
        """Whether a video link names a job's file, has not expired, and is signed by us."""
        return bool(
            token
            and any(j.token == token for j in list(self.jobs.values()))
            and expires > time.time()
            and signature == self._signature(token, expires)
        )

    def video_size(self, token: str = "") -> int:
        """The size in bytes of the clip a completed job (by its link's token) serves."""
        if self.video_bytes:
            return self.video_bytes
        return self.clip_path(token).stat().st_size

    def clip_path(self, token: str = "") -> Path:
        """The file of a job's clip: its own zoom clip (made on first ask) when ``clips`` is
        "zoom" and its create sent an image, else the sample."""
        image = self.clip_dir / f"{token}.img" if token else None
        if self.clips != "zoom" or image is None or not image.exists():
            return self.video_path
        clip = self.clip_dir / f"{token}.mp4"
        with self._clip_lock:
            if not clip.exists():
                job = next((j for j in self.jobs.values() if j.token == token), None)
                seconds = job.duration if job else 5
                audio = job.generate_audio if job else True
                tone = 220 + int(token[:2], 16) * 2  # each job's sound its own
                media.zoom_clip(image.read_bytes(), seconds, clip, audio=audio, tone_hz=tone)
        return clip

    def image_of(self, generation_id: str) -> bytes | None:
        """The image bytes the create of this job sent (a data URI's), kept with ``clips``
        "zoom" only; None otherwise."""
        job = self.jobs.get(generation_id)
        path = self.clip_dir / f"{job.token}.img" if job else None
        return path.read_bytes() if path is not None and path.is_file() else None

    def video_chunks(self, start: int, stop: int, token: str = "") -> Iterator[bytes]:
        """The clip's bytes ``start`` to ``stop`` (exclusive), in chunks of at most 256 KiB."""
        if self.video_bytes:
            header = _ftyp_header()
            pos = start
            zeros = bytes(_CHUNK)
            while pos < stop:
                if pos < len(header):
                    chunk = header[pos : min(stop, len(header))]
                else:
                    chunk = zeros[: min(_CHUNK, stop - pos)]
                yield chunk
                pos += len(chunk)
            return
        with open(self.clip_path(token), "rb") as f:
            f.seek(start)
            remaining = stop - start
            while remaining > 0:
                chunk = f.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                yield chunk
                remaining -= len(chunk)

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
                job = _Job(**raw)
                self.jobs[job.id] = job
            entries = (_LogEntry(**raw) for raw in data.get("log", []))
            self._log = [e for e in entries if e.job_id in self.jobs]
            self._secret = data.get("secret", self._secret)
            # A state file without billing (an older version): its jobs are settled already.
            billing = data.get("billing", {})
            self._starting_balance = int(billing.get("starting", self._starting_balance))
            self._balances = {str(k): int(v) for k, v in billing.get("balances", {}).items()}
            self._unsettled = set(billing.get("unsettled", [])) & set(self.jobs)
        except (OSError, ValueError, TypeError, KeyError):
            log.warning("simulator: ignoring unreadable state file %s", self.state_path)

    def _save_state(self) -> None:
        if not self.state_path:
            return
        data = {
            "secret": self._secret,
            "jobs": [asdict(j) for j in self.jobs.values()],
            "log": [asdict(e) for e in self._log],
            "billing": {
                "starting": self._starting_balance,
                "balances": self._balances,
                "unsettled": sorted(self._unsettled),
            },
        }
        tmp = self.state_path.with_suffix(".tmp")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data))
        tmp.replace(self.state_path)

    def _settle(self, now: float) -> None:
        """Take the charge of every job that has completed since the last look from its key's
        account; a job that ended in error costs nothing. Statuses are worked out lazily, so
        the money moves when someone looks, as if it had moved when the job completed."""
        for job_id in list(self._unsettled):
            job = self.jobs.get(job_id)
            status = job.status(now) if job is not None else "error"
            if status not in ("completed", "error"):
                continue
            self._unsettled.discard(job_id)
            if job is not None and status == "completed":
                held = self._balances.get(job.key_id, self._starting_balance)
                self._balances[job.key_id] = held - job.charge_credits()

    def _active(self, key_id: str, now: float) -> int:
        """How many jobs made with this key are queued or generating at ``now``."""
        jobs = (self.jobs[e.job_id] for e in self._log if e.key_id == key_id)
        return sum(1 for j in jobs if j.created <= now < j.finished_at())

    # --- the vendor's shapes ---------------------------------------------------------------

    def _log_row(self, entry: _LogEntry, now: float) -> dict[str, Any]:
        job = self.jobs[entry.job_id]
        failed = job.status(now) == "error"  # billed nothing
        credits = 0 if failed else job.charge_credits()
        created = datetime.fromtimestamp(entry.created + self._wall_offset, timezone.utc)
        return {
            "created": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "status": "failed" if failed else "succeeded",
            "origin": "api",
            "model": MODEL,
            "cost": {"usd": _usd(credits), "credits": credits},
            "tokens": {"input": 0, "output": 0, "total": 0},
            "request_id": entry.request_id,
            "inference_id": job.id,
            "client_request_id": entry.client_request_id,
        }

    def _signature(self, token: str, expires: int) -> str:
        return hashlib.sha256(f"{self._secret}:{token}:{expires}".encode()).hexdigest()[:32]

    def _video_url(self, job: _Job) -> str:
        expires = int(time.time()) + 3600
        host = self.cdn_host or self.host
        return (
            f"http://{host}:{self.port}/files/{job.token}/output.mp4"
            f"?Expires={expires}&Signature={self._signature(job.token, expires)}"
        )

    def _view(self, job: _Job, *, status: str | None = None) -> dict[str, Any]:
        status = status or job.status(self.clock())
        view: dict[str, Any] = {"id": job.id, "status": status, "video": None, "error": None}
        if status == "completed":
            view["video"] = {"url": self._video_url(job), "duration": job.duration}
            # The charge lands with completed (request-tracing-and-cost.md).
            credits = job.charge_credits()
            view["meta"] = {"usage": {"credits_used": credits, "usd_spent": _usd(credits)}}
        elif status == "error":
            view["error"] = {"name": job.error_name, "message": job.error_message}
        else:
            view["meta"] = None
        return view


def _key_id(key: str) -> str:
    """What the usage log keeps of a key: a digest, so no key is ever written to disk."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _valid_client_request_id(value: str | None) -> str | None:
    """``value`` if the vendor would keep it as a client request id, else None (ignored)."""
    return value if value and _CLIENT_REQUEST_ID.fullmatch(value) else None


def _usd(credits: int) -> float:
    return round(credits * USD_PER_CREDIT, 9)


def _credits(usd: float) -> int:
    return round(usd / USD_PER_CREDIT)


# --- the catalogue ----------------------------------------------------------------------


def pricing_document(kind: str) -> dict[str, Any]:
    """The model's pricing block as the catalogue shows it (complete-model-list.md,
    "Reading prices"), at this simulator's rates: ``variants`` per second by generate_audio,
    ``fixed`` (the with-audio rate whatever is asked) or ``variable`` (no quote)."""
    if kind == "variants":
        return {
            "kind": "variants",
            "currency": "USD",
            "dimensions": ["generate_audio"],
            "variants": [
                {"when": {"generate_audio": audio}, "price": usd, "unit": "second", "per": 1}
                for audio, usd in USD_PER_SECOND.items()
            ],
        }
    if kind == "fixed":
        units = [{"name": "second", "price": USD_PER_SECOND[True], "per": 1}]
        return {"kind": "fixed", "currency": "USD", "units": units}
    if kind == "variable":
        return {"kind": "variable", "currency": "USD"}
    raise ValueError(f"unknown pricing kind {kind!r}: one of {PRICING_KINDS}")


def _catalogue_models(pricing: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The catalogue: this simulator's model (priced by ``pricing``; no block when None) and
    its text-to-video sibling, listed first, so that a client must match the id."""
    alias = MODEL.split("/", 1)[1]
    ours: dict[str, Any] = {
        "id": MODEL,
        "info": {
            "name": "Kling v2.6 Pro Image-to-Video",
            "developer": "Kling AI",
            "description": "Kling v2.6 Pro turns a still image into a video, with native audio.",
            "url": "",
            "docsUrl": "https://docs.aimlapi.com/api-references/video-models/kling-ai/"
            "video-v2.6-pro-image-to-video",
        },
        "type": "internal/video-generations/submit",
        "aliases": [alias],
        "tags": ["playground:video", "tier:tier_2"],
        "modalities": {"input": ["image", "text"], "output": ["video"]},
        "capabilities": ["image_to_video", "audio_generation"],
    }
    if pricing is not None:
        ours["pricing"] = pricing
    sibling = json.loads(json.dumps(ours))
    sibling.update(id=MODEL.replace("image-to-video", "text-to-video"))
    sibling["aliases"] = [alias.replace("image-to-video", "text-to-video")]
    sibling["info"]["name"] = "Kling v2.6 Pro Text-to-Video"
    sibling["info"]["docsUrl"] = sibling["info"]["docsUrl"].replace("image", "text")
    sibling["modalities"]["input"] = ["text"]
    sibling["capabilities"] = ["text_to_video", "audio_generation"]
    sibling["pricing"] = pricing_document("variants")
    return [sibling, ours]


def _query_values(query: dict[str, list[str]], name: str) -> set[str]:
    """A catalogue parameter's values, comma-separated or repeated, lower-cased."""
    return {
        part.strip().lower() for v in query.get(name, []) for part in v.split(",") if part.strip()
    }


def _catalogue_filters_keep(model: dict[str, Any], query: dict[str, list[str]]) -> bool:
    modalities = model.get("modalities", {})
    fields = {
        "id": [model["id"], *model["aliases"]],
        "type": [model["type"]],
        "tags": model["tags"],
        "modalities": [*modalities.get("input", []), *modalities.get("output", [])],
        "input_modalities": modalities.get("input", []),
        "output_modalities": modalities.get("output", []),
        "capabilities": model.get("capabilities", []),
    }
    for name, have in fields.items():
        wanted = _query_values(query, name)
        if wanted and not wanted & {h.lower() for h in have}:
            return False
    return True


def _price_credits(pricing: dict[str, Any] | None, duration: int, audio: bool) -> int:
    """What a job costs in credits by this pricing block where it quotes one, else by the
    default rates. Written for the simulator alone (the client reads prices its own way)."""
    asked = {"generate_audio": audio, "duration": duration}
    rates: list[dict[str, Any]] = []
    if isinstance(pricing, dict) and pricing.get("kind") == "variants":
        rates = [
            v
            for v in pricing.get("variants", [])
            if all(asked.get(k, ...) == w for k, w in v.get("when", {}).items())
        ][:1]
    elif isinstance(pricing, dict) and pricing.get("kind") == "fixed":
        rates = list(pricing.get("units", []))
    usd = 0.0
    try:
        for rate in rates:
            unit = rate.get("unit", rate.get("name"))
            usd += rate["price"] / rate["per"] * (duration if unit == "second" else 1)
    except (KeyError, TypeError, ZeroDivisionError, AttributeError):
        rates = []  # a block scripted without a usable rate: the default rates
    return _credits(usd) if rates else duration * CREDITS_PER_SECOND[audio]


def _etag(data: bytes) -> str:
    """A weak validator in the vendor's form (``W/"<length hex>-<digest>"``)."""
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()[:27]
    return f'W/"{len(data):x}-{digest}"'


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison, as for a GET: any listed validator (or ``*``) equal to ``etag``."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag.removeprefix("W/") for t in tags)


def _query_error(field: str, expected: str, received: Any) -> ValueError:
    message = f"Query validation error! {field}: expected {expected}, received {received!r}"
    return ValueError(message)


def _log_window(query: dict[str, list[str]], now: float) -> tuple[float, float]:
    """The usage log's window, in wall-clock seconds: ``period`` back from ``now``, or
    ``start`` to ``end`` (ISO-8601, UTC when without an offset), never both."""
    period, start, end = (query.get(name, []) for name in ("period", "start", "end"))
    if bool(period) == bool(start or end) or bool(start) != bool(end):
        raise ValueError(
            "Query validation error! provide either period or both start and end, not both"
        )
    if period:
        match = re.fullmatch(r"([1-9][0-9]{0,6})([hd])", period[0])
        if not match:
            raise _query_error("period", "a positive integer followed by h or d", period[0])
        span = int(match.group(1)) * (3600 if match.group(2) == "h" else 86400)
        lo, hi = now - span, now
    else:
        lo, hi = _iso_time("start", start[0]), _iso_time("end", end[0])
        if hi < lo:
            raise _query_error("end", "a time not earlier than start", end[0])
        span = hi - lo
    if span > MAX_LOG_WINDOW:
        raise _query_error("window", "at most 92 days", f"{span / 86400:g} days")
    return lo, hi


def _iso_time(field: str, text: str) -> float:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _query_error(field, "an ISO-8601 date and time", text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _log_filters(query: dict[str, list[str]]) -> tuple[set[str], list[str], int, int]:
    """The usage log's ``status`` and ``model`` filters (repeated, never comma-split),
    ``limit`` and ``offset``."""
    statuses = query.get("status", [])
    for status in statuses:
        if status not in ("succeeded", "failed"):
            raise _query_error("status", "'succeeded' or 'failed'", status)
    models = query.get("model", [])
    if len(models) > 50:
        raise _query_error("model", "at most 50 values", len(models))
    limit = _int_param(query, "limit", 50, least=1, most=100)
    return set(statuses), models, limit, _int_param(query, "offset", 0, least=0)


def _int_param(
    query: dict[str, list[str]], name: str, default: int, *, least: int, most: int | None = None
) -> int:
    text = query.get(name, [str(default)])[0]
    n = int(text) if re.fullmatch(r"[0-9]{1,9}", text) else -1
    if n < least or (most is not None and n > most):
        expected = f"an integer of {least} or more"
        if most is not None:
            expected = f"an integer from {least} to {most}"
        raise _query_error(name, expected, text)
    return n


def _model_matches(models: list[str]) -> bool:
    """Whether the ``model`` filter keeps this simulator's one model: ``source/alias`` or the
    bare alias, matched exactly; no filter keeps it."""
    return not models or MODEL in models or MODEL.split("/", 1)[1] in models


def _validation_error(body: Any) -> str | None:
    """The vendor's body checks, written independently of the client's."""
    if not isinstance(body, dict):
        return "Body validation error! body: expected object"
    if body.get("model") != MODEL:
        return f"Body validation error! model: expected '{MODEL}', received {body.get('model')!r}"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return (
            "Body validation error! prompt: expected non-empty string, received "
            + repr(prompt)[:40]
        )
    if len(prompt) > MAX_TEXT:
        return (
            f"Body validation error! prompt: expected string of at most {MAX_TEXT} characters,"
            f" received {len(prompt)}"
        )
    image = body.get("image_url")
    if not isinstance(image, str) or not image:
        return "Body validation error! image_url: expected string, received " + repr(image)[:40]
    if not re.match(r"^https?://", image):
        b64 = image.split(",", 1)[1] if image.startswith("data:") and "," in image else image
        if image.startswith("data:") and not re.match(r"^data:image/[a-z+.-]+;base64,", image):
            return "Body validation error! image_url: expected a base64 image data URI"
        try:
            if not base64.b64decode(b64, validate=True):
                raise ValueError("empty")
        except ValueError:
            return "Body validation error! image_url: expected a URL or a Base64-encoded image"
    duration = body.get("duration", 5)
    # bool is an int in Python; JSON 5.0 is 5 to a JavaScript server, so it passes.
    if type(duration) not in (int, float, str) or duration not in (5, 10, "5", "10"):
        return f"Body validation error! duration: expected 5 or 10, received {duration!r}"
    negative = body.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        return f"Body validation error! negative_prompt: expected string, received {negative!r}"
    if negative is not None and len(negative) > MAX_TEXT:
        return (
            "Body validation error! negative_prompt: expected string of at most "
            f"{MAX_TEXT} characters, received {len(negative)}"
        )
    if "generate_audio" in body and not isinstance(body["generate_audio"], bool):
        received = body["generate_audio"]
        return f"Body validation error! generate_audio: expected boolean, received {received!r}"
    return None


class _Handler(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.1"
    server_version = "kling-ui-simulator/1.0"
    # Small answers on a kept-alive connection: without this, Nagle's algorithm and delayed
    # ACKs add about 40 ms to every request on loopback.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the default logs to stderr; we record requests instead (headers never logged)

    # --- plumbing ------------------------------------------------------------------------

    def _record(self, body: dict | None) -> RecordedRequest:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if isinstance(body, dict) and isinstance(body.get("image_url"), str):
            body = dict(body, image_url=f"<image {len(body['image_url'])} chars>")
        record = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            time=time.time(),
        )
        self.sim.record(record)
        return record

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        extra = {"x-request-id": uuid.uuid4().hex}
        client_id = _valid_client_request_id(self.headers.get("X-Client-Request-Id"))
        if client_id:
            extra["x-client-request-id"] = client_id
        for name, value in {**extra, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, headers: dict | None = None) -> None:
        self._send_json(
            status,
            {
                "message": message,
                "path": urlsplit(self.path).path,
                "requestId": uuid.uuid4().hex,
                "statusCode": status,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            },
            headers,
        )

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)

    def _apply_fault(self, fault: Fault | None) -> bool:
        """Answer with the fault if it replaces the response; return True when handled."""
        if fault is None:
            return False
        if fault.kind == "status":
            default = {
                400: "Body validation error!",
                401: "Unauthorized: invalid or missing API key",
                403: "Insufficient credits: top up your balance",
                404: "Not found",
                429: "Too many requests",
            }.get(fault.code, "Internal server error")
            self._send_error(fault.code, fault.message or default, fault.headers)
            return True
        if fault.kind == "non_json":
            data = b"<html>Bad gateway</html>"
            self.send_response(fault.code)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        if fault.kind == "drop":
            self._drop()
            return True
        if fault.kind == "slow":
            time.sleep(fault.seconds)
        return False

    def _caller_key(self) -> str | None:
        """The caller's API key if the simulator accepts it; else None, having sent the 401."""
        auth = self.headers.get("Authorization", "")
        key = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not self.sim.accepts_key(key):
            self._send_error(401, "Unauthorized: invalid or missing API key")
            return None
        return key

    # --- routes --------------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = urlsplit(self.path).path
        self._record(body if isinstance(body, dict) else None)
        if path.startswith("/__sim__/"):
            if not self._controller():
                return self._send_error(403, "Forbidden")
            return self._admin(path, body)
        if path not in CREATE_PATHS:
            return self._send_error(404, f"Cannot POST {path}")
        fault = self.sim.next_create_fault()
        if self._apply_fault(fault):
            return
        key = self._caller_key()
        if key is None:
            return
        problem = _validation_error(body)
        if problem:
            return self._send_error(400, problem)
        self._create(body, key, fault.kind if fault else "")

    def _create(self, body: dict, key: str, fault_kind: str) -> None:
        duration = int(body.get("duration", 5))
        request_id = uuid.uuid4().hex
        client_id = self.headers.get("X-Client-Request-Id")
        view = self.sim.create_job(
            duration,
            key=key,
            client_request_id=client_id,
            request_id=request_id,
            generate_audio=body.get("generate_audio", True),  # the vendor's default
            image=_data_uri_bytes(body.get("image_url")),
        )
        if view is None:
            message = "Too Many Requests: too many generations running for this key"
            return self._send_error(429, message, {"Retry-After": "1"})
        if fault_kind == "created_then_drop":
            return self._drop()
        credits = view["meta"]["usage"]["credits_used"]
        headers = {
            "x-request-id": request_id,
            "x-inference-id": view["id"],
            "x-aimlapi-credits-used": str(credits),
            "x-aimlapi-usd-spent": f"{_usd(credits):.9f}",
        }
        if fault_kind == "no_id":
            view.pop("id")
        self._send_json(200, view, headers)

    def do_GET(self) -> None:  # noqa: N802
        record = self._record(None)
        try:
            self._get(record)
        finally:
            record.took = time.time() - record.time

    def _get(self, record: RecordedRequest) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith("/files/"):
            return self._serve_video(parts.path, record.query)
        if parts.path == "/__sim__/requests":
            if not self._controller():
                return self._send_error(403, "Forbidden")
            return self._send_json(200, self.sim.recorded_requests())
        if parts.path == LOGS_PATH:
            return self._logs(parts.query)
        if parts.path in CATALOGUE_PATHS:
            return self._catalogue(parts.query)
        if parts.path == BILLING_PATH:
            return self._billing()
        if parts.path not in CREATE_PATHS:
            return self._send_error(404, f"Cannot GET {parts.path}")
        fault = self.sim.next_poll_fault()
        if self._apply_fault(fault):
            return
        key = self._caller_key()
        if key is None:
            return
        gid = record.query.get("generation_id", "")
        if not gid:
            return self._send_error(400, "Body validation error! generation_id: expected string")
        weird = fault is not None and fault.kind == "weird_status"
        view = self.sim.job_view(gid, status=fault.vendor_status if weird else None, key=key)
        if view is None:
            return self._send_error(404, f"Generation {gid} not found")
        self._send_json(200, view, {"x-inference-id": gid})

    def _logs(self, query: str) -> None:
        key = self._caller_key()
        if key is None:
            return
        try:
            page = self.sim.log_page(key, parse_qs(query, keep_blank_values=True))
        except ValueError as exc:
            return self._send_error(400, str(exc))
        self._send_json(200, page)

    def _catalogue(self, query: str) -> None:
        """The catalogue needs no key; it carries an ETag and honours If-None-Match."""
        if self._apply_fault(self.sim.next_fault("catalogue")):
            return None
        page = self.sim.catalogue(parse_qs(query, keep_blank_values=True))
        etag = _etag(json.dumps(page).encode())
        if _etag_matches(self.headers.get("If-None-Match"), etag):
            self.send_response(304)  # no body, and so no Content-Length
            self.send_header("ETag", etag)
            self.end_headers()
            return None
        return self._send_json(200, page, {"ETag": etag})

    def _billing(self) -> None:
        if self._apply_fault(self.sim.next_fault("billing")):
            return None
        key = self._caller_key()
        if key is None:
            return None
        return self._send_json(200, self.sim.billing(key))

    def _controller(self) -> bool:
        """The caller may script the simulator and read its log (always, without a token)."""
        token = self.sim.control_token
        return token is None or hmac.compare_digest(self.headers.get("X-Sim-Token", ""), token)

    def _admin(self, path: str, body: Any) -> None:
        sim = self.sim
        if path == "/__sim__/reset":
            sim.reset()
            return self._send_json(200, {"ok": True})
        if path == "/__sim__/script" and isinstance(body, dict):
            try:
                sim.script_create(*(Fault.from_spec(s) for s in body.get("create", [])))
                sim.script_poll(*(Fault.from_spec(s) for s in body.get("poll", [])))
                sim.script_download(*(DownloadFault.from_spec(s) for s in body.get("download", [])))
                sim.script_outcome(*body.get("outcome", []))
                if "poll_every" in body:
                    every = body["poll_every"]
                    sim.script_poll_every(int(every["every"]), Fault.from_spec(every["fault"]))
                if "log_lag" in body:
                    sim.script_log_lag(float(body["log_lag"]))
                if "max_active" in body:
                    n = body["max_active"]
                    sim.script_max_active(None if n is None else int(n))
                sim.script_catalogue(*(Fault.from_spec(s) for s in body.get("catalogue", [])))
                sim.script_billing(*(Fault.from_spec(s) for s in body.get("billing", [])))
                for endpoint, spec in body.get("outage", {}).items():
                    sim.script_outage(endpoint, None if spec is None else Fault.from_spec(spec))
                if "pricing" in body:
                    sim.script_pricing(body["pricing"])
                if "balance" in body:
                    balance = body["balance"]
                    if isinstance(balance, dict):
                        sim.set_balance(float(balance["usd"]), balance.get("key"))
                    else:
                        sim.set_balance(float(balance))
            except (ValueError, KeyError, TypeError) as exc:
                return self._send_error(400, f"bad script: {exc}")
            return self._send_json(200, {"ok": True})
        return self._send_error(404, f"Cannot POST {path}")

    def _serve_video(self, path: str, query: dict[str, str]) -> None:
        sim = self.sim
        match = re.fullmatch(r"/files/([0-9a-f]{32})/output\.mp4", path)
        token = match.group(1) if match else ""
        try:
            expires = int(query.get("Expires", "0"))
        except ValueError:
            expires = 0
        if not sim.link_is_valid(token, expires, query.get("Signature")):
            return self._send_error(403, "Request has expired or the signature is invalid")
        fault = sim.next_download_fault()  # a refused link does not use up a fault
        if fault is not None:
            return self._download_fault(fault)
        size = sim.video_size(token)
        start, end = 0, size - 1
        status = 200
        rng = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if rng and (rng.group(1) or rng.group(2)):
            if rng.group(1):
                start = int(rng.group(1))
                end = min(int(rng.group(2)), size - 1) if rng.group(2) else size - 1
            else:
                start = max(0, size - int(rng.group(2)))
            if start > end or start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        try:
            self._stream(start, end + 1, token)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _stream(self, start: int, stop: int, token: str = "") -> None:
        for chunk in self.sim.video_chunks(start, stop, token):
            self.wfile.write(chunk)

    def _download_fault(self, fault: DownloadFault) -> None:
        if fault.kind == "status":
            return self._send_error(
                fault.code, "Access denied" if fault.code == 403 else "Not found"
            )
        if fault.kind == "redirect":
            self.send_response(302)
            self.send_header("Location", fault.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if fault.kind == "not_mp4":
            data = b"<html><body>Access denied</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if fault.kind == "truncated":
            size = self.sim.video_size()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._stream(0, size // 2)
                self.wfile.flush()
            self._drop()
            return None
        if fault.kind == "slow":
            return self._slow_video(fault.size / 1000)
        if fault.kind == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(fault.size))
            self.end_headers()
            try:
                self.wfile.write(_ftyp_header())
                sent = len(_ftyp_header())
                zeros = bytes(_CHUNK)
                while sent < fault.size:
                    n = min(_CHUNK, fault.size - sent)
                    self.wfile.write(zeros[:n])
                    sent += n
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return None
        return None

    def _slow_video(self, seconds: float) -> None:
        """The whole clip in 20 pieces, ``seconds`` apart in all: a download that takes time."""
        size = self.sim.video_size()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        step = max(1, size // 20)
        try:
            for start in range(0, size, step):
                for chunk in self.sim.video_chunks(start, min(size, start + step)):
                    self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(seconds / 20)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class DemoSimulator:
    """The simulator that demo mode talks to: started on first use, its jobs kept in
    ``data_dir`` so they survive a restart of the app, behind a key of its own."""

    def __init__(self, data_dir: Path, schedule: tuple[float, float] = (3.0, 12.0)) -> None:
        self._state_path = Path(data_dir) / "demo-jobs.json"
        self._schedule = Schedule(*schedule)
        self._lock = threading.Lock()
        self._sim: Simulator | None = None
        self.key = "demo-" + uuid.uuid4().hex[:16]

    def base_url(self) -> str:
        with self._lock:
            if self._sim is None:
                self._sim = Simulator(
                    host="127.0.0.1",
                    port=0,
                    schedule=self._schedule,
                    state_path=self._state_path,
                    control_token=uuid.uuid4().hex,
                    scope_jobs_to_keys=False,
                    clips="zoom",  # the demo's videos move the visitor's own image
                ).start()
                log.info("demo mode: simulator listening on %s", self._sim.url)
            return self._sim.url

    def stop(self) -> None:
        with self._lock:
            if self._sim is not None:
                self._sim.stop()
                self._sim = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local simulator of the AIML video API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--queued", type=float, default=2.0, help="seconds a job stays queued")
    parser.add_argument("--generating", type=float, default=8.0, help="seconds it generates")
    parser.add_argument("--key", help="accept only this API key (default: any non-empty key)")
    parser.add_argument(
        "--clips", choices=("sample", "zoom"), default="sample",
        help="a finished job's video: the sample clip, or a zoom into the job's own image",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sim = Simulator(
        args.host, args.port, api_key=args.key, schedule=Schedule(args.queued, args.generating),
        clips=args.clips,
    ).start()  # fmt: skip
    print(f"AIML API simulator on {sim.url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()

