"""The price beside Generate and the batch's: their events (the Markdown they write to is
laid out by the form and the batch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from .base import QUIET
from .batch import BatchPanel
from .form import Form

if TYPE_CHECKING:
    from .handlers import Handlers


def listen(handlers: Handlers, page: gr.Blocks, form: Form, batch: BatchPanel) -> None:
    """The price beside Generate and the batch's, as the inputs that set them change (the
    key's field when it is left, since the balance is read with it). The batch's follows
    the prompts and the takes as they are typed, not when the box is left; the last
    keystroke's price wins (``always_last``)."""
    single = [form.duration, form.audio, form.api_key]
    for source in (form.duration.change, form.audio.change, form.api_key.blur, page.load):
        source(handlers.price_view, single, form.price, **QUIET)
    many = [batch.images, batch.prompts, batch.takes, form.duration, form.audio, form.api_key]
    for event in (batch.images.change, batch.prompts.change, batch.takes.change,
                  form.duration.change, form.audio.change):  # fmt: skip
        event(handlers.batch_price, many, batch.price, trigger_mode="always_last", **QUIET)
