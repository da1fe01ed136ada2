"""The form, in the order a person uses it: the image, the prompt, the length, the price and
Generate (all visible at 1366x768), then the settings rarely changed in a closed group that
says what it holds. With the banners above it and the examples below.

Also the form's own events (``FormEvents``: the image checked and fitted as it arrives, the
prompt's counter) and their wiring (``listen``), and ``form_request``: the one place the
page turns the form's fields into the request value (``Request``) that is then passed whole.
The page's other events on the form's fields (Generate, copy as code) are wired through
``with_request``, which makes those fields one value, once, so their handlers take the
request whole (the model whose form is shown, ``studio``, included); the documented API
endpoints and the agents' tools take the model's fields as one mapping (``fields``'
``takes_fields``) and call ``form_request`` with it. ``form_request`` is the one function
that still names the model's fields one by one (the form's own inputs, in their order).

Imports ``base``, ``parts``, ``studio`` (a model's form), ``images``
(``prepare_image``), ``request``, ``rules``, ``files`` and the service (its type).
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import gradio as gr
from gradio.utils import get_upload_folder

from .. import errors
from ..files import write_atomic
from ..images import prepare_image
from ..request import KLING, REFERENCE, Request, spec_of
from ..rules import MAX_PROMPT_CHARS, NO_IMAGE
from ..service import GenerationService
from .base import FITTED, PRIVATE, QUIET, PageBase
from .helper import HelperPanel, prompt_tools
from .parts import ChoiceOfNumbers, UploadedImage
from .studio import (
    SLOTS,
    Plan,
    StudioPanel,
    end_frame,
    options_from,
    picker,
    reference_images,
    settings_group,
)

if TYPE_CHECKING:
    from .handlers import Handlers

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
FIT_CHOICES = [
    ("Tell me", "reject"),
    ("Crop to fit", "crop"),
    ("Pad to fit", "pad"),
]
EXAMPLES = [
    ("example-lighthouse.jpg", "Waves crash against the lighthouse as its beam sweeps the dusk.",
     "Lighthouse at dusk"),
    ("example-balloon.jpg", "The hot-air balloon drifts upward; the camera tilts to follow it.",
     "Hot-air balloon"),
    ("example-cat.jpg", "The cat slowly turns its head toward the camera and blinks.", "Cat"),
]  # fmt: skip
# Copy as code: the form's request (and a gallery video's) as code to run outside the app.
COPY_BUTTONS = {"curl": "Copy as cURL", "python": "Copy as Python"}
BUSY_NOTE = (
    "One job at a time in this tab: **Generate** comes back when this one ends. To start "
    "another now, press **Stop watching**: this job carries on and stays in your history."
)


def banners(service: GenerationService) -> None:
    settings = service.settings
    gr.Markdown(
        "**Demo mode.** No API key is set, so videos are *simulated* by a local stand-in for "
        "the API and nothing is charged; the credits shown are what a real job would use. "
        "Enter your AIML API key below to make real videos.",
        visible=service.demo_mode,
        elem_id="demo-banner",
    )
    if settings.shared_key_locked:
        key_text = (
            "**Bring your own key.** This public Space makes real videos with *your* AIML API "
            "account: enter your key below. It is used for your requests only and never "
            "stored. The owner's key is not lent to visitors (the owner can share it within a "
            "daily budget, `KLING_UI_DAILY_BUDGET_USD`, or without one, "
            "`KLING_UI_ALLOW_SHARED_KEY=1`, and then pays for every visitor's videos)."
        )
    else:
        key_text = (
            "**Bring your own key.** This app generates real videos with your AIML API "
            "account: enter your key below. It is used for your requests only and never stored."
        )
    gr.Markdown(key_text, visible=settings.require_user_key, elem_id="key-banner")
    if settings.daily_budget_usd > 0:
        lent = f"within a budget of ${settings.daily_budget_usd:,.2f} a day (UTC)"
    else:
        lent = "(`KLING_UI_ALLOW_SHARED_KEY=1`)"
    gr.Markdown(
        f"**Shared key.** This Space runs on its owner's AIML API key {lent}: every video "
        "made here is paid by the owner. Enter your own key below to use your account instead.",
        visible=settings.shared_key_in_use,
        elem_id="shared-key-banner",
    )


@dataclass
class Form:
    image: Any
    image_note: Any
    fit: Any
    prompt: Any
    prompt_count: Any
    negative: Any
    duration: Any
    audio: Any
    api_key: Any
    generate: Any
    stop: Any
    busy: Any
    price: Any
    copy: dict[str, Any]  # "curl" / "python" -> its button
    code: Any  # the code box, hidden until filled
    code_note: Any
    parent: Any  # gr.State: the job the next Generate continues ("" for none)
    continuing: Any  # what is being continued, shown while it is
    uncontinue: Any  # "Start a new video instead"
    examples_slot: Any = None  # where ``examples`` puts the examples: under the image
    # An image too wide or too tall: Crop and Pad right under its note (``fit_choice``).
    fit_row: Any = None
    fit_crop: Any = None
    fit_pad: Any = None
    fitting: Any = None  # gr.State: the picture given, and the fitted copy shown for it
    studio: StudioPanel | None = None  # the model picker and another model's fields
    helper: HelperPanel | None = None  # the prompt's tools: Improve, the last prompts


def form_section(prompt_count: str, *, key_first: bool = False) -> Form:
    """The form, in the order a person uses it: the image, the prompt, the length, the price
    and Generate (all visible at 1366x768), then the settings rarely changed, in a closed
    group that says what it holds. Where visitors must bring a key, the key comes first."""
    image = UploadedImage(
        label="Image (JPEG, PNG, WebP, GIF or BMP; HEIC: export as JPEG first)",
        type="filepath",
        image_mode=None,
        sources=["upload", "clipboard", "webcam"],
        height=160,
        elem_id="image",
    )
    image_note = gr.Markdown(elem_id="image-note")
    fit_row, fit_crop, fit_pad = fit_choice()
    end_image, end_note = end_frame()
    references = reference_images()
    # The examples go here, right under the image they fill (``examples``, once the form is
    # whole): one small button each, so Generate stays in view.
    with gr.Column(elem_id="examples") as examples_slot:
        pass
    continuing = gr.Markdown(visible=False, elem_id="continuing")
    uncontinue = gr.Button(
        "Start a new video instead", size="sm", visible=False, elem_id="stop-continuing"
    )
    prompt = gr.Textbox(
        label="Prompt",
        lines=2,
        max_lines=8,
        placeholder="Describe the motion: what moves, how the camera moves.",
        elem_id="prompt",
    )
    helper = prompt_tools(prompt_count)
    prompt_count = helper.count
    with gr.Row(equal_height=True):
        picked = picker()
        duration = ChoiceOfNumbers(
            [("5 seconds", 5), ("10 seconds", 10)], value=5, label="Duration", elem_id="duration",
            min_width=240, scale=0,
        )  # fmt: skip
        audio = gr.Checkbox(value=True, label="Generate audio", elem_id="audio", scale=0,
                            min_width=120)  # fmt: skip
    studio = settings_group(picked, end_image, end_note, references)
    api_key = _key_field() if key_first else None
    price, generate, stop = send_row()
    busy = gr.Markdown(BUSY_NOTE, visible=False, elem_id="busy-note")
    negative, fit, later_key, copy, code_note, code = more_settings(key_first)
    api_key = api_key or later_key
    return Form(
        image, image_note, fit, prompt, prompt_count, negative, duration, audio, api_key,
        generate, stop, busy, price, copy, code, code_note, gr.State(""), continuing, uncontinue,
        examples_slot, fit_row=fit_row, fit_crop=fit_crop, fit_pad=fit_pad, fitting=gr.State({}),
        studio=studio, helper=helper,
    )  # fmt: skip


def send_row() -> tuple[Any, Any, Any]:
    """The price, Generate and Stop on one line: Generate stays in view at 1366x768 with an
    image, its note and a banner above it (a phone wraps them, in this order)."""
    with gr.Row(equal_height=True, elem_id="send-row"):
        price = gr.Markdown(elem_id="price", min_height=0)
        # Off until the page load has told the session who this browser is (``progress.ready``).
        generate = gr.Button(
            "Generate", variant="primary", elem_id="generate", min_width=160, interactive=False
        )
        # Quiet and small while there is nothing to stop; red and full size while watching.
        stop = gr.Button(
            "Stop watching", variant="secondary", size="sm", interactive=False, scale=0,
            min_width=150, elem_id="stop",
        )  # fmt: skip
    return price, generate, stop


def more_settings(key_first: bool) -> tuple[Any, Any, Any, Any, Any, Any]:
    """The settings rarely changed, in a closed group that says what it holds: the negative
    prompt, the image fit, the key (unless it came first), copy as code. Returns (negative,
    fit, the key's field or None, the copy buttons, the code's note, the code box)."""
    label = "More settings: negative prompt, image fit" + ("" if key_first else ", API key")
    label += ", copy as code"
    with gr.Accordion(label, open=False, elem_id="more-settings"):
        negative = gr.Textbox(
            value="",
            label="Negative prompt",
            lines=2,
            placeholder="What to avoid (optional)",
            elem_id="negative",
        )
        fit = gr.Radio(
            FIT_CHOICES,
            value="reject",
            label="If the image's shape is outside 1:2.5 to 2.5:1",
            elem_id="fit",
        )
        api_key = None if key_first else _key_field()
        with gr.Row():
            copy = copy_buttons("form", size="sm")
        code_note = gr.Markdown(elem_id="form-code-note")
        code = code_box("form")
    return negative, fit, api_key, copy, code_note, code


def fit_choice() -> tuple[Any, Any, Any]:
    """Crop and Pad, offered under the image's note when its shape is outside the allowed
    range (hidden until then): either applies at once, and the image shows the result."""
    with gr.Row(visible=False, elem_id="fit-choice") as row:
        crop = gr.Button(FIT_CHOICES[1][0], size="sm", visible=False, elem_id="fit-crop")
        pad = gr.Button(FIT_CHOICES[2][0], size="sm", visible=False, elem_id="fit-pad")
    return row, crop, pad


def copy_buttons(
    place: str, size: Literal["sm", "md", "lg"] = "lg", *, interactive: bool = True
) -> dict[str, Any]:
    """The buttons "Copy as cURL" and "Copy as Python", by kind, in the row being laid out
    (``place``: "form" or "gallery", for their ids; ``size`` to match their neighbours)."""
    return {
        kind: gr.Button(label, size=size, interactive=interactive, elem_id=f"{place}-copy-{kind}")
        for kind, label in COPY_BUTTONS.items()
    }


def code_box(place: str) -> Any:
    """Where the copied code shows: hidden until filled, with its own copy button for when
    the browser won't let the page write to the clipboard. Lines wrap and the box grows with
    the code: a box that scrolls can't be scrolled from the keyboard (axe-core)."""
    return gr.Code(
        language="shell",
        interactive=False,
        visible=False,
        wrap_lines=True,
        show_line_numbers=False,
        buttons=["copy"],
        elem_id=f"{place}-code",
    )


