"""The page's handlers called directly, as Gradio calls them, with the simulator behind."""

from __future__ import annotations

import pytest
from PIL import Image

from kling_ui.config import Settings
from kling_ui.jobs import Progress
from kling_ui.service import GenerationService
from kling_ui.simulator import Fault
from kling_ui.ui import browser_secret, build_ui, render_status

KEY = "sk-ui-handler-key-77"


@pytest.fixture
def page(simulator, tmp_path):
    settings = Settings(
        base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data", poll_interval=0.05
    )
    return build_ui(GenerationService(settings), browser_secret="s")


def handler(page, name: str):
    for block_fn in page.fns.values():
        if block_fn.api_name == name or getattr(block_fn.fn, "__name__", "") == name:
            return block_fn.fn
    raise LookupError(name)


@pytest.fixture
def photo(tmp_path) -> str:
    path = tmp_path / "p.jpg"
    Image.new("RGB", (640, 480), (10, 90, 200)).save(path)
    return str(path)


def test_generate_handler_streams_id_status_and_video(page, photo, simulator):
    updates = list(handler(page, "generate")(photo, "Clouds drift.", "", 5, True, ""))
    gid, status, video = updates[-1]
    assert gid and status.startswith("Status: completed") and video.endswith(".mp4")
    assert updates[0][0] == gid  # the id comes with the very first update
    assert simulator.creates == 1


def test_generate_handler_turns_errors_into_words(page, photo, simulator):
    simulator.script_create(Fault.status(401, "<script>alert(1)</script>"))
    ((gid, status, video),) = list(handler(page, "generate")(photo, "x", "", 5, True, ""))
    assert status.startswith("Status: refused") and "valid AIML API key" in status
    assert "<script>alert(1)</script>" in status  # shown as text by a plain Textbox
    assert (gid, video) == ("", None)


def test_resume_handler_refuses_a_blank_id(page, simulator):
    ((_, status, _),) = list(handler(page, "resume")("  ", ""))
    assert status.startswith("Status: not resumed") and "Paste" in status
    assert simulator.polls == 0


def test_remember_and_restore_keep_every_id(page, photo):
    gid = list(handler(page, "generate")(photo, "Rain.", "", 5, True, ""))[-1][0]
    history, table, _ = handler(page, "remember")(gid, "Rain.", [])
    assert [h["id"] for h in history] == [gid]
    assert table["value"][0][3] == gid
    again, _, _ = handler(page, "remember")(gid, "Rain.", history)
    assert len(again) == 1
    restored, _, _ = handler(page, "restore")(f'["{gid}", 7, "x"]', [{"bogus": 1}])
    assert sorted(h["id"] for h in restored) == sorted([gid, "x"])
    assert handler(page, "restore")("not json", None)[0] == []


def test_stop_handler_says_the_job_goes_on(page):
    assert "may be billed" in handler(page, "stop")("")


def test_prompt_counter(page):
    assert handler(page, "count")("x" * 2501) == "2501 / 2500 characters (over the limit)"


def test_image_check_explains_a_small_image(page, tmp_path):
    small = tmp_path / "s.png"
    Image.new("RGB", (200, 400)).save(small)
    assert "300" in handler(page, "check_image")(str(small), "reject")
    assert handler(page, "check_image")(None, "reject") == ""


def test_status_text_shows_times_and_credits():
    text = render_status(
        Progress("id", "generating", "Generating.", "generating", 75, 5, 70, 210.0)
    )
    assert text.splitlines()[:2] == [
        "Status: generating",
        "Elapsed 1:15 · queued 0:05 · generating 1:10 · credits used 210",
    ]


def test_browser_secret_is_made_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("KLING_UI_BROWSER_SECRET", raising=False)
    first = browser_secret(tmp_path)
    assert first == browser_secret(tmp_path) and len(first) >= 32
    assert (tmp_path / "browser-secret").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("KLING_UI_BROWSER_SECRET", "from-env")
    assert browser_secret(tmp_path) == "from-env"
