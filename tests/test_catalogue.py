"""The bundled model catalogue (``kling_ui/catalogue``): every model in it can be offered,
its defaults and a create body built from them pass the model's schema (checked with
``jsonschema``), and the vendor's schema quirks are handled as the overlay says."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from kling_ui import request, rules
from kling_ui.catalogue import KINDS, SchemaError, normalize, snapshot
from kling_ui.catalogue.build import build
from kling_ui.config import MODEL

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path(
    os.environ.get("KLING_UI_VIDEO_MODELS_DIR")
    or ROOT.parent / "shared" / "spec" / "aimlapi" / "video-models"
)
PIXEL = (  # a 1x1 PNG, as the app sends images: a data URI
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8AAAwMBAgE"
    "AAMgLJz4AAAAASUVORK5CYII="
)
ENTRIES = snapshot()


def body(entry) -> dict:
    """A create body as the form would send it untouched: the prompt, every frame slot
    filled, each field's default (the model id is the schema's own and not in ``schema``)."""
    out = {"prompt": "The camera pans slowly across the scene."}
    for field in entry.frames.values():
        out[field] = PIXEL
    out.update(entry.defaults())
    return out


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_every_bundled_model_can_be_offered_and_its_defaults_pass_its_schema(entry):
    assert entry.kind in KINDS
    assert entry.name
    Draft7Validator.check_schema(entry.schema)
    validator = Draft7Validator(entry.schema)
    errors = [e.message for e in validator.iter_errors(body(entry))]
    assert not errors, errors
    # Every field's own default passes its field's schema (no "5" beside an integer enum).
    for name, value in entry.defaults().items():
        assert not list(Draft7Validator(entry.fields[name]).iter_errors(value)), (name, value)
    # The app can fill everything the model requires: the prompt and image slots.
    assert set(entry.required) <= {"prompt", *entry.frames.values()}
    if entry.kind != "text-to-video":
        assert "first" in entry.frames
    assert not set(entry.hidden) & set(entry.defaults())


def test_the_snapshot_covers_the_families_people_ask_for_with_kling_v26_pro_first():
    ids = [e.id for e in ENTRIES]
    assert ids[0] == MODEL
    by_id = {e.id: e for e in ENTRIES}
    assert by_id["klingai/video-v2-6-pro-text-to-video"].kind == "text-to-video"
    assert by_id["klingai/video-o1-image-to-video"].frames["last"] == "last_image_url"
    assert by_id["google/veo-3.1-i2v"].kind == "image-to-video"
    assert by_id["google/veo-3.1-first-last-image-to-video"].kind == "start-end"
    assert by_id["runway/gen4_turbo"].frames["last"] == "tail_image_url"
    assert "seed" in by_id["bytedance/seedance-1-5-pro"].fields
    assert {e.kind for e in ENTRIES} == set(KINDS)
    assert len(ids) == len(set(ids)) >= 90
    assert "luma/ray-1-6" not in by_id  # retired (overlay.json): no page, not in the model list


def test_kling_v26_pro_agrees_with_the_request_the_app_sends_today():
    """The bundled entry and the app's own spec (``request.KLING``) say the same."""
    kling = ENTRIES[0]
    assert kling.kind == "image-to-video" and kling.frames == {"first": "image_url"}
    assert kling.fields["duration"]["enum"] == [5, 10]
    own = {f.name: f.default for f in request.KLING.fields}
    defaults = kling.defaults()
    assert defaults == {k: v for k, v in own.items() if k != "negative_prompt"}
    assert type(defaults["duration"]) is int and type(defaults["generate_audio"]) is bool
    assert set(own) <= set(kling.fields)
    assert kling.fields["prompt"]["maxLength"] == rules.MAX_PROMPT_CHARS
    assert "duration" in kling.coerced  # the vendor's default is the string "5"
    assert kling.hidden == ("provider",)


def test_prompt_rewriting_on_the_vendors_side_is_sent_off_unless_asked():
    rewriting = [e for e in ENTRIES if e.prompt_rewriting]
    assert rewriting
    for entry in rewriting:
        for name in entry.prompt_rewriting:
            assert entry.defaults()[name] is False, (entry.id, name)


def _document(properties: dict, required: list, components: dict | None = None) -> dict:
    schema = {"type": "object", "properties": {"model": {"type": "string", "enum": ["v/m"]},
              **properties}, "required": ["model", *required]}  # fmt: skip
    return {
        "openapi": "3.0.0",
        "paths": {"/v2/video/generations": {"post": {"requestBody": {"content": {
            "application/json": {"schema": schema}}}}}},
        "components": components or {},
    }  # fmt: skip