def _key_field() -> Any:
    return gr.Textbox(
        value="",
        label="API key",
        type="password",
        placeholder="Your AIML API key (optional; never stored)",
        elem_id="api-key",
    )


def examples(form: Form) -> None:
    """The examples, in their place under the image (the form's ``examples_slot``): a click
    fills the image and the prompt; nothing is generated until Generate is pressed."""
    kept = [(name, text, label) for name, text, label in EXAMPLES if (ASSETS / name).exists()]
    if not kept:
        return
    with form.examples_slot:
        gr.Examples(
            examples=[[str(ASSETS / name), text] for name, text, _ in kept],
            example_labels=[label for _, _, label in kept],
            inputs=[form.image, form.prompt],
            label="Examples (they fill the form; nothing is sent):",
            cache_examples=False,
            run_on_click=False,
        )


def listen(handlers: Handlers, form: Form) -> None:
    """The image check (a refused image leaves the page; one too wide or too tall stays,
    with Crop and Pad under its note), the fit applied again when it changes (those buttons
    set it, as does its choice in More settings), and the prompt's counter."""
    fitted = [form.image, form.image_note, form.fit_row, form.fit_crop, form.fit_pad,
              form.fitting]  # fmt: skip
    form.image.change(handlers.check_image, [form.image, form.fit, form.fitting], fitted, **PRIVATE)
    form.fit.change(handlers.refit, [form.fit, form.fitting, form.image], fitted, **PRIVATE)
    form.fit_crop.click(lambda: "crop", None, form.fit, queue=False, **QUIET)
    form.fit_pad.click(lambda: "pad", None, form.fit, queue=False, **QUIET)
    form.image.clear(lambda: "", None, form.image_note, **QUIET)
    gr.on([form.prompt.change, form.studio.shown.change], handlers.count,
          [form.prompt, form.studio.shown], form.prompt_count, **QUIET)  # fmt: skip


