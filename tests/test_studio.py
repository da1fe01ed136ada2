"""The form a model's schema builds on the page (``ui.studio``), through the page's own
handlers in demo mode (the bundled snapshot): for every bundled model the form builds, the
request made from what it shows passes the model's schema (``jsonschema``), and the price
line says something; switching keeps what applies and nothing else."""

from __future__ import annotations

import gradio as gr
import pytest
from jsonschema import Draft7Validator

from kling_ui.catalogue import snapshot
from kling_ui.config import MODEL, Settings
from kling_ui.request import SPECS
from kling_ui.service import GenerationService
from kling_ui.simulator import DemoSimulator
from kling_ui.ui import Handlers
from kling_ui.ui.form import studio_request
from kling_ui.ui.studio import SLOTS

ENTRIES = snapshot()
PIXEL = "data:image/png;base64,iVBORw0KGgo="
OWN = ("negative", "duration", "audio")
OUT = ("shown", "image", "end_image", "end_note", "references", "references_note", "group", "note",
       *OWN, *SLOTS)  # fmt: skip


@pytest.fixture(scope="module")
def handlers(tmp_path_factory):
    saved = dict(SPECS)
    settings = Settings(data_dir=tmp_path_factory.mktemp("studio"), poll_interval=0.05)
    demo = DemoSimulator(settings.data_dir, (0.1, 0.2))
    service = GenerationService(settings, demo=demo)
    assert service.demo_mode
    yield Handlers(service)
    service.close()
    demo.stop()
    SPECS.clear()
    SPECS.update(saved)


def switched(handlers, model: str, before: str = MODEL, values=None) -> dict:
    """The switch's outputs by name, from ``before``'s form holding ``values`` (by slot)."""
    values = values or {}
    given = [values.get(slot) for slot in (*OWN, *SLOTS)]
    return dict(zip(OUT, handlers.switch(model, before, *given), strict=True))


def shown_values(out: dict) -> dict:
    """What the form shows after a switch, by slot (a hidden field's value is not read)."""
    return {slot: out[slot].get("value") for slot in (*OWN, *SLOTS) if out[slot].get("visible")}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_every_bundled_models_form_builds_and_its_request_passes_its_schema(handlers, entry):
    out = switched(handlers, entry.id)
    assert out["shown"] == entry.id
    form = handlers.plan_of(entry.id)
    assert out["image"]["visible"] is bool(form.first)
    assert out["end_image"]["visible"] is bool(form.last)
    spec = SPECS[entry.id]
    assert out["references"]["visible"] is bool(spec.references) is bool(form.references)
    values = shown_values(out)
    # Every field the page shows is one of the model's, with its schema's choices.
    for place in form.places:
        assert place.field in entry.fields
        assert out[place.slot]["visible"] is True
        if place.slot.startswith("choice") or place.slot == "duration":
            choices = [value for _, value in out[place.slot]["choices"]]
            assert choices == entry.fields[place.field]["enum"]
    assert {p.field for p in form.places} | set(form.left_out) == {
        f.name for f in SPECS[entry.id].fields
    }
    spares = [values.get(slot) for slot in SLOTS]
    fields = (None, "A kite rises over the dunes.", values.get("negative"),
              values.get("duration"), values.get("audio"))  # fmt: skip
    made = studio_request(form, fields, spares, needs_image=False)
    assert made.model == entry.id
    images = {role: PIXEL for role in spec.roles}
    images.update({f"reference_{n}": PIXEL for n in range(1, min(2, spec.max_references) + 1)})
    body = _with(made, images).body()
    if spec.references:  # each model's own list field, in order
        assert body[spec.references] == [PIXEL] * min(2, spec.max_references)
    sent = {k: v for k, v in body.items() if k != "model"}
    errors = [e.message for e in Draft7Validator(entry.schema).iter_errors(sent)]
    assert not errors, errors
    for name in entry.prompt_rewriting:  # shown, and off unless turned on
        if entry.fields[name].get("type") == "boolean":
            assert body[name] is False
    price = handlers.form_price(entry.id, "", *(values.get(slot) for slot in (*OWN, *SLOTS)))
    assert price.startswith("**Price:**"), price


def _with(made, images):
    for role, url in images.items():
        made = made.with_image(url, role)
    return made


