"""The page: Gradio Blocks layout and event handlers. The only module that imports gradio.

``Handlers`` holds what each event does, as plain methods over ``GenerationService`` (tests
call them directly); ``build_ui`` lays out the page and wires the events. Handlers render
``Progress`` values as plain text (a vendor message with HTML in it shows as text, never as
markup). Two events form the API for programs, with exactly these parameters:

- ``/generate``: image, prompt, negative_prompt, duration, generate_audio, api_key
- ``/resume``: generation_id, api_key

The browser's history (``gr.BrowserState``) is written by private events only, each of which
folds in the generation id on show, so no two writers disagree about it. The id is also
noted in localStorage by JavaScript the instant it appears, so a reload loses nothing.
Gradio's run history (which would keep every input, the API key field included, in the
browser) is off.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import gradio as gr
from gradio import route_utils
from gradio.data_classes import FileData
from starlette.middleware import Middleware

from . import errors
from .config import Settings
from .images import MAX_INPUT_BYTES, prepare_image
from .jobs import Progress
from .pricing import dollars
from .rules import MAX_PROMPT_CHARS
from .service import DEMO, STATE_PHASE, GenerationService
from .web import Guard, is_loopback, media_route

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
HISTORY_KEY = "kling-ui-history-v1"
OWNER_KEY = "kling-ui-owner-v1"  # this browser's owner token (who made which job)
HISTORY_LIMIT = 100
SHORT_ID = 8  # the history shows ids by their first eight characters
FIT_CHOICES = [
    ("Tell me", "reject"),
    ("Crop to fit", "crop"),
    ("Pad to fit", "pad"),
]
EXAMPLES = [
    ("example-lighthouse.jpg", "Waves crash against the lighthouse as its beam sweeps the dusk."),
    ("example-balloon.jpg", "The hot-air balloon drifts upward; the camera tilts to follow it."),
    ("example-cat.jpg", "The cat slowly turns its head toward the camera and blinks."),
]
CONFIRM_WITHIN = 120.0  # seconds in which a second Generate sends despite a low balance
PRESS_AGAIN = "Nothing was sent. Press Generate again to send it anyway."
OUR_FAULT = "Status: error\nSomething went wrong on our side. Please try again."
BUSY_NOTE = (
    "One job at a time in this tab: **Generate** comes back when this one ends. To start "
    "another now, press **Stop watching**: this job carries on and stays in your history."
)

PENDING_KEY = "kling-ui-generation-ids"
# Runs in the browser the instant a generation id is shown: note it before anything else.
NOTE_ID_JS = f"""(gid) => {{
  if (gid) {{
    try {{
      const ids = JSON.parse(localStorage.getItem("{PENDING_KEY}") || "[]");
      if (!ids.includes(gid)) {{
        ids.unshift(gid);
        localStorage.setItem("{PENDING_KEY}", JSON.stringify(ids.slice(0, {HISTORY_LIMIT})));
      }}
    }} catch (e) {{}}
  }}
  return [gid];
}}"""
# The browser's time zone, as "Area/City|minutes west of UTC" (the second is the fallback).
_TZ_JS = (
    "(Intl.DateTimeFormat().resolvedOptions().timeZone || '') + '|' + "
    "new Date().getTimezoneOffset()"
)
READ_IDS_JS = f"""(pending, tz, history, owner) => [
  localStorage.getItem("{PENDING_KEY}") || "[]", {_TZ_JS}, history, owner]"""
# After "Remove from history": drop every id of that job (ours and the vendor's) from the
# ids noted in this browser, so a reload doesn't bring it back.
FORGET_IDS_JS = f"""(ids) => {{
  try {{
    const gone = JSON.parse(ids || "[]");
    const kept = JSON.parse(localStorage.getItem("{PENDING_KEY}") || "[]")
      .filter((i) => !gone.includes(i));
    localStorage.setItem("{PENDING_KEY}", JSON.stringify(kept));
  }} catch (e) {{}}
}}"""
# A HEIC photo may be refused by the upload widget itself ("Invalid file type"), before our
# own check can explain it; this says why, beside the image, on any page load.
HEIC_JS = """() => {
  const say = (files) => {
    const heic = Array.from(files || []).find((f) => /\\.(heic|heif)$/i.test(f.name));
    const box = document.getElementById("image");
    if (!heic || !box) return;
    let note = document.getElementById("heic-note");
    if (!note) {
      note = document.createElement("p");
      note.id = "heic-note";
      note.setAttribute("role", "alert");
      box.insertAdjacentElement("afterend", note);
    }
    note.textContent = `⚠ ${heic.name} is a HEIC photo (the iPhone's usual format), which ` +
      "isn't supported: export it as JPEG and upload that.";
  };
  document.addEventListener("change", (e) => say(e.target && e.target.files), true);
  document.addEventListener("drop", (e) => say(e.dataTransfer && e.dataTransfer.files), true);
  window.klingHeicWatch = true;
}"""

# The banners carry their own text colour: the page's text colour flips in dark mode, their
# pale backgrounds don't (dark amber on cream is 9:1 and more in both themes).
CSS = """
#status textarea { font-family: ui-monospace, monospace; }
#demo-banner, #key-banner { border: 2px solid #b45309; border-radius: 8px; padding: 4px 12px;
               background: #fffbeb; }
