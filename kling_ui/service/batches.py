"""Batches: many videos checked whole, then queued as one step.

Owns the plan of a batch (``Planned``: each video's request with its prepared image, and
what the caller says of it: which image, line or take), its checks (at most ``MAX_BATCH``
videos, ``MAX_TAKES`` takes of one image; one bad item refuses the whole batch, named), its
price (``quote_many``: one quote's words for like videos, the total for mixed ones), and
its queueing (``Batches.queue_many``: the room and the budget checked for every video at
once, in the same step as their rows are written, then each image kept once for Remix).
A batch's jobs are then the runner's, as one video's are.

Imports ``errors``, ``history``, ``images``, ``pricing``, ``request``, ``rules``, ``runner``
and the service's rooms it uses (``access``, ``limits``, ``library``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from .. import errors
from ..history import Job, Ledger
from ..images import PreparedImage, prepare_image
from ..pricing import Estimate, dollars
from ..request import KLING, Request, reference_roles, spec_of
from ..rules import NO_IMAGE
from ..runner import Backend, Runner
from .access import Access
from .library import Library
from .limits import Limits, Prices

MAX_TAKES = 4
MAX_BATCH = 48


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


class Batches:
    """Many videos at once: ``submit`` (takes of one image), ``batch`` (images x prompt
    lines x takes), ``queue_many`` (what either planned), and a batch's jobs afterwards."""

    def __init__(
        self,
        ledger: Ledger,
        runner: Runner,
        access: Access,
        limits: Limits,
        prices: Prices,
        library: Library,
        estimate: Callable[..., Estimate] | None = None,
    ) -> None:
        """``estimate(request, backend=...)``: the price of any model's request (the
        service's); our model's price book's when not given."""
        self.ledger = ledger
        self.runner = runner
        self.access = access
        self.limits = limits
        self.prices = prices
        self.library = library
        self._estimate = estimate

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
        """``generate``'s checks, then ``takes`` videos of one image and request queued at
        once, without watching them (for programs that look in later): the batch's answer,
        each job's id in it. Raises ``KlingUIError`` with nothing written or sent."""
        check_frames(request, image)
        check_request(request)
        count = _check_takes(takes)
        backend = self.access.backend_for(api_key)
        self.limits.check_room(owner, count)
        planned, _ = plan_takes(image, request, count, fit=fit, owner=owner)  # type: ignore[arg-type]
        return self.queue_many(planned, backend, owner=owner)

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
        model: str = KLING.model,
    ) -> dict[str, Any]:
        """Check every item (each image, each prompt line with the ``fields`` the lines
        share: ours, negative prompt, duration, audio; ``model``'s own), then queue images x
        prompts x takes with the runner (prompts x takes for a model that makes video from
        text, which takes no images). One bad item refuses the whole batch, named; nothing
        is sent. A model that needs a last frame can't be batched (one last frame each)."""
        spec = spec_of(model)
        paths = [str(p) for p in (images or []) if p]
        if "last_frame" in spec.needs():
            raise errors.InputError(
                f"{spec.model} needs a last frame for each video: make them one at a time."
            )
        if "image" in spec.roles and not paths:
            raise errors.InputError("Add at least one image to the batch.")
        if "image" not in spec.roles and paths:
            raise errors.InputError(
                f"{spec.model} makes video from text only: remove the batch's images, or "
                "pick a model that starts from one."
            )
        lines = [line.strip() for line in (prompts or "").splitlines() if line.strip()]
        if not lines:
            raise errors.InputError("Write at least one prompt: one prompt per line.")
        count = _check_takes(takes)
        _check_size(max(1, len(paths)) * len(lines) * count)
        requests = [
            _line_request(i, line, fields or {}, spec.model) for i, line in enumerate(lines, 1)
        ]
        backend = self.access.backend_for(api_key)
        self.limits.check_room(owner, max(1, len(paths)) * len(lines) * count)
        uris = [_prepared_item(i, path, fit, owner) for i, path in enumerate(paths, 1)]
        planned = [
            Planned(line.with_image(uri) if uri else line,
                    {"image": n, "prompt": line.prompt, "take": take})
            for n, uri in enumerate(uris or [""], 1)
            for line in requests
            for take in range(1, count + 1)
        ]  # fmt: skip
        return self.queue_many(planned, backend, owner=owner)

    def queue_many(
        self, planned: list[Planned], backend: Backend, *, owner: str = ""
    ) -> dict[str, Any]:
        """Queue checked videos as one batch: each its prepared image and checked fields,
        each may differ in length and audio. The visitor's share and the server's budget are
        checked for all of them at once, in the same step as their rows are written."""
        total = len(planned)
        _check_size(total)
        self.limits.check_room(owner, total)
        price = (
            partial(self._estimate, backend=backend) if self._estimate
            else self.prices.book(backend).estimate
        )  # fmt: skip
        quotes, usd, words = quote_many(price, planned)
        batch_id = "batch-" + uuid.uuid4().hex[:12]
        items = []
        with self.limits.admitting(backend, owner, usd, total):
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
            self.library.keep_input(uri, job_ids)
        return {"batch_id": batch_id, "items": items, "usd": usd, "price": words}

    def batch_jobs(self, batch_id: str, owner: str = "") -> list[Job]:
        """The jobs of a batch made by ``owner`` (someone else's batch id shows nothing)."""
        jobs = self.ledger.batch(batch_id) if batch_id else []
        return [j for j in jobs if j.owner == owner]

    def cancel(self, job_id: str, owner: str = "") -> bool:
        """Cancel one of ``owner``'s jobs not yet sent."""
        job = self.ledger.get(job_id)
        return job is not None and job.owner == owner and self.runner.cancel(job_id)


