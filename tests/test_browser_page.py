"""The page as a product (issue 13), in Chromium: the progress card, the gallery, Remix, the
filter, focus and the live region, and axe-core's checks in light and dark, laptop and phone.

Screenshots go to test-artifacts/ (``a11y-*``, ``card-*``, ``gallery*``, ``remix*``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from a11y import describe, serious_violations
from browsing import (  # noqa: F401  (fixtures)
    CARD,
    GEN_ID,
    PHASES,
    app,
    expect,
    expect_video_playing,
    fill_job,
    is_final,
    live,
    open_page,
    screenshot,
    sim,
    status_lines,
    tile,
)
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
NASTY = '<img src=x onerror="window.__owned=1"><b>bold</b>'
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def red(tmp_path) -> Path:
    """A picture whose colour a test can find again (Remix brings it back)."""
    path = tmp_path / "red.jpg"
    Image.new("RGB", (900, 600), (220, 30, 30)).save(path, quality=92)
    return path


def more_settings(page):
    """The "More settings" group's header (its button, not a note that names it)."""
    return page.get_by_role("button", name=re.compile(r"^More settings"))


def check_axe(page, name: str) -> None:
    screenshot(page, f"a11y-{name}.png")
    found = serious_violations(page)
    assert not found, f"{name}:\n{describe(found)}"


def test_the_card_walks_through_the_phases_and_speaks_them(live, sim, page, photo):
    sim.set_schedule(PHASES)  # each phase long enough to be seen
    open_page(page, live.url)
    expect(page.locator(CARD)).to_contain_text("No job yet")
    fill_job(page, photo, "The meadow sways.")
    page.locator("#generate").click()
    # Focus goes to the card, where the job's progress is.
    page.wait_for_function("document.activeElement?.id === 'progress-card'")
    lines = status_lines(page, lambda line: line == "Status: generating")
    current = page.locator(f"{CARD} li[aria-current=step]")
    expect(current).to_have_count(1)
    expect(current).to_contain_text("Generating")
    expect(page.locator(f"{CARD} li.kui-done")).to_have_count(3)  # checked, sent, queued
    screenshot(page, "card-generating.png")
    lines += status_lines(page, is_final)[1:]  # its first is the one the wait above ended on
    assert lines[-1] == "Status: completed", lines
    seen = [line.removeprefix("Status: ") for line in lines]
    assert [p for p in seen if p in ("queued", "generating", "completed")] == [
        "queued", "generating", "completed"
    ], seen  # fmt: skip
    expect(page.locator(f"{CARD} li.kui-done")).to_have_count(6)
    expect(page.locator("#kui-announcer")).to_have_text("Done: the video is ready and playing.")
    gid = page.locator(GEN_ID).input_value()
    expect(page.locator(f"{CARD} code")).to_have_text(gid)
    screenshot(page, "card-done.png")


def test_a_failed_job_shows_words_not_markup(live, sim, page, photo):
    sim.script_outcome("never")
    open_page(page, live.url)
    fill_job(page, photo, "The meadow sways.")
    page.locator("#generate").click()
    status_lines(page, lambda line: line in ("Status: queued", "Status: generating"))
    sim.fail_job(page.locator(GEN_ID).input_value(), "moderation", f"Refused: {NASTY}")
    lines = status_lines(page, is_final)
    assert lines[-1] == "Status: failed", lines
    card = page.locator(CARD)
    expect(card).to_contain_text("failed at the vendor")  # our words, with the next step
    expect(card).to_contain_text(f"Refused: {NASTY}")  # the vendor's, as text
    assert card.locator("img, b").count() == 0
    assert page.evaluate("window.__owned") is None
    expect(page.locator("#kui-announcer")).to_contain_text("Failed: The generation failed")
    expect(page.locator(f"{CARD} li.kui-stuck")).to_contain_text("Generating")
    screenshot(page, "card-failed.png")


def test_the_gallery_shows_a_poster_and_plays_a_video_on_click(live, sim, page, photo):
    open_page(page, live.url)
    fill_job(page, photo, "A poster for the gallery.")
    page.locator("#generate").click()
    status_lines(page, is_final)
    page.reload()  # nothing playing: the gallery is the way back to it
    expect(page.locator("#generate")).to_be_visible()
    shown = tile(page, "A poster for the gallery.")
    expect(shown).to_contain_text("completed")
    poster = shown.locator("img")
    expect(poster).to_have_attribute("src", re.compile(r"/media/[0-9a-f]{32}\.jpg$"))
    poster.evaluate("img => img.complete || new Promise(ok => img.onload = ok)")
    assert poster.evaluate("img => img.naturalWidth") > 0
    screenshot(page, "gallery.png")
    shown.click()
    status_lines(page, is_final)
    expect_video_playing(page)
    page.wait_for_timeout(1200)  # a frame or so further into the clip, for the picture
    screenshot(page, "gallery-played.png")  # the README's picture
    assert sim.creates == 1


