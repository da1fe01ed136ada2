"""Watching one job on the page (``Watching``, the base of ``progress.JobEvents``): one
watch a tab, ended by its Stop watching (even one pressed before the watch began); the job
read at each change and at least every ``TICK`` seconds through the service's ``watch``;
each visitor's and each address's share of watches; each update as a step for the page
(id, status text, video, card) or for an agent (with its typed phase).

Imports ``base``, ``card``, ``words``, ``parts``, ``jobs`` (``Progress``) and ``states``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, NamedTuple

import gradio as gr

from .. import errors
from ..jobs import Progress
from ..service import DEMO, NOT_KNOWN
from ..states import PHASE_OF_STATE
from .base import PageBase
from .card import render_card, render_card_text
from .parts import MediaLink
from .words import error_state, render_status


class Step(NamedTuple):
    """One update of a job: what the page shows (the first four, as Gradio's outputs), and
    the phase it is at, typed (for agents: never read back from the text)."""

    gid: Any  # the shown id (or gr.skip())
    text: Any  # the status text (or gr.skip())
    video: Any
    card: Any
    phase: str = ""


EARLY_STOP_KEPT = 600.0  # seconds a Stop waits for its watch to begin (then forgotten)

# Seconds: a watched job is read again at least this often (the card's phase times follow
# the ledger's, every second), and Stop watching is seen within it.
TICK = 1.0
STOPPED = "stopped watching"  # the phase Stop watching leaves a job the tab watched in


class Watching(PageBase):
    """Watching one job on the page: one watch a tab, ended by Stop watching; the job read
    at each change and at least every ``TICK`` seconds; each visitor's share of watches."""

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
                step = Step(gr.skip(), gr.skip(), gr.skip(), step.card, step.phase)
            before, last = now, (update, gid)
            yield step
        if stop is not None and stop.is_set() and before is not None and not last[0].final:
            update, gid = last
            phase, words = _stop_said(self.service.entry(update.job_id))
            step = _text_step(gid if phase == STOPPED else "", phase, words)
            yield step._replace(gid=gid, video=gr.skip())

    def stop(self, gid: str, owner_token: str = "") -> str:
        """Stop watching: only the watching ends; the server finishes the job."""
        return _text_step("", *_stop_said(self._own(gid, owner_token))).text

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
        phase, words = _stop_said(self._own(gid, owner_token))
        step = _text_step(gid if phase == STOPPED else "", phase, words)
        return step.text, step.card


def _job_step(update: Progress, shown_id: str, root: str, typical: float | None) -> Step:
    video = None
    if update.video_url and update.video_path:
        video = MediaLink(root + update.video_url, update.video_path.name)
    card = render_card(update, shown_id, typical)
    return Step(shown_id, render_status(update), video, card, update.phase)


def _text_step(shown_id: str, phase: str, words: str) -> Step:
    """An update that is only words: refused before sending, not resumed, nothing to stop.
    Its status text is "Status: <phase>" then the words, as programs read it."""
    card = render_card_text(phase, words, shown_id)
    return Step(shown_id, f"Status: {phase}\n{words}", None, card, phase)


def _error_step(shown_id: str, exc: errors.KlingUIError) -> Step:
    """A failure before there was a job: nothing sent, refused, or an unknown outcome."""
    return _text_step(shown_id, error_state(exc), exc.user_message)


def _press(value: Any) -> int:
    """A tab's press number, as the page sent it (a State's number; 0: none)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _stop_said(entry: Any) -> tuple[str, str]:
    """What Stop watching says of a job (its ledger row; None: nothing to stop): its phase
    and words."""
    if entry is None:
        return "nothing to stop", "No job is being watched in this tab."
    if entry.final:
        phase = PHASE_OF_STATE.get(entry.state, entry.state)
        return phase, "This job had already ended; nothing is running."
    if entry.backend == DEMO:
        cost = "The simulated job carries on here; nothing is charged."
    else:
        cost = (
            "The job carries on: this server keeps checking it and saves its video when it "
            "is done, whether or not a page is open."
        )
    return STOPPED, f"{cost} It is in your history: open it from your videos to watch it again."
