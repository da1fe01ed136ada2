"""Settings from a video: an MP4 this app made, dropped on the page, fills the form with how
it was made (``provenance``); ``/settings_from_video`` answers programs with the same.

On the page the slot sits under the gallery. The form gets the video's model and every
field it was sent with, and its prompt; its images too when the video is one of this
browser's own jobs kept here (Remix's path). The pictures are never in the file, so for
another person's video, or one from another copy of the app, the images already in the form
stay. A file the app did not make is answered in words and changes nothing.

Imports ``provenance`` and the studio's outputs; the events are ``FromVideoEvents``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..provenance import Made, read
from .base import FOCUS_PROMPT_JS, QUIET, PageBase, _md
from .studio import OUTPUTS, form_outputs

if TYPE_CHECKING:
    from .handlers import Handlers
    from .wiring import Page

SLOT_LABEL = "Settings from a video: drop an MP4 this app made to put its settings in the form"


def settings_slot() -> Any:
    """The file slot (MP4 only), small: it is the gallery's last tool."""
    return gr.File(
        label=SLOT_LABEL,
        file_types=[".mp4"],
        file_count="single",
        type="filepath",
        height=90,
        elem_id="settings-from-video",
    )


def listen(handlers: Handlers, page: Page) -> None:
    """Dropped on the page: the form filled, the slot emptied, the prompt focused. For
    programs: ``/settings_from_video`` (a file in, JSON out; not with ``--mcp``, whose tools
    are the agents' own, ``agents``)."""
    form, videos, owner = page.form, page.videos, page.owner
    slot = videos.from_video
    slot.upload(
        handlers.settings_from_video_page,
        [slot, owner.session],
        [*form_outputs(form), form.studio.picker, form.prompt, videos.note, slot],
        **QUIET,
    ).then(None, [videos.note], None, js=FOCUS_PROMPT_JS, **QUIET).then(
        handlers.stop_continuing, None, [form.parent, form.continuing, form.uncontinue], **QUIET
    )  # fmt: skip
    if handlers.service.settings.mcp:  # not an agent's tool: Gradio would fetch its links
        return
    answer = gr.Textbox(visible=False)
    gr.Button(visible=False, elem_id="api-settings-from-video").click(
        handlers.settings_from_video, [slot], answer, api_name="settings_from_video",
        concurrency_limit=4,  # each opens a file with FFmpeg
    )  # fmt: skip


class FromVideoEvents(PageBase):
    """Reading an MP4's settings, for the page and for programs."""

    def settings_from_video(self, video: Any) -> str:
        """How a video this app made was made (free; sends nothing). Answers JSON: model, prompt, negative_prompt, options (every field it was sent with), images (the roles of the images it was made from; the pictures are not in the file), job_id, made_at, version, parts (for a stitched chain); or error, in words.

        Args:
            video: The MP4 file.
        """
        try:
            made = read(_path(video))
        except errors.KlingUIError as exc:
            return json.dumps({"error": exc.user_message})
        return json.dumps(made.to_dict(), ensure_ascii=False)

    def settings_from_video_page(self, video: Any, owner_token: str = "") -> tuple[Any, ...]:
        """The form as the video was made (``form_outputs``), then the picker, the prompt,
        the gallery's note and the emptied slot. Nothing changes but the note for a file
        the app did not make."""
        try:
            made = read(_path(video))
        except errors.KlingUIError as exc:
            return (gr.skip(),) * (len(OUTPUTS) + 2) + (exc.user_message, None)
        visitor = self.service.visitor(owner_token, None)
        if made.job_id and self.service.remix(made.job_id, visitor) is not None:
            # One of this browser's own, kept here: Remix's path, images and all.
            *form, note = self.remix_page(made.job_id, owner_token)  # type: ignore[attr-defined]
            return (*form, f"{note} (Found from the video's settings.)", None)
        form = list(self.form_for(made.model, made.options))  # type: ignore[attr-defined]
        shown = form[0]
        return (*form, shown, made.prompt, _note(made, shown), None)


def _path(video: Any) -> str:
    if isinstance(video, dict):
        video = video.get("path")
    if not video:
        raise errors.InputError("Drop an MP4 this app made to read its settings.")
    return str(video)


def _note(made: Made, shown: str) -> str:
    """What the form now holds, and what it could not take from the file."""
    when = f", made {made.made_at.replace('T', ' ').removesuffix('Z')} UTC" if made.made_at else ""
    model = _md(made.model)  # from a dropped file: no link or markup of its making
    if shown != made.model:
        return (
            f"Remixed the prompt from the video; its model ({model}) is not offered here, "
            f"so the form is {shown}'s: check the settings, then Generate."
        )
    words = (
        f"Remixed from the video ({model}{_md(when, None)}): its prompt and every setting are in "
    )
    words += "the form."
    if made.images:
        words += " Its images are not in the file: the form keeps the ones it has, so add or "
        words += "check the image, then Generate."
    else:
        words += " Change what you like, then Generate."
    return words