class FormEvents(PageBase):
    """The form's own events: the image checked (and fitted) as it arrives, the counter."""

    def check_image(
        self,
        image: str | None,
        fit: str,
        fitting: Any = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, Any, Any, Any, Any]:
        """A new picture in the form's image (an upload, Remix, Continue, an example),
        checked at once: (image, note, Crop and Pad's row, Crop, Pad, ``fitting``).

        One too wide or too tall stays, with Crop and Pad under its note (``_fit``); any
        other refused image is taken off the page, its reason left in its place. The fitted
        copy we show in its place comes back here too: it is known by its bytes (``fitting``
        holds their digest) and left as it is."""
        if not image:  # cleared, by the person or by us: keep the note
            return gr.skip(), gr.skip(), *_fit_offer(()), {}
        kept = fitting if isinstance(fitting, dict) else {}
        if kept.get("shown") and kept["shown"] == _digest(image):
            return (gr.skip(),) * 6
        return self._fit(image, fit, image, self._visitor("", request))

    def refit(
        self,
        fit: str,
        fitting: Any,
        image: str | None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any, Any, Any, Any, Any]:
        """The fit changed (Crop or Pad under the note, or the choice in More settings): the
        picture given is fitted again, at once, and the image shows the result."""
        kept = fitting if isinstance(fitting, dict) else {}
        original = kept.get("original")
        if not image or not isinstance(original, str) or not Path(original).is_file():
            return (gr.skip(),) * 6
        return self._fit(original, fit, image, self._visitor("", request))

    def _fit(self, original: str, fit: str, shown: str, visitor: str) -> tuple:
        """``original`` checked with ``fit``. Within the allowed shapes: the note says how it
        will be sent. Outside them: with "Tell me" (or a fit that can't save it), the note
        says why, with the fits that would (Crop, Pad) under it; with one that can, the
        image shows the fitted picture, as it will be sent. ``shown``: what the image shows
        now (the original, or a fitted copy), so the original comes back when it should."""
        again = shown != original  # a fitted copy is shown: the original comes back
        back = original if again else gr.skip()
        kept = {"original": original, "shown": _digest(original) if again else ""}
        fit = fit if fit in ("reject", "crop", "pad") else "reject"
        try:
            prepared = prepare_image(original, owner=visitor)
        except errors.RatioOutOfRange as exc:
            facts = exc.facts
        except errors.InputError as exc:
            return None, f"⚠ {exc.user_message} Choose another image.", *_fit_offer(()), {}
        else:
            note = f" ({prepared.adjusted})" if prepared.adjusted else ""
            ok = f"✓ Image OK: will be sent as {prepared.width}×{prepared.height}{note}."
            return back, ok, *_fit_offer(()), kept
        fitted, refusal = {}, None
        for way in ("crop", "pad"):  # which of them can save it (each a decode)
            try:
                fitted[way] = prepare_image(original, fit=way, owner=visitor)
            except errors.InputError as exc:
                refusal = exc
        if not fitted:  # too small either way: refused like any other image
            return None, f"⚠ {refusal.user_message} Choose another image.", *_fit_offer(()), {}
        chosen = fitted.get(fit)
        if chosen is None:
            ways = " or ".join(fitted).capitalize()  # "Crop or pad", or just one of them
            note = f"⚠ {facts} {ways} it to fit (below), or choose another image."
            return back, note, *_fit_offer(tuple(fitted)), kept
        copy = _fitted_copy(chosen, original, fit)
        note = (
            f"✓ Image OK: {chosen.adjusted}; will be sent as {chosen.width}×{chosen.height}, "
            "as shown."
        )
        kept["shown"] = _digest(copy)
        return copy, note, *_fit_offer(tuple(fitted)), kept

    def count(self, prompt: str, model: str = "") -> str:
        """The prompt's length against the limit of the model whose form is shown, and
        what that model leaves out (no sound, no negative prompt)."""
        try:
            spec = spec_of(str(model or "").strip() or KLING.model)
        except errors.InputError:
            spec = None
        limit = spec.prompt_limit if spec is not None else MAX_PROMPT_CHARS
        n = len(prompt or "")
        over = " (over the limit)" if n > limit else ""
        fields = {f.name for f in spec.fields} if spec is not None else set()
        hints = [words for name, words in (("generate_audio", "no sound"),
                                           ("negative_prompt", "no negative prompt"))
                 if spec is not None and name not in fields]  # fmt: skip
        said = f" · this model: {', '.join(hints)}" if hints else ""
        return f"{n} / {limit} characters{over}{said}"