def plan_takes(
    image: str | None,
    request: Request,
    takes: int,
    *,
    fit: str = "reject",
    owner: str = "",
    end_image: str | None = None,
) -> tuple[list[Planned], PreparedImage | None]:
    """``takes`` videos of one image (prepared once, in ``owner``'s turn; none for a model
    that makes video from text; ``end_image``: a last frame) and a request, ready for
    ``queue_many``; and the prepared image (what was done to it is worth saying)."""
    check_frames(request, image, end_image)
    sent, prepared, _ = with_frames(request, image, end_image, fit, owner)
    planned = [Planned(sent, {"take": n}) for n in range(1, takes + 1)]
    return planned, prepared


def quote_many(
    estimate: Callable[[Request], Estimate], planned: list[Planned]
) -> tuple[list[Estimate], float | None, str]:
    """Each video's quote (``estimate``: a price book's, or the service's for any model),
    the total (None when any price is not known in advance), and the words: one quote's for
    a batch of like videos, the total for a mixed one."""
    quotes = [estimate(p.request) for p in planned]
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


def check_frames(
    request: Request, image: object, end_image: object = None, *, continuing: bool = False
) -> None:
    """The images given are the ones the request's model takes: the start frame where it
    needs one (named before the request's own fields are looked at), none for a model that
    makes video from text, a last frame only where it takes one and where it needs one.
    ``continuing``: a video goes on from its last frame, which only a model that starts
    from an image can do."""
    spec = spec_of(request.model) if isinstance(request, Request) else KLING
    if continuing and "image" not in spec.roles:
        raise errors.InputError(
            f"{spec.model} makes video from text only, so it can't go on from a video's "
            "last frame: pick a model that starts from an image, or press Start a new "
            "video instead."
        )
    given = not (image is None or (isinstance(image, str) and not image.strip()))
    if "image" in spec.needs() and not given:
        raise errors.InputError(NO_IMAGE)
    if given and "image" not in spec.roles:
        raise errors.InputError(
            f"{spec.model} makes video from text only: remove the image, or pick a model "
            "that starts from one."
        )
    if end_image and "last_frame" not in spec.roles:
        raise errors.InputError(f"{spec.model} takes no last frame: leave end_image empty.")
    if "last_frame" in spec.needs() and not end_image:
        raise errors.InputError(
            f"{spec.model} needs a last frame too: add one (under Last frame on the page; "
            "end_image for programs)."
        )
    if isinstance(request, Request):  # the rules its schema can't say (the overlay's)
        given_roles = {"image"} if given else set()
        given_roles |= {"last_frame"} if end_image else set()
        spec.check_rules(request.options, given_roles | set(reference_roles(request.images)))


