"""The prompt helper (issue 26), through the real client against the simulator over
loopback: what is sent (the image as an ``image_url`` part, downscaled; the prompt, the video
model's limits, the variant; the key in its header only), which chat model answers, and
that it is spending (priced and written before it is sent, settled after, refused where a
video would be, a failed call costing nothing and changing nothing)."""

from __future__ import annotations

import base64
import io
import logging

import pytest
from PIL import Image

from kling_ui import errors
from kling_ui.client import AIMLClient
from kling_ui.client.parsers import ChatModel, parse_chat, parse_chat_models
from kling_ui.config import MODEL, Settings
from kling_ui.service import GenerationService
from kling_ui.simulator import Fault, Simulator

KEY = "sk-prompt-helper-7c3e19"
CHAT = "/v1/chat/completions"
TEXT_MODEL = "klingai/video-v2-6-pro-text-to-video"


@pytest.fixture
def service(simulator: Simulator, tmp_path):
    settings = Settings(base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data")
    made = GenerationService(settings, start=False)
    yield made
    made.close()


def chats(sim: Simulator) -> list:
    return sim.requests_to(CHAT)


def picture_of(body: dict) -> str | None:
    parts = body["messages"][1]["content"]
    found = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    return found[0] if found else None


def test_the_image_the_prompt_and_the_models_limits_go_to_the_cheapest_vision_model(
    service, simulator, tmp_path
):
    big = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1200), (30, 120, 200)).save(big)
    said = service.improve_prompt(str(big), "A boat drifts.", MODEL, owner="browser:a",
                                  negative=True)  # fmt: skip
    assert said.prompt.startswith("Slow cinematic push-in") and "A boat drifts" in said.prompt
    assert said.negative_prompt and said.usd and said.usd > 0
    (sent,) = chats(simulator)
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    # The cheapest that takes images, by the catalogue's token rates (not Kimi: no images).
    assert sent.body["model"] == said.model == "bytedance/dola-seed-2-0-mini"
    text = sent.body["messages"][1]["content"][0]["text"]
    assert "Prompt: A boat drifts." in text and "at most 2500 characters" in text
    assert "Negative:" in text  # Kling v2.6 Pro takes a negative prompt
    # The image went as a JPEG data URI (the log keeps its length), small: the suggestion
    # names the digest of what arrived.
    assert picture_of(sent.body).startswith("<data:image/jpeg ")
    assert "(" in said.prompt and "in the picture" in said.prompt


def test_the_picture_is_downscaled_before_it_is_sent(service, simulator, tmp_path, monkeypatch):
    seen: list[str] = []
    real = AIMLClient.chat

    def keep(self, body):
        seen.append(picture_of(body))
        return real(self, body)

    monkeypatch.setattr(AIMLClient, "chat", keep)  # a spy: the call still goes over HTTP
    big = tmp_path / "big.png"
    Image.new("RGB", (2000, 1000), (200, 30, 30)).save(big)
    service.improve_prompt(str(big), "", MODEL, owner="browser:a")
    with Image.open(io.BytesIO(base64.b64decode(seen[0].split(",", 1)[1]))) as picture:
        assert picture.format == "JPEG" and max(picture.size) == 512
    assert len(chats(simulator)) == 1


def test_a_text_to_video_model_gets_words_only_and_a_variant_is_said(service, simulator):
    said = service.improve_prompt(None, "Rain on a window.", TEXT_MODEL, variant="shorter",
                                  owner="browser:a")  # fmt: skip
    (sent,) = chats(simulator)
    assert picture_of(sent.body) is None
    text = sent.body["messages"][1]["content"][0]["text"]
    assert "Variant: shorter" in text and "no picture" in text
    assert said.prompt == "Rain on a window, slow push-in."
    motion = service.improve_prompt(None, "Rain.", TEXT_MODEL, variant="motion", owner="b:a")
    assert "turns slowly" in motion.prompt


def test_a_model_without_a_negative_prompt_gets_none_suggested(service, simulator, photo):
    service.offer()
    said = service.improve_prompt(photo, "A door.", "runway/gen4_turbo", owner="browser:a",
                                  negative=True)  # fmt: skip
    assert said.negative_prompt == ""
    text = chats(simulator)[0].body["messages"][1]["content"][0]["text"]
    assert "Negative:" not in text and "at most 1000 characters" in text


