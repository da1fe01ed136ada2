"""The compare board: 2 to 4 of a visitor's videos side by side, played in sync, each with
its model, settings, time taken and price, and the total; the one kept marked; the board
exported as one side-by-side MP4. Also the gallery's GIF and WebM exports of one video.

The board is this browser's (a ``BrowserState``: the ids and the one kept), shown again on
a reload; the server checks every id against the visitor each time (``service.compare``),
so a board can hold only the visitor's own finished videos. Playback is synced in the
browser (``SYNC_JS``): play, pause and seek on any video of the board do the same to the
others; the first plays with sound, the others start muted (four soundtracks at once are
noise). The exports run on the server (``service.export_board``/``export_video``) into a
private folder of Gradio's uploads, swept with them.

Imports the service's boards (``BoardItem``); the events are ``CompareEvents``.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..export import MOST_ON_BOARD
from ..pricing import dollars
from ..service.boards import BoardItem
from .base import OUR_FAULT, QUIET, PageBase, private_upload_folder

if TYPE_CHECKING:
    from .handlers import Handlers
    from .wiring import Page

log = logging.getLogger(__name__)

BOARD_KEY = "kling-ui-board-v1"
EMPTY = {"ids": [], "kept": ""}

# Play, pause and seek together. Media events don't bubble: caught on the way down
# (capture). Each handler only moves a video that differs, so no echo loops back; a video
# that has ended stays at its end while the longer ones play on.
SYNC_JS = """
const videos = () => [...element.querySelectorAll("video")];
const at = (v, t) => Math.min(t, Number.isFinite(v.duration) ? v.duration : t);
let leader = null;
element.addEventListener("play", (e) => {
  if (e.target.tagName !== "VIDEO") return;
  leader = e.target;
  for (const v of videos()) {
    if (v === e.target || !v.paused) continue;
    if (Math.abs(v.currentTime - at(v, e.target.currentTime)) > 0.25) {
      v.currentTime = at(v, e.target.currentTime);
    }
    if (!(v.currentTime >= v.duration)) v.play().catch(() => {});
  }
}, true);
element.addEventListener("pause", (e) => {
  if (e.target.tagName !== "VIDEO" || e.target.ended) return;
  for (const v of videos()) if (v !== e.target && !v.paused) v.pause();
}, true);
element.addEventListener("seeked", (e) => {
  if (e.target.tagName !== "VIDEO") return;
  for (const v of videos()) {
    if (v === e.target) continue;
    const t = at(v, e.target.currentTime);
    if (Math.abs(v.currentTime - t) > 0.25) v.currentTime = t;
  }
}, true);
element.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-act]");
  if (!button) return;
  const all = videos();
  if (button.dataset.act === "play") all.forEach((v) => v.play().catch(() => {}));
  if (button.dataset.act === "pause") all.forEach((v) => v.pause());
  if (button.dataset.act === "start") all.forEach((v) => { v.currentTime = 0; });
});
"""


@dataclass
class ComparePanel:
    box: Any  # the section, shown once a video is on the board
    board: Any  # gr.HTML: the videos, their facts, the controls
    keep: Any  # gr.Radio: the one kept
    export: Any
    clear: Any
    note: Any
    file: Any  # the exported board
    state: Any = None  # gr.BrowserState: {"ids": [...], "kept": id}


def compare_section() -> ComparePanel:
    with gr.Column(elem_id="compare", visible=False) as box:
        gr.Markdown("## Compare", elem_id="compare-title")
        board = gr.HTML("", elem_id="compare-board", js_on_load=SYNC_JS, padding=False)
        keep = gr.Radio([], label="The one you keep", elem_id="compare-keep")
        with gr.Row():
            export = gr.Button("Export the board as one MP4", elem_id="compare-export")
            clear = gr.Button("Clear the board", variant="secondary", elem_id="compare-clear")
        note = gr.Markdown(elem_id="compare-note")
        file = gr.File(label="The board as one MP4", visible=False, interactive=False,
                       elem_id="compare-file")  # fmt: skip
    return ComparePanel(box, board, keep, export, clear, note, file)


def listen(handlers: Handlers, page: Page, loaded: Any) -> None:
    """Compare (a gallery button) puts the picked video on the board; the page load shows
    the board kept in this browser; Keep, Clear and Export; the gallery's GIF and WebM."""
    panel, videos, owner = page.compare, page.videos, page.owner.session
    shown = [panel.state, panel.box, panel.board, panel.keep, panel.note]
    videos.compare.click(handlers.compare_add, [videos.picked, panel.state, owner], shown,
                         **QUIET)  # fmt: skip
    loaded.then(handlers.compare_show, [panel.state, owner], shown, **QUIET)
    panel.keep.input(handlers.compare_keep, [panel.keep, panel.state, owner], shown, **QUIET)
    panel.clear.click(lambda: handlers.compare_show(EMPTY, ""), None, shown, **QUIET)
    panel.export.click(
        handlers.compare_export, [panel.state, owner], [panel.file, panel.note],
        concurrency_limit=1, concurrency_id="exports", **QUIET,
    )  # fmt: skip
    for button, kind in ((videos.gif, "gif"), (videos.webm, "webm")):
        button.click(
            lambda picked, token, kind=kind: handlers.export_one(picked, kind, token),
            [videos.picked, owner], [videos.file, videos.note],
            concurrency_limit=1, concurrency_id="exports", **QUIET,
        )  # fmt: skip


