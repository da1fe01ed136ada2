"""Longer videos in Chromium (issue 15): Continue on a finished video, a new prompt,
Generate, and the page plays the two parts stitched, as long as both together (less the
repeated frame). The simulator's clips zoom into each job's own image (``clips="zoom"``),
so the parts are the real lengths asked for.

Screenshots go to test-artifacts/ (``chain-*``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from browsing import (  # noqa: F401  (fixtures)
    app,
    expect,
    fill_job,
    is_final,
    live,
    open_page,
    screenshot,
    status_lines,
)

from kling_ui.simulator import Schedule, Simulator

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
DURATION_JS = """v => new Promise(ok => {
  if (v.readyState >= 1 && isFinite(v.duration)) return ok(v.duration);
  v.addEventListener("loadedmetadata", () => ok(v.duration), {once: true});
})"""


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(schedule=Schedule(queued_s=0.5, generating_s=1), clips="zoom").start()
    try:
        yield simulator
    finally:
        simulator.stop()


def test_continue_makes_the_next_part_and_plays_the_whole_chain(live, sim, page, photo):
    open_page(page, live.url)
    fill_job(page, photo, "Part one: the field ripples.")
    page.locator("#generate").click()
    assert status_lines(page, is_final)[-1] == "Status: completed"

    page.locator("#continue-current").click()
    note = page.locator("#continuing")
    expect(note).to_contain_text("Continuing from the last frame")
    expect(note).to_contain_text("Part one")
    expect(page.locator("#image img")).to_have_count(1)  # the last frame, in the form
    page.wait_for_function("document.activeElement && document.activeElement.closest('#prompt')")
    page.locator("#prompt textarea").fill("Part two: the camera moves closer.")
    page.locator("#generate").click()
    status_lines(page, lambda line: line == "Status: submitted" or is_final(line))
    assert status_lines(page, is_final)[-1] == "Status: completed"

    video = page.locator("#video video")
    expect(video).to_have_attribute("src", re.compile(r"\.chain\.mp4$"))
    seconds = video.evaluate(DURATION_JS)
    assert abs(seconds - (10 - 1 / 24)) < 0.1, seconds  # 5 s + 5 s, one repeated frame less
    chain = page.locator("#chain-view")
    expect(chain).to_contain_text("Chain of 2 parts: 10 s")
    expect(chain.get_by_role("link", name="download the whole video")).to_have_count(1)
    expect(chain.get_by_role("link", name="download part")).to_have_count(2)
    expect(page.locator("#continuing")).to_be_hidden()  # the next Continue goes on from here
    screenshot(page, "chain-played.png")

    # The create of part two carried part one's last frame, not the photo.
    second = [r for r in sim.requests_to("/v2/video/generations") if r.method == "POST"][-1]
    assert second.body["prompt"] == "Part two: the camera moves closer."
    assert all(sim.image_of(gid) for gid in sim.jobs) and len(sim.jobs) == 2


def test_a_new_image_ends_the_continuing(live, page, photo):
    open_page(page, live.url)
    fill_job(page, photo, "Only part.")
    page.locator("#generate").click()
    assert status_lines(page, is_final)[-1] == "Status: completed"
    page.locator("#continue-current").click()
    expect(page.locator("#continuing")).to_be_visible()
    page.locator("#stop-continuing").click()
    expect(page.locator("#continuing")).to_be_hidden()
    expect(page.locator("#stop-continuing")).to_be_hidden()
