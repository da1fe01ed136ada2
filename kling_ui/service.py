"""What one click does, without any web framework: check, hand the job to the runner, watch.

Owns the choice of backend for a request (one rule: ``choose_backend``), the checks that
come before anything is written or sent (one image, or a whole batch), and the view of a
job as ``Progress`` values the page renders. The runner (``runner.py``) owns the job from
the moment its row is written; the generators here only watch it, so a closed tab or Stop
watching ends the watching, never the job. Programs and tests can use them directly.

It also keeps what the gallery and Remix show of a past job: each job's prepared image (in
``inputs/`` beside the ledger, until retention removes the job), its video's poster frame
(``media``), and how long such videos typically take.

Imports: ``addresses``, ``client``, ``config``, ``errors``, ``history``, ``images``,
``jobs``, ``media``, ``rules``; the simulator's ``DemoSimulator`` is handed in by app.py.
Never gradio.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import secrets
import shutil
import statistics
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors
from .addresses import address_key
from .chains import Chains, Continuation, chain_path
from .client import AIMLClient
from .config import Settings
from .history import Job, Ledger
from .images import PreparedImage, prepare_image
from .jobs import Progress
from .media import make_poster, poster_path
from .pricing import Estimate, PriceBook, dollars
from .request import Request
from .rules import NO_IMAGE, check_generation_id, check_new_generation_id
from .runner import Backend, Runner
from .states import PHASE_OF_STATE, UNPAID, Reason, phase_of

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


STATE_PHASE = PHASE_OF_STATE  # the page's word for each state (``states``), for importers
OWNER_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
ADDRESS = "address:"  # a visitor or place known by the client's address (its digest)
MEDIA_PREFIX = "/media/"
SWEEP_EVERY = 3600.0  # seconds between retention sweeps
MEDIA_TOKEN = re.compile(r"[0-9a-f]{32}")
NOT_KNOWN = (
    "The API does not know this generation id. Check that it was copied whole and belongs "
    "to the same API key."
)
MAX_TAKES = 4
STOPPED_BEFORE_SENT = "Stopped before it was sent: no job was made and nothing is charged."
MAX_BATCH = 48
JPEG_DATA_URI = "data:image/jpeg;base64,"  # what prepare_image makes of every upload
TYPICAL_FRESH = 30.0  # seconds a typical duration is reused (a page asks every second)
TYPICAL_OF = 50  # the most recent finished jobs a typical duration is the median of


# What a price is asked of: a request, or a mapping of the model's fields (a price view's).
Fields = Request | Mapping[str, Any]


class GenerationService:
    """Starts, resumes and shows jobs for every user of one app process."""

    balance_fresh = 30.0  # seconds a balance read is reused (each click would ask otherwise)

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        demo: DemoSimulator | None = None,
        clock: Callable[[], float] = time.time,
        start: bool = True,
        pick_up: bool = True,
    ) -> None:
        self.settings = settings
        _private_folder(settings.data_dir)
        self.ledger = ledger or Ledger(
            settings.ledger_where, pool_size=settings.runner_workers + 16
        )
        self.demo = demo
        self._clock = clock
        settings.videos_dir.mkdir(parents=True, exist_ok=True)
        self.runner = Runner(
            settings, self.ledger, backend_for_ref=self._backend_for_ref, clock=clock
        )
        self.chains = Chains(self.ledger, settings.data_dir)
        self._books: dict[str, PriceBook] = {}  # API address -> its price book
        self._budget_lock = threading.Lock()  # a budget's check and the job's row: one step
        self._balances: dict[str, tuple[float, float | None]] = {}  # key_ref -> (when, USD)
        self._typical: dict[tuple[str, int], tuple[float, float | None]] = {}  # -> (when, s)
        self._poster_lock = threading.Lock()
        self._posters_tried: set[str] = set()  # videos whose missing poster was made (or not)
        self._browsers = BrowserTable(settings.browsers_kept)
        self._closed = threading.Event()
        # Folders (and the names in them) of copies made for a page: the UI adds its own
        # (``Handlers``); the retention sweep removes those older than its days.
        self.scratch: list[tuple[Path, tuple[str, ...]]] = []
        if start:
            self.runner.start(pick_up=pick_up)
            if pick_up and settings.retention_days > 0:
                threading.Thread(target=self._sweeper, name="kling-retention", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self.runner.stop()
        self.ledger.close()

    # --- retention ------------------------------------------------------------------------

    def sweep(self, now: float | None = None) -> int:
        """Remove jobs that ended more than ``retention_days`` before ``now``, with their
        videos, posters and kept images, and the demo's and the page's copies (``scratch``)
        older than that. Returns how many jobs went. Unfinished jobs are never removed."""
        days = self.settings.retention_days
        if days <= 0:
            return 0
        gone = 0
        now = time.time() if now is None else now
        for job in self.ledger.ended_before(now - days * 86400):
            if job.video_path:
                Path(job.video_path).unlink(missing_ok=True)
                poster_path(Path(job.video_path)).unlink(missing_ok=True)
                chain_path(Path(job.video_path)).unlink(missing_ok=True)
            self._input_path(job.job_id).unlink(missing_ok=True)
            (self.chains.frames / f"{job.job_id}-last.jpg").unlink(missing_ok=True)
            self.ledger.forget(job.job_id)
            gone += 1
        clips = self.settings.data_dir / "demo-clips"  # the demo's copies of visitors' images
        for old in clips.glob("*") if clips.is_dir() else ():
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < now - days * 86400:
                    old.unlink()
        for folder, names in list(self.scratch):
            for name in names:
                for old in folder.glob(name) if folder.is_dir() else ():
                    with contextlib.suppress(OSError):
                        if old.stat().st_mtime < now - days * 86400:
                            shutil.rmtree(old) if old.is_dir() else old.unlink()
        if gone:
            log.info("retention: removed %d jobs ended over %g days ago", gone, days)
        return gone

    def _sweeper(self) -> None:
        while not self._closed.is_set():
            try:
                self.sweep()
            except Exception:  # the disk: try again next time
                log.exception("retention sweep failed")
            self._closed.wait(SWEEP_EVERY)

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
            return self._demo_backend()
        key = typed if choice == TYPED else (self.settings.api_key or "")
        ref = self.runner.key_ref(LIVE, key, typed=choice == TYPED)
        return Backend(LIVE, self.settings, key, ref)

    def _demo_backend(self) -> Backend:
        assert self.demo is not None
        settings = self.settings.with_(base_url=self.demo.base_url())
        return Backend(DEMO, settings, self.demo.key, DEMO)

    def _backend_for_ref(self, name: str, key_ref: str) -> Backend | None:
        """After a restart: the backend of a job recorded with ``key_ref``, if known here."""
        if key_ref == DEMO or (name == DEMO and not key_ref):
            return self._demo_backend() if self.demo is not None else None
        if key_ref in ("server", "") and self.settings.api_key and not self.settings.demo:
            return Backend(LIVE, self.settings, self.settings.api_key, "server")
        return None  # a typed key: never stored, so it waits for its owner

    def visitor(self, owner_token: str | None, address: str | None) -> Visitor:
        """Who asks: "browser:<digest>" for a page (its owner token), "address:<digest>" for a
        program (the client's address), "" when neither is known (in-process callers); and
        from where (``Visitor.place``, the address's digest), which every limit counts too."""
        token = owner_token if isinstance(owner_token, str) else ""
        place = self.place(address)
        if OWNER_TOKEN.fullmatch(token):
            return Visitor("browser:" + self.runner.digest(token), place)
        return Visitor(place, place)

    def user_token(self, user: str) -> str:
        """The owner token of a Hugging Face user signed in on a Space (``user``: the account's
        OIDC ``sub``, never its name, which can change hands): the same in every
        browser they sign in on (so the same visitor, with the same history), and known to
        no one else (a digest under this app's secret)."""
        return self.runner.digest("hf-user:" + user)

    def admit_browser(self, token: str, address: str | None) -> bool:
        """Whether this browser's owner token may stand for a visitor from this address:
        yes for one admitted before (``BrowserTable``) or one that owns jobs in the ledger
        (a browser returning after a day keeps its history); a never-seen one only while
        the address has brought fewer than ``address_new_browsers_per_hour`` in the last
        hour (a script makes browsers for free; past the limit, a new one is known by its
        address, as a program is). No address (in-process callers), no limit."""
        most = self.settings.address_new_browsers_per_hour
        place = self.place(address)
        if most <= 0 or not place:
            return True
        owner = "browser:" + self.runner.digest(token)
        if self._browsers.admit(place, owner, most):
            return True
        if OWNER_TOKEN.fullmatch(token) and self.ledger.has_jobs(owner):
            self._browsers.remember(place, owner)
            return True
        return False

    def place(self, address: str | None) -> str:
        """Where a request comes from: "address:<digest>" of the client's address behind our
        proxies, as limits count it (``addresses.address_key``: no port, an IPv6 client by
        its network), "" when not known (in-process callers)."""
        key = address_key(address, self.settings.ipv6_prefix) if address else ""
        return ADDRESS + self.runner.digest(key) if key else ""

    def visible(self, job: Job, owner: str) -> bool:
        """Whether a browser's history may show this job: made there, or opened there."""
        if self.ledger.may_see(job, owner):
            return True
        # A job from before owners goes to the first browser that shows it, except where
        # visitors bring keys: there only a key the vendor accepts opens it (``may_open``).
        return not self.settings.require_user_key and self.ledger.claim(job.job_id, owner)

    # --- money ----------------------------------------------------------------------------

    def _book(self, backend: Backend | None = None) -> PriceBook:
        """The price book of a backend's API (the demo simulator quotes the same prices)."""
        if backend is None:
            base = self.demo.base_url() if self.demo_mode and self.demo else self.settings.base_url
        else:
            base = backend.settings.base_url
        if base not in self._books:
            self._books[base] = PriceBook(self.settings.with_(base_url=base), clock=self._clock)
        return self._books[base]

    def estimate(self, request_or_fields: Fields, count: object = 1) -> Estimate:
        """What ``count`` videos like this request (or like these fields of the model) will
        cost, before anything is sent."""
        return self._book().estimate(request_or_fields, count)

    def balance(self, api_key: str | None) -> float | None:
        """The balance of the account a request would go to, in USD; None when not known.
        Read at most once per ``balance_fresh`` seconds per account."""
        try:
            backend = self.backend_for(api_key)
        except errors.KlingUIError:
            return None
        now = time.monotonic()
        seen = self._balances.get(backend.key_ref)
        if seen is not None and now - seen[0] < self.balance_fresh:
            return seen[1]
        value = self._book(backend).balance(backend.api_key)
        self._balances[backend.key_ref] = (now, value)
        return value

    def low_balance(
        self, api_key: str | None, request_or_fields: Fields, count: object = 1
    ) -> str | None:
        """Words when the account's balance is below the price of what is about to be sent;
        None when it isn't, when either is not known (the balance endpoint never blocks), or
        in the demo (nothing is charged)."""
        try:
            backend = self.backend_for(api_key)
            price = self._book(backend).estimate(request_or_fields, count).usd
        except errors.KlingUIError:
            return None
        if backend.name == DEMO or not price:
            return None
        if backend.key_ref == "server" and self.settings.on_space:
            return None  # a Space's own account is the owner's business, not its visitors'

        balance = self.balance(api_key)
        if balance is None or balance >= price:
            return None
        return (
            f"Your AIML API balance is ${balance:,.2f}, below the price of this request "
            f"(${price:,.2f}): the vendor may refuse it."
        )

    def _check_budget(self, backend: Backend, owner: str, usd: float | None, count: int) -> None:
        """Refuse, in words and with nothing sent, what would pass a budget of the server's
        own key (a typed key is its owner's money; the demo costs nothing)."""
        s = self.settings
        if backend.key_ref != "server" or not s.budgets_on:
            return
        if usd is None:
            raise errors.LimitReached(
                "This video's price is not known in advance, so this server's budget can't "
                "cover it. Enter your own AIML API key to generate it."
            )
        now = self._clock()
        day = _utc_day_start(now)
        own_key = " Enter your own AIML API key to generate now."
        if s.daily_budget_usd > 0:
            spent = self.ledger.spent_since(day, key_ref="server")
            if spent + usd > s.daily_budget_usd + 1e-9:
                raise errors.LimitReached(
                    f"This app's daily budget for its own API key is ${s.daily_budget_usd:,.2f}"
                    f" (UTC day); ${spent:,.2f} of it is spent or on its way, and this would add"
                    f" ${usd:,.2f}. It renews at midnight UTC.{own_key}"
                )
        if owner and s.visitor_daily_budget_usd > 0:
            spent = self.ledger.spent_since(day, key_ref="server", owner=owner)
            if spent + usd > s.visitor_daily_budget_usd + 1e-9:
                raise errors.LimitReached(
                    f"Each visitor may spend ${s.visitor_daily_budget_usd:,.2f} a day (UTC) of "
                    f"this app's key; you have used ${spent:,.2f}, and this would add "
                    f"${usd:,.2f}. It renews at midnight UTC.{own_key}"
                )
        place = _place_of(owner)
        most = s.address_limit("daily_budget_usd")
        if place and most > 0:
            spent = self.ledger.spent_since(day, key_ref="server", owner=place, column="address")
            if spent + usd > most + 1e-9:
                raise errors.LimitReached(
                    f"Each address may spend ${most:,.2f} a day (UTC) of this app's key, for "
                    f"everyone who reaches the app from it; ${spent:,.2f} is used from your "
                    f"address, and this would add ${usd:,.2f}. It renews at midnight UTC."
                    f"{own_key}"
                )
        if owner and s.visitor_jobs_per_hour > 0:
            made = self.ledger.jobs_since(now - 3600, key_ref="server", owner=owner)
            if made + count > s.visitor_jobs_per_hour:
                raise errors.LimitReached(
                    f"Each visitor may make {s.visitor_jobs_per_hour} videos an hour on this "
                    f"app's key; you have made {made} in the last hour.{own_key}"
                )
        most = int(s.address_limit("jobs_per_hour"))
        if place and most > 0:
            made = self.ledger.jobs_since(
                now - 3600, key_ref="server", owner=place, column="address"
            )
            if made + count > most:
                raise errors.LimitReached(
                    f"Each address may make {most} videos an hour on this app's key, for "
                    f"everyone who reaches the app from it; {made} were made from your address "
                    f"in the last hour.{own_key}"
                )

    # --- one image ----------------------------------------------------------------------

    def generate(
        self,
        image: str | None,
        request: Request,
        *,
        api_key: str | None = None,
        fit: str = "reject",
        owner: str = "",
        parent_id: str | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Progress]:
        """Check everything, hand the job to the runner, then watch it to its end.

        ``request``: what to make, checked where it entered (``Request.make``); ``image``
        (a path, or an https link) is prepared here and set as its start frame. ``owner``
        names who asks ("browser:..." or "address:..."; see ``visitor``): the job is theirs,
        and counts against their share. ``parent_id``: the finished job it continues
        (its last frame is ``image``); its last update carries the whole chain's video.
        ``should_stop``: asked just before the job is handed over (the page's Stop watching,
        pressed while the checks ran); true, and nothing is made or sent.

        Raises ``KlingUIError`` before anything is written or sent (bad input, no key); once
        the job is the runner's, everything, a refused create included, comes as ``Progress``.
        """
        _check_image_given(image)
        _check_request(request)
        parent = self._parent(parent_id, owner, api_key)
        backend = self.backend_for(api_key)
        if parent is not None and (parent.backend == DEMO) != (backend.name == DEMO):
            raise errors.InputError(  # a chain is simulated, or real, throughout
                "That video was simulated in demo mode, and this part would be made for real "
                "(or the other way round): a chain is one or the other. Start a new video "
                "from an image instead."
            )
        self._check_room(owner, 1)
        price = self._book(backend).estimate(request).usd
        prepared = prepare_image(image, fit=fit, owner=owner)  # type: ignore[arg-type]
        with self._budget_lock, self.ledger.mutex("budget"):
            self._check_room(owner, 1)  # again: others may have added jobs meanwhile
            self._check_budget(backend, owner, price, 1)
            if should_stop is not None and should_stop():
                raise errors.InputError(STOPPED_BEFORE_SENT)
            job = self.runner.add(
                request.with_image(prepared.data_uri), backend, owner=owner,
                estimate_usd=price, parent_id=parent.job_id if parent else None,
            )  # fmt: skip
        self._keep_input(prepared.data_uri, [job.job_id])
        note = f" ({prepared.adjusted})" if prepared.adjusted else ""
        yield from self.follow(job.job_id, submitted_note=note)

    def submit(
        self,
        image: str | None,
        request: Request,
        *,
        takes: object = 1,
        api_key: str | None = None,
        fit: str = "reject",
        owner: str = "",
    ) -> dict[str, Any]:
        """``generate``'s checks, then ``takes`` videos of one image and prompt queued at once,
        without watching them (for programs that look in later): the batch's answer, each
        job's id in it. Raises ``KlingUIError`` with nothing written or sent."""
        _check_image_given(image)
        _check_request(request)
        count = _check_takes(takes)
        backend = self.backend_for(api_key)
        self._check_room(owner, count)
        planned, _ = plan_takes(image, request, count, fit=fit, owner=owner)
        return self.queue_many(planned, backend, owner=owner)

    # --- chains: continuing a video from its last frame ------------------------------------

    def continue_from(
        self, any_id: str, owner: str = "", api_key: str | None = None
    ) -> Continuation:
        """What "Continue" starts from: the last frame of a finished video this caller may
        see (``may_open``), and its chain so far; ``KlingUIError`` in words if it can't."""
        job = self.entry(check_generation_id(any_id), owner, api_key)
        if job is None or not self.may_open(job, owner, api_key):
            raise errors.NotFoundError("No video with that id is in this app's history.")
        return self.chains.continuation(job)

    def extend(
        self,
        any_id: str,
        request: Request,
        *,
        api_key: str | None = None,
        owner: str = "",
    ) -> Iterator[Progress]:
        """A new part for the chain ending at ``any_id``, from its last frame (``request``
        comes without an image: the frame is added); watched like ``generate``, its last
        update carrying the whole chain's video."""
        _check_request(request)
        start = self.continue_from(any_id, owner, api_key)
        yield from self.generate(
            str(start.frame), request, api_key=api_key, owner=owner,
            parent_id=start.parent.job_id,
        )  # fmt: skip

    def _parent(self, parent_id: str | None, owner: str, api_key: str | None) -> Job | None:
        if not parent_id:
            return None
        parent = self.entry(parent_id, owner, api_key)
        if parent is not None and not self.may_open(parent, owner, api_key):
            parent = None
        self.chains.check_parent(parent)
        return parent

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
        url = self.video_url(job) if video and video.exists() else None
        message = job.message
        # A continuation: the page and programs get the whole chain; a part continued since
        # shows itself (the line's one stitched copy is the latest chain's, chains.py).
        latest = job.parent_id and self.chains.latest(job)
        chain = self.chains.video(job) if latest else None
        if chain is not None:
            video, url = chain, self.chain_url(job)
            message = f"{message} The whole chain ({len(self.chains.parts(job))} parts) is ready."
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

    # --- by id ----------------------------------------------------------------------------

    def resume(
        self, any_id: str, api_key: str | None = None, *, owner: str = ""
    ) -> Iterator[Progress]:
        """Watch a job by its id (ours or the vendor's); an id made elsewhere is adopted.

        An id the ledger doesn't know must look like the vendor's ids, and its row goes again
        if the vendor doesn't know it either: a mistyped id leaves no trace. A job the ledger
        knows is shown only to someone with the right to see it (``may_open``)."""
        job = self.take_up(any_id, api_key, owner=owner)
        yield from self.follow(job.job_id)

    def take_up(self, any_id: str, api_key: str | None = None, *, owner: str = "") -> Job:
        """``resume`` without the watching: make sure the job with this id is being run (an
        id made elsewhere is adopted) and return its row. Raises as ``resume`` does."""
        raw = check_generation_id(any_id)
        job = self.entry(raw, owner, api_key)
        if job is None:
            check_new_generation_id(raw)
            self._check_room(owner, 1)
            return self.runner.adopt(raw, self.backend_for(api_key), owner=owner)
        if not self.may_open(job, owner, api_key):
            raise errors.NotFoundError(NOT_KNOWN)
        if not job.final:
            self.runner.attach(job, self._key_to_bring(job, api_key))
            if not self.runner.has_key(job.key_ref):  # else it would wait unseen for ever
                raise errors.AuthenticationError(_no_key_here(job))
        return job

    def may_open(self, job: Job, owner: str, api_key: str | None) -> bool:
        """Whether this caller may see this job (its status, prompt and video).

        Its maker, and anyone it was shown to, may. Where visitors bring their own keys
        (``require_user_key``) anyone else must bring a key the vendor accepts for the job;
        elsewhere (a private app on the server's key, the demo) the id itself is the secret,
        as it is at the vendor. Seeing it once lets this browser see it again (history).
        There, an address is never enough: any program behind it (a shared network, a
        proxy) would read the job; only the key, or the browser token that made it, is."""
        if self.settings.require_user_key:
            by_address = owner.startswith(ADDRESS)
            made_here = not by_address and self.ledger.may_see(job, owner)
            if not made_here and not self._key_opens(job, api_key):
                return False
            if by_address:
                return True  # the key opened it, this time: nothing kept for the address
        elif self.visible(job, owner):
            return True
        self.ledger.grant(job.job_id, owner)
        return True

    def _key_opens(self, job: Job, api_key: str | None) -> bool:
        """True when ``api_key`` made this job, or the vendor shows the job to that key."""
        typed = (api_key or "").strip()
        if not typed or job.backend == DEMO:
            return False
        if job.key_ref == self.runner.key_ref(LIVE, typed, typed=True):
            return True
        if not job.generation_id:
            return False
        try:
            AIMLClient(typed, self.settings).get_generation(job.generation_id)
        except errors.KlingUIError:
            return False
        return True

    def _key_to_bring(self, job: Job, api_key: str | None) -> Backend | None:
        """The key a resume brings back: only a typed one, only for a job made with a typed
        key that this process no longer holds (after a restart). The server's key is never
        swapped for a typed one, nor the other way round."""
        if not job.key_ref.startswith("typed:") or self.runner.has_key(job.key_ref):
            return None
        if not (api_key or "").strip():
            raise errors.AuthenticationError(
                "This job was made with an API key typed in the page, which is never stored: "
                "enter it again to resume the job."
            )
        return self.backend_for(api_key, recorded=job.backend)

    def status(self, any_id: str, *, owner: str = "", api_key: str | None = None) -> dict[str, Any]:
        """One snapshot of a job, for programs: never waits."""
        job = self.entry(check_generation_id(any_id), owner, api_key)
        if job is None or not self.may_open(job, owner, api_key):
            raise errors.NotFoundError("No job with that id was started or resumed here.")
        update = self.progress(job)
        return {
            "job_id": job.job_id,
            "generation_id": job.generation_id,
            "state": job.state,
            "phase": update.phase,
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
        }

    # --- videos, by address -------------------------------------------------------------

    def video_url(self, job: Job) -> str:
        """The video's address on this server: 128 random bits, no path of the server's."""
        return f"{MEDIA_PREFIX}{self._video_token(job)}.mp4"

    def chain_url(self, job: Job) -> str:
        """The address of the whole chain ending at this job (the video's, ``.chain.mp4``)."""
        return f"{MEDIA_PREFIX}{self._video_token(job)}.chain.mp4"

    def poster_url(self, job: Job) -> str | None:
        """The address of a finished video's poster frame (the video's, ending ``.jpg``);
        None when the job has no video on disk, or its video gives no picture.

        A video from before posters gets its poster here, the first time it is asked for;
        one that can't be decoded is tried once per process, not at every page update."""
        if job.state != "done" or not job.video_path:
            return None
        video = Path(job.video_path)
        if not video.is_file():
            return None
        poster = poster_path(video)
        if not poster.is_file():
            with self._poster_lock:  # one maker per video; the others find its poster
                if not poster.is_file() and str(video) not in self._posters_tried:
                    self._posters_tried.add(str(video))
                    make_poster(video)
            if not poster.is_file():
                return None
        return f"{MEDIA_PREFIX}{self._video_token(job)}.jpg"

    def _video_token(self, job: Job) -> str:
        token = job.video_token
        if not token:  # a video from before addresses had tokens
            self.ledger.set_video_token(job.job_id, secrets.token_hex(16))
            token = (self.ledger.get(job.job_id) or job).video_token
        assert token
        return token

    def media_file(self, name: str) -> tuple[Path, str] | None:
        """The file behind ``/media/<name>`` (``<token>.mp4``, the video, or ``<token>.jpg``,
        its poster) and the name to save it as; None if none."""
        token, dot, suffix = name.partition(".")
        kinds = ("mp4", "jpg", "chain.mp4")
        if not dot or suffix not in kinds or not MEDIA_TOKEN.fullmatch(token):
            return None
        job = self.ledger.by_video_token(token)
        if job is None or not job.video_path:
            return None
        if not Path(job.video_path).is_file():  # another machine's disk: fetched again here
            local = self.runner.refetch(job) if job.state == "done" else None
            if local is None:
                return None
            job = replace(job, video_path=str(local))
        if suffix == "chain.mp4":
            path = self.chains.video(job)
            return (path, path.name) if path is not None else None
        path = Path(job.video_path) if suffix == "mp4" else poster_path(Path(job.video_path))
        return (path, path.name) if path.is_file() else None

    # --- what a past job leaves: its image, its settings, its usual time ------------------

    def _input_path(self, job_id: str) -> Path:
        return self.settings.data_dir / "inputs" / f"{job_id}.jpg"

    def _keep_input(self, data_uri: str, job_ids: list[str]) -> None:
        """Keep the image these jobs were sent with (for Remix): the prepared JPEG, as sent.
        An https URL is the vendor's to fetch and isn't kept. The jobs of one batch image
        share one file's bytes (hard links) where the disk allows. Never fails the jobs."""
        if not job_ids or not data_uri.startswith(JPEG_DATA_URI):
            return
        try:
            data = base64.b64decode(data_uri[len(JPEG_DATA_URI) :], validate=True)
            folder = self._input_path(job_ids[0]).parent
            _private_folder(folder)
            first = self._input_path(job_ids[0])
            _write_private(first, data)
            for job_id in job_ids[1:]:
                try:
                    os.link(first, self._input_path(job_id))
                except OSError:  # no hard links here (some shared volumes): a copy
                    _write_private(self._input_path(job_id), data)
        except (OSError, binascii.Error) as exc:
            log.warning("could not keep the image of %s: %s", job_ids[0], type(exc).__name__)

    def input_image(self, job: Job) -> Path | None:
        """The image a job was sent with (the prepared JPEG), when it is kept here."""
        path = self._input_path(job.job_id)
        return path if path.is_file() else None

    def remix(self, any_id: str, owner: str) -> dict[str, Any] | None:
        """What a new job like this one starts from: its image (a path, or None when not
        kept) and its settings. None for an id not known here, or a job ``owner`` may not
        see (the history's rule, ``visible``)."""
        job = self.entry(any_id, owner) if isinstance(any_id, str) else None
        if job is None or not self.visible(job, owner):
            return None
        return {
            "image": self.input_image(job),
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt,
            "duration": job.duration,
            "generate_audio": job.generate_audio,
        }

    def typical_seconds(self, backend_name: str, duration: int) -> float | None:
        """How long a video like this usually takes here, from its create to the vendor's
        finish: the median of the last ``TYPICAL_OF`` done jobs of this backend and video
        duration, else of any duration on this backend; None before the first. Read from
        the ledger at most once per ``TYPICAL_FRESH`` seconds."""
        key = (backend_name, int(duration))
        now = time.monotonic()
        seen = self._typical.get(key)
        if seen is not None and now - seen[0] < TYPICAL_FRESH:
            return seen[1]
        times = self.ledger.durations(backend_name, key[1], limit=TYPICAL_OF)
        times = times or self.ledger.durations(backend_name, None, limit=TYPICAL_OF)
        value = statistics.median(times) if times else None
        self._typical[key] = (now, value)
        return value

    # --- many -----------------------------------------------------------------------------

    def batch(
        self,
        images: list[str] | None,
        prompts: str,
        *,
        fields: Mapping[str, object] | None = None,
        takes: object = 1,
        api_key: str | None = None,
        fit: str = "reject",
        owner: str = "",
    ) -> dict[str, Any]:
        """Check every item (each image, each prompt line with the ``fields`` the lines
        share: negative prompt, duration, audio), then queue images x prompts x takes with
        the runner. One bad item refuses the whole batch, named; nothing is sent."""
        paths = [str(p) for p in (images or []) if p]
        if not paths:
            raise errors.InputError("Add at least one image to the batch.")
        lines = [line.strip() for line in (prompts or "").splitlines() if line.strip()]
        if not lines:
            raise errors.InputError("Write at least one prompt: one prompt per line.")
        count = _check_takes(takes)
        _check_size(len(paths) * len(lines) * count)
        requests = [_line_request(i, line, fields or {}) for i, line in enumerate(lines, 1)]
        backend = self.backend_for(api_key)
        self._check_room(owner, len(paths) * len(lines) * count)
        uris = [_prepared_item(i, path, fit, owner) for i, path in enumerate(paths, 1)]
        planned = [
            Planned(line.with_image(uri), {"image": n, "prompt": line.prompt, "take": take})
            for n, uri in enumerate(uris, 1)
            for line in requests
            for take in range(1, count + 1)
        ]
        return self.queue_many(planned, backend, owner=owner)

    def price_book(self, backend: Backend | None = None) -> PriceBook:
        """The price book of the API a backend's requests go to (default: a keyless one's)."""
        return self._book(backend)

    def queue_many(
        self, planned: list[Planned], backend: Backend, *, owner: str = ""
    ) -> dict[str, Any]:
        """Queue checked videos as one batch: each its prepared image and checked fields,
        each may differ in length and audio. The visitor's share and the server's budget are
        checked for all of them at once, in the same step as their rows are written."""
        total = len(planned)
        _check_size(total)
        self._check_room(owner, total)
        quotes, usd, words = quote_many(self._book(backend), planned)
        batch_id = "batch-" + uuid.uuid4().hex[:12]
        items = []
        with self._budget_lock, self.ledger.mutex("budget"):
            self._check_room(owner, total)  # again: others may have added jobs meanwhile
            self._check_budget(backend, owner, usd, total)
            for plan, quote in zip(planned, quotes, strict=True):
                job = self.runner.add(
                    plan.request, backend, batch_id=batch_id,
                    owner=owner, estimate_usd=quote.usd, parent_id=plan.parent_id,
                )  # fmt: skip
                items.append({"job_id": job.job_id, **plan.about, "state": job.state})
        by_image: dict[str, list[str]] = {}
        for item, plan in zip(items, planned, strict=True):
            by_image.setdefault(plan.data_uri, []).append(item["job_id"])
        for uri, job_ids in by_image.items():
            self._keep_input(uri, job_ids)
        return {"batch_id": batch_id, "items": items, "usd": usd, "price": words}

    def batch_jobs(self, batch_id: str, owner: str = "") -> list[Job]:
        """The jobs of a batch made by ``owner`` (someone else's batch id shows nothing)."""
        jobs = self.ledger.batch(batch_id) if batch_id else []
        return [j for j in jobs if j.owner == owner]

    def cancel(self, job_id: str, owner: str = "") -> bool:
        """Cancel one of ``owner``'s jobs not yet sent."""
        job = self.ledger.get(job_id)
        return job is not None and job.owner == owner and self.runner.cancel(job_id)

    def _check_room(self, owner: str, more: int) -> None:
        """Refuse, with nothing written or sent, jobs past the visitor's share, their
        address's share, or the room this app has for jobs waiting to be sent."""
        s = self.settings
        if owner:
            most = s.visitor_max_jobs
            have = self.ledger.unfinished_of(owner)
            if have + more > most:
                raise errors.LimitReached(
                    f"You have {have} jobs not yet ended here, and one person may have {most} "
                    f"at once. Wait for some to end (or cancel waiting ones), then try again."
                )
        place, most = _place_of(owner), int(s.address_limit("max_jobs"))
        if place and most > 0:
            have = self.ledger.unfinished_of(place, column="address")
            if have + more > most:
                raise errors.LimitReached(
                    f"{have} jobs from your address (everyone who reaches this app from it) "
                    f"have not yet ended here, and one address may have {most} at once. Wait "
                    f"for some to end, then try again."
                )
        if s.max_waiting > 0:
            share = s.address_waiting if place else 0
            mine = self.ledger.waiting(place) if share else 0
            if share and mine + more > share:
                raise errors.LimitReached(
                    f"{mine} videos from your address are waiting to be sent here, and one "
                    f"address may have {share} waiting at once. Nothing was sent: try again "
                    "when some have been sent."
                )
            waiting, room = self.ledger.waiting(), waiting_room(s.max_waiting, share, mine)
            if waiting + more > room:
                kept = (
                    " (the rest is kept for those with nothing waiting)"
                    if room < s.max_waiting
                    else ""
                )
                raise errors.LimitReached(
                    f"This app has {waiting} videos waiting to be sent, the most it keeps "
                    f"waiting at once{kept}. Nothing was sent: try again in a few minutes."
                )

    # --- the ledger, for the page ------------------------------------------------------------

    def job(self, job_id: str) -> Job | None:
        """The ledger's row for this job id (ours, whole), or None: no rights are checked
        (the caller holds the id, as the page's and the CLI's own jobs)."""
        return self.ledger.get(job_id)

    def recent(self, limit: int = 50) -> list[Job]:
        """The ``limit`` most recent jobs of this app, newest first."""
        return self.ledger.recent(limit)

    def paused(self, job_id: str) -> bool:
        """True when the job waits for its owner: a key refused, or not known after a restart."""
        return self.runner.paused(job_id)

    def watch(self, job_id: str, *, timeout: float | None = None) -> Iterator[Job]:
        """The job's row each time it changes, until it ends (or ``timeout`` seconds pass)."""
        return self.runner.watch(job_id, timeout=timeout)

    def digest(self, text: str) -> str:
        """A name for a secret (an owner token, an agent's value) that says nothing about it,
        under this app's secret."""
        return self.runner.digest(text)

    def continuation(self, job: Job) -> Continuation:
        """What continuing this job starts from (its last frame, its chain); ``InputError``
        in words for a job that isn't finished or whose file is gone."""
        return self.chains.continuation(job)

    def chain_parts(self, job: Job) -> list[Job]:
        """The parts of the chain ending at this job, first to last."""
        return self.chains.parts(job)

    def chain_video(self, job: Job) -> Path | None:
        """The whole chain's video ending at this job (stitched), or None."""
        return self.chains.video(job)

    def entry(self, any_id: str, owner: str = "", api_key: str | None = None) -> Job | None:
        """The ledger's row for this id (ours or the vendor's, whole), or None.

        A short id (``Job.short_id``, or the first 8 or more characters of the vendor's id)
        finds only a job that ``owner`` may already see, or that ``api_key`` made: 8
        characters are easy to guess, so a short id is never the secret a whole id is."""
        if not isinstance(any_id, str) or not any_id:
            return None
        job = self.ledger.find(any_id)
        if job is not None or not (owner or api_key):
            return job
        short = self.ledger.find_short(any_id)
        return short if short is not None and self._seen_by(short, owner, api_key) else None

    def _seen_by(self, job: Job, owner: str, api_key: str | None) -> bool:
        """Whether this caller may see the job already, without its whole id: its maker or
        a browser it was shown to (where visitors bring keys, never just an address), or
        the typed key it was made with."""
        by_address = owner.startswith(ADDRESS) and self.settings.require_user_key
        if owner and not by_address and self.ledger.may_see(job, owner):
            return True
        typed = (api_key or "").strip()
        return bool(typed) and job.key_ref == self.runner.key_ref(LIVE, typed, typed=True)

    def entries(self, ids: list[str]) -> dict[str, Job]:
        """Each of these ids the ledger knows, with its job."""
        return self.ledger.find_many(ids)

    def knows(self, any_id: str, owner: str = "") -> bool:
        """True when the ledger holds this id (it was created here, or the vendor knew it);
        a short id, for a job ``owner`` may see (``entry``)."""
        job = self.entry(any_id, owner)
        return job is not None and not self.runner.unconfirmed(job.job_id)


SUBMITTED_REST = "Keep this id: the job can be resumed with it."


class Visitor(str):
    """Who asks, as the ledger records a job's owner ("browser:<digest>", "address:<digest>"
    or ""), with where from: ``place``, the digest of the client's address
    ("address:<digest>"; "" when not known). Every limit on a visitor is counted per place
    too (``_check_room``, ``_check_budget``): fresh browsers cost nothing to make, an
    address does. The ledger records the place beside the owner (``Ledger.add``)."""

    place: str

    def __new__(cls, who: str, place: str = "") -> Visitor:
        self = super().__new__(cls, who)
        self.place = place
        return self


def waiting_room(most: int, share: int, mine: int) -> int:
    """How many jobs may wait in all when one more address's come: ``most``, but one
    address's ``share`` of it is kept for addresses with nothing waiting (``mine`` == 0),
    so a few busy addresses can't fill the room and shut everyone else out."""
    return most if mine == 0 or not 0 < share < most else most - share


class BrowserTable:
    """The browsers (owner tokens) each address has brought, in memory, for
    ``admit_browser``: one table ordered by when each was last seen, at most ``kept`` long
    (the least recently seen forgotten first, whatever its address), and each address's
    new browsers of the last hour (as many places as browsers, at most). Every step is
    O(1) besides the hour's expired entries, under one lock."""

    def __init__(self, kept: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.kept = max(int(kept), 1)
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._new: OrderedDict[str, deque[float]] = OrderedDict()  # place -> times, oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Browsers remembered."""
        return len(self._seen)

    @property
    def places(self) -> int:
        """Addresses whose new browsers of the hour are counted."""
        return len(self._new)

    def admit(self, place: str, browser: str, most: int) -> bool:
        """True for a browser seen from this place before, or a new one while the place
        has brought fewer than ``most`` in the last hour (then remembered); else False."""
        now = self._clock()
        with self._lock:
            if (place, browser) in self._seen:
                self._seen.move_to_end((place, browser))
                return True
            times = self._new.pop(place, None) or deque()
            while times and now - times[0] >= 3600:
                times.popleft()
            if len(times) >= most:
                self._new[place] = times
                return False
            times.append(now)
            self._new[place] = times
            while len(self._new) > self.kept:
                self._new.popitem(last=False)
            self._remember(place, browser)
            return True

    def remember(self, place: str, browser: str) -> None:
        """Note a browser admitted for another reason (it owns jobs): not a new one."""
        with self._lock:
            self._remember(place, browser)

    def _remember(self, place: str, browser: str) -> None:
        self._seen[(place, browser)] = None
        self._seen.move_to_end((place, browser))
        while len(self._seen) > self.kept:
            self._seen.popitem(last=False)


def _place_of(owner: str) -> str:
    """Where a visitor asks from ("" for a plain owner string: in-process callers)."""
    return str(getattr(owner, "place", "") or "")


def _no_key_here(job: Job) -> str:
    """Why a job can't be run here: the key it was made with isn't known to this process."""
    if job.backend == DEMO:
        return "This job ran in demo mode, which is off here, so it can't be resumed here."
    return (
        "This job was made with this app's own API key (AIMLAPI_KEY), which isn't set here: "
        "set it, then resume the job."
    )


def _utc_day_start(moment: float) -> float:
    """The start of ``moment``'s UTC day (budgets renew at midnight UTC)."""
    day = datetime.fromtimestamp(moment, timezone.utc).date()
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def _unpaid(job: Job) -> float | None:
    """$0 for a job that made nothing at the vendor; None (not known yet) otherwise."""
    return 0.0 if job.state in UNPAID else None


def _private_folder(path: Path) -> None:
    """The data folder (ledger, videos, kept images, secrets) is for the app's user only."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:  # not ours to change (a shared volume): its own rights stand
        log.warning("could not make %s private to this user", path)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only the app's user may read, whole or not at all."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Planned:
    """One video of a batch, checked and ready: its request with its prepared image (a data
    URI), and what the caller says of it (which image, line or take) in the batch's answer."""

    request: Request
    about: dict[str, Any]
    parent_id: str | None = None  # the finished job this one continues (its last frame)

    @property
    def data_uri(self) -> str:
        return self.request.image_url


def plan_takes(
    image: str,
    request: Request,
    takes: int,
    *,
    fit: str = "reject",
    owner: str = "",
) -> tuple[list[Planned], PreparedImage]:
    """``takes`` videos of one image (prepared once, in ``owner``'s turn) and a request,
    ready for ``queue_many``; and the prepared image (what was done to it is worth saying)."""
    prepared = prepare_image(image, fit=fit, owner=owner)  # type: ignore[arg-type]
    sent = request.with_image(prepared.data_uri)
    planned = [Planned(sent, {"take": n}) for n in range(1, takes + 1)]
    return planned, prepared


def _check_size(total: int) -> None:
    if total > MAX_BATCH:
        raise errors.InputError(
            f"That batch is {total} videos; the most at once is {MAX_BATCH}. Split it into "
            "smaller batches."
        )


def quote_many(book: PriceBook, planned: list[Planned]) -> tuple[list[Estimate], float | None, str]:
    """Each video's quote, the total (None when any price is not known in advance), and the
    words: one quote's for a batch of like videos, the total for a mixed one."""
    quotes = [book.estimate(p.request) for p in planned]
    known = [q.usd for q in quotes if q.usd is not None]
    usd = round(sum(known), 6) if len(known) == len(quotes) else None
    return quotes, usd, _batch_words(quotes, usd)


def _batch_words(quotes: list[Estimate], usd: float | None) -> str:
    if len({(q.duration, q.generate_audio) for q in quotes}) == 1:
        first = quotes[0]
        return replace(first, count=len(quotes), usd=usd).words()
    if usd is None:
        return f"{len(quotes)} videos: price not known in advance"
    return f"{len(quotes)} videos of mixed lengths: {dollars(usd)}"


def _check_image_given(image: object) -> None:
    """An image must be given (before the request's own fields are looked at)."""
    if image is None or (isinstance(image, str) and not image.strip()):
        raise errors.InputError(NO_IMAGE)


def _check_request(request: object) -> None:
    if not isinstance(request, Request):  # a program's mistake, not a person's
        raise TypeError(f"expected a Request (Request.make), got {type(request).__name__}")


def _check_takes(takes: object) -> int:
    try:
        count = int(takes)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        count = 0
    if isinstance(takes, bool) or not 1 <= count <= MAX_TAKES:
        raise errors.InputError(f"Takes must be 1 to {MAX_TAKES}, not {takes!r}.")
    return count


def _line_request(n: int, line: str, fields: Mapping[str, object]) -> Request:
    try:
        return Request.make(line, **fields)  # type: ignore[arg-type]
    except errors.InputError as exc:
        raise errors.InputError(f"Prompt line {n}: {exc.base_message}") from None


def _prepared_item(n: int, path: str, fit: str, owner: str = "") -> str:
    try:
        return prepare_image(path, fit=fit, owner=owner).data_uri  # type: ignore[arg-type]
    except errors.RatioOutOfRange as exc:  # the remedy is the caller's to word
        raise errors.RatioOutOfRange(f"Image {n}: {exc.facts}") from None
    except errors.InputError as exc:
        raise errors.InputError(f"Image {n}: {exc.base_message}") from None
