"""What each of the page's events does: ``Handlers``, plain methods over
``GenerationService`` (tests call them directly, as Gradio does).

Two kinds of job events: the API's (``generate``, ``resume``: exactly the outputs programs
know, the generation id, the status text and the video) and the page's (``*_page``: the same
stream with the progress card as a fourth output). Both run the same code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import route_utils
from gradio.utils import get_upload_folder

from .. import errors, snippets
from ..addresses import address_key
from ..chains import complete
from ..images import prepare_image
from ..jobs import Progress
from ..pricing import dollars
from ..request import Request
from ..rules import MAX_PROMPT_CHARS, NO_IMAGE
from ..service import DEMO, MAX_BATCH, NOT_KNOWN, STATE_PHASE, GenerationService
from . import gallery
from .callers import agent_of, client_address, signed_in
from .card import card_from_status, render_card
from .form import COPY_BUTTONS
from .parts import MediaLink
from .words import history_cost, render_error, render_status

log = logging.getLogger(__name__)

HISTORY_LIMIT = 100
CONFIRM_WITHIN = 120.0  # seconds in which a second Generate sends despite a low balance
PRESS_AGAIN = "Nothing was sent. Press Generate again to send it anyway."
OUR_FAULT = "Status: error\nSomething went wrong on our side. Please try again."

# Copy as code: what each kind is called on the page.
CODE_NAMES = {"curl": "cURL", "python": "Python (requests)"}
NOTHING_PICKED = "Pick one of your videos in the gallery first, then press {button}."
ADOPTED = (
    "That video was opened by its id, not made here, so its prompt and settings aren't "
    "known: there is nothing to copy."
)
BUSY_PICK = (
    "This tab is watching a job. Press Stop watching first (the job carries on at the "
    "server), then click the video to open."
)
BATCH_FIT = (
    "Choose Crop or Pad under Image fit in More settings (it applies to the whole batch), "
    "or use another image."
)
# One update of a job on the page: (shown id, status text, video, card).
Step = tuple[str, str, Any, str]
# The image field's copies in Gradio's upload folder, by their folders' names (swept).
FITTED, KEPT = "fitted-", "kept-"
EARLY_STOP_KEPT = 600.0  # seconds a Stop waits for its watch to begin (then forgotten)
# Seconds: a watched job is read again at least this often (the card's phase times follow
# the ledger's, every second), and Stop watching is seen within it.
TICK = 1.0


def _valid_history(history: Any) -> list[dict]:
    if not isinstance(history, list):
        return []
    return [h for h in history if isinstance(h, dict) and isinstance(h.get("id"), str)]


def _job_step(update: Progress, shown_id: str, root: str, typical: float | None) -> Step:
    video = None
    if update.video_url and update.video_path:
        video = MediaLink(root + update.video_url, update.video_path.name)
    return shown_id, render_status(update), video, render_card(update, shown_id, typical)


def _text_step(shown_id: str, text: str) -> Step:
    return shown_id, text, None, card_from_status(text, shown_id)


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


@dataclass
class Handlers:
    """The page's event handlers, as Gradio calls them: plain values in, plain values out.

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
        """True when this very question (``_low_balance_question``) was put within
        ``CONFIRM_WITHIN`` seconds (this press confirms it); else notes it, False."""
        now = time.monotonic()
        with self._lock:
            for old in [q for q, told in self._warned.items() if now - told >= CONFIRM_WITHIN]:
                del self._warned[old]
            if self._warned.pop(question, None) is not None:
                return True
            self._warned[question] = now
            return False

    def _unconfirmed_low_balance(
        self, visitor: str, api_key: str | None, duration: Any, audio: Any, count: int = 1
    ) -> str | None:
        """The low-balance words when this request must wait for a second press; None to
        send it. A press confirms only the request it was warned of: the same visitor,
        key, price and number of videos (a video's warning never lets a batch through)."""
        low = self.service.low_balance(api_key, _fields(duration, audio), count)
        if not low:
            return None
        return None if self._second_press(self._question(visitor, api_key, duration, audio,
                                                         count)) else low  # fmt: skip

    def _question(
        self, visitor: str, api_key: str | None, duration: Any, audio: Any, count: int
    ) -> tuple:
        """What a low-balance warning asked: who, which key (its name, never the key), the
        price and the number of videos."""
        try:
            key_ref = self.service.backend_for(api_key).key_ref
            usd = self.service.estimate(_fields(duration, audio), count).usd
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

    @contextmanager
    def _stream(self, visitor: str) -> Iterator[None]:
        """One job watched by ``visitor``: each holds a server thread, so each visitor may
        have only ``visitor_streams`` at once (a flood from one client can't stall others),
        and each address (``Visitor.place``: fresh browsers are free to make) its share."""
        settings = self.service.settings
        most, most_here = settings.visitor_streams, int(settings.address_limit("streams"))
        place = getattr(visitor, "place", "")
        counted = [visitor] + (["@" + place] if place else [])
        with self._lock:
            if visitor and self._streams[visitor] >= most:
                raise errors.LimitReached(
                    f"You are already watching {most} jobs here, the most one person may at "
                    "once. They all carry on: stop watching one, or wait for one to end."
                )
            if place and 0 < most_here <= self._streams["@" + place]:
                raise errors.LimitReached(
                    f"{most_here} jobs are being watched from your address (everyone who "
                    "reaches this app from it), the most one address may at once. They all "
                    "carry on: stop watching one, or wait for one to end."
                )
            for name in counted:
                self._streams[name] += 1
        try:
            yield
        finally:
            with self._lock:
                for name in counted:
                    self._streams[name] -= 1
                    if self._streams[name] <= 0:
                        del self._streams[name]

    def _typical(self, update: Progress) -> float | None:
        """How long jobs like this one usually take here (the median of the ledger's)."""
        job = self.service.entry(update.job_id) if update.job_id else None
        return self.service.typical_seconds(job.backend, job.duration) if job else None

    # --- watching a job on the page: ends by itself when Stop watching is pressed ---------

    @contextmanager
    def _tab_watch(
        self, request: gr.Request | None, press: Any = 0
    ) -> Iterator[threading.Event | None]:
        """This tab's watch: a stop flag that Stop watching sets (``stop_page``), so the
        watch ends by itself, as any event does. (Gradio's ``cancels=`` left the page's own
        state of the cancelled event behind: the next Generate press was dropped, and a job
        watched again froze with red "Error" badges: issue 23, items 12 and 13.) One watch
        a tab: a new one ends the one before. None where there is no tab (programs).

        ``press``: the tab's number for the press that started this watch (the page counts
        them); a Stop for it that came before the watch began leaves the flag set at once."""
        tab = getattr(request, "session_hash", None) if request is not None else None
        if not tab:
            yield None
            return
        stop, press = threading.Event(), _press(press)
        with self._lock:
            self._prune_early()
            if self._early.pop((tab, press), None) is not None:
                stop.set()
            before = self._stops.get(tab)
            entry = self._stops[tab] = (press, stop)
        if before is not None:
            before[1].set()
        try:
            yield stop
        finally:
            with self._lock:
                if self._stops.get(tab) is entry:
                    del self._stops[tab]

    def _prune_early(self) -> None:
        """Forget Stops whose watch never began (under ``_lock``)."""
        old = time.monotonic() - EARLY_STOP_KEPT
        for key in [key for key, when in self._early.items() if when < old]:
            del self._early[key]

    def _follow(
        self, updates: Iterator[Progress], stop: threading.Event | None
    ) -> Iterator[Progress]:
        """The service's updates of one job; on the page (``stop`` given), once the job is
        the runner's, the job read at each change and at least every ``TICK`` seconds (the
        card's phase times are the ledger's, every second, not only when a poll lands),
        until it ends, the watch deadline passes, or ``stop`` is set (then it just ends:
        the caller says "stopped watching")."""
        if stop is None:
            yield from updates
            return
        first = next(updates, None)
        if first is None:
            return
        if first.final or not first.job_id:
            yield first
            yield from updates
            return
        updates.close()  # from here on, read at the tick
        yield first  # even when stopped already: the id shows, and so is kept in the history
        if stop.is_set():
            return
        job_id, last = first.job_id, first
        deadline = time.monotonic() + self.service.settings.watch_deadline
        while True:
            for job in self.service.watch(job_id, timeout=TICK):
                if stop.is_set():
                    return
                last = self.service.progress(job)
                yield last
            if last.final or stop.is_set():
                return
            if self.service.entry(job_id) is None:  # an adopted id the vendor did not know
                yield Progress("", "not found", NOT_KNOWN, job_id=job_id)
                return
            if time.monotonic() >= deadline:
                message = errors.GenerationTimeout().user_message
                yield replace(last, phase="stopped", message=message)
                return

    def _steps(
        self, updates: Iterator[Progress], stop: threading.Event | None, root: str,
        shown: Any = None,
    ) -> Iterator[Step]:  # fmt: skip
        """Each update as a step; a tick that changed only the times redraws only the card
        (the status text, and so the history and the gallery, change with the job).
        ``shown``: the id to show for an update (the generation id by default)."""
        typical, before = None, None
        for update in self._follow(updates, stop):
            if typical is None:
                typical = self._typical(update)
            gid = shown(update) if shown else update.generation_id
            step = _job_step(update, gid, root, typical)
            now = (update.phase, update.message, gid, update.video_url, update.credits,
                   update.charged_usd, update.recovered)  # fmt: skip
            if now == before and stop is not None:  # programs get each update whole
                step = (gr.skip(), gr.skip(), gr.skip(), step[3])
            before, last = now, (update, gid)
            yield step
        if stop is not None and stop.is_set() and before is not None and not last[0].final:
            update, gid = last
            text = _stop_words(self.service.entry(update.job_id))
            yield gid, text, gr.skip(), card_from_status(text, gid if "stopped" in text else "")

    def generate_page(
        self,
        image: str | None,
        prompt: str,
        negative_prompt: str,
        duration: int,
        generate_audio: bool,
        api_key: str,
        fit: str = "reject",
        owner_token: str = "",
        parent_id: str = "",
        press: int = 0,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[Step]:
        """Turn an image into a video. Streams (generation id, status text, video, card).
        ``parent_id``: the job this one continues (Continue), whose chain it ends.
        ``press``: the tab's number for this watch (``_tab_watch``)."""
        yield from self._generate(
            image, prompt, negative_prompt, duration, generate_audio, api_key, fit,
            owner_token, parent_id, request, page=True, press=press,
        )  # fmt: skip

    def _generate(
        self, image: str | None, prompt: str, negative_prompt: str, duration: int,
        generate_audio: bool, api_key: str, fit: str, owner_token: str, parent_id: str,
        request: gr.Request | None, *, page: bool, press: Any = 0,
    ) -> Iterator[Step]:  # fmt: skip
        visitor = self._visitor(owner_token, request)
        yield from self._run(
            lambda stop: self.service.generate(
                image, _asked(image, prompt, negative_prompt, duration, generate_audio),
                api_key=api_key, fit=fit or "reject", owner=visitor, parent_id=parent_id or None,
                should_stop=stop.is_set if stop is not None else None,
            ),
            visitor, api_key, duration, generate_audio, request, page=page, press=press,
        )  # fmt: skip

    def _run(
        self,
        start: Any,
        visitor: str,
        api_key: str,
        duration: Any,
        generate_audio: Any,
        request: gr.Request | None,
        *,
        page: bool = False,
        press: Any = 0,
    ) -> Iterator[Step]:
        """A new job watched to its end, for one visitor: its share of streams, the
        low-balance question first, our words for any refusal, never a traceback. On the
        page (``page``), watched at the tick until Stop watching (``_tab_watch``).
        ``start(stop)`` makes the job; ``stop`` (or None) is asked before it is sent."""
        gid, root = "", _root(request)
        with self._tab_watch(request if page else None, press) as stop:
            try:
                with self._stream(visitor):
                    low = self._unconfirmed_low_balance(visitor, api_key, duration, generate_audio)
                    if low:
                        yield _text_step("", f"Status: not sent\n{low} {PRESS_AGAIN}")
                        return
                    for step in self._steps(start(stop), stop, root):
                        gid = step[0] if isinstance(step[0], str) else gid
                        yield step
            except errors.KlingUIError as exc:
                yield _text_step(gid, render_error(exc))
            except Exception:  # a bug of ours: the person still gets words, not a traceback
                log.exception("generate failed unexpectedly")
                yield _text_step(gid, OUR_FAULT)

    def extend(
        self,
        generation_id: str,
        prompt: str,
        negative_prompt: str,
        duration: int,
        generate_audio: bool,
        api_key: str,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[str, str, Any]]:
        """``/extend``: the next part of a finished video (by its id), from its last frame,
        watched like ``/generate``; its last update's video is the whole chain, stitched."""
        visitor = self._visitor(owner_token, request)
        steps = self._run(
            lambda _stop: self.service.extend(
                generation_id, Request.make(prompt, negative_prompt=negative_prompt,
                                            duration=duration, generate_audio=generate_audio),
                api_key=api_key, owner=visitor,
            ),
            visitor, api_key, duration, generate_audio, request,
        )  # fmt: skip
        for step in steps:
            yield step[:3]

    def generate(
        self,
        image: str | None,
        prompt: str,
        negative_prompt: str,
        duration: int,
        generate_audio: bool,
        api_key: str,
        fit: str = "reject",
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[str, str, Any]]:
        """``/generate`` for programs: ``generate_page`` without the card, so (generation
        id, status text, video). (Gradio reads the parameters, so they are spelled out.)"""
        for step in self._generate(
            image, prompt, negative_prompt, duration, generate_audio, api_key, fit,
            owner_token, "", request, page=False,
        ):  # fmt: skip
            yield step[:3]

    def resume_page(
        self,
        generation_id: str,
        api_key: str,
        owner_token: str = "",
        press: int = 0,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[Step]:
        """Pick up a generation by its id and stream it to the end, with the card.

        The id is shown (and so kept in the history) only once the ledger holds it: an id
        the vendor doesn't know leaves no trace. ``press``: as for ``generate_page``.
        """
        yield from self._resume(
            generation_id, api_key, owner_token, request, page=True, press=press
        )

    def _resume(
        self, generation_id: str, api_key: str, owner_token: str, request: gr.Request | None,
        *, page: bool, press: Any = 0,
    ) -> Iterator[Step]:  # fmt: skip
        visitor, root = self._visitor(owner_token, request), _root(request)

        def shown(update: Progress) -> str:
            gid = update.generation_id
            return gid if self.service.knows(gid) else ""

        with self._tab_watch(request if page else None, press) as stop:
            try:
                with self._stream(visitor):
                    updates = self.service.resume(generation_id, api_key, owner=visitor)
                    yield from self._steps(updates, stop, root, shown)
            except errors.KlingUIError as exc:
                yield _text_step("", f"Status: not resumed\n{exc.user_message}")
            except Exception:
                log.exception("resume failed unexpectedly")
                yield _text_step("", OUR_FAULT)

    def resume(
        self,
        generation_id: str,
        api_key: str,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[str, str, Any]]:
        """``/resume`` for programs: ``resume_page`` without the card."""
        for step in self._resume(generation_id, api_key, owner_token, request, page=False):
            yield step[:3]

    def open_selected(
        self,
        gid: str | None,
        api_key: str,
        owner_token: str = "",
        press: int = 0,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[Step]:
        """A video picked in the gallery: play it, or watch it to its end if it hasn't one."""
        if not gid:
            yield _text_step("", "Status: nothing selected\nPick a video in the gallery first.")
            return
        yield from self.resume_page(gid, api_key, owner_token, press, request)

    def expand_id(self, typed: str, history: Any) -> str:
        """A short id (as the history shows it) becomes the whole id, when only one matches."""
        typed = (typed or "").strip()
        if not typed or len(typed) >= 36:
            return typed
        matches = {h["id"] for h in _valid_history(history) if h["id"].startswith(typed)}
        return matches.pop() if len(matches) == 1 else typed

    def _own(self, any_id: str | None, owner_token: str) -> Any:
        """The job with this id if this browser may see it, else None."""
        visitor = self.service.visitor(owner_token, None)
        job = self.service.entry(any_id or "", visitor)
        return job if job is not None and self.service.visible(job, visitor) else None

    def stop(self, gid: str, owner_token: str = "") -> str:
        """Stop watching: only the watching ends; the server finishes the job."""
        return _stop_words(self._own(gid, owner_token))

    def stop_page(
        self,
        gid: str,
        owner_token: str = "",
        press: int = 0,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any]:
        """Stop watching, on the page: this tab's watch is told to end, and ends by itself
        with the words (its last step); with no watch running, the words at once.

        ``press``: the tab's number for the watch Stop was pressed for. Stop is on from the
        press, before that watch begins (it waits for a queue, an id to be expanded): such a
        Stop is kept, and the watch, once begun, ends at once (``_tab_watch``). A Stop for a
        watch that has already ended changes nothing (its last words stay)."""
        tab = getattr(request, "session_hash", None) if request is not None else None
        press = _press(press)
        with self._lock:
            current = self._stops.get(tab) if tab else None
            if current is not None and (not press or current[0] == press):
                current[1].set()
                return gr.skip(), gr.skip()
            if tab and press:
                self._prune_early()
                self._early[(tab, press)] = time.monotonic()
                return gr.skip(), gr.skip()
        text = self.stop(gid, owner_token)
        return text, card_from_status(text, gid if text.startswith("Status: stopped") else "")

    def status(
        self,
        generation_id: str,
        api_key: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """One snapshot of a job (by our id or the vendor's), for programs; never waits.

        Where visitors bring their own keys, pass the key the job was made with."""
        visitor = self._visitor(None, request)
        try:
            answer = self.service.status(generation_id, owner=visitor, api_key=api_key)
        except errors.KlingUIError as exc:
            return {"error": exc.user_message}
        if answer.get("video"):
            answer["video"] = _root(request) + answer["video"]
        return answer

    def batch(
        self,
        images: list[str] | None,
        prompts: str,
        negative_prompt: str,
        duration: int,
        generate_audio: bool,
        takes: int,
        api_key: str,
        owner_token: str = "",
        fit: str = "reject",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Queue images x prompts (one a line) x takes; returns at once with every job's id.

        Every item is checked first: one bad item refuses the whole batch, named. ``fit``
        is the form's Image fit (More settings): a batch image too wide or too tall is
        cropped or padded by it, else refused with words that name that setting."""
        visitor = self._visitor(owner_token, request)
        fit = fit if fit in ("crop", "pad") else "reject"
        try:
            count = _batch_count(images, prompts, takes)
            low = count and self._unconfirmed_low_balance(
                visitor, api_key, duration, generate_audio, count
            )
            if low:
                again = PRESS_AGAIN.replace("Generate", "Queue the batch")
                return {"error": f"{low} {again}", "items": []}
            return self.service.batch(
                images, prompts, takes=takes, api_key=api_key, fit=fit, owner=visitor,
                fields={"negative_prompt": negative_prompt, "duration": duration,
                        "generate_audio": generate_audio},
            )  # fmt: skip
        except errors.RatioOutOfRange as exc:
            return {"error": f"{exc.facts} {BATCH_FIT}", "items": []}
        except errors.KlingUIError as exc:
            return {"error": exc.user_message, "items": []}
        except Exception:
            log.exception("batch failed unexpectedly")
            return {"error": OUR_FAULT.split("\n", 1)[1], "items": []}

    def batch_view(
        self,
        result: Any,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, str, str]:
        """The batch as a table, whether to keep refreshing it, its progress ("2/5"), and a
        line of words (what was queued, or why nothing was). ``result`` is the ``/batch``
        answer, or what the browser kept of it (``keep_batch``); the rows are the ledger's,
        this browser's own jobs only, each with its video's first frame and a play link."""
        result = result if isinstance(result, dict) else {}
        if result.get("error"):
            return gr.update(value=[]), gr.Timer(active=False), "", f"⚠ {result['error']}"
        visitor = self._visitor(owner_token, request)
        batch_id = str(result.get("batch_id") or "")
        jobs = {j.job_id: j for j in self.service.batch_jobs(batch_id, visitor)}
        root = _root(request)
        rows, done = [], 0
        for item in _batch_items(result):
            job = jobs.get(item.get("job_id"))
            if job is None:
                continue
            done += job.final
            phase = STATE_PHASE.get(job.state, job.state)
            video = self._batch_video(job, len(rows) + 1, root)
            rows.append([video, item.get("image"), str(item.get("prompt"))[:60],
                         item.get("take"), phase, job.shown_id, job.message[:120]])  # fmt: skip
        running = bool(rows) and done < len(rows)
        progress = f"{done}/{len(rows)}" if rows else ""
        note = f"{len(rows)} videos queued; {done} ended." if rows else ""
        return gr.update(value=rows), gr.Timer(active=running), progress, note

    def _batch_video(self, job: Any, n: int, root: str) -> str:
        """A batch row's first cell (Markdown: our own addresses and words only): the video's
        first frame and a link that plays it, once it is done; empty before."""
        if job.state != "done" or not job.video_path or not Path(job.video_path).is_file():
            return ""
        poster = self.service.poster_url(job)
        frame = f"![Video {n}: its first frame]({root}{poster}) " if poster else ""
        return f"{frame}[▶ Play video {n}]({root}{self.service.video_url(job)})"

    def keep_batch(self, result: Any) -> Any:
        """What the browser keeps of a batch just queued (its id, and each item's job, image,
        prompt and take), to show it again after a reload; nothing when none was queued."""
        if not isinstance(result, dict) or result.get("error") or not result.get("batch_id"):
            return gr.skip()
        items = [
            {key: item.get(key) for key in ("job_id", "image", "prompt", "take")}
            for item in _batch_items(result)
        ]
        return {"batch_id": str(result["batch_id"]), "items": items}

    def batch_history(
        self,
        kept: Any,
        history: Any,
        tz: str,
        picked: str | None = None,
        needle: str = "",
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple:
        """The batch's jobs folded into this browser's history (its own only), and the
        gallery redrawn: a batch's videos are tiles like any other (after the queue, and as
        its items end, so each tile gets its poster)."""
        visitor = self.service.visitor(owner_token, None)
        history = _valid_history(history)
        batch_id = str(kept.get("batch_id") or "") if isinstance(kept, dict) else ""
        for job in self.service.batch_jobs(batch_id, visitor):
            self._add(history, job.job_id, visitor, known_only=True)
        return history, *self._views(history, tz, visitor, needle, pick=picked, root=_root(request))

    def batch_restore(
        self,
        kept: Any,
        history: Any,
        tz: str,
        needle: str = "",
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple:
        """On page load (after ``restore``): the batch this browser queued last, its table
        rebuilt from the ledger and its jobs in the history. Its progress only while it runs
        (a batch that ended before the reload is not announced as done again)."""
        views = self.batch_history(kept, history, tz, None, needle, owner_token, request)
        table, timer, progress, note = self.batch_view(kept, owner_token, request)
        done, _, total = progress.partition("/")
        return *views, table, timer, progress if done != total else "", note

    def cancel_waiting(
        self,
        result: Any,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, str, str]:
        """Cancel the batch's items not yet sent (this browser's own); the others go on."""
        result = result if isinstance(result, dict) else {}
        visitor = self._visitor(owner_token, request)
        for job in self.service.batch_jobs(str(result.get("batch_id") or ""), visitor):
            if job.state == "queued_here":
                self.service.cancel(job.job_id, visitor)
        return self.batch_view(result, owner_token, request)

    # --- money --------------------------------------------------------------------------

    def estimate(self, duration: int = 5, generate_audio: bool = True, count: int = 1) -> dict:
        """What ``count`` videos of ``duration`` seconds, with or without audio, will cost,
        before anything is sent: usd (total; null when not known in advance), usd_each,
        usd_per_second, source ("catalogue" or "table"), as_of (the price's date), words."""
        try:
            return self.service.estimate(_fields(duration, generate_audio), count).as_dict()
        except errors.KlingUIError as exc:
            return {"error": exc.user_message, "usd": None}

    def price_view(self, duration: int, generate_audio: bool, api_key: str = "") -> str:
        """The line beside Generate: the price of what is about to be sent, and the balance."""
        return self._price_words(duration, generate_audio, 1, api_key)

    def batch_price(
        self, images: Any, prompts: str, takes: int, duration: int, generate_audio: bool,
        api_key: str = "",
    ) -> str:  # fmt: skip
        """The batch's price as it stands: images x prompt lines x takes."""
        count = _batch_count(images, prompts, takes)
        if not count:
            return "Add images and prompts to see the batch's price."
        return self._price_words(duration, generate_audio, count, api_key)

    def _price_words(self, duration: Any, audio: Any, count: int, api_key: str) -> str:
        try:
            quote = self.service.estimate(_fields(duration, audio), count)
        except errors.KlingUIError as exc:
            return f"Price: {exc.user_message}"
        text = f"**Price:** {quote.words()}"
        typed = bool((api_key or "").strip())
        if self.service.demo_mode and not typed:
            return text + " — what it would cost; demo videos are free."
        if self.service.settings.on_space and not typed:
            return text  # a Space's own account balance is the owner's business
        balance = self.service.balance(api_key)
        if balance is not None:
            text += f" · balance {dollars(balance)}"
            if quote.usd is not None and balance < quote.usd:
                text += " (below the price)"
        return text

    # --- the history ------------------------------------------------------------------

    def _views(
        self, history: list[dict], tz: str | None, visitor: str, needle: str = "",
        pick: str | None = None, root: str = "",
    ) -> tuple[Any, list[str], str]:  # fmt: skip
        """The gallery (this browser's jobs only, those matching ``needle``), the ids in its
        order, and the picked id: the tile clicked or the job shown, if it is in view."""
        jobs = self.service.entries([h["id"] for h in history])
        items, ids = [], []
        for item in history:
            job = jobs.get(item["id"])
            if job is not None and not self.service.visible(job, visitor):
                continue  # an id made elsewhere (put into this browser's storage by hand)
            tile = gallery.tile(self.service, item, job, tz, root)
            if gallery.matches(needle, tile):
                items.append((tile.image, tile.caption))
                ids.append(tile.gid)
        value = pick if pick in ids else ""  # only what was clicked, or the job shown
        index = ids.index(value) if value else None
        return gr.update(value=items, selected_index=index), ids, value

    def _add(self, history: list[dict], shown: str, visitor: str, *, known_only: bool) -> None:
        """Fold an id into the history: one entry a job, under the id a person knows it by
        (ours until the create returns, then the vendor's). Only this browser's jobs."""
        if not shown:
            return
        job = self.service.entry(shown)
        if job is None and known_only:
            return
        if job is not None and not self.service.visible(job, visitor):
            return
        key = job.job_id if job else None
        for item in history:
            if item["id"] == shown or (key and item.get("job") == key):
                item["id"] = job.shown_id if job else item["id"]
                item["job"] = key or item.get("job")
                return
        history.insert(
            0,
            {
                "id": job.shown_id if job else shown,
                "job": key,
                "created_at": job.created_at if job else time.time(),
                "prompt": (job.prompt if job else "")[:300],
                "backend": job.backend if job else None,
            },
        )
        history.sort(key=lambda h: h.get("created_at") or 0, reverse=True)
        del history[HISTORY_LIMIT:]

    def sync(
        self,
        gid: str,
        history: Any,
        tz: str,
        picked: str | None = None,
        needle: str = "",
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple:
        """Fold the shown id into the history and redraw the gallery (after every status
        change). The gallery keeps what the person picked; else it picks the job shown."""
        visitor = self.service.visitor(owner_token, None)
        history = _valid_history(history)
        self._add(history, gid, visitor, known_only=True)
        return history, *self._views(
            history, tz, visitor, needle, pick=picked or gid, root=_root(request)
        )

    def restore(
        self,
        pending: str,
        tz: str,
        history: Any,
        owner_token: Any = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple:
        """On page load: this browser's owner token (made on its first visit), and the ids it
        noted before their history write landed, folded in."""
        token = owner_token if isinstance(owner_token, str) else ""
        if not self.service.visitor(token, None):
            token = secrets.token_urlsafe(24)
        # Past its address's new browsers an hour, this session is known by its address
        # (as a program is); a browser's own token is kept for when it is admitted again.
        session = token if self.service.admit_browser(token, self._address_of(request)) else ""
        stored = token if session or token == owner_token else ""
        user = signed_in(request)  # signed in with Hugging Face: the user, in any browser
        if user:
            session, stored = self.service.user_token(user), token
        visitor = self.service.visitor(session, None)
        history = _valid_history(history)
        try:
            ids = json.loads(pending or "[]")
        except ValueError:
            ids = []
        # At most as many as the history keeps: a huge list is not worth the server's time.
        for gid in ids[:HISTORY_LIMIT] if isinstance(ids, list) else []:
            if isinstance(gid, str) and len(gid) <= 200:
                self._add(history, gid, visitor, known_only=False)
        views = self._views(history, tz, visitor, root=_root(request))
        return history, *views, tz, stored, session

    def filter(
        self,
        needle: str,
        history: Any,
        tz: str,
        picked: str | None = None,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple:
        """The gallery narrowed to the videos whose words contain ``needle``."""
        visitor = self.service.visitor(owner_token, None)
        return self._views(
            _valid_history(history), tz, visitor, needle, pick=picked, root=_root(request)
        )

    def pick(self, ids: Any, busy: bool, evt: gr.SelectData) -> str:
        """The id of the gallery tile just clicked; refused in words while this tab watches
        a job (one at a time, as for Generate)."""
        if busy:
            raise gr.Error(BUSY_PICK, title="One job at a time in this tab")
        index = evt.index if isinstance(evt.index, int) else -1
        return ids[index] if isinstance(ids, list) and 0 <= index < len(ids) else ""

    def forget(
        self,
        gid: str | None,
        tz: str,
        history: Any,
        needle: str = "",
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple:
        """Remove one entry from this browser's history (the server's ledger keeps it).

        Also returns every id the job is known by, for the browser to forget too, and a line
        that says what happened."""
        visitor = self.service.visitor(owner_token, None)
        job = self._own(gid, owner_token)
        ids = {gid} | ({job.job_id, job.generation_id} if job else set())
        history = [
            h for h in _valid_history(history)
            if h["id"] not in ids and not (job and h.get("job") == job.job_id)
        ]  # fmt: skip
        views = self._views(history, tz, visitor, needle, root=_root(request))
        note = (
            "Removed from this browser's history (the job itself is not deleted)."
            if gid else "Pick one of your videos in the gallery first, then press Remove."
        )  # fmt: skip
        return history, *views, json.dumps(sorted(i for i in ids if i)), note

    def remix(self, gid: str | None, owner_token: str = "") -> tuple:
        """A past job's image, prompt, negative prompt, duration and audio, back in the form
        (and a line that says what happened). The image is the one that was sent."""
        visitor = self.service.visitor(owner_token, None)
        kept = self.service.remix(gid or "", visitor) if gid else None
        if kept is None:
            note = "Pick one of your videos in the gallery first, then press Remix."
            return (gr.skip(),) * 5 + (note,)
        image = kept.get("image")
        if image is not None:
            image = _upload_copy(image, "remix.jpg")
            note = (
                "Remixed: that job's image, prompt, length, audio and negative prompt (under "
                "More settings) are in the form. Change what you like, then Generate."
            )
        else:
            note = (
                "Remixed the prompt and settings (the negative prompt is under More settings); "
                "that job's image was not kept (made before images were kept, or cleared), so "
                "add an image."
            )
        return (
            image, kept["prompt"], kept["negative_prompt"], kept["duration"],
            kept["generate_audio"], note,
        )  # fmt: skip

    # --- longer videos: continue, and the chain -----------------------------------------

    def continue_video(
        self, gid: str | None, duration: int = 5, owner_token: str = ""
    ) -> tuple[Any, str, Any, Any]:
        """A finished video's last frame into the form's image, to be continued by the next
        Generate: (the image, the job it continues, the words shown, the "start a new video"
        button). What can't be continued is said, and the form is left as it was."""
        job = self._own(gid, owner_token)  # this browser's own videos only
        try:
            start = self.service.continuation(job) if job else None
        except errors.KlingUIError as exc:
            said = gr.update(value=f"⚠ {exc.user_message}", visible=True)
            return gr.skip(), gr.skip(), said, gr.skip()
        if start is None:
            words = "Pick a finished video first (in the gallery, or the one just made)."
            return gr.skip(), gr.skip(), gr.update(value=words, visible=True), gr.skip()
        image = _upload_copy(start.frame, "last-frame.jpg")
        note = gr.update(value=_md(start.words(_seconds(duration)), most=None), visible=True)
        return image, start.parent.job_id, note, gr.update(visible=True)

    def continued(self, gid: str | None, parent_id: str) -> tuple[Any, Any, Any]:
        """After a Generate: once the new part is made (it continues ``parent_id``), the
        form continues nothing more (its Continue goes on from the new part); a part that
        was never sent leaves the form as it was, to try again."""
        job = self.service.entry(gid or "") if gid and parent_id else None
        if job is None or job.parent_id != parent_id or job.state != "done":
            return gr.skip(), gr.skip(), gr.skip()  # not made: the person may try again
        return self.stop_continuing()

    def stop_continuing(self) -> tuple[str, Any, Any]:
        """A new image, or "Start a new video instead": the next Generate continues nothing."""
        return "", gr.update(value="", visible=False), gr.update(visible=False)

    def chain_view(
        self,
        gid: str | None,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> str:
        """The picked video's chain, when it is one: its parts in order (each its length,
        price and own download), the whole length and price, and the whole video's download."""
        job = self._own(gid, owner_token)
        if job is None:
            return ""
        parts = self.service.chain_parts(job)
        if len(parts) < 2:
            return ""
        root = _root(request)
        lines = []
        for n, part in enumerate(parts, 1):
            link = ""
            if part.state == "done" and part.video_path and Path(part.video_path).is_file():
                link = f" · [download part]({root}{self.service.video_url(part)})"
            cost = history_cost(part)
            lines.append(f"{n}. {_md(part.prompt)} · {part.duration} s · {cost}{link}")
        costs = [p.cost_usd for p in parts]
        known = None not in costs
        total = dollars(sum(c for c in costs if c is not None)) if known else "price not known yet"
        whole = ""
        if self.service.chain_video(job) is not None:
            whole = f" · [download the whole video]({root}{self.service.chain_url(job)})"
        seconds = sum(p.duration for p in parts)
        head = f"**Chain of {len(parts)} parts: {seconds} s, {total}**{whole}"
        if not complete(parts):
            head += " (its earlier parts were removed after their days here)"
        return "\n".join([head, "", *lines])

    # --- copy as code -------------------------------------------------------------------

    def code_for_form(
        self, kind: str, image: str | None, prompt: str, negative_prompt: str, duration: int,
        generate_audio: bool,
    ) -> tuple[Any, str]:  # fmt: skip
        """The form as it stands as code (``kind``: "curl" or "python") to run outside the
        app, and a line of words. What Generate would refuse gives the page's own words and
        no code. The image is named by its file's name (Gradio keeps it in the upload's
        path); the key is not an input here, so it can't end up in the code."""
        name = Path(image).name if image else ""
        try:
            snippets.mime_type(name)  # the image is named before the other fields, as ever
            code = snippets.SNIPPETS[kind](
                name,
                Request.make(prompt, negative_prompt=negative_prompt, duration=duration,
                             generate_audio=generate_audio),
            )  # fmt: skip
        except errors.InputError as exc:
            return _no_code(), f"⚠ {exc.user_message}"
        note = (
            f"{CODE_NAMES[kind]} of the form as it stands. It reads your key from the "
            "`AIMLAPI_KEY` variable (it is never written in) and the image from its file."
        )
        return _code(kind, code), note

    def code_for_job(self, kind: str, gid: str | None, owner_token: str = "") -> tuple[Any, str]:
        """The picked video's request as code, and a line of words. Only this browser's jobs
        (another's gives the words for nothing picked); its image is a placeholder file name,
        since the image it sent is here, not on the person's disk (Remix puts it back)."""
        job = self._own(gid, owner_token)
        if job is None:
            return _no_code(), NOTHING_PICKED.format(button=COPY_BUTTONS[kind])
        if not job.prompt:  # adopted by its id: the request was never ours to know
            return _no_code(), ADOPTED
        try:
            code = snippets.SNIPPETS[kind](
                snippets.JOB_IMAGE, Request.make(job.prompt, negative_prompt=job.negative_prompt,
                                                 duration=job.duration,
                                                 generate_audio=job.generate_audio),
                sent_by=job.shown_id,
            )  # fmt: skip
        except errors.InputError as exc:
            return _no_code(), f"⚠ {exc.user_message}"
        note = (
            f"{CODE_NAMES[kind]} of that video's request. Its image is `{snippets.JOB_IMAGE}` "
            "in the code: Remix puts the image it sent back in the form."
        )
        return _code(kind, code), note

    # --- the form ---------------------------------------------------------------------

    def check_image(
        self,
        image: str | None,
        fit: str,
        fitting: Any = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, Any, Any, Any, Any]:
        """A new picture in the form's image (an upload, Remix, Continue, an example),
        checked at once: (image, note, Crop and Pad's row, Crop, Pad, ``fitting``).

        One too wide or too tall stays, with Crop and Pad under its note (``_fit``); any
        other refused image is taken off the page, its reason left in its place. The fitted
        copy we show in its place comes back here too: it is known by its bytes (``fitting``
        holds their digest) and left as it is."""
        if not image:  # cleared, by the person or by us: keep the note
            return gr.skip(), gr.skip(), *_fit_offer(()), {}
        kept = fitting if isinstance(fitting, dict) else {}
        if kept.get("shown") and kept["shown"] == _digest(image):
            return (gr.skip(),) * 6
        return self._fit(image, fit, image, self._visitor("", request))

    def refit(
        self,
        fit: str,
        fitting: Any,
        image: str | None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, Any, Any, Any, Any]:
        """The fit changed (Crop or Pad under the note, or the choice in More settings): the
        picture given is fitted again, at once, and the image shows the result."""
        kept = fitting if isinstance(fitting, dict) else {}
        original = kept.get("original")
        if not image or not isinstance(original, str) or not Path(original).is_file():
            return (gr.skip(),) * 6
        return self._fit(original, fit, image, self._visitor("", request))

    def _fit(self, original: str, fit: str, shown: str, visitor: str) -> tuple:
        """``original`` checked with ``fit``. Within the allowed shapes: the note says how it
        will be sent. Outside them: with "Tell me" (or a fit that can't save it), the note
        says why, with the fits that would (Crop, Pad) under it; with one that can, the
        image shows the fitted picture, as it will be sent. ``shown``: what the image shows
        now (the original, or a fitted copy), so the original comes back when it should."""
        again = shown != original  # a fitted copy is shown: the original comes back
        back = original if again else gr.skip()
        kept = {"original": original, "shown": _digest(original) if again else ""}
        fit = fit if fit in ("reject", "crop", "pad") else "reject"
        try:
            prepared = prepare_image(original, owner=visitor)
        except errors.RatioOutOfRange as exc:
            facts = exc.facts
        except errors.InputError as exc:
            return None, f"⚠ {exc.user_message} Choose another image.", *_fit_offer(()), {}
        else:
            note = f" ({prepared.adjusted})" if prepared.adjusted else ""
            ok = f"✓ Image OK: will be sent as {prepared.width}×{prepared.height}{note}."
            return back, ok, *_fit_offer(()), kept
        fitted, refusal = {}, None
        for way in ("crop", "pad"):  # which of them can save it (each a decode)
            try:
                fitted[way] = prepare_image(original, fit=way, owner=visitor)
            except errors.InputError as exc:
                refusal = exc
        if not fitted:  # too small either way: refused like any other image
            return None, f"⚠ {refusal.user_message} Choose another image.", *_fit_offer(()), {}
        chosen = fitted.get(fit)
        if chosen is None:
            ways = " or ".join(fitted).capitalize()  # "Crop or pad", or just one of them
            note = f"⚠ {facts} {ways} it to fit (below), or choose another image."
            return back, note, *_fit_offer(tuple(fitted)), kept
        copy = _fitted_copy(chosen, original, fit)
        note = (
            f"✓ Image OK: {chosen.adjusted}; will be sent as {chosen.width}×{chosen.height}, "
            "as shown."
        )
        kept["shown"] = _digest(copy)
        return copy, note, *_fit_offer(tuple(fitted)), kept

    def count(self, prompt: str) -> str:
        n = len(prompt or "")
        over = " (over the limit)" if n > MAX_PROMPT_CHARS else ""
        return f"{n} / {MAX_PROMPT_CHARS} characters{over}"


def _press(value: Any) -> int:
    """A tab's press number, as the page sent it (a State's number; 0: none)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _stop_words(entry: Any) -> str:
    """What Stop watching says of a job (its ledger row; None: nothing to stop)."""
    if entry is None:
        return "Status: nothing to stop\nNo job is being watched in this tab."
    if entry.final:
        phase = STATE_PHASE.get(entry.state, entry.state)
        return f"Status: {phase}\nThis job had already ended; nothing is running."
    if entry.backend == DEMO:
        cost = "The simulated job carries on here; nothing is charged."
    else:
        cost = (
            "The job carries on: this server keeps checking it and saves its video when it "
            "is done, whether or not a page is open."
        )
    return (
        f"Status: stopped watching\n{cost} It is in your history: open it from your videos "
        "to watch it again."
    )


def _fit_offer(ways: tuple[str, ...]) -> tuple[Any, Any, Any]:
    """Crop and Pad's row, Crop and Pad: shown for the fits that would save the image."""
    return (
        gr.update(visible=bool(ways)),
        gr.update(visible="crop" in ways),
        gr.update(visible="pad" in ways),
    )


def _fitted_copy(prepared: Any, original: str, fit: str) -> str:
    """The fitted picture, exactly as it will be sent (the prepared JPEG), as a file in
    Gradio's upload folder: the image field shows it, and Generate sends it. Its folder is
    named by its bytes, so pressing Crop or Pad again makes no second copy."""
    data = base64.b64decode(prepared.data_uri.split(",", 1)[1])
    folder = Path(get_upload_folder()) / (FITTED + hashlib.sha256(data).hexdigest()[:32])
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.utime(folder)  # made or used now: the retention sweep counts from here
    done = {"crop": "cropped", "pad": "padded"}[fit]
    path = folder / f"{Path(original).stem[:60] or 'image'}-{done}.jpg"
    if not path.is_file():
        part = folder / f".{secrets.token_hex(8)}.part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(part, path)  # whole or not at all, for a second press at the same time
    return str(path)


def _digest(path: str) -> str:
    """A file's bytes as a digest ("" when it can't be read): how a fitted copy is known
    when the image field hands it back (by then under another path, Gradio's copy)."""
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                sha.update(block)
    except OSError:
        return ""
    return sha.hexdigest()


def _upload_copy(source: Path, name: str) -> str:
    """A private copy of a kept file in Gradio's upload folder: the image field takes it
    like an upload (Remix, Continue)."""
    folder = Path(get_upload_folder()) / (KEPT + secrets.token_hex(16))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    copy = shutil.copyfile(source, folder / name)
    os.chmod(copy, 0o600)
    return str(copy)


def _seconds(duration: Any) -> int:
    try:
        return int(duration)
    except (TypeError, ValueError):
        return 5


def _md(text: str, most: int | None = 80) -> str:
    """Words with a person's in them, safe in Markdown: every markup character escaped (no
    link, no tag, no emphasis can come of them), cut to ``most`` characters."""
    short = " ".join((text or "").split())[:most] or "(no prompt)"
    return short.translate(_MD_ESCAPES)


_MD_ESCAPES = {ord(c): "\\" + c for c in "\\`*_{}[]()#+-.!|<>&~"}


def _code(kind: str, code: str) -> Any:
    """The code box, shown, in the kind's language."""
    label = f"The create request as {CODE_NAMES[kind]}"
    return gr.update(value=code, language=snippets.LANGUAGES[kind], label=label, visible=True)


def _no_code() -> Any:
    """The code box emptied and hidden: no code is better than stale code."""
    return gr.update(value="", visible=False)


def _batch_items(result: dict) -> list[dict]:
    """A batch answer's items (as many as a batch may hold), each a dict."""
    items = result.get("items")
    return [i for i in items[:MAX_BATCH] if isinstance(i, dict)] if isinstance(items, list) else []


def _batch_count(images: Any, prompts: Any, takes: Any) -> int:
    """How many videos a batch as it stands makes: images x prompt lines x takes (0 if the
    takes can't be read; the batch's own check says why)."""
    lines = [line for line in str(prompts or "").splitlines() if line.strip()]
    try:
        return len([i for i in (images or []) if i]) * len(lines) * int(takes or 1)
    except (TypeError, ValueError):
        return 0


def _fields(duration: Any, audio: Any) -> dict[str, Any]:
    """A price's fields of the model, as the form holds them (checked by the price book)."""
    return {"duration": duration, "generate_audio": audio}


def _asked(image: Any, prompt: Any, negative: Any, duration: Any, audio: Any) -> Request:
    """The form's request; a missing image is named before its other fields, as ever."""
    if image is None or (isinstance(image, str) and not image.strip()):
        raise errors.InputError(NO_IMAGE)
    return Request.make(prompt, negative_prompt=negative, duration=duration, generate_audio=audio)