#demo-banner, #demo-banner *, #key-banner, #key-banner * { color: #451a03 !important; }
#heic-note { color: #b91c1c; margin: 4px 0; }
"""


class UploadedImage(gr.Image):
    """``gr.Image`` that hands the handler the uploaded file untouched.

    Gradio's own preprocessing opens the file with Pillow (and re-encodes some modes),
    so a damaged or non-image upload would fail inside Gradio with a generic error. Here
    the path goes straight to ``images.prepare_image``, which decodes it once and explains
    any problem in words.
    """

    def get_block_name(self) -> str:
        return "image"  # the same front-end component

    def preprocess(self, payload: Any) -> str | None:
        if payload is not None and getattr(payload, "path", None):
            return str(payload.path)
        return super().preprocess(payload)


class LocalMP4Video(gr.Video):
    """``gr.Video`` that serves our downloaded MP4 as it is.

    Gradio's own postprocessing runs ``ffprobe`` on every video it outputs to decide
    whether to transcode it: 0.1 s alone, over a second each when many jobs finish at
    once. Ours is always the vendor's H.264 MP4, checked by the client on download.
    """

    def get_block_name(self) -> str:
        return "video"

    def postprocess(self, value: Any) -> Any:
        if isinstance(value, MediaLink):  # our /media/ address: no path of the server's
            return FileData(path=value.url, url=value.url, orig_name=value.name)
        if isinstance(value, (str, Path)) and str(value).lower().endswith(".mp4"):
            return FileData(path=str(value), orig_name=Path(value).name)
        return super().postprocess(value)


@dataclass(frozen=True)
class MediaLink:
    """A finished video as the page gets it: its /media/ address and the name to save it as."""

    url: str
    name: str


# --- text ---------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# Phases before the vendor has a job, or when it never had one: no times to show.
_NO_TIMES = frozenset(
    {"waiting", "submitting", "checking", "refused", "not sent", "not created", "not found",
     "cancelled"}
)  # fmt: skip


def render_status(update: Progress) -> str:
    """The status panel's text: plain text, one fact a line."""
    lines = [f"Status: {update.phase}"]
    if update.phase not in _NO_TIMES:
        timing = (
            f"Elapsed {_clock(update.elapsed)} · queued {_clock(update.queued_for)}"
            f" · generating {_clock(update.generating_for)}"
        )
        if update.credits is not None and update.simulated:
            timing += (
                f" · credits {update.credits:,.0f} (simulated: what a real job uses; not charged)"
            )
        elif update.credits is not None:
            timing += f" · credits used {update.credits:,.0f}"
        lines.append(timing)
    cost = _cost_words(update)
    if cost:
        lines.append(cost)
    lines.append(update.message)
    if update.recovered:
        lines.append("(Recovered from the API's usage log: nothing was sent twice.)")
    if update.phase == "stopped":
        lines.append("This job carries on here; use Resume or the history to watch it again.")
    return "\n".join(lines)


def _cost_words(update: Progress) -> str:
    """The job's money in words: its price when sent, then what the vendor charged."""
    simulated = " (simulated: what a real job would cost; nothing is charged)"
    if update.charged_usd is not None:
        if update.charged_usd == 0 and update.phase not in ("completed", "downloading"):
            return "Cost: $0.00 (no video was made, so nothing is charged)"
        return f"Cost: {dollars(update.charged_usd)}" + (simulated if update.simulated else "")
    if update.estimate_usd is not None:
        what = "would cost" if update.simulated else "price"
        tail = simulated if update.simulated else " (estimate; the charge shows when it is done)"
        return f"Cost: {what} {dollars(update.estimate_usd)}{tail}"
    return ""


def render_error(exc: errors.KlingUIError) -> str:
    """A failure before there was a job: nothing sent, refused, or an unknown outcome."""
    if isinstance(exc, errors.InputError):
        state = "not sent"
    elif isinstance(exc, errors.OutcomeUnknown):
        state = "outcome unknown"
    elif isinstance(exc, errors.APIConnectionError):
        state = "not sent"  # the connection was never made
    else:
        state = "refused"
    return f"Status: {state}\n{exc.user_message}"


def browser_zone(tz: str | None) -> tuple[timezone | ZoneInfo, str]:
    """The zone the browser reported ("Area/City|offset"), and a label when it is a guess."""
    name, _, offset = (tz or "").partition("|")
    if name:
        try:
            return ZoneInfo(name), ""
        except (ValueError, OSError, KeyError):  # unknown name, or no zone data here
            pass
    try:
        return timezone(-timedelta(minutes=int(offset))), ""
    except ValueError:
        return timezone.utc, " UTC"


def local_time(ts: float | None, tz: str | None) -> str:
    zone, label = browser_zone(tz)
    return datetime.fromtimestamp(ts or 0, zone).strftime("%Y-%m-%d %H:%M") + label


def _valid_history(history: Any) -> list[dict]:
    if not isinstance(history, list):
        return []
    return [h for h in history if isinstance(h, dict) and isinstance(h.get("id"), str)]


def _job_update(update: Progress, shown_id: str, root: str) -> tuple[str, str, Any]:
    video = None
    if update.video_url and update.video_path:
        video = MediaLink(root + update.video_url, update.video_path.name)
    return shown_id, render_status(update), video


