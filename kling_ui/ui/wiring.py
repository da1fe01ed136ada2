"""The page's events, section by section: ``wire`` calls each section's ``listen`` (the
section's module lays it out and wires its events: ``progress``, ``gallery``, ``form``,
``chain``, ``copy_code``, ``batch``, ``prices``), then the page-wide notices; and the API.

The API: ``/generate``, ``/resume`` and ``/extend`` (hidden triggers that run the same
handlers as the page's buttons, with only the outputs programs know), ``/status``,
``/estimate``, ``/batch`` (the batch section's); with ``--mcp``, the agents' tools
(``agents``) in their place. Every other event is private.

The tab title's script reads ``states``' running and good phases, rendered into it.
Imports every section and ``states``; the sections import it only as a type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..states import GOOD_PHASES, RUNNING_PHASES
from . import (
    agents,
    batch,
    chain,
    compare,
    copy_code,
    form,
    from_video,
    gallery,
    helper,
    prices,
    progress,
    sharing,
    studio,
    viewer,
)
from .base import QUIET
from .batch import BatchPanel
from .compare import ComparePanel
from .form import Form
from .gallery import GalleryPanel
from .handlers import Handlers
from .progress import JobPanel
from .sharing import SharePanel


@dataclass
class Owner:
    stored: Any  # gr.BrowserState: the token, in the browser
    session: Any  # gr.State: the token, for this session's events (not in the API)


@dataclass
class Page:
    """The page's parts, as the wiring needs them."""

    blocks: gr.Blocks
    form: Form
    job: JobPanel
    videos: GalleryPanel
    batch: BatchPanel
    history: Any  # gr.BrowserState: this browser's list of jobs
    tz: Any  # the browser's time zone, read on load
    owner: Owner
    compare: ComparePanel | None = None
    share: SharePanel | None = None
    fit: Any = None  # gr.State: the form's Image fit (``wire`` makes it)


def wire(handlers: Handlers, page: Page) -> None:
    """Connect every event: each section's ``listen``, in the page's order, and the API."""
    # The form's Image fit, as a State: it reaches Generate and the batch without being a
    # parameter of their API events.
    page.fit = gr.State("reject")
    page.form.fit.change(lambda f: f, page.form.fit, page.fit, **QUIET)
    _wire_api(handlers, page)
    progress.listen(handlers, page)
    restored = gallery.listen(handlers, page)
    progress.ready(restored, page)
    form.listen(handlers, page.form)
    studio.listen(handlers, page.form, page.blocks)
    helper.listen(handlers, page)
    chain.listen(handlers, page)
    from_video.listen(handlers, page)
    copy_code.listen(handlers, page)
    batch.listen(handlers, page, restored)
    compare.listen(handlers, page, restored)
    sharing.listen(handlers, page, restored)
    viewer.listen(handlers, page)
    _wire_notices(page)
    prices.listen(handlers, page.blocks, page.form, page.batch)


