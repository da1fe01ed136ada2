"""The large viewer: the picked video played large over the page, with the gallery's other
finished videos a key press away (← and →), Escape to close; Download and Copy link for the
one shown.

The server gives the list once, when "Play large" is pressed (the gallery's finished videos
in its order, each checked against the visitor: ``service.finished``); moving through it
and the keys are the browser's (``OPEN_JS``). Addresses are relative (the app may sit under
a sub-path); Copy link copies the video's whole address.

Imports the service's boards (``BoardItem``); the events are ``ViewerEvents``.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

import gradio as gr

from .base import QUIET, PageBase

if TYPE_CHECKING:
    from .handlers import Handlers
    from .wiring import Page

# Opens the viewer the server drew (or shows it again: Escape hides it), at its start
# video; its keys and buttons are set up once for each list of videos.
OPEN_JS = """() => {
  const root = document.querySelector("#viewer .viewer");
  if (!root) return;
  if (!root.dataset.ready) {
    root.dataset.ready = "1";
    const items = JSON.parse(root.dataset.items || "[]");
    const video = root.querySelector("video"), caption = root.querySelector("figcaption");
    const link = root.querySelector("a[data-act=download]");
    const count = root.querySelector(".viewer-count");
    let at = 0;
    const show = (n) => {
      at = (n + items.length) % items.length;
      const item = items[at];
      video.src = item.url; video.poster = item.poster || "";
      caption.textContent = item.caption;
      link.href = item.url; link.setAttribute("download", item.name);
      count.textContent = `${at + 1} of ${items.length}`;
      video.play().catch(() => {});
    };
    const close = () => {
      video.pause(); root.hidden = true;
      document.querySelector("#play-large")?.focus();
    };
    root.addEventListener("click", (e) => {
      const act = e.target.closest("[data-act]")?.dataset.act;
      if (act === "prev") show(at - 1);
      if (act === "next") show(at + 1);
      if (act === "close" || e.target === root) close();
      if (act === "copy") {
        const url = new URL(items[at].url, document.baseURI).href;
        const said = () => { count.textContent = "Link copied"; };
        navigator.clipboard?.writeText(url).then(said, () => { count.textContent = url; });
      }
    });
    root.addEventListener("keydown", (e) => {
      if (e.key === "ArrowLeft") { show(at - 1); e.preventDefault(); }
      else if (e.key === "ArrowRight") { show(at + 1); e.preventDefault(); }
      else if (e.key === "Escape") { close(); e.preventDefault(); }
    });
    root.showAt = show;
  }
  root.hidden = false;
  root.showAt(Number(root.dataset.start || 0));
  root.focus();
}"""


def viewer_slot() -> Any:
    return gr.HTML("", elem_id="viewer", padding=False)


def listen(handlers: Handlers, page: Page) -> None:
    videos, owner = page.videos, page.owner.session
    videos.large.click(
        handlers.play_large, [videos.ids, videos.picked, owner], [videos.viewer, videos.note],
        **QUIET,
    ).then(None, None, None, js=OPEN_JS, **QUIET)  # fmt: skip


class ViewerEvents(PageBase):
    def play_large(self, ids: Any, picked: str | None, owner_token: str = "") -> tuple:
        """The viewer over the page, at the picked video (and the words when it can't)."""
        shown = [str(i) for i in ids] if isinstance(ids, list) else []
        visitor = self.service.visitor(owner_token, None)
        items = self.service.finished(shown, visitor)
        if not picked or not items:
            return "", "Pick a finished video in the gallery first."
        start = next((n for n, item in enumerate(items) if item.gid == picked), None)
        if start is None:
            return "", "That video has no finished video to play yet."
        return render(items, start), ""


def render(items: list[Any], start: int) -> str:
    """The viewer's frame; the videos go in its ``data-items`` (JSON, escaped)."""
    data = [
        {"url": i.video_url.lstrip("/"), "poster": (i.poster_url or "").lstrip("/"),
         "caption": f"{i.prompt} · {i.name}", "name": i.path.name}
        for i in items
    ]  # fmt: skip
    return (
        f'<div class="viewer" role="dialog" aria-modal="true" aria-label="Your videos, large" '
        f'tabindex="-1" data-start="{start}" data-items="{html.escape(json.dumps(data))}">'
        '<div class="viewer-frame">'
        '<button type="button" data-act="close" aria-label="Close (Escape)">×</button>'
        "<figure><video controls playsinline></video><figcaption></figcaption></figure>"
        '<div class="viewer-actions">'
        '<button type="button" data-act="prev" aria-label="Previous video (←)">← Previous</button>'
        '<a data-act="download" href="#">Download</a>'
        '<button type="button" data-act="copy">Copy link</button>'
        '<span class="viewer-count" aria-live="polite"></span>'
        '<button type="button" data-act="next" aria-label="Next video (→)">Next →</button>'
        "</div></div></div>"
    )
