"""The video models offered (``service.models``): the vendor's catalogue and each model's
schema, read through the real client from the simulator over loopback, kept in the database
(every replica and a restart start from the last answer), asked again only when due and
then with the ETag; the bundled snapshot in demo mode and when nothing can be read, saying
so; a model only the live catalogue knows is offered and can be asked for."""

from __future__ import annotations

import copy
import json
import types
from pathlib import Path

import pytest

from kling_ui import errors
from kling_ui.catalogue import snapshot
from kling_ui.config import MODEL, Settings
from kling_ui.ledger import Ledger
from kling_ui.request import SPECS, Request
from kling_ui.service.models import DEMO_NOTE, LISTING, Models
from kling_ui.simulator import Simulator
from kling_ui.simulator.schemas import FOLDER

CATALOGUE = "/v1/models"
NEW_MODEL = "alibaba/wan-9-9-i2v-tomorrow"


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch):
    """The models registered by a test go with it."""
    monkeypatch.setattr("kling_ui.request.SPECS", dict(SPECS))


def models(url: str, data_dir: Path, clock, **settings) -> Models:
    ledger = Ledger(data_dir / "ledger.db")
    return Models(Settings(base_url=url, data_dir=data_dir, **settings), ledger, clock=clock)


def catalogue_asks(sim: Simulator) -> list:
    return sim.requests_to(CATALOGUE)


def test_the_catalogues_models_are_offered_ours_first(simulator, tmp_path, clock):
    offer = models(simulator.url, tmp_path, clock).offer()
    assert offer.source == "catalogue" and offer.note == ""
    ids = [e.id for e in offer.entries]
    assert ids[0] == MODEL
    assert {"klingai/video-o1-image-to-video", "google/veo-3.1-i2v", "runway/gen4_turbo"} <= set(
        ids
    )
    assert len(ids) >= 7
    assert offer.pricing[MODEL]  # each model's pricing block, from the same answer
    veo = offer.entry("google/veo-3.1-i2v")
    assert veo is not None and veo.frames.get("first")
    # Each document was read once, from the API's own host, with no key.
    docs = simulator.requests_to("/docs-json")
    assert len(docs) == len(ids)
    assert all("authorization" not in r.headers for r in docs + catalogue_asks(simulator))


def test_asked_again_only_when_due_and_then_with_the_etag(simulator, tmp_path, clock):
    room = models(simulator.url, tmp_path, clock, catalogue_refresh=600)
    first = room.offer()
    assert len(catalogue_asks(simulator)) == 1
    clock.now += 599
    assert room.offer() is first
    assert len(catalogue_asks(simulator)) == 1
    documents = len(simulator.requests_to("/docs-json"))
    clock.now += 2
    again = room.offer()
    asks = catalogue_asks(simulator)
    assert len(asks) == 2 and asks[1].headers.get("if-none-match")  # answered 304
    assert [e.id for e in again.entries] == [e.id for e in first.entries]
    # The schemas were due too: read again (a changed schema comes in with the list).
    assert len(simulator.requests_to("/docs-json")) == 2 * documents


def test_a_second_replica_starts_from_the_kept_answer(simulator, tmp_path, clock):
    models(simulator.url, tmp_path, clock).offer()
    asked = len(catalogue_asks(simulator)), len(simulator.requests_to("/docs-json"))
    other = models(simulator.url, tmp_path, clock)  # same database, a new process's room
    offer = other.offer()
    assert offer.source == "catalogue" and offer.entries[0].id == MODEL
    assert (len(catalogue_asks(simulator)), len(simulator.requests_to("/docs-json"))) == asked


def test_replicas_on_postgresql_share_the_kept_answer(simulator, pg_url, tmp_path, clock):
    """The kept answers live in the database every replica shares: on PostgreSQL too."""
    first = Models(Settings(base_url=simulator.url, data_dir=tmp_path / "a"), Ledger(pg_url),
                   clock=clock)  # fmt: skip
    ids = [e.id for e in first.offer().entries]
    asked = len(catalogue_asks(simulator)), len(simulator.requests_to("/docs-json"))
    second = Models(Settings(base_url=simulator.url, data_dir=tmp_path / "b"), Ledger(pg_url),
                    clock=clock)  # fmt: skip
    assert [e.id for e in second.offer().entries] == ids and ids[0] == MODEL
    assert (len(catalogue_asks(simulator)), len(simulator.requests_to("/docs-json"))) == asked
    clock.now += 3601  # due: asked again with the kept ETag, answered 304, kept as fresh
    second.offer()
    assert catalogue_asks(simulator)[-1].headers.get("if-none-match")
    assert Ledger(pg_url).kept(LISTING).fetched_at == clock.now