class CompareEvents(PageBase):
    """The board's events: what it shows, what is kept, what is exported."""

    def compare_show(self, state: Any, owner_token: str = "", note: str = "") -> tuple:
        """The board for ``state`` (ids the visitor may no longer see are dropped): the
        state, the section, the board, the keep choice and the note."""
        ids, kept = _ids(state), _kept(state)
        visitor = self.service.visitor(owner_token, None)
        items: list[BoardItem] = []
        for any_id in ids:
            try:
                items.append(self.service.compare([any_id], visitor)[0])
            except errors.KlingUIError:
                continue  # removed, or its video gone: off the board
        known = {i.gid for i in items}
        kept = kept if kept in known else ""
        state = {"ids": [i.gid for i in items], "kept": kept}
        choices = [
            (f"{n}. {i.name} · {_short(i.prompt, 32)}", i.gid) for n, i in enumerate(items, 1)
        ]
        if not items:
            return state, gr.update(visible=False), "", gr.update(choices=[], value=None), note
        if len(items) == 1 and not note:
            note = "Pick another video in the gallery and press Compare (2 to 4 on a board)."
        keep = gr.update(choices=choices, value=kept or None)
        return state, gr.update(visible=True), render(items, kept), keep, note

    def compare_add(self, picked: str | None, state: Any, owner_token: str = "") -> tuple:
        """The picked video onto the board (said in words when it can't go on)."""
        ids = _ids(state)
        if not picked:
            return self.compare_show(state, owner_token, "Pick a video in the gallery first.")
        if picked in ids:
            return self.compare_show(state, owner_token, "That video is on the board already.")
        if len(ids) >= MOST_ON_BOARD:
            words = f"A board shows at most {MOST_ON_BOARD} videos: clear it to start another."
            return self.compare_show(state, owner_token, words)
        visitor = self.service.visitor(owner_token, None)
        try:
            self.service.compare([picked], visitor)
        except errors.KlingUIError as exc:
            return self.compare_show(state, owner_token, exc.user_message)
        added = {"ids": [*ids, picked], "kept": _kept(state)}
        return self.compare_show(added, owner_token, "")

    def compare_keep(self, kept: str | None, state: Any, owner_token: str = "") -> tuple:
        chosen = {"ids": _ids(state), "kept": kept or ""}
        return self.compare_show(chosen, owner_token, "Marked as the one you keep." if kept else "")

    def compare_export(self, state: Any, owner_token: str = "") -> tuple:
        """The board as one MP4, for the file slot (and the words)."""
        visitor = self.service.visitor(owner_token, None)
        try:
            done = self.service.export_board(_ids(state), visitor, _dest("compare-board.mp4"))
        except errors.KlingUIError as exc:
            return gr.update(visible=False, value=None), exc.user_message
        except Exception:  # a bug of ours, or a file that broke mid-way: said in words
            log.exception("the board's export failed")
            return gr.update(visible=False, value=None), OUR_FAULT
        words = f"Exported: {done.seconds:.1f} s, made in {done.took:.1f} s (no sound)."
        return gr.update(visible=True, value=str(done.path)), words

    def export_one(self, picked: str | None, kind: str, owner_token: str = "") -> tuple:
        """The picked video as a GIF or a WebM, for the gallery's file slot."""
        if not picked:
            return gr.update(visible=False, value=None), "Pick a video in the gallery first."
        visitor = self.service.visitor(owner_token, None)
        try:
            done = self.service.export_video(picked, visitor, kind, _dest(f"video.{kind}"))
        except errors.KlingUIError as exc:
            return gr.update(visible=False, value=None), exc.user_message
        except Exception:  # a bug of ours, or a file that broke mid-way: said in words
            log.exception("the %s export failed", kind)
            return gr.update(visible=False, value=None), OUR_FAULT
        cut = " (its first seconds: a GIF is a short loop)" if kind == "gif" else ""
        words = f"{kind.upper()} ready{cut}: {done.seconds:.1f} s."
        return gr.update(visible=True, value=str(done.path), label=f"As {kind.upper()}"), words


