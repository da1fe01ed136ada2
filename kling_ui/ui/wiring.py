"""Every event of the page, wired in one place: which control starts what, with which
inputs and outputs, and which events programs may call (the rest are private).

The API: ``/generate``, ``/resume`` and ``/extend`` (hidden triggers that run the same
handlers as the page's buttons, with only the outputs programs know), ``/status``,
``/estimate``, ``/batch``;
with ``--mcp``, the agents' tools (``agents``) in their place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from .agents import AgentTools
from .batch import BatchPanel
from .form import Form
from .gallery import GalleryPanel, picked_actions
from .handlers import HISTORY_LIMIT, Handlers
from .progress import JobPanel

_PRIVATE: dict[str, Any] = {"api_visibility": "private"}
_QUIET: dict[str, Any] = {**_PRIVATE, "show_progress": "hidden"}
# A job's own events: the card shows the progress, so Gradio's overlay stays off.
_JOB: dict[str, Any] = {**_PRIVATE, "show_progress": "minimal", "concurrency_limit": None}


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


def wire(handlers: Handlers, page: Page) -> None:
    """Connect every event."""
    _wire_jobs(handlers, page)
    restored = _wire_history(handlers, page)
    _wire_form(handlers, page.form)
    _wire_continue(handlers, page)
    _wire_code(handlers, page)
    _wire_batch(handlers, page, restored)
    _wire_notices(page)
    _wire_prices(handlers, page.blocks, page.form, page.batch)


def _controls(watching: bool) -> tuple[Any, ...]:
    """Generate, Resume, Stop watching, the busy note and the tab's "watching" flag. Stop
    is red and full size only while there is something to stop."""
    start = gr.update(interactive=not watching)
    stop = _stop_button(watching)
    return start, start, stop, gr.update(visible=watching), watching


def _stop_button(on: bool) -> Any:
    return gr.update(
        interactive=on, variant="stop" if on else "secondary", size="lg" if on else "sm"
    )


def watching_press(press: Any) -> tuple[Any, ...]:
    """The controls while a watch runs, and the tab's next press number (the watch it
    starts, and the one its Stop watching names: a Stop pressed before that watch begins is
    not lost)."""
    try:
        number = int(press or 0) + 1
    except (TypeError, ValueError):
        number = 1
    return (*_controls(True), number)


def idle() -> tuple[Any, ...]:
    return _controls(False)


PENDING_KEY = "kling-ui-generation-ids"
# Runs in the browser the instant a generation id is shown: note it before anything else.
NOTE_ID_JS = f"""(gid) => {{
  if (gid) {{
    try {{
      const ids = JSON.parse(localStorage.getItem("{PENDING_KEY}") || "[]");
      if (!ids.includes(gid)) {{
        ids.unshift(gid);
        localStorage.setItem("{PENDING_KEY}", JSON.stringify(ids.slice(0, {HISTORY_LIMIT})));
      }}
    }} catch (e) {{}}
  }}
  return [gid];
}}"""
# The browser's time zone, as "Area/City|minutes west of UTC" (the second is the fallback).
_TZ_JS = (
    "(Intl.DateTimeFormat().resolvedOptions().timeZone || '') + '|' + "
    "new Date().getTimezoneOffset()"
)
READ_IDS_JS = f"""(pending, tz, history, owner) => [
  localStorage.getItem("{PENDING_KEY}") || "[]", {_TZ_JS}, history, owner]"""
# After "Remove from history": drop every id of that job (ours and the vendor's) from the
# ids noted in this browser, so a reload doesn't bring it back.
FORGET_IDS_JS = f"""(ids) => {{
  try {{
    const gone = JSON.parse(ids || "[]");
    const kept = JSON.parse(localStorage.getItem("{PENDING_KEY}") || "[]")
      .filter((i) => !gone.includes(i));
    localStorage.setItem("{PENDING_KEY}", JSON.stringify(kept));
  }} catch (e) {{}}
}}"""
# After Generate: the card takes the focus (a keyboard or screen-reader user lands on the
# job's progress); after Remix, the prompt does (the next thing to change).
FOCUS_CARD_JS = """() => {
  const card = document.getElementById("progress-card");
  if (card) { card.setAttribute("tabindex", "-1"); card.focus({preventScroll: false}); }
}"""
FOCUS_PROMPT_JS = """(note) => {
  if (!/^(Remixed|Continuing)/.test(note || "")) return;
  const box = document.querySelector("#prompt textarea");
  if (box) { box.scrollIntoView({block: "center"}); box.focus(); }
}"""
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


def _wire_jobs(handlers: Handlers, page: Page) -> None:
    """Generate, Resume and a gallery tile start watching a job; Stop watching ends it.

    The page's events stream the card too; ``/generate`` and ``/resume`` for programs are
    the same handlers on hidden triggers, with the three outputs programs know."""
    form, job, videos, owner = page.form, page.job, page.videos, page.owner.session
    busy = gr.State(False)  # this tab is watching a job
    press = gr.State(0)  # this tab's count of watches started (Stop names the one it stops)
    controls = [form.generate, videos.resume, form.stop, form.busy, busy]
    fit_state = gr.State("reject")
    form.fit.change(lambda f: f, form.fit, fit_state, **_QUIET)
    inputs = [form.image, form.prompt, form.negative, form.duration, form.audio, form.api_key,
              fit_state, owner, form.parent, press]  # fmt: skip
    _wire_api(handlers, page, fit_state)

    # Starting a job: the start buttons go off until it ends, so a second click can't be
    # dropped unseen (Gradio ignores clicks on an event that is still running). The watch
    # follows, with the press's number (Stop is on from here, before the watch begins).
    start = (watching_press, press, [*controls, press])
    form.generate.click(None, None, None, js=FOCUS_CARD_JS, **_QUIET)
    gen_event = form.generate.click(*start, queue=False, **_QUIET).then(
        handlers.generate_page, inputs, job.outputs, **_JOB
    )
    resume_event = (
        videos.resume.click(*start, queue=False, **_QUIET)
        .then(
            handlers.expand_id,
            [videos.resume_id, page.history],
            [videos.resume_id],
            queue=False,
            **_QUIET,
        )
        .then(
            handlers.resume_page,
            [videos.resume_id, form.api_key, owner, press],
            job.outputs,
            **_JOB,
        )  # fmt: skip
    )
    running = [gen_event, resume_event]
    # A continuation made: the form continues nothing more (Continue goes on from it).
    gen_event.then(
        handlers.continued, [job.gen_id, form.parent], [form.parent, form.continuing,
        form.uncontinue], **_QUIET,
    )  # fmt: skip
    # A tile clicked: its video plays, or its job is watched. While this tab watches a job
    # (one at a time, as for Generate), the click is refused in words: Stop watching first.
    picked = videos.gallery.select(handlers.pick, [videos.ids, busy], videos.picked, **_QUIET)
    _follow_pick(picked, videos)
    open_event = picked.success(*start, queue=False, **_QUIET).then(
        handlers.open_selected, [videos.picked, form.api_key, owner, press], job.outputs,
        **_JOB,
    )  # fmt: skip
    # The chain a video is the end of: the job shown's after each change, a tile's on a click.
    picked.success(handlers.chain_view, [videos.picked, owner], videos.chain, **_QUIET)
    running.append(open_event)
    for event in running:
        event.then(idle, None, controls, queue=False, **_QUIET)
    # Stop watching: no ``cancels=`` (Gradio's cancel left the page's state of the event
    # behind: the next Generate press was dropped, a job watched again froze). The tab's
    # watch is told to stop and ends by itself with its last words, and the controls come
    # back as after any job (above). Stop itself goes off at once: pressed once is enough.
    form.stop.click(lambda: _stop_button(False), None, form.stop, queue=False, **_QUIET)
    form.stop.click(
        handlers.stop_page, [job.gen_id, owner, press], [job.status, job.card],
        concurrency_limit=None, **_PRIVATE,
    )  # fmt: skip


def _wire_api(handlers: Handlers, page: Page, fit_state: Any) -> None:
    """The events programs call: hidden triggers for the streaming ones, ``gr.api`` for the
    rest. With ``--mcp`` they are the agents' tools (``agents``): the key from the
    X-AIMLAPI-Key header only, one JSON answer each, ``submit`` in place of ``/batch``."""
    form, job, videos, owner = page.form, page.job, page.videos, page.owner.session
    api: dict[str, Any] = {"concurrency_limit": None}
    image_in = [form.image, form.prompt, form.negative, form.duration, form.audio]
    if handlers.service.settings.mcp:
        tools = AgentTools(handlers)
        answer = gr.Textbox(visible=False)
        takes = gr.Number(value=1, precision=0, minimum=1, maximum=4, visible=False)
        text_in = [form.prompt, form.negative, form.duration, form.audio]
        # An agent's image is text (a link or a data URI) that the tool fetches or decodes
        # itself, so a bad link is answered in words; its fit is a choice of its own.
        link = gr.Textbox(visible=False)
        fit = gr.Radio(["reject", "crop", "pad"], value="reject", visible=False)
        for name, fn, inputs in (
            ("generate", tools.generate, [link, *text_in, fit, owner]),
            ("submit", tools.submit, [link, *text_in, takes, fit, owner]),
            ("extend", tools.extend, [videos.resume_id, *text_in, owner]),
            ("resume", tools.resume, [videos.resume_id, owner]),
        ):
            trigger = gr.Button(visible=False, elem_id=f"api-{name}")
            trigger.click(fn, inputs, answer, api_name=name, **api)
        gr.api(tools.status, api_name="status")
        gr.api(tools.estimate, api_name="estimate")
        return
    gr.Button(visible=False, elem_id="api-generate").click(
        handlers.generate, [*image_in, form.api_key, fit_state, owner], job.api_outputs,
        api_name="generate", **api,
    )  # fmt: skip
    gr.Button(visible=False, elem_id="api-resume").click(
        handlers.resume, [videos.resume_id, form.api_key, owner], job.api_outputs,
        api_name="resume", **api,
    )  # fmt: skip
    gr.Button(visible=False, elem_id="api-extend").click(
        handlers.extend,
        [videos.resume_id, form.prompt, form.negative, form.duration, form.audio, form.api_key,
         owner],
        job.api_outputs, api_name="extend", **api,
    )  # fmt: skip
    gr.api(handlers.status, api_name="status")
    gr.api(handlers.estimate, api_name="estimate")


def _wire_history(handlers: Handlers, page: Page) -> Any:
    """Every status change folds the shown id in and redraws the gallery, so it follows the
    job and no two writers disagree. JavaScript notes the id the instant it shows (fn=None:
    nothing goes to the server). Returns the page load's event (the batch's follows it)."""
    job, videos, owner = page.job, page.videos, page.owner
    views = [page.history, videos.gallery, videos.ids, videos.picked]
    job.gen_id.change(None, [job.gen_id], None, js=NOTE_ID_JS, **_QUIET)
    synced = job.status.change(
        handlers.sync,
        [job.gen_id, page.history, page.tz, videos.picked, videos.filter, owner.session],
        views,
        trigger_mode="always_last",
        **_QUIET,
    )
    synced.then(handlers.chain_view, [job.gen_id, owner.session], videos.chain, **_QUIET)
    filtered = videos.filter.change(
        handlers.filter,
        [videos.filter, page.history, page.tz, videos.picked, owner.session],
        views[1:],
        trigger_mode="always_last",
        **_QUIET,
    )
    forgotten = gr.Textbox(visible=False)
    forgot = videos.forget.click(
        handlers.forget,
        [videos.picked, page.tz, page.history, videos.filter, owner.session],
        [*views, forgotten, videos.note],
        **_QUIET,
    )
    forgot.then(None, [forgotten], None, js=FORGET_IDS_JS, **_QUIET)
    form = page.form
    videos.remix.click(
        handlers.remix,
        [videos.picked, owner.session],
        [form.image, form.prompt, form.negative, form.duration, form.audio, videos.note],
        **_QUIET,
    ).then(None, [videos.note], None, js=FOCUS_PROMPT_JS, **_QUIET).then(
        handlers.stop_continuing, None, [form.parent, form.continuing, form.uncontinue], **_QUIET
    )  # a remix starts a new video: it continues nothing
    pending_ids = gr.Textbox(visible=False)
    loaded = page.blocks.load(
        handlers.restore,
        [pending_ids, page.tz, page.history, owner.stored],
        [*views, page.tz, owner.stored, owner.session],
        js=READ_IDS_JS,
        **_PRIVATE,
    )
    # The picked video's buttons follow each writer of the pick (a tile's click is
    # ``_wire_jobs``'s): off until a tile is picked, or a job shown picks its own.
    for event in (synced, filtered, forgot, loaded):
        _follow_pick(event, videos)
    return loaded


def _follow_pick(event: Any, videos: GalleryPanel) -> None:
    event.then(picked_actions, videos.picked, videos.actions, queue=False, **_QUIET)


def _wire_continue(handlers: Handlers, page: Page) -> None:
    """Continue (the current video, or the one picked in the gallery): its last frame in the
    form's image, the next Generate continuing it; a new image or "Start a new video
    instead" ends that. (The picked video's chain, under the gallery: ``_wire_history``.)"""
    form, job, videos, owner = page.form, page.job, page.videos, page.owner.session
    shown = [form.image, form.parent, form.continuing, form.uncontinue]
    for button, source in ((job.cont, job.gen_id), (videos.cont, videos.picked)):
        button.click(handlers.continue_video, [source, form.duration, owner], shown, **_QUIET).then(
            None, [form.continuing], None, js=FOCUS_PROMPT_JS, **_QUIET
        )
    ended = [form.parent, form.continuing, form.uncontinue]
    for event in (form.uncontinue.click, form.image.upload, form.image.clear):
        event(handlers.stop_continuing, None, ended, **_QUIET)


