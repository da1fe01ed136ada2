"""Batches in the browser's history, and the panorama's way out (issue 23, items 14 and 16),
in Chromium at 1366x768 against ``python app.py`` with the simulator as its API.

A batch's videos are tiles in Your videos like any other (poster, play, Remix), and the
batch table comes back after a reload, rebuilt from the ledger, with a thumbnail and a play
link a row. A 3:1 image stays on the page with Crop and Pad right under its message; either
applies at once, the image shows the picture that will be sent, and Generate sends it.

Screenshots go to test-artifacts/ (``batch-*``, ``panorama-*``)."""

from __future__ import annotations

import base64
import io
import re
import time
import urllib.request

import pytest
from a11y import describe, serious_violations
from apprunner import spy_on_creates
from browsing import (  # noqa: F401  (fixtures)
    app,
    expect,
    expect_video_playing,
    is_final,
    live,
    open_page,
    screenshot,
    sim,
    status_lines,
    tile,
)
from PIL import Image

from kling_ui.ui.batch import BATCH_KEY

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
LAPTOP = {"width": 1366, "height": 768}
PROMPT = "Batch: the tide rolls over the rocks."


@pytest.fixture
def laptop(browser):
    context = browser.new_context(viewport=LAPTOP)
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def check_axe(page, name: str) -> None:
    screenshot(page, f"{name}.png")
    found = serious_violations(page)
    assert not found, f"{name}:\n{describe(found)}"


def open_batch(page) -> None:
    page.get_by_role("button", name=re.compile(r"^Batch: many images")).click()
    expect(page.locator("#batch-queue")).to_be_visible()


def expect_thumbnails_and_play_links(table, count: int) -> list[str]:
    """Each of ``count`` rows shows its video's first frame and a link that plays it (the
    table may draw a row twice, to measure it: distinct addresses are counted)."""
    expect(table.locator("img[src*='/media/']:visible").first).to_be_visible()
    posters = set(table.locator("img[src*='/media/']").evaluate_all("e => e.map((i) => i.src)"))
    links = table.get_by_role("link", name=re.compile(r"Play video \d"))
    hrefs = sorted(set(links.evaluate_all("e => e.map((a) => a.href)")))
    assert len(posters) == count and all(p.endswith(".jpg") for p in posters), posters
    assert len(hrefs) == count, hrefs
    for href in hrefs:
        assert re.search(r"/media/[^/]+\.mp4$", href), href
    return hrefs