def test_switching_keeps_the_fields_the_new_model_takes_and_no_others(handlers):
    wan, veo = "alibaba/wan-2-6-i2v", "google/veo-3.1-i2v"
    kept = switched(handlers, wan, values={"negative": "blur", "duration": 10, "audio": False})
    assert kept["negative"]["value"] == "blur"
    assert kept["duration"]["value"] == 10 and kept["audio"]["value"] is False
    wan_form = handlers.plan_of(wan)
    seed = wan_form.slot_of("seed")
    rewrite = wan_form.slot_of("enhance_prompt")
    assert seed and kept[seed]["value"] is None  # no default: left to the vendor
    assert "rewrites your prompt" in kept[rewrite]["label"] and kept[rewrite]["value"] is False
    values = shown_values(kept)
    values.update({seed: 7, "duration": 15})
    # Veo: 15 s is not one of its lengths (its default, 8, instead); it has no negative
    # prompt (hidden) and no seed; its audio switch keeps "off".
    veo_out = switched(handlers, veo, wan, values)
    assert veo_out["duration"]["value"] == 8
    assert veo_out["negative"]["visible"] is False
    assert veo_out["audio"]["value"] is False
    assert "Demo mode" in veo_out["note"]  # the list is the bundled one, and says so
    # Back to ours: the form as it always was, what applies kept.
    ours = switched(handlers, MODEL, veo, shown_values(veo_out) | {"negative": "blur"})
    assert ours["group"]["visible"] is False and ours["note"] == ""
    assert ours["duration"]["choices"] == [("5 seconds", 5), ("10 seconds", 10)]
    assert ours["duration"]["value"] == 5 and ours["negative"]["value"] == "blur"
    assert all(ours[slot] == {"__type__": "update", "visible": False} for slot in SLOTS)


def test_a_value_outside_the_models_schema_is_refused_in_words_naming_the_field(handlers):
    runway = "runway/gen4_turbo"
    form = handlers.plan_of(runway)
    values = shown_values(switched(handlers, runway))
    values[form.slot_of("seed")] = -3
    spares = [values.get(slot) for slot in SLOTS]
    price = handlers.form_price(runway, "", "", 5, True, *spares)
    assert price.startswith("Price: seed:") and "minimum" in price
    with pytest.raises(Exception, match="seed"):
        studio_request(form, (PIXEL, "A door.", "", 5, True), spares)


def test_the_prompt_counter_counts_against_the_shown_models_limit(handlers):
    handlers.service.offer()  # the bundled models, known by id from here
    assert handlers.count("abc") == "3 / 2500 characters"
    assert handlers.count("abc", "runway/gen4_turbo") == (
        "3 / 1000 characters · this model: no sound, no negative prompt"
    )  # what the shown model leaves out, from its schema
    assert handlers.count("abc", "klingai/video-v2-6-pro-text-to-video") == "3 / 2500 characters"
    assert "1001 / 1000 characters (over the limit)" in handlers.count(
        "x" * 1001, "runway/gen4_turbo"
    )


def test_remix_puts_back_a_jobs_model_its_frames_and_every_field(handlers, photo, tmp_path):
    from PIL import Image

    from kling_ui.request import Request

    runway = "runway/gen4_turbo"
    handlers.service.offer()  # the bundled models, asked for by id from here
    last = tmp_path / "last.jpg"
    Image.new("RGB", (800, 600), (200, 60, 30)).save(last)
    token = "r" * 32
    owner = handlers.service.visitor(token, "")
    asked = Request.make("A door opens.", model=runway, seed=42, duration=10)
    *_, done = handlers.service.generate(photo, asked, owner=owner, end_image=str(last))
    assert done.phase == "completed", done
    out = dict(zip((*OUT, "picker", "prompt", "note"),
                   handlers.remix_page(done.generation_id, token), strict=True))  # fmt: skip
    assert out["shown"] == out["picker"] == runway and out["prompt"] == "A door opens."
    assert out["image"]["value"] and out["end_image"]["value"]  # copies of both frames sent
    assert Image.open(out["end_image"]["value"]).size == (800, 600)
    assert out["end_image"]["visible"] is True
    form = handlers.plan_of(runway)
    assert out[form.slot_of("seed")]["value"] == 42 and out["duration"]["value"] == 10
    assert out["note"].startswith("Remixed: that job's model (runway/gen4_turbo)")
    # Someone else's browser gets nothing of it.
    refused = handlers.remix_page(done.generation_id, "s" * 32)
    assert refused[-1].startswith("Pick") and refused[0] == gr.skip()