def test_nothing_to_read_gives_the_snapshot_and_says_so(refusing_port, tmp_path, clock):
    offer = models(f"http://127.0.0.1:{refusing_port}", tmp_path, clock).offer()
    assert offer.source == "snapshot"
    assert "could not be read" in offer.note and "bundled" in offer.note
    assert [e.id for e in offer.entries] == [e.id for e in snapshot()]
    Request.make("A test.", model="google/veo-3.1-i2v")  # each one can be asked for


def test_a_catalogue_down_later_keeps_the_last_answer_and_says_when(
    simulator, refusing_port, tmp_path, clock
):
    room = models(simulator.url, tmp_path, clock, catalogue_refresh=60)
    first = room.offer()
    clock.now += 3600  # due again, and the API can't be reached
    room.settings = room.settings.with_(base_url=f"http://127.0.0.1:{refusing_port}")
    offer = room.offer()
    assert offer.source == "catalogue"
    assert [e.id for e in offer.entries] == [e.id for e in first.entries]
    assert "could not be read just now" in offer.note and "1970-01-12" in offer.note  # its day


def test_demo_mode_offers_the_snapshot_and_says_so(tmp_path, clock):
    ledger = Ledger(tmp_path / "ledger.db")
    demo = types.SimpleNamespace(demo_mode=True)  # the service's access, in demo mode
    room = Models(Settings(data_dir=tmp_path), ledger, demo, clock=clock)
    offer = room.offer()
    assert offer.source == "snapshot" and offer.note.startswith(DEMO_NOTE.split(":")[0])
    assert len(offer.entries) == len(snapshot()) and offer.entries[0].id == MODEL
    assert ledger.kept(LISTING) is None  # nothing was asked