def wait_for(check, what: str, page, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(250)


# --- item 14: a batch belongs to the browser's history -------------------------------------


def test_a_batchs_videos_are_tiles_and_its_table_survives_a_reload(live, sim, laptop, tmp_path):
    page = laptop
    images = []
    for n, colour in enumerate([(200, 60, 60), (60, 60, 200)]):
        path = tmp_path / f"batch-{n}.jpg"
        Image.new("RGB", (800, 600), colour).save(path)
        images.append(path)
    open_page(page, live.url)
    open_batch(page)
    page.locator("#batch-images input[type=file]").set_input_files(images)
    expect(page.locator("#batch-images a[href*='batch-1']")).to_have_count(1)  # uploaded
    page.locator("#batch-prompts textarea").fill(PROMPT)
    page.locator("#batch-queue").click()
    table = page.locator("#batch-table")
    expect(table).to_contain_text("Batch: the tide", timeout=30_000)
    wait_for(lambda: table.inner_text().count("completed") == 2, "the batch never ended", page)

    # Both videos are tiles in Your videos, each with its poster, as soon as they are done.
    tiles = tile(page, "the tide rolls")
    expect(tiles).to_have_count(2)
    for n in range(2):
        expect(tiles.nth(n).locator("img")).to_have_attribute("src", re.compile(r"/media/.+\.jpg"))
    # The table: a thumbnail and a play link a row.
    expect_thumbnails_and_play_links(table, 2)
    table.scroll_into_view_if_needed()
    screenshot(page, "batch-done.png")

    # A tile plays like any other, and Remix takes its prompt back to the form.
    tiles.first.click()
    expect_video_playing(page)
    page.locator("#remix").click()
    expect(page.locator("#prompt textarea")).to_have_value(PROMPT)

    # After a reload: the tiles, and the batch table rebuilt from the ledger.
    page.reload()
    expect(page.locator("#generate")).to_be_visible()
    expect(tile(page, "the tide rolls")).to_have_count(2)
    open_batch(page)
    expect(table).to_contain_text("Batch: the tide")
    wait_for(lambda: table.inner_text().count("completed") >= 2, "no table after reload", page)
    hrefs = expect_thumbnails_and_play_links(table, 2)
    href = hrefs[0]
    with urllib.request.urlopen(href, timeout=20) as answer:  # noqa: S310 (loopback)
        assert answer.headers["Content-Type"] == "video/mp4"
        assert len(answer.read()) > 1000
    # Every header on one line (none wrapped letter by letter in a squeezed column).
    heights = table.locator("thead th").evaluate_all(
        "cells => cells.map((c) => [c.innerText.trim(), c.getBoundingClientRect().height])"
    )
    line = table.locator("thead th").first.evaluate(
        "c => parseFloat(getComputedStyle(c).lineHeight) || 20"
    )
    for name, height in heights:
        assert height < 2.6 * line + 24, (name, height, line, heights)
    page.locator("#batch-table").scroll_into_view_if_needed()
    check_axe(page, "batch-after-reload")
    assert sim.creates == 2


TRIGGER_OUTPUTS = """(names) => {
    const ids = names.map(n => window.gradio_config.components.find(
        c => c.props.elem_id === n).id);
    return window.gradio_config.dependencies.filter(
        d => ids.every(i => d.outputs.includes(i))).map(d => d.id);
}"""


def restore_done(page) -> dict:
    """Notes when the load's batch restore (the one event that redraws both the gallery and
    the batch table) has completed: the queue's stream is read whole (it closes once no
    event is left) and its completion for that event is looked for. The page must be
    loaded: the event's number is read from it now (a join that arrives while the page
    reloads can't read it: the page's context is gone then)."""
    restore = set(page.evaluate(TRIGGER_OUTPUTS, ["gallery", "batch-table"]))
    seen: dict = {"events": set(), "done": False, "restore": restore}

    def join(r) -> None:
        body = r.request.post_data_json or {}
        response = r.fetch()
        if body.get("fn_index") in seen["restore"]:
            seen["events"].add(response.json().get("event_id"))
        r.fulfill(response=response)

    def data(r) -> None:
        response = r.fetch()
        text = response.text()
        for line in text.splitlines():
            if '"process_completed"' in line and any(e and e in line for e in seen["events"]):
                seen["done"] = True
        r.fulfill(response=response)

    page.route("**/queue/join*", join)
    page.route("**/queue/data*", data)
    return seen


def pump(page, check, timeout: float = 60.0, what: str = "") -> None:
    """Waits for what Playwright delivers (routes run only while it is called)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        page.wait_for_timeout(100)


def test_a_batch_table_is_this_browsers_own(live, sim, browser, tmp_path):
    """Another browser (its own owner token) sees neither the table nor the tiles."""
    path = tmp_path / "mine.jpg"
    Image.new("RGB", (800, 600), (90, 140, 40)).save(path)
    mine = browser.new_context(viewport=LAPTOP)
    theirs = browser.new_context(viewport=LAPTOP)
    try:
        page = mine.new_page()
        open_page(page, live.url)
        open_batch(page)
        page.locator("#batch-images input[type=file]").set_input_files([path])
        expect(page.locator("#batch-images a[href*='mine']")).to_have_count(1)  # uploaded
        page.locator("#batch-prompts textarea").fill("Only mine: leaves fall.")
        page.locator("#batch-queue").click()
        expect(page.locator("#batch-table")).to_contain_text("Only mine", timeout=30_000)
        expect(tile(page, "Only mine")).to_have_count(1)
        kept = page.evaluate(f"() => localStorage.getItem({BATCH_KEY!r})")
        assert kept, "the first browser keeps its batch"
        other = theirs.new_page()
        open_page(other, live.url)
        # The second browser is handed the first one's kept batch (its own owner token
        # stays): once its load's events have run, the batch shows nothing of it.
        other.evaluate(f"(v) => localStorage.setItem({BATCH_KEY!r}, v)", kept)
        done = restore_done(other)
        other.reload()
        open_batch(other)
        pump(other, lambda: done["done"], what="the batch restored on load")
        expect(other.locator("#batch-table")).not_to_contain_text("Only mine")
        expect(other.locator("#batch-table tbody tr td", has_text="leaves fall")).to_have_count(0)
        expect(tile(other, "Only mine")).to_have_count(0)
        # The same kept batch, in the first browser again, shows its row: what was handed
        # over is a batch a browser's load does restore.
        page.reload()
        open_batch(page)
        expect(page.locator("#batch-table")).to_contain_text("Only mine", timeout=30_000)
    finally:
        for context in (theirs, mine):
            # The watcher's routes may have a stream in flight: closed with them, they
            # would raise in Playwright's listener, during the next test.
            for tab in context.pages:
                tab.unroute_all(behavior="ignoreErrors")
            context.close()


# --- item 16: the panorama trap ------------------------------------------------------------


def sent_size(body: dict) -> tuple[int, int]:
    uri = body["image_url"]
    assert uri.startswith("data:image/jpeg;base64,"), uri[:40]
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size


def shown_size(page) -> tuple[int, int]:
    """The natural size of the picture the image field shows."""
    img = page.locator("#image img").first
    expect(img).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#image img'); return i && i.complete && "
        "i.naturalWidth > 0; }"
    )
    return tuple(img.evaluate("i => [i.naturalWidth, i.naturalHeight]"))


def test_a_panorama_is_kept_with_crop_and_pad_under_its_note(
    live, sim, laptop, tmp_path, monkeypatch
):
    bodies = spy_on_creates(monkeypatch)
    page = laptop
    wide = tmp_path / "panorama.jpg"
    Image.new("RGB", (1500, 500), (30, 110, 170)).save(wide, quality=90)
    open_page(page, live.url)
    page.locator("#image input[type=file]").set_input_files(wide)
    note = page.locator("#image-note")
    expect(note).to_contain_text("3.00:1")
    # The image stays, and the way out is right under the message, not in More settings.
    expect(page.locator("#image img")).to_have_count(1)
    crop, pad = page.locator("#fit-crop"), page.locator("#fit-pad")
    expect(crop).to_be_visible()
    expect(pad).to_be_visible()
    below = note.bounding_box()["y"] + note.bounding_box()["height"]
    assert 0 <= crop.bounding_box()["y"] - below < 60, (note.bounding_box(), crop.bounding_box())
    check_axe(page, "panorama-offered")

    crop.click()
    expect(note).to_contain_text("cropped to 2.5:1")
    expect(note).to_contain_text("1250×500")
    page.wait_for_function(
        "() => { const i = document.querySelector('#image img'); return i && i.complete && "
        "Math.abs(i.naturalWidth / i.naturalHeight - 2.5) < 0.01; }"
    )
    assert shown_size(page) == (1250, 500)
    screenshot(page, "panorama-cropped.png")

    # The choice in More settings follows, and changing it there re-applies at once.
    page.get_by_role("button", name=re.compile(r"^More settings")).click()
    expect(page.locator("#fit input[value=crop]")).to_be_checked()
    page.locator("#fit").get_by_text("Pad to fit").click()
    expect(note).to_contain_text("padded to 2.5:1")
    page.wait_for_function(
        "() => { const i = document.querySelector('#image img'); return i && i.complete && "
        "i.naturalWidth === 1500 && i.naturalHeight === 600; }"
    )
    page.locator("#fit").get_by_text("Crop to fit").click()
    expect(note).to_contain_text("cropped to 2.5:1")

    page.locator("#prompt textarea").fill("The sea stretches out.")
    page.locator("#generate").click()
    lines = status_lines(page, is_final, timeout=60)
    assert lines[-1] == "Status: completed", lines
    assert len(bodies) == 1, len(bodies)
    assert sent_size(bodies[0]) == (1250, 500)


def test_pad_under_a_panoramas_note_sends_the_padded_picture(
    live, sim, laptop, tmp_path, monkeypatch
):
    bodies = spy_on_creates(monkeypatch)
    page = laptop
    tall = tmp_path / "tall.png"
    Image.new("RGB", (400, 1200), (170, 60, 30)).save(tall)
    open_page(page, live.url)
    page.locator("#image input[type=file]").set_input_files(tall)
    note = page.locator("#image-note")
    expect(note).to_contain_text("1:3.00")
    page.locator("#fit-pad").click()
    expect(note).to_contain_text("padded to 1:2.5")
    page.wait_for_function(
        "() => { const i = document.querySelector('#image img'); return i && i.complete && "
        "i.naturalWidth === 480 && i.naturalHeight === 1200; }"
    )
    page.locator("#prompt textarea").fill("The tower sways.")
    page.locator("#generate").click()
    status_lines(page, is_final, timeout=60)
    assert [sent_size(b) for b in bodies] == [(480, 1200)]


def test_an_image_too_small_to_fit_any_way_is_still_taken_off(live, sim, laptop, tmp_path):
    """A shape no crop or pad can save (and any other refusal) still leaves the page."""
    page = laptop
    thin = tmp_path / "thin.png"
    Image.new("RGB", (900, 100), (10, 10, 10)).save(thin)  # crop: 100 px high; pad: 900x360
    open_page(page, live.url)
    page.locator("#image input[type=file]").set_input_files(thin)
    expect(page.locator("#image-note")).to_contain_text("9.00:1")
    expect(page.locator("#fit-pad")).to_be_visible()  # padding saves it; cropping can't
    expect(page.locator("#fit-crop")).to_be_hidden()
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (200, 200), (200, 40, 40)).save(tiny)
    page.locator("#image input[type=file]").set_input_files(tiny)
    expect(page.locator("#image-note")).to_contain_text(
        "The image is 200×200 pixels; each side must be at least 300 pixels."
    )
    expect(page.locator("#image img")).to_have_count(0)
    expect(page.locator("#fit-pad")).to_be_hidden()
