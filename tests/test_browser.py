"""The page in a real browser: Chromium driven by Playwright against ``python app.py``.

The app runs as a user runs it, in a subprocess on a free port, with the simulator (in
this process) as its API, so a test can script faults and count creates. Screenshots go
to ``test-artifacts/`` (``finished.png`` is the one the README shows).

Needs Debian's Chromium (``apt-get install chromium``): without it these tests skip,
except on CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apprunner import AppProcess as App
from PIL import Image

from kling_ui.simulator import Fault, Schedule, Simulator

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # reported by the `chromium` fixture, like a missing browser
    sync_playwright = None

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATUS = "#status textarea"
GEN_ID = "#generation-id textarea"
# Resolves once the <video> has a frame, its 5 s duration, no error, and time moving.
WAIT_PLAYING = """(v, ms) => new Promise((ok, bad) => {
    const playing = () =>
        v.readyState >= 2 && v.duration > 4 && !v.error && !v.paused && v.currentTime > 0;
    const timer = setTimeout(() => bad(new Error(
        `video not playing: readyState=${v.readyState} duration=${v.duration} ` +
        `error=${v.error && v.error.code} paused=${v.paused} t=${v.currentTime}`)), ms);
    const check = () => playing() ? (clearTimeout(timer), ok()) : setTimeout(check, 100);
    check();
})"""

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's path; skips the browser tests (fails them on CI) when it is missing."""
    if sync_playwright is None:
        _unavailable("Playwright not installed: pip install -r requirements-dev.txt")
    path = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    path = path or shutil.which("chromium")
    if not path:
        _unavailable("Chromium not found: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(schedule=Schedule(queued_s=1.5, generating_s=3)).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="module")
def app(chromium: str, sim: Simulator, tmp_path_factory) -> Iterator[App]:
    """The live app, its API the simulator. (Asks for ``chromium`` first: no browser, no app.)"""
    data_dir = tmp_path_factory.mktemp("browser-app") / "data"
    live = App(
        data_dir,
        env={
            "AIMLAPI_BASE_URL": sim.url,
            "AIMLAPI_KEY": "sk-browser-test-key",
            "KLING_UI_POLL_INTERVAL": "0.5",
        },
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def page(browser: Browser, request) -> Iterator[Page]:
    """A fresh context per test (so an empty browser history); a screenshot if it fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    failed_before = request.session.testsfailed
    try:
        yield tab
    finally:
        # The call's report is logged before teardown, so a failure has been counted by now.
        if request.session.testsfailed > failed_before:
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=ARTIFACTS / f"failed-{request.node.name}.png", full_page=True)
        context.close()


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (800, 600), (40, 160, 90)).save(path, quality=90)
    return path


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#generate")).to_be_visible()


def fill_job(page: Page, image: Path, prompt: str) -> None:
    """Upload the image and type the prompt, as a person would; wait for the image check."""
    page.locator("#image input[type=file]").set_input_files(image)
    expect(page.locator("#image-note")).not_to_be_empty()
    page.locator("#prompt textarea").fill(prompt)


def status_lines(page: Page, until: Callable[[str], bool], timeout: float = 30) -> list[str]:
    """The distinct first lines the status box shows, in order, polled every 100 ms."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first = (page.locator(STATUS).input_value().splitlines() or [""])[0]
        if first and (not seen or seen[-1] != first):
            seen.append(first)
        if first and until(first):
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"status never got there; saw {seen}")


def phase(line: str) -> str:
    """'Status: downloading (API says completed)' -> 'downloading'."""
    return line.removeprefix("Status: ").split(" ")[0]


IN_PROGRESS = {"submitted", "queued", "generating", "downloading", "retrying", "unknown"}


def is_final(line: str) -> bool:
    """Any status but an in-progress one: completed, failed, refused, not sent, ..."""
    return phase(line) not in IN_PROGRESS


def expect_video_playing(page: Page) -> None:
    video = page.locator("#video video")
    expect(video).to_have_count(1)
    video.evaluate(WAIT_PLAYING, 10_000)
    state = video.evaluate(
        "v => ({ready: v.readyState, duration: v.duration, error: v.error && v.error.code})"
    )
    assert state["ready"] >= 2 and state["duration"] > 4 and state["error"] is None, state


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / name, full_page=True)