def _wire_form(handlers: Handlers, form: Form) -> None:
    """The image check (a refused image leaves the page; one too wide or too tall stays,
    with Crop and Pad under its note), the fit applied again when it changes (those buttons
    set it, as does its choice in More settings), and the prompt's counter."""
    fitted = [form.image, form.image_note, form.fit_row, form.fit_crop, form.fit_pad,
              form.fitting]  # fmt: skip
    form.image.change(
        handlers.check_image, [form.image, form.fit, form.fitting], fitted, **_PRIVATE
    )
    form.fit.change(handlers.refit, [form.fit, form.fitting, form.image], fitted, **_PRIVATE)
    form.fit_crop.click(lambda: "crop", None, form.fit, queue=False, **_QUIET)
    form.fit_pad.click(lambda: "pad", None, form.fit, queue=False, **_QUIET)
    form.image.clear(lambda: "", None, form.image_note, **_QUIET)
    form.prompt.change(handlers.count, form.prompt, form.prompt_count, **_QUIET)


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


def _wire_code(handlers: Handlers, page: Page) -> None:
    """Copy as cURL or Python: the form as it stands, or the picked video's request, as
    code in its place's box, then to the clipboard. (Like Remix: private, the picked id and
    the browser's owner token in.) A newly picked tile hides the last one's code."""
    form, videos, owner = page.form, page.videos, page.owner.session
    fields = [form.image, form.prompt, form.negative, form.duration, form.audio]
    for kind, button in form.copy.items():
        button.click(
            partial(handlers.code_for_form, kind), fields, [form.code, form.code_note], **_QUIET
        ).then(None, [form.code, form.code_note], [form.code_note], js=COPY_CODE_JS, **_QUIET)
    for kind, button in videos.copy.items():
        button.click(
            partial(handlers.code_for_job, kind),
            [videos.picked, owner],
            [videos.code, videos.note],
            **_QUIET,
        ).then(None, [videos.code, videos.note], [videos.note], js=COPY_CODE_JS, **_QUIET)
    videos.gallery.select(
        lambda: gr.update(value="", visible=False), None, videos.code, queue=False, **_QUIET
    )