def _fit_offer(ways: tuple[str, ...]) -> tuple[Any, Any, Any]:
    """Crop and Pad's row, Crop and Pad: shown for the fits that would save the image."""
    return (
        gr.update(visible=bool(ways)),
        gr.update(visible="crop" in ways),
        gr.update(visible="pad" in ways),
    )


def _fitted_copy(prepared: Any, original: str, fit: str) -> str:
    """The fitted picture, exactly as it will be sent (the prepared JPEG), as a file in
    Gradio's upload folder: the image field shows it, and Generate sends it. Its folder is
    named by its bytes, so pressing Crop or Pad again makes no second copy."""
    data = base64.b64decode(prepared.data_uri.split(",", 1)[1])
    folder = Path(get_upload_folder()) / (FITTED + hashlib.sha256(data).hexdigest()[:32])
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.utime(folder)  # made or used now: the retention sweep counts from here
    done = {"crop": "cropped", "pad": "padded"}[fit]
    path = folder / f"{Path(original).stem[:60] or 'image'}-{done}.jpg"
    if not path.is_file():  # whole or not at all, for a second press at the same time
        write_atomic(path, data)
    return str(path)


def _digest(path: str) -> str:
    """A file's bytes as a digest ("" when it can't be read): how a fitted copy is known
    when the image field hands it back (by then under another path, Gradio's copy)."""
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                sha.update(block)
    except OSError:
        return ""
    return sha.hexdigest()


