"""The job's section: the progress card, the video, and (hidden from view, there for
programs, scripts and the page's own script) the generation id and the status text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from .base import JOB, PRIVATE, QUIET
from .card import EMPTY
from .gallery import follow_pick
from .parts import LocalMP4Video

if TYPE_CHECKING:
    from .wiring import Handlers, Page

# The card's copy button (a click anywhere in the card that lands on [data-copy]).
COPY_JS = """
element.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy id"; }, 1500);
  }, () => {});
});
"""


@dataclass
class JobPanel:
    gen_id: Any
    status: Any
    video: Any
    card: Any
    cont: Any  # "Continue this video": the next part from its last frame

    @property
    def outputs(self) -> list[Any]:
        """What a job event streams to on the page."""
        return [self.gen_id, self.status, self.video, self.card]

    @property
    def api_outputs(self) -> list[Any]:
        """What the API's job events stream: the id, the status text and the video."""
        return [self.gen_id, self.status, self.video]


def job_section() -> JobPanel:
    card = gr.HTML(EMPTY, js_on_load=COPY_JS, elem_id="progress-card", padding=False)
    video = LocalMP4Video(
        label="Video", autoplay=True, interactive=False, buttons=["download"], elem_id="video"
    )
    cont = gr.Button(
        "Continue this video from its last frame", size="sm", elem_id="continue-current"
    )
    gen_id = gr.Textbox(label="Generation id", visible="hidden", elem_id="generation-id")
    status = gr.Textbox(label="Status", visible="hidden", elem_id="status")
    return JobPanel(gen_id, status, video, card, cont)


# After Generate: the card takes the focus (a keyboard or screen-reader user lands on the
# job's progress).
FOCUS_CARD_JS = """() => {
  const card = document.getElementById("progress-card");
  if (card) { card.setAttribute("tabindex", "-1"); card.focus({preventScroll: false}); }
}"""


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


def listen(handlers: Handlers, page: Page) -> None:
    """Generate, Resume and a gallery tile start watching a job; Stop watching ends it.

    The page's events stream the card too; ``/generate`` and ``/resume`` for programs are
    the same handlers on hidden triggers (``wiring``), with the three outputs programs know.
    Starting a job: the start buttons go off until it ends, so a second click can't be
    dropped unseen (Gradio ignores clicks on an event that is still running). The watch
    follows, with the press's number (Stop is on from here, before the watch begins)."""
    form, videos = page.form, page.videos
    busy = gr.State(False)  # this tab is watching a job
    press = gr.State(0)  # this tab's count of watches started (Stop names the one it stops)
    controls = [form.generate, videos.resume, form.stop, form.busy, busy]
    start = (watching_press, press, [*controls, press])
    for event in _starts(handlers, page, start, busy, press):
        event.then(idle, None, controls, queue=False, **QUIET)
    # Stop watching: no ``cancels=`` (Gradio's cancel left the page's state of the event
    # behind: the next Generate press was dropped, a job watched again froze). The tab's
    # watch is told to stop and ends by itself with its last words, and the controls come
    # back as after any job (above). Stop itself goes off at once: pressed once is enough.
    form.stop.click(lambda: _stop_button(False), None, form.stop, queue=False, **QUIET)
    form.stop.click(
        handlers.stop_page, [page.job.gen_id, page.owner.session, press],
        [page.job.status, page.job.card], concurrency_limit=None, **PRIVATE,
    )  # fmt: skip


def _starts(handlers: Handlers, page: Page, start: tuple, busy: Any, press: Any) -> list[Any]:
    """The events that start watching a job (Generate, Resume, a tile's click), each
    after ``start`` (the controls off, the press counted)."""
    form, job, videos, owner = page.form, page.job, page.videos, page.owner.session
    inputs = [form.image, form.prompt, form.negative, form.duration, form.audio, form.api_key,
              page.fit, owner, form.parent, press]  # fmt: skip
    form.generate.click(None, None, None, js=FOCUS_CARD_JS, **QUIET)
    gen_event = form.generate.click(*start, queue=False, **QUIET).then(
        handlers.generate_page, inputs, job.outputs, **JOB
    )
    resume_event = (
        videos.resume.click(*start, queue=False, **QUIET)
        .then(handlers.expand_id, [videos.resume_id, page.history], [videos.resume_id],
              queue=False, **QUIET)
        .then(handlers.resume_page, [videos.resume_id, form.api_key, owner, press],
              job.outputs, **JOB)
    )  # fmt: skip
    # A continuation made: the form continues nothing more (Continue goes on from it).
    gen_event.then(
        handlers.continued, [job.gen_id, form.parent], [form.parent, form.continuing,
        form.uncontinue], **QUIET,
    )  # fmt: skip
    # A tile clicked: its video plays, or its job is watched. While this tab watches a job
    # (one at a time, as for Generate), the click is refused in words: Stop watching first.
    picked = videos.gallery.select(handlers.pick, [videos.ids, busy], videos.picked, **QUIET)
    follow_pick(picked, videos)
    open_event = picked.success(*start, queue=False, **QUIET).then(
        handlers.open_selected, [videos.picked, form.api_key, owner, press], job.outputs,
        **JOB,
    )  # fmt: skip
    # The chain a video is the end of: the job shown's after each change, a tile's on a click.
    picked.success(handlers.chain_view, [videos.picked, owner], videos.chain, **QUIET)
    return [gen_event, resume_event, open_event]
