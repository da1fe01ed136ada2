"""The job runner: one per app process, it finishes every job whether or not a page watches.

It owns a job from the moment its row is written until the MP4 is on disk or the job has
ended for good. The states and their order are the ledger's (``history``, which enforces
them; the words are ``states``'); the runner decides when each step happens. Three parts:

- ``runner`` (here): ``Runner``, what the service asks (add, adopt, attach, cancel, watch,
  the names of keys and secrets) and the scheduling: a due-time heap served by one thread,
  the HTTP by a small bounded pool, so watching 200 jobs takes the same dozen threads as
  watching one. Watchers (``watch``) wake on the runner's own change notices, not by reading
  the database in a loop.
- ``leases``: one runner a job across processes (take, renew, release, claim the free).
- ``steps``: a job's steps at the vendor: the create, a lost create's lookup, polling, the
  download, ending the job (``JobSteps``, the half of ``Runner`` that talks to the vendor).

On start it picks up every unfinished row. Keys typed in a page live in memory only (never
in the ledger): after a restart such a job waits until its owner resumes it with the key.

Time is injected: ``clock`` (wall time: the ledger's times, the leases), ``monotonic`` (the
schedule, deadlines) and ``wait`` (a wait on the runner's condition with a timeout on that
monotonic clock), the real ones by default; a test moves them on by hand.

Imports ``client`` (its sessions), ``config``, ``errors``, ``files``, ``history``, ``request``,
``states`` and its own ``leases`` and ``steps``; never gradio.
"""

from __future__ import annotations

import contextlib
import heapq
import hmac
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import errors
from ..client import Sessions
from ..config import Settings
from ..files import shared_secret
from ..history import IllegalTransition, Job, Ledger
from ..request import Request
from ..states import Reason, State
from .leases import Leases, Wait
from .steps import Backend, JobSteps, drop_request, save_request

log = logging.getLogger(__name__)

STUCK = (
    "Something went wrong on our side while running this job; it is kept and tried again "
    "every few seconds."
)


def wait_on(cond: threading.Condition, timeout: float | None) -> None:
    """The real wait: on ``cond`` (held) until notified or ``timeout`` seconds pass."""
    cond.wait(timeout=timeout)