def _root(request: gr.Request | None) -> str:
    """This app's address as the caller reached it (behind a proxy too), without a slash."""
    raw = getattr(request, "request", None) if request is not None else None
    if raw is None:
        return ""
    app = getattr(raw, "app", None)
    return route_utils.get_root_url(raw, raw.url.path, getattr(app, "root_path", None))


def _address(request: gr.Request | None, behind_proxy: bool) -> str:
    """The caller's address: behind a proxy, the one the nearest proxy saw."""
    if request is None:
        return ""
    if behind_proxy:
        forwarded = (request.headers or {}).get("x-forwarded-for", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    client = getattr(request, "client", None)
    return str(getattr(client, "host", "") or "")


# --- what each event does -----------------------------------------------------------------


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
    _warned: dict = field(default_factory=dict)  # visitor -> when told the balance is low

    def _second_press(self, visitor: str) -> bool:
        """True when this visitor was told of a low balance within ``CONFIRM_WITHIN`` seconds
        (this press confirms it); else notes the warning and returns False."""
        now = time.monotonic()
        with self._lock:
            told = self._warned.pop(visitor or "local", None)
            if told is not None and now - told < CONFIRM_WITHIN:
                return True
            self._warned[visitor or "local"] = now
            return False

    def _visitor(self, owner_token: str | None, request: gr.Request | None) -> str:
        address = _address(request, self.service.settings.behind_proxy)
        return self.service.visitor(owner_token, address)

    @contextmanager
    def _stream(self, visitor: str) -> Iterator[None]:
        """One job watched by ``visitor``: each holds a server thread, so each visitor may
        have only ``visitor_streams`` at once (a flood from one client can't stall others)."""
        most = self.service.settings.visitor_streams
        with self._lock:
            if visitor and self._streams[visitor] >= most:
                raise errors.LimitReached(
                    f"You are already watching {most} jobs here, the most one person may at "
                    "once. They all carry on: stop watching one, or wait for one to end."
                )
            self._streams[visitor] += 1
        try:
            yield
        finally:
            with self._lock:
                self._streams[visitor] -= 1
                if self._streams[visitor] <= 0:
                    del self._streams[visitor]

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
        """Turn an image into a video. Streams (generation id, status text, video)."""
        gid = ""
        visitor, root = self._visitor(owner_token, request), _root(request)
        try:
            with self._stream(visitor):
                low = self.service.low_balance(api_key, duration, generate_audio)
                if low and not self._second_press(visitor):
                    yield "", f"Status: not sent\n{low} {PRESS_AGAIN}", None
                    return
                for update in self.service.generate(
                    image,
                    prompt,
                    negative_prompt,
                    duration,
                    generate_audio,
                    api_key,
                    fit=fit or "reject",
                    owner=visitor,
                ):
                    gid = update.generation_id
                    yield _job_update(update, gid, root)
        except errors.KlingUIError as exc:
            yield gid, render_error(exc), None
        except Exception:  # a bug of ours: the person still gets words, not a traceback
            log.exception("generate failed unexpectedly")
            yield gid, OUR_FAULT, None

    def resume(
        self,
        generation_id: str,
        api_key: str,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[str, str, Any]]:
        """Pick up a generation by its id and stream it to the end.

        The id is shown (and so kept in the history) only once the ledger holds it: an id
        the vendor doesn't know leaves no trace.
        """
        visitor, root = self._visitor(owner_token, request), _root(request)
        try:
            with self._stream(visitor):
                for update in self.service.resume(generation_id, api_key, owner=visitor):
                    gid = update.generation_id
                    yield _job_update(update, gid if self.service.knows(gid) else "", root)
        except errors.KlingUIError as exc:
            yield "", f"Status: not resumed\n{exc.user_message}", None
        except Exception:
            log.exception("resume failed unexpectedly")
            yield "", OUR_FAULT, None

    def open_selected(
        self,
        gid: str | None,
        api_key: str,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[str, str, Any]]:
        if not gid:
            yield "", "Status: nothing selected\nPick a generation from the history first.", None
            return
        yield from self.resume(gid, api_key, owner_token, request)

    def expand_id(self, typed: str, history: Any) -> str:
        """A short id (as the history shows it) becomes the whole id, when only one matches."""
        typed = (typed or "").strip()
        if not typed or len(typed) >= 36:
            return typed
        matches = {h["id"] for h in _valid_history(history) if h["id"].startswith(typed)}
        return matches.pop() if len(matches) == 1 else typed

    def _own(self, any_id: str | None, owner_token: str) -> Any:
        """The job with this id if this browser may see it, else None."""
        job = self.service.entry(any_id or "")
        visitor = self.service.visitor(owner_token, None)
        return job if job is not None and self.service.visible(job, visitor) else None

    def stop(self, gid: str, owner_token: str = "") -> str:
        """Stop watching: only the watching ends; the server finishes the job."""
        entry = self._own(gid, owner_token)
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
            f"Status: stopped watching\n{cost} It is in your history: use Resume to watch it again."
        )

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
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Queue images x prompts (one a line) x takes; returns at once with every job's id.

        Every item is checked first: one bad item refuses the whole batch, named."""
        visitor = self._visitor(owner_token, request)
        try:
            count = _batch_count(images, prompts, takes)
            low = self.service.low_balance(api_key, duration, generate_audio, count or 1)
            if low and count and not self._second_press(visitor):
                again = PRESS_AGAIN.replace("Generate", "Queue the batch")
                return {"error": f"{low} {again}", "items": []}
            return self.service.batch(
                images, prompts, negative_prompt, duration, generate_audio, takes, api_key,
                owner=visitor,
            )  # fmt: skip
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
        line of words (what was queued, or why nothing was)."""
        result = result if isinstance(result, dict) else {}
        if result.get("error"):
            return gr.update(value=[]), gr.Timer(active=False), "", f"⚠ {result['error']}"
        visitor = self._visitor(owner_token, request)
        batch_id = str(result.get("batch_id") or "")
        jobs = {j.job_id: j for j in self.service.batch_jobs(batch_id, visitor)}
        rows, done = [], 0
        for item in result.get("items") or []:
            job = jobs.get(item.get("job_id"))
            if job is None:
                continue
            done += job.final
            phase = STATE_PHASE.get(job.state, job.state)
            rows.append([item.get("image"), str(item.get("prompt"))[:60], item.get("take"),
                         phase, job.shown_id, job.message[:120]])  # fmt: skip
        running = bool(rows) and done < len(rows)
        progress = f"{done}/{len(rows)}" if rows else ""
        note = f"{len(rows)} videos queued; {done} ended." if rows else ""
        return gr.update(value=rows), gr.Timer(active=running), progress, note

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
            return self.service.estimate(duration, generate_audio, count).as_dict()
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
            quote = self.service.estimate(duration, audio, count)
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

    def _rows(self, history: list[dict], tz: str | None, visitor: str) -> list[list[str]]:
        """The history's rows: this browser's jobs only. An id whose job was made elsewhere
        (put into this browser's storage by hand, say) shows nothing of it."""
        jobs = self.service.entries([h["id"] for h in history])
        rows = []
        for item in history:
            gid = item["id"]
            job = jobs.get(gid)
            if job is not None and not self.service.visible(job, visitor):
                continue
            status = STATE_PHASE.get(job.state, job.state) if job else "unknown (resume to check)"
            prompt = (job.prompt if job else item.get("prompt")) or ""
            backend = " (demo)" if item.get("backend") == DEMO else ""
            when = local_time(job.created_at if job else item.get("created_at"), tz)
            rows.append([when, prompt[:80], status + backend, _history_cost(job), gid])
        return rows

    def _views(
        self, history: list[dict], tz: str | None, visitor: str, pick: str | None = None
    ) -> tuple:
        rows = self._rows(history, tz, visitor)
        choices = [(f"{r[0]} · {r[2]} · {r[1][:40]} · {r[4][:SHORT_ID]}", r[4]) for r in rows]
        ids = [r[4] for r in rows]
        value = pick if pick in ids else (ids[0] if ids else None)
        return gr.update(value=rows), gr.update(choices=choices, value=value)

    def _add(self, history: list[dict], shown: str, visitor: str, *, known_only: bool) -> None:
        """Fold an id into the history: one row a job, under the id a person knows it by
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
        self, gid: str, history: Any, tz: str, picked: str | None = None, owner_token: str = ""
    ) -> tuple:
        """Fold the shown id into the history and redraw it (after every status change).

        The picker keeps what the person picked; else it shows the job on the page."""
        visitor = self.service.visitor(owner_token, None)
        history = _valid_history(history)
        self._add(history, gid, visitor, known_only=True)
        return history, *self._views(history, tz, visitor, pick=picked or gid)

    def restore(self, pending: str, tz: str, history: Any, owner_token: Any = "") -> tuple:
        """On page load: this browser's owner token (made on its first visit), and the ids it
        noted before their history write landed, folded in."""
        token = owner_token if isinstance(owner_token, str) else ""
        if not self.service.visitor(token, None):
            token = secrets.token_urlsafe(24)
        visitor = self.service.visitor(token, None)
        history = _valid_history(history)
        try:
            ids = json.loads(pending or "[]")
        except ValueError:
            ids = []
        # At most as many as the history keeps: a huge list is not worth the server's time.
        for gid in ids[:HISTORY_LIMIT] if isinstance(ids, list) else []:
            if isinstance(gid, str) and len(gid) <= 200:
                self._add(history, gid, visitor, known_only=False)
        return history, *self._views(history, tz, visitor), tz, token, token

    def forget(self, gid: str | None, tz: str, history: Any, owner_token: str = "") -> tuple:
        """Remove one entry from this browser's history (the server's ledger keeps it).

        Also returns every id the job is known by, for the browser to forget too."""
        visitor = self.service.visitor(owner_token, None)
        job = self._own(gid, owner_token)
        ids = {gid} | ({job.job_id, job.generation_id} if job else set())
        history = [
            h for h in _valid_history(history)
            if h["id"] not in ids and not (job and h.get("job") == job.job_id)
        ]  # fmt: skip
        return history, *self._views(history, tz, visitor), json.dumps(sorted(i for i in ids if i))

    # --- the form ---------------------------------------------------------------------

    def check_image(self, image: str | None, fit: str) -> tuple[Any, Any]:
        """(image, note): a refused image is taken off the page, its reason left in its place."""
        if not image:
            return gr.skip(), gr.skip()  # cleared, by the person or by us: keep the note
        try:
            prepared = prepare_image(image, fit=fit or "reject")
        except errors.InputError as exc:
            return None, f"⚠ {exc.user_message} Choose another image."
        note = f" ({prepared.adjusted})" if prepared.adjusted else ""
        return gr.skip(), f"✓ Image OK: will be sent as {prepared.width}×{prepared.height}{note}."

    def count(self, prompt: str) -> str:
        n = len(prompt or "")
        over = " (over the limit)" if n > MAX_PROMPT_CHARS else ""
        return f"{n} / {MAX_PROMPT_CHARS} characters{over}"


def _batch_count(images: Any, prompts: Any, takes: Any) -> int:
    """How many videos a batch as it stands makes: images x prompt lines x takes (0 if the
    takes can't be read; the batch's own check says why)."""
    lines = [line for line in str(prompts or "").splitlines() if line.strip()]
    try:
        return len([i for i in (images or []) if i]) * len(lines) * int(takes or 1)
    except (TypeError, ValueError):
        return 0


def _history_cost(job: Any) -> str:
    """The history's Cost column: the charge once known, else the price sent ("est.")."""
    if job is None:
        return ""
    if job.charged_usd is not None:
        return dollars(job.charged_usd)
    if job.state in ("failed", "not_created", "cancelled"):
        return dollars(0)
    return f"{dollars(job.estimate_usd)} est." if job.estimate_usd is not None else ""