def test_remix_fills_the_form_with_the_jobs_image_and_settings(live, sim, page, red):
    open_page(page, live.url)
    fill_job(page, red, "Remix me: the red field ripples.")
    more_settings(page).click()
    page.locator("#negative textarea").fill("blur, text")
    page.locator("#duration").get_by_text("10 seconds").click()
    page.locator("#audio input").uncheck()
    page.locator("#generate").click()
    status_lines(page, is_final)

    page.reload()  # a clean form
    expect(page.locator("#generate")).to_be_visible()
    tile(page, "Remix me").click()
    status_lines(page, is_final)
    # The video in place first: as it comes, the gallery and its buttons move down (a click
    # on Remix as they moved once missed it, in a CPU-starved run).
    page.wait_for_function("document.querySelector('#video video')?.readyState >= 1")
    page.locator("#remix").click()
    expect(page.locator("#prompt textarea")).to_have_value("Remix me: the red field ripples.")
    expect(page.locator("#gallery-note")).to_contain_text("Remixed")
    expect(page.locator("#image-note")).to_contain_text("Image OK")
    page.wait_for_function("document.activeElement && document.activeElement.closest('#prompt')")
    expect(page.locator("#duration input[value='10']")).to_be_checked()
    expect(page.locator("#audio input")).not_to_be_checked()
    more_settings(page).click()
    expect(page.locator("#negative textarea")).to_have_value("blur, text", timeout=15_000)
    # The image is the one sent: red, at the size it was sent.
    shown = page.locator("#image img").first
    colour = shown.evaluate(
        """img => new Promise(ok => {
            const go = () => { const c = document.createElement('canvas');
              c.width = img.naturalWidth; c.height = img.naturalHeight;
              const g = c.getContext('2d'); g.drawImage(img, 0, 0);
              ok([...g.getImageData(c.width / 2, c.height / 2, 1, 1).data].slice(0, 3)); };
            img.complete ? go() : (img.onload = go); })"""
    )
    assert colour[0] > 180 and colour[1] < 80 and colour[2] < 80, colour
    screenshot(page, "remix.png")


def test_the_filter_narrows_the_gallery(live, sim, page, photo):
    open_page(page, live.url)
    for prompt in ("Ocean waves roll in.", "A candle flickers."):
        fill_job(page, photo, prompt)
        page.locator("#generate").click()
        status_lines(page, is_final)
    tiles = page.locator("#gallery .thumbnail-item")
    expect(tiles).to_have_count(2)
    search = page.locator("#gallery-filter textarea, #gallery-filter input").first
    search.fill("candle")
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_contain_text("A candle flickers.")
    search.fill("nothing like this")
    expect(tiles).to_have_count(0)
    search.fill("")
    expect(tiles).to_have_count(2)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_nothing_serious_empty_during_and_after_a_job(live, sim, browser, theme, photo):
    """No serious or critical violations: the empty page (laptop and phone, every group
    open), during a job and after it."""
    for size, name in [(LAPTOP, "laptop"), (PHONE, "phone")]:
        context = browser.new_context(viewport=size, color_scheme=theme)
        page = context.new_page()
        try:
            open_page(page, f"{live.url}?__theme={theme}")
            more_settings(page).click()
            page.get_by_text("Batch: many images").click()
            page.wait_for_timeout(500)
            check_axe(page, f"empty-{name}-{theme}")
        finally:
            context.close()
    context = browser.new_context(viewport=LAPTOP, color_scheme=theme)
    page = context.new_page()
    try:
        sim.script_outcome("never")
        open_page(page, f"{live.url}?__theme={theme}")
        fill_job(page, photo, "Checked while it runs.")
        page.locator("#generate").click()
        status_lines(page, lambda line: line in ("Status: queued", "Status: generating"))
        check_axe(page, f"during-{theme}")
        sim.complete_now(page.locator(GEN_ID).input_value())
        status_lines(page, is_final)
        expect(tile(page, "Checked while it runs.")).to_be_visible()
        check_axe(page, f"after-{theme}")
    finally:
        context.close()


def test_copy_as_curl_gives_the_forms_request_with_the_key_as_a_variable(live, sim, page, red):
    """Issue 14, copy as code: the form as cURL, in a code box and on the clipboard. The key
    typed in the page is nowhere in it, only ``$AIMLAPI_KEY``; the image is the uploaded
    file's name; nothing is sent."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_page(page, live.url)
    fill_job(page, red, 'Copy me: it\'s "quoted" and costs $5.')
    more_settings(page).click()
    typed = "sk-typed-in-the-page-5150"
    page.locator("#api-key input").fill(typed)
    page.locator("#form-copy-curl").click()
    code = page.locator("#form-code")
    expect(code).to_contain_text("$AIMLAPI_KEY")
    expect(code).to_contain_text("IMAGE=red.jpg")
    expect(page.locator("#form-code-note")).to_contain_text("Copied to the clipboard")
    shown = code.inner_text()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert 'it\'"\'"\'s \\"quoted\\" and costs $5.' in copied
    for text in (shown, copied):
        assert typed not in text and not re.search(r"base64,[A-Za-z0-9+/]", text)
    check_axe(page, "copy-as-curl")
    assert sim.creates == 0
