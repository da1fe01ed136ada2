"""The model picker and the form a model's schema builds (issue 25's page).

Kling v2.6 Pro image to video is chosen when the page opens, and its form is the one it has
always been: the picker sits in the row of the length and the audio switch, and nothing
else shows. Another model's fields are laid out from its schema (``plan``): its negative
prompt, length (a list of whole seconds) and audio switch take the form's own fields; every
other field takes a place in a fixed set of spare fields, shown with the field's label,
choices and bounds (``SLOTS``: enums as choices, switches, bounded numbers with a default
as sliders, other numbers and text as boxes); a last frame and reference images where the
model takes them (each checked as it arrives, like the first frame). Lists and objects
(multi-shot prompts, camera paths) are not on the page yet: a note names them, and their
defaults are sent.

A model's form is shown by one event (``StudioEvents.switch``), which keeps what still
applies: each field the new model shares with the one shown keeps its value where the new
model's schema accepts it. The hidden field ``shown`` names the model whose form is shown,
and it is what Generate and the price read (never the picker alone, which may be ahead of
its form for a moment). ``options_from`` turns the shown form back into the model's fields.

Imports ``base``, ``parts``, ``errors``, ``images``, ``request`` (the specs) and the
catalogue's ``ModelEntry`` (a type); never ``form`` (which imports this).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import errors
from ..catalogue import snapshot
from ..catalogue.schema import ModelEntry
from ..images import prepare_image
from ..request import KLING, ModelSpec, spec_of
from .base import QUIET, PageBase
from .parts import UploadedImage

if TYPE_CHECKING:
    from .form import Form
    from .handlers import Handlers

log = logging.getLogger(__name__)

# The spare fields, by kind, and how many of each (the most any bundled model needs, and one
# more): a model with more of a kind has the rest noted as not on the page.
POOLS = (("choice", 6), ("switch", 4), ("slider", 3), ("number", 3), ("text", 3))
SLOTS = tuple(f"{kind}-{n}" for kind, count in POOLS for n in range(count))
# The form's own fields a model's field may take: (field name, the kind it must be).
OWN = {"negative_prompt": ("negative", "text"), "generate_audio": ("audio", "switch"),
       "duration": ("duration", "seconds")}  # fmt: skip
KIND_WORDS = {"image-to-video": "image to video", "text-to-video": "text to video",
              "start-end": "first and last frame"}  # fmt: skip
DURATION_CHOICES = [("5 seconds", 5), ("10 seconds", 10)]  # ours, as the form has them


@dataclass(frozen=True)
class Place:
    """Where one of a model's fields is shown: ``slot`` (one of ``SLOTS``, or "negative",
    "duration", "audio": the form's own) and the field's schema."""

    field: str
    slot: str
    prop: Mapping[str, Any]


@dataclass(frozen=True)
class Plan:
    """A model's form: its fields' places, the fields not on the page (their defaults are
    sent), and its image inputs."""

    model: str
    places: tuple[Place, ...]
    left_out: tuple[str, ...] = ()
    first: str = ""  # "", "optional" or "required"
    last: str = ""
    references: int = 0  # how many reference images it takes at most (0: none)

    def slot_of(self, field: str) -> str | None:
        return next((p.slot for p in self.places if p.field == field), None)


def _kind(prop: Mapping[str, Any]) -> str | None:
    """The spare field a schema property is shown in; None for lists and objects."""
    kind = prop.get("type")
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return "choice"
    if kind == "boolean":
        return "switch"
    if kind in ("integer", "number"):
        bounded = "minimum" in prop and "maximum" in prop and "default" in prop
        return "slider" if bounded else "number"
    if kind == "string":
        return "text"
    return None


def _own(field: str, prop: Mapping[str, Any]) -> str | None:
    """The form's own field ``field`` takes, if it is of the kind that field shows."""
    slot, kind = OWN.get(field, ("", ""))
    if kind == "seconds":
        values = prop.get("enum")
        whole = isinstance(values, list) and values
        return slot if whole and all(type(v) is int for v in values) else None
    if kind and _kind(prop) == kind:
        return slot
    return None