def _controls(watching: bool) -> tuple[Any, ...]:
    """Generate, Play or resume, Resume, Stop watching, and the busy note, for a state."""
    start = gr.update(interactive=not watching)
    return start, start, start, gr.update(interactive=watching), gr.update(visible=watching)


def watching() -> tuple[Any, ...]:
    return _controls(True)


def idle() -> tuple[Any, ...]:
    return _controls(False)


# --- the layout ---------------------------------------------------------------------------


def _banners(service: GenerationService) -> None:
    settings = service.settings
    gr.Markdown(
        "**Demo mode.** No API key is set, so videos are *simulated* by a local stand-in for "
        "the API and nothing is charged; the credits shown are what a real job would use. "
        "Enter your AIML API key below to make real videos.",
        visible=service.demo_mode,
        elem_id="demo-banner",
    )
    if settings.shared_key_locked:
        key_text = (
            "**Bring your own key.** This public Space makes real videos with *your* AIML API "
            "account: enter your key below. It is used for your requests only and never "
            "stored. The owner's key is not lent to visitors (the owner can share it within a "
            "daily budget, `KLING_UI_DAILY_BUDGET_USD`, or without one, "
            "`KLING_UI_ALLOW_SHARED_KEY=1`, and then pays for every visitor's videos)."
        )
    else:
        key_text = (
            "**Bring your own key.** This app generates real videos with your AIML API "
            "account: enter your key below. It is used for your requests only and never stored."
        )
    gr.Markdown(key_text, visible=settings.require_user_key, elem_id="key-banner")
    if settings.daily_budget_usd > 0:
        lent = f"within a budget of ${settings.daily_budget_usd:,.2f} a day (UTC)"
    else:
        lent = "(`KLING_UI_ALLOW_SHARED_KEY=1`)"
    gr.Markdown(
        f"**Shared key.** This Space runs on its owner's AIML API key {lent}: every video "
        "made here is paid by the owner. Enter your own key below to use your account instead.",
        visible=settings.shared_key_in_use,
        elem_id="shared-key-banner",
    )