def test_bad_input_is_refused_in_words_with_nothing_sent(service, simulator, photo):
    for image, prompt, model, variant, words in (
        (None, "", MODEL, "", "Write a prompt"),
        (None, "  ", TEXT_MODEL, "", "Write a prompt"),
        (photo, "x" * 2501, MODEL, "", "2500"),
        (photo, "A cat.", MODEL, "louder", "no variant"),
        (photo, "A cat.", "acme/none", "", "offers no model"),
    ):
        with pytest.raises(errors.InputError, match=words):
            service.improve_prompt(image, prompt, model, variant=variant, owner="browser:a")
    assert chats(simulator) == []


def test_it_is_spending_written_before_and_settled_after(service, simulator, photo):
    said = service.improve_prompt(photo, "A cat.", MODEL, owner="browser:a")

    def spent() -> float:
        return service.ledger.spent_since(0, key_ref="server", owner="browser:a")

    assert spent() == pytest.approx(said.usd)
    # Refused, or never reached: not charged, its record goes, the reason comes in words.
    for fault, kind in ((Fault.status(401), errors.AuthenticationError),
                        (Fault.status(400, "bad body"), errors.BadRequestError),
                        (Fault.status(403), errors.OutOfCreditsError)):  # fmt: skip
        simulator.script_chat(fault)
        with pytest.raises(kind) as refused:
            service.improve_prompt(photo, "A cat.", MODEL, owner="browser:a")
        assert refused.value.user_message and KEY not in refused.value.user_message
    assert spent() == pytest.approx(said.usd)
    # It left and no answer came, or none that can be read: it may be charged, so its
    # price stays counted (a budget is never passed by failures), said in words.
    for fault in (Fault.status(500), Fault.drop(), Fault.non_json(200)):
        before = spent()
        simulator.script_chat(fault)
        with pytest.raises(errors.KlingUIError, match="may be charged"):
            service.improve_prompt(photo, "A cat.", MODEL, owner="browser:a")
        assert spent() > before
    assert service.ledger.helps_since(0, key_ref="server", owner="browser:a") == 4


def test_refused_where_a_video_would_be_and_past_the_hours_helps(simulator, tmp_path, photo):
    settings = Settings(base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data",
                        visitor_daily_budget_usd=0.001, visitor_helps_per_hour=2)  # fmt: skip
    service = GenerationService(settings, start=False)
    try:
        service.improve_prompt(photo, "One.", MODEL, owner="browser:a")
        service.improve_prompt(photo, "Two.", MODEL, owner="browser:a")
        with pytest.raises(errors.LimitReached, match="prompt suggestions an hour"):
            service.improve_prompt(photo, "Three.", MODEL, owner="browser:a")
        assert len(chats(simulator)) == 2
        # Another visitor, whose day's budget the helper's price would pass: refused.
        service.settings = settings.with_(visitor_helps_per_hour=0)
        service.ledger.add_help("h1", "browser:b", key_ref="server", usd=0.001,
                                model="m", at=service.limits._clock())  # fmt: skip
        words = r"may spend \$0\.0010 a day .*used \$0\.0010.*would add \$0\.000"
        with pytest.raises(errors.LimitReached, match=words):
            service.improve_prompt(photo, "Four.", MODEL, owner="browser:b")
        assert len(chats(simulator)) == 2
        # A typed key is its owner's money: no budget of the server's applies.
        said = service.improve_prompt(photo, "Five.", MODEL, owner="browser:b", api_key="sk-t")
        assert said.prompt
    finally:
        service.close()


def test_the_key_is_never_logged_nor_in_an_answer(service, simulator, photo, caplog):
    caplog.set_level(logging.DEBUG)
    service.improve_prompt(photo, "A cat.", MODEL, owner="browser:a")
    simulator.script_chat(Fault.status(403, f"key {KEY} has no credits"))
    with pytest.raises(errors.KlingUIError) as refused:
        service.improve_prompt(photo, "A cat.", MODEL, owner="browser:a")
    assert KEY not in refused.value.user_message
    assert KEY not in caplog.text and "base64" not in caplog.text


def test_the_setting_names_the_chat_model(simulator, tmp_path, photo):
    settings = Settings(base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data",
                        prompt_model="google/gemini-3-1-flash-lite")  # fmt: skip
    service = GenerationService(settings, start=False)
    try:
        said = service.improve_prompt(photo, "A cat.", MODEL, owner="browser:a")
    finally:
        service.close()
    assert said.model == "google/gemini-3-1-flash-lite"
    assert chats(simulator)[0].body["model"] == "google/gemini-3-1-flash-lite"