def plan(entry: ModelEntry | None, spec: ModelSpec) -> Plan:
    """``spec``'s form: ours (no entry, or our model) is the form as it always was."""
    if entry is None or spec.model == KLING.model:
        ours = tuple(Place(f.name, OWN[f.name][0], {}) for f in KLING.fields)
        return Plan(KLING.model, ours, first="required")
    free = {kind: [f"{kind}-{n}" for n in range(count)] for kind, count in POOLS}
    places, left = [], []
    for field in spec.fields:
        prop = entry.fields.get(field.name, {})
        slot = _own(field.name, prop)
        kind = _kind(prop)
        if slot is None and kind and free[kind]:
            slot = free[kind].pop(0)
        if slot is None:
            left.append(field.name)
        else:
            places.append(Place(field.name, slot, prop))
    need = spec.needs()
    roles = {"image": "first", "last_frame": "last"}
    inputs = {roles[r]: ("required" if r in need else "optional") for r in spec.roles if r in roles}
    return Plan(spec.model, tuple(places), tuple(left), inputs.get("first", ""),
                inputs.get("last", ""), spec.max_references)  # fmt: skip


def by_slot(values: Sequence[Any]) -> dict[str, Any]:
    """The form's values (its negative prompt, length and audio switch, then ``SLOTS``',
    in the order the page's events list them) by slot."""
    return dict(zip(("negative", "duration", "audio", *SLOTS), values, strict=True))


def options_from(shown: Plan, values: Sequence[Any]) -> dict[str, Any]:
    """The model's fields from the form's values (as ``by_slot`` reads them): text left
    empty and numbers left blank are unset (the vendor's default), not sent as empty."""
    options = {}
    slots = by_slot(values)
    for place in shown.places:
        value = slots.get(place.slot)
        if isinstance(value, str) and not value.strip():
            value = None
        options[place.field] = value
    return options


@dataclass
class StudioPanel:
    """The picker and what a model's form adds to ours."""

    picker: Any  # gr.Dropdown: the model's id
    shown: Any  # hidden gr.Textbox: the model whose form is shown
    end_image: Any  # the last frame (shown for models that take one)
    end_note: Any
    references: Any  # gr.File of images (shown for models that take reference images)
    references_note: Any
    group: Any  # the model's other settings (hidden for ours)
    note: Any  # where the list came from, and the fields not on the page
    slots: dict[str, Any]  # SLOTS -> its component


def picker() -> Any:
    """The model picker, for the row of the length and the audio switch: the bundled
    models at first, the live list once the page has loaded (``StudioEvents.choices``).
    It takes a pick only then: a list replaced under an open picker lost the pick (seen
    under load in CI: the option clicked, no form followed)."""
    return gr.Dropdown(
        choices=_choices(snapshot()),
        value=KLING.model,
        label="Model",
        filterable=True,
        interactive=False,
        elem_id="model",
        min_width=160,
        scale=1,
    )


def end_frame() -> tuple[Any, Any]:
    """The last frame and its note, under the first frame: hidden until a model takes one."""
    image = UploadedImage(
        label="Last frame",
        type="filepath",
        image_mode=None,
        sources=["upload", "clipboard"],
        height=140,
        visible=False,
        elem_id="end-image",
    )
    return image, gr.Markdown(visible=False, elem_id="end-image-note")


def reference_images() -> tuple[Any, Any]:
    """The reference images and their note, under the last frame: hidden until a model
    takes them."""
    files = gr.File(
        label="Reference images",
        file_count="multiple",
        file_types=["image"],
        type="filepath",
        height=120,
        visible=False,
        elem_id="references",
    )
    return files, gr.Markdown(visible=False, elem_id="references-note")