@pytest.fixture
def live(app: App, sim: Simulator) -> App:
    sim.reset()
    return app


# --- the tests ----------------------------------------------------------------------------


def test_generate_shows_queued_generating_completed_then_plays_the_video(live, sim, page, photo):
    open_page(page, live.url)
    fill_job(page, photo, "The meadow sways in the wind.")
    expect(page.locator("#image-note")).to_contain_text("Image OK")

    page.locator("#generate").click()
    lines = status_lines(page, is_final)

    phases = [phase(line) for line in lines]
    assert [p for p in phases if p in ("queued", "generating", "completed")] == [
        "queued",
        "generating",
        "completed",
    ], lines
    assert set(phases) <= {"submitted", "queued", "generating", "downloading", "completed"}, lines
    gid = page.locator(GEN_ID).input_value()
    assert gid.endswith(":klingai/video-v2-6-pro-image-to-video"), gid
    expect_video_playing(page)
    page.wait_for_timeout(500)  # a frame or two further into the clip, for the picture
    screenshot(page, "finished.png")
    assert sim.creates == 1


def test_prompt_counter_counts_typed_characters(live, page):
    open_page(page, live.url)
    expect(page.locator("#prompt-count")).to_have_text("0 / 2500 characters")
    page.locator("#prompt textarea").press_sequentially("Cat blinks.", delay=20)
    expect(page.locator("#prompt-count")).to_have_text("11 / 2500 characters")


def test_vendor_error_message_is_shown_as_plain_text(live, sim, page, photo):
    sim.script_create(Fault.status(403, "<b>Insufficient</b> balance"))
    open_page(page, live.url)
    fill_job(page, photo, "The meadow sways in the wind.")

    page.locator("#generate").click()
    status = page.locator(STATUS)
    lines = status_lines(page, is_final, timeout=15)
    assert lines[-1] == "Status: refused", lines
    text = status.input_value()
    assert "Top up" in text, text
    assert "<b>Insufficient</b> balance" in text, text
    assert page.locator("#status b").count() == 0
    screenshot(page, "vendor-error.png")
    assert "Traceback" not in page.content()
    assert "Traceback" not in page.locator("body").inner_text()
    assert page.locator(GEN_ID).input_value() == ""
    assert sim.creates == 1


def test_too_small_image_is_explained_and_nothing_is_sent(live, sim, page, tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (200, 200), (200, 40, 40)).save(tiny)
    open_page(page, live.url)
    fill_job(page, tiny, "The square spins.")
    note = page.locator("#image-note")
    expect(note).to_contain_text("300")
    expect(note).to_contain_text("200")
    # The refused image is taken off the page; its reason stays in its place.
    expect(page.locator("#image img")).to_have_count(0)

    page.locator("#generate").click()
    status_lines(page, lambda line: line.startswith("Status: not sent"), timeout=15)
    expect(note).to_contain_text("300")
    screenshot(page, "bad-image.png")
    assert sim.creates == 0


def test_a_text_file_named_jpg_leaves_no_broken_preview(live, sim, page, tmp_path):
    """Issue 8 item 12: the input is cleared and the message shown in its place."""
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"Shopping list: eggs, milk, bread.\n" * 20)
    open_page(page, live.url)
    page.locator("#image input[type=file]").set_input_files(fake)
    note = page.locator("#image-note")
    expect(note).to_contain_text("holiday.jpg is not an image we can read")
    expect(page.locator("#image img")).to_have_count(0)
    expect(note).to_contain_text("Choose another image")  # the clearing kept the message
    assert sim.creates == 0


def test_a_heic_photo_is_named_with_the_way_out(live, sim, page, tmp_path):
    """Issue 8 item 11: an iPhone photo gets "export as JPEG", whichever part refuses it."""
    heic = tmp_path / "IMG_0042.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(600))
    open_page(page, live.url)
    page.locator("#image input[type=file]").set_input_files(heic)
    said = page.locator("#heic-note, #image-note").filter(has_text="export it as JPEG")
    expect(said.first).to_be_visible()
    expect(said.first).to_contain_text("IMG_0042.HEIC")
    expect(page.locator("#image img")).to_have_count(0)
    assert sim.creates == 0