@dataclass
class Form:
    image: Any
    image_note: Any
    fit: Any
    prompt: Any
    prompt_count: Any
    negative: Any
    duration: Any
    audio: Any
    api_key: Any
    generate: Any
    stop: Any
    busy: Any
    price: Any


def _form(handlers: Handlers, *, key_first: bool = False) -> Form:
    """The form, in the order a person uses it: the image, the prompt, the length, the price
    and Generate (all visible at 1366x768), then the settings rarely changed, in a closed
    group that says what it holds. Where visitors must bring a key, the key comes first."""
    image = UploadedImage(
        label="Image (JPEG, PNG, WebP, GIF or BMP; HEIC: export as JPEG first)",
        type="filepath",
        image_mode=None,
        sources=["upload", "clipboard", "webcam"],
        height=200,
        elem_id="image",
    )
    image_note = gr.Markdown(elem_id="image-note")
    prompt = gr.Textbox(
        label="Prompt",
        lines=2,
        max_lines=8,
        placeholder="Describe the motion: what moves, how the camera moves.",
        elem_id="prompt",
    )
    prompt_count = gr.Markdown(handlers.count(""), elem_id="prompt-count")
    with gr.Row(equal_height=True):
        duration = gr.Radio(
            [("5 seconds", 5), ("10 seconds", 10)], value=5, label="Duration", elem_id="duration"
        )
        audio = gr.Checkbox(value=True, label="Generate audio", elem_id="audio")
    api_key = _key_field() if key_first else None
    price = gr.Markdown(elem_id="price")
    with gr.Row():
        generate = gr.Button("Generate", variant="primary", elem_id="generate")
        stop = gr.Button("Stop watching", variant="stop", interactive=False, elem_id="stop")
    busy = gr.Markdown(BUSY_NOTE, visible=False, elem_id="busy-note")
    label = "More settings: negative prompt, image fit" + ("" if key_first else ", API key")
    with gr.Accordion(label, open=False, elem_id="more-settings"):
        negative = gr.Textbox(
            value="",
            label="Negative prompt",
            lines=2,
            placeholder="What to avoid (optional)",
            elem_id="negative",
        )
        fit = gr.Radio(
            FIT_CHOICES,
            value="reject",
            label="If the image's shape is outside 1:2.5 to 2.5:1",
            elem_id="fit",
        )
        if api_key is None:
            api_key = _key_field()
    return Form(
        image, image_note, fit, prompt, prompt_count, negative, duration, audio, api_key,
        generate, stop, busy, price,
    )  # fmt: skip


