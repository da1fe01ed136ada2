"""The progress card's template: every person's or vendor's string shown as text, the steps
marked as the job moves, and the words a failure needs."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from kling_ui.jobs import Progress
from kling_ui.states import CARD_STEPS
from kling_ui.ui.card import EMPTY, card_from_status, render_card

OURS = {"section", "p", "ol", "li", "span", "code", "button", "strong"}
NASTY = '<img src=x onerror="alert(1)"><script>alert(2)</script>"\'&'


class Parsed(HTMLParser):
    """The card's tags, attributes and text, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    @property
    def words(self) -> str:
        return "".join(self.text)


def _steps(html: str) -> list[str]:
    """Each step's state class, in order."""
    return [a["class"].split()[1].removeprefix("kui-") for t, a in Parsed(html).tags if t == "li"]


def test_html_in_every_field_is_shown_as_text():
    update = Progress(
        generation_id=NASTY,
        phase="failed",
        message=f"Ours {NASTY} The API said: vendor {NASTY}",
        elapsed=12.0,
        queued_for=4.0,
        generating_for=8.0,
        estimate_usd=0.7,
        charged_usd=0.0,
    )
    html = render_card(update, NASTY, typical=60.0)
    parsed = Parsed(html)
    assert {tag for tag, _ in parsed.tags} <= OURS, parsed.tags
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    # The nasty strings arrive whole, as text: our words, the vendor's, the id.
    assert f"Ours {NASTY}" in parsed.words
    assert f"vendor {NASTY}" in parsed.words
    assert NASTY in [a.get("data-copy") for _, a in parsed.tags if "data-copy" in a]
    announce = [a["data-announce"] for t, a in parsed.tags if t == "section"][0]
    assert announce.startswith("Failed: Ours") and "vendor" not in announce


def test_a_status_text_with_markup_becomes_a_card_of_text():
    html = card_from_status(f"Status: not sent\nBad image {NASTY}", shown_id=NASTY)
    parsed = Parsed(html)
    assert {tag for tag, _ in parsed.tags} <= OURS
    assert f"Bad image {NASTY}" in parsed.words and "Not sent" in parsed.words


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("submitting", ["done", "current", "todo", "todo", "todo", "todo"]),
        ("queued", ["done", "done", "current", "todo", "todo", "todo"]),
        ("generating", ["done", "done", "done", "current", "todo", "todo"]),
        ("downloading", ["done", "done", "done", "done", "current", "todo"]),
        ("completed", ["done"] * 6),
        ("failed", ["done", "done", "done", "stuck", "todo", "todo"]),
        ("refused", ["done", "stuck", "todo", "todo", "todo", "todo"]),
    ],
)
def test_the_steps_follow_the_phase(phase, expected):
    html = render_card(Progress("gid", phase, "Words.", elapsed=5, queued_for=2))
    assert _steps(html) == expected
    marked = [a for t, a in Parsed(html).tags if a.get("aria-current") == "step"]
    assert len(marked) == (0 if phase == "completed" else 1)
    assert len(CARD_STEPS) == 6


def test_an_eta_is_given_only_with_a_typical_time_and_says_about():
    running = Progress("gid", "generating", "Generating.", elapsed=30, queued_for=10)
    assert "left" not in Parsed(render_card(running, "gid")).words
    words = Parsed(render_card(running, "gid", typical=90.0)).words
    assert "About 1:00 left" in words and "usually take about 1:30" in words
    late = Parsed(render_card(running, "gid", typical=20.0)).words
    assert "Taking longer than usual" in late
    done = Progress("gid", "completed", "Done.", elapsed=30)
    assert "left" not in Parsed(render_card(done, "gid", typical=90.0)).words


def test_time_spent_queued_and_generating_is_shown():
    update = Progress("gid", "generating", "Generating.", elapsed=75, queued_for=15,
                      generating_for=60)  # fmt: skip
    words = Parsed(render_card(update, "gid")).words
    assert "Queued 0:15" in words and "Generating 1:00" in words and "1:15" in words


def test_the_price_then_the_charge():
    sent = Progress("gid", "queued", "Queued.", estimate_usd=0.7)
    assert "price $0.70" in Parsed(render_card(sent, "gid")).words
    done = Progress("gid", "completed", "Done.", estimate_usd=0.7, charged_usd=0.7)
    assert "Cost: $0.70" in Parsed(render_card(done, "gid")).words


def test_the_empty_card_invites_a_first_job():
    assert "Generate" in Parsed(EMPTY).words


def test_the_card_says_dollars_and_keeps_the_credits_in_its_details():
    """Issue 23 item 18: "credits: 1,400,000" beside $0.70 read as a second price."""
    update = Progress("gid-1", "completed", "Done.", elapsed=60, credits=1_400_000, charged_usd=0.7)
    html = render_card(update, "gid-1")
    visible, _, details = html.partition("<details")
    assert "$0.70" in visible and "1,400,000" not in visible
    assert "<summary>Details</summary>" in details and "1,400,000" in details
