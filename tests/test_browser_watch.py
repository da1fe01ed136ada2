"""Watching a job in a real browser (issue 23, the page): Stop watching and what comes after
it, results brought into view without sound nobody asked for, the card's clocks.

Chromium driven by Playwright against ``python app.py`` with the simulator as its API
(``browsing``). Screenshots go to test-artifacts/ (``watch-*``)."""

from __future__ import annotations

import re
import time

import pytest
from browsing import (  # noqa: F401  (fixtures)
    CARD,
    GEN_ID,
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
    tile,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
LAPTOP = {"width": 1366, "height": 768}
RUNNING = ("queued", "generating")
# Gradio's own status badge: what a broken event leaves on its outputs.
ERROR_BADGE = ".progress-text, .error"


def until(check, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


def start_and_stop(page, sim, photo, prompt: str) -> str:
    """A job that waits at the vendor, watched, then Stop watching pressed: its id."""
    sim.script_outcome("never")
    fill_job(page, photo, prompt)
    page.locator("#generate").click()
    status_lines(page, lambda line: phase(line) in RUNNING)
    gid = page.locator(GEN_ID).input_value()
    page.locator("#stop").click()
    status_lines(page, lambda line: line.startswith("Status: stopped"))
    expect(page.locator("#generate")).to_be_enabled()
    return gid


def no_error_badges(page) -> None:
    """Gradio marks an output whose event broke with a red "Error": none may show."""
    badges = page.locator("#progress-card, #video").get_by_text("Error", exact=True)
    expect(badges).to_have_count(0)


def test_after_stop_watching_one_press_of_generate_starts_the_next_job(live, sim, page, photo):
    """Item 12: the busy note sends people to Stop watching; the next press must work."""
    open_page(page, live.url)
    start_and_stop(page, sim, photo, "The first job, stopped.")
    creates = sim.creates
    page.locator("#prompt textarea").fill("The second job, one press.")
    page.locator("#generate").click()  # once
    until(lambda: sim.creates == creates + 1, what="a second create after one press")
    status_lines(page, lambda line: phase(line) in RUNNING)
    expect(page.locator("#stop")).to_be_enabled()
    no_error_badges(page)


@pytest.mark.parametrize("how", ["tile", "resume"])
def test_a_stopped_job_watched_again_follows_it_to_its_end(live, sim, page, photo, how):
    """Item 13: from its tile or Resume by id, the card walks on to Done, the video plays,
    the tile says completed, and no red "Error" shows anywhere."""
    open_page(page, live.url)
    prompt = f"Stopped, then watched again by {how}."
    gid = start_and_stop(page, sim, photo, prompt)

    def watch_again() -> None:
        if how == "tile":
            tile(page, prompt).click()
        else:
            page.locator("#resume-id textarea").fill(gid)
            page.locator("#resume").click()
        status_lines(page, lambda line: phase(line) in RUNNING)

    watch_again()  # and stopped again: a person may go back and forth
    page.locator("#stop").click()
    status_lines(page, lambda line: line.startswith("Status: stopped"))
    expect(page.locator("#generate")).to_be_enabled()
    watch_again()
    expect(page.locator("#stop")).to_be_enabled()
    sim.complete_now(gid)
    lines = status_lines(page, is_final)
    assert phase(lines[-1]) == "completed", lines
    expect(page.locator(CARD)).to_have_attribute("data-phase", "completed")
    expect(page.locator("#video video")).to_have_count(1)
    expect(tile(page, prompt)).to_contain_text("completed")
    no_error_badges(page)
    expect(page.locator("#generate")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()
    screenshot(page, f"watch-again-{how}.png")
    assert re.match(r"^Status: completed", page.locator("#status textarea").input_value())
