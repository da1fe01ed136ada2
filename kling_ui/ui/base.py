"""What every section of the page needs: ``PageBase`` (the service, who the visitor is,
the caller's and the app's own address, a job this browser may see, the low-balance
question and its second press), the options the sections' events share, and the limits of
the browser's history. The section's events classes are built on ``PageBase``; ``handlers``
gathers them.

Imports the service (``GenerationService``: its public methods only), ``errors``,
``addresses`` and ``callers``; never another section.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import route_utils
from gradio.utils import get_upload_folder

from .. import errors
from ..addresses import address_key
from ..pricing import Fields
from ..service import Backend, GenerationService
from .callers import agent_of, client_address

# Events no program may call (the API's are named in ``wiring``).
PRIVATE: dict[str, Any] = {"api_visibility": "private"}
QUIET: dict[str, Any] = {**PRIVATE, "show_progress": "hidden"}
# A job's own events: the card shows the progress, so Gradio's overlay stays off.
JOB: dict[str, Any] = {**PRIVATE, "show_progress": "minimal", "concurrency_limit": None}

HISTORY_LIMIT = 100  # the most jobs a browser's history keeps

# After Remix or Continue, the prompt takes the focus (the next thing to change).
FOCUS_PROMPT_JS = """(note) => {
  if (!/^(Remixed|Continuing)/.test(note || "")) return;
  const box = document.querySelector("#prompt textarea");
  if (box) { box.scrollIntoView({block: "center"}); box.focus(); }
}"""

CONFIRM_WITHIN = 120.0  # seconds in which a second Generate sends despite a low balance
PRESS_AGAIN = "Nothing was sent. Press Generate again to send it anyway."

OUR_FAULT = "Something went wrong on our side. Please try again."  # a bug of ours

# The image field's copies in Gradio's upload folder, by their folders' names (swept).
FITTED, KEPT = "fitted-", "kept-"


@dataclass
class PageBase:
    """What every section's events share: the service, who asks, and the low-balance
    question. Events are plain values in, plain values out, as Gradio calls them.

    ``owner_token`` is the browser's own random token (kept in its BrowserState, handed to
    each event from the session, never from the request): jobs are recorded as made by it,
    and a browser's history, Stop and batch table show only its own jobs. A program (no
    token) is known by its address. ``request`` is Gradio's, for the caller's address and
    the app's own address (the videos' links)."""

    service: GenerationService
    _streams: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _warned: dict = field(default_factory=dict)  # question -> when told the balance is low
    _stops: dict = field(default_factory=dict)  # a tab (its session) -> (press, stop flag)
    _early: dict = field(default_factory=dict)  # (tab, press) -> when Stop came before its watch

    def __post_init__(self) -> None:
        # The image field's copies (a fitted picture, Remix's and Continue's images) are
        # written to Gradio's upload folder, whose sweep (``delete_cache``) removes only the
        # files Gradio made: the retention sweep removes ours (review 2 of issue 23, 4).
        self.service.scratch.append((Path(get_upload_folder()), (FITTED + "*", KEPT + "*")))

    def _second_press(self, question: tuple) -> bool:
        """True when this very question (``_question``) was put within
        ``CONFIRM_WITHIN`` seconds (this press confirms it); else notes it, False."""
        now = time.monotonic()
        with self._lock:
            for old in [q for q, told in self._warned.items() if now - told >= CONFIRM_WITHIN]:
                del self._warned[old]
            if self._warned.pop(question, None) is not None:
                return True
            self._warned[question] = now
            return False

    def _backend(self, api_key: str | None) -> Backend | None:
        """The backend a click's key goes to, resolved once for the whole click (its
        low-balance question and its job); None when the key can't be used (the service
        says why, in its turn)."""
        try:
            return self.service.backend_for(api_key)
        except errors.KlingUIError:
            return None

    def _unconfirmed_low_balance(
        self, visitor: str, api_key: str | None, fields: Fields, count: int = 1,
        *, backend: Backend | None = None,
    ) -> str | None:  # fmt: skip
        """The low-balance words when this request (``fields``: the request, or the fields
        a price reads) must wait for a second press; None to send it. A press confirms only
        the request it was warned of: the same visitor, key, price and number of videos (a
        video's warning never lets a batch through). ``backend``: the click's (``_backend``)."""
        low = self.service.low_balance(api_key, fields, count, backend=backend)
        if not low:
            return None
        question = self._question(visitor, api_key, fields, count, backend)
        return None if self._second_press(question) else low

    def _question(
        self, visitor: str, api_key: str | None, fields: Fields, count: int,
        backend: Backend | None = None,
    ) -> tuple:  # fmt: skip
        """What a low-balance warning asked: who, which key (its name, never the key), the
        price and the number of videos."""
        try:
            key_ref = (backend or self.service.backend_for(api_key)).key_ref
            usd = self.service.estimate(fields, count).usd
        except errors.KlingUIError:
            key_ref, usd = "", None
        return (visitor or "local", key_ref, usd, int(count))

    def _visitor(self, owner_token: str | None, request: gr.Request | None) -> str:
        """Who asks (the service's ``Visitor``: its owner, and its address's digest)."""
        return self.service.visitor(owner_token, self._address_of(request))

    def _address_of(self, request: gr.Request | None) -> str:
        """The caller's address; an agent's, for a tool Gradio's MCP server calls from this
        machine (``callers.agent_of``)."""
        agent = agent_of(request, self.service.digest)
        if agent is not None:
            return agent.address
        settings = self.service.settings
        return _address(request, settings.behind_proxy, settings.trusted_hops,
                        settings.ipv6_prefix)  # fmt: skip

    def _own(self, any_id: str | None, owner_token: str) -> Any:
        """The job with this id if this browser may see it, else None."""
        visitor = self.service.visitor(owner_token, None)
        job = self.service.entry(any_id or "", visitor)
        return job if job is not None and self.service.visible(job, visitor) else None


def _valid_history(history: Any) -> list[dict]:
    if not isinstance(history, list):
        return []
    return [h for h in history if isinstance(h, dict) and isinstance(h.get("id"), str)]


def _root(request: gr.Request | None) -> str:
    """This app's address as the caller reached it (behind a proxy too), without a slash."""
    raw = getattr(request, "request", None) if request is not None else None
    if raw is None:
        return ""
    app = getattr(raw, "app", None)
    return route_utils.get_root_url(raw, raw.url.path, getattr(app, "root_path", None))


def _address(
    request: gr.Request | None, behind_proxy: bool, hops: int = 1, ipv6_prefix: int = 64
) -> str:
    """The caller's address: behind ``hops`` proxies of ours, the entry of X-Forwarded-For
    that the farthest of them wrote (``callers.client_address``: every header line), as
    limits count it (``addresses.address_key``: no port, an IPv6 client by its network)."""
    if request is None:
        return ""
    client = getattr(request, "client", None)
    host = str(getattr(client, "host", "") or "")
    headers = getattr(request, "headers", None)
    getlist = getattr(headers, "getlist", None)
    if callable(getlist):
        lines = getlist("x-forwarded-for")
    else:  # a request kept as a plain mapping (one line, already joined)
        line = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
        lines = [line] if isinstance(line, str) else []
    return address_key(client_address(lines, host, behind_proxy=behind_proxy, hops=hops),
                       ipv6_prefix)  # fmt: skip


def private_upload_folder() -> Path:
    """A fresh folder of Gradio's uploads, private to the app's user, swept with the kept
    copies (``KEPT``): for a file the page hands out (Remix's copies, an export)."""
    folder = Path(get_upload_folder()) / (KEPT + secrets.token_hex(16))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def _upload_copy(source: Path, name: str) -> str:
    """A private copy of a kept file in Gradio's upload folder: the image field takes it
    like an upload (Remix, Continue)."""
    copy = shutil.copyfile(source, private_upload_folder() / name)
    os.chmod(copy, 0o600)
    return str(copy)


def _md(text: str, most: int | None = 80) -> str:
    """Words with a person's in them, safe in Markdown: every markup character escaped (no
    link, no tag, no emphasis can come of them), cut to ``most`` characters."""
    short = " ".join((text or "").split())[:most] or "(no prompt)"
    return short.translate(_MD_ESCAPES)


_MD_ESCAPES = {ord(c): "\\" + c for c in "\\`*_{}[]()#+-.!|<>&~"}
