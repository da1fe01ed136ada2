"""The batch section: many images with many prompts, queued at once and followed in a
table.

The browser keeps the batch it queued last (``kept``, a ``gr.BrowserState`` like the
history): after a reload the table is rebuilt from the ledger, this browser's own jobs only,
each row with its video's first frame and a link that plays it. The batch's videos are in
Your videos too, like any other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from .base import PRIVATE, QUIET

if TYPE_CHECKING:
    from .wiring import Handlers, Page


@dataclass
class BatchPanel:
    images: Any
    prompts: Any
    takes: Any
    queue: Any
    result: Any
    table: Any
    cancel: Any
    timer: Any
    progress: Any
    note: Any
    price: Any
    kept: Any  # gr.BrowserState: the last batch queued here (its id and items)


BATCH_KEY = "kling-ui-batch-v1"
COLUMNS = ["Video", "Image", "Prompt", "Take", "State", "Id", "Message"]
# Wide enough for each header on one line (a squeezed column broke "Image" letter by letter);
# the prompt, the id and the message share the rest, and wrap.
COLUMN_WIDTHS = ["140px", "76px", "24%", "68px", "112px", "22%", "20%"]


def batch_section(secret: str) -> BatchPanel:
    """The section; ``secret`` encrypts the batch kept in the browser (the history's)."""
    with gr.Accordion("Batch: many images, many prompts", open=False, elem_id="batch"):
        gr.Markdown(
            "Every image with every prompt (one prompt a line), each as many times as "
            "**Takes** says. Negative prompt, duration, audio and key come from the form above. "
            "Every item is checked before anything is sent; the server sends them as slots "
            "free up and finishes them whether or not this page stays open."
        )
        with gr.Row():
            images = gr.File(
                label="Images", file_count="multiple", file_types=["image"], type="filepath",
                elem_id="batch-images",
            )  # fmt: skip
            with gr.Column():
                prompts = gr.Textbox(label="Prompts, one a line", lines=4, elem_id="batch-prompts")
                takes = gr.Slider(1, 4, value=1, step=1, label="Takes", elem_id="batch-takes")
        price = gr.Markdown(elem_id="batch-price")
        with gr.Row():
            queue = gr.Button("Queue the batch", variant="primary", elem_id="batch-queue")
            cancel = gr.Button("Cancel items not yet sent", elem_id="batch-cancel")
        note = gr.Markdown(elem_id="batch-note")
        result = gr.JSON(visible=False, elem_id="batch-result")  # the /batch answer, kept
        table = gr.Dataframe(
            headers=COLUMNS,
            datatype=["markdown", "number", "str", "number", "str", "str", "str"],
            column_widths=COLUMN_WIDTHS,
            interactive=False,
            wrap=True,
            elem_id="batch-table",
        )
        progress = gr.Textbox(visible=False, elem_id="batch-progress")
        timer = gr.Timer(2.0, active=False)
    kept = gr.BrowserState({}, storage_key=BATCH_KEY, secret=secret)
    return BatchPanel(
        images, prompts, takes, queue, result, table, cancel, timer, progress, note, price, kept
    )


def listen(handlers: Handlers, page: Page, restored: Any) -> None:
    """The batch: queued at once (the ``/batch`` API), then a table that follows it. The
    browser keeps the batch (``batch.kept``): after a reload (once ``restored`` has run) the
    table is rebuilt from the ledger. Its jobs are in the history, and the gallery is redrawn
    as its items end, so each tile gets its poster."""
    form, batch, owner, videos = page.form, page.batch, page.owner, page.videos
    views = [batch.table, batch.timer, batch.progress, batch.note]
    mine = [batch.kept, owner.session]
    gallery = [page.history, videos.gallery, videos.ids, videos.picked]
    into_history = [batch.kept, page.history, page.tz, videos.picked, videos.filter,
                    owner.session]  # fmt: skip
    # With --mcp, /batch stays the page's own: a list of files can't be an MCP tool in
    # Gradio 6.31 (its schema is broken); agents have ``submit``.
    api = PRIVATE if handlers.service.settings.mcp else {"api_name": "batch"}
    batch.queue.click(
        handlers.batch,
        inputs=[batch.images, batch.prompts, form.negative, form.duration, form.audio,
                batch.takes, form.api_key, owner.session, page.fit],
        outputs=[batch.result],
        **api,
    ).then(handlers.keep_batch, batch.result, batch.kept, **QUIET).then(
        handlers.batch_view, [batch.result, owner.session], views, **QUIET
    ).then(handlers.batch_history, into_history, gallery, **QUIET)  # fmt: skip
    batch.timer.tick(handlers.batch_view, mine, views, **QUIET)
    batch.cancel.click(handlers.cancel_waiting, mine, views, **QUIET)
    batch.progress.change(handlers.batch_history, into_history, gallery, **QUIET)
    restored.then(
        handlers.batch_restore,
        [batch.kept, page.history, page.tz, videos.filter, owner.session],
        [*gallery, *views],
        **QUIET,
    )
