"""The job runner: one per app process, it finishes every job whether or not a page watches.

It owns a job from the moment its row is written until the MP4 is on disk or the job has
ended for good. The states and their order are the ledger's (``history``, which enforces
them); the runner decides when each step happens:

- ``queued_here``: sent when its API key has a free slot (at most ``max_active_per_key`` jobs
  at the vendor per key); a create turned away (429/503) waits its turn again.
- ``submitting``: the create carries ``X-Client-Request-Id`` = our job id, written before
  sending. Its answer gives the generation id (``submitted``); a lost answer makes the job
  ``unknown``; a refusal, ``not_created``.
- ``unknown`` (and ``submitting`` found after a crash): the job is looked up in the vendor's
  usage log (``GET /v2/logs``) by that id, with backoff, for ``lookup_window`` seconds: found,
  it carries on as ``submitted`` (recovered); not found, ``not_created``. Never a second create.
- ``submitted``/``queued``/``generating``: polled, sparsely while the job is young (before
  about the shortest run this ledger has seen, once it has seen enough runs to trust that),
  every ``poll_interval`` after.
- ``downloading``: the video goes to the videos folder, its poster frame beside it (made
  once, here; a video that gives none is still done); a refused or broken download is tried
  again with a fresh link from a new poll, then kept for its owner to resume (paused);
  ``expired`` when the vendor no longer has the job.

Scheduling is a due-time heap served by one thread, the HTTP by a small bounded pool: watching
200 jobs takes the same dozen threads as watching one. On start it picks up every unfinished
row. Keys typed in a page live in memory only (never in the ledger): after a restart such a
job waits until its owner resumes it with the key. Watchers (``watch``) wake on the runner's
own change notices, not by reading the database in a loop.

Imports: ``client``, ``config``, ``errors``, ``history``, ``jobs``, ``media``, ``rules``;
never gradio.
"""

from __future__ import annotations

import contextlib
import heapq
import hmac
import itertools
import logging
import os
import re
import secrets
import socket
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import errors
from .client import AIMLClient, Sessions
from .config import Settings
from .history import AT_VENDOR, IllegalTransition, Job, Ledger
from .jobs import parse_generation
from .media import make_poster
from .pricing import reported_charge
from .rules import GenerationRequest

log = logging.getLogger(__name__)

LOOKUP_FIRST_WAIT = 2.0  # seconds before the first look in the usage log; then doubling
DOWNLOAD_TRIES = 3


@dataclass(frozen=True)
class Backend:
    """Where one job's requests go, and with which key (``key_ref`` names it, never shows it)."""

    name: str  # "demo" or "live"
    settings: Settings
    api_key: str = field(repr=False)
    key_ref: str = ""