def test_reload_mid_job_then_play_or_resume_from_history_finishes_it(live, sim, page, photo):
    open_page(page, live.url)
    # An older, finished job first, so the history has two entries to choose from.
    fill_job(page, photo, "An older job.")
    page.locator("#generate").click()
    expect(page.locator(GEN_ID)).not_to_have_value("")
    sim.complete_now(page.locator(GEN_ID).input_value())
    status_lines(page, is_final)
    creates_before = sim.creates

    older = page.locator(GEN_ID).input_value()
    page.locator("#prompt textarea").fill("The newest job, reloaded mid-way.")
    page.locator("#generate").click()
    page.wait_for_function(
        """older => {
            const id = document.querySelector('#generation-id textarea').value;
            const s = document.querySelector('#status textarea').value;
            return id && id !== older && /^Status: (queued|generating)/.test(s);
        }""",
        arg=older,
    )
    gid = page.locator(GEN_ID).input_value()
    table = page.locator("#history-table")
    assert sim.job(gid)["status"] in ("queued", "generating")

    page.reload()  # at once: the id must be kept from the instant it is shown
    expect(page.locator("#generate")).to_be_visible()
    expect(table).to_contain_text(gid)
    expect(table).to_contain_text("An older job.")
    # The picker defaults to the newest entry: its label is "when · status · prompt".
    pick = page.locator("#history-pick input")
    expect(pick).to_have_value(re.compile(r"The newest job, reloaded"))
    screenshot(page, "reloaded-history.png")

    page.locator("#open").click()
    lines = status_lines(page, is_final)
    assert phase(lines[-1]) == "completed", lines
    expect(page.locator(GEN_ID)).to_have_value(gid)
    expect_video_playing(page)
    screenshot(page, "resumed.png")
    assert sim.creates == creates_before + 1 == 2


def test_stop_watching_keeps_the_job_and_resume_finishes_it(live, sim, page):
    lighthouse = Path(__file__).resolve().parent.parent / "assets" / "example-lighthouse.jpg"
    open_page(page, live.url)
    sim.script_outcome("never")  # the job waits at the vendor until we say so
    fill_job(page, lighthouse, "Waves crash against the lighthouse.")
    page.locator("#generate").click()
    status_lines(page, lambda line: phase(line) in ("queued", "generating"))
    gid = page.locator(GEN_ID).input_value()

    page.locator("#stop").click()
    lines = status_lines(page, lambda line: line.startswith("Status: stopped watching"))
    text = page.locator(STATUS).input_value()
    assert "goes on at the vendor and may be billed" in text, text
    expect(page.locator("#history-table")).to_contain_text("stopped")
    # The poll already under way when Stop was pressed may finish; then nothing more.
    page.wait_for_timeout(1500)
    polls = sim.polls
    page.wait_for_timeout(2000)
    assert sim.polls == polls, "polling went on after Stop watching"

    sim.complete_now(gid)
    page.locator("#open").click()
    status_lines(page, lambda line: not line.startswith("Status: stopped"))
    lines = status_lines(page, is_final)
    assert phase(lines[-1]) == "completed", lines
    expect_video_playing(page)
    page.wait_for_timeout(1200)  # a frame or so further into the clip, for the picture
    screenshot(page, "stopped-then-resumed.png")
    assert sim.creates == 1


def test_demo_mode_shows_its_banner_and_completes_a_video(page, photo, tmp_path):
    demo = App(tmp_path / "demo-data", "--demo", env={"KLING_UI_DEMO_SCHEDULE": "1,2"})
    try:
        open_page(page, demo.url)
        expect(page.locator("#demo-banner")).to_be_visible()
        expect(page.locator("#demo-banner")).to_contain_text("Demo mode")
        fill_job(page, photo, "The meadow sways in the wind.")
        page.locator("#generate").click()
        lines = status_lines(page, is_final)
        assert phase(lines[-1]) == "completed", lines
        expect(page.locator(GEN_ID)).not_to_have_value("")
        expect_video_playing(page)
        screenshot(page, "demo-finished.png")
    finally:
        demo.stop()