def test_a_video_goes_on_with_any_model_that_starts_from_an_image(handlers, photo):
    from kling_ui import errors
    from kling_ui.request import Request

    service = handlers.service
    service.offer()
    owner = service.visitor("c" * 32, "")
    *_, first = service.generate(photo, Request.make("The door."), owner=owner)
    start = service.continue_from(first.generation_id, owner)
    asked = Request.make("It opens.", model="runway/gen4_turbo")
    *_, second = service.generate(str(start.frame), asked, owner=owner,
                                  parent_id=start.parent.job_id)  # fmt: skip
    assert second.phase == "completed", second
    assert service.entry(second.job_id).request.model == "runway/gen4_turbo"
    assert service.entry(second.job_id).parent_id == first.job_id
    text_only = Request.make("And then.", model="klingai/video-v2-6-pro-text-to-video")
    with pytest.raises(errors.InputError, match="makes video from text only"):
        next(service.generate(None, text_only, owner=owner, parent_id=second.job_id))


def test_a_batch_takes_the_shown_model_and_its_fields(handlers, photo):
    service = handlers.service
    service.offer()
    token = "b" * 32
    runway = "runway/gen4_turbo"
    values = shown_values(switched(handlers, runway))
    values[handlers.plan_of(runway).slot_of("seed")] = 9
    given = [values.get(slot) for slot in (*OWN, *SLOTS)]
    made = handlers.batch_page([photo], "One.\nTwo.", 2, "", token, "reject", runway,
                               *given)  # fmt: skip
    assert len(made["items"]) == 4, made
    for item in made["items"]:
        job = service.entry(item["job_id"])
        assert job.request.model == runway and job.request.options["seed"] == 9
    price = handlers.batch_form_price([photo], "One.\nTwo.", 2, runway, "", *given)
    assert price.startswith("**Price:** 5 s: price not known in advance (a batch of 4)"), price
    # A model that makes video from text: prompt lines x takes, no images.
    text = "klingai/video-v2-6-pro-text-to-video"
    given = [shown_values(switched(handlers, text)).get(s) for s in (*OWN, *SLOTS)]
    made = handlers.batch_page([], "Rain.\nSnow.", 1, "", token, "reject", text, *given)
    assert len(made["items"]) == 2, made
    refused = handlers.batch_page([photo], "Rain.", 1, "", token, "reject", text, *given)
    assert refused["items"] == [] and "text only" in refused["error"]
    # A model that needs a last frame for each video is refused in words, nothing queued.
    veo = "google/veo-3.1-first-last-image-to-video"
    given = [shown_values(switched(handlers, veo)).get(s) for s in (*OWN, *SLOTS)]
    refused = handlers.batch_page([photo], "Door.", 1, "", token, "reject", veo, *given)
    assert refused["items"] == [] and "last frame" in refused["error"]


def test_the_rules_schemas_cant_say_are_checked_before_sending(handlers, photo, tmp_path):
    """The overlay's cross-field rules and the same shape for both frames: refused in words
    that name the field (or both sizes), nothing sent."""
    from PIL import Image

    from kling_ui import errors
    from kling_ui.request import Request

    service = handlers.service
    service.offer()
    owner = service.visitor("x" * 32, "")
    tall = tmp_path / "tall.jpg"
    Image.new("RGB", (600, 800), (10, 90, 200)).save(tall)
    omni = "klingai/video-v3-omni-720p-image-to-video"
    loud = Request.make("Door.", model=omni, generate_audio=True)
    before = len(service.recent(1000))
    with pytest.raises(errors.InputError, match="generate_audio: a last frame can't be used"):
        next(service.generate(photo, loud, owner=owner, end_image=str(tall)))
    veo = Request.make("The door opens.", model="google/veo-3.1-first-last-image-to-video")
    with pytest.raises(errors.InputError, match="first is 800×600, the last 600×800"):
        next(service.generate(photo, veo, owner=owner, end_image=str(tall)))
    assert len(service.recent(1000)) == before  # nothing written, nothing sent
    # Kept, it goes: the audio off with the last frame.
    quiet = Request.make("Door.", model=omni, generate_audio=False)
    *_, done = service.generate(photo, quiet, owner=owner, end_image=str(tall))
    assert done.phase == "completed", done