def form_request(
    image: Any, prompt: Any, negative_prompt: Any, duration: Any, generate_audio: Any,
    *, needs_image: bool = True, model: Any = "", options: Any = None,
) -> Request:  # fmt: skip
    """The form's fields as the request value, checked (``InputError`` in words): the one
    place the page, the API's job events and the agents' tools make a request, which then
    travels whole. A missing image is named before the other fields (``needs_image``: not
    for an extend, whose image is its video's last frame, nor for a model that makes video
    from text). The image itself is prepared by the service and set on the request there.
    ``model`` (empty: ours) and ``options`` (its other fields, a JSON object or a mapping;
    they win over the negative prompt, duration and audio, which apply where the model
    declares them: ``Request.for_model``)."""
    chosen = str(model or "").strip() or KLING.model
    if needs_image and spec_of(chosen).needs() and not _given(image):
        raise errors.InputError(NO_IMAGE)
    given = {"negative_prompt": negative_prompt, "duration": duration,
             "generate_audio": generate_audio}  # fmt: skip
    return Request.for_model(prompt, chosen, given, read_options(options))


def _given(image: Any) -> bool:
    return not (image is None or (isinstance(image, str) and not image.strip()))


def read_options(options: Any) -> dict[str, Any]:
    """A model's other fields as a caller gives them: a JSON object (text) or a mapping."""
    if options is None or (isinstance(options, str) and not options.strip()):
        return {}
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            options = None
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise errors.InputError(
            'options must be a JSON object of the model\'s fields, like {"seed": 7}; '
            "/model_schema lists them."
        )
    return options


# What the form's fields asked for: the request, or the InputError that says why they make
# none (said by the handler, where its other refusals are, in their order).
Asked = Request | errors.InputError
REQUEST_FIELDS = 5  # image, prompt, negative prompt, duration, audio: ``form_request``'s


