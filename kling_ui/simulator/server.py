"""The Simulator: the job store served over real HTTP, with the fault script and the
request log.

A ``Simulator`` is a ``store.JobStore`` (the jobs, their money, usage log and clips) that
also holds what the vendor's server would not: the faults scripted for the next answers
(``faults.py``), every request received (the image replaced by its length, so tests can count
creates and check headers), the accepted key and the control token. ``start()`` serves the
HTTP handler (``handler.py``) on a ``ThreadingHTTPServer`` in a daemon thread; the handler
only turns requests into calls of the public methods here and writes the answers.

Imports ``store``, ``faults``, ``handler``, ``catalogue``, ``jobs``, ``money`` and ``vendor``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import catalogue, schemas
from .faults import DownloadFault, Fault, FaultScript
from .handler import Handler
from .jobs import Job, RecordedRequest, Schedule
from .money import DEFAULT_BALANCE
from .store import JobStore
from .vendor import CREATE_PATHS, DEFAULT_VIDEO


class Simulator(JobStore):
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
        any_model: bool = False,
    ) -> None:
        # When set, the /__sim__/ scripting and request log answer only to a caller sending
        # it as X-Sim-Token (demo mode sets one: no other local process may script it).
        self.control_token = control_token
        self.host, self.port, self.api_key, self.cdn_host = host, port, api_key, cdn_host
        self.requests: list[RecordedRequest] = []
        self.added: dict[str, dict[str, Any]] = {}  # models served beside (``add_model``)
        # Demo mode's: a create for a model with no schema here is taken (vendor.py).
        self.any_model = any_model
        self._script = FaultScript()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        super().__init__(
            schedule=schedule,
            state_path=Path(state_path) if state_path else None,
            clock=clock,
            log_lag=log_lag,
            max_active_per_key=max_active_per_key,
            scope_jobs_to_keys=scope_jobs_to_keys,
            balance=balance,
            video_path=Path(video_path) if video_path else DEFAULT_VIDEO,
            video_bytes=video_bytes,
            clips=clips,
            video_url=self._video_url,
        )

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Simulator:
        handler = type("Handler", (Handler,), {"sim": self})
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

    @property
    def video_path(self) -> Path:
        """The sample clip every job serves (unless ``clips`` is "zoom")."""
        return self._clips.video_path

    # --- scripting the answers ---------------------------------------------------------

    def script_create(self, *faults: Fault) -> None:
        with self._lock:
            self._script.create.extend(faults)

    def script_poll(self, *faults: Fault) -> None:
        with self._lock:
            self._script.poll.extend(faults)

    def script_poll_every(self, every: int, fault: Fault | None) -> None:
        """Answer every ``every``-th poll (of all jobs) with ``fault``; None turns it off.

        For load tests: ``script_poll_every(3, Fault.rate_limit(1))`` rate-limits a third.
        """
        with self._lock:
            self._script.poll_every(every, fault)

    def script_download(self, *faults: DownloadFault) -> None:
        with self._lock:
            self._script.download.extend(faults)

    def script_catalogue(self, *faults: Fault) -> None:
        """Answer the next catalogue requests (``GET /v1/models``) with these faults."""
        with self._lock:
            self._script.catalogue.extend(faults)

    def script_billing(self, *faults: Fault) -> None:
        """Answer the next balance requests (``GET /v2/billing``) with these faults."""
        with self._lock:
            self._script.billing.extend(faults)

    def script_chat(self, *faults: Fault) -> None:
        """Answer the next chat completions (``POST /v1/chat/completions``) with these."""
        with self._lock:
            self._script.chat.extend(faults)

    def script_outage(self, endpoint: str, fault: Fault | None = None) -> None:
        """Answer every request to ``endpoint`` (``catalogue`` or ``billing``) with ``fault``
        until it is lifted with None: ``script_outage("catalogue", Fault.status(503))``."""
        with self._lock:
            self._script.outage(endpoint, fault)

    def reset(self) -> None:
        """Forget the script and the records (requests, the usage log, the peaks), restoring
        the constructor's log lag, limit and balance and the default price. Jobs stay, so
        their polls still answer (those that end from now on are charged)."""
        with self._lock:
            self.requests.clear()
            self._script.clear()
            self._forget()

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
            return self._script.next_create()

    def next_poll_fault(self) -> Fault | None:
        """Take the next scripted poll fault; failing that, count the poll for the periodic one."""
        with self._lock:
            return self._script.next_poll()

    def next_download_fault(self) -> DownloadFault | None:
        """Take the next scripted download fault, if any."""
        with self._lock:
            return self._script.next_download()

    def next_fault(self, endpoint: str) -> Fault | None:
        """The fault for the next ``catalogue`` or ``billing`` answer: the next scripted one,
        else the outage in force, else None."""
        with self._lock:
            return self._script.next_for(endpoint)

    def catalogue(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """The model catalogue (``GET /v1/models``) for the parsed query string."""
        with self._lock:
            pricing = self._pricing
        return catalogue.listing(pricing, query, docs_base=self.url, added=self.added)

    def add_model(self, document: dict[str, Any]) -> str:
        """Serve one more model, from its OpenAPI document (as the vendor adds one): listed
        in the catalogue with its schema link, its creates checked against it. Its id."""
        model, _ = schemas.body_schema(document)
        with self._lock:
            self.added = {**self.added, model: document}
        return model

    def billing(self, key: str) -> dict[str, Any]:
        """``GET /v2/billing`` for ``key``'s account."""
        return {"current_balance": self.balance(key), "currency": "USD"}

    def _video_url(self, job: Job) -> str:
        expires = int(time.time()) + 3600
        host = self.cdn_host or self.host
        return (
            f"http://{host}:{self.port}/files/{job.token}/output.mp4"
            f"?Expires={expires}&Signature={self._signature(job.token, expires)}"
        )
