"""Copy as code: the form as it stands, or the picked video's request, as cURL or Python
(``snippets``, from the request value) in its place's box, then to the clipboard. The
buttons and boxes are laid out by the form and the gallery (``copy_buttons``,
``code_box``); these are their events (``CodeEvents``) and their wiring (``listen``).

The form's code takes what the form asked for whole (``form.with_request`` makes it, once).

Imports ``base``, ``form`` (the buttons' names, ``with_request``, ``made``) and
``snippets``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors, snippets
from ..request import reference_roles, spec_of
from .base import QUIET, PageBase
from .form import COPY_BUTTONS, Asked, made, studio_inputs, with_request

if TYPE_CHECKING:
    from .wiring import Handlers, Page

# After "Copy as ...": the code to the clipboard, where the browser allows it (a secure page,
# a recent click); else the code box's own copy button does it. The note says which.
COPY_CODE_JS = """async (code, note) => {
  if (!code) return [note];
  try {
    await navigator.clipboard.writeText(code);
    return [`${note} Copied to the clipboard.`];
  } catch (e) {
    return [`${note} This browser did not let the page copy it: use the code's copy button.`];
  }
}"""


def listen(handlers: Handlers, page: Page) -> None:
    """Copy as cURL or Python: the form as it stands, or the picked video's request, as
    code in its place's box, then to the clipboard. (Like Remix: private, the picked id and
    the browser's owner token in.) A newly picked tile hides the last one's code."""
    form, videos, owner = page.form, page.videos, page.owner.session
    fields = [form.image, form.prompt, form.negative, form.duration, form.audio,
              *studio_inputs(form)]  # fmt: skip
    for kind, button in form.copy.items():
        button.click(
            with_request(partial(handlers.code_for_form, kind), studio=handlers.sent_plan),
            fields,
            [form.code, form.code_note],
            **QUIET,
        ).then(None, [form.code, form.code_note], [form.code_note], js=COPY_CODE_JS, **QUIET)
    for kind, button in videos.copy.items():
        button.click(
            partial(handlers.code_for_job, kind),
            [videos.picked, owner],
            [videos.code, videos.note],
            **QUIET,
        ).then(None, [videos.code, videos.note], [videos.note], js=COPY_CODE_JS, **QUIET)
    videos.gallery.select(
        lambda: gr.update(value="", visible=False), None, videos.code, queue=False, **QUIET
    )


# Copy as code: what each kind is called on the page.
CODE_NAMES = {"curl": "cURL", "python": "Python (requests)"}

NOTHING_PICKED = "Pick one of your videos in the gallery first, then press {button}."

ADOPTED = (
    "That video was opened by its id, not made here, so its prompt and settings aren't "
    "known: there is nothing to copy."
)


class CodeEvents(PageBase):
    """Copy as cURL or Python: the form as it stands, or a picked video's request."""

    def code_for_form(
        self, kind: str, image: str | None, asked: Asked, end_image: str | None = None
    ) -> tuple[Any, str]:
        """The form as it stands as code (``kind``: "curl" or "python") to run outside the
        app, and a line of words. ``asked``: the form's request for the model whose form is
        shown (``form.with_request``), or why its fields make none. What Generate would
        refuse gives the page's own words and no code. Each image (and ``end_image``, the
        last frame, where the model takes one) is named by its file's name (Gradio keeps it
        in the upload's path); the key is not an input here, so it can't end up in the
        code."""
        name = Path(image).name if image else ""
        last = Path(end_image).name if end_image else ""
        try:
            if isinstance(asked, errors.InputError) and name:
                snippets.mime_type(name)  # the image is named before the other fields
            code = snippets.SNIPPETS[kind](name, made(asked), last_name=last)
        except errors.InputError as exc:
            return _no_code(), f"⚠ {exc.user_message}"
        files = " and the images from their files" if last else " and the image from its file"
        files = files if name or last else ""
        note = (
            f"{CODE_NAMES[kind]} of the form as it stands. It reads your key from the "
            f"`AIMLAPI_KEY` variable (it is never written in){files}."
        )
        if reference_roles(made(asked).images):
            field = spec_of(made(asked).model).references
            note += (
                f" The reference images are not in it: add them to `{field}` as https links "
                "or data URIs."
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
        # Each image the job was sent with (kept here), or that its model needs.
        first = snippets.JOB_IMAGE if self.service.input_image(job) else ""
        last = snippets.JOB_LAST_FRAME if self.service.input_image(job, "last_frame") else ""
        try:
            if not first and "image" in spec_of(job.request.model).needs():
                first = snippets.JOB_IMAGE
            images = snippets.images_of(job.request, first, last)
            code = snippets.SNIPPETS[kind](first, job.request, sent_by=job.shown_id, last_name=last)
        except errors.InputError as exc:
            return _no_code(), f"⚠ {exc.user_message}"
        note = f"{CODE_NAMES[kind]} of that video's request."
        if len(images) == 1:
            note += (
                f" Its image is `{snippets.JOB_IMAGE}` in the code: Remix puts the image it "
                "sent back in the form."
            )
        elif images:
            names = " and ".join(f"`{name}`" for name in images.values())
            note += f" Its images are {names} in the code: Remix puts them back in the form."
        return _code(kind, code), note


def _code(kind: str, code: str) -> Any:
    """The code box, shown, in the kind's language."""
    label = f"The create request as {CODE_NAMES[kind]}"
    return gr.update(value=code, language=snippets.LANGUAGES[kind], label=label, visible=True)


def _no_code() -> Any:
    """The code box emptied and hidden: no code is better than stale code."""
    return gr.update(value="", visible=False)