def _key_field() -> Any:
    return gr.Textbox(
        value="",
        label="API key",
        type="password",
        placeholder="Your AIML API key (optional; never stored)",
        elem_id="api-key",
    )


def _job_panel() -> tuple[Any, Any, Any]:
    gen_id = gr.Textbox(
        label="Generation id", interactive=False, buttons=["copy"], elem_id="generation-id"
    )
    status = gr.Textbox(
        label="Status", lines=4, interactive=False, buttons=["copy"], elem_id="status"
    )
    video = LocalMP4Video(
        label="Video", autoplay=True, interactive=False, buttons=["download"], elem_id="video"
    )
    return gen_id, status, video


@dataclass
class HistoryPanel:
    table: Any
    pick: Any
    open: Any
    forget: Any
    resume_id: Any
    resume: Any


def _history_panel() -> HistoryPanel:
    with gr.Accordion("History", open=True):
        table = gr.Dataframe(
            headers=["When", "Prompt", "Status", "Cost", "Generation id"],
            interactive=False,
            wrap=True,
            elem_id="history-table",
        )
        with gr.Row():
            pick = gr.Dropdown(label="Generation", choices=[], elem_id="history-pick", scale=3)
            open_btn = gr.Button("Play or resume", elem_id="open", scale=1)
            forget = gr.Button("Remove from history", elem_id="forget", scale=1)
        with gr.Row():
            resume_id = gr.Textbox(
                label="Resume by id",
                placeholder="Paste a generation id (or the first 8 characters of one below)",
                elem_id="resume-id",
                scale=3,
            )
            resume = gr.Button("Resume", elem_id="resume", scale=1)
    return HistoryPanel(table, pick, open_btn, forget, resume_id, resume)


@dataclass
class BatchPanel:
    images: Any
    prompts: Any
    takes: Any
    queue: Any
    result: Any
    table: Any
    cancel: Any
    timer: Any
    progress: Any
    note: Any
    price: Any


def _batch_panel() -> BatchPanel:
    with gr.Accordion("Batch: many images, many prompts", open=False, elem_id="batch"):
        gr.Markdown(
            "Every image with every prompt (one prompt a line), each as many times as "
            "**Takes** says. Negative prompt, duration, audio and key come from the form above. "
            "Every item is checked before anything is sent; the server sends them as slots "
            "free up and finishes them whether or not this page stays open."
        )
        with gr.Row():
            images = gr.File(
                label="Images", file_count="multiple", file_types=["image"], type="filepath",
                elem_id="batch-images",
            )  # fmt: skip
            with gr.Column():
                prompts = gr.Textbox(label="Prompts, one a line", lines=4, elem_id="batch-prompts")
                takes = gr.Slider(1, 4, value=1, step=1, label="Takes", elem_id="batch-takes")
        price = gr.Markdown(elem_id="batch-price")
        with gr.Row():
            queue = gr.Button("Queue the batch", variant="primary", elem_id="batch-queue")
            cancel = gr.Button("Cancel items not yet sent", elem_id="batch-cancel")
        note = gr.Markdown(elem_id="batch-note")
        result = gr.JSON(visible=False, elem_id="batch-result")  # the /batch answer, kept
        table = gr.Dataframe(
            headers=["Image", "Prompt", "Take", "State", "Id", "Message"],
            interactive=False,
            wrap=True,
            elem_id="batch-table",
        )
        progress = gr.Textbox(visible=False, elem_id="batch-progress")
        timer = gr.Timer(2.0, active=False)
    return BatchPanel(
        images, prompts, takes, queue, result, table, cancel, timer, progress, note, price
    )


def _examples(form: Form) -> None:
    examples = [[str(ASSETS / name), text] for name, text in EXAMPLES if (ASSETS / name).exists()]
    if examples:
        gr.Examples(
            examples=examples,
            inputs=[form.image, form.prompt],
            label="Examples (fill the inputs; nothing is generated until you press Generate)",
            cache_examples=False,
            run_on_click=False,
        )


