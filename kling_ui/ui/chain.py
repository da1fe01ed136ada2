"""Longer videos: Continue (a finished video's last frame in the form's image, the next
Generate continuing it) and the picked video's chain (its parts, length, price and
downloads). The layout is the form's (``continuing``, "Start a new video instead"), the
job's (Continue this video) and the gallery's (Continue, the chain's view); these are
their events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import FOCUS_PROMPT_JS, QUIET

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
