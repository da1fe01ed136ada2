"""What a generation costs: the price before it is sent, the balance, the charge after.

Owns the money only: the reading of a pricing block into rates (``parse_pricing``, also the
shipped table's), the ``PriceBook`` that quotes a request (``estimate``, given the
``Request`` or a mapping of the model's fields, as a price view has no prompt) and keeps the
catalogue's answer, and the words of an amount (``dollars``, ``Estimate.words``).

Where a price comes from:

1. the vendor's catalogue (``client.read_catalogue``: ``GET /v1/models?id=<model>&include=
   pricing``, no key). It is asked at most once a day (``refresh_every``), and then with the
   last answer's ``ETag``, so an unchanged catalogue answers ``304`` with no body. The last
   good answer is kept in ``data_dir/price-catalogue.json`` and outlives a restart; after a
   failed ask the next waits ``retry_every``, so a page never hangs on a catalogue that is
   down;
2. when the catalogue can't be reached, or quotes no usable price for the request, the table
   shipped beside this module (``price_table.json``), whose date every estimate from it names.

A ``variable`` price is an answer too: the price is not known in advance.

Speaks no HTTP: the catalogue and the balance (``client.read_balance``) are asked through
the client, on a session with short timeouts and no retries (``client.quiet_session``: a
price or a balance not known now is known later); what a response cost is read by
``client.parsers.reported_charge``, re-exported here. Imports ``client``, ``config``,
``errors``, ``files`` and ``request``; never gradio.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from . import errors
from .client import HTTPSession, quiet_session, read_balance, read_catalogue
from .client.parsers import Charge as Charge  # the charge after: re-exported
from .client.parsers import number
from .client.parsers import reported_charge as reported_charge
from .config import MODEL, Settings
from .files import write_atomic
from .request import KLING, SPECS, Request

log = logging.getLogger(__name__)

TABLE_PATH = Path(__file__).with_name("price_table.json")
CACHE_NAME = "price-catalogue.json"
REFRESH_EVERY = 86400.0  # seconds: the catalogue is asked at most once a day
RETRY_EVERY = 900.0  # seconds after a failed ask before the next (the table or cache meanwhile)
CATALOGUE_TIMEOUT = (3.0, 5.0)  # connect, read: a price shown late is worth little
BALANCE_TIMEOUT = (2.0, 3.0)  # the balance is a hint beside the price, never a wait
# Units a rate may be quoted in: per second of video, or per video whatever its length.
SECOND_UNITS = frozenset({"second", "seconds", "sec", "s"})
VIDEO_UNITS = frozenset({"video", "videos", "generation", "generations", "request", "requests"})

Source = Literal["catalogue", "table"]


# --- the vendor's pricing block ------------------------------------------------------------


def _field_value(value: Any) -> str:
    """A request field's value as a variant's ``when`` is compared: ``true`` and ``"true"``,
    ``10``, ``10.0``, ``"10"`` and ``"10s"`` are each one value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip().lower()
    seconds = re.fullmatch(r"(\d+)\s*(?:s|sec|secs|seconds?)", text)
    return seconds.group(1) if seconds else text


def seconds(value: Any) -> int:
    """A request's duration as whole seconds (5, "5", "5s"); 0 when it has none (a model's
    field left unset: the vendor's own default, not known here)."""
    try:
        return int(_field_value(value)) if value is not None else 0
    except ValueError:
        return 0


@dataclass(frozen=True)
class Rate:
    """One quoted rate: ``price`` USD for ``per`` units, a unit being a second of video or a
    whole video; ``when`` the request fields it applies to (a ``variants`` rate)."""

    price: float
    per: float
    unit: Literal["second", "video"]
    when: tuple[tuple[str, str], ...] = ()

    def usd(self, duration: int) -> float:
        each = self.price / self.per
        return each * duration if self.unit == "second" else each

    def applies_to(self, fields: Mapping[str, str]) -> bool:
        return all(fields.get(name) == value for name, value in self.when)