def test_what_the_page_does_not_offer_yet_is_named_in_the_models_note(handlers):
    out = switched(handlers, "alibaba/happyhorse-1-0")
    note = out["note"]
    assert "Not offered yet" in note and "`video_url`" in note
    assert "reference_image_urls" not in note  # offered: the reference images' field
    assert out["references"]["visible"] and "up to 9" in out["references"]["label"]
    assert "not both" in switched(handlers, "x-ai/grok-imagine-video")["note"]
    rules = switched(handlers, "klingai/video-v3-omni-720p-image-to-video")["note"]
    assert "`generate_audio`: a last frame can't be used with the audio on" in rules
    assert "first frame's shape" in switched(handlers, "pixverse/v5/transition")["note"]


def test_a_spare_field_says_every_setting_so_none_stays_from_the_last_model(handlers):
    """Gradio keeps a setting an update leaves out (or sets to None) from the component's
    last: a number box's bounds, rounding and words are always said outright."""
    runway, seedance = "runway/gen4_turbo", "bytedance/seedance-1-5-pro"
    switched(handlers, runway)  # its seed: 0 to 4294967295
    out = switched(handlers, seedance, runway)
    seed = out[handlers.plan_of(seedance).slot_of("seed")]
    assert seed["value"] == -1 and seed["minimum"] <= -1 and seed["maximum"] >= 2**32
    assert seed["precision"] == 0 and isinstance(seed["info"], str)
    for update in out.values():
        if isinstance(update, dict) and update.get("visible"):
            assert None not in (update.get(k, "") for k in ("info", "minimum", "precision"))
    values = shown_values(out)
    price = handlers.form_price(seedance, "", *(values.get(s) for s in (*OWN, *SLOTS)))
    assert price.startswith("**Price:**"), price  # -1 passes its own schema


def test_a_model_no_longer_offered_is_refused_not_replaced_by_ours(handlers, photo):
    gone = "acme/gone-tomorrow"
    price = handlers.form_price(gone, "", "", 5, True, *([None] * len(SLOTS)))
    assert price == f"Price: The model {gone} is no longer offered: pick another in the model list."
    made = handlers.batch_page([photo], "A.", 1, "", "g" * 32, "reject", gone, "", 5, True,
                               *([None] * len(SLOTS)))  # fmt: skip
    assert made["items"] == [] and "no longer offered" in made["error"]


def test_reference_images_go_in_order_and_remix_puts_them_back(handlers, photo, tmp_path):
    """Seedance 2.0's reference images: the page's files go in order as the request's
    reference roles, are prepared and checked like a frame, kept, and Remix puts them back;
    more than the model takes, or one it would refuse, is said in words."""
    from PIL import Image

    from kling_ui import errors
    from kling_ui.request import reference_roles

    model = "bytedance/seedance-2-0"
    handlers.service.offer()
    wide, tall = tmp_path / "wide.png", tmp_path / "tall.png"
    Image.new("RGB", (1200, 600), (200, 30, 30)).save(wide)
    Image.new("RGB", (300, 1200), (0, 0, 0)).save(tall)
    form = handlers.plan_of(model)
    values = shown_values(switched(handlers, model))
    spares = [values.get(slot) for slot in SLOTS]
    fields = (None, "Two cats meet.", values.get("negative"), values.get("duration"),
              values.get("audio"))  # fmt: skip
    made = studio_request(form, fields, spares, needs_image=False, references=[photo, str(wide)])
    assert reference_roles(made.images) == ["reference_1", "reference_2"]
    token = "f" * 32
    *_, done = handlers.service.generate(None, made, owner=handlers.service.visitor(token, ""))
    assert done.phase == "completed", done
    out = dict(zip((*OUT, "picker", "prompt", "note"),
                   handlers.remix_page(done.generation_id, token), strict=True))  # fmt: skip
    assert out["shown"] == model and out["references"]["visible"] is True
    kept = out["references"]["value"]
    assert [Image.open(p).size for p in kept] == [(800, 600), (1200, 600)]  # in their order
    with pytest.raises(errors.InputError, match="at most 9 reference images"):
        studio_request(form, fields, spares, needs_image=False, references=[photo] * 10)
    # On the page, as they arrive: one refused is named and taken off, the others stay.
    files, note = handlers.check_references([photo, str(tall)], model)
    assert files == [photo] and note.startswith("⚠ Reference image 2:"), note
    files, note = handlers.check_references([photo] * 10, model)
    assert files == [photo] * 9 and "at most 9" in note
    assert handlers.check_references([photo], model)[1].startswith("✓ 1 reference image OK")
