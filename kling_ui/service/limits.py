"""Limits and budgets: how many jobs a visitor, an address and the app may hold, what the
server's own key may spend, and what a request costs before it is sent.

Owns the room for jobs (``Limits.check_room``: a visitor's share of unfinished jobs, its
address's, and the app's room for jobs waiting to be sent, part of it kept for addresses
with nothing waiting), the server key's budgets (``Limits.check_budget``: a day's dollars
for the app, a visitor and an address, and videos an hour; a typed key is its owner's money
and the demo costs nothing), and the one step in which the checks and the job's rows are
written (``Limits.admitting``, under a lock and the ledger's "budget" mutex, so two
processes can't both pass the last dollar). ``Prices`` keeps each API's price book and its
account balances (read at most every ``balance_fresh`` seconds).

Both take their clocks (``clock``: the wall clock budgets count days and hours on;
``monotonic``: how fresh a balance is), so tests move time instead of waiting.

Imports ``config``, ``errors``, ``history``, ``pricing`` (its ``Fields``: a request, or a
mapping of the model's fields), ``runner`` (a backend) and ``service.access`` (who asks,
which backend).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from .. import errors
from ..config import ADDRESS_SHARE, MODEL, Settings
from ..history import Ledger
from ..pricing import Estimate, Fields, PriceBook, dollars
from ..request import Request
from ..runner import Backend
from .access import DEMO, Access, place_of

OWN_KEY = " Enter your own AIML API key to generate now."


class Limits:
    """The room for jobs and the server key's budgets, checked before rows are written."""

    def __init__(
        self, settings: Settings, ledger: Ledger, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self._clock = clock
        self._lock = threading.Lock()  # a budget's check and the job's row: one step

    @contextlib.contextmanager
    def admitting(
        self, backend: Backend, owner: str, usd: float | None, count: int
    ) -> Iterator[None]:
        """The room and the budget checked again, and held while the caller writes the
        ``count`` jobs' rows: others may have added jobs since the first check."""
        with self._lock, self.ledger.mutex("budget"):
            self.check_room(owner, count)
            self.check_budget(backend, owner, usd, count)
            yield

    @contextlib.contextmanager
    def admitting_help(self, backend: Backend, owner: str, usd: float | None) -> Iterator[None]:
        """The prompt helper's call, checked as spending and held while its row is written:
        refused where a video would be (the day's budgets with its own price, the videos of
        the hour), and past the helps an hour of the visitor and of its address (a fresh
        browser is no fresh allowance), on the server's own key."""
        with self._lock, self.ledger.mutex("budget"):
            self.check_budget(backend, owner, usd, 1)  # the server's key only, as a video's
            most = self.settings.visitor_helps_per_hour
            if backend.key_ref == "server" and most > 0:
                since, place = self._clock() - 3600, place_of(owner)
                for who, column, share, whose in ((owner, "owner", 1, "you have"),
                                                  (place, "address", ADDRESS_SHARE,
                                                   "everyone at your address has")):  # fmt: skip
                    asked = self.ledger.helps_since(since, key_ref="server", owner=who,
                                                    column=column) if who else 0  # fmt: skip
                    if asked >= most * share:
                        raise errors.LimitReached(
                            f"Each {column if column == 'address' else 'visitor'} may ask for "
                            f"{most * share} prompt suggestions an hour on this app's key; "
                            f"{whose} asked for {asked}.{OWN_KEY}"
                        )
            yield

    def check_room(self, owner: str, more: int) -> None:
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
        place, most = place_of(owner), int(s.address_limit("max_jobs"))
        if place and most > 0:
            have = self.ledger.unfinished_of(place, column="address")
            if have + more > most:
                raise errors.LimitReached(
                    f"{have} jobs from your address (everyone who reaches this app from it) "
                    f"have not yet ended here, and one address may have {most} at once. Wait "
                    f"for some to end, then try again."
                )
        if s.max_waiting > 0:
            self._check_waiting(place, more)

    def _check_waiting(self, place: str, more: int) -> None:
        s = self.settings
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
                " (the rest is kept for those with nothing waiting)" if room < s.max_waiting else ""
            )
            raise errors.LimitReached(
                f"This app has {waiting} videos waiting to be sent, the most it keeps "
                f"waiting at once{kept}. Nothing was sent: try again in a few minutes."
            )

    def check_budget(self, backend: Backend, owner: str, usd: float | None, count: int) -> None:
        """Refuse, in words and with nothing sent, what would pass a budget of the server's
        own key (a typed key is its owner's money; the demo costs nothing)."""
        if backend.key_ref != "server" or not self.settings.budgets_on:
            return
        if usd is None:
            raise errors.LimitReached(
                "This video's price is not known in advance, so this server's budget can't "
                "cover it. Enter your own AIML API key to generate it."
            )
        now = self._clock()
        self._check_day(utc_day_start(now), owner, usd)
        self._check_hour(now - 3600, owner, count)

    def _check_day(self, day: float, owner: str, usd: float) -> None:
        """The dollars of the UTC day: the app's, the visitor's, the address's."""
        s = self.settings
        if s.daily_budget_usd > 0:
            spent = self.ledger.spent_since(day, key_ref="server")
            if spent + usd > s.daily_budget_usd + 1e-9:
                raise errors.LimitReached(
                    f"This app's daily budget for its own API key is {dollars(s.daily_budget_usd)}"
                    f" (UTC day); {dollars(spent)} of it is spent or on its way, and this would add"
                    f" {dollars(usd)}. It renews at midnight UTC.{OWN_KEY}"
                )
        if owner and s.visitor_daily_budget_usd > 0:
            spent = self.ledger.spent_since(day, key_ref="server", owner=owner)
            if spent + usd > s.visitor_daily_budget_usd + 1e-9:
                raise errors.LimitReached(
                    f"Each visitor may spend {dollars(s.visitor_daily_budget_usd)} a day (UTC) of "
                    f"this app's key; you have used {dollars(spent)}, and this would add "
                    f"{dollars(usd)}. It renews at midnight UTC.{OWN_KEY}"
                )
        place, most = place_of(owner), s.address_limit("daily_budget_usd")
        if place and most > 0:
            spent = self.ledger.spent_since(day, key_ref="server", owner=place, column="address")
            if spent + usd > most + 1e-9:
                raise errors.LimitReached(
                    f"Each address may spend {dollars(most)} a day (UTC) of this app's key, for "
                    f"everyone who reaches the app from it; {dollars(spent)} is used from your "
                    f"address, and this would add {dollars(usd)}. It renews at midnight UTC."
                    f"{OWN_KEY}"
                )

    def _check_hour(self, since: float, owner: str, count: int) -> None:
        """The videos of the last hour: the visitor's, the address's."""
        s = self.settings
        if owner and s.visitor_jobs_per_hour > 0:
            made = self.ledger.jobs_since(since, key_ref="server", owner=owner)
            if made + count > s.visitor_jobs_per_hour:
                raise errors.LimitReached(
                    f"Each visitor may make {_videos(s.visitor_jobs_per_hour)} an hour on this "
                    f"app's key; you have made {made} in the last hour.{OWN_KEY}"
                )
        place, most = place_of(owner), int(s.address_limit("jobs_per_hour"))
        if place and most > 0:
            made = self.ledger.jobs_since(since, key_ref="server", owner=place, column="address")
            if made + count > most:
                raise errors.LimitReached(
                    f"Each address may make {_videos(most)} an hour on this app's key, for "
                    f"everyone who reaches the app from it; {made} were made from your address "
                    f"in the last hour.{OWN_KEY}"
                )


