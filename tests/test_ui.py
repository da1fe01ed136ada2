"""The page's handlers called directly, as Gradio calls them, with the simulator behind."""

from __future__ import annotations

import inspect
import os
import re
import secrets
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from kling_ui.config import Settings, settings_from_env
from kling_ui.jobs import Progress
from kling_ui.request import KLING
from kling_ui.service import GenerationService
from kling_ui.simulator import Fault
from kling_ui.ui import Handlers, browser_secret, build_ui, render_status
from kling_ui.ui.batch import COLUMNS
from kling_ui.ui.form import form_request

KEY = "sk-ui-handler-key-77"


def captions(tiles) -> list[str]:
    """The captions of a gallery update, in order."""
    return [caption for _, caption in tiles["value"]]


class Tab:
    """One browser tab: the handlers as its page calls them, with the browser's owner token
    (which the page hands every event from the session)."""

    def __init__(self, handlers: Handlers, token: str | None = None) -> None:
        self.handlers, self.token = handlers, token or secrets.token_urlsafe(24)

    def __getattr__(self, name: str):
        return getattr(self.handlers, name)

    def generate(self, *args):
        return self.handlers.generate(*args, "reject", self.token)

    def resume(self, gid, key=""):
        return self.handlers.resume(gid, key, self.token)

    def sync(self, gid, history, tz, picked=None, needle=""):
        """(history, the gallery's captions, its ids, the picked id)."""
        history, tiles, ids, pick = self.handlers.sync(gid, history, tz, picked, needle, self.token)
        return history, captions(tiles), ids, pick

    def restore(self, pending, tz, history):
        history, tiles, ids, pick, tz, token, session = self.handlers.restore(
            pending, tz, history, self.token
        )
        assert token == session == self.token  # a valid token is kept as it is
        return history, captions(tiles), ids, pick, tz

    def forget(self, gid, tz, history):
        history, tiles, ids, pick, gone, note = self.handlers.forget(
            gid, tz, history, "", self.token
        )
        assert note.startswith("Removed" if gid else "Pick")
        return history, captions(tiles), ids, pick, gone

    def stop(self, gid):
        return self.handlers.stop(gid, self.token)

    def batch(self, *args):
        return self.handlers.batch(*args, self.token)

    def batch_view(self, result):
        return self.handlers.batch_view(result, self.token)

    def cancel_waiting(self, result):
        return self.handlers.cancel_waiting(result, self.token)


@pytest.fixture
def page(simulator, tmp_path) -> Tab:
    settings = Settings(
        base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data", poll_interval=0.05
    )
    return Tab(Handlers(GenerationService(settings)))


def handler(page: Handlers, name: str):
    return getattr(page, name)


