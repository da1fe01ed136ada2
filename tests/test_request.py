"""The request value: made once (every field checked), carried whole, sent and kept whole."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest

from kling_ui import errors
from kling_ui.config import MODEL
from kling_ui.request import Request

IMAGE = "data:image/jpeg;base64,AAAA"
LINK = "https://example.com/cat.jpg"


def test_fields_left_out_take_the_models_defaults():
    request = Request.make("Waves.")
    assert (request.model, request.prompt) == (MODEL, "Waves.")
    assert (request.negative_prompt, request.duration, request.generate_audio) == ("", 5, True)
    assert request.image_url == ""


@pytest.mark.parametrize(
    ("fields", "seen"),
    [
        ({"duration": "10"}, ("", 10, True)),  # the page sends "10"
        ({"duration": 10.0}, ("", 10, True)),  # a program may send 10.0
        ({"negative_prompt": None}, ("", 5, True)),
        ({"negative_prompt": "blur", "generate_audio": False}, ("blur", 5, False)),
    ],
)
def test_fields_are_read_as_people_and_programs_send_them(fields, seen):
    request = Request.make("Waves.", **fields)
    assert (request.negative_prompt, request.duration, request.generate_audio) == seen


@pytest.mark.parametrize(
    ("prompt", "fields", "words"),
    [
        ("  ", {}, "Write a prompt"),
        (None, {}, "Write a prompt"),
        ("x" * 2501, {}, "limit is 2500"),
        ("A bell\x07.", {}, "control characters"),
        ("Waves.", {"duration": 7}, "5 or 10"),
        ("Waves.", {"duration": True}, "5 or 10"),  # True is an int, not a second
        ("Waves.", {"generate_audio": "yes"}, "on or off"),
        ("Waves.", {"negative_prompt": 3}, "must be text"),
        ("Waves.", {"seed": 42}, "no setting named 'seed'"),
    ],
)
def test_make_refuses_in_words_what_the_api_would(prompt, fields, words):
    with pytest.raises(errors.InputError, match=words):
        Request.make(prompt, **fields)


def test_make_refuses_a_model_or_an_image_role_it_does_not_know():
    with pytest.raises(errors.InputError, match="doesn't know the model"):
        Request.make("Waves.", model="someone/else")
    with pytest.raises(errors.InputError, match="no image as 'last_frame'"):
        Request.make("Waves.", images={"last_frame": LINK})
    with pytest.raises(errors.InputError, match="no image as 'last_frame'"):
        Request.make("Waves.").with_image(LINK, "last_frame")


def test_a_request_is_frozen_and_with_image_makes_another():
    request = Request.make("Waves.")
    with pytest.raises(FrozenInstanceError):
        request.prompt = "Other."  # type: ignore[misc]
    with pytest.raises(TypeError):
        request.options["duration"] = 10  # type: ignore[index]
    sent = request.with_image(IMAGE)
    assert (sent.image_url, request.image_url) == (IMAGE, "")
    assert sent.options == request.options and sent.prompt == request.prompt


def test_the_image_is_kept_out_of_repr():
    assert IMAGE not in repr(Request.make("Waves.").with_image(IMAGE))


def test_the_body_is_what_the_app_has_always_sent():
    body = Request.make("Waves.", negative_prompt="blur", duration="10").with_image(IMAGE).body()
    assert body == {
        "model": MODEL,
        "prompt": "Waves.",
        "image_url": IMAGE,
        "duration": 10,
        "generate_audio": True,
        "negative_prompt": "blur",
    }
    assert list(body) == [  # the order too (a snippet shows it)
        "model", "prompt", "image_url", "duration", "generate_audio", "negative_prompt"
    ]  # fmt: skip


def test_an_empty_negative_prompt_is_left_out_of_the_body():
    body = Request.make("Waves.", negative_prompt="   ").with_image(LINK).body()
    assert "negative_prompt" not in body and body["image_url"] == LINK


@pytest.mark.parametrize("image", ["", "http://example.com/a.jpg", "file:///etc/passwd"])
def test_no_body_without_an_image_ready_to_send(image):
    request = Request.make("Waves.")
    if image:
        request = request.with_image(image)
    with pytest.raises(errors.InputError, match="Add an image first"):
        request.body()


def test_a_request_built_by_hand_is_checked_again_before_it_is_sent():
    made = Request.make("Waves.").with_image(LINK)
    by_hand = Request(made.model, made.prompt, made.images, {**made.options, "duration": "5"})
    with pytest.raises(errors.InputError, match="wrong type"):
        by_hand.body()
    blank = Request(made.model, "  ", made.images, made.options)
    with pytest.raises(errors.InputError, match="Write a prompt"):
        blank.body()


def test_to_json_and_back_keeps_everything_but_a_data_uri():
    request = Request.make("Vagues — 🌊", negative_prompt="flou", duration=10,
                           generate_audio=False)  # fmt: skip
    kept = Request.from_json(request.with_image(IMAGE).to_json())
    assert kept == request  # the data URI is a file of the service's, not the row's
    assert "base64" not in request.with_image(IMAGE).to_json()
    linked = request.with_image(LINK)
    assert Request.from_json(linked.to_json()) == linked
    assert json.loads(linked.to_json())["prompt"] == "Vagues — 🌊"  # kept as written


def test_from_json_reads_a_kept_request_as_it_was_kept():
    """A row kept under older rules is still shown: it is not checked again."""
    text = json.dumps({"model": MODEL, "prompt": "x" * 3000, "options": {"duration": 15}})
    kept = Request.from_json(text)
    assert (len(kept.prompt), kept.duration, kept.image_url) == (3000, 15, "")


@pytest.mark.parametrize(
    ("row", "seen"),
    [
        (
            {"prompt": "Old.", "negative_prompt": "blur", "duration": 10, "generate_audio": 0},
            ("Old.", "blur", 10, False),
        ),
        ({"prompt": "Old.", "negative_prompt": None, "duration": None}, ("Old.", "", 5, True)),
        ({"prompt": None}, ("", "", 5, True)),  # an adopted job: what was asked isn't known
    ],
)
def test_from_columns_reads_a_row_from_before_requests_were_stored_whole(row, seen):
    request = Request.from_columns(row)
    assert request.model == MODEL
    got = (request.prompt, request.negative_prompt, request.duration, request.generate_audio)
    assert got == seen
