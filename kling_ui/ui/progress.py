"""The job's section: the progress card, the video, and (hidden from view, there for
programs, scripts and the page's own script) the generation id and the status text.

Its events (``JobEvents``, on ``watching``'s ``Watching``): Generate, Resume, a picked
tile's job and ``/extend``, each watched to its end, and ``/status``; the API's
``/generate`` and ``/resume`` are the same code without the card. ``listen`` wires the
page's (the API's are ``wiring``'s).

Generate on the page takes what the form asked for whole (``form.with_request`` makes it,
once); ``/generate`` and ``/extend`` take the model's fields as one mapping, published as
the spec's parameters (``fields.takes_fields``: Gradio reads the API's schema from them),
and make the request with ``form.form_request``.

Imports ``base``, ``watching``, ``card``, ``fields``, ``form`` (``form_request``,
``with_request``, ``made``), ``gallery`` (the pick's buttons), ``parts``, ``request`` (the
spec) and ``states``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..jobs import Progress
from ..request import KLING, Request
from ..service import Backend
from ..states import Reason
from .base import JOB, OUR_FAULT, PRESS_AGAIN, PRIVATE, QUIET, _root, _valid_history
from .card import EMPTY
from .fields import Fields, takes_fields
from .form import Asked, form_request, made, studio_inputs, with_request
from .gallery import follow_pick
from .parts import LocalMP4Video
from .watching import Step, Watching, _error_step, _text_step

if TYPE_CHECKING:
    from .wiring import Handlers, Page

log = logging.getLogger(__name__)

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


def ready(restored: Any, page: Page) -> None:
    """The buttons that start jobs come on once the page load has run (``restored``): until
    then the session does not know this browser's owner token, and a job started would be
    recorded for its address instead (its tile missing from this browser's gallery). They
    come on whether or not the load went well."""
    starts = [page.form.generate, page.videos.resume, page.batch.queue]
    on = gr.update(interactive=True)
    restored.then(lambda: (on, on, on), None, starts, queue=False, **QUIET)


def _starts(handlers: Handlers, page: Page, start: tuple, busy: Any, press: Any) -> list[Any]:
    """The events that start watching a job (Generate, Resume, a tile's click), each
    after ``start`` (the controls off, the press counted)."""
    form, job, videos, owner = page.form, page.job, page.videos, page.owner.session
    inputs = [form.image, form.prompt, form.negative, form.duration, form.audio, form.api_key,
              page.fit, owner, form.parent, press, *studio_inputs(form)]  # fmt: skip
    form.generate.click(None, None, None, js=FOCUS_CARD_JS, **QUIET)
    gen_event = form.generate.click(*start, queue=False, **QUIET).then(
        with_request(handlers.generate_page, studio=handlers.sent_plan),
        inputs,
        job.outputs,
        **JOB,
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
    # The id to open is the click's own (``opening``, written by the pick alone): the gallery's
    # ``picked`` has other writers (a status change's redraw), and one landing between the
    # pick and the open would open what it wrote ("nothing selected", seen under load).
    opening = gr.State("")
    picked = videos.gallery.select(
        handlers.pick_to_open, [videos.ids, busy], [videos.picked, opening], **QUIET
    )
    follow_pick(picked, videos)
    open_event = picked.success(*start, queue=False, **QUIET).then(
        handlers.open_selected, [opening, form.api_key, owner, press], job.outputs, **JOB,
    )  # fmt: skip
    # The chain a video is the end of: the job shown's after each change, a tile's on a click.
    picked.success(handlers.chain_view, [videos.picked, owner], videos.chain, **QUIET)
    return [gen_event, resume_event, open_event]


class JobEvents(Watching):
    """Generate, Resume, Extend and a picked tile's job, watched to their end; ``/status``.

    Each kind has its steps (``generate_steps``, ``extend_steps``, ``resume_steps``: the
    page's card and the typed phase too, which agents read) and its events: the page's
    (``*_page``: id, status text, video, card) and the API's (id, status text, video)."""

    def generate_page(
        self,
        image: str | None,
        asked: Asked,
        api_key: str,
        fit: str = "reject",
        owner_token: str = "",
        parent_id: str = "",
        press: int = 0,
        end_image: str | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple]:
        """Turn an image into a video. Streams (generation id, status text, video, card).
        ``asked``: the form's request (``form.with_request``), or why its fields make none,
        said in its turn (``_run``). ``parent_id``: the job this one continues (Continue),
        whose chain it ends. ``press``: the tab's number for this watch (``_tab_watch``).
        ``end_image``: the last frame, for a model that takes one."""
        steps = self.generate_steps(
            image, partial(made, asked), api_key, fit, owner_token, parent_id, request,
            page=True, press=press, end_image=end_image or None,
        )  # fmt: skip
        for step in steps:
            yield step[:4]

    # /generate and /extend: the model's fields published in the place of ``fields``
    # (Gradio reads the parameters; a docstring is the API's description, so it is said here).
    @takes_fields(KLING, defaults=False)
    def generate(
        self,
        image: str | None,
        prompt: str,
        fields: Fields,
        api_key: str,
        fit: str = "reject",
        owner_token: str = "",
        model: str = "",
        end_image: str | None = None,
        options: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[str, str, Any]]:
        """``/generate`` for programs: ``generate_page`` without the card, so (generation
        id, status text, video). ``model`` (empty: Kling v2.6 Pro image to video; /models
        lists the others), ``end_image`` (a last frame, where the model takes one) and
        ``options`` (a JSON object of the model's other fields, /model_schema; they win
        over negative_prompt, duration and generate_audio, which apply where the model
        declares them). (Gradio reads the parameters, so they are spelled out.)"""
        asked = partial(self.model_request, image, prompt, fields, model, options)
        for step in self.generate_steps(
            image, asked, api_key, fit, owner_token, "", request, end_image=end_image or None
        ):
            yield step[:3]

    def model_request(
        self, image: Any, prompt: Any, fields: Fields, model: Any, options: Any,
        needs_image: bool = True,
    ) -> Request:  # fmt: skip
        """``form_request`` for a model this app offers now (``/models``), or ``InputError``."""
        chosen = str(model or "").strip()
        if chosen and chosen != KLING.model and self.service.offer().entry(chosen) is None:
            raise errors.InputError(f"This app offers no model {chosen!r}; /models lists them.")
        return form_request(image, prompt, **fields, model=chosen, options=options,
                            needs_image=needs_image)  # fmt: skip

    def generate_steps(
        self, image: str | None, asked: Callable[[], Request], api_key: str, fit: str,
        owner_token: str, parent_id: str, request: gr.Request | None, *, page: bool = False,
        press: Any = 0, end_image: str | None = None,
    ) -> Iterator[Step]:  # fmt: skip
        """A new job from an image, watched to its end (``_run``). ``asked`` makes the
        request from what came in (``form.form_request``), once, within the job's checks."""
        visitor = self._visitor(owner_token, request)

        def start(
            made: Request, stop: threading.Event | None, backend: Backend | None
        ) -> Iterator[Progress]:
            return self.service.generate(
                image, made, api_key=api_key, fit=fit or "reject", owner=visitor,
                parent_id=parent_id or None, should_stop=stop.is_set if stop else None,
                backend=backend, end_image=end_image,
            )  # fmt: skip

        yield from self._run(asked, start, visitor, api_key, request, page=page, press=press)

    @takes_fields(KLING, defaults=False)
    def extend(
        self,
        generation_id: str,
        prompt: str,
        fields: Fields,
        api_key: str,
        owner_token: str = "",
        model: str = "",
        options: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[str, str, Any]]:
        """``/extend``: the next part of a finished video (by its id), from its last frame,
        watched like ``/generate``; its last update's video is the whole chain, stitched.
        ``model`` and ``options`` as for ``/generate`` (any model that starts from an
        image; empty: Kling v2.6 Pro)."""
        asked = partial(self.model_request, None, prompt, fields, model, options,
                        needs_image=False)  # fmt: skip
        for step in self.extend_steps(generation_id, asked, api_key, owner_token, request):
            yield step[:3]

    def extend_steps(
        self, generation_id: str, asked: Callable[[], Request], api_key: str, owner_token: str,
        request: gr.Request | None,
    ) -> Iterator[Step]:  # fmt: skip
        """The next part of a finished video, watched to its end (``_run``)."""
        visitor = self._visitor(owner_token, request)

        def start(
            made: Request, _stop: threading.Event | None, backend: Backend | None
        ) -> Iterator[Progress]:
            return self.service.extend(
                generation_id, made, api_key=api_key, owner=visitor, backend=backend
            )

        yield from self._run(asked, start, visitor, api_key, request)

    def _run(
        self,
        asked: Callable[[], Request],
        start: Callable[[Request, threading.Event | None, Backend | None], Iterator[Progress]],
        visitor: str,
        api_key: str,
        request: gr.Request | None,
        *,
        page: bool = False,
        press: Any = 0,
    ) -> Iterator[Step]:
        """A new job watched to its end, for one visitor: its share of streams, its request
        made (``asked``: bad input refused in words), the low-balance question, our words for
        any refusal, never a traceback. On the page (``page``), watched at the tick until
        Stop watching (``_tab_watch``). ``start(request, stop, backend)`` makes the job;
        ``stop`` (or None) is asked before it is sent; ``backend`` is the click's key's,
        resolved once (``_backend``) for its low-balance question and its job."""
        gid, root = "", _root(request)
        with self._tab_watch(request if page else None, press) as stop:
            try:
                with self._stream(visitor):
                    made = asked()
                    backend = self._backend(api_key)  # once a click: its question and its job
                    low = self._unconfirmed_low_balance(visitor, api_key, made, backend=backend)
                    if low:
                        yield _text_step("", Reason.NOT_SENT.phase, f"{low} {PRESS_AGAIN}")
                        return
                    for step in self._steps(start(made, stop, backend), stop, root):
                        gid = step.gid if isinstance(step.gid, str) else gid
                        yield step
            except errors.KlingUIError as exc:
                yield _error_step(gid, exc)
            except Exception:  # a bug of ours: the person still gets words, not a traceback
                log.exception("generate failed unexpectedly")
                yield _text_step(gid, "error", OUR_FAULT)

    def resume_page(
        self,
        generation_id: str,
        api_key: str,
        owner_token: str = "",
        press: int = 0,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[Step]:
        """Pick up a generation by its id and stream it to the end, with the card.

        The id is shown (and so kept in the history) only once the ledger holds it: an id
        the vendor doesn't know leaves no trace. ``press``: as for ``generate_page``.
        """
        steps = self.resume_steps(generation_id, api_key, owner_token, request, True, press)
        for step in steps:
            yield step[:4]

    def resume_steps(
        self, generation_id: str, api_key: str, owner_token: str, request: gr.Request | None,
        page: bool = False, press: Any = 0,
    ) -> Iterator[Step]:  # fmt: skip
        """A job picked up by its id, watched to its end: for the page (``page``: to Stop
        watching), programs and agents."""
        visitor, root = self._visitor(owner_token, request), _root(request)

        def shown(update: Progress) -> str:
            gid = update.generation_id
            return gid if self.service.knows(gid) else ""

        with self._tab_watch(request if page else None, press) as stop:
            try:
                with self._stream(visitor):
                    updates = self.service.resume(generation_id, api_key, owner=visitor)
                    yield from self._steps(updates, stop, root, shown)
            except errors.KlingUIError as exc:
                yield _text_step("", "not resumed", exc.user_message)
            except Exception:
                log.exception("resume failed unexpectedly")
                yield _text_step("", "error", OUR_FAULT)

    def resume(
        self,
        generation_id: str,
        api_key: str,
        owner_token: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[tuple[str, str, Any]]:
        """``/resume`` for programs: ``resume_page`` without the card."""
        for step in self.resume_steps(generation_id, api_key, owner_token, request):
            yield step[:3]

    def open_selected(
        self,
        gid: str | None,
        api_key: str,
        owner_token: str = "",
        press: int = 0,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> Iterator[Step]:
        """A video picked in the gallery: play it, or watch it to its end if it hasn't one."""
        if not gid:
            yield _text_step("", "nothing selected", "Pick a video in the gallery first.")[:4]
            return
        yield from self.resume_page(gid, api_key, owner_token, press, request)

    def expand_id(self, typed: str, history: Any) -> str:
        """A short id (as the history shows it) becomes the whole id, when only one matches."""
        typed = (typed or "").strip()
        if not typed or len(typed) >= 36:
            return typed
        matches = {h["id"] for h in _valid_history(history) if h["id"].startswith(typed)}
        return matches.pop() if len(matches) == 1 else typed

    def status(
        self,
        generation_id: str,
        api_key: str = "",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """One snapshot of a job (by our id or the vendor's), for programs; never waits.

        Where visitors bring their own keys, pass the key the job was made with."""
        visitor = self._visitor(None, request)
        try:
            answer = self.service.status(generation_id, owner=visitor, api_key=api_key)
        except errors.KlingUIError as exc:
            return {"error": exc.user_message}
        if answer.get("video"):
            answer["video"] = _root(request) + answer["video"]
        return answer