def test_the_page_builds_with_both_api_events(simulator, tmp_path):
    settings = Settings(base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data")
    blocks = build_ui(GenerationService(settings), browser_secret="s")
    names = {fn.api_name for fn in blocks.fns.values() if fn.api_visibility != "private"}
    assert {"generate", "resume"} <= names


def test_generate_publishes_the_models_fields_in_the_specs_order_with_its_defaults(
    simulator, tmp_path
):
    """``/generate``'s parameters are the model's spec's fields (``ui.fields``), between the
    prompt and the key: a field the decorator dropped, or put out of order, fails here."""
    settings = Settings(base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data")
    blocks = build_ui(GenerationService(settings), browser_secret="s")
    params = blocks.get_api_info()["named_endpoints"]["/generate"]["parameters"]
    names = [p["parameter_name"] for p in params]
    fields = [f.name for f in KLING.fields]
    assert names == ["image", "prompt", *fields, "api_key", "model", "end_image", "options"]
    published = {p["parameter_name"]: p for p in params}
    assert [(n, published[n]["parameter_default"]) for n in fields] == [
        (f.name, f.default) for f in KLING.fields
    ]
    python = inspect.signature(Handlers.generate).parameters
    assert [(n, python[n].annotation) for n in fields] == [
        (f.name, f.annotation) for f in KLING.fields
    ]


def test_generate_handler_streams_id_status_and_video(page, photo, simulator):
    updates = list(handler(page, "generate")(photo, "Clouds drift.", "", 5, True, ""))
    gid, status, video = updates[-1]
    assert gid and status.startswith("Status: completed") and video.name.endswith(".mp4")
    assert re.fullmatch(r"/media/[0-9a-f]{32}\.mp4", video.url)  # 128 random bits, no path
    # The vendor's id shows from the create's answer on (usually with "submitted"; a fast
    # job may be further along at the first look); before, our own id, which resumes it too.
    first_with_id = next(u for u in updates if u[0] == gid)
    assert not first_with_id[1].startswith(("Status: waiting", "Status: submitting"))
    ours = page.service.entry(gid).job_id
    assert {u[0] for u in updates} <= {ours, gid}
    if updates[0][0] == ours:  # unless the create had already answered at the first look
        assert updates[0][1].startswith(("Status: waiting", "Status: submitting"))
    assert simulator.creates == 1


def test_generate_handler_turns_errors_into_words(page, photo, simulator):
    simulator.script_create(Fault.status(401, "<script>alert(1)</script>"))
    *_, (gid, status, video) = list(handler(page, "generate")(photo, "x", "", 5, True, ""))
    assert status.startswith("Status: refused") and "valid AIML API key" in status
    assert "<script>alert(1)</script>" in status  # shown as text by a plain Textbox
    assert video is None and page.service.entry(gid).state == "not_created"
    assert simulator.creates == 1


def test_resume_handler_refuses_a_blank_id(page, simulator):
    ((_, status, _),) = list(handler(page, "resume")("  ", ""))
    assert status.startswith("Status: not resumed") and "Paste" in status
    assert simulator.polls == 0


def test_sync_and_restore_keep_every_id(page, photo):
    gid = list(page.generate(photo, "Rain.", "", 5, True, ""))[-1][0]
    history, _, ids, _ = page.sync(gid, [], "UTC|0")
    assert [h["id"] for h in history] == [gid]
    assert ids == [gid]
    again, *_ = page.sync(gid, history, "UTC|0")
    assert len(again) == 1
    restored, _, _, _, tz = page.restore(f'["{gid}", 7, "x"]', "Asia/Tokyo|-540", [{"bogus": 1}])
    assert sorted(h["id"] for h in restored) == sorted([gid, "x"])
    assert tz == "Asia/Tokyo|-540"
    assert page.restore("not json", "", None)[0] == []


def test_resume_of_a_finished_job_is_in_the_history_in_one_step(page, photo):
    """Item 5: one writer, and it folds in the shown id itself, so no reload is needed."""
    gid = list(page.generate(photo, "Rain.", "", 5, True, ""))[-1][0]
    shown, status, video = list(page.resume(gid, ""))[-1]
    assert shown == gid and status.startswith("Status: completed") and video
    history, _, ids, pick = page.sync(shown, [], "UTC|0")
    assert [h["id"] for h in history] == [gid] and ids == [gid]
    assert pick == gid


@pytest.mark.parametrize("typed", ["hello world", "hello", "27f25c85", "27f25c85-e9db"])
def test_a_mistyped_id_is_refused_and_leaves_no_trace(page, simulator, typed):
    """Item 6: no request, no ledger row, nothing shown that the history would keep."""
    ((shown, status, video),) = list(page.resume(typed, ""))
    assert (shown, video) == ("", None)
    assert status.startswith("Status: not resumed") and "look like" in status
    assert simulator.polls == 0
    assert page.service.ledger.recent() == []


def test_a_well_formed_id_the_vendor_does_not_know_leaves_no_trace(page, simulator):
    gid = "27f25c85-e9db-44e9-909a-0c3ceb35cdd9:klingai/video-v2-6-pro-image-to-video"
    shown, status, _ = list(page.resume(gid, ""))[-1]
    assert shown == "" and "does not know this generation id" in status
    assert simulator.polls >= 1 and page.service.ledger.recent() == []
    history, *_ = page.sync(shown, [], "UTC|0")
    assert history == []


def test_a_short_id_is_expanded_only_when_it_is_unambiguous(page):
    history = [{"id": "27f25c85-aaaa"}, {"id": "27f25c85-bbbb"}, {"id": "9abcdef0-cccc"}]
    assert page.expand_id("9abcdef0", history) == "9abcdef0-cccc"
    assert page.expand_id(" 27f25c85 ", history) == "27f25c85"  # two match: left as typed
    assert page.expand_id("ffffffff", history) == "ffffffff"


def test_an_entry_can_be_removed_from_the_history(page):
    history = [{"id": "a", "created_at": 2}, {"id": "b", "created_at": 1}]
    kept, _, ids, pick, gone = page.forget("a", "UTC|0", history)
    assert [h["id"] for h in kept] == ["b"] and ids == ["b"]
    assert pick == "" and gone == '["a"]'  # nothing picked until a tile is clicked


def test_history_times_are_in_the_browsers_zone(page):
    history = [{"id": "x", "created_at": 0}]  # 1970-01-01 00:00 UTC
    _, shown, _, _ = page.sync("", history, "Asia/Tokyo|-540")
    assert shown[0].endswith("· 1970-01-01 09:00")
    _, shown, _, _ = page.sync("", history, "No/Such_Zone|300")  # the offset is the fallback
    assert shown[0].endswith("· 1969-12-31 19:00")
    _, shown, _, _ = page.sync("", history, "")
    assert shown[0].endswith("· 1970-01-01 00:00 UTC")


def test_stop_with_nothing_running_says_so(page):
    """Item 3: no talk of billing when there is no job."""
    text = page.stop("")
    assert text.startswith("Status: nothing to stop") and "billed" not in text


def test_stop_of_a_finished_job_says_it_had_ended(page, photo):
    gid = list(page.generate(photo, "Rain.", "", 5, True, ""))[-1][0]
    text = page.stop(gid)
    assert text.startswith("Status: completed") and "billed" not in text
    assert page.service.entry(gid).state == "done"


def test_stop_of_a_running_job_says_it_goes_on(page, photo, simulator):
    simulator.script_outcome("never")
    updates = page.generate(photo, "Rain.", "", 5, True, "")
    gid = next(updates)[0]
    updates.close()  # the page stops watching
    text = page.stop(gid)
    assert "carries on" in text and "whether or not a page is open" in text
    job = page.service.entry(gid)
    deadline = time.monotonic() + 10
    while job.state != "generating" and time.monotonic() < deadline:  # the runner goes on
        time.sleep(0.05)
        job = page.service.entry(gid)
    assert job.state == "generating"


def test_a_refused_image_is_taken_off_the_page_with_its_reason(page, tmp_path):
    """Item 12: a text file named .jpg leaves no broken preview behind."""
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a picture at all")
    image, note, *_ = page.check_image(str(fake), "reject")
    assert image is None and "holiday.jpg" in note and "Choose another image" in note
    image, note, *_ = page.check_image(None, "reject")  # the clearing that follows keeps the note
    assert image == note == {"__type__": "update"}  # gr.skip(): nothing changes


def test_prompt_counter(page):
    assert handler(page, "count")("x" * 2501) == "2501 / 2500 characters (over the limit)"


def test_image_check_explains_a_small_image(page, tmp_path):
    small = tmp_path / "s.png"
    Image.new("RGB", (200, 400)).save(small)
    assert "300" in page.check_image(str(small), "reject")[1]


@pytest.mark.parametrize(
    "size, offered, kept",
    [
        ((1500, 500), (True, True), True),  # 3:1: either fits it
        ((400, 1200), (True, True), True),  # 1:3
        ((900, 100), (False, True), True),  # cropped it would be 100 px high; padded 900x360
        ((700, 100), (False, False), False),  # too small either way: refused like any other
        ((800, 600), (False, False), True),  # within the range: nothing to choose
    ],
)
def test_an_image_too_wide_or_too_tall_stays_with_the_fits_that_save_it(
    page, tmp_path, size, offered, kept
):
    """Issue 23 item 16: Crop and Pad under the note, for the fits that would save it."""
    path = tmp_path / "shape.png"
    Image.new("RGB", size, (90, 90, 200)).save(path)
    image, note, row, crop, pad, fitting = page.check_image(str(path), "reject")
    assert (crop["visible"], pad["visible"]) == offered and row["visible"] == any(offered)
    assert (image is None) == (not kept), note
    assert fitting.get("original") == (str(path) if kept else None)


def test_crop_shows_the_picture_that_will_be_sent_and_tell_me_brings_back_the_original(
    page, tmp_path
):
    path = tmp_path / "wide.png"
    Image.new("RGB", (1500, 500), (90, 90, 200)).save(path)
    *_, fitting = page.check_image(str(path), "reject")
    copy, note, *_, fitting = page.refit("crop", fitting, str(path))
    assert "cropped to 2.5:1" in note and "1250×500" in note
    assert Image.open(copy).size == (1250, 500)
    assert page.refit("crop", fitting, str(path))[0] == copy  # pressed again: no second copy
    # The copy, handed back by the image field, is known and left as it is.
    assert page.check_image(copy, "crop", fitting) == ({"__type__": "update"},) * 6
    back, note, *_ = page.refit("reject", fitting, copy)
    assert back == str(path) and "3.00:1" in note


def test_demo_status_says_its_credits_are_simulated():
    """Item 10: demo mode never says "credits used" after promising nothing is spent."""
    text = render_status(Progress("id", "completed", "Done.", 15, 3, 12, 210.0, simulated=True))
    assert "credits used" not in text and "simulated" in text and "not charged" in text


def test_status_text_shows_times_and_credits():
    text = render_status(Progress("id", "generating", "Generating.", 75, 5, 70, 1_400_000.0))
    assert text.splitlines()[:2] == [
        "Status: generating",
        "Elapsed 1:15 · queued 0:05 · generating 1:10 · credits used 1,400,000",
    ]


def test_browser_secret_is_made_once_and_kept(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first = browser_secret(settings)
    assert first == browser_secret(settings) and len(first) >= 32
    assert (tmp_path / "browser-secret").stat().st_mode & 0o077 == 0
    from_env = settings_from_env({"KLING_UI_BROWSER_SECRET": "from-env"}, data_dir=tmp_path)
    assert browser_secret(from_env) == "from-env"
    assert "from-env" not in repr(from_env)


def test_a_batch_from_the_page_is_queued_followed_and_cancelled(page, photo, simulator):
    simulator.script_outcome(*["never"] * 8)
    result = page.batch([photo, photo], "One.\nTwo.", "", 5, False, 2, "")
    assert len(result["items"]) == 8 and "error" not in result
    table, timer, progress, note = page.batch_view(result)
    assert len(table["value"]) == 8 and progress.endswith("/8") and "8 videos queued" in note
    assert timer.active
    deadline = time.monotonic() + 10
    while len(simulator.jobs) < 3:  # the per-key limit (3) lets three go
        assert time.monotonic() < deadline
        time.sleep(0.05)
    table, timer, progress, _ = page.cancel_waiting(result)
    states = [row[COLUMNS.index("State")] for row in table["value"]]
    assert states.count("cancelled") == 5, states
    for gid in list(simulator.jobs):
        simulator.complete_now(gid)
    deadline = time.monotonic() + 20
    while page.batch_view(result)[2] != "8/8":
        assert time.monotonic() < deadline, page.batch_view(result)[0]
        time.sleep(0.1)
    assert not page.batch_view(result)[1].active  # nothing left to follow
    assert page.status(result["items"][0]["job_id"])["state"] == "done"
    assert simulator.creates == 3


@pytest.mark.parametrize(
    "images, prompts, takes, words",
    [
        ([], "One.", 1, "at least one image"),
        (["photo"], "  \n ", 1, "one prompt per line"),
        (["photo"], "One.", 5, "Takes must be 1 to 4"),
        (["photo"], "One.\n" + "x" * 2501, 1, "Prompt line 2"),
        (["photo"] * 13, "a\nb", 2, "the most at once is 48"),
    ],
)
def test_a_bad_batch_is_refused_whole_with_words(page, photo, simulator, images, prompts, takes,
                                                 words):  # fmt: skip
    images = [photo if i == "photo" else i for i in images]
    result = page.batch(images, prompts, "", 5, True, takes, "")
    assert result["items"] == [] and words in result["error"], result
    assert page.batch_view(result)[3].startswith("⚠")
    assert simulator.creates == 0 and page.service.ledger.recent() == []


def test_status_of_an_unknown_id_says_so(page):
    assert "error" in page.status("27f25c85-e9db-44e9-909a-0c3ceb35cdd9")
    assert "Paste" in page.status("")["error"]


def test_a_browser_gets_an_owner_token_on_its_first_visit_and_keeps_it(page):
    *_, token, session = page.handlers.restore("[]", "UTC|0", [], "")
    assert token == session and len(token) >= 32
    assert page.handlers.restore("[]", "UTC|0", [], token)[-1] == token
    assert page.handlers.restore("[]", "UTC|0", [], "short")[-1] != "short"


def test_another_browsers_jobs_stay_out_of_this_history(page, photo):
    """Issue 11: an id put into a fresh browser's storage shows nothing of its job, and
    that browser can't stop it, remove it for its owner, or follow its batch."""
    gid = list(page.generate(photo, "My secret prompt.", "", 5, True, ""))[-1][0]
    result = page.batch([photo], "Another secret.", "", 5, True, 1, "")
    other = Tab(page.handlers)
    history, shown, ids, pick = other.sync(gid, [{"id": gid, "created_at": 1}], "UTC|0")
    assert shown == [] and ids == [] and pick == ""
    history, shown, _, _, _ = other.restore(f'["{gid}"]', "UTC|0", [])
    assert history == [] and shown == []
    assert other.stop(gid).startswith("Status: nothing to stop")
    assert other.batch_view(result)[0]["value"] == []
    other.cancel_waiting(result)
    assert page.service.batch_jobs(result["batch_id"], page.service.visitor(page.token, None))
    assert all(j.state != "cancelled" for j in page.service.ledger.batch(result["batch_id"]))
    # Its owner still sees it all.
    assert page.sync(gid, [], "UTC|0")[1][0].startswith("My secret prompt. ·")


def test_restore_takes_at_most_a_history_of_ids(page):
    import json

    many = json.dumps([f"kui-{n:032x}" for n in range(5000)])
    history, *_ = page.restore(many, "UTC|0", [])
    assert len(history) == 100


def test_remix_gives_back_a_jobs_own_settings_only_to_its_browser(page, photo):
    *_, last = list(page.generate(photo, "Remix this.", "no text", 10, False, ""))
    gid = last[0]
    image, prompt, negative, duration, audio, note = page.remix(gid, page.token)
    assert (prompt, negative, duration, audio) == ("Remix this.", "no text", 10, False)
    assert note.startswith("Remixed") and Image.open(image).size == (800, 600)
    assert oct(os.stat(image).st_mode & 0o777) == "0o600"
    other = Tab(page.handlers)
    *fields, note = other.remix(gid, other.token)
    assert note.startswith("Pick") and all(f == gr.skip() for f in fields)


def test_a_tile_click_while_watching_is_refused_in_words(page):
    class Click:
        index = 0

    assert page.pick(["a", "b"], False, Click()) == "a"
    with pytest.raises(gr.Error, match="Stop watching first"):
        page.pick(["a", "b"], True, Click())


def test_a_batch_panorama_follows_the_forms_image_fit(page, photo, simulator, tmp_path):
    """Issue 23, item 16: a batch image too wide is fitted by the form's Image fit; without
    one, the refusal names where to choose it, and nothing is sent."""
    wide = tmp_path / "panorama.jpg"
    Image.new("RGB", (1500, 500), (200, 60, 40)).save(wide, quality=90)
    refused = page.batch([photo, str(wide)], "One.", "", 5, False, 1, "")
    assert refused["items"] == [] and "Image 2:" in refused["error"], refused
    assert "Image fit in More settings" in refused["error"], refused
    assert simulator.creates == 0
    images = [photo, str(wide)]
    queued = page.handlers.batch(images, "One.", "", 5, False, 1, "", page.token, "crop")
    assert len(queued["items"]) == 2 and "error" not in queued, queued


def _tab_request(tab: str) -> gr.Request:
    return gr.Request(client={"host": "127.0.0.1", "port": 1}, headers={}, session_hash=tab)


def _watch_in_thread(steps) -> tuple[list, threading.Thread]:
    seen: list = []
    thread = threading.Thread(target=lambda: seen.extend(steps), daemon=True)
    thread.start()
    return seen, thread


def _until(check, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def test_stop_during_the_checks_before_sending_sends_nothing(page, photo, simulator):
    """Review 2, finding 2: Stop pressed while the balance is read (before the job is made)
    used to do nothing until the job had been sent. Now nothing is sent, in words."""
    simulator.script_outcome("never")
    simulator.script_billing(Fault.slow(3))
    request = _tab_request("tab-checks")
    asked = form_request(photo, "Stopped while the balance is read.", "", 5, True)
    steps = page.handlers.generate_page(
        photo, asked, "", "reject", page.token, "", 1, request=request
    )
    seen, thread = _watch_in_thread(steps)
    _until(lambda: simulator.requests_to("/v2/billing"), what="the balance read")
    assert page.handlers.stop_page("", page.token, 1, request) == (gr.skip(), gr.skip())
    thread.join(30)
    assert not thread.is_alive()
    assert simulator.creates == 0, seen
    status = [s[1] for s in seen if isinstance(s[1], str)]
    assert status[-1].startswith("Status: not sent\nStopped before it was sent"), status


@pytest.mark.parametrize("how", ["generate", "resume"])
def test_a_stop_before_its_watch_begins_ends_that_watch_only(page, photo, simulator, how):
    """Review 2, finding 1: a Stop for press 2 that reaches the server before watch 2 has
    begun is kept for it (not lost); a later watch (press 3) is not stopped by it."""
    simulator.script_outcome("never")
    request = _tab_request(f"tab-early-{how}")
    first = page.generate(photo, "Made first.", "", 5, True, "")
    gid = next(first)[0]
    first.close()  # made, and left running
    assert page.handlers.stop_page(gid, page.token, 2, request) == (gr.skip(), gr.skip())

    def watch(press: int):
        if how == "generate":
            asked = form_request(photo, "Watched.", "", 5, True)
            return page.handlers.generate_page(
                photo, asked, "", "reject", page.token, "", press, request=request
            )
        return page.handlers.resume_page(gid, "", page.token, press, request)

    steps = list(watch(2))  # ends by itself: its Stop came first
    assert steps[-1][1].startswith("Status: "), steps[-1]
    assert "stopped watching" in steps[-1][1] or "not sent" in steps[-1][1], steps[-1]
    later = watch(3)
    assert "stopped" not in next(later)[1]
    seen, thread = _watch_in_thread(later)
    time.sleep(0.5)  # only gives a wrong stop a chance to show; the pass does not depend on it
    assert thread.is_alive(), seen  # still watching: press 2's Stop was not press 3's
    page.handlers.stop_page(gid, page.token, 3, request)
    thread.join(30)
    assert not thread.is_alive()
    assert "stopped watching" in seen[-1][1], seen[-1]


def test_a_stop_as_the_job_ends_leaves_the_finished_card(page, photo, simulator):
    """Review 2, finding 7: Stop pressed as the job finished replaced the finished card
    (its video) with "This job had already ended"."""
    request = _tab_request("tab-ends")
    asked = form_request(photo, "Ends as Stop is pressed.", "", 5, True)
    steps = page.handlers.generate_page(
        photo, asked, "", "reject", page.token, "", 1, request=request
    )
    for step in steps:
        if isinstance(step[1], str) and step[1].startswith("Status: completed"):
            break
    else:
        raise AssertionError("never completed")
    page.handlers.stop_page(step[0], page.token, 1, request)  # the watch is still open
    after = list(steps)
    assert not [s for s in after if isinstance(s[1], str) and "already ended" in s[1]], after


def test_the_image_fields_copies_go_with_the_retention_sweep(
    simulator, photo, tmp_path, monkeypatch
):
    """Review 2, finding 4: a fitted picture (Crop, Pad) and Remix's and Continue's copies,
    written to Gradio's upload folder, were never deleted (Gradio's cache sweep removes only
    the files it made). The retention sweep removes them once older than its days; a
    visitor's own upload (Gradio's) is left to Gradio."""
    uploads = tmp_path / "uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    settings = Settings(
        base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "data", poll_interval=0.05,
        keep_days=2,
    )  # fmt: skip
    tab = Tab(Handlers(GenerationService(settings, start=True, pick_up=False)))
    try:
        wide = tmp_path / "wide.png"
        Image.new("RGB", (1500, 500), (90, 90, 200)).save(wide)
        *_, fitting = tab.check_image(str(wide), "reject")
        fitted = tab.refit("crop", fitting, str(wide))[0]
        gid = list(tab.generate(photo, "Remixed later.", "", 5, True, ""))[-1][0]
        remixed = tab.remix(gid, tab.token)[0]
        continued = tab.continue_video(gid, 5, tab.token)[0]
        made = [Path(p) for p in (fitted, remixed, continued)]
        assert all(p.is_file() and uploads in p.parents for p in made), made
        theirs = uploads / ("a" * 64)
        theirs.mkdir()
        (theirs / "upload.jpg").write_bytes(b"a visitor's upload")

        tab.service.sweep(now=time.time() + 86400)  # a day on: all kept
        assert all(p.is_file() for p in made)
        tab.service.sweep(now=time.time() + 3 * 86400)  # past the two days
        assert [p for p in made if p.exists() or p.parent.exists()] == []
        assert (theirs / "upload.jpg").is_file()
    finally:
        tab.service.close()