def _wire_prices(handlers: Handlers, page: gr.Blocks, form: Form, batch: BatchPanel) -> None:
    """The price beside Generate and the batch's, as the inputs that set them change (the
    key's field when it is left, since the balance is read with it). The batch's follows
    the prompts and the takes as they are typed, not when the box is left; the last
    keystroke's price wins (``always_last``)."""
    single = [form.duration, form.audio, form.api_key]
    for source in (form.duration.change, form.audio.change, form.api_key.blur, page.load):
        source(handlers.price_view, single, form.price, **_QUIET)
    many = [batch.images, batch.prompts, batch.takes, form.duration, form.audio, form.api_key]
    for event in (batch.images.change, batch.prompts.change, batch.takes.change,
                  form.duration.change, form.audio.change):  # fmt: skip
        event(handlers.batch_price, many, batch.price, trigger_mode="always_last", **_QUIET)


def _wire_batch(handlers: Handlers, page: Page, restored: Any) -> None:
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
    api = _PRIVATE if handlers.service.settings.mcp else {"api_name": "batch"}
    # The form's Image fit, as a State: it reaches the batch without being an API parameter.
    fit = gr.State("reject")
    form.fit.change(lambda f: f, form.fit, fit, **_QUIET)
    batch.queue.click(
        handlers.batch,
        inputs=[batch.images, batch.prompts, form.negative, form.duration, form.audio,
                batch.takes, form.api_key, owner.session, fit],
        outputs=[batch.result],
        **api,
    ).then(handlers.keep_batch, batch.result, batch.kept, **_QUIET).then(
        handlers.batch_view, [batch.result, owner.session], views, **_QUIET
    ).then(handlers.batch_history, into_history, gallery, **_QUIET)  # fmt: skip
    batch.timer.tick(handlers.batch_view, mine, views, **_QUIET)
    batch.cancel.click(handlers.cancel_waiting, mine, views, **_QUIET)
    batch.progress.change(handlers.batch_history, into_history, gallery, **_QUIET)
    restored.then(
        handlers.batch_restore,
        [batch.kept, page.history, page.tz, videos.filter, owner.session],
        [*gallery, *views],
        **_QUIET,
    )


