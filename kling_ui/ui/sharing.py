"""Share links on the page: a read-only page for the picked video or the compare board,
for 1, 7 or 30 days, showing only what the visitor ticks (the prompt; the model and its
settings); the visitor's links that still work, each revocable (``service.shares``).

The link's address is the app's own as the visitor reached it (behind a proxy, under a
sub-path). Imports the service's share room's words only; the events are ``ShareEvents``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..service.shares import DAYS
from .base import QUIET, PageBase, _root
from .compare import _ids, _kept

if TYPE_CHECKING:
    from .handlers import Handlers
    from .wiring import Page


# The ZIP's address, opened where the page is: the browser saves it (an attachment).
START_DOWNLOAD_JS = "(url) => { if (url) window.location.assign(url); }"


@dataclass
class SharePanel:
    days: Any
    shows: Any
    video: Any  # "Share the picked video"
    board: Any  # "Share the compare board"
    link: Any
    mine: Any  # the visitor's links that still work
    revoke: Any
    note: Any


def share_section() -> SharePanel:
    label = "Share links: a read-only page for a video or the compare board"
    with gr.Accordion(label, open=False, elem_id="sharing"):
        with gr.Row():
            days = gr.Radio([(f"{d} day" + ("s" if d > 1 else ""), d) for d in DAYS], value=7,
                            label="The link works for", elem_id="share-days")  # fmt: skip
            shows = gr.CheckboxGroup(
                [("The prompt", "prompt"), ("The model, its settings and price", "settings")],
                value=[], label="Besides the videos, the page shows", elem_id="share-shows",
            )  # fmt: skip
        with gr.Row():
            video = gr.Button("Share the picked video", elem_id="share-video")
            board = gr.Button("Share the compare board", elem_id="share-board")
        link = gr.Textbox(
            label="The link: anyone who has it can watch until it ends or you revoke it",
            interactive=False, buttons=["copy"], elem_id="share-link",
        )  # fmt: skip
        with gr.Row(equal_height=True):
            mine = gr.Dropdown([], label="Your links that still work", elem_id="share-mine",
                               scale=3)  # fmt: skip
            revoke = gr.Button("Revoke", variant="stop", elem_id="share-revoke", scale=1)
        note = gr.Markdown(elem_id="share-note")
    return SharePanel(days, shows, video, board, link, mine, revoke, note)


def listen(handlers: Handlers, page: Page, loaded: Any) -> None:
    panel, owner = page.share, page.owner.session
    outputs = [panel.link, panel.mine, panel.note]
    panel.video.click(handlers.share_video,
                      [page.videos.picked, panel.days, panel.shows, owner], outputs,
                      **QUIET)  # fmt: skip
    panel.board.click(handlers.share_board, [page.compare.state, panel.days, panel.shows, owner],
                      outputs, **QUIET)  # fmt: skip
    panel.revoke.click(handlers.share_revoke, [panel.mine, owner], outputs, **QUIET)
    loaded.then(handlers.share_list, [owner], [panel.mine], **QUIET)
    url = gr.Textbox(visible=False)
    page.videos.download_all.click(
        handlers.download_all_page, [page.videos.ids, owner], [url, page.videos.note], **QUIET
    ).then(None, [url], None, js=START_DOWNLOAD_JS, **QUIET)


class ShareEvents(PageBase):
    """Make, list and revoke the visitor's share links."""

    def _share(self, ids: list[str], kept: str, days: Any, shows: Any, owner_token: str,
               request: Any) -> tuple:  # fmt: skip
        visitor = self.service.visitor(owner_token, None)
        try:
            path = self.service.share(visitor, ids, kept=kept, days=int(days or 7),
                                      shows=tuple(shows or ()))  # fmt: skip
        except (errors.KlingUIError, ValueError) as exc:
            words = exc.user_message if isinstance(exc, errors.KlingUIError) else str(exc)
            return gr.skip(), gr.skip(), words
        what = "video" if len(ids) == 1 else f"board of {len(ids)} videos"
        note = f"Share link made for the {what}: copy it above. It shows only the videos"
        note += "".join(f", the {s}" for s in ("prompt", "settings") if s in (shows or ()))
        note += "."
        return _root(request) + path, self.share_list(owner_token), note

    def share_video(self, picked: str | None, days: Any, shows: Any, owner_token: str = "",
                    request: gr.Request = None) -> tuple:  # type: ignore[assignment]  # fmt: skip
        if not picked:
            return gr.skip(), gr.skip(), "Pick a video in the gallery first, then share it."
        return self._share([picked], "", days, shows, owner_token, request)

    def share_board(self, state: Any, days: Any, shows: Any, owner_token: str = "",
                    request: gr.Request = None) -> tuple:  # type: ignore[assignment]  # fmt: skip
        ids = _ids(state)
        if len(ids) < 2:
            return gr.skip(), gr.skip(), "Put 2 to 4 videos on the compare board to share it."
        return self._share(ids, _kept(state), days, shows, owner_token, request)

    def share_list(self, owner_token: str = "") -> Any:
        visitor = self.service.visitor(owner_token, None)
        rows = self.service.shares_of(visitor)
        choices = [
            (f"{len(r.job_ids)} video{'s' if len(r.job_ids) > 1 else ''}, made "
             f"{_when(r.created_at)}, until {_when(r.expires_at)}", r.share_id)
            for r in rows
        ]  # fmt: skip
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def share_revoke(self, share_id: str | None, owner_token: str = "") -> tuple:
        visitor = self.service.visitor(owner_token, None)
        if not share_id:
            return gr.skip(), gr.skip(), "Pick one of your links to revoke."
        done = self.service.revoke_share(share_id, visitor)
        words = "Revoked: that link no longer works." if done else "That link had already ended."
        return "", self.share_list(owner_token), words

    def download_all_page(self, ids: Any, owner_token: str = "",
                          request: gr.Request = None) -> tuple:  # type: ignore[assignment]  # fmt: skip
        """The visitor's finished videos among those shown, as a ZIP link (and words)."""
        visitor = self.service.visitor(owner_token, None)
        shown = [str(i) for i in ids] if isinstance(ids, list) else []
        try:
            path, count = self.service.download_all(visitor, shown)
        except errors.KlingUIError as exc:
            return "", exc.user_message
        url = _root(request) + path
        words = f"{count} video{'s' if count > 1 else ''} as one ZIP: the download starts now. "
        words += f"If it doesn't, [download it here]({url}) (the link works for 15 minutes)."
        return url, words


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
