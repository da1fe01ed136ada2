"""Issue 27 in a real browser: two takes put on the compare board from the gallery, played,
paused and sought together, one marked kept, the board exported as one side-by-side MP4,
and the board still there after a reload; a video exported as a GIF."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import av
import pytest
from a11y import describe, serious_violations
from browsing import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    app,
    expect,
    fill_job,
    is_final,
    live,
    open_page,
    phase,
    sim,
    status_lines,
    tile,
)
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

BOARD = "#compare-board video"
# The shared page's video playing: a frame, time moving, no error.
WAIT_PLAYING_SHARED = """(v, ms) => new Promise((ok, bad) => {
  const done = () => v.readyState >= 2 && !v.error && v.currentTime > 0;
  const timer = setTimeout(() => bad(new Error("not playing")), ms);
  v.muted = true;
  v.play().catch(() => {});
  const check = () => done() ? (clearTimeout(timer), ok(true)) : setTimeout(check, 50);
  check();
})"""
STATE = """() => [...document.querySelectorAll("#compare-board video")].map(
  (v) => ({paused: v.paused, t: v.currentTime, ready: v.readyState}))"""


def make_video(page, photo, prompt: str) -> None:
    fill_job(page, photo, prompt)
    expect(page.locator("#generate")).to_be_enabled()  # on once the page load is in
    page.locator("#generate").click()
    lines = status_lines(page, is_final)
    assert phase(lines[-1]) == "completed", lines
    # The tab watches until the job's stream ends; a tile clicked before is refused.
    expect(page.locator("#stop")).to_be_disabled()


def put_on_board(page, prompt: str) -> None:
    tile(page, prompt).click()
    status_lines(page, is_final)
    page.locator("#compare-add").click()


def videos(page) -> list[dict]:
    return page.evaluate(STATE)


def wait_for(page, test, what: str, timeout: float = 10_000) -> list[dict]:
    """Poll the board's videos until ``test`` holds."""
    deadline = 0.0
    while deadline < timeout:
        state = videos(page)
        if state and test(state):
            return state
        page.wait_for_timeout(100)
        deadline += 100
    raise AssertionError(f"{what}: {videos(page)}")