def with_frames(
    request: Request, image: str | None, end_image: str | None, fit: str, owner: str
) -> tuple[Request, Any, Any]:
    """``request`` with its frames prepared and set (in ``owner``'s turn), and each
    prepared frame (None where not given): the same shape where the model needs it. Its
    reference images, given as files (or links) in the request, are prepared the same way,
    each checked as a frame is and named by its number."""
    prepared = prepare_image(image, fit=fit, owner=owner) if image else None
    last = prepare_image(end_image, fit=fit, owner=owner) if end_image else None
    check_same_shape(request, prepared, last)
    framed = request.with_image(prepared.data_uri) if prepared else request
    framed = framed.with_image(last.data_uri, "last_frame") if last else framed
    for n, role in enumerate(reference_roles(request.images), 1):
        given = request.images[role]
        if not given.startswith("data:"):  # a file or a link, not prepared yet
            uri = _prepared_item(n, given, fit, owner, what="Reference image")
            framed = framed.with_image(uri, role)
    return framed, prepared, last


def check_same_shape(request: Request, first: Any, last: Any) -> None:
    """A model that needs its last frame in its first frame's shape (``same_aspect``) gets
    them so, as prepared (within 2%), or ``InputError`` that says both sizes."""
    spec = spec_of(request.model)
    if not (spec.same_aspect and first is not None and last is not None):
        return
    ratio, other = first.width / first.height, last.width / last.height
    if abs(ratio - other) > 0.02 * ratio:
        raise errors.InputError(
            f"{spec.model} needs the last frame in the first frame's shape: the first is "
            f"{first.width}×{first.height}, the last {last.width}×{last.height}. Crop one of "
            "them to match."
        )


def check_request(request: object) -> None:
    """The service takes a ``Request`` made where the input entered, nothing looser; one
    built by hand is checked by the same rules before anything is priced or written."""
    if not isinstance(request, Request):  # a program's mistake, not a person's
        raise TypeError(f"expected a Request (Request.make), got {type(request).__name__}")
    request.check()


def _check_size(total: int) -> None:
    if total > MAX_BATCH:
        raise errors.InputError(
            f"That batch is {total} videos; the most at once is {MAX_BATCH}. Split it into "
            "smaller batches."
        )


def _check_takes(takes: object) -> int:
    try:
        count = int(takes)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        count = 0
    if isinstance(takes, bool) or not 1 <= count <= MAX_TAKES:
        raise errors.InputError(f"Takes must be 1 to {MAX_TAKES}, not {takes!r}.")
    return count


def _line_request(n: int, line: str, fields: Mapping[str, object], model: str) -> Request:
    try:
        return Request.make(line, model=model, **fields)  # type: ignore[arg-type]
    except errors.InputError as exc:
        raise errors.InputError(f"Prompt line {n}: {exc.base_message}") from None


def _prepared_item(n: int, path: str, fit: str, owner: str = "", *, what: str = "Image") -> str:
    """One of several images prepared, a refusal named by its number ("Image 2: ...")."""
    try:
        return prepare_image(path, fit=fit, owner=owner).data_uri  # type: ignore[arg-type]
    except errors.RatioOutOfRange as exc:  # the remedy is the caller's to word
        raise errors.RatioOutOfRange(f"{what} {n}: {exc.facts}") from None
    except errors.InputError as exc:
        raise errors.InputError(f"{what} {n}: {exc.base_message}") from None