def video_filename(prompt: str, generation_id: str) -> str:
    """A file name a person recognises: words of the prompt, then the start of the id."""
    text = unicodedata.normalize("NFKD", prompt or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-") or "video"
    short = re.sub(r"[^a-zA-Z0-9]", "", generation_id.split(":", 1)[0])[:8] or "job"
    return f"kling-{slug}-{short}.mp4"


def video_path_for(settings: Settings, job: Job) -> Path:
    return settings.videos_dir / video_filename(job.prompt, job.shown_id)


class Runner:
    """Runs every job of one app process to its end."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        *,
        sessions: Sessions | None = None,
        backend_for_ref: Callable[[str, str], Backend | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self._sessions = sessions or Sessions.for_settings(settings)
        self._backend_for_ref = backend_for_ref or (lambda name, ref: None)
        self._clock = clock
        self._backends: dict[str, Backend] = {}  # key_ref -> backend, typed keys included
        self._requests: dict[str, GenerationRequest] = {}  # job_id -> what to send
        self._urls: dict[str, str] = {}  # job_id -> the finished video's (signed) link
        self._tries: dict[str, int] = {}  # job_id -> lookups or downloads tried
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}  # job_id -> when its next step is due
        self._running: set[str] = set()  # jobs whose step is queued in the pool or running
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._slots = threading.Lock()
        self._versions: dict[str, int] = {}  # job_id -> changes so far (watchers wake on it)
        self._stopping = False
        self._shortest: dict[str, float | None] = {}
        self._parked: set[str] = set()
        self._faults: dict[str, int] = {}  # job_id -> steps in a row that failed (a bug)
        self._looked: dict[str, float] = {}  # job_id -> when its usage-log look last worked
        self._ref_secret = _ref_secret(settings.data_dir)
        self._pool = ThreadPoolExecutor(settings.runner_workers, thread_name_prefix="kling-job")
        self._thread = threading.Thread(target=self._loop, name="kling-runner", daemon=True)
        # This runner's name on its leases: which machine, which process, which runner.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lease_s = settings.lease_seconds
        self._picks_up = True
        self._beat = threading.Thread(target=self._heartbeat, name="kling-leases", daemon=True)

    # --- life ---------------------------------------------------------------------------

    def start(self, *, pick_up: bool = True) -> Runner:
        """Start running jobs: with ``pick_up``, every unfinished one in the ledger (the app,
        after a restart); without, only those handed to it (a command-line run beside an
        app on the same ledger, which must not poll the app's jobs too)."""
        self._picks_up = pick_up
        if pick_up:
            self._claim_free()
        self._thread.start()
        self._beat.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):  # a database already gone: the leases lapse
            self.ledger.release(self.holder)

    # --- leases: one runner a job, across processes ------------------------------------------

    def _until(self) -> tuple[float, float]:
        now = time.time()
        return now, now + self._lease_s

    def _hold(self, job_id: str) -> bool:
        """Take or renew this runner's lease on the job before a step; False when another
        live runner has it (then that one runs it, and this one only watches)."""
        now, until = self._until()
        return self.ledger.hold(job_id, self.holder, now, until)

    def _claim_free(self) -> None:
        """Jobs no live runner holds (new, lapsed, or a dead process's here) become ours."""
        now, until = self._until()
        for job in self.ledger.claim_free(self.holder, now, until, dead=self._dead_holders()):
            if job.job_id not in self._due and job.job_id not in self._running:
                self._pick_up(job)
                self._changed(job.job_id)

    def _dead_holders(self) -> set[str]:
        """Holders on this machine whose process is gone (no need to wait for their leases
        to lapse: a restart picks its jobs up at once)."""
        host = socket.gethostname()
        dead = set()
        for holder in self.ledger.holders():
            name, _, rest = holder.partition(":")
            pid = rest.partition(":")[0]
            if name == host and pid.isdigit() and not _alive(int(pid)):
                dead.add(holder)
        return dead

    def _heartbeat(self) -> None:
        """Every third of a lease: renew ours; when picking up, take the free ones."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping, timeout=self._lease_s / 3)
                if self._stopping:
                    return
            try:
                self.ledger.renew(self.holder, self._until()[1])
                if self._picks_up:
                    self._claim_free()
            except Exception:  # the database for a moment: try again next beat
                log.exception("runner: lease heartbeat failed")

    def held_elsewhere(self, job: Job) -> bool:
        """True when another live runner holds this job's lease."""
        return (
            job.lease_owner is not None
            and job.lease_owner != self.holder
            and (job.lease_until or 0) > time.time()
            and job.lease_owner not in self._dead_holders()
        )

    def _pick_up(self, job: Job) -> None:
        """After a restart: go on with a job, if its key is known here."""
        backend = self._backend_for_ref(job.backend, job.key_ref)
        if backend is None:
            self.ledger.note(job.job_id, "Waiting for its API key: resume it with your key.")
            self._parked.add(job.job_id)
            return
        self._backends[job.key_ref] = backend
        if job.state == "queued_here" and not self._load_request(job):
            self._end(job, "not_created", "The server restarted before this item was sent.")
            return
        self._schedule(job.job_id, 0.0)

    # --- what the service asks ------------------------------------------------------------

    def key_ref(self, backend_name: str, api_key: str, *, typed: bool) -> str:
        """A name for a key that says nothing about it: "server", "demo" or "typed:<hmac>"."""
        if not typed:
            return backend_name if backend_name == "demo" else "server"
        return f"typed:{self.digest(api_key)[:16]}"

    def digest(self, text: str) -> str:
        """A name for a secret (an owner token, an address) that says nothing about it."""
        return hmac.new(self._ref_secret, text.encode(), "sha256").hexdigest()[:32]

    def add(
        self,
        request: GenerationRequest,
        backend: Backend,
        *,
        batch_id: str | None = None,
        owner: str = "",
        estimate_usd: float | None = None,
        parent_id: str | None = None,
    ) -> Job:
        """Write the job's row (with its price now, and the job it continues), then send it
        when its key has a free slot and its owner's turn comes."""
        job = self.ledger.add(
            owner=owner,
            estimate_usd=estimate_usd,
            backend=backend.name,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            duration=request.duration,
            generate_audio=request.generate_audio,
            key_ref=backend.key_ref,
            batch_id=batch_id,
            created_at=self._clock(),
            parent_id=parent_id,
            lease=(self.holder, self._until()[1]),  # ours from its first moment
        )
        self._backends[backend.key_ref] = backend
        self._requests[job.job_id] = request
        self._save_request(job.job_id, request)
        self._changed(job.job_id)
        self._schedule(job.job_id, 0.0)
        return job

    def adopt(self, generation_id: str, backend: Backend, *, owner: str = "") -> Job:
        """Watch an id made elsewhere; its row goes again if the vendor doesn't know it."""
        job = self.ledger.add(
            owner=owner,
            backend=backend.name,
            prompt="",
            key_ref=backend.key_ref,
            state="submitted",
            generation_id=generation_id,
            created_at=self._clock(),
            lease=(self.holder, self._until()[1]),
        )
        self._tries[job.job_id] = -1  # adopted, not yet confirmed by the vendor
        self._backends[backend.key_ref] = backend
        self._changed(job.job_id)
        self._schedule(job.job_id, 0.0)
        return job

    def attach(self, job: Job, backend: Backend | None) -> None:
        """Make sure an unfinished job is being run; ``backend`` brings back the key a job
        was made with (typed again after a restart). A different key is refused: it would
        pay for, or poll, someone else's jobs."""
        if job.final:
            return
        if backend is not None:
            if backend.key_ref != job.key_ref:
                raise errors.AuthenticationError(
                    "This job was made with a different API key: enter the key it was made "
                    "with to resume it."
                )
            self._backends[job.key_ref] = backend
        elif job.key_ref not in self._backends:  # not picked up at start (a command line)
            known = self._backend_for_ref(job.backend, job.key_ref)
            if known is not None:
                self._backends[job.key_ref] = known
        with self._cond:
            busy = job.job_id in self._due or job.job_id in self._running
        if self.held_elsewhere(job):  # another process runs it: watching is enough
            return
        if job.key_ref in self._backends and not busy:
            if job.job_id in self._parked:  # a resume: fresh tries
                self._parked.discard(job.job_id)
                self._tries.pop(job.job_id, None)
            self._schedule(job.job_id, 0.0)

    def has_key(self, key_ref: str) -> bool:
        """True when this process knows the key a job was made with."""
        return key_ref in self._backends

    def unconfirmed(self, job_id: str) -> bool:
        """An adopted id the vendor has not yet said it knows."""
        return self._tries.get(job_id) == -1

    def cancel(self, job_id: str) -> bool:
        """Cancel a job not yet sent; False when it was already on its way."""
        try:
            self.ledger.transition(job_id, "cancelled", message="Cancelled before it was sent.")
        except IllegalTransition:
            return False
        self._forget(job_id)
        self._changed(job_id)
        return True

    def watch(self, job_id: str, *, timeout: float | None = None) -> Iterator[Job]:
        """The job now and after each change, until it ends (or ``timeout`` passes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = None
        while True:
            with self._cond:
                version = self._versions.get(job_id, 0)
            job = self.ledger.get(job_id)
            if job is None:
                return
            parked = job_id in self._parked
            if (job.state, job.updated_at, job.message, parked) != seen:
                seen = (job.state, job.updated_at, job.message, parked)
                yield job
            if job.final or parked:
                return
            with self._cond:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                if self._versions.get(job_id, 0) == version:
                    # Another process's job changes without a word here: look more often.
                    most = 5.0 if job.lease_owner in (None, self.holder) else 1.0
                    self._cond.wait(timeout=min(left or most, most))

    # --- scheduling -----------------------------------------------------------------------

    def _schedule(self, job_id: str, delay: float) -> None:
        with self._cond:
            due = time.monotonic() + max(0.0, delay)
            self._due[job_id] = due
            heapq.heappush(self._heap, (due, next(self._seq), job_id))
            self._cond.notify_all()

    def _changed(self, job_id: str) -> None:
        with self._cond:
            self._versions[job_id] = self._versions.get(job_id, 0) + 1
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            job_id = self._next_due()
            if job_id is None:
                return
            try:
                self._pool.submit(self._step, job_id)
            except RuntimeError:  # the pool was shut down: the runner is stopping
                return

    def _next_due(self) -> str | None:
        """Wait for the next due job; one step a job at a time (a job whose step is still
        under way is looked at again a moment later). None when stopping."""
        with self._cond:
            while True:
                while not self._stopping and (
                    not self._heap or self._heap[0][0] > time.monotonic()
                ):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout=wait)
                if self._stopping:
                    return None
                due, _, job_id = heapq.heappop(self._heap)
                if self._due.get(job_id) != due:
                    continue  # rescheduled since, or finished
                if job_id in self._running:
                    again = time.monotonic() + 0.05
                    self._due[job_id] = again
                    heapq.heappush(self._heap, (again, next(self._seq), job_id))
                    continue
                del self._due[job_id]
                self._running.add(job_id)
                return job_id

    def _step(self, job_id: str) -> None:
        try:
            job = self.ledger.get(job_id)
            if job is None or job.final:
                self._forget(job_id)
                return
            if not self._hold(job_id):  # another runner has it now: it goes on there
                self._let_go(job_id)
                return
            step = {
                "queued_here": self._submit,
                "submitting": self._lookup,  # found so after a crash: the outcome is unknown
                "unknown": self._lookup,
                "downloading": self._download,
            }.get(job.state, self._poll)
            step(job)
            self._faults.pop(job_id, None)
        except Exception:  # a bug of ours, or the disk: keep the job, try again later
            log.exception("runner: step for %s failed", job_id)
            faults = self._faults.get(job_id, 0) + 1
            self._faults[job_id] = faults
            if faults == 3:
                with contextlib.suppress(Exception):
                    self.ledger.note(job_id, STUCK)
            self._schedule(job_id, 10 * self.settings.poll_interval)
        finally:
            with self._cond:
                self._running.discard(job_id)
            self._changed(job_id)

    def _park(self, job_id: str) -> None:
        """Stop running a job that can't go on without its owner (a refused key)."""
        self._forget(job_id)
        self._parked.add(job_id)

    def paused(self, job_id: str) -> bool:
        """True when the job waits for its owner: a key refused, or not known after a restart."""
        return job_id in self._parked

    def _let_go(self, job_id: str) -> None:
        """Stop running a job another runner holds (its waiting request file stays: the
        other runner sends it)."""
        for store in (self._requests, self._urls, self._tries, self._looked):
            store.pop(job_id, None)
        with self._cond:
            self._due.pop(job_id, None)

    def _forget(self, job_id: str) -> None:
        """Done with a job for good: let go of it, and of its waiting request file."""
        self._let_go(job_id)
        self._pending_file(job_id).unlink(missing_ok=True)

    def _client(self, job: Job) -> AIMLClient:
        backend = self._backends[job.key_ref]
        sessions = self._sessions if backend.name == "live" else None
        return AIMLClient(backend.api_key, backend.settings, sessions)

    def _end(self, job: Job, state: str, message: str, **changes: object) -> None:
        self.ledger.transition(job.job_id, state, at=self._clock(), message=message, **changes)
        self._forget(job.job_id)
        if state in ("done", "downloading"):
            self._shortest.pop(job.backend, None)

    # --- the create -----------------------------------------------------------------------

    def _submit(self, job: Job) -> None:
        request = self._requests.get(job.job_id) or self._load_request(job)
        if request is None:
            self._end(job, "not_created", "The image of this item was lost before it was sent.")
            return
        with self._slots, self.ledger.mutex(f"slots:{job.key_ref}"):
            active = self._active(job.key_ref)
            if active >= self.settings.max_active_per_key:
                waiting = (
                    f"Waiting for a free slot: {active} jobs of this API key are at the vendor."
                )
                if job.message != waiting:
                    self.ledger.note(job.job_id, waiting)
                self._schedule(job.job_id, self.settings.poll_interval)
                return
            turn = self._next_turn(job.key_ref)
            if turn not in (None, job.job_id):  # a free slot, but another owner's turn
                self._schedule(turn, 0.0)
                self._schedule(job.job_id, self.settings.poll_interval)
                return
            now = self._clock()
            self.ledger.transition(job.job_id, "submitting", at=now, sent_at=now, message="")
        self._changed(job.job_id)
        try:
            response = self._client(job).create_generation(request, client_request_id=job.job_id)
        except (errors.RateLimitError, errors.ServerError) as exc:  # turned away: not created
            self.ledger.transition(
                job.job_id, "queued_here", message=f"{exc.base_message} {TURNED_AWAY}"
            )
            self._schedule(
                job.job_id, min(self.settings.retry_after_cap, 5 * self.settings.poll_interval)
            )
            return
        except errors.OutcomeUnknown as exc:
            self.ledger.transition(job.job_id, "unknown", message=exc.user_message)
            self._schedule(job.job_id, LOOKUP_FIRST_WAIT)
            return
        except errors.KlingUIError as exc:
            self._end(job, "not_created", exc.user_message, reason=_reason(exc))
            return
        created = parse_generation(response.payload)
        credits = created.credits if created.credits is not None else response.credits_header
        self._pending_file(job.job_id).unlink(missing_ok=True)
        self._requests.pop(job.job_id, None)
        self.ledger.transition(
            job.job_id,
            "submitted",
            at=self._clock(),
            generation_id=created.generation_id,
            credits=credits,
            message="Submitted. Keep this id: the job can be resumed with it.",
        )
        self._schedule(job.job_id, self._poll_delay(self.ledger.get(job.job_id) or job))

    def _next_turn(self, key_ref: str) -> str | None:
        """Which waiting job of this key goes next: fair shares of a shared key, so one
        person's batch of 48 doesn't keep everyone else waiting behind it. The address with
        the fewest jobs at the vendor goes first (fresh browsers are cheap: a thousand made
        from one address are one address, never ahead of a newcomer from another), between
        equals the one served longest ago (or never); then the same between its owners;
        then the oldest job."""
        waiting = [w for w in self.ledger.waiting_turns(key_ref) if w[0] not in self._parked]
        if not waiting:
            return None
        return min(enumerate(waiting), key=lambda w: (*w[1][1:], w[0]))[1][0]

    def _active(self, key_ref: str) -> int:
        """Jobs of this key at the vendor, not counting those paused for their owner."""
        return len(self.ledger.ids_in(AT_VENDOR, key_ref=key_ref) - self._parked)

    # --- a lost create --------------------------------------------------------------------

    def _lookup(self, job: Job) -> None:
        """Find a create whose answer was lost in the vendor's usage log, by our id.

        It is called not created only when looks that worked span ``lookup_window`` from the
        moment the create was sent: a lagging log or an unreachable one never decides it."""
        tries = self._tries.get(job.job_id, 0) + 1
        self._tries[job.job_id] = tries
        if job.state == "submitting":  # a crash between writing the row and the answer
            job = self.ledger.transition(
                job.job_id, "unknown", message=errors.OutcomeUnknown().user_message
            )
        try:
            found = self._client(job).find_in_logs(job.job_id)
        except errors.KlingUIError as exc:
            log.info("usage log lookup for %s failed: %s", job.job_id, type(exc).__name__)
            self.ledger.note(job.job_id, f"{LOOKING} (The usage log could not be read just now.)")
            self._schedule(job.job_id, min(LOOKUP_FIRST_WAIT * 2 ** (tries - 1), 30.0))
            return
        if found:
            self._recovered(job, found)
            return
        self._looked[job.job_id] = self._clock()
        sent = job.sent_at if job.sent_at is not None else job.created_at
        if self._looked[job.job_id] - sent > self.settings.lookup_window:
            self._end(job, "not_created", NOT_FOUND_IN_LOG, reason="not created")
            return
        self.ledger.note(job.job_id, f"{LOOKING} (look {tries})")
        self._schedule(job.job_id, min(LOOKUP_FIRST_WAIT * 2 ** (tries - 1), 30.0))

    def _recovered(self, job: Job, generation_id: str) -> None:
        """The lost create was found: carry on with it (merging a row that adopted the same
        id by hand meanwhile, so the vendor's id stays one job)."""
        other = self.ledger.find(generation_id)
        if other is not None and other.job_id != job.job_id:
            self.ledger.forget(other.job_id)
            self._forget(other.job_id)
            self._parked.discard(other.job_id)
        self.ledger.transition(
            job.job_id,
            "submitted",
            at=self._clock(),
            generation_id=generation_id,
            recovered=True,
            message="Recovered: the create's answer was lost, but the API's usage log shows "
            "the job was made. It carries on; nothing was sent twice.",
        )
        self._tries.pop(job.job_id, None)
        self._schedule(job.job_id, 0.0)

    # --- polling --------------------------------------------------------------------------

    def _poll_delay(self, job: Job) -> float:
        """Sparse while the job is young, every ``poll_interval`` from about the shortest run
        this ledger has seen (at 80% of it, so an early finish is still caught soon).

        Only once ``sparse_after_runs`` runs have finished: whatever their spread, the run
        after n others is the shortest yet with a chance of 1 in n + 1, and a job that
        beats the record ends inside its sparse stretch, noticed up to a sparse interval
        late. From 19 runs that is at most 1 job in 20, outside the p95; a ledger that
        trusted its first run noticed one job in ten 7 s late (the playback benchmark's
        p95 of 5 s)."""
        base = self.settings.poll_interval
        if job.backend not in self._shortest:
            enough = self.settings.sparse_after_runs
            runs = self.ledger.durations(job.backend, None, limit=enough) if enough else []
            trusted = len(runs) >= enough
            self._shortest[job.backend] = self.ledger.shortest_run(job.backend) if trusted else None
        shortest = self._shortest[job.backend]
        if shortest is None or job.submitted_at is None:
            return base
        dense_from = job.submitted_at + 0.8 * shortest
        left = dense_from - self._clock()
        return base if left <= 0 else min(self.settings.sparse_poll_interval, max(base, left))

    def _poll(self, job: Job) -> None:
        assert job.generation_id
        try:
            response = self._client(job).get_generation(job.generation_id)
        except (errors.RateLimitError, errors.ServerError, errors.APIConnectionError) as exc:
            self.ledger.note(job.job_id, f"{exc.user_message} Still watching.")
            self._schedule(job.job_id, self.settings.poll_interval * 2)
            return
        except errors.NotFoundError as exc:
            if self._tries.get(job.job_id) == -1:  # an adopted id the vendor doesn't know
                self.ledger.forget(job.job_id)
                self._forget(job.job_id)
                return
            # Our own job, that the API made: a 404 is the API's mistake, kept for a resume.
            self.ledger.note(job.job_id, f"{exc.user_message} Resume it to check again.")
            self._park(job.job_id)
            return
        except errors.GenerationFailed as exc:
            self._end(job, "failed", exc.user_message, reason="failed", charged_usd=0.0)
            return
        except errors.KlingUIError as exc:  # a bad key: keep the job, wait for its owner
            self.ledger.note(job.job_id, f"{exc.user_message} Resume it to try again.")
            self._park(job.job_id)
            return
        self._tries.pop(job.job_id, None)
        self._saw(job, parse_generation(response.payload, job.generation_id), response)

    def _saw(self, job: Job, status, response) -> None:
        credits = status.credits if status.credits is not None else response.credits_header
        changes = {"credits": credits} if credits is not None else {}
        now = self._clock()
        if status.phase == "completed":
            self._urls[job.job_id] = status.video_url or ""
            charge = reported_charge(response.payload)  # the charge lands with "completed"
            if charge is not None:
                changes["charged_usd"] = charge.usd
            self.ledger.transition(
                job.job_id, "downloading", at=now, message="Done at the vendor; downloading.",
                **changes,
            )  # fmt: skip
            self._schedule(job.job_id, 0.0)
            return
        if status.phase == "failed":
            vendor_text = status.error_message or status.error_name
            failure = errors.GenerationFailed(
                vendor_message=self._client(job).redact(vendor_text) if vendor_text else None
            )
            self._end(job, "failed", failure.user_message, reason="failed", charged_usd=0.0,
                      **changes)  # fmt: skip  # failed generations are not charged
            return
        if status.phase in ("queued", "generating"):
            words = {"queued": "Queued at the vendor, waiting for a worker.",
                     "generating": "Generating the video."}  # fmt: skip
            phase = "generating" if job.state == "generating" else status.phase  # never back
            job = self.ledger.transition(job.job_id, phase, at=now, message=words[phase], **changes)

        else:
            shown = self._client(job).redact(status.status) if status.status else "(none)"
            self.ledger.note(
                job.job_id, f"The API reported a status we don't know ({shown!r}); still watching."
            )
        self._schedule(job.job_id, self._poll_delay(job))

    # --- the download ---------------------------------------------------------------------

    def _download(self, job: Job) -> None:
        url = self._urls.get(job.job_id)
        if not url:  # after a restart, or a link that failed: ask for a fresh one
            self._poll_for_link(job)
            return
        dest = video_path_for(self.settings, job)
        try:
            path = self._client(job).download_video(url, dest)
        except errors.DownloadError as exc:
            tries = self._tries.get(job.job_id, 0) + 1
            self._tries[job.job_id] = tries
            self._urls.pop(job.job_id, None)
            if tries >= DOWNLOAD_TRIES:  # kept for its owner: a resume tries again
                self.ledger.note(job.job_id, exc.user_message)
                self._park(job.job_id)
                return
            self.ledger.note(job.job_id, f"{exc.user_message} Trying again with a fresh link.")
            self._schedule(job.job_id, self.settings.poll_interval * tries)
            return
        try:  # before "done", so a page that shows the video can show its poster too
            make_poster(path)
        except Exception:  # a bug of ours: the video is on disk, so the job is done regardless
            log.exception("runner: poster for %s failed", job.job_id)
        self._end(
            job, "done", "Done. The video is ready.", video_path=str(path),
            video_token=secrets.token_hex(16),  # 128 random bits: the video's address
        )  # fmt: skip

    def refetch(self, job: Job) -> Path | None:
        """A finished video this process can't see (another machine's disk): fetched again
        from the vendor by its id, into this process's videos folder. None when it can't be
        (no key for it here, the vendor's link gone): a job is never changed by this."""
        dest = video_path_for(self.settings, job)
        if dest.is_file():
            return dest
        backend = self._backends.get(job.key_ref) or self._backend_for_ref(job.backend, job.key_ref)
        if backend is None or not job.generation_id:
            return None
        self._backends.setdefault(job.key_ref, backend)
        try:
            client = self._client(job)
            status = parse_generation(client.get_generation(job.generation_id).payload)
            if not status.video_url:
                return None
            path = client.download_video(status.video_url, dest)
        except errors.KlingUIError as exc:
            log.warning("could not fetch %s again: %s", job.job_id, type(exc).__name__)
            return None
        with contextlib.suppress(Exception):
            make_poster(path)
        return path

    def _poll_for_link(self, job: Job) -> None:
        assert job.generation_id
        try:
            response = self._client(job).get_generation(job.generation_id)
        except errors.NotFoundError:
            self._end(job, "expired", EXPIRED, reason="expired")
            return
        except errors.KlingUIError as exc:
            self.ledger.note(job.job_id, f"{exc.user_message} Still trying to fetch the video.")
            self._schedule(job.job_id, self.settings.poll_interval * 2)
            return
        status = parse_generation(response.payload, job.generation_id)
        if status.phase == "completed" and status.video_url:
            self._urls[job.job_id] = status.video_url
            self._schedule(job.job_id, 0.0)
            return
        self._end(job, "expired", EXPIRED, reason="expired")  # the vendor no longer has it

    # --- batch items waiting in a file ------------------------------------------------------

    def _pending_file(self, job_id: str) -> Path:
        return self.settings.data_dir / "pending" / f"{job_id}.json"

    def _save_request(self, job_id: str, request: GenerationRequest) -> None:
        import json

        path = self._pending_file(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"image_url": request.image_url}))
        os.replace(tmp, path)

    def _load_request(self, job: Job) -> GenerationRequest | None:
        import json

        try:
            image_url = json.loads(self._pending_file(job.job_id).read_text())["image_url"]
        except (OSError, ValueError, KeyError):
            return None
        request = GenerationRequest(
            image_url, job.prompt, job.negative_prompt, job.duration, job.generate_audio
        )
        self._requests[job.job_id] = request
        return request


LOOKING = (
    "The create's answer was lost; looking for the job in the API's usage log by this job's "
    "own id. Nothing will be sent twice."
)
TURNED_AWAY = "Nothing was created; this job waits its turn here and is sent again shortly."
STUCK = (
    "Something went wrong on our side while running this job; it is kept and tried again "
    "every few seconds."
)
NOT_FOUND_IN_LOG = (
    "The create's answer was lost and the API's usage log never showed the job, so it was "
    "not created. Requests that fail are not charged. If your AIML API dashboard shows it all "
    "the same, paste its generation id into Resume by id."
)
EXPIRED = (
    "The video could not be fetched before its link expired at the vendor. Check your AIML "
    "API dashboard; failed generations are not charged."
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _ref_secret(data_dir: Path) -> bytes:
    """The secret that names typed keys (``key_ref``), kept so that a key typed again after a
    restart is known as the same one. It names keys; it is none of them."""
    path = Path(data_dir) / "key-ref-secret"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_bytes(16)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value.hex())
        os.replace(tmp, path)
        return value


def _reason(exc: errors.KlingUIError) -> str:
    """The first word of the status for a create that made no job."""
    if isinstance(exc, (errors.InputError, errors.APIConnectionError)):
        return "not sent"
    return "refused"
