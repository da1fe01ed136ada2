"""The gallery of this browser's past videos: its layout, one tile per job, and its events
(``GalleryEvents``: the history kept in the browser, folded in and redrawn; the page load's
restore; the filter; a tile's pick; Remove; Remix) with their wiring (``listen``).

A tile is the video's poster frame (made once when the MP4 lands, served at
``/media/<token>.jpg``) or, for a job without a video yet, a picture of its state; its
caption is the prompt's start, the model (when not ours), the state (``states``' words), the
length, the cost and the date. Clicking a tile plays the video, or watches the job from
where it is. The filter narrows the tiles to those whose words contain what is typed.

Imports ``base``, ``form`` (the copy buttons and code box), ``words``, ``callers`` and
``states``.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ..request import KLING, SPECS
from ..service import DEMO, GenerationService
from ..states import PHASE_OF_STATE
from .base import (
    FOCUS_PROMPT_JS,
    HISTORY_LIMIT,
    PRIVATE,
    QUIET,
    PageBase,
    _root,
    _upload_copy,
    _valid_history,
)
from .callers import signed_in
from .form import code_box, copy_buttons
from .from_video import settings_slot
from .studio import form_outputs
from .viewer import viewer_slot
from .words import history_cost, local_time

if TYPE_CHECKING:
    from .wiring import Handlers, Page

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
WAITING = str(ASSETS / "tile-running.svg")
NO_VIDEO = str(ASSETS / "tile-no-video.svg")


@dataclass(frozen=True)
class Tile:
    gid: str
    image: str  # the poster's address, or one of our state pictures
    caption: str


def tile(service: GenerationService, item: dict, job: Any, tz: str | None, root: str) -> Tile:
    """One tile for a history entry (``job`` is its ledger row, None when unknown here)."""
    gid = item["id"]
    if job is None:
        when = local_time(item.get("created_at"), tz)
        prompt = str(item.get("prompt") or "")
        return Tile(gid, NO_VIDEO, f"{_short(prompt)} · unknown (open to check) · {when}")
    when = local_time(job.created_at, tz)
    state = PHASE_OF_STATE.get(job.state, job.state)
    demo = " (demo)" if job.backend == DEMO else ""
    cost = history_cost(job)
    # The prompt first: a narrow tile shows only the caption's start.
    model = job.request.model
    entry = None if model == KLING.model else service.offer().entry(model)
    made_by = [] if model == KLING.model else [entry.name if entry else model]
    length = [f"{job.duration} s"] if job.duration else []
    facts = [_short(job.prompt), *made_by, state + demo, *length] + ([cost] if cost else [])
    caption = " · ".join([*facts, when])
    poster = service.poster_url(job) if root else None  # None until the job is done
    image = root + poster if poster else (NO_VIDEO if job.final else WAITING)
    return Tile(gid, image, caption)


def _short(prompt: str, most: int = 60) -> str:
    prompt = " ".join((prompt or "").split())
    return prompt if len(prompt) <= most else prompt[: most - 1].rstrip() + "…"


def matches(needle: str | None, tile: Tile) -> bool:
    """Whether the tile's words (caption and id) contain every word typed, in any case."""
    words = (needle or "").lower().split()
    text = f"{tile.caption} {tile.gid}".lower()
    return all(word in text for word in words)


@dataclass
class GalleryPanel:
    filter: Any
    gallery: Any
    ids: Any  # gr.State: the ids in the gallery's order
    picked: Any  # gr.State: the id of the tile picked
    remix: Any
    forget: Any
    note: Any
    resume_id: Any
    resume: Any
    copy: dict[str, Any]  # "curl" / "python" -> its button (the picked video's request)
    code: Any  # the code box, hidden until filled (the words go to ``note``)
    cont: Any  # "Continue": the picked video's next part, from its last frame
    chain: Any  # the picked video's chain: its parts, length and price, and downloads
    compare: Any = None  # "Compare": the picked video onto the board (``compare``)
    gif: Any = None  # the picked video as a GIF, and as a WebM, into ``file``
    webm: Any = None
    file: Any = None
    from_video: Any = None  # an MP4 this app made, dropped to fill the form (``from_video``)
    download_all: Any = None  # the finished videos shown, as one ZIP (``sharing``)
    large: Any = None  # "Play large": the viewer over the page (``viewer``)
    viewer: Any = None

    @property
    def actions(self) -> list[Any]:
        """The buttons that act on the picked video (Remix, Continue, Remove, Copy as ...,
        Compare, GIF, WebM)."""
        return [self.remix, self.cont, self.forget, *self.copy.values(), self.compare, self.gif,
                self.webm, self.large]  # fmt: skip


