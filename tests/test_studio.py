"""The form a model's schema builds on the page (``ui.studio``), through the page's own
handlers in demo mode (the bundled snapshot): for every bundled model the form builds, the
request made from what it shows passes the model's schema (``jsonschema``), and the price
line says something; switching keeps what applies and nothing else."""

from __future__ import annotations

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
OUT = ("shown", "image", "end_image", "end_note", "group", "note", *OWN, *SLOTS)


@pytest.fixture(scope="module")
def handlers(tmp_path_factory):
    saved = dict(SPECS)
    settings = Settings(data_dir=tmp_path_factory.mktemp("studio"))
    demo = DemoSimulator(settings.data_dir, (0.1, 0.2))
    service = GenerationService(settings, demo=demo, start=False)
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
    body = _with(made, {role: PIXEL for role in SPECS[entry.id].roles}).body()
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
    assert handlers.count("abc") == "3 / 2500 characters"
    assert handlers.count("abc", "runway/gen4_turbo") == "3 / 1000 characters"
    assert handlers.count("x" * 1001, "runway/gen4_turbo").endswith("(over the limit)")