@dataclass(frozen=True)
class PriceSheet:
    """A model's price: ``fixed`` (its rates add up), ``variants`` (the rate whose ``when``
    matches the request) or ``variable`` (no quote before the request)."""

    kind: Literal["fixed", "variants", "variable"]
    rates: tuple[Rate, ...] = ()

    def _rates_for(self, fields: Mapping[str, str]) -> tuple[Rate, ...]:
        if self.kind == "fixed":
            return self.rates
        matching = [r for r in self.rates if r.applies_to(fields)]
        if not matching:
            return ()
        # The most specific variant; between equals, the dearer: never quote too little.
        duration = seconds(fields.get("duration"))
        return (max(matching, key=lambda r: (len(r.when), r.usd(duration))),)

    def covers(self, fields: Fields) -> bool:
        """Whether the sheet answers for this request (a ``variable`` sheet does: "not known").
        A price of $0 is no answer: a video is never free, and a budget that took it at its
        word would let everything through (the table answers instead)."""
        if self.kind == "variable":
            return True
        each = self.usd_each(fields)
        return each is not None and each > 0

    def usd_each(self, fields: Fields) -> float | None:
        """What one such video costs; None when the price is not known in advance."""
        named = _named(fields)
        rates = self._rates_for(named)
        if self.kind == "variable" or not rates:
            return None
        duration = seconds(named.get("duration"))
        return sum(r.usd(duration) for r in rates)


# A request's fields: the request itself, or a mapping of the model's fields (its ``options``,
# or a price view's own {"duration": 5, "generate_audio": True}).
Fields = Request | Mapping[str, Any]


def _named(fields: Fields) -> dict[str, str]:
    """The request's own fields, as variants name them."""
    options = fields.options if isinstance(fields, Request) else fields
    return {str(name): _field_value(value) for name, value in options.items()}


def _rate(raw: Any, when: Mapping[str, Any]) -> Rate | None:
    if not isinstance(raw, dict):
        return None
    price, per = number(raw.get("price")), number(raw.get("per"))
    unit_name = raw.get("unit", raw.get("name"))
    unit_name = unit_name.strip().lower() if isinstance(unit_name, str) else ""
    unit: Literal["second", "video"] | None = (
        "second" if unit_name in SECOND_UNITS else "video" if unit_name in VIDEO_UNITS else None
    )
    if price is None or price < 0 or per is None or per <= 0 or unit is None:
        return None
    conditions = tuple(sorted((str(k), _field_value(v)) for k, v in when.items()))
    return Rate(price, per, unit, conditions)


def parse_pricing(block: Any) -> PriceSheet | None:
    """The catalogue's ``pricing`` block (complete-model-list.md, "Reading prices") as a
    ``PriceSheet``; None when it gives no usable price. ``kind`` is read first; ``price``
    only ever with ``per``. A price in another currency, a ``fixed`` price with a unit we
    can't count (tokens, megapixels), or ``variants`` none of which can be read, are no
    usable price."""
    if not isinstance(block, dict):
        return None
    currency = block.get("currency", "USD")
    if not isinstance(currency, str) or currency.strip().upper() != "USD":
        return None
    kind = block.get("kind")
    if kind == "variable":
        return PriceSheet("variable")
    if kind == "fixed":
        units = block.get("units")
        rates = [_rate(u, {}) for u in units] if isinstance(units, list) else []
        if not rates or any(r is None for r in rates):
            return None  # a part of the price we can't work out: no quote at all
        return PriceSheet("fixed", tuple(r for r in rates if r is not None))
    if kind == "variants":
        variants = block.get("variants")
        rates = []
        for raw in variants if isinstance(variants, list) else []:
            when = raw.get("when", {}) if isinstance(raw, dict) else None
            rate = _rate(raw, when) if isinstance(when, dict) else None
            if rate is not None:
                rates.append(rate)
        return PriceSheet("variants", tuple(rates)) if rates else None
    return None


