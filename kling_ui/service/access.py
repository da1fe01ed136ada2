"""Who the caller is, where their requests go, and what they may read.

Owns the one rule that picks a backend for a request (``choose_backend``: the demo, the
server's key or a typed one), who asks (``Visitor``: a browser's owner token or a program's
address, each known only by its digest, and where from), how many new browsers an address
may bring (``BrowserTable``), and the rights to a job: which jobs a browser's history shows
(``visible``), who may open a job by its id (``may_open``: its maker, or a key the vendor
accepts for it), and which short ids a caller may use (``entry``).

Imports ``addresses``, ``client`` (to ask the vendor whether a key may see a job),
``config``, ``errors``, ``history``, ``runner`` (a backend, a key's name, digests).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import errors
from ..addresses import address_key
from ..client import AIMLClient
from ..config import Settings
from ..history import Job, Ledger
from ..runner import Backend, Runner

if TYPE_CHECKING:
    from ..simulator import DemoSimulator

DEMO = "demo"  # the local simulator (as recorded in the ledger)
LIVE = "live"  # the real API (as recorded in the ledger)
TYPED = "typed"  # the real API with the key typed in the page
SERVER = "server"  # the real API with the server's key
OWNER_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
ADDRESS = "address:"  # a visitor or place known by the client's address (its digest)


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


class Visitor(str):
    """Who asks, as the ledger records a job's owner ("browser:<digest>", "address:<digest>"
    or ""), with where from: ``place``, the digest of the client's address
    ("address:<digest>"; "" when not known). Every limit on a visitor is counted per place
    too (``Limits``): fresh browsers cost nothing to make, an address does. The ledger
    records the place beside the owner (``Ledger.add``)."""

    place: str

    def __new__(cls, who: str, place: str = "") -> Visitor:
        self = super().__new__(cls, who)
        self.place = place
        return self


def place_of(owner: str) -> str:
    """Where a visitor asks from ("" for a plain owner string: in-process callers)."""
    return str(getattr(owner, "place", "") or "")


class Access:
    """Backends and keys, visitors, and the rights to read a job, for one app process."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        runner: Runner,
        demo: DemoSimulator | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.runner = runner
        self.demo = demo
        self.browsers = BrowserTable(settings.browsers_kept, clock=monotonic)

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
            return self.demo_backend()
        key = typed if choice == TYPED else (self.settings.api_key or "")
        ref = self.runner.key_ref(LIVE, key, typed=choice == TYPED)
        return Backend(LIVE, self.settings, key, ref)

    def demo_backend(self) -> Backend:
        assert self.demo is not None
        settings = self.settings.with_(base_url=self.demo.base_url())
        return Backend(DEMO, settings, self.demo.key, DEMO)

    def backend_for_ref(self, name: str, key_ref: str) -> Backend | None:
        """After a restart: the backend of a job recorded with ``key_ref``, if known here."""
        if key_ref == DEMO or (name == DEMO and not key_ref):
            return self.demo_backend() if self.demo is not None else None
        if key_ref in ("server", "") and self.settings.api_key and not self.settings.demo:
            return Backend(LIVE, self.settings, self.settings.api_key, "server")
        return None  # a typed key: never stored, so it waits for its owner

    def key_to_bring(self, job: Job, api_key: str | None) -> Backend | None:
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

    # --- who asks -----------------------------------------------------------------------

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
        if self.browsers.admit(place, owner, most):
            return True
        if OWNER_TOKEN.fullmatch(token) and self.ledger.has_jobs(owner):
            self.browsers.remember(place, owner)
            return True
        return False

    def place(self, address: str | None) -> str:
        """Where a request comes from: "address:<digest>" of the client's address behind our
        proxies, as limits count it (``addresses.address_key``: no port, an IPv6 client by
        its network), "" when not known (in-process callers)."""
        key = address_key(address, self.settings.ipv6_prefix) if address else ""
        return ADDRESS + self.runner.digest(key) if key else ""

    # --- what they may read -------------------------------------------------------------

    def visible(self, job: Job, owner: str) -> bool:
        """Whether a browser's history may show this job: made there, or opened there."""
        if self.ledger.may_see(job, owner):
            return True
        # A job from before owners goes to the first browser that shows it, except where
        # visitors bring keys: there only a key the vendor accepts opens it (``may_open``).
        return not self.settings.require_user_key and self.ledger.claim(job.job_id, owner)

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

    def knows(self, any_id: str, owner: str = "") -> bool:
        """True when the ledger holds this id (it was created here, or the vendor knew it);
        a short id, for a job ``owner`` may see (``entry``)."""
        job = self.entry(any_id, owner)
        return job is not None and not self.runner.unconfirmed(job.job_id)


def no_key_here(job: Job) -> str:
    """Why a job can't be run here: the key it was made with isn't known to this process."""
    if job.backend == DEMO:
        return "This job ran in demo mode, which is off here, so it can't be resumed here."
    return (
        "This job was made with this app's own API key (AIMLAPI_KEY), which isn't set here: "
        "set it, then resume the job."
    )


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