def test_the_chat_answers_are_read_by_one_parser_each():
    listing = {"data": [
        {"id": "a/vision", "type": "openai/chat-completions",
         "modalities": {"input": ["text", "image"]},
         "pricing": {"kind": "fixed", "units": [
             {"name": "token", "measure": "input", "price": 1.0, "per": 1_000_000},
             {"name": "token", "measure": "output", "price": 4.0, "per": 1_000_000}]}},
        {"id": "b/words", "type": "openai/chat-completions", "capabilities": ["streaming"]},
        {"id": "c/video", "type": "internal/video-generations/submit"},
        "junk",
    ]}  # fmt: skip
    assert parse_chat_models(listing) == [
        ChatModel("a/vision", True, 1e-6, 4e-6),
        ChatModel("b/words", False, None, None),
    ]
    answer = {"choices": [{"message": {"content": " A prompt. "}}],
              "meta": {"usage": {"usd_spent": 0.0002}}}  # fmt: skip
    assert parse_chat(answer).text == "A prompt." and parse_chat(answer).usd == 0.0002
    assert parse_chat({"choices": []}) is None and parse_chat("nope") is None


def test_demo_mode_answers_from_the_simulator_and_costs_nothing(tmp_path, photo):
    from kling_ui.simulator import DemoSimulator

    # A chat model set for the real API is not the demo's: the demo answers with its own.
    settings = Settings(data_dir=tmp_path / "data", visitor_helps_per_hour=1,
                        prompt_model="openai/gpt-4o-mini")  # fmt: skip
    demo = DemoSimulator(settings.data_dir, (0.1, 0.2))
    service = GenerationService(settings, demo=demo, start=False)
    try:
        assert service.demo_mode
        for _ in range(2):  # the demo's calls are free: no visitor's hour counts them
            said = service.improve_prompt(photo, "A cat.", MODEL, owner="browser:a")
            assert "in the picture" in said.prompt and said.model != "openai/gpt-4o-mini"
        assert service.ledger.helps_since(0, key_ref="demo", owner="browser:a") == 2
    finally:
        service.close()
        demo.stop()


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_the_helpers_spending_is_kept_in_either_database(where, tmp_path, request):
    """The ``helps`` table and its queries, in SQLite and in PostgreSQL: written with its
    price, settled, counted with the jobs' spending, taken back, swept."""
    from kling_ui.ledger import Ledger
    from kling_ui.service.access import Visitor

    place = request.getfixturevalue("pg_url") if where == "postgresql" else tmp_path / "l.db"
    ledger = Ledger(place)
    try:
        owner = Visitor("browser:a", place="address:x")
        ledger.add_help("h1", owner, key_ref="server", usd=0.002, model="m", at=100.0)
        ledger.add_help("h2", owner, key_ref="server", usd=0.002, model="m", at=200.0)
        ledger.settle_help("h1", 0.0015)
        ledger.settle_help("h2", None)  # failed: costs nothing
        assert ledger.spent_since(0, key_ref="server") == pytest.approx(0.0015)
        assert ledger.spent_since(0, key_ref="server", owner="address:x", column="address") == (
            pytest.approx(0.0015)
        )
        assert ledger.helps_since(50, key_ref="server", owner="browser:a") == 1
        assert ledger.spent_since(150, key_ref="server") == 0
        ledger.forget_helps_before(150)
        assert ledger.helps_since(0, key_ref="server", owner="browser:a") == 0
    finally:
        ledger.close()


def test_a_fresh_browser_is_no_fresh_allowance_of_suggestions(simulator, tmp_path, photo):
    """The helps an hour are counted per address too (three visitors' worth): a script that
    opens a fresh browser for every call is stopped there, on the server's key."""
    from kling_ui.service.access import Visitor

    settings = Settings(base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data",
                        visitor_helps_per_hour=1)  # fmt: skip
    service = GenerationService(settings, start=False)
    try:
        for n in range(3):  # three fresh browsers, one address: one suggestion each
            service.improve_prompt(photo, "A cat.", MODEL,
                                   owner=Visitor(f"browser:{n}", place="address:one"))  # fmt: skip
        with pytest.raises(errors.LimitReached, match="Each address may ask for 3"):
            service.improve_prompt(photo, "A cat.", MODEL,
                                   owner=Visitor("browser:new", place="address:one"))  # fmt: skip
        assert len(chats(simulator)) == 3
        said = service.improve_prompt(photo, "A cat.", MODEL,
                                      owner=Visitor("browser:b", place="address:two"))  # fmt: skip
        assert said.prompt
    finally:
        service.close()