def _tomorrows_document() -> dict:
    """Wan 2.6's document as a model the vendor adds tomorrow (no snapshot knows it)."""
    document = json.loads((FOLDER / "alibaba__wan-2-6-i2v.json").read_text(encoding="utf-8"))
    document = copy.deepcopy(document)
    schema = document["paths"]["/v2/video/generations"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    schema["properties"]["model"]["enum"] = [NEW_MODEL]
    return document


def test_a_model_only_the_live_catalogue_knows_is_offered_and_can_be_asked_for(
    simulator, tmp_path, clock
):
    assert NEW_MODEL not in {e.id for e in snapshot()}
    simulator.add_model(_tomorrows_document())
    offer = models(simulator.url, tmp_path, clock).offer()
    entry = offer.entry(NEW_MODEL)
    assert entry is not None and entry.kind == "image-to-video"
    request = Request.make("A lantern sways.", model=NEW_MODEL).with_image("https://x.test/a.png")
    body = request.body()
    assert body["model"] == NEW_MODEL and body["image_url"] == "https://x.test/a.png"
    with pytest.raises(errors.InputError, match="duration"):
        Request.make("A lantern sways.", model=NEW_MODEL, duration=7)


def test_a_schema_that_cant_be_read_keeps_the_snapshots_reading(simulator, tmp_path, clock):
    room = models(simulator.url, tmp_path, clock)
    original = room._document

    def failing(link: str) -> dict:
        if "veo" in link:
            raise errors.APIStatusError("HTTP 500")
        return original(link)

    room._document = failing  # type: ignore[method-assign]
    offer = room.offer()
    bundled = next(e for e in snapshot() if e.id == "google/veo-3.1-i2v")
    assert offer.entry("google/veo-3.1-i2v") is bundled


# --- for programs: /models and /model_schema ----------------------------------------------


def test_the_api_lists_the_models_with_their_inputs_and_prices(client, live_app):
    answer = client.predict(api_name="/models")
    assert answer["source"] == "catalogue" and answer["note"] == ""
    listed = {m["id"]: m for m in answer["models"]}
    assert answer["models"][0]["id"] == MODEL
    assert listed[MODEL]["inputs"] == ["first_frame"] and listed[MODEL]["kind"] == (
        "image-to-video"
    )
    assert listed[MODEL]["price"]["usd"] > 0  # the catalogue's block, for 5 s with audio
    assert "klingai/video-v2-6-pro-text-to-video" in listed
    assert listed["klingai/video-v2-6-pro-text-to-video"]["inputs"] == []
    assert listed["klingai/video-o1-image-to-video"]["inputs"] == ["first_frame", "last_frame"]


def test_the_api_gives_a_models_schema_whose_defaults_pass_it(client, live_app):
    from jsonschema import Draft7Validator

    answer = client.predict("google/veo-3.1-i2v", api_name="/model_schema")
    assert answer["id"] == "google/veo-3.1-i2v" and answer["inputs"][0] == "first_frame"
    fields = answer["schema"]["properties"]
    assert "prompt" not in fields and "image_url" not in fields and "duration" in fields
    Draft7Validator(answer["schema"]).validate(answer["defaults"])
    unknown = client.predict("acme/no-such-model", api_name="/model_schema")
    assert "no model" in unknown["error"] and "/models" in unknown["error"]


# --- /generate with a model ---------------------------------------------------------------


def _creates(sim) -> list[dict]:
    return [r.body for r in sim.requests_to("/v2/video/generations") if r.method == "POST"]


def _last(job) -> tuple:
    *_, last = job
    return last


def test_generate_with_a_start_and_an_end_frame_model_sends_both_frames(
    client, live_app, photo, tmp_path
):
    from gradio_client import handle_file
    from PIL import Image

    end = tmp_path / "end.jpg"
    Image.new("RGB", (800, 600), (200, 60, 30)).save(end, quality=90)
    gid, status, video = client.predict(
        handle_file(photo), "A door opens.", "", 5, True, "",
        "klingai/video-o1-image-to-video", handle_file(str(end)), '{"duration": 10}',
        api_name="/generate",
    )  # fmt: skip
    assert status.startswith("Status: completed"), status
    (body,) = _creates(live_app.sim)
    assert body["model"] == "klingai/video-o1-image-to-video" and body["duration"] == 10
    assert body["image_url"].startswith("<image") and body["last_image_url"].startswith("<image")
    assert set(body) <= {"model", "prompt", "image_url", "last_image_url", "duration"}
    status = client.predict(gid, "", api_name="/status")  # what was asked, recorded
    assert status["model"] == "klingai/video-o1-image-to-video"
    assert status["options"]["duration"] == 10


def test_generate_with_a_text_to_video_model_needs_no_image(client, live_app):
    gid, status, video = client.predict(
        None, "Waves roll in at dusk.", "", 5, False, "",
        "klingai/video-v2-6-pro-text-to-video", None, "",
        api_name="/generate",
    )  # fmt: skip
    assert status.startswith("Status: completed"), status
    (body,) = _creates(live_app.sim)
    assert body["model"] == "klingai/video-v2-6-pro-text-to-video"
    assert "image_url" not in body and body["generate_audio"] is False  # /generate's own
    assert body["duration"] == 5  # the model's default (its schema's "5", typed)


def test_a_models_refusals_are_words_and_send_nothing(client, live_app, photo):
    from gradio_client import handle_file

    cases = [
        ("acme/no-such-model", "", "offers no model"),
        ("google/veo-3.1-i2v", '{"duration": 7}', "duration"),  # its schema: 4, 6 or 8
        ("google/veo-3.1-i2v", '{"seed": 1}', "no setting named 'seed'"),
        ("google/veo-3.1-i2v", "[1, 2]", "JSON object"),
        ("google/veo-3.1-i2v", '{"prompt": "x"}', "no setting named 'prompt'"),
        ("google/veo-3.1-i2v", '{"model": "x", "images": {}}', "no setting named 'images'"),
        ("klingai/video-v2-6-pro-text-to-video", "", "text only"),  # an image given
    ]
    for model, options, words in cases:
        _, status, _ = client.predict(
            handle_file(photo), "A test.", "", 5, True, "", model, None, options,
            api_name="/generate",
        )  # fmt: skip
        assert words in status, (model, options, status)
    assert live_app.sim.creates == 0


def test_a_model_the_vendor_adds_is_offered_and_makes_a_video(client, live_app, photo):
    from gradio_client import handle_file

    service = live_app.service
    live_app.sim.add_model(_tomorrows_document())
    kept = service.settings
    service.settings = kept.with_(catalogue_refresh=0)  # due at once (as after an hour)
    try:
        listed = [m["id"] for m in client.predict(api_name="/models")["models"]]
        assert NEW_MODEL in listed
        _, status, video = client.predict(
            handle_file(photo), "A lantern sways.", "", 5, True, "", NEW_MODEL, None,
            '{"duration": 10}', api_name="/generate",
        )  # fmt: skip
    finally:
        service.settings = kept
        live_app.sim.added.pop(NEW_MODEL, None)
    assert status.startswith("Status: completed"), status
    (body,) = _creates(live_app.sim)
    assert body["model"] == NEW_MODEL and body["duration"] == 10


def test_demo_mode_makes_a_video_with_any_bundled_model(tmp_path, photo):
    """Demo mode offers every bundled model, and its simulator makes a (simulated) video
    for one it has no schema of; a simulator of the vendor refuses such a model."""
    from kling_ui.service import GenerationService
    from kling_ui.simulator import DemoSimulator

    model = "openai/sora-2-i2v"
    settings = Settings(data_dir=tmp_path / "data", poll_interval=0.05)
    demo = DemoSimulator(settings.data_dir, (0.1, 0.2))
    service = GenerationService(settings, demo=demo)
    try:
        offer = service.offer()
        assert offer.source == "snapshot" and offer.entry(model) is not None
        request = Request.make("Waves.", model=model)
        *_, last = service.generate(photo, request)
        assert last.phase == "completed", last
        assert service.entry(last.generation_id).request.model == model
    finally:
        service.close()
        demo.stop()
    with Simulator() as vendor:  # the vendor's stand-in knows no such model's schema here
        import requests

        answer = requests.post(
            vendor.url + "/v2/video/generations", json={"model": model, "prompt": "Waves."},
            headers={"Authorization": "Bearer k"}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 400 and "model" in answer.json()["message"]


def test_a_models_own_prompt_limit_is_checked_before_sending():
    """A schema's maxLength of the prompt is the model's limit (Runway's 1000, MiniMax
    H3's 7000); a schema that says none keeps the app's 2500."""
    from kling_ui.catalogue.specs import register_snapshot

    register_snapshot(snapshot())
    with pytest.raises(errors.InputError, match="limit is 1000"):
        Request.make("x" * 1001, model="runway/gen4_turbo")
    assert len(Request.make("x" * 1000, model="runway/gen4_turbo").prompt) == 1000
    assert len(Request.make("x" * 7000, model="minimax/h3").prompt) == 7000
    with pytest.raises(errors.InputError, match="limit is 2500"):
        Request.make("x" * 2501, model="google/veo-3.1-i2v")


def test_a_duration_left_unset_is_priced_as_not_known_never_as_free(simulator, tmp_path, clock):
    """Seedance 1.5 Pro's duration has no default: left unset, the vendor's own applies, so
    a per-second price can't be worked out. It is "not known in advance" (a budget then
    refuses it), never $0."""
    seedance = "bytedance/seedance-1-5-pro"
    room = models(simulator.url, tmp_path, clock)
    room.offer()
    request = Request.make("A door opens.", model=seedance)
    assert request.options["duration"] is None and request.duration == 0
    estimate = room.estimate(request)
    assert estimate.usd is None and "not known in advance" in estimate.words()
    priced = room.estimate(Request.make("A door opens.", model=seedance, duration=10))
    assert priced.usd and priced.usd > 0 and priced.words().startswith("10 s")


def test_extend_goes_on_with_any_model_that_starts_from_an_image(client, live_app, photo):
    """/extend takes a model and its options as /generate does; one that makes video from
    text is refused in words; a six-value call over plain HTTP still works (``OldCalls``)."""
    import requests
    from gradio_client import handle_file

    gid, status, _ = client.predict(
        handle_file(photo), "A door.", "", 5, True, "", api_name="/generate"
    )
    assert status.startswith("Status: completed"), status
    more, status, video = client.predict(
        gid, "It opens.", "", 5, True, "", "runway/gen4_turbo", '{"seed": 3}', api_name="/extend"
    )
    assert status.startswith("Status: completed"), status
    body = _creates(live_app.sim)[-1]
    assert body["model"] == "runway/gen4_turbo" and body["seed"] == 3
    assert body["image_url"].startswith("<image")  # the first video's last frame
    creates = live_app.sim.creates
    _, status, _ = client.predict(
        more, "Then rain.", "", 5, True, "", "klingai/video-v2-6-pro-text-to-video", "",
        api_name="/extend",
    )  # fmt: skip
    assert "makes video from text only" in status and live_app.sim.creates == creates
    base = live_app.url.rstrip("/") + "/gradio_api"
    event = requests.post(
        f"{base}/call/extend", json={"data": [more, "Later.", "", 5, True, ""]}, timeout=30
    ).json()["event_id"]
    stream = requests.get(f"{base}/call/extend/{event}", timeout=120).text
    assert "Status: completed" in stream, stream[-500:]
    assert _creates(live_app.sim)[-1]["model"] == MODEL


def _until_creates(sim, count: int, timeout: float = 60) -> list[dict]:
    """The vendor's creates once there are ``count`` more than ``sim.creates`` was (the
    batch's runner sends them after the answer)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bodies = _creates(sim)
        if len(bodies) >= count:
            return bodies
        time.sleep(0.05)
    raise AssertionError(f"{len(_creates(sim))} creates, not {count}")


def test_batch_for_programs_takes_a_model_and_its_options(client, live_app, photo):
    """/batch takes a model and its options for every item, as /generate does; a model
    that makes video from text queues prompts x takes; an image given to it, an unknown
    field or model are refused in words with nothing sent; a seven-value call over plain
    HTTP is as it always was (``OldCalls``)."""
    import requests
    from gradio_client import handle_file

    sent = len(_creates(live_app.sim))
    answer = client.predict(
        [handle_file(photo)], "A door.\nA window.", "", 5, True, 1, "", "runway/gen4_turbo",
        '{"seed": 3}', api_name="/batch",
    )  # fmt: skip
    assert len(answer["items"]) == 2, answer
    bodies = _until_creates(live_app.sim, sent + 2)[sent:]
    assert {b["model"] for b in bodies} == {"runway/gen4_turbo"}
    assert {b["seed"] for b in bodies} == {3} and {b["prompt"] for b in bodies} == {
        "A door.", "A window."
    }  # fmt: skip
    assert all(b["image_url"].startswith("<image") for b in bodies)
    text = "klingai/video-v2-6-pro-text-to-video"
    answer = client.predict(None, "Rain.\nSnow.", "", 5, True, 2, "", text, "", api_name="/batch")
    assert len(answer["items"]) == 4, answer
    bodies = _until_creates(live_app.sim, sent + 6)[sent + 2 :]
    assert {b["model"] for b in bodies} == {text} and not any("image_url" in b for b in bodies)
    for images, model, options, words in (
        ([handle_file(photo)], text, "", "makes video from text only"),
        ([handle_file(photo)], "runway/gen4_turbo", '{"sharpness": 3}', "no setting named"),
        ([handle_file(photo)], "acme/no-such-model", "", "offers no model"),
    ):
        answer = client.predict(
            images, "A door.", "", 5, True, 1, "", model, options, api_name="/batch"
        )
        assert words in answer["error"] and answer["items"] == [], answer
    assert len(_creates(live_app.sim)) == sent + 6
    base = live_app.url.rstrip("/") + "/gradio_api"
    with open(photo, "rb") as f:
        (path,) = requests.post(f"{base}/upload", files={"files": f}, timeout=30).json()
    image = {"path": path, "meta": {"_type": "gradio.FileData"}}
    old = [[image], "Old.", "", 5, False, 1, ""]
    event = requests.post(f"{base}/call/batch", json={"data": old}, timeout=30).json()
    stream = requests.get(f"{base}/call/batch/{event['event_id']}", timeout=60).text
    assert '"job_id"' in stream, stream[-500:]
    body = _until_creates(live_app.sim, sent + 7)[-1]
    assert body["model"] == MODEL and body["prompt"] == "Old." and body["generate_audio"] is False