def settings_group(picked: Any, image: Any, note: Any, references: tuple[Any, Any]) -> StudioPanel:
    """The chosen model's other settings, one spare field per kind and place (hidden until a
    model needs it), with the note; ``picked``, ``image`` and ``note``: the picker and the
    last frame's, and ``references`` (the files and their note), laid out elsewhere in the
    form."""
    slots: dict[str, Any] = {}
    with gr.Column(visible=False, elem_id="model-settings") as group:
        words = gr.Markdown(elem_id="model-note")
        with gr.Row(equal_height=True):
            for slot in SLOTS:
                slots[slot] = _spare(slot)
    shown = gr.Textbox(value=KLING.model, visible=False, elem_id="model-shown")
    return StudioPanel(picked, shown, image, note, *references, group, words, slots)


def _spare(slot: str) -> Any:
    kind, _, n = slot.partition("-")
    # Two to a row in the form's column (four squeezed their words into slivers).
    common: dict[str, Any] = {"visible": False, "elem_id": f"model-{slot}", "min_width": 240,
                              "scale": 1}  # fmt: skip
    if kind == "choice":
        return gr.Dropdown(choices=[], value=None, label=f"Choice {n}", **common)
    if kind == "switch":
        return gr.Checkbox(value=False, label=f"Switch {n}", **common)
    if kind == "slider":
        return gr.Slider(0, 1, value=0, label=f"Number {n}", **common)
    if kind == "number":
        return gr.Number(value=None, label=f"Number {n}", **common)
    return gr.Textbox(value="", label=f"Text {n}", lines=1, **common)


def _choices(entries: tuple[ModelEntry, ...] | list[ModelEntry]) -> list[tuple[str, str]]:
    return [(_title(e), e.id) for e in entries]


def _title(entry: ModelEntry) -> str:
    kind = KIND_WORDS.get(entry.kind, entry.kind)
    return entry.name if kind in entry.name else f"{entry.name} · {kind}"


def _label(field: str, entry: ModelEntry | None) -> str:
    words = field.replace("_", " ").strip().capitalize()
    if entry is not None and field in entry.prompt_rewriting:
        return f"{words} (the vendor rewrites your prompt)"
    return words


# What ``form_outputs`` names, in its order (``StudioEvents.form_for``'s values).
OUTPUTS = ("shown", "image", "end_image", "end_note", "references", "references_note", "group",
           "note", "negative", "duration", "audio", *SLOTS)  # fmt: skip


def form_outputs(form: Form) -> list[Any]:
    """What a model's form sets (``StudioEvents.form_for``), in its order."""
    studio = form.studio
    return [studio.shown, form.image, studio.end_image, studio.end_note, studio.references,
            studio.references_note, studio.group, studio.note, form.negative, form.duration,
            form.audio, *(studio.slots[s] for s in SLOTS)]  # fmt: skip


def listen(handlers: Handlers, form: Form, blocks: gr.Blocks) -> None:
    """The picker shows its model's form; the list is the live one once the page loads; a
    last frame is checked as it arrives."""
    studio = form.studio
    spares = [studio.slots[s] for s in SLOTS]
    own = [form.negative, form.duration, form.audio]
    outputs = form_outputs(form)
    # On the person's pick only (``input``): Remix sets the picker and the whole form in one
    # answer, and a switch fired by that change read the fields before they had landed (a
    # remixed seed came back empty, once in CI).
    studio.picker.input(
        handlers.switch, [studio.picker, studio.shown, *own, *spares], outputs,
        trigger_mode="always_last", concurrency_limit=None, **QUIET,
    )  # fmt: skip
    blocks.load(handlers.model_choices, None, studio.picker, **QUIET)
    studio.end_image.change(handlers.check_end_image, [studio.end_image, form.fit],
                            [studio.end_image, studio.end_note], **QUIET)  # fmt: skip
    studio.end_image.clear(lambda: "", None, studio.end_note, **QUIET)
    # On an upload only: a refused one taken off changes the value again, and a second
    # check would say the rest are fine over the reason.
    studio.references.upload(handlers.check_references,
                             [studio.references, studio.shown, form.fit],
                             [studio.references, studio.references_note], **QUIET)  # fmt: skip
    studio.references.clear(lambda: "", None, studio.references_note, **QUIET)