def _wire_api(handlers: Handlers, page: Page) -> None:
    """The events programs call: hidden triggers for the streaming ones, ``gr.api`` for the
    rest. With ``--mcp`` they are the agents' tools (``agents``): the key from the
    X-AIMLAPI-Key header only, one JSON answer each, ``submit`` in place of ``/batch``."""
    form, job, videos, owner = page.form, page.job, page.videos, page.owner.session
    api: dict[str, Any] = {"concurrency_limit": None}
    image_in = [form.image, form.prompt, form.negative, form.duration, form.audio]
    if handlers.service.settings.mcp:
        agents.listen(handlers, page)
        return
    # /generate's model, last frame and the model's other fields: for programs only (the
    # page's form does not offer models yet); left out, a call is as it always was.
    model = gr.Textbox(value="", visible=False)
    end_image = gr.Image(type="filepath", visible=False)
    options = gr.Textbox(value="", visible=False)
    gr.Button(visible=False, elem_id="api-generate").click(
        handlers.generate, [*image_in, form.api_key, page.fit, owner, model, end_image, options],
        job.api_outputs, api_name="generate", **api,
    )  # fmt: skip
    gr.Button(visible=False, elem_id="api-resume").click(
        handlers.resume, [videos.resume_id, form.api_key, owner], job.api_outputs,
        api_name="resume", **api,
    )  # fmt: skip
    # /extend's model and its fields (any model that starts from an image), as /generate's.
    gr.Button(visible=False, elem_id="api-extend").click(
        handlers.extend,
        [videos.resume_id, form.prompt, form.negative, form.duration, form.audio, form.api_key,
         owner, gr.Textbox(value="", visible=False), gr.Textbox(value="", visible=False)],
        job.api_outputs, api_name="extend", **api,
    )  # fmt: skip
    # /improve_prompt: the image as /generate takes it, the prompt, a model and a variant.
    gr.Button(visible=False, elem_id="api-improve-prompt").click(
        handlers.improve_prompt,
        [form.image, form.prompt, model, gr.Textbox(value="", visible=False), form.api_key,
         owner],
        gr.JSON(visible=False), api_name="improve_prompt", **api,
    )  # fmt: skip
    gr.api(handlers.status, api_name="status")
    gr.api(handlers.estimate, api_name="estimate")
    gr.api(handlers.models, api_name="models")
    gr.api(handlers.model_schema, api_name="model_schema")


# Each new card: the live region says its one sentence when the phase changes (not the
# clocks, which would talk every second). The card is parsed inert, in a <template>.
ANNOUNCE_JS = """(html) => {
  const t = document.createElement("template");
  t.innerHTML = html || "";
  const card = t.content.querySelector("[data-announce]");
  const say = card ? card.dataset.announce : "";
  const region = document.getElementById("kui-announcer");
  if (region && say && say !== window.__kuiSaid) {
    window.__kuiSaid = say;
    region.textContent = say;
  }
}"""
# The page's title while no job or batch is followed (Gradio's, and the tab's when idle).
PAGE_TITLE = "kling-ui · image to video"
# The first Generate asks to show a notice when a job is done (never on page load); the tab's
# title follows the job or the batch: "(0/1) kling-ui", then "(1/1) kling-ui" and a notice.
ASK_NOTICE_JS = """() => {
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission();
  }
}"""
TITLE_JS = """(progress) => {
  const base = "kling-ui";
  if (!progress) { document.title = "PAGE_TITLE"; return; }  // idle: the page's own title
  document.title = `(${progress}) ${base}`;
  const [done, total] = progress.split("/").map(Number);
  window.__klingNotified = window.__klingNotified || {};
  if (total && done === total && !window.__klingNotified[progress + document.title]) {
    window.__klingNotified[progress + document.title] = true;
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification("kling-ui", {body: total > 1 ? `All ${total} videos are done.` :
                                           "Your video is done."});
    }
  }
}""".replace("PAGE_TITLE", PAGE_TITLE)
# The status's first word read against ``states``' phases, rendered into the script: still
# running (0 of 1 done) or the one good phase (1 of 1).
JOB_PROGRESS_JS = f"""(status) => {{
  const phase = (status || "").split("\\n")[0].replace("Status: ", "").split(" ")[0];
  const running = {json.dumps(sorted(RUNNING_PHASES))};
  const good = {json.dumps(sorted(GOOD_PHASES))};
  return [running.includes(phase) ? "0/1" : (good.includes(phase) ? "1/1" : "")];
}}"""


def _wire_notices(page: Page) -> None:
    form, job, batch = page.form, page.job, page.batch
    job_progress = gr.Textbox(visible=False, elem_id="job-progress")
    form.generate.click(None, None, None, js=ASK_NOTICE_JS, **QUIET)
    batch.queue.click(None, None, None, js=ASK_NOTICE_JS, **QUIET)
    job.status.change(None, [job.status], [job_progress], js=JOB_PROGRESS_JS, **QUIET)
    job.card.change(None, [job.card], None, js=ANNOUNCE_JS, **QUIET)
    for shown in (job_progress, batch.progress):
        shown.change(None, [shown], None, js=TITLE_JS, **QUIET)