# The first Generate asks to show a notice when a job is done (never on page load); the tab's
# title follows the job or the batch: "(0/1) kling-ui", then "(1/1) kling-ui" and a notice.
ASK_NOTICE_JS = """() => {
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission();
  }
}"""
TITLE_JS = """(progress) => {
  const base = "kling-ui";
  if (!progress) { document.title = base; return; }
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
}"""
JOB_PROGRESS_JS = """(status) => {
  const phase = (status || "").split("\\n")[0].replace("Status: ", "").split(" ")[0];
  const running = ["waiting", "submitting", "checking", "submitted", "queued", "generating",
                   "downloading", "retrying", "unknown"];
  return [running.includes(phase) ? "0/1" : (phase === "completed" ? "1/1" : "")];
}"""


def _wire_notices(page: Page) -> None:
    form, job, batch = page.form, page.job, page.batch
    job_progress = gr.Textbox(visible=False, elem_id="job-progress")
    form.generate.click(None, None, None, js=ASK_NOTICE_JS, **_QUIET)
    batch.queue.click(None, None, None, js=ASK_NOTICE_JS, **_QUIET)
    job.status.change(None, [job.status], [job_progress], js=JOB_PROGRESS_JS, **_QUIET)
    job.card.change(None, [job.card], None, js=ANNOUNCE_JS, **_QUIET)
    for progress in (job_progress, batch.progress):
        progress.change(None, [progress], None, js=TITLE_JS, **_QUIET)