def build_ui(service: GenerationService, *, browser_secret: str | None = None) -> gr.Blocks:
    """Lay out the page and wire its events to ``service``."""
    handlers = Handlers(service)
    # Videos are served in place at /media/<token>.mp4 (``launch_options``), never through
    # Gradio's file route, whose addresses carry the server's paths.
    days = service.settings.retention_days
    # With retention on, Gradio's own uploads go after the same time (checked hourly).
    delete_cache = (3600, int(days * 86400)) if days > 0 else None
    with gr.Blocks(
        title="kling-ui · image to video", analytics_enabled=False, delete_cache=delete_cache
    ) as page:
        gr.Markdown(
            "# Image to video with Kling v2.6 Pro\n"
            "Drop in an image, describe the motion, and press **Generate**. "
            "Each job gets an id right away and is kept in your history, so a reload or a "
            "closed tab never loses it."
        )
        _banners(service)
        with gr.Row():
            with gr.Column(scale=1):
                form = _form(handlers, key_first=service.settings.require_user_key)
            with gr.Column(scale=1):
                gen_id, status, video = _job_panel()
        panel = _history_panel()
        batch = _batch_panel()
        _examples(form)
        secret = browser_secret or secrets.token_hex(16)
        history = gr.BrowserState([], storage_key=HISTORY_KEY, secret=secret)
        # The browser's owner token: kept in its storage, and for each event in the session
        # (server side), where the page's events read it.
        owner = Owner(gr.BrowserState("", storage_key=OWNER_KEY, secret=secret), gr.State(""))
        tz = gr.Textbox(visible=False)
        _wire(handlers, page, form, panel, (gen_id, status, video), history, tz, owner)
        _wire_batch(handlers, form, batch, owner)
        _wire_notices(form, status, batch)
        gr.api(handlers.status, api_name="status")
        gr.api(handlers.estimate, api_name="estimate")
        _wire_prices(handlers, page, form, batch)
    return page


@dataclass
class Owner:
    stored: Any  # gr.BrowserState: the token, in the browser
    session: Any  # gr.State: the token, for this session's events (not in the API)


def _wire(
    handlers: Handlers,
    page: gr.Blocks,
    form: Form,
    panel: HistoryPanel,
    job: tuple[Any, Any, Any],
    history: Any,
    tz: Any,
    owner: Owner,
) -> None:
    """Connect the events. Private ones are kept out of the API."""
    _wire_jobs(handlers, form, panel, job, history, owner.session)
    _wire_history(handlers, page, panel, job, history, tz, owner)
    _wire_form(handlers, form)


_PRIVATE: dict[str, Any] = {"api_visibility": "private"}
_QUIET: dict[str, Any] = {**_PRIVATE, "show_progress": "hidden"}


def _wire_jobs(
    handlers: Handlers,
    form: Form,
    panel: HistoryPanel,
    job: tuple[Any, Any, Any],
    history: Any,
    owner: Any,
) -> None:
    """Generate, resume and open a job; Stop watching. The two API events are here."""
    gen_id, status, _ = job
    controls = [form.generate, panel.open, panel.resume, form.stop, form.busy]
    fit_state = gr.State("reject")
    form.fit.change(lambda f: f, form.fit, fit_state, **_QUIET)
    # Starting a job: the start buttons go off until it ends, so a second click can't be
    # dropped unseen (Gradio ignores clicks on an event that is still running).
    for button in (form.generate, panel.open, panel.resume):
        button.click(watching, None, controls, queue=False, **_QUIET)
    gen_event = form.generate.click(
        handlers.generate,
        inputs=[form.image, form.prompt, form.negative, form.duration, form.audio,
                form.api_key, fit_state, owner],
        outputs=list(job),
        api_name="generate",
        concurrency_limit=None,
    )  # fmt: skip
    resume_event = panel.resume.click(
        handlers.expand_id, [panel.resume_id, history], [panel.resume_id], queue=False, **_QUIET
    ).then(
        handlers.resume,
        inputs=[panel.resume_id, form.api_key, owner],
        outputs=list(job),
        api_name="resume",
        concurrency_limit=None,
    )
    open_event = panel.open.click(
        handlers.open_selected,
        inputs=[panel.pick, form.api_key, owner],
        outputs=list(job),
        concurrency_limit=None,
        **_PRIVATE,
    )
    for event in (gen_event, resume_event, open_event):
        event.then(idle, None, controls, queue=False, **_QUIET)
    form.stop.click(
        handlers.stop,
        inputs=[gen_id, owner],
        outputs=[status],
        cancels=[gen_event, resume_event, open_event],
        **_PRIVATE,
    ).then(idle, None, controls, queue=False, **_QUIET)


def _wire_history(
    handlers: Handlers,
    page: gr.Blocks,
    panel: HistoryPanel,
    job: tuple[Any, Any, Any],
    history: Any,
    tz: Any,
    owner: Owner,
) -> None:
    """Every status change folds the shown id in and redraws the table, so it follows the
    job and no two writers disagree. JavaScript notes the id the instant it shows (fn=None:
    nothing goes to the server)."""
    gen_id, status, _ = job
    views = [history, panel.table, panel.pick]
    gen_id.change(None, [gen_id], None, js=NOTE_ID_JS, **_QUIET)
    status.change(
        handlers.sync,
        [gen_id, history, tz, panel.pick, owner.session],
        views,
        trigger_mode="always_last",
        **_QUIET,
    )
    forgotten = gr.Textbox(visible=False)
    panel.forget.click(
        handlers.forget, [panel.pick, tz, history, owner.session], [*views, forgotten], **_QUIET
    ).then(None, [forgotten], None, js=FORGET_IDS_JS, **_QUIET)
    pending_ids = gr.Textbox(visible=False)
    page.load(
        handlers.restore,
        [pending_ids, tz, history, owner.stored],
        [*views, tz, owner.stored, owner.session],
        js=READ_IDS_JS,
        **_PRIVATE,
    )