def _videos(n: int) -> str:
    return f"{n} video" if n == 1 else f"{n} videos"


class Prices:
    """Each API's price book (the demo simulator quotes the same prices) and the balances
    of the accounts requests go to."""

    balance_fresh = 30.0  # seconds a balance read is reused (each click would ask otherwise)

    def __init__(
        self,
        settings: Settings,
        access: Access,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.access = access
        self._clock = clock
        self._monotonic = monotonic
        self._books: dict[str, PriceBook] = {}  # API address -> its price book
        self._balances: dict[str, tuple[float, float | None]] = {}  # key_ref -> (when, USD)
        # Another model's price (the catalogue's pricing: ``Models.estimate``), set by the
        # service; our model's is its price book's.
        self.other_models: Callable[[Request, object], Estimate] | None = None

    def book(self, backend: Backend | None = None) -> PriceBook:
        """The price book of a backend's API (default: where a keyless request goes)."""
        if backend is None:
            demo = self.access.demo
            base = demo.base_url() if self.access.demo_mode and demo else self.settings.base_url
        else:
            base = backend.settings.base_url
        if base not in self._books:
            self._books[base] = PriceBook(self.settings.with_(base_url=base), clock=self._clock)
        return self._books[base]

    def estimate(self, request_or_fields: Fields, count: object = 1) -> Estimate:
        """What ``count`` videos like this request (or like these fields of the model) will
        cost, before anything is sent."""
        return self.book().estimate(request_or_fields, count)

    def balance(self, api_key: str | None, *, backend: Backend | None = None) -> float | None:
        """The balance of the account a request would go to (``backend``, when the caller
        has it already: else the key's), in USD; None when not known. Read at most once per
        ``balance_fresh`` seconds per account."""
        try:
            backend = backend or self.access.backend_for(api_key)
        except errors.KlingUIError:
            return None
        now = self._monotonic()
        seen = self._balances.get(backend.key_ref)
        if seen is not None and now - seen[0] < self.balance_fresh:
            return seen[1]
        value = self.book(backend).balance(backend.api_key)
        self._balances[backend.key_ref] = (now, value)
        return value

    def low_balance(
        self,
        api_key: str | None,
        request_or_fields: Fields,
        count: object = 1,
        *,
        backend: Backend | None = None,
    ) -> str | None:
        """Words when the account's balance is below the price of what is about to be sent;
        None when it isn't, when either is not known (the balance endpoint never blocks), or
        in the demo (nothing is charged). ``backend``: the key's, when the caller (a click)
        has resolved it already; it is resolved once here otherwise."""
        try:
            backend = backend or self.access.backend_for(api_key)
            other = isinstance(request_or_fields, Request) and request_or_fields.model != MODEL
            if other and self.other_models is not None:
                price = self.other_models(request_or_fields, count).usd  # type: ignore[arg-type]
            else:
                price = self.book(backend).estimate(request_or_fields, count).usd
        except errors.KlingUIError:
            return None
        if backend.name == DEMO or not price:
            return None
        if backend.key_ref == "server" and self.settings.on_space:
            return None  # a Space's own account is the owner's business, not its visitors'
        balance = self.balance(api_key, backend=backend)
        if balance is None or balance >= price:
            return None
        return (
            f"Your AIML API balance is ${balance:,.2f}, below the price of this request "
            f"(${price:,.2f}): the vendor may refuse it."
        )


def waiting_room(most: int, share: int, mine: int) -> int:
    """How many jobs may wait in all when one more address's come: ``most``, but one
    address's ``share`` of it is kept for addresses with nothing waiting (``mine`` == 0),
    so a few busy addresses can't fill the room and shut everyone else out."""
    return most if mine == 0 or not 0 < share < most else most - share


def utc_day_start(moment: float) -> float:
    """The start of ``moment``'s UTC day (budgets renew at midnight UTC)."""
    day = datetime.fromtimestamp(moment, timezone.utc).date()
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