def gallery_section() -> GalleryPanel:
    with gr.Column(elem_id="your-videos"):
        gr.Markdown("## Your videos", elem_id="your-videos-title")
        needle = gr.Textbox(
            label="Filter your videos",
            placeholder="Words of the prompt, a date, a state such as completed or failed",
            elem_id="gallery-filter",
        )
        download_all = gr.Button("Download all shown, as one ZIP", size="sm",
                                 elem_id="download-all")  # fmt: skip
        tiles = gr.Gallery(
            label="Your videos, newest first: click one to play it (or to watch it if it is "
            "still running)",
            columns=4,
            fit_columns=False,
            height="auto",
            buttons=[],
            allow_preview=False,
            object_fit="cover",
            interactive=False,
            elem_id="gallery",
        )
        # What is done to the picked video: off until a tile is picked (``picked_actions``).
        with gr.Row():
            remix = gr.Button(
                "Remix: put its image and settings in the form", interactive=False, elem_id="remix"
            )
            cont = gr.Button("Continue from its last frame", interactive=False, elem_id="continue")
            forget = gr.Button("Remove from history", interactive=False, elem_id="forget")
            copy = copy_buttons("gallery", interactive=False)
        with gr.Row():
            large = gr.Button("Play large", interactive=False, elem_id="play-large")
            compare = gr.Button("Compare: put it on the board", interactive=False,
                                elem_id="compare-add")  # fmt: skip
            gif = gr.Button("Export as GIF", interactive=False, elem_id="export-gif")
            webm = gr.Button("Export as WebM", interactive=False, elem_id="export-webm")
        note = gr.Markdown(elem_id="gallery-note")
        file = gr.File(label="Exported", visible=False, interactive=False, elem_id="gallery-file")
        viewer = viewer_slot()
        chain = gr.Markdown(elem_id="chain-view")
        code = code_box("gallery")
        with gr.Row():
            resume_id = gr.Textbox(
                label="Resume by id",
                placeholder="Paste a generation id (or its first 8 characters)",
                elem_id="resume-id",
                scale=3,
            )
            resume = gr.Button("Resume", elem_id="resume", scale=1, interactive=False)
        from_video = settings_slot()
    return GalleryPanel(
        needle, tiles, gr.State([]), gr.State(""), remix, forget, note, resume_id, resume, copy,
        code, cont, chain, compare, gif, webm, file, from_video, download_all, large, viewer,
    )  # fmt: skip


def picked_actions(picked: str | None) -> list[Any]:
    """The picked video's buttons: on once a tile is picked, off while none is."""
    return [gr.update(interactive=bool(picked))] * 9


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


