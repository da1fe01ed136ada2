"""``GenerationService``: the one public face of the service, for the page, the CLI, MCP.

Owns what one click does: ``generate`` (check, hand one job to the runner, watch it),
``extend`` (the next part of a chain, from its last frame), ``resume``/``take_up`` (a job by
its id, adopted if made elsewhere), ``status`` and ``remix``; everything else is one of its
rooms', reached through its public methods only, so callers never touch its parts:

- ``access`` (``Access``): backends and keys, visitors, the rights to read a job;
- ``limits``/``prices`` (``Limits``, ``Prices``): the room for jobs, budgets, prices;
- ``batches`` (``Batches``): many videos checked whole and queued as one step;
- ``library`` (``Library``): kept images, addresses, posters, chains, retention;
- ``views`` (``JobViews``): a job as ``Progress`` and as a status;
- ``boards`` (``Boards``): compare boards and the files exported from videos;
- ``shares`` (``Shares``): share links and "Download all";
- ``models`` (``Models``): the video models offered (``offer``), from the vendor's catalogue
  kept in the database, or the bundled snapshot.

Time is injected: ``clock`` (wall time), ``monotonic`` and ``wait`` (the runner's waits on
that monotonic clock), handed to the runner and to every room that reads time, so the
ledger's times all come from one clock and a test moves it on by hand.

The runner owns a job from the moment its row is written. ``ledger``, ``runner`` and
``chains`` stay attributes for tests and the benchmarks, not for the page or the CLI.

Imports ``chains``, ``config``, ``errors``, ``history``, ``images``, ``jobs``, ``pricing``,
``request``, ``rules``, ``runner`` and the rooms; the simulator's ``DemoSimulator`` is
handed in by app.py. Never gradio.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .. import errors
from ..chains import Chains, Continuation
from ..config import Settings
from ..history import Job, Ledger
from ..jobs import Progress
from ..pricing import Estimate, Fields, PriceBook
from ..request import KLING, Request, reference_roles
from ..rules import check_generation_id, check_new_generation_id
from ..runner import Backend, Runner, Wait, wait_on
from ..states import Reason
from .access import DEMO, Access, Visitor, no_key_here
from .batches import Batches, Planned, check_frames, check_request, with_frames
from .boards import BoardMethods, Boards, model_name
from .library import Library, LibraryMethods, private_folder
from .limits import Limits, Prices
from .models import Models, Offer
from .prompts import PromptHelper, PromptMethods
from .shares import ShareMethods, Shares
from .views import NOT_KNOWN, JobViews

if TYPE_CHECKING:
    from ..simulator import DemoSimulator

STOPPED_BEFORE_SENT = "Stopped before it was sent: no job was made and nothing is charged."


class GenerationService(LibraryMethods, BoardMethods, ShareMethods, PromptMethods):
    """Starts, resumes and shows jobs for every user of one app process (its rooms' own
    public methods: ``LibraryMethods``, ``BoardMethods``, ``ShareMethods``,
    ``PromptMethods``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        demo: DemoSimulator | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Wait = wait_on,
        start: bool = True,
        pick_up: bool = True,
    ) -> None:
        self.settings = settings
        private_folder(settings.data_dir)
        self.ledger = ledger or Ledger(
            settings.ledger_where, pool_size=settings.runner_workers + 16
        )
        self.demo = demo
        settings.videos_dir.mkdir(parents=True, exist_ok=True)
        self.runner = Runner(
            settings, self.ledger, backend_for_ref=self._backend_for_ref, clock=clock,
            monotonic=monotonic, wait=wait,
        )  # fmt: skip
        self.chains = Chains(self.ledger, settings.data_dir)
        self.access = Access(settings, self.ledger, self.runner, demo, monotonic=monotonic)
        self.limits = Limits(settings, self.ledger, clock=clock)
        self.prices = Prices(settings, self.access, clock=clock, monotonic=monotonic)
        self.models = Models(settings, self.ledger, self.access, clock=clock)
        self.prices.other_models = self.models.estimate
        self.library = Library(
            settings, self.ledger, self.runner, self.chains, clock=clock, monotonic=monotonic
        )
        self.batches = Batches(
            self.ledger, self.runner, self.access, self.limits, self.prices, self.library,
            self.estimate,
        )  # fmt: skip
        self.boards = Boards(self.access, self.library, lambda m: model_name(self.offer, m))
        self.shares = Shares(settings, self.ledger, self.boards, clock=clock)
        self.views = JobViews(settings, self.ledger, self.runner, self.library, clock=clock)
        self.prompts = PromptHelper(
            settings, self.ledger, self.access, self.limits, clock=clock, monotonic=monotonic
        )
        self._closed = threading.Event()
        if start:
            self.runner.start(pick_up=pick_up)
            if pick_up and settings.retention_days > 0:
                sweeper = threading.Thread(
                    target=self.library.sweep_until, args=(self._closed,),
                    name="kling-retention", daemon=True,
                )  # fmt: skip
                sweeper.start()

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """New settings for the service and its rooms (the runner keeps its first ones)."""
        self._settings = settings
        for room in ("access", "limits", "prices", "library", "views", "models", "prompts"):
            if hasattr(self, room):
                getattr(self, room).settings = settings

    def close(self) -> None:
        self._closed.set()
        self.runner.stop()
        self.prompts.close()
        self.ledger.close()

    def _backend_for_ref(self, name: str, key_ref: str) -> Backend | None:
        return self.access.backend_for_ref(name, key_ref)  # the runner asks before access is

    # --- one image, and the next part of a chain -------------------------------------------

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
        backend: Backend | None = None,
        end_image: str | None = None,
    ) -> Iterator[Progress]:
        """Check everything, hand the job to the runner, then watch it to its end.

        ``request``: what to make, checked where it entered (``Request.make``); ``image``
        (a path, or an https link) is prepared here and set as its start frame. ``owner``
        names who asks ("browser:..." or "address:..."; see ``visitor``): the job is theirs,
        and counts against their share. ``parent_id``: the finished job it continues
        (its last frame is ``image``); its last update carries the whole chain's video.
        ``should_stop``: asked just before the job is handed over (the page's Stop watching,
        pressed while the checks ran); true, and nothing is made or sent. ``backend``: the
        key's, when the click resolved it already (``backend_for(api_key)``, once a click);
        resolved here otherwise. ``end_image``: the last frame, for a model that takes one
        (``image`` is left out for a model that makes video from text).

        Raises ``KlingUIError`` before anything is written or sent (bad input, no key); once
        the job is the runner's, everything, a refused create included, comes as ``Progress``.
        """
        check_frames(request, image, end_image, continuing=bool(parent_id))
        check_request(request)
        parent = self._parent(parent_id, owner, api_key)
        backend = backend or self.access.backend_for(api_key)
        if parent is not None and (parent.backend == DEMO) != (backend.name == DEMO):
            raise errors.InputError(  # a chain is simulated, or real, throughout
                "That video was simulated in demo mode, and this part would be made for real "
                "(or the other way round): a chain is one or the other. Start a new video "
                "from an image instead."
            )
        self.limits.check_room(owner, 1)
        price = self.estimate(request, backend=backend).usd
        framed, prepared, last = with_frames(request, image, end_image, fit, owner)
        with self.limits.admitting(backend, owner, price, 1):
            if should_stop is not None and should_stop():
                raise errors.InputError(STOPPED_BEFORE_SENT)
            job = self.runner.add(
                framed, backend, owner=owner, estimate_usd=price,
                parent_id=parent.job_id if parent else None,
            )  # fmt: skip
        if prepared is not None:
            self.library.keep_input(prepared.data_uri, [job.job_id], jpeg=prepared.jpeg)
        if last is not None:
            self.library.keep_input(last.data_uri, [job.job_id], jpeg=last.jpeg,
                                    role="last_frame")  # fmt: skip
        for role in reference_roles(framed.images):
            self.library.keep_input(framed.images[role], [job.job_id], role=role)
        note = f" ({prepared.adjusted})" if prepared and prepared.adjusted else ""
        del prepared, last, framed  # MBs: the runner's and the disk's now, not held while watched
        yield from self.views.follow(job.job_id, submitted_note=note)

    def extend(
        self, any_id: str, request: Request, *, api_key: str | None = None, owner: str = "",
        backend: Backend | None = None,
    ) -> Iterator[Progress]:  # fmt: skip
        """A new part for the chain ending at ``any_id``, from its last frame (``request``
        comes without an image: the frame is added); watched like ``generate``, its last
        update carrying the whole chain's video."""
        check_request(request)
        start = self.continue_from(any_id, owner, api_key)
        yield from self.generate(
            str(start.frame), request, api_key=api_key, owner=owner,
            parent_id=start.parent.job_id, backend=backend,
        )  # fmt: skip

    def continue_from(
        self, any_id: str, owner: str = "", api_key: str | None = None
    ) -> Continuation:
        """What "Continue" starts from: the last frame of a finished video this caller may
        see (``may_open``), and its chain so far; ``KlingUIError`` in words if it can't."""
        job = self.access.entry(check_generation_id(any_id), owner, api_key)
        if job is None or not self.access.may_open(job, owner, api_key):
            raise errors.NotFoundError("No video with that id is in this app's history.")
        return self.chains.continuation(job)

    def _parent(self, parent_id: str | None, owner: str, api_key: str | None) -> Job | None:
        if not parent_id:
            return None
        parent = self.access.entry(parent_id, owner, api_key)
        if parent is not None and not self.access.may_open(parent, owner, api_key):
            parent = None
        self.chains.check_parent(parent)
        return parent

    # --- by id ----------------------------------------------------------------------------

    def resume(
        self, any_id: str, api_key: str | None = None, *, owner: str = ""
    ) -> Iterator[Progress]:
        """Watch a job by its id (ours or the vendor's); an id made elsewhere is adopted.

        An id the ledger doesn't know must look like the vendor's ids, and its row goes again
        if the vendor doesn't know it either: a mistyped id leaves no trace. A job the ledger
        knows is shown only to someone with the right to see it (``may_open``)."""
        job = self.take_up(any_id, api_key, owner=owner)
        yield from self.views.follow(job.job_id)

    def take_up(self, any_id: str, api_key: str | None = None, *, owner: str = "") -> Job:
        """``resume`` without the watching: make sure the job with this id is being run (an
        id made elsewhere is adopted) and return its row. Raises as ``resume`` does."""
        raw = check_generation_id(any_id)
        job = self.access.entry(raw, owner, api_key)
        if job is None:
            check_new_generation_id(raw)
            self.limits.check_room(owner, 1)
            return self.runner.adopt(raw, self.access.backend_for(api_key), owner=owner)
        if not self.access.may_open(job, owner, api_key):
            raise errors.NotFoundError(NOT_KNOWN)
        if not job.final:
            self.runner.attach(job, self.access.key_to_bring(job, api_key))
            if not self.runner.has_key(job.key_ref):  # else it would wait unseen for ever
                raise errors.AuthenticationError(no_key_here(job))
        return job

    def status(self, any_id: str, *, owner: str = "", api_key: str | None = None) -> dict[str, Any]:
        """One snapshot of a job, for programs: never waits."""
        job = self.access.entry(check_generation_id(any_id), owner, api_key)
        if job is None or not self.access.may_open(job, owner, api_key):
            raise errors.NotFoundError("No job with that id was started or resumed here.")
        return self.views.status(job)

    # --- the ledger and the runner, read for the page and the CLI ----------------------------

    def job(self, job_id: str) -> Job | None:
        """The ledger's row for this job id (ours, whole), or None: no rights are checked
        (the caller holds the id, as the page's and the CLI's own jobs)."""
        return self.ledger.get(job_id)

    def recent(self, limit: int = 50) -> list[Job]:
        """The ``limit`` most recent jobs of this app, newest first."""
        return self.ledger.recent(limit)

    def entries(self, ids: list[str]) -> dict[str, Job]:
        """Each of these ids the ledger knows, with its job."""
        return self.ledger.find_many(ids)

    def paused(self, job_id: str) -> bool:
        """True when the job waits for its owner: a key refused, or not known after a restart."""
        return self.runner.paused(job_id)

    def paused_for(self, job_id: str) -> Reason | None:
        """Why a paused job waits, when typed (``Reason.KEY_OR_MONEY``: its key or balance
        was refused); ``None`` otherwise."""
        return self.runner.paused_for(job_id)

    def watch(self, job_id: str, *, timeout: float | None = None) -> Iterator[Job]:
        """The job's row each time it changes, until it ends (or ``timeout`` seconds pass)."""
        return self.runner.watch(job_id, timeout=timeout)

    def digest(self, text: str) -> str:
        """A name for a secret (an owner token, an agent's value) that says nothing about it,
        under this app's secret."""
        return self.runner.digest(text)

    # --- the rooms' own methods (each documented where it lives) ----------------------------

    @property
    def demo_mode(self) -> bool:
        return self.access.demo_mode

    def backend_for(self, user_key: str | None, *, recorded: str | None = None) -> Backend:
        return self.access.backend_for(user_key, recorded=recorded)

    def visitor(self, owner_token: str | None, address: str | None) -> Visitor:
        return self.access.visitor(owner_token, address)

    def user_token(self, user: str) -> str:
        return self.access.user_token(user)

    def admit_browser(self, token: str, address: str | None) -> bool:
        return self.access.admit_browser(token, address)

    def visible(self, job: Job, owner: str) -> bool:
        return self.access.visible(job, owner)

    def entry(self, any_id: str, owner: str = "", api_key: str | None = None) -> Job | None:
        return self.access.entry(any_id, owner, api_key)

    def knows(self, any_id: str, owner: str = "") -> bool:
        return self.access.knows(any_id, owner)

    @property
    def balance_fresh(self) -> float:
        return self.prices.balance_fresh

    @balance_fresh.setter
    def balance_fresh(self, seconds: float) -> None:
        self.prices.balance_fresh = seconds

    def price_book(self, backend: Backend | None = None) -> PriceBook:
        return self.prices.book(backend)

    def offer(self) -> Offer:
        """The video models offered now, and where the list came from (``models``)."""
        return self.models.offer()

    def estimate(
        self, request_or_fields: Fields, count: object = 1, *, backend: Backend | None = None
    ) -> Estimate:
        """Our model's price from its price book; another model's from its catalogue
        pricing block (``models``)."""
        if isinstance(request_or_fields, Request) and request_or_fields.model != KLING.model:
            return self.models.estimate(request_or_fields, count)
        return self.prices.book(backend).estimate(request_or_fields, count)

    def balance(self, api_key: str | None, *, backend: Backend | None = None) -> float | None:
        return self.prices.balance(api_key, backend=backend)

    def low_balance(
        self, api_key: str | None, request_or_fields: Fields, count: object = 1, *,
        backend: Backend | None = None,
    ) -> str | None:  # fmt: skip
        return self.prices.low_balance(api_key, request_or_fields, count, backend=backend)

    def submit(
        self, image: str | None, request: Request, *, takes: object = 1,
        api_key: str | None = None, fit: str = "reject", owner: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        return self.batches.submit(
            image, request, takes=takes, api_key=api_key, fit=fit, owner=owner
        )

    def batch(
        self, images: list[str] | None, prompts: str, *,
        fields: Mapping[str, object] | None = None, takes: object = 1,
        api_key: str | None = None, fit: str = "reject", owner: str = "",
        model: str = KLING.model,
    ) -> dict[str, Any]:  # fmt: skip
        return self.batches.batch(
            images,
            prompts,
            fields=fields,
            takes=takes,
            api_key=api_key,
            fit=fit,
            owner=owner,
            model=model,
        )

    def queue_many(
        self, planned: list[Planned], backend: Backend, *, owner: str = ""
    ) -> dict[str, Any]:
        return self.batches.queue_many(planned, backend, owner=owner)

    def batch_jobs(self, batch_id: str, owner: str = "") -> list[Job]:
        return self.batches.batch_jobs(batch_id, owner)

    def cancel(self, job_id: str, owner: str = "") -> bool:
        return self.batches.cancel(job_id, owner)

    def progress(self, job: Job) -> Progress:
        return self.views.progress(job)