def _wire_form(handlers: Handlers, form: Form) -> None:
    """The image check (a refused image leaves the page), and the prompt's counter."""
    for source in (form.fit, form.image):
        source.change(
            handlers.check_image, [form.image, form.fit], [form.image, form.image_note], **_PRIVATE
        )
    form.image.clear(lambda: "", None, form.image_note, **_QUIET)
    form.prompt.change(handlers.count, form.prompt, form.prompt_count, **_QUIET)


def _wire_prices(handlers: Handlers, page: gr.Blocks, form: Form, batch: BatchPanel) -> None:
    """The price beside Generate and the batch's, as the inputs that set them change (the
    key's field when it is left, since the balance is read with it)."""
    single = [form.duration, form.audio, form.api_key]
    for source in (form.duration.change, form.audio.change, form.api_key.blur, page.load):
        source(handlers.price_view, single, form.price, **_QUIET)
    many = [batch.images, batch.prompts, batch.takes, form.duration, form.audio, form.api_key]
    for event in (batch.images.change, batch.prompts.blur, batch.takes.change,
                  form.duration.change, form.audio.change):  # fmt: skip
        event(handlers.batch_price, many, batch.price, **_QUIET)


def _wire_batch(handlers: Handlers, form: Form, batch: BatchPanel, owner: Owner) -> None:
    """The batch: queued at once (the ``/batch`` API), then a table that follows it."""
    views = [batch.table, batch.timer, batch.progress, batch.note]
    mine = [batch.result, owner.session]
    batch.queue.click(
        handlers.batch,
        inputs=[batch.images, batch.prompts, form.negative, form.duration, form.audio,
                batch.takes, form.api_key, owner.session],
        outputs=[batch.result],
        api_name="batch",
    ).then(handlers.batch_view, mine, views, **_QUIET)  # fmt: skip
    batch.timer.tick(handlers.batch_view, mine, views, **_QUIET)
    batch.cancel.click(handlers.cancel_waiting, mine, views, **_QUIET)


# The first Generate asks to show a notice when a job is done (never on page load); the tab's
# title follows the job or the batch: "(0/1) kling-ui", then "(1/1) kling-ui" and a notice.
ASK_NOTICE_JS = """() => {
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission();
  }
}"""
TITLE_JS = """(progress) => {
  const base = "kling-ui";
  if (!progress) { document.title = base; return; }
  document.title = `(${progress}) ${base}`;
  const [done, total] = progress.split("/").map(Number);
  window.__klingNotified = window.__klingNotified || {};
  if (total && done === total && !window.__klingNotified[progress + document.title]) {
    window.__klingNotified[progress + document.title] = true;
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification("kling-ui", {body: total > 1 ? `All ${total} videos are done.` :
                                           "Your video is done."});
    }
  }
}"""
JOB_PROGRESS_JS = """(status) => {
  const phase = (status || "").split("\\n")[0].replace("Status: ", "").split(" ")[0];
  const running = ["waiting", "submitting", "checking", "submitted", "queued", "generating",
                   "downloading", "retrying", "unknown"];
  return [running.includes(phase) ? "0/1" : (phase === "completed" ? "1/1" : "")];
}"""


def _wire_notices(form: Form, status: Any, batch: BatchPanel) -> None:
    job_progress = gr.Textbox(visible=False, elem_id="job-progress")
    form.generate.click(None, None, None, js=ASK_NOTICE_JS, **_QUIET)
    batch.queue.click(None, None, None, js=ASK_NOTICE_JS, **_QUIET)
    status.change(None, [status], [job_progress], js=JOB_PROGRESS_JS, **_QUIET)
    for progress in (job_progress, batch.progress):
        progress.change(None, [progress], None, js=TITLE_JS, **_QUIET)


def launch_options(
    service: GenerationService, *, host: str | None = None, share: bool = False
) -> dict[str, Any]:
    """What ``page.launch`` needs besides host and port.

    The page's style and script; the videos' own route (``/media/<token>.mp4``) and the
    guard (framing headers everywhere, the Host check when only this machine can reach the
    app: loopback and no share link); Gradio's run history off, since it would keep every
    input, a typed API key included, in the browser; its session store capped; uploads
    refused past the image check's size and, with retention on, removed when old."""
    settings = service.settings
    check_host = is_loopback(host or settings.server_name) and not share
    guard = Middleware(
        Guard,
        on_space=settings.on_space,
        check_host=check_host,
        extra_hosts=settings.allowed_hosts.split(","),
    )
    options: dict[str, Any] = {
        "css": CSS,
        "js": HEIC_JS,
        "run_history": False,
        # Gradio refuses bigger uploads before storing them (the image check allows 50 MB).
        "max_file_size": f"{MAX_INPUT_BYTES // 1024**2 + 1}mb",
        "state_session_capacity": settings.session_capacity,
        "app_kwargs": {"routes": [media_route(service.media_file)], "middleware": [guard]},
    }
    return options


def browser_secret(settings: Settings) -> str:
    """The key that encrypts the history in the browser: stable across restarts.

    ``KLING_UI_BROWSER_SECRET`` if set; else one made once and kept in the data directory."""
    if settings.browser_secret:
        return settings.browser_secret
    path = settings.data_dir / "browser-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
        return value
