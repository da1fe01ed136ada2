"""Copy as code: the form as it stands, or the picked video's request, as cURL or Python
(``snippets``) in its place's box, then to the clipboard. The buttons and boxes are laid out
by the form and the gallery (``copy_buttons``, ``code_box``); these are their events.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import gradio as gr

from .base import QUIET

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
    fields = [form.image, form.prompt, form.negative, form.duration, form.audio]
    for kind, button in form.copy.items():
        button.click(
            partial(handlers.code_for_form, kind), fields, [form.code, form.code_note], **QUIET
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