def made(asked: Asked) -> Request:
    """The request the form's fields made; their InputError raised, where it is said."""
    if isinstance(asked, errors.InputError):
        raise asked
    return asked


def with_request(
    handler: Callable[..., Any],
    *,
    needs_image: bool = True,
    studio: Callable[[str], Plan] | None = None,
) -> Callable[..., Any]:
    """``handler`` as a page event whose inputs begin with the form's five fields, in
    ``form_request``'s order: they reach it as (image, what they asked for: ``Asked``, made
    here once by ``form_request``), then the event's other inputs. The image stays apart:
    the service prepares it and sets it on the request (``needs_image``: as for
    ``form_request``).

    ``studio``: the event's inputs end with ``studio_inputs`` (the model whose form is
    shown, the last frame, the spare fields), and ``studio`` gives a model's form
    (``StudioEvents.sent_plan``). The request is then that model's (``studio_request``), the
    image is handed on only where the model takes a first frame, and the last frame after
    the event's other inputs (None where the model takes none)."""
    tail = 3 + len(SLOTS)

    def values(inputs: tuple) -> tuple:
        fields, rest = inputs[:REQUEST_FIELDS], inputs[REQUEST_FIELDS:]
        image, extra = fields[0], ()
        try:
            if studio is None:
                asked: Asked = form_request(*fields, needs_image=needs_image)
            else:
                rest, (model, end_image, references, *spares) = rest[:-tail], rest[-tail:]
                shown = studio(model)
                image = image if shown.first else None
                extra = (end_image if shown.last else None,)
                asked = studio_request(shown, (image, *fields[1:]), spares, needs_image,
                                       references=references)  # fmt: skip
        except errors.InputError as exc:
            asked = exc
        return (image, asked, *rest, *extra)

    return _event(handler, values)


def studio_inputs(form: Form) -> list[Any]:
    """The inputs ``with_request(studio=...)`` reads after the event's own."""
    studio = form.studio
    return [studio.shown, studio.end_image, studio.references,
            *(studio.slots[s] for s in SLOTS)]  # fmt: skip


def studio_request(
    shown: Plan, fields: tuple, spares: list[Any], needs_image: bool = True,
    references: Sequence[str] | None = None,
) -> Request:  # fmt: skip
    """The request of the model whose form is ``shown``, from the form's five fields and
    its spare fields (in ``SLOTS``' order). Ours is made as it always was; another model
    takes every field of its form as its own (``options_from``), the form's negative
    prompt, length and audio switch where it has them, and its reference images (their
    files, in order: the service prepares them)."""
    if shown.model == KLING.model:
        return form_request(*fields, needs_image=needs_image)
    image, prompt, negative, duration, audio = fields
    options = options_from(shown, (negative, duration, audio, *spares))
    made = form_request(image, prompt, "", 5, True, needs_image=needs_image, model=shown.model,
                        options=options)  # fmt: skip
    for n, path in enumerate((references or []) if shown.references else [], 1):
        made = made.with_image(str(path), f"{REFERENCE}{n}")
    return made


def _event(handler: Callable[..., Any], values: Callable[[tuple], tuple]) -> Callable[..., Any]:
    """The event Gradio calls: the page's inputs, in their order, as ``values`` makes them
    for ``handler`` (and Gradio's request, for a handler that takes one). Gradio passes its
    request only to a leading parameter, hence first; a handler that streams stays a
    generator; the event keeps the name Gradio gave the handler's (``partial`` for one)."""
    wants_request = "request" in inspect.signature(handler).parameters

    def call(inputs: tuple, request: gr.Request) -> Any:
        extra = {"request": request} if wants_request else {}
        return handler(*values(inputs), **extra)

    if inspect.isgeneratorfunction(handler):

        def event(request: gr.Request, *inputs: Any) -> Any:
            yield from call(inputs, request)

    else:

        def event(request: gr.Request, *inputs: Any) -> Any:
            return call(inputs, request)

    event.__name__ = event.__qualname__ = getattr(handler, "__name__", type(handler).__name__)
    event.handler = handler  # type: ignore[attr-defined]  # what it calls, for a reader
    return event
