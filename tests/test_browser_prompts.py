"""Issue 26 in a real browser: Improve prompt (the suggestion shown, edited, used; nothing
sent for video until Generate), Ctrl+Enter to generate, this browser's last prompts after a
reload, and a refused suggestion that says why and changes nothing; against ``python
app.py`` with the simulator as its API (which answers the chat deterministically)."""

from __future__ import annotations

import re

import pytest
from a11y import describe, serious_violations
from browsing import (  # noqa: F401  (fixtures)
    CARD,
    app,
    expect,
    fill_job,
    is_final,
    live,
    open_page,
    phase,
    screenshot,
    sim,
    status_lines,
)

from kling_ui.simulator import Fault

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CREATE = "/v2/video/generations"
CHAT = "/v1/chat/completions"


def creates(sim) -> list[dict]:
    return [r.body for r in sim.requests_to(CREATE) if r.method == "POST"]


def test_improve_edit_use_then_generate_with_ctrl_enter(live, sim, page, photo):
    page.set_viewport_size({"width": 1366, "height": 768})
    open_page(page, live.url)
    fill_job(page, photo, "The cat blinks.")
    page.locator("#improve").click()
    suggestion = page.locator("#suggestion-text textarea")
    expect(suggestion).to_have_value(re.compile(r"^Slow cinematic push-in .*The cat blinks"))
    expect(page.locator("#suggestion-note")).to_contain_text("Suggested by")
    expect(page.locator("#suggestion-negative textarea")).to_have_value(re.compile("blur"))
    # Seen, not taken: the form is as it was, and nothing was sent for video.
    expect(page.locator("#prompt textarea")).to_have_value("The cat blinks.")
    (chat,) = sim.requests_to(CHAT)
    parts = chat.body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert parts[1]["image_url"]["url"].startswith("<data:image/jpeg ")
    assert "sk-browser-test-key" not in str(chat.body)
    assert creates(sim) == []
    found = serious_violations(page)
    assert not found, describe(found)
    screenshot(page, "prompt-suggestion.png")

    suggestion.fill("Slow push-in; the cat blinks twice.")
    page.locator("#use-suggestion").click()
    expect(page.locator("#prompt textarea")).to_have_value("Slow push-in; the cat blinks twice.")
    expect(page.locator("#suggestion")).to_be_hidden()
    page.locator("#prompt textarea").press("Control+Enter")  # Generate, from the keyboard
    lines = status_lines(page, is_final)
    assert phase(lines[-1]) == "completed", (lines, page.locator(CARD).all_inner_texts())
    (body,) = creates(sim)
    assert body["prompt"] == "Slow push-in; the cat blinks twice."
    assert body["negative_prompt"] == "blur, flicker, distorted faces, text"

    # After a reload, this browser offers its last prompt again.
    page.reload()
    expect(page.locator("#generate")).to_be_enabled()
    recent = page.locator("#recent-prompts")
    expect(recent).to_be_visible()
    found = serious_violations(page)  # the list of last prompts is named for a screen reader
    assert not found, describe(found)
    recent.locator("input").click()
    page.get_by_role("option", name="Slow push-in; the cat blinks twice.").click()
    expect(page.locator("#prompt textarea")).to_have_value("Slow push-in; the cat blinks twice.")


def test_a_refused_suggestion_says_why_and_changes_nothing(live, sim, page, photo):
    open_page(page, live.url)
    fill_job(page, photo, "Waves roll in.")
    sim.script_chat(Fault.status(403, "Insufficient credits"))
    page.locator("#improve").click()
    note = page.locator("#suggestion-note")
    expect(note).to_contain_text("⚠")
    expect(page.locator("#suggestion-text")).to_be_hidden()
    expect(page.locator("#use-suggestion")).to_be_hidden()
    expect(page.locator("#prompt textarea")).to_have_value("Waves roll in.")
    # Then it answers: the reason goes, the suggestion comes.
    page.locator("#improve").click()
    expect(page.locator("#suggestion-text textarea")).to_have_value(re.compile("Waves roll in"))
    expect(note).not_to_contain_text("⚠")
    assert creates(sim) == []
