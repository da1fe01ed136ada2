"""The video models this app offers now, and where the list came from (``Models.offer``).

With a key: the vendor's catalogue (``client.read_video_models``: the video models and their
pricing, asked with the last answer's ETag) and each model's request schema (its
``info.docsJson``, ``client.read_model_document``), merged by ``catalogue.live.merge`` (a
schema that can't be read keeps the bundled reading of that model). Both answers are kept in
the database (``ledger.kept``), so every replica and a restart start from the last one, and
the catalogue is asked again only after ``catalogue_refresh`` seconds: a model the vendor adds
tomorrow is offered then, without a release.

The bundled snapshot (``catalogue.snapshot``) serves demo mode and the times the catalogue
can't be reached and nothing was kept, and ``Offer.note`` says so in words for the page.
Each model offered is registered for ``Request.make`` (``catalogue.specs``); ours keeps its
own spec. Never blocks a job: the catalogue's session has short timeouts and no retries,
and after a failed ask the next waits ``RETRY_EVERY``.

``Offer.listing`` and ``Offer.schema`` are the models and one model's settings as programs
get them (``/models``, ``/model_schema``, the CLI's ``models``): the images each takes and
its price with its defaults (its catalogue pricing block, ``pricing.parse_pricing``).

Imports ``catalogue``, ``client``, ``config``, ``errors``, ``ledger``, ``pricing`` and
``request``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .. import errors
from ..catalogue import ModelEntry, snapshot, snapshot_date
from ..catalogue.live import merge
from ..catalogue.specs import spec
from ..client import ListedModel, quiet_session, read_model_document, read_video_models
from ..config import Settings
from ..ledger import Ledger
from ..pricing import Estimate, PriceSheet, dollars, parse_pricing, quote, utc_date
from ..request import ModelSpec, Request, register

log = logging.getLogger(__name__)

LISTING = "video-models"  # the kept listing's name; a schema's is SCHEMA + its link
SCHEMA = "model-schema "
TIMEOUT = (3.0, 5.0)  # connect, read: the list is never worth a long wait
RETRY_EVERY = 300.0  # seconds after a failed ask before the next
SNAPSHOT_NOTE = (
    "The vendor's list of models could not be read, so these are the models bundled with "
    "the app (as of {date}); the vendor may offer more."
)
DEMO_NOTE = "Demo mode: the models bundled with the app (as of {date}), made by the simulator."
KEPT_NOTE = "The vendor's list of models could not be read just now: this is the list of {date}."


@dataclass(frozen=True)
class Offer:
    """The models offered, in order (Kling v2.6 Pro image to video first); ``source``:
    "catalogue" (the vendor's, now or kept) or "snapshot" (bundled); ``note``: words for
    the page when the list is not the vendor's of now ("" when it is)."""

    entries: tuple[ModelEntry, ...]
    source: str
    note: str = ""
    pricing: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    left_out: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    specs: tuple[ModelSpec, ...] = ()  # each entry as a request's spec

    def register(self) -> Offer:
        """Each model offered can be asked for (``Request.make``), as this offer reads it."""
        for model_spec in self.specs:
            register(model_spec, replace=True)
        return self

    def entry(self, model: str) -> ModelEntry | None:
        return next((e for e in self.entries if e.id == model), None)

    def listing(self) -> dict[str, Any]:
        """The models as ``/models`` and the CLI's ``models --json`` give them."""
        return {
            "source": self.source,
            "note": self.note,
            "models": [
                {"id": e.id, "name": e.name, "kind": e.kind, "inputs": inputs(e),
                 "price": price(e, self.pricing.get(e.id))}
                for e in self.entries
            ],
        }  # fmt: skip

    def schema(self, model: str) -> dict[str, Any]:
        """One model's settings as ``/model_schema`` gives them; ``InputError`` for an id
        not offered."""
        entry = self.entry(str(model or "").strip())
        if entry is None:
            raise errors.InputError(f"This app offers no model {model!r}; /models lists them.")
        skip = {"prompt", *entry.frames.values(), *entry.references, *entry.other_media,
                *entry.hidden}  # fmt: skip
        fields = {name: prop for name, prop in entry.fields.items() if name not in skip}
        return {
            "id": entry.id,
            "name": entry.name,
            "kind": entry.kind,
            "inputs": inputs(entry),
            "schema": {"type": "object", "properties": fields},
            "required": [name for name in entry.required if name in fields or name == "prompt"],
            "defaults": {k: v for k, v in entry.defaults().items() if k in fields},
            "prompt_rewriting": list(entry.prompt_rewriting),
            "source": self.source,
        }


# The image inputs a model takes, by the entry's frame names, as /generate names them.
INPUTS = {"first": "first_frame", "last": "last_frame"}


def inputs(entry: ModelEntry) -> list[str]:
    """The images ``entry`` takes: first_frame, last_frame."""
    return [INPUTS[frame] for frame in ("first", "last") if frame in entry.frames]


def price(entry: ModelEntry, block: Any) -> dict[str, Any] | None:
    """What one video of ``entry``'s defaults costs by its pricing ``block`` (None when the
    catalogue gave none, as for the snapshot's models): usd (null when not known in
    advance) and words."""
    sheet = parse_pricing(block)
    if sheet is None:
        return None
    usd = sheet.usd_each(entry.defaults()) if sheet.covers(entry.defaults()) else None
    if usd is None:
        return {"usd": None, "words": "not known in advance"}
    return {"usd": round(usd, 4), "words": f"{dollars(usd)} a video with its defaults"}


def snapshot_offer(note: str) -> Offer:
    """The bundled models, with ``note`` ({date}: the snapshot's)."""
    entries = snapshot()
    specs = tuple(spec(entry) for entry in entries)
    return Offer(entries, "snapshot", note.format(date=snapshot_date()), specs=specs).register()


def _listed(body: str) -> list[ListedModel]:
    return [
        ListedModel(
            id=item["id"],
            name=item.get("name") or item["id"],
            aliases=tuple(item.get("aliases") or ()),
            docs_json=item.get("docs_json"),
            pricing=item.get("pricing"),
        )  # fmt: skip
        for item in json.loads(body)
    ]


def _listing_body(models: list[ListedModel]) -> str:
    return json.dumps(
        [{"id": m.id, "name": m.name, "aliases": list(m.aliases), "docs_json": m.docs_json,
          "pricing": m.pricing} for m in models],
        ensure_ascii=False,
    )  # fmt: skip


class Models:
    """The models offered: asked of the vendor at most every ``catalogue_refresh`` seconds
    (the answer kept in the database), the snapshot in demo mode or when nothing is known."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        access: Any = None,
        *,
        clock: Callable[[], float] = time.time,
        session: Any = None,
    ) -> None:
        """``access``: the service's (in demo mode the snapshot is offered); None: never demo."""
        self.settings = settings
        self.ledger = ledger
        self._access = access
        self._clock = clock
        self._session = session or quiet_session()
        self._lock = threading.Lock()  # one ask at a time; the others get the last offer
        self._offer: Offer | None = None
        self._demo: Offer | None = None
        self._next_ask = 0.0
        self._asked_at = 0.0

    def offer(self) -> Offer:
        """The models offered now (asked of the vendor when due)."""
        if self._access is not None and self._access.demo_mode:
            if self._demo is None:
                self._demo = snapshot_offer(DEMO_NOTE)
            return self._demo.register()
        current = self._offer
        if current is not None and not self._due():
            return current.register()
        if not self._lock.acquire(blocking=current is None):
            return current.register()  # another thread is asking: the last offer meanwhile
        try:
            if self._offer is None or self._due():
                self._offer = self._ask()
                self._asked_at = self._clock()
            return self._offer.register()
        finally:
            self._lock.release()

    def _due(self) -> bool:
        now = self._clock()
        return now >= self._next_ask or now - self._asked_at >= self.settings.catalogue_refresh

    def estimate(self, request: Request, count: object = 1) -> Estimate:
        """What ``count`` videos like ``request`` (a model other than ours) cost, by the
        model's catalogue pricing block; not known in advance (usd None) when the catalogue
        gave none (the snapshot's models: a budget then refuses it, a typed key may go on)."""
        offer = self.offer()
        options = request.check().options
        sheet = parse_pricing(offer.pricing.get(request.model))
        if sheet is None or not sheet.covers(options):  # $0 is no answer: never free
            sheet = PriceSheet("variable")
        return quote(sheet, options, count, "catalogue", utc_date(self._clock()))

    def _ask(self) -> Offer:
        now, every = self._clock(), self.settings.catalogue_refresh
        kept = self.ledger.kept(LISTING)
        note = ""
        if kept is not None and now - kept.fetched_at < every:  # asked lately (any replica)
            listed, self._next_ask = _listed(kept.body), kept.fetched_at + every
        else:
            try:
                answer = read_video_models(
                    self._session, self.settings.base_url,
                    etag=kept.etag if kept else None, timeout=TIMEOUT,
                )  # fmt: skip
            except errors.KlingUIError as exc:
                log.info("The video models' catalogue was not read: %s", exc)
                self._next_ask = now + RETRY_EVERY
                if kept is None:
                    return snapshot_offer(SNAPSHOT_NOTE)
                listed, note = _listed(kept.body), KEPT_NOTE.format(date=utc_date(kept.fetched_at))
            else:
                self._next_ask = now + every
                if answer.unchanged and kept is not None:
                    self.ledger.still(LISTING, now)
                    listed = _listed(kept.body)
                else:
                    listed = answer.models
                    self.ledger.keep(LISTING, _listing_body(listed), answer.etag, now)
        merged = merge(listed, self._document)
        pricing = {m.id: m.pricing for m in listed if m.pricing is not None}
        return Offer(
            tuple(merged.entries), "catalogue", note, MappingProxyType(pricing),
            MappingProxyType(dict(merged.left_out)), tuple(spec(e) for e in merged.entries),
        )  # fmt: skip

    def _document(self, link: str) -> dict[str, Any]:
        """A model's schema: kept, if read within ``catalogue_refresh``; else read now (and
        kept); the kept one, however old, when it can't be read now."""
        name, now = SCHEMA + link, self._clock()
        kept = self.ledger.kept(name)
        if kept is not None and now - kept.fetched_at < self.settings.catalogue_refresh:
            return json.loads(kept.body)
        try:
            document = read_model_document(
                self._session, self.settings.base_url, link, timeout=TIMEOUT
            )
        except errors.KlingUIError:
            if kept is None:
                raise
            return json.loads(kept.body)
        self.ledger.keep(name, json.dumps(document, ensure_ascii=False), None, now)
        return document