# --- estimates -----------------------------------------------------------------------------


def dollars(usd: float) -> str:
    """An amount as the page writes it: $1.40, $16.80, $0.00 (and $0.0012 for a sliver, and
    "under $0.0001" for less: a prompt suggestion's price)."""
    if 0 < usd < 0.0001:
        return "under $0.0001"
    return f"${usd:,.2f}" if usd == 0 or usd >= 0.01 else f"${usd:.4f}"


@dataclass(frozen=True)
class Estimate:
    """What ``count`` videos of ``duration`` seconds, with or without audio, will cost."""

    duration: int
    generate_audio: bool | None  # None: the model has no audio switch
    count: int
    usd: float | None  # the total; None when the price is not known in advance
    usd_each: float | None
    usd_per_second: float | None
    source: Source  # the vendor's catalogue, or the table shipped with the app
    as_of: str  # the date (UTC) of the price: when the catalogue last said it, or the table's
    kind: str  # the vendor's: fixed, variants or variable
    stale: bool = False  # a catalogue price the catalogue has not confirmed lately

    def words(self) -> str:
        """The page's words: "10 s with audio: $1.40; batch of 12: $16.80"."""
        what = f"{self.duration} s" if self.duration else "The model's default length"
        if self.generate_audio is not None:
            what += f" {'with' if self.generate_audio else 'without'} audio"
        if self.usd is None or self.usd_each is None:
            text = f"{what}: price not known in advance"
            if self.count > 1:
                text += f" (a batch of {self.count})"
        else:
            text = f"{what}: {dollars(self.usd_each)}"
            if self.count > 1:
                text += f"; batch of {self.count}: {dollars(self.usd)}"
        if self.source == "table":
            text += f" (estimate, from the table of {self.as_of})"
        elif self.stale:
            text += f" (the catalogue's price of {self.as_of})"
        return text

    def as_dict(self) -> dict[str, Any]:
        """The ``/estimate`` API's answer."""
        return {
            "usd": self.usd,
            "usd_each": self.usd_each,
            "usd_per_second": self.usd_per_second,
            "source": self.source,
            "as_of": self.as_of,
            "kind": self.kind,
            "duration": self.duration,
            "generate_audio": self.generate_audio,
            "count": self.count,
            "words": self.words(),
        }


def _check_count(count: object) -> int:
    if isinstance(count, float) and count.is_integer():
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise errors.InputError(
            f"The number of videos must be a whole number, 1 or more, not {count!r}."
        )
    return count


def utc_date(moment: float) -> str:
    """A moment's date in UTC, as prices and lists name their day: 2026-12-07."""
    return datetime.fromtimestamp(moment, timezone.utc).date().isoformat()


