"""The rules of a request, one parser per input, and the one rule that picks a backend."""

from __future__ import annotations

import pytest

from kling_ui import errors
from kling_ui.config import Settings
from kling_ui.request import Request
from kling_ui.rules import (
    EXAMPLE_ID,
    check_generation_id,
    check_new_generation_id,
    parse_duration,
)
from kling_ui.service import DEMO, LIVE, SERVER, TYPED, choose_backend


@pytest.mark.parametrize("value, seconds", [(5, 5), (10, 10), ("5", 5), (" 10 ", 10), (5.0, 5)])
def test_a_duration_is_read_as_the_page_or_a_program_sends_it(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [7, 0, True, "7", "five", None, 5.5])
def test_any_other_duration_is_refused(value):
    with pytest.raises(errors.InputError, match="5 or 10"):
        parse_duration(value)


def test_a_request_is_built_only_from_checked_fields():
    request = Request.make("Waves.", negative_prompt=None, duration="10", generate_audio=False)
    assert (request.negative_prompt, request.duration, request.generate_audio) == ("", 10, False)
    with pytest.raises(errors.InputError, match="Write a prompt"):
        Request.make("  ")


def test_ids_are_checked_once_for_shape_and_once_more_when_new():
    assert check_generation_id(f"  {EXAMPLE_ID}\n") == EXAMPLE_ID
    assert check_new_generation_id(EXAMPLE_ID) == EXAMPLE_ID
    assert check_new_generation_id(EXAMPLE_ID.split(":")[0])  # the uuid alone is an id too
    for bad in ("", "a\x00b", "x" * 201):
        with pytest.raises(errors.InputError):
            check_generation_id(bad)
    for typo in ("hello world", "27f25c85", EXAMPLE_ID[:-60]):
        with pytest.raises(errors.InputError, match="look like"):
            check_new_generation_id(typo)


KEY = "sk-server-key-1"
REFUSED = errors.AuthenticationError


@pytest.mark.parametrize(
    "settings, typed, recorded, demo_ready, expected",
    [
        # a laptop with a server key
        (Settings(api_key=KEY), "", None, False, SERVER),
        (Settings(api_key=KEY), "sk-typed", None, False, TYPED),
        (Settings(api_key=KEY), "", LIVE, False, SERVER),
        (Settings(api_key=KEY), "", DEMO, False, REFUSED),  # a demo job, demo mode now off
        # no key: demo mode
        (Settings(), "", None, True, DEMO),
        (Settings(), "sk-typed", None, True, TYPED),  # a typed key always means the real API
        (Settings(), "", DEMO, True, DEMO),
        (Settings(), "sk-typed", DEMO, True, DEMO),  # a demo job stays in the demo
        (Settings(), "", LIVE, True, REFUSED),  # a real job is never sent to the simulator
        (Settings(), "", None, False, REFUSED),  # no key and no simulator: ask for a key
        # --demo with a server key
        (Settings(api_key=KEY, demo=True), "", None, True, DEMO),
        (Settings(api_key=KEY, demo=True), "", LIVE, True, REFUSED),
        (Settings(api_key=KEY, demo=True), "sk-typed", LIVE, True, TYPED),
        # --require-user-key, and a Space that keeps its owner's key
        (Settings(api_key=KEY, require_user_key=True), "", None, False, REFUSED),
        (Settings(api_key=KEY, require_user_key=True), "sk-typed", None, False, TYPED),
        (Settings(api_key=KEY, on_space=True), "", None, False, REFUSED),
        (Settings(api_key=KEY, on_space=True), "sk-typed", LIVE, False, TYPED),
        (Settings(api_key=KEY, on_space=True, allow_shared_key=True), "", None, False, SERVER),
    ],
)
def test_one_rule_picks_the_backend(settings, typed, recorded, demo_ready, expected):
    if expected is REFUSED:
        with pytest.raises(REFUSED):
            choose_backend(settings, typed_key=typed, recorded=recorded, demo_ready=demo_ready)
    else:
        got = choose_backend(settings, typed_key=typed, recorded=recorded, demo_ready=demo_ready)
        assert got == expected


@pytest.mark.parametrize(
    "settings, demo_mode",
    [
        (Settings(), True),
        (Settings(api_key=KEY), False),
        (Settings(api_key=KEY, demo=True), True),
        (Settings(require_user_key=True), False),
        (Settings(api_key=KEY, on_space=True), False),
    ],
)
def test_one_rule_says_when_the_app_is_in_demo_mode(settings, demo_mode):
    assert settings.demo_mode is demo_mode