def listen(handlers: Handlers, page: Page) -> Any:
    """Every status change folds the shown id in and redraws the gallery, so it follows the
    job and no two writers disagree. JavaScript notes the id the instant it shows (fn=None:
    nothing goes to the server). Returns the page load's event (the batch's follows it)."""
    job, videos, owner = page.job, page.videos, page.owner
    views = [page.history, videos.gallery, videos.ids, videos.picked]
    job.gen_id.change(None, [job.gen_id], None, js=NOTE_ID_JS, **QUIET)
    synced = job.status.change(
        handlers.sync,
        [job.gen_id, page.history, page.tz, videos.picked, videos.filter, owner.session],
        views,
        trigger_mode="always_last",
        **QUIET,
    )
    synced.then(handlers.chain_view, [job.gen_id, owner.session], videos.chain, **QUIET)
    filtered = videos.filter.change(
        handlers.filter,
        [videos.filter, page.history, page.tz, videos.picked, owner.session],
        views[1:],
        trigger_mode="always_last",
        **QUIET,
    )
    forgotten = gr.Textbox(visible=False)
    forgot = videos.forget.click(
        handlers.forget,
        [videos.picked, page.tz, page.history, videos.filter, owner.session],
        [*views, forgotten, videos.note],
        **QUIET,
    )
    forgot.then(None, [forgotten], None, js=FORGET_IDS_JS, **QUIET)
    form = page.form
    videos.remix.click(
        handlers.remix_page,
        [videos.picked, owner.session],
        [*form_outputs(form), form.studio.picker, form.prompt, videos.note],
        **QUIET,
    ).then(None, [videos.note], None, js=FOCUS_PROMPT_JS, **QUIET).then(
        handlers.stop_continuing, None, [form.parent, form.continuing, form.uncontinue], **QUIET
    )  # a remix starts a new video: it continues nothing
    pending_ids = gr.Textbox(visible=False)
    loaded = page.blocks.load(
        handlers.restore,
        [pending_ids, page.tz, page.history, owner.stored],
        [*views, page.tz, owner.stored, owner.session],
        js=READ_IDS_JS,
        **PRIVATE,
    )
    # The picked video's buttons follow each writer of the pick (a tile's click is
    # ``progress.listen``'s): off until a tile is picked, or a job shown picks its own.
    for event in (synced, filtered, forgot, loaded):
        follow_pick(event, videos)
    return loaded


def follow_pick(event: Any, videos: GalleryPanel) -> None:
    event.then(picked_actions, videos.picked, videos.actions, queue=False, **QUIET)


BUSY_PICK = (
    "This tab is watching a job. Press Stop watching first (the job carries on at the "
    "server), then click the video to open."
)


class GalleryEvents(PageBase):
    """This browser's history and the gallery drawn from it: the shown job folded in, the
    page load's restore, the filter, a tile's pick, Remove and Remix."""

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
            shown = tile(self.service, item, job, tz, root)
            if matches(needle, shown):
                items.append((shown.image, shown.caption))
                ids.append(shown.gid)
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

    def pick_to_open(self, ids: Any, busy: bool, evt: gr.SelectData) -> tuple[str, str]:
        """``pick``'s id twice: the gallery's pick, and the one the click opens."""
        gid = self.pick(ids, busy, evt)
        return gid, gid

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
        (and a line that says what happened). The image is the one that was sent. (The
        page's Remix is ``remix_page``, which also puts back its model and every field.)"""
        kept, note, image, *_ = self.remixed(gid, owner_token)
        if kept is None:
            return (gr.skip(),) * 5 + (note,)
        return (
            image, kept["prompt"], kept["negative_prompt"], kept["duration"],
            kept["generate_audio"], note,
        )  # fmt: skip

    def remixed(self, gid: str | None, owner_token: str = "") -> tuple:
        """A past job as Remix puts it back: (what the service keeps of it, or None; the
        line that says what happened; copies of its image and its last frame for the form,
        or None where not kept; copies of its reference images)."""
        visitor = self.service.visitor(owner_token, None)
        kept = self.service.remix(gid or "", visitor) if gid else None
        if kept is None:
            pick = "Pick one of your videos in the gallery first, then press Remix."
            return None, pick, None, None, []
        image, last = kept.get("image"), kept.get("last_frame")
        image = _upload_copy(image, "remix.jpg") if image is not None else None
        last = _upload_copy(last, "remix-last.jpg") if last is not None else None
        references = [_upload_copy(path, f"remix-reference-{n}.jpg")
                      for n, path in enumerate(kept.get("references") or [], 1)]  # fmt: skip
        ours = kept.get("model", KLING.model) == KLING.model
        if image is not None or "image" not in SPECS.get(kept.get("model", ""), KLING).roles:
            what = "image, prompt, length, audio and negative prompt (under More settings)"
            if not ours:
                what = f"model ({kept['model']}), images, prompt and every setting it was sent with"
            note = f"Remixed: that job's {what} are in the form. Change what you like, then "
            note += "Generate."
        else:
            note = (
                "Remixed the prompt and settings (the negative prompt is under More settings); "
                "that job's image was not kept (made before images were kept, or cleared), so "
                "add an image."
            )
        return kept, note, image, last, references