def _ids(state: Any) -> list[str]:
    ids = state.get("ids") if isinstance(state, dict) else None
    return [str(i) for i in ids if isinstance(i, str) and i][:MOST_ON_BOARD] if ids else []


def _kept(state: Any) -> str:
    kept = state.get("kept") if isinstance(state, dict) else ""
    return kept if isinstance(kept, str) else ""


def _dest(name: str) -> Path:
    """Where an export goes: a fresh private folder of Gradio's uploads."""
    return private_upload_folder() / name


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "time not known"
    minutes, rest = divmod(round(seconds), 60)
    return f"took {minutes} min {rest} s" if minutes else f"took {rest} s"


def render(items: list[BoardItem], kept: str) -> str:
    """The board's HTML: each video with its facts, the controls, the total. Every word of
    a person's is escaped; addresses are relative (the app may sit under a sub-path)."""
    cells = []
    for n, item in enumerate(items, 1):
        mark = " · ★ kept" if item.gid == kept else ""
        poster = f' poster="{html.escape(item.poster_url.lstrip("/"))}"' if item.poster_url else ""
        muted = " muted" if n > 1 else ""
        price = dollars(item.usd) if item.usd is not None else "price not known"
        facts = " · ".join(f for f in (item.settings, _took(item.seconds), price) if f)
        outline = " kept" if mark else ""
        cells.append(
            f'<figure class="compare-cell{outline}" data-id="{html.escape(item.gid)}">'
            f'<video src="{html.escape(item.video_url.lstrip("/"))}"{poster} controls playsinline'
            f' preload="auto"{muted} aria-label="Video {n}: {html.escape(item.name)}"></video>'
            f"<figcaption><strong>{n}. {html.escape(item.name)}</strong>{mark}<br>"
            f"{html.escape(_short(item.prompt))}<br>{html.escape(facts)}</figcaption></figure>"
        )
    known = [i.usd for i in items if i.usd is not None]
    total = f"Total: {dollars(sum(known))} for {len(items)} videos"
    if len(known) < len(items):
        total += " (some prices not known)"
    controls = (
        '<div class="compare-controls">'
        '<button type="button" data-act="play">Play all</button>'
        '<button type="button" data-act="pause">Pause all</button>'
        '<button type="button" data-act="start">Back to the start</button></div>'
    )
    return (
        f'<div class="compare-grid" data-count="{len(items)}">{"".join(cells)}</div>'
        f'{controls}<p class="compare-total">{html.escape(total)}</p>'
    )


def _short(prompt: str, most: int = 90) -> str:
    prompt = " ".join((prompt or "").split())
    return prompt if len(prompt) <= most else prompt[: most - 1].rstrip() + "…"
