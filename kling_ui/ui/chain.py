"""Longer videos: Continue (a finished video's last frame in the form's image, the next
Generate continuing it) and the picked video's chain (its parts, length, price and
downloads), read through the service's ``continuation`` and ``chain_view`` (which reads
only: a view never writes the ledger nor stitches; the whole video is stitched when its
address is asked for). The layout is the form's (``continuing``, "Start a new video instead"),
the job's (Continue this video) and the gallery's (Continue, the chain's view); these are
their events (``ChainEvents``) and their wiring (``listen``).

Imports ``base``, ``words`` and ``pricing`` (``dollars``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..pricing import dollars
from .base import FOCUS_PROMPT_JS, QUIET, PageBase, _md, _root, _upload_copy
from .words import history_cost

if TYPE_CHECKING:
    from .wiring import Handlers, Page


def listen(handlers: Handlers, page: Page) -> None:
    """Continue (the current video, or the one picked in the gallery): its last frame in the
    form's image, the next Generate continuing it; a new image or "Start a new video
    instead" ends that. (The picked video's chain, under the gallery: ``gallery.listen``.)"""
    form, job, videos, owner = page.form, page.job, page.videos, page.owner.session
    shown = [form.image, form.parent, form.continuing, form.uncontinue]
    for button, source in ((job.cont, job.gen_id), (videos.cont, videos.picked)):
        button.click(handlers.continue_video, [source, form.duration, owner], shown, **QUIET).then(
            None, [form.continuing], None, js=FOCUS_PROMPT_JS, **QUIET
        )
    ended = [form.parent, form.continuing, form.uncontinue]
    for event in (form.uncontinue.click, form.image.upload, form.image.clear):
        event(handlers.stop_continuing, None, ended, **QUIET)


class ChainEvents(PageBase):
    """Continue a finished video from its last frame, and the picked video's chain."""

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
        view = self.service.chain_view(job)  # reads only: never writes nor stitches
        parts = view.parts
        if len(parts) < 2:
            return ""
        root = _root(request)
        lines = []
        for n, (part, url) in enumerate(zip(parts, view.part_urls, strict=True), 1):
            link = f" · [download part]({root}{url})" if url else ""
            cost = history_cost(part)
            lines.append(f"{n}. {_md(part.prompt)} · {part.duration} s · {cost}{link}")
        costs = [p.cost_usd for p in parts]
        known = None not in costs
        total = dollars(sum(c for c in costs if c is not None)) if known else "price not known yet"
        whole = ""
        if view.whole_url is not None:
            whole = f" · [download the whole video]({root}{view.whole_url})"
        seconds = sum(p.duration for p in parts)
        head = f"**Chain of {len(parts)} parts: {seconds} s, {total}**{whole}"
        if not view.complete:
            head += " (its earlier parts were removed after their days here)"
        return "\n".join([head, "", *lines])


def _seconds(duration: Any) -> int:
    try:
        return int(duration)
    except (TypeError, ValueError):
        return 5
