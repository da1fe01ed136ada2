"""Compare boards and exports through the service (real jobs through the simulator over
loopback HTTP): only the caller's own finished videos, at most four, each with what it is;
exports one at a time, a crowd told to come back."""

from __future__ import annotations

import threading

import av
import pytest
from PIL import Image

from kling_ui import errors
from kling_ui.config import Settings
from kling_ui.request import Request
from kling_ui.service import GenerationService, boards
from kling_ui.simulator import Schedule, Simulator
from kling_ui.ui import Handlers
from kling_ui.ui.compare import render

pytestmark = pytest.mark.timeout(120)

KEY = "sk-boards-test-93b1"
FAST = Schedule(queued_s=0.05, generating_s=0.1)
ME, YOU = "browser:me", "browser:you"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with Simulator(schedule=FAST) as sim:
        service = GenerationService(
            Settings(base_url=sim.url, api_key=KEY, data_dir=tmp_path_factory.mktemp("boards"),
                     poll_interval=0.05, retry_backoff=0.0)
        )  # fmt: skip
        yield service
        service.close()


@pytest.fixture(scope="module")
def made(service, tmp_path_factory) -> list[str]:
    """Three of ME's videos (5 s, 10 s without sound, 5 s) and one of YOU's: their ids."""
    photo = tmp_path_factory.mktemp("photo") / "p.png"
    Image.new("RGB", (800, 600), (30, 160, 60)).save(photo)
    asked = [
        (Request.make("Take one."), ME),
        (Request.make("Take two.", duration=10, generate_audio=False), ME),
        (Request.make("Take three."), ME),
        (Request.make("Someone else's."), YOU),
    ]
    ids = []
    for request, owner in asked:
        final = list(service.generate(str(photo), request, owner=owner))[-1]
        assert final.phase == "completed", final
        ids.append(final.generation_id)
    return ids


def test_a_board_shows_each_video_with_what_it_is(service, made):
    one, two = service.compare(made[:2], ME)
    assert (one.name, one.prompt, one.model) == ("Kling v2.6 Pro", "Take one.", one.model)
    assert one.video_url.startswith("/media/") and one.path.is_file()
    assert two.settings == "10 s · generate audio off"
    assert one.settings == "5 s · generate audio on"
    assert one.usd and two.usd  # what each cost (the charge), for the total
    assert one.seconds is not None and 0 < one.seconds < 30
    page = render([one, two], two.gid)
    assert page.count("<video") == 2 and page.count("★ kept") == 1
    assert "Total: $" in page and 'src="media/' in page  # relative: a sub-path works too
    assert 'muted aria-label="Video 2' in page and 'muted aria-label="Video 1' not in page


def test_a_board_holds_only_the_callers_own_finished_videos_four_at_most(service, made):
    with pytest.raises(errors.InputError, match="No video of yours"):
        service.compare([made[0], made[3]], ME)
    with pytest.raises(errors.InputError, match="at most 4"):
        service.compare([*made[:3], "a", "b"], ME)
    assert [i.gid for i in service.compare([made[0], made[0]], ME)] == [made[0]]  # once each


def test_words_of_a_person_are_escaped_on_the_board(service, made):
    (item,) = service.compare(made[:1], ME)
    evil = boards.BoardItem(**{**item.__dict__, "prompt": "<img src=x onerror=alert(1)>",
                               "name": "<b>x</b>"})  # fmt: skip
    page = render([evil], "")
    assert "<img" not in page and "<b>x" not in page and "&lt;img" in page


def test_the_board_exports_as_one_side_by_side_mp4(service, made, tmp_path):
    done = service.export_board(made[:2], ME, tmp_path / "board.mp4")
    with av.open(str(done.path)) as container:  # the simulator's test card: 5 s, 16:9
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(5.0, abs=0.1)
        width, height = stream.codec_context.width, stream.codec_context.height
        assert width / (height - 36) == pytest.approx(2 * 16 / 9, rel=0.03)
    with pytest.raises(errors.InputError, match="2 to 4"):
        service.export_board(made[:1], ME, tmp_path / "one.mp4")
    with pytest.raises(errors.InputError, match="No video of yours"):
        service.export_board([made[0], made[3]], ME, tmp_path / "theirs.mp4")
    assert not (tmp_path / "one.mp4").exists() and not (tmp_path / "theirs.mp4").exists()


def test_a_video_exports_as_gif_or_webm_only(service, made, tmp_path):
    done = service.export_video(made[0], ME, "webm", tmp_path / "a.webm")
    assert done.seconds == pytest.approx(5.0, abs=0.2)
    with pytest.raises(errors.InputError, match="gif or webm"):
        service.export_video(made[0], ME, "avi", tmp_path / "a.avi")
    with pytest.raises(errors.InputError, match="No video of yours"):
        service.export_video(made[3], ME, "gif", tmp_path / "b.gif")


def test_exports_wait_their_turn_and_a_crowd_is_told_to_come_back(service, made, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    monkeypatch.setattr(boards, "EXPORT_WAIT", 0.2)
    room = service.boards
    assert room._turns.acquire()  # an export under way
    try:
        with pytest.raises(errors.InputError, match="try again in a minute"):
            service.export_video(made[0], ME, "gif", tmp_path / "late.gif")
    finally:
        room._turns.release()
    # Two at once: one runs, the other waits for it and then runs too.
    monkeypatch.setattr(boards, "EXPORT_WAIT", 60.0)
    outcomes: list[object] = []
    threads = [
        threading.Thread(target=lambda n=n: outcomes.append(
            service.export_video(made[0], ME, "gif", tmp_path / f"{n}.gif")))
        for n in range(2)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 2


def test_the_page_drops_from_a_board_what_the_visitor_may_no_longer_see(service, made, photo):
    handlers = Handlers(service)
    token = "m" * 32
    visitor = service.visitor(token, None)
    mine = list(service.generate(photo, Request.make("Mine."), owner=visitor))[-1]
    state, box, board, keep, note = handlers.compare_show(
        {"ids": [mine.generation_id, made[3]], "kept": made[3]}, token
    )
    assert state == {"ids": [mine.generation_id], "kept": ""}
    assert box["visible"] is True and board.count("<video") == 1
    assert "Pick another video" in note
    added = handlers.compare_add(made[0], state, token)  # another visitor's: not added
    assert added[0] == state and "No video of yours" in added[-1]