@dataclass(frozen=True)
class PriceTable:
    """The price table shipped with the app: the fallback, with its date and source."""

    sheet: PriceSheet
    as_of: str
    source: str

    @classmethod
    def load(cls, path: Path = TABLE_PATH) -> PriceTable:
        """Read the table; ValueError if it isn't one (a fault of the release, not of a user)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        sheet = parse_pricing(data.get("pricing"))
        as_of = data.get("as_of")
        if (
            sheet is None
            or not isinstance(as_of, str)
            or not re.fullmatch(r"\d{4}-\d\d-\d\d", as_of)
        ):
            raise ValueError(f"{path}: not a price table (a pricing block and an as_of date)")
        return cls(sheet, as_of, str(data.get("source", "")))


@dataclass(frozen=True)
class _Answer:
    """The catalogue's last good answer: the raw block (kept on disk as it came), its
    validator, and when the catalogue last gave or confirmed it."""

    pricing: dict[str, Any]
    sheet: PriceSheet
    etag: str | None
    checked_at: float


class PriceBook:
    """Quotes requests from the catalogue (or the shipped table) and reads balances.

    One per process: thread-safe, and only one thread asks the catalogue at a time. Until the
    first ask has ended the others wait for it; after that they quote from what is known
    meanwhile. ``clock`` is wall-clock seconds (the cache file outlives the process);
    ``session`` carries no credentials."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: HTTPSession | None = None,
        clock: Callable[[], float] = time.time,
        cache_path: Path | None = None,
        table: PriceTable | None = None,
        refresh_every: float = REFRESH_EVERY,
        retry_every: float = RETRY_EVERY,
        catalogue_timeout: tuple[float, float] = CATALOGUE_TIMEOUT,
        balance_timeout: tuple[float, float] = BALANCE_TIMEOUT,
        model: str = MODEL,
        offline: bool = False,
    ) -> None:
        self._base = settings.base_url.rstrip("/")
        self._offline = offline  # quote from the cache or the table; never ask (a dry run)
        self._model = model
        self._session = session or quiet_session()
        self._clock = clock
        self._cache_path = cache_path or Path(settings.data_dir) / CACHE_NAME
        self.table = table or PriceTable.load()
        self._refresh_every = refresh_every
        self._retry_every = retry_every
        self._catalogue_timeout = catalogue_timeout
        self._balance_timeout = balance_timeout
        self._lock = threading.Lock()  # guards the fields below
        self._asking = threading.Lock()  # held by the one thread asking the catalogue
        self._loaded = False
        self._asked = False
        self._answer: _Answer | None = None
        self._next_ask = 0.0

    # --- the price ---------------------------------------------------------------------

    def estimate(self, fields: Fields, count: object = 1) -> Estimate:
        """The price of ``count`` videos like this request (or like these fields of the
        model: a price view has no prompt): from the catalogue when it quotes them, else from
        the shipped table. InputError for a field or count the page could not send."""
        options = self._checked(fields)
        count = _check_count(count)
        answer = self._current()
        if answer is not None and answer.sheet.covers(options):
            stale = self._clock() - answer.checked_at > 2 * self._refresh_every
            checked = utc_date(answer.checked_at)
            return quote(answer.sheet, options, count, "catalogue", checked, stale)
        return quote(self.table.sheet, options, count, "table", self.table.as_of)

    def _checked(self, fields: Fields) -> Mapping[str, Any]:
        """A request's fields (checked again: one may be built by hand), or a mapping's, each
        checked by the model's own rule and the rest its defaults."""
        if isinstance(fields, Request):
            return fields.check().options
        if not isinstance(fields, Mapping):
            raise errors.InputError(f"Not a request's fields: {fields!r}.")
        spec = SPECS.get(self._model, KLING)
        unknown = sorted(set(fields) - {f.name for f in spec.fields})
        if unknown:
            raise errors.InputError(f"{spec.model} has no setting named {unknown[0]!r}.")
        return {f.name: f.check(fields.get(f.name, f.default)) for f in spec.fields}

    def _current(self) -> _Answer | None:
        """The catalogue's last good answer, asking again first when a day has passed."""
        with self._lock:
            if not self._loaded:
                self._loaded = True
                self._answer = self._read_cache()
                if self._answer is not None:
                    since = min(self._answer.checked_at, self._clock())
                    self._next_ask = since + self._refresh_every
            due = not self._offline and self._clock() >= self._next_ask
            # Until the first answer, everyone waits for it (the table would be a worse
            # guess); after that, no one waits for another thread's ask.
            wait = self._answer is None and not self._asked
        if due and self._asking.acquire(blocking=wait):
            try:
                if self._clock() >= self._next_ask:  # not asked meanwhile by another thread
                    self._ask()
            finally:
                self._asked = True
                self._asking.release()
        return self._answer

    def _ask(self) -> None:
        """One ask of the catalogue (conditional when there is an answer to keep)."""
        answer = self._answer
        try:
            got = read_catalogue(
                self._session,
                self._base,
                self._model,
                etag=answer.etag if answer is not None else None,
                timeout=self._catalogue_timeout,
            )
        except errors.KlingUIError as exc:
            return self._failed(exc.base_message)
        now = self._clock()
        if got.unchanged:
            if answer is None:  # a 304 to an unconditional ask: no answer at all
                return self._failed("HTTP 304")
            self._keep(_Answer(answer.pricing, answer.sheet, answer.etag, now), now)
            return None
        sheet = parse_pricing(got.pricing)
        if sheet is None or not isinstance(got.pricing, dict):
            # It answered, with no price we can use: keep any earlier good answer, ask again
            # tomorrow, and quote from the table meanwhile if there is none.
            log.warning("price catalogue: no usable price for %s; keeping the last", self._model)
            with self._lock:
                self._next_ask = now + self._refresh_every
            return None
        self._keep(_Answer(got.pricing, sheet, got.etag, now), now)
        return None

    def _failed(self, why: str) -> None:
        log.warning("price catalogue: %s; using the last good price or the table", why)
        with self._lock:
            self._next_ask = self._clock() + self._retry_every

    def _keep(self, answer: _Answer, now: float) -> None:
        with self._lock:
            self._answer = answer
            self._next_ask = now + self._refresh_every
        self._write_cache(answer)

    def _read_cache(self) -> _Answer | None:
        """The last good answer kept on disk, if it is one, for this API and model."""
        try:
            data = json.loads(self._cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("base_url") != self._base:
            return None
        sheet = parse_pricing(data.get("pricing"))
        checked_at = number(data.get("checked_at"))
        etag = data.get("etag")
        if data.get("model") != self._model or sheet is None or checked_at is None:
            return None
        return _Answer(data["pricing"], sheet, etag if isinstance(etag, str) else None, checked_at)

    def _write_cache(self, answer: _Answer) -> None:
        data = {
            "base_url": self._base,
            "model": self._model,
            "etag": answer.etag,
            "checked_at": answer.checked_at,
            "checked": utc_date(answer.checked_at),
            "pricing": answer.pricing,
        }
        try:
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self._cache_path, json.dumps(data, indent=1))
        except OSError as exc:  # the price is known all the same, for this process
            log.warning("price catalogue: could not keep the answer (%s)", exc)

    # --- the balance -------------------------------------------------------------------

    def balance(self, api_key: str | None) -> float | None:
        """The account's balance in USD (``GET /v2/billing``), or None when there is no key
        or it can't be read now (down, slow, refused, unreadable): never raises."""
        if not api_key:
            return None
        try:
            return read_balance(self._session, self._base, api_key, timeout=self._balance_timeout)
        except errors.KlingUIError as exc:
            log.info("balance: %s", exc.base_message)
            return None


def offline(book: PriceBook) -> Callable[[Request], Estimate]:
    """A price with nothing asked: our model's from ``book`` (made ``offline``), another
    model's not known (its price is in the catalogue, which is not asked)."""

    def estimate(request: Request) -> Estimate:
        if request.model == MODEL:
            return book.estimate(request)
        return quote(PriceSheet("variable"), request.check().options, 1, "catalogue", "")

    return estimate


def quote(
    sheet: PriceSheet,
    options: Mapping[str, Any],
    count: object,
    source: Source,
    as_of: str,
    stale: bool = False,
) -> Estimate:
    """``count`` videos with these fields (a request's ``options``) by ``sheet``."""
    count = _check_count(count)
    each = sheet.usd_each(options)
    duration = seconds(options.get("duration"))
    return Estimate(
        duration=duration,
        generate_audio=None
        if options.get("generate_audio") is None
        else bool(options["generate_audio"]),
        count=count,
        usd=None if each is None else round(each * count, 6),
        usd_each=None if each is None else round(each, 6),
        usd_per_second=None if each is None or not duration else round(each / duration, 6),
        source=source,
        as_of=as_of,
        kind=sheet.kind,
        stale=stale,
    )