class StudioEvents(PageBase):
    """The picker's events: the live list, a model's form, a last frame's check."""

    def model_choices(self) -> Any:
        """The models offered now (the vendor's list, kept, or the bundled one); the
        picker takes a pick from then on."""
        try:
            entries = self.service.offer().entries
        except Exception as exc:  # the bundled list stays; the picker is never left dead
            if not isinstance(exc, errors.KlingUIError):
                log.exception("the models offered could not be read")
            return gr.update(interactive=True)
        return gr.update(choices=_choices(entries), interactive=True)

    def plan_of(self, model: str) -> Plan:
        """``model``'s form (ours for one no longer offered: what the page shows)."""
        chosen = str(model or "").strip() or KLING.model
        entry = None if chosen == KLING.model else self.service.offer().entry(chosen)
        if entry is None:
            return plan(None, KLING)
        return plan(entry, spec_of(entry.id))

    def sent_plan(self, model: str) -> Plan:
        """``model``'s form for what is sent or priced: ``InputError`` for one no longer
        offered (never ours in its place, which would send or price another model)."""
        shown = self.plan_of(model)
        chosen = str(model or "").strip() or KLING.model
        if shown.model != chosen:
            raise errors.InputError(
                f"The model {chosen} is no longer offered: pick another in the model list."
            )
        return shown

    def switch(self, model: str, shown: str, *values: Any) -> tuple[Any, ...]:
        """``model``'s form in place of ``shown``'s (``values``: the form's negative
        prompt, length, audio switch, then ``SLOTS``' values), keeping each shared field's
        value where the new model accepts it. Outputs: the shown model, the first frame,
        the last frame and its note, the settings group and its note, the form's own
        three fields, then every spare field."""
        before = self.plan_of(shown)
        slots = by_slot(values)
        # The form's own fields keep what was typed in them while a model without them was
        # shown (hidden, not cleared); the spare fields are another model's.
        kept = {field: slots.get(slot) for field, (slot, _) in OWN.items()}
        kept.update({p.field: slots.get(p.slot) for p in before.places})
        return self.form_for(model, kept)

    def form_for(self, model: str, kept: Mapping[str, Any]) -> tuple[Any, ...]:
        """``model``'s form, each field holding its value in ``kept`` (by field name) where
        the model accepts it, else its default: ``switch``'s outputs (Remix's too)."""
        after = self.plan_of(model)
        entry = self.service.offer().entry(after.model)
        spec = spec_of(after.model)
        defaults = {f.name: f.default for f in spec.fields}
        checks = {f.name: f.check for f in spec.fields}
        updates: dict[str, Any] = {s: gr.update(visible=False) for s in SLOTS}
        ours = after.model == KLING.model
        for own in ("negative", "duration", "audio"):  # shown below where the model has it
            updates[own] = gr.update(visible=False)
        for place in after.places:
            value = _kept(kept.get(place.field), checks[place.field], place.prop)
            if value is _NONE:
                value = defaults[place.field]
            updates[place.slot] = _shown(place, value, entry) if not ours else _ours(place, value)
        return (
            after.model,
            gr.update(visible=bool(after.first), label=_first_label(after)),
            gr.update(visible=bool(after.last), label=f"Last frame ({after.last})"),
            gr.update(visible=bool(after.last)),
            gr.update(visible=bool(after.references), label=_references_label(after, entry)),
            gr.update(visible=bool(after.references)),
            gr.update(visible=not ours),
            "" if ours else self._note(after),
            updates["negative"], updates["duration"], updates["audio"],
            *(updates[s] for s in SLOTS),
        )  # fmt: skip

    def remix_page(self, gid: str | None, owner_token: str = "") -> tuple[Any, ...]:
        """Remix on the page: a past job's model and its form (``form_outputs``) holding
        every field it was sent with, its images, then the picker, the prompt and the
        gallery's note (``GalleryEvents.remixed``)."""
        kept, note, image, last, references = self.remixed(gid, owner_token)  # type: ignore[attr-defined]
        if kept is None:
            return (gr.skip(),) * (len(OUTPUTS) + 2) + (note,)
        form = list(self.form_for(kept["model"], kept["options"]))
        form[1] = {**form[1], "value": image}
        form[2] = {**form[2], "value": last}
        form[4] = {**form[4], "value": references or None}
        shown = self.plan_of(kept["model"])
        if shown.model != kept["model"]:  # what the form holds, said as it is
            note = (
                f"Remixed the prompt; that job's model ({kept['model']}) is no longer offered, "
                f"so the form is {KLING.model}'s: check the settings, then Generate."
            )
        else:
            sent = [f for f in shown.left_out if kept["options"].get(f) is not None]
            if sent:
                names = ", ".join(f"`{f}`" for f in sent)
                note += f" Not on this page, so sent as the model's defaults: {names}."
        return (*form, form[0], kept["prompt"], note)

    def _note(self, shown: Plan) -> str:
        offer = self.service.offer()
        lines = [f"**{_title(offer.entry(shown.model))}**"] if offer.entry(shown.model) else []
        if offer.note:
            lines.append(offer.note)
        spec = spec_of(shown.model)
        lines += [f"`{rule.field}`: {rule.words}" for rule in spec.rules]
        if spec.same_aspect:
            lines.append("The last frame must have the first frame's shape.")
        if shown.left_out:
            names = ", ".join(f"`{name}`" for name in shown.left_out)
            lines.append(f"Not on this page yet (the model's defaults are sent): {names}.")
        entry = offer.entry(shown.model)
        media = [*entry.references, *entry.other_media] if entry is not None else []
        if shown.references:
            media = [m for m in media if m != spec.references]
        if spec.references_alone:
            lines.append("Reference images or a first frame: not both.")
        if media:
            names = ", ".join(f"`{name}`" for name in media)
            lines.append(f"Not offered yet (video, audio and other media inputs): {names}.")
        return "\n\n".join(lines)

    def check_end_image(
        self,
        image: str | None,
        fit: str = "reject",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any]:
        """A last frame, checked as it arrives, as the first frame is (its size, its shape,
        with the form's Image fit): one refused leaves the page, its reason in its place
        (kept when the emptied field answers)."""
        if not image:
            return gr.skip(), gr.skip()
        fit = fit if fit in ("crop", "pad") else "reject"
        try:
            prepared = prepare_image(image, fit=fit, owner=self._visitor("", request))
        except errors.InputError as exc:
            return None, f"⚠ Last frame: {exc.user_message} Choose another image."
        done = f" ({prepared.adjusted})" if prepared.adjusted else ""
        size = f"{prepared.width}×{prepared.height}{done}"
        return gr.skip(), f"✓ Last frame OK: will be sent as {size}."

    def check_references(
        self,
        files: list[str] | None,
        model: str,
        fit: str = "reject",
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> tuple[Any, Any]:
        """Reference images, checked as they arrive, each as a frame is (its size, its
        shape, with the form's Image fit), and counted against the shown model's most:
        the first refused is named by its number and taken off, the others stay."""
        if not files:
            return gr.skip(), gr.update(value="")
        most = self.plan_of(model).references
        fit = fit if fit in ("crop", "pad") else "reject"
        visitor = self._visitor("", request)
        for n, path in enumerate(files, 1):
            try:
                prepare_image(path, fit=fit, owner=visitor)
            except errors.InputError as exc:
                kept = [f for f in files if f != path]
                words = exc.user_message
                if isinstance(exc, errors.RatioOutOfRange):
                    words = f"{exc.facts} {REFERENCE_FIT}"
                return kept or None, f"⚠ Reference image {n}: {words}"
        if most and len(files) > most:
            return files[:most], (
                f"⚠ This model takes at most {most} reference images: the first {most} are kept."
            )
        count = f"{len(files)} reference image{'s' if len(files) > 1 else ''}"
        return gr.skip(), f"✓ {count} OK: sent in this order."


REFERENCE_FIT = (
    "Choose Crop or Pad under Image fit in More settings (it applies to every image), or use "
    "another image."
)
_NONE = object()  # no value kept: the new model's default
UNBOUNDED = 1e15  # a number box's bounds where the schema gives none


def _kept(value: Any, check: Any, prop: Mapping[str, Any]) -> Any:
    """``value`` if the new model takes it as it is (``_NONE`` if not, or if it is unset)."""
    if value is None or (isinstance(value, str) and not value.strip() and prop.get("enum")):
        return _NONE
    try:
        checked = check(value)
    except errors.KlingUIError:
        return _NONE
    enum = prop.get("enum")
    if isinstance(enum, list) and checked not in enum:
        return _NONE
    return checked


def _first_sentence(text: str, most: int = 100) -> str:
    """A field's description, short: its first sentence, at most ``most`` characters."""
    first = " ".join(text.split()).split(". ")[0].rstrip(".")
    return first if len(first) <= most else first[: most - 1].rstrip() + "…"


def _first_label(shown: Plan) -> str:
    label = "Image (JPEG, PNG, WebP, GIF or BMP; HEIC: export as JPEG first)"
    if shown.model == KLING.model:
        return label
    return f"First frame ({shown.first}): JPEG, PNG, WebP, GIF or BMP"


def _references_label(shown: Plan, entry: ModelEntry | None) -> str:
    """The reference images' label: how many, and what the model does with them."""
    if not shown.references:
        return "Reference images"
    spec = spec_of(shown.model)
    about = entry.fields.get(spec.references, {}).get("description") if entry else ""
    said = _first_sentence(about or "", 80)
    return f"Reference images (optional, up to {shown.references})" + (f": {said}" if said else "")


OUR_LABELS = {"negative": "Negative prompt", "duration": "Duration", "audio": "Generate audio"}


def _ours(place: Place, value: Any) -> Any:
    """Our model's own fields, as the form has always had them."""
    if place.slot == "duration":
        return gr.update(visible=True, value=value, label="Duration", choices=DURATION_CHOICES)
    return gr.update(visible=True, value=value, label=OUR_LABELS[place.slot])


def _shown(place: Place, value: Any, entry: ModelEntry | None) -> Any:
    """One field of another model in its place, with its label, choices and bounds."""
    prop = place.prop
    # Every setting said outright: Gradio keeps a setting left out (or None) from the model
    # shown before, so one model's bounds, rounding or words would stay on the next's.
    info = _first_sentence(prop.get("description") or "")
    common = {"visible": True, "label": _label(place.field, entry), "value": value}
    slot = place.slot
    if slot == "duration":
        return gr.update(choices=[(f"{v} seconds", v) for v in prop["enum"]], **common)
    if slot in ("negative", "audio"):
        return gr.update(**common)
    kind = slot.partition("-")[0]
    if kind == "choice":
        return gr.update(choices=[(str(v), v) for v in prop["enum"]], info=info, **common)
    if kind == "slider":
        low, high = prop["minimum"], prop["maximum"]
        whole = prop.get("type") == "integer"
        step = 1 if whole else round((high - low) / 100, 6) or 0.01
        return gr.update(minimum=low, maximum=high, step=step, info=info, **common)
    if kind == "number":
        low, high = prop.get("minimum", -UNBOUNDED), prop.get("maximum", UNBOUNDED)
        precision = 0 if prop.get("type") == "integer" else 6
        return gr.update(minimum=low, maximum=high, precision=precision, info=info, **common)
    if kind == "text":
        return gr.update(info=info, **{**common, "value": value or ""})
    return gr.update(info=info, **common)