def test_two_takes_compared_in_sync_kept_exported_and_still_there_after_a_reload(
    live, page, photo, tmp_path
):
    other = tmp_path / "other.png"
    Image.new("RGB", (900, 600), (30, 60, 200)).save(other)
    open_page(page, live.url)
    expect(page.locator("#compare")).to_be_hidden()  # nothing to compare yet
    make_video(page, photo, "Take one: the leaves fall.")
    make_video(page, other, "Take two: the sea rolls in.")

    # Play large: the picked one over the page; → and ← move through the others; Escape.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    tile(page, "Take one").click()
    status_lines(page, is_final)
    page.locator("#play-large").click()
    viewer = page.locator("#viewer .viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator("figcaption")).to_contain_text("Take one: the leaves fall.")
    expect(viewer.locator(".viewer-count")).to_have_text("2 of 2")  # newest first
    expect(viewer).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(viewer.locator("figcaption")).to_contain_text("Take two: the sea rolls in.")
    expect(viewer.locator(".viewer-count")).to_have_text("1 of 2")
    page.screenshot(path=ARTIFACTS / "viewer.png")
    found = serious_violations(page)  # the viewer open over the page
    assert not found, describe(found)
    viewer.locator("video").evaluate(
        "(v, ms) => new Promise((ok, bad) => { const t = setTimeout(() => bad(new Error("
        "'not playing')), ms); const c = () => v.currentTime > 0 ? (clearTimeout(t), ok()) "
        ": setTimeout(c, 50); c(); })", 10_000,
    )  # fmt: skip
    href = viewer.locator("a[data-act=download]").get_attribute("href")
    assert href and href.endswith(".mp4") and viewer.locator("a[download]").count() == 1
    viewer.locator("button[data-act=copy]").click()
    expect(viewer.locator(".viewer-count")).to_have_text("Link copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == urljoin(live.url, href) and copied.startswith("http")
    page.keyboard.press("ArrowLeft")
    expect(viewer.locator("figcaption")).to_contain_text("Take one")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(page.locator("#play-large")).to_be_focused()

    put_on_board(page, "Take one")
    expect(page.locator("#compare")).to_be_visible()
    expect(page.locator("#compare-note")).to_contain_text("Pick another video")
    put_on_board(page, "Take two")
    expect(page.locator(BOARD)).to_have_count(2)
    board = page.locator("#compare-board")
    expect(board).to_contain_text("1. Kling v2.6 Pro")
    expect(board).to_contain_text("Take two: the sea rolls in.")
    expect(board).to_contain_text("5 s")
    expect(board).to_contain_text("Total: $")
    put_on_board(page, "Take two")  # once only
    expect(page.locator("#compare-note")).to_contain_text("on the board already")
    wait_for(page, lambda s: all(v["ready"] >= 2 for v in s), "the videos load")

    # Play all: both play. Pausing one pauses the other; seeking one moves the other.
    page.locator("#compare-board button[data-act=play]").click()
    wait_for(page, lambda s: all(not v["paused"] and v["t"] > 0.2 for v in s), "both play")
    page.evaluate("document.querySelectorAll('#compare-board video')[0].pause()")
    wait_for(page, lambda s: all(v["paused"] for v in s), "both pause")
    page.evaluate("document.querySelectorAll('#compare-board video')[1].currentTime = 3")
    state = wait_for(page, lambda s: abs(s[0]["t"] - 3) < 0.3, "the first follows the seek")
    assert all(v["paused"] for v in state)
    page.evaluate("document.querySelectorAll('#compare-board video')[1].play()")
    state = wait_for(page, lambda s: all(not v["paused"] for v in s), "both play again")
    assert abs(state[0]["t"] - state[1]["t"]) < 0.5, state  # together

    # Keep the second.
    page.locator("#compare-keep label").filter(has_text="2. Kling v2.6 Pro").click()
    expect(page.locator("#compare-board figure.kept")).to_have_count(1)
    expect(page.locator("#compare-board figure.kept")).to_contain_text("★ kept")
    expect(page.locator("#compare-board figure.kept")).to_contain_text("Take two")
    page.locator("#compare").screenshot(path=ARTIFACTS / "compare-board.png")
    found = serious_violations(page)  # the board shown, one kept
    assert not found, describe(found)
    page.locator("#your-videos").screenshot(path=ARTIFACTS / "gallery-actions.png")

    # Export: one MP4, the two side by side under labels, 5 s long.
    page.locator("#compare-export").click()
    link = page.locator("#compare-file a").first
    expect(link).to_be_visible(timeout=60_000)
    exported = tmp_path / "board.mp4"
    exported.write_bytes(page.request.get(urljoin(live.url, link.get_attribute("href"))).body())
    with av.open(str(exported)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.width > 2 * stream.codec_context.height - 200  # side by side
        assert float(stream.duration * stream.time_base) == pytest.approx(5.0, abs=0.2)
    expect(page.locator("#compare-note")).to_contain_text("Exported")

    # A reload keeps the board and the one kept.
    page.reload()
    expect(page.locator(BOARD)).to_have_count(2)
    expect(page.locator("#compare-board figure.kept")).to_contain_text("Take two")

    # Any video as a GIF, from the gallery.
    tile(page, "Take one").click()
    status_lines(page, is_final)
    page.locator("#export-gif").click()
    gif = page.locator("#gallery-file a").first
    expect(gif).to_be_visible(timeout=60_000)
    saved = tmp_path / "a.gif"
    saved.write_bytes(page.request.get(urljoin(live.url, gif.get_attribute("href"))).body())
    with Image.open(saved) as image:
        assert image.format == "GIF" and image.n_frames > 10

    # Clear: the board goes.
    page.locator("#compare-clear").click()
    expect(page.locator("#compare")).to_be_hidden()


def test_a_share_link_plays_for_anyone_until_revoked_and_download_all_saves_a_zip(
    live, browser, page, photo, tmp_path
):
    import zipfile

    open_page(page, live.url)
    make_video(page, photo, "Shared: a lantern drifts up.")
    tile(page, "Shared: a lantern").click()
    status_lines(page, is_final)
    page.locator("#sharing").get_by_text("Share links").click()  # open the group
    page.locator("#share-shows label").filter(has_text="The prompt").click()
    page.locator("#share-video").click()
    link = page.locator("#share-link textarea, #share-link input").first
    expect(link).to_have_value(re.compile(r"^http://.+/share/[\w-]+\.\d+\.[\w-]+$"))
    url = link.input_value()
    expect(page.locator("#share-note")).to_contain_text("Share link made for the video")

    # Someone else, in a browser of their own: the video and the prompt, nothing else.
    other = browser.new_context()
    try:
        viewer = other.new_page()
        answer = viewer.goto(url)
        assert answer is not None and answer.status == 200
        expect(viewer.locator("video")).to_have_count(1)
        viewer.locator("video").evaluate(WAIT_PLAYING_SHARED, 10_000)
        expect(viewer.locator("body")).to_contain_text("Shared: a lantern drifts up.")
        assert "sk-browser-test-key" not in viewer.content()

        # Revoked by its owner: it stops for the other person at once.
        expect(page.locator("#share-mine input")).not_to_have_value("")
        page.locator("#share-revoke").click()
        expect(page.locator("#share-note")).to_contain_text("Revoked")
        again = viewer.goto(url)
        assert again is not None and again.status == 404
        expect(viewer.locator("body")).to_contain_text("does not work")
    finally:
        other.close()

    # Download all: the finished videos shown, as one ZIP.
    with page.expect_download() as waiting:
        page.locator("#download-all").click()
    saved = tmp_path / "all.zip"
    waiting.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert len(archive.namelist()) == 1 and archive.namelist()[0].endswith(".mp4")
    expect(page.locator("#gallery-note")).to_contain_text("1 video as one ZIP")