def test_a_schema_is_normalized_refs_resolved_defaults_coerced_frames_found():
    doc = _document(
        {
            "prompt": {"type": "string"},
            "image_url": {"type": "string", "format": "uri", "required": True},  # Swagger's way
            "tail_image_url": {"$ref": "#/components/schemas/Frame"},
            "duration": {"type": "integer", "enum": [4, 8], "default": "8"},
            "fps": {"type": "integer", "enum": [24, 30], "default": "25"},  # not a choice
            "steps": {"type": "integer", "default": "5.5"},  # not a whole number
            "scale": {"type": "number", "default": "nan"},  # not a number JSON can write
            "flag": {"type": "integer", "enum": [0, 1], "default": True},  # True is not 1
            "label": {"type": "string", "enum": ["5"], "default": 5.0},
            "loop": {"type": "boolean", "default": "false"},
            "shots": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"duration": {"type": "integer", "default": "5"}},
                },
            },  # fmt: skip
            "video_url": {"type": "string"},
            "enhance_prompt": {"type": "boolean", "default": True},
        },
        ["prompt", "tail_image_url"],
        {"schemas": {"Frame": {"type": "string", "description": "The last frame."}}},
    )
    entry = normalize(doc)
    assert entry.id == "v/m" and entry.kind == "start-end"
    assert entry.frames == {"first": "image_url", "last": "tail_image_url"}
    assert entry.fields["tail_image_url"]["description"] == "The last frame."
    assert entry.fields["duration"]["default"] == 8
    assert type(entry.fields["duration"]["default"]) is int
    for name in ("fps", "steps", "scale", "flag"):
        assert "default" not in entry.fields[name], name
    assert entry.fields["label"]["default"] == "5"
    assert entry.fields["loop"]["default"] is False
    assert entry.fields["shots"]["items"]["properties"]["duration"]["default"] == 5
    coerced = {"duration", "fps", "steps", "scale", "flag", "label", "loop", "shots"}
    assert set(entry.coerced) == coerced
    assert entry.other_media == ("video_url",)
    assert entry.defaults() == {"duration": 8, "loop": False, "enhance_prompt": False, "label": "5"}
    assert "model" not in entry.fields
    assert set(entry.required) == {"prompt", "image_url", "tail_image_url"}
    assert "required" not in entry.fields["image_url"]
    assert json.loads(json.dumps(entry.to_json())) == entry.to_json()