class Runner(JobSteps):
    """Runs every job of one app process to its end."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        *,
        sessions: Sessions | None = None,
        backend_for_ref: Callable[[str, str], Backend | None] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Wait = wait_on,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self._sessions = sessions or Sessions.for_settings(settings)
        self._backend_for_ref = backend_for_ref or (lambda name, ref: None)
        self._clock = clock
        self._monotonic = monotonic
        self._wait = wait
        self._backends: dict[str, Backend] = {}  # key_ref -> backend, typed keys included
        self._requests = {}
        self._urls = {}
        self._tries = {}
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}  # job_id -> when its next step is due
        self._running: set[str] = set()  # jobs whose step is queued in the pool or running
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._slots = threading.Lock()
        self._versions: dict[str, int] = {}  # job_id -> changes so far (watchers wake on it)
        self._stopping = False
        self._shortest = {}
        self._parked: dict[str, Reason | None] = {}  # job -> why it waits (typed, or not known)
        self._faults: dict[str, int] = {}  # job_id -> steps in a row that failed (a bug)
        self._looked = {}
        self._ref_secret = _ref_secret(settings.data_dir)
        self._pool = ThreadPoolExecutor(settings.runner_workers, thread_name_prefix="kling-job")
        self._thread = threading.Thread(target=self._loop, name="kling-runner", daemon=True)
        self._leases = Leases(
            ledger, settings.lease_seconds, clock=clock, monotonic=monotonic, wait=wait,
            cond=self._cond, on_free=self._claimed,
        )  # fmt: skip
        self.holder = self._leases.holder  # this runner's name on its leases

    # --- life ---------------------------------------------------------------------------

    def start(self, *, pick_up: bool = True) -> Runner:
        """Start running jobs: with ``pick_up``, every unfinished one in the ledger (the app,
        after a restart); without, only those handed to it (a command-line run beside an
        app on the same ledger, which must not poll the app's jobs too)."""
        self._leases.start(pick_up=pick_up)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._leases.stop()

    def held_elsewhere(self, job: Job) -> bool:
        """True when another live runner holds this job's lease."""
        return self._leases.held_elsewhere(job)

    def _claimed(self, job: Job) -> None:
        """A job no live runner held is ours now: go on with it unless it already runs."""
        if job.job_id not in self._due and job.job_id not in self._running:
            self._pick_up(job)
            self._changed(job.job_id)

    def _pick_up(self, job: Job) -> None:
        """After a restart: go on with a job, if its key is known here."""
        backend = self._backend_for_ref(job.backend, job.key_ref)
        if backend is None:
            self._note(job.job_id, "Waiting for its API key: resume it with your key.")
            self._parked[job.job_id] = None  # its key isn't known here: not the key's fault
            return
        self._backends[job.key_ref] = backend
        if job.state == State.QUEUED_HERE and not self._load_request(job):
            self._end(
                job, State.NOT_CREATED, "The server restarted before this item was sent.",
                reason=str(Reason.NOT_SENT),  # never sent: nothing was made, nothing is owed
            )  # fmt: skip
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
        request: Request,
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
            request,
            owner=owner,
            estimate_usd=estimate_usd,
            backend=backend.name,
            key_ref=backend.key_ref,
            batch_id=batch_id,
            created_at=self._clock(),
            parent_id=parent_id,
            lease=(self.holder, self._leases.until()[1]),  # ours from its first moment
        )
        self._backends[backend.key_ref] = backend
        self._requests[job.job_id] = request
        save_request(self.settings.data_dir, job.job_id, request)
        self._changed(job.job_id)
        self._schedule(job.job_id, 0.0)
        return job

    def adopt(self, generation_id: str, backend: Backend, *, owner: str = "") -> Job:
        """Watch an id made elsewhere; its row goes again if the vendor doesn't know it."""
        job = self.ledger.add(
            None,  # what was asked is not known
            owner=owner,
            backend=backend.name,
            key_ref=backend.key_ref,
            state=State.SUBMITTED,
            generation_id=generation_id,
            created_at=self._clock(),
            lease=(self.holder, self._leases.until()[1]),
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
                self._parked.pop(job.job_id, None)
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
            self.ledger.transition(
                job_id, State.CANCELLED, at=self._clock(), reason=str(Reason.CANCELLED),
                message="Cancelled before it was sent.",
            )  # fmt: skip
        except IllegalTransition:
            return False
        self._forget(job_id)
        self._changed(job_id)
        return True

    def watch(self, job_id: str, *, timeout: float | None = None) -> Iterator[Job]:
        """The job now and after each change, until it ends (or ``timeout`` passes)."""
        deadline = None if timeout is None else self._monotonic() + timeout
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
            # Another process's job changes without a word here: look more often.
            most = 5.0 if job.lease_owner in (None, self.holder) else 1.0
            with self._cond:
                until = self._monotonic() + most
                if deadline is not None:
                    until = min(until, deadline)
                # The condition is every job's (and the schedule's): a wake for another job
                # goes back to waiting without reading the ledger. Reading it at every wake
                # made each change cost a read per watcher (50 watchers: most of the app's
                # time in SQLite, bench 3).
                while self._versions.get(job_id, 0) == version:
                    left = until - self._monotonic()
                    if left <= 0:
                        break
                    self._wait(self._cond, left)
            if deadline is not None and self._monotonic() >= deadline:
                return

    # --- scheduling -----------------------------------------------------------------------

    def _schedule(self, job_id: str, delay: float) -> None:
        with self._cond:
            due = self._monotonic() + max(0.0, delay)
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
                    not self._heap or self._heap[0][0] > self._monotonic()
                ):
                    wait = self._heap[0][0] - self._monotonic() if self._heap else None
                    self._wait(self._cond, wait)
                if self._stopping:
                    return None
                due, _, job_id = heapq.heappop(self._heap)
                if self._due.get(job_id) != due:
                    continue  # rescheduled since, or finished
                if job_id in self._running:
                    again = self._monotonic() + 0.05
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
            # Another runner has it now: it goes on there.
            if not self._leases.fresh(job) and not self._leases.hold(job_id):
                self._let_go(job_id)
                return
            step = {
                State.QUEUED_HERE: self._submit,
                State.SUBMITTING: self._lookup,  # found so after a crash: the outcome is unknown
                State.UNKNOWN: self._lookup,
                State.DOWNLOADING: self._download,
            }.get(job.state, self._poll)
            step(job)
            self._faults.pop(job_id, None)
        except Exception:  # a bug of ours, or the disk: keep the job, try again later
            log.exception("runner: step for %s failed", job_id)
            faults = self._faults.get(job_id, 0) + 1
            self._faults[job_id] = faults
            if faults == 3:
                with contextlib.suppress(Exception):
                    self._note(job_id, STUCK)
            self._schedule(job_id, 10 * self.settings.poll_interval)
        finally:
            with self._cond:
                self._running.discard(job_id)
            self._changed(job_id)

    def _park(self, job_id: str, reason: Reason | None = None) -> None:
        """Stop running a job that can't go on without its owner (a refused key)."""
        self._forget(job_id)
        self._parked[job_id] = reason

    def paused(self, job_id: str) -> bool:
        """True when the job waits for its owner: a key refused, or not known after a restart."""
        return job_id in self._parked

    def paused_for(self, job_id: str) -> Reason | None:
        """Why a paused job waits, when typed: ``Reason.KEY_OR_MONEY`` for a poll refused for
        its key or the balance; ``None`` for any other pause (or a job not paused)."""
        return self._parked.get(job_id)

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
        drop_request(self.settings.data_dir, job_id)


def _ref_secret(data_dir: Path) -> bytes:
    """The secret that names typed keys (``key_ref``), kept so that a key typed again after a
    restart is known as the same one. It names keys; it is none of them.

    Made once, exclusively: two processes starting on one data folder at once both end up
    with the one that was written first (the loser reads the winner's)."""
    return shared_secret(Path(data_dir) / "key-ref-secret", 16)
