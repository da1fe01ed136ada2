"""Driving the page in a real browser: Chromium through Playwright, shared by the suites
(and, for ``chromium_path`` and ``CHROMIUM_ARGS``, by ``bench/bench_playback.py``).

Needs Debian's Chromium (``apt-get install chromium``): without it the browser tests skip,
except on CI (``CI=true``), where they fail. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apprunner import AppProcess

from kling_ui.simulator import Schedule, Simulator

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright

    # What a page is expected to show may wait on a job's next step, and the suite runs in
    # parallel on a busy machine: an assertion waits as long as an action does (15 s), not
    # Playwright's 5 s. A wait, not a speed claim: speed is measured in bench/.
    expect.set_options(timeout=15_000)
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
# The tests' browser also shares its processes: one origin under test, so no process per
# site, and the GPU process's work (software compositing) done in the browser's own. The
# same tests then took ~20% less CPU (test_browser_page: 90 -> 72 CPU-s), on a suite that is
# CPU-bound on 2 cores. The playback benchmark keeps Chromium's defaults (CHROMIUM_ARGS).
TEST_ARGS = [
    *CHROMIUM_ARGS,
    "--disable-site-isolation-trials",
    "--disable-features=site-per-process,IsolateOrigins",
    "--in-process-gpu",
]
STATUS = "#status textarea"  # the status text, there for programs (hidden from view)
GEN_ID = "#generation-id textarea"  # likewise the id; the card shows both to people
CARD = "#progress-card .kui-card"
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


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium_path() -> str | None:
    """Debian's Chromium, else one on ``PATH``, else None."""
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's path; skips the browser tests (fails them on CI) when it is missing."""
    if sync_playwright is None:
        _unavailable("Playwright not installed: pip install -r requirements-dev.txt")
    path = chromium_path()
    if not path:
        _unavailable("Chromium not found: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=TEST_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
        tab.unroute_all(behavior="ignoreErrors")  # a route's fetch in flight raises no more
        context.close()


# The app the browser suites drive (imported by them, not by every suite): one simulator and
# one app process per module, the simulator's script and records reset for each test.


# The browser suites' jobs: 1.5 s from create to done, polled every 0.5 s (each phase is
# seen at least once). A test that needs a phase to last asks for ``PHASES`` (``live``
# brings the short one back for the next test).
JOBS = Schedule(queued_s=0.5, generating_s=1.0)
PHASES = Schedule(queued_s=1.5, generating_s=3.0)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(schedule=JOBS).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="module")
def app(chromium: str, sim: Simulator, tmp_path_factory) -> Iterator[AppProcess]:
    """The live app, its API the simulator. (Asks for ``chromium`` first: no browser, no app.)"""
    data_dir = tmp_path_factory.mktemp("browser-app") / "data"
    live = AppProcess(
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
def live(app: AppProcess, sim: Simulator) -> AppProcess:
    sim.reset()
    sim.set_schedule(JOBS)
    return app


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#generate")).to_be_visible()


def fill_job(page: Page, image: Path, prompt: str) -> None:
    """Upload the image and type the prompt, as a person would; wait for the image check."""
    page.locator("#image input[type=file]").set_input_files(image)
    expect(page.locator("#image-note")).not_to_be_empty()
    page.locator("#prompt textarea").fill(prompt)


def status_lines(page: Page, until: Callable[[str], bool], timeout: float = 30) -> list[str]:
    """The distinct phases the progress card shows, in order, polled every 100 ms, each as
    "Status: <phase>" (the first line of the status text programs get)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    card = page.locator(CARD)
    while time.monotonic() < deadline:
        shown = card.get_attribute("data-phase") if card.count() else ""
        first = f"Status: {shown}" if shown else ""
        if first and (not seen or seen[-1] != first):
            seen.append(first)
        if first and until(first):
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"status never got there; saw {seen}")


def phase(line: str) -> str:
    """'Status: downloading (API says completed)' -> 'downloading'."""
    return line.removeprefix("Status: ").split(" ")[0]


IN_PROGRESS = {
    "waiting", "submitting", "checking", "submitted", "queued", "generating", "downloading",
    "retrying", "unknown",
}  # fmt: skip


def is_final(line: str) -> bool:
    """Any status but an in-progress one: completed, failed, refused, not sent, ..."""
    return phase(line) not in IN_PROGRESS


def tile(page: Page, text: str):
    """The gallery's tile whose caption has ``text``."""
    return page.locator("#gallery .thumbnail-item").filter(has_text=text)


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