def test_documents_that_are_not_a_models_create_are_refused_in_words():
    with pytest.raises(SchemaError, match="create operation"):
        normalize({"paths": {"/v2/video/generations": {"get": {}}}})
    no_id = _document({}, [])
    no_id["paths"]["/v2/video/generations"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["model"] = {"type": "string"}  # fmt: skip
    with pytest.raises(SchemaError, match="model id"):
        normalize(no_id)
    with pytest.raises(SchemaError, match="reference"):
        normalize(_document({"x": {"$ref": "https://elsewhere/schema.json"}}, []))
    with pytest.raises(SchemaError, match="reference to nothing"):
        normalize(_document({"x": {"$ref": "#/components/schemas/Gone"}}, []))


@pytest.mark.skipif(not SPEC.is_dir(), reason=f"the vendor's documents are not here ({SPEC})")
def test_the_bundled_snapshot_is_what_build_writes_from_the_vendors_documents():
    """Edit overlay.json, then ``python -m kling_ui.catalogue.build`` (kling_ui/catalogue)."""
    built = json.loads(json.dumps(build(SPEC)))
    committed = json.loads((ROOT / "kling_ui" / "catalogue" / "snapshot.json").read_text())
    assert built["models"] == committed["models"]


# --- a catalogue model as a request -----------------------------------------------------

LINK = "https://example.com/frame.jpg"


@pytest.fixture(scope="module")
def registered():
    """Every bundled model requestable, in a copy of the registry (put back after)."""
    from kling_ui.catalogue.specs import register_snapshot

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(request, "SPECS", dict(request.SPECS))
        register_snapshot(ENTRIES)
        yield {e.id: e for e in ENTRIES}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_every_bundled_model_makes_a_request_whose_body_passes_its_schema(registered, entry):
    images = {role: PIXEL for role in request.spec_of(entry.id).roles}
    made = request.Request.make("A kite rises over the dunes.", model=entry.id, images=images)
    body = made.body()
    assert body["model"] == entry.id
    sent = {k: v for k, v in body.items() if k != "model"}
    errors = [e.message for e in Draft7Validator(entry.schema).iter_errors(sent)]
    assert not errors, errors
    for name in entry.prompt_rewriting:  # off unless the person turns it on
        if entry.fields[name].get("type") == "boolean":
            assert body[name] is False
    assert not set(body) & set(entry.hidden)
    if entry.kind != "text-to-video":
        with pytest.raises(request.errors.InputError, match="Add an image first"):
            request.Request.make("A kite.", model=entry.id).body()


def test_a_models_own_names_and_limits_reach_the_body(registered):
    runway = request.Request.make(
        "A door opens.", model="runway/gen4_turbo",
        images={"image": LINK, "last_frame": LINK}, duration="10",
    )  # fmt: skip
    body = runway.body()
    assert body["tail_image_url"] == LINK and body["duration"] == 10
    o1 = request.Request.make(
        "A door closes.", model="klingai/video-o1-image-to-video",
        images={"image": LINK, "last_frame": LINK},
    )  # fmt: skip
    assert o1.body()["last_image_url"] == LINK
    seeded = request.Request.make("Dunes.", model="bytedance/seedance-1-5-pro", seed=0)
    assert seeded.body()["seed"] == 0  # 0 is a seed, not an empty field
    text_only = request.Request.make("Dunes.", model="klingai/video-v2-6-pro-text-to-video")
    assert "image_url" not in text_only.body()


def test_a_start_and_end_model_needs_both_frames_and_odd_values_are_refused(registered):
    both = "google/veo-3.1-first-last-image-to-video"
    with pytest.raises(request.errors.InputError, match="Add the last frame too"):
        request.Request.make("Dusk.", model=both, images={"image": LINK}).body()
    made = request.Request.make("Dusk.", model=both, images={"image": LINK, "last_frame": LINK})
    assert made.body()["last_image_url"] == LINK
    with pytest.raises(request.errors.InputError, match="not a number"):
        request.Request.make("Dusk.", model="krea/krea-wan-14b/text-to-video", seed=float("nan"))
    off = request.Request.make("Dusk.", model="google/veo-3.1-i2v", generate_audio="false")
    assert off.options["generate_audio"] is False  # a CLI's --set comes as text


def test_a_spec_whose_image_fields_do_not_match_its_roles_is_refused():
    with pytest.raises(ValueError, match="one body field for each image role"):
        request.ModelSpec("x/y", ("image", "last_frame"), (), image_fields=("image_url",))
    with pytest.raises(ValueError, match="required image role"):
        request.ModelSpec("x/y", (), (), required_roles=("image",))


@pytest.mark.parametrize(
    ("model", "fields", "words"),
    [
        ("google/veo-3.1-i2v", {"duration": 7}, "duration: 7 is not one of"),
        ("google/veo-3.1-i2v", {"resolution": "4k"}, "resolution"),
        ("bytedance/seedance-1-5-pro", {"seed": "seven"}, "seed"),
        ("google/veo-3.1-i2v", {"seed": 3}, "no setting named 'seed'"),
        ("klingai/video-v2-6-pro-text-to-video", {}, "takes no image"),
    ],
)
def test_a_value_outside_a_models_schema_is_refused_in_words_naming_the_field(
    registered, model, fields, words
):
    images = {"image": LINK} if "text-to-video" in model else None
    with pytest.raises(request.errors.InputError, match=words):
        request.Request.make("Dunes.", model=model, images=images, **fields)


def test_ours_keeps_its_own_spec_when_the_snapshot_is_registered(registered):
    assert request.spec_of(MODEL) is request.KLING


def test_the_simulator_takes_each_of_its_models_bodies_as_the_request_writes_them(
    registered, simulator
):
    """Two readings of the same schemas, written apart (ours, and the simulator's raw
    ``jsonschema`` check): every body the request writes is one the simulator takes."""
    import requests

    video = {"type": "internal/video-generations/submit"}
    served = requests.get(simulator.url + "/v1/models", params=video, timeout=5).json()["data"]
    assert len(served) >= 6
    for item in served:
        roles = request.spec_of(item["id"]).roles
        made = request.Request.make(
            "Rain on a window.", model=item["id"], images={r: PIXEL for r in roles}
        )
        answer = requests.post(
            simulator.url + "/v2/video/generations", json=made.body(),
            headers={"Authorization": "Bearer sk-test"}, timeout=5,
        )  # fmt: skip
        assert answer.status_code == 200, (item["id"], answer.text)
        assert answer.json()["id"].endswith(":" + item["id"])


# --- the live catalogue, read by the client from the simulator ---------------------------


def test_the_live_catalogue_is_read_with_its_etag_and_each_schema_from_the_apis_host(simulator):
    import requests

    from kling_ui.catalogue.live import merge
    from kling_ui.client import read_model_document, read_video_models

    session, timeout = requests.Session(), (3.0, 5.0)
    first = read_video_models(session, simulator.url, etag=None, timeout=timeout)
    assert len(first.models) >= 6 and first.etag
    again = read_video_models(session, simulator.url, etag=first.etag, timeout=timeout)
    assert again.unchanged and not again.models
    merged = merge(
        first.models,
        lambda url: read_model_document(session, simulator.url, url, timeout=timeout),
    )
    assert [e.id for e in merged.entries][0] == MODEL
    assert {e.id for e in merged.entries} == {m.id for m in first.models}
    assert not merged.left_out and not merged.from_snapshot


@pytest.mark.parametrize(
    ("link", "followed"),
    [
        (
            "https://api.example.com/docs-json?model=a%2Fb",
            "https://api.example.com/docs-json?model=a%2Fb",
        ),
        (
            "https://api.example.com:443/docs-json?model=x",
            "https://api.example.com/docs-json?model=x",
        ),
        ("https://evil.example\\@api.example.com/d", None),  # urllib3 would go to evil.example
        ("https://user@api.example.com/d", None),
        ("https://api.example.com.evil.example/d", None),
        ("http://api.example.com/d", None),  # not the API's scheme
        ("https://api.example.com:8443/d", None),
        ("https://api.example.com:abc/d", None),
        ("https://api.example.com/d\nHost: evil", None),
        ("/docs-json?model=x", None),  # no host: not a link the vendor gives
    ],
)
def test_a_schema_link_is_followed_only_on_the_apis_own_host(link, followed):
    from kling_ui.client.models import api_link

    assert api_link(link, "https://api.example.com") == followed


def test_a_schema_link_off_the_apis_host_is_not_followed(simulator):
    import requests

    from kling_ui import errors
    from kling_ui.client import read_model_document

    session = requests.Session()
    for url in ("https://elsewhere.example/docs-json?model=x", "http://127.0.0.1:1/docs-json"):
        with pytest.raises(errors.APIStatusError, match="off the API's host"):
            read_model_document(session, simulator.url, url, timeout=(1.0, 1.0))


def test_a_model_only_the_live_catalogue_knows_is_offered_and_a_failed_schema_falls_back():
    from kling_ui.catalogue.live import merge
    from kling_ui.client import ListedModel

    new = _document(
        {"prompt": {"type": "string"}, "image_url": {"type": "string"},
         "duration": {"type": "integer", "enum": [3, 6], "default": "6"}},
        ["prompt", "image_url"],
    )  # fmt: skip
    new["paths"]["/v2/video/generations"]["post"]["requestBody"]["content"]["application/json"][
        "schema"]["properties"]["model"]["enum"] = ["newco/video-1"]  # fmt: skip
    editor = _document({"video_url": {"type": "string"}}, ["video_url"])
    documents = {"new": new, "editor": editor}

    def fetch(url):
        if url not in documents:
            raise ConnectionError("not reached")
        return documents[url]

    listed = [
        ListedModel("newco/video-1", "NewCo Video 1", docs_json="new"),
        ListedModel("v/m", "An editor", docs_json="editor"),  # needs a video to edit
        ListedModel(MODEL, "Kling", docs_json="unreachable"),  # the snapshot's reading
        ListedModel("gone/model", "Gone", docs_json="unreachable"),
    ]
    # An alias that is another listed model's id does not stand in for it.
    listed.append(ListedModel("other/name", "Other", aliases=("newco/video-1",)))
    merged = merge(listed, fetch)
    assert [e.id for e in merged.entries] == [MODEL, "newco/video-1"]
    assert merged.left_out["other/name"] == "no schema link"
    assert merged.from_snapshot == (MODEL,)
    assert merged.entries[1].fields["duration"]["default"] == 6
    assert "video_url" in merged.left_out["v/m"]
    assert "ConnectionError" in merged.left_out["gone/model"]


def test_a_strange_catalogue_answer_gives_no_models_rather_than_an_error():
    from kling_ui.client.parsers import parse_model_document, parse_video_models

    video = "internal/video-generations/submit"
    assert parse_video_models(None) == [] and parse_video_models({"data": "x"}) == []
    models = parse_video_models({"data": [
        1, {"id": "chat", "type": "openai/chat-completions"}, {"type": video},
        {"id": "a/b", "type": video, "info": {"docsJson": 7}, "aliases": ["b", 3]},
        {"id": "a/b", "type": video},  # listed twice: once
    ]})  # fmt: skip
    seen = [(m.id, m.name, m.aliases, m.docs_json) for m in models]
    assert seen == [("a/b", "a/b", ("b",), None)]
    assert parse_model_document({"openapi": "3.0.0"}) is None
    assert parse_model_document([]) is None
