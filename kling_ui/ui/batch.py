"""The batch section: many images with many prompts, queued at once and followed in a
table. Its layout (``batch_section``), its events (``BatchEvents``: the ``/batch`` API, the
table, its price's count, cancel) and their wiring (``listen``).

The browser keeps the batch it queued last (``kept``, a ``gr.BrowserState`` like the
history): after a reload the table is rebuilt from the ledger, this browser's own jobs only,
each row with its video's first frame and a link that plays it. The batch's videos are in
Your videos too, like any other (``BatchEvents`` is built on the gallery's events).

Imports ``base``, ``fields`` (``/batch`` takes the model's fields as one mapping, published
as the spec's parameters), ``gallery`` (its events, for the history), ``request`` (the spec),
``states`` and the service's ``MAX_BATCH``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..request import KLING, Request, spec_of
from ..service import MAX_BATCH
from ..states import PHASE_OF_STATE
from .base import OUR_FAULT, PRESS_AGAIN, PRIVATE, QUIET, _root, _valid_history
from .fields import Fields, priced_part, takes_fields
from .gallery import GalleryEvents
from .studio import options_from

if TYPE_CHECKING:
    from .wiring import Handlers, Page

log = logging.getLogger(__name__)


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
            queue = gr.Button(
                "Queue the batch", variant="primary", elem_id="batch-queue", interactive=False
            )  # on once the page load has run (``progress.ready``)
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
    # /batch for programs (a hidden trigger): the fields it always had, then a model and its
    # other fields (left out: our model, as before; ``old_calls`` fills them in over HTTP).
    if not handlers.service.settings.mcp:
        gr.Button(visible=False, elem_id="api-batch").click(
            handlers.batch,
            inputs=[batch.images, batch.prompts, form.negative, form.duration, form.audio,
                    batch.takes, form.api_key, owner.session, page.fit,
                    gr.Textbox(value="", visible=False), gr.Textbox(value="", visible=False)],
            outputs=[batch.result], api_name="batch",
        )  # fmt: skip
    # The page's: the model whose form is shown, with its fields.
    studio = form.studio
    shown = [studio.shown, form.negative, form.duration, form.audio, *studio.slots.values()]

    def batch_page(request: gr.Request, *inputs: Any) -> dict:
        # Gradio hands its request to a leading parameter only, and the fields are many.
        return handlers.batch_page(*inputs, request=request)

    batch.queue.click(
        batch_page,
        inputs=[batch.images, batch.prompts, batch.takes, form.api_key, owner.session,
                page.fit, *shown],
        outputs=[batch.result],
        **PRIVATE,
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


BATCH_FIT = (
    "Choose Crop or Pad under Image fit in More settings (it applies to the whole batch), "
    "or use another image."
)


class BatchEvents(GalleryEvents):
    """The batch: queued at once, its table from the ledger, kept in the browser, its jobs
    folded into the history (``GalleryEvents``), its waiting items cancelled."""

    # ``fields``: the model's, published as its parameters (its docstring is the API's
    # description, so it is said here).
    @takes_fields(KLING, defaults=False)
    def batch(
        self,
        images: list[str] | None,
        prompts: str,
        fields: Fields,
        takes: int,
        api_key: str,
        owner_token: str = "",
        fit: str = "reject",
        model: str = "",
        options: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Queue images x prompts (one a line) x takes; returns at once with every job's id.

        Every item is checked first: one bad item refuses the whole batch, named. ``fit``
        is the form's Image fit (More settings): a batch image too wide or too tall is
        cropped or padded by it, else refused with words that name that setting. ``model``
        (empty: Kling v2.6 Pro image to video; /models lists the others; one that makes
        video from text takes no images: prompts x takes) and ``options`` (a JSON object of
        its other fields, /model_schema; they win over negative_prompt, duration and
        generate_audio, which apply where the model declares them), for every item."""
        if not str(model or "").strip() and not str(options or "").strip():
            return self._queue(images, prompts, fields, takes, api_key, owner_token, fit,
                               request)  # fmt: skip
        try:  # the batch's shared fields, checked as one line's request
            shared = self.model_request(None, "-", fields, model, options, needs_image=False)  # type: ignore[attr-defined]
        except errors.InputError as exc:
            return {"error": exc.user_message, "items": []}
        return self._queue(images, prompts, dict(shared.options), takes, api_key, owner_token,
                           fit, request, model=shared.model)  # fmt: skip

    def _queue(
        self, images: list[str] | None, prompts: str, fields: Fields, takes: int, api_key: str,
        owner_token: str, fit: str, request: gr.Request | None, *, model: str = KLING.model,
    ) -> dict:  # fmt: skip
        """``batch`` for ``model`` (its ``fields``: ours, or another model's own)."""
        visitor = self._visitor(owner_token, request)
        fit = fit if fit in ("crop", "pad") else "reject"
        try:
            takes_images = "image" in spec_of(model).roles
            count = _batch_count(images, prompts, takes, needs_images=takes_images)
            if model == KLING.model:
                priced: Any = priced_part(KLING, fields)
            else:  # one line's request prices each (the prompt is not priced)
                priced = Request.make("-", model=model, **fields)
            low = count and self._unconfirmed_low_balance(visitor, api_key, priced, count)
            if low:
                again = PRESS_AGAIN.replace("Generate", "Queue the batch")
                return {"error": f"{low} {again}", "items": []}
            return self.service.batch(
                images, prompts, takes=takes, api_key=api_key, fit=fit, owner=visitor,
                fields=fields, model=model,
            )  # fmt: skip
        except errors.RatioOutOfRange as exc:
            return {"error": f"{exc.facts} {BATCH_FIT}", "items": []}
        except errors.KlingUIError as exc:
            return {"error": exc.user_message, "items": []}
        except Exception:
            log.exception("batch failed unexpectedly")
            return {"error": OUR_FAULT, "items": []}

    def batch_page(
        self,
        images: list[str] | None,
        prompts: str,
        takes: int,
        api_key: str,
        owner_token: str,
        fit: str,
        model: str,
        *values: Any,
        request: gr.Request | None = None,
    ) -> dict:
        """The page's batch: ``batch`` for the model whose form is shown (``model``;
        ``values``: the form's negative prompt, length and audio switch, then its spare
        fields), each line with that model's fields."""
        try:
            shown = self.sent_plan(model)  # type: ignore[attr-defined]
        except errors.InputError as exc:
            return {"error": exc.user_message, "items": []}
        if shown.model == KLING.model:
            negative, length, sound, *_ = values
            fields = {"negative_prompt": negative, "duration": length, "generate_audio": sound}
            return self._queue(images, prompts, fields, takes, api_key, owner_token, fit,
                               request)  # fmt: skip
        options = options_from(shown, values)
        return self._queue(images, prompts, options, takes, api_key, owner_token, fit,
                           request, model=shown.model)  # fmt: skip

    def batch_view(
        self,
        result: Any,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, str, str]:
        """The batch as a table, whether to keep refreshing it, its progress ("2/5"), and a
        line of words (what was queued, or why nothing was). ``result`` is the ``/batch``
        answer, or what the browser kept of it (``keep_batch``); the rows are the ledger's,
        this browser's own jobs only, each with its video's first frame and a play link."""
        result = result if isinstance(result, dict) else {}
        if result.get("error"):
            return gr.update(value=[]), gr.Timer(active=False), "", f"⚠ {result['error']}"
        visitor = self._visitor(owner_token, request)
        batch_id = str(result.get("batch_id") or "")
        jobs = {j.job_id: j for j in self.service.batch_jobs(batch_id, visitor)}
        root = _root(request)
        rows, done = [], 0
        for item in _batch_items(result):
            job = jobs.get(item.get("job_id"))
            if job is None:
                continue
            done += job.final
            phase = PHASE_OF_STATE.get(job.state, job.state)
            video = self._batch_video(job, len(rows) + 1, root)
            rows.append([video, item.get("image"), str(item.get("prompt"))[:60],
                         item.get("take"), phase, job.shown_id, job.message[:120]])  # fmt: skip
        running = bool(rows) and done < len(rows)
        progress = f"{done}/{len(rows)}" if rows else ""
        note = f"{len(rows)} videos queued; {done} ended." if rows else ""
        return gr.update(value=rows), gr.Timer(active=running), progress, note

    def _batch_video(self, job: Any, n: int, root: str) -> str:
        """A batch row's first cell (Markdown: our own addresses and words only): the video's
        first frame and a link that plays it, once it is done; empty before."""
        if job.state != "done" or not job.video_path or not Path(job.video_path).is_file():
            return ""
        poster = self.service.poster_url(job)
        frame = f"![Video {n}: its first frame]({root}{poster}) " if poster else ""
        return f"{frame}[▶ Play video {n}]({root}{self.service.video_url(job)})"

    def keep_batch(self, result: Any) -> Any:
        """What the browser keeps of a batch just queued (its id, and each item's job, image,
        prompt and take), to show it again after a reload; nothing when none was queued."""
        if not isinstance(result, dict) or result.get("error") or not result.get("batch_id"):
            return gr.skip()
        items = [
            {key: item.get(key) for key in ("job_id", "image", "prompt", "take")}
            for item in _batch_items(result)
        ]
        return {"batch_id": str(result["batch_id"]), "items": items}

    def batch_history(
        self,
        kept: Any,
        history: Any,
        tz: str,
        picked: str | None = None,
        needle: str = "",
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple:
        """The batch's jobs folded into this browser's history (its own only), and the
        gallery redrawn: a batch's videos are tiles like any other (after the queue, and as
        its items end, so each tile gets its poster)."""
        visitor = self.service.visitor(owner_token, None)
        history = _valid_history(history)
        batch_id = str(kept.get("batch_id") or "") if isinstance(kept, dict) else ""
        for job in self.service.batch_jobs(batch_id, visitor):
            self._add(history, job.job_id, visitor, known_only=True)
        return history, *self._views(history, tz, visitor, needle, pick=picked, root=_root(request))

    def batch_restore(
        self,
        kept: Any,
        history: Any,
        tz: str,
        needle: str = "",
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple:
        """On page load (after ``restore``): the batch this browser queued last, its table
        rebuilt from the ledger and its jobs in the history. Its progress only while it runs
        (a batch that ended before the reload is not announced as done again)."""
        views = self.batch_history(kept, history, tz, None, needle, owner_token, request)
        table, timer, progress, note = self.batch_view(kept, owner_token, request)
        done, _, total = progress.partition("/")
        return *views, table, timer, progress if done != total else "", note

    def cancel_waiting(
        self,
        result: Any,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, str, str]:
        """Cancel the batch's items not yet sent (this browser's own); the others go on."""
        result = result if isinstance(result, dict) else {}
        visitor = self._visitor(owner_token, request)
        for job in self.service.batch_jobs(str(result.get("batch_id") or ""), visitor):
            if job.state == "queued_here":
                self.service.cancel(job.job_id, visitor)
        return self.batch_view(result, owner_token, request)


def _batch_items(result: dict) -> list[dict]:
    """A batch answer's items (as many as a batch may hold), each a dict."""
    items = result.get("items")
    return [i for i in items[:MAX_BATCH] if isinstance(i, dict)] if isinstance(items, list) else []


def _batch_count(images: Any, prompts: Any, takes: Any, *, needs_images: bool = True) -> int:
    """How many videos a batch as it stands makes: images x prompt lines x takes (prompt
    lines x takes where the model takes no image: ``needs_images``; 0 if the takes can't be
    read; the batch's own check says why)."""
    lines = [line for line in str(prompts or "").splitlines() if line.strip()]
    pictures = len([i for i in (images or []) if i]) if needs_images else 1
    try:
        return pictures * len(lines) * int(takes or 1)
    except (TypeError, ValueError):
        return 0
