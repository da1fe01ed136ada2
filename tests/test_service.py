"""One click's whole path without the page: check, submit once, record, watch, deliver."""

from __future__ import annotations

import pytest
from PIL import Image

from kling_ui import errors
from kling_ui.config import Settings
from kling_ui.service import DEMO, LIVE, GenerationService, video_filename
from kling_ui.simulator import DemoSimulator, Fault, Schedule, Simulator

KEY = "sk-service-test-0c9d"


@pytest.fixture
def simulator(clock):
    """conftest's simulator on the fake clock the service runs on too: a job's 0.5 s pass
    as the service sleeps between polls, and no test waits for them."""
    with Simulator(schedule=Schedule(queued_s=0.2, generating_s=0.3), clock=clock) as sim:
        yield sim


@pytest.fixture
def service(simulator, clock, tmp_path) -> GenerationService:
    settings = Settings(
        base_url=simulator.url,
        api_key=KEY,
        data_dir=tmp_path / "data",
        poll_interval=0.05,
        retry_backoff=0.0,
        retry_after_cap=0.01,
    )
    return GenerationService(settings, clock=clock, sleep=clock.sleep)


def run(iterator):
    return list(iterator)


def test_generation_is_recorded_before_the_first_poll(simulator, service, photo):
    updates = service.generate(photo, "The sea ripples.", api_key=None)
    first = next(updates)
    assert first.phase == "submitted" and first.generation_id
    assert simulator.polls == 0
    entry = service.ledger.get(first.generation_id)
    assert entry is not None and entry.prompt == "The sea ripples." and entry.backend == LIVE
    rest = list(updates)
    assert rest[-1].phase == "completed"
    assert service.ledger.get(first.generation_id).status == "completed"
    assert rest[-1].video_path.exists()


def test_video_file_is_named_from_prompt_and_id(simulator, service, photo):
    final = run(service.generate(photo, "A Red Kite, rising!", api_key=None))[-1]
    assert final.video_path.name.startswith("kling-a-red-kite-rising-")
    assert final.video_path.parent == service.settings.videos_dir


@pytest.mark.parametrize(
    "prompt, gid, name",
    [
        ("Hello world", "abcd1234-ef:model", "kling-hello-world-abcd1234.mp4"),
        ("", "abcd1234-ef:model", "kling-video-abcd1234.mp4"),
        ("猫 🐈", "x/../../y:m", "kling-video-xy.mp4"),
        ("Café au lait", "12345678-aaaa", "kling-cafe-au-lait-12345678.mp4"),
    ],
)
def test_video_filename(prompt, gid, name):
    assert video_filename(prompt, gid) == name


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"image": None}, "Add an image"),
        ({"prompt": " "}, "Write a prompt"),
        ({"prompt": "p" * 2501}, "2501"),
        ({"duration": 7}, "5 or 10"),
        ({"generate_audio": "yes"}, "on or off"),
    ],
)
def test_bad_input_sends_nothing(simulator, service, photo, kwargs, words):
    args = {"image": photo, "prompt": "Waves.", **kwargs}
    with pytest.raises(errors.InputError, match=words):
        run(service.generate(**args))
    assert simulator.creates == 0
    assert service.ledger.recent() == []


def test_too_small_image_sends_nothing(simulator, service, tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (299, 400)).save(small)
    with pytest.raises(errors.InputError, match="299"):
        run(service.generate(str(small), "Waves."))
    assert simulator.creates == 0


def test_wide_image_can_be_cropped_on_request(simulator, service, tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1500, 400), (200, 10, 10)).save(wide)
    with pytest.raises(errors.InputError):
        run(service.generate(str(wide), "Pan."))
    updates = run(service.generate(str(wide), "Pan.", fit="crop"))
    assert updates[-1].phase == "completed"
    assert simulator.creates == 1


def test_duration_from_the_page_may_be_a_string(simulator, service, photo):
    run(service.generate(photo, "Waves.", duration="10"))
    post = [r for r in simulator.requests if r.method == "POST"][0]
    assert post.body["duration"] == 10


def test_create_failure_records_nothing_and_raises(simulator, service, photo):
    simulator.script_create(Fault.status(403))
    with pytest.raises(errors.OutOfCreditsError):
        run(service.generate(photo, "Waves."))
    assert service.ledger.recent() == []


def test_typed_key_is_used_over_the_servers(simulator, service, photo):
    run(service.generate(photo, "Waves.", api_key="  sk-typed-by-user  "))
    post = [r for r in simulator.requests if r.method == "POST"][0]
    assert post.headers["authorization"] == "Bearer sk-typed-by-user"


def test_public_space_refuses_without_a_typed_key(simulator, service, photo):
    service.settings = service.settings.with_(require_user_key=True)
    with pytest.raises(errors.AuthenticationError, match="your own"):
        run(service.generate(photo, "Waves."))
    assert simulator.creates == 0


def test_resume_watches_a_known_job_to_the_end(simulator, service, photo):
    updates = service.generate(photo, "Waves.")
    gid = next(updates).generation_id
    updates.close()  # the tab closed: stop watching
    resumed = run(service.resume(gid))
    assert resumed[-1].phase == "completed"
    assert simulator.creates == 1
    assert service.ledger.get(gid).status == "completed"


def test_resume_of_a_finished_job_plays_the_local_copy_without_polling(simulator, service, photo):
    gid = run(service.generate(photo, "Waves."))[-1].generation_id
    polls = simulator.polls
    (update,) = run(service.resume(gid))
    assert update.phase == "completed" and update.video_path.exists()
    assert simulator.polls == polls


def test_resume_by_pasted_id_records_it(simulator, service):
    from kling_ui.client import AIMLClient, GenerationRequest

    client = AIMLClient(KEY, service.settings)
    gid = client.create_generation(
        GenerationRequest(image_url="https://example.com/a.jpg", prompt="x")
    ).payload["id"]
    final = run(service.resume(f"  {gid}\n"))[-1]
    assert final.phase == "completed"
    assert service.ledger.get(gid) is not None


@pytest.mark.parametrize(
    "gid, words", [("", "Paste"), ("a\x00b", "doesn't look"), ("x" * 300, "doesn.t look")]
)
def test_resume_refuses_a_malformed_id(simulator, service, gid, words):
    with pytest.raises(errors.InputError, match=words):
        run(service.resume(gid))
    assert simulator.polls == 0


def test_stopped_job_is_marked_and_resumable(simulator, service, photo):
    updates = service.generate(photo, "Waves.")
    gid = next(updates).generation_id
    updates.close()
    service.mark_stopped(gid)
    assert service.ledger.get(gid).status == "stopped"


def test_demo_mode_runs_against_its_own_simulator(tmp_path, photo):
    settings = Settings(data_dir=tmp_path / "data", poll_interval=0.05)
    demo = DemoSimulator(settings.data_dir, (0.1, 0.2))
    try:
        service = GenerationService(settings, demo=demo)
        assert service.demo_mode
        updates = run(service.generate(photo, "Waves."))
        assert updates[-1].phase == "completed"
        assert service.ledger.get(updates[-1].generation_id).backend == DEMO
    finally:
        demo.stop()


def test_without_key_or_demo_asks_for_a_key(tmp_path, photo):
    service = GenerationService(Settings(data_dir=tmp_path / "data"))
    with pytest.raises(errors.AuthenticationError, match="API key"):
        run(service.generate(photo, "Waves."))


def test_entries_are_newest_first(simulator, service, photo):
    a = run(service.generate(photo, "first"))[-1].generation_id
    b = run(service.generate(photo, "second"))[-1].generation_id
    assert [e.id for e in service.entries([a, b, "unknown"])] == [b, a]


def test_phase_times_survive_a_stop_and_a_resume(simulator, service, photo):
    """Item 9: each phase's first sighting is kept in the ledger, so times stay true."""
    updates = service.generate(photo, "The sea ripples.")
    gid = ""
    for update in updates:
        gid = update.generation_id
        if update.phase == "generating":
            break
    updates.close()  # the page stopped watching
    service.mark_stopped(gid)
    entry = service.ledger.get(gid)
    assert entry.generating_at is not None and entry.finished_at is None
    last = run(service.resume(gid))[-1]
    assert last.phase == "completed"
    assert last.queued_for >= 0.15 and last.generating_for >= 0.2, last
    assert last.queued_for + last.generating_for == pytest.approx(last.elapsed, abs=0.01)
    replay = run(service.resume(gid))[-1]  # the local copy: same times, not zeros
    assert replay.polls == 0
    assert (replay.elapsed, replay.queued_for, replay.generating_for) == pytest.approx(
        (last.elapsed, last.queued_for, last.generating_for), abs=0.01
    )


def test_demo_progress_is_marked_simulated(tmp_path, photo):
    settings = Settings(data_dir=tmp_path / "demo", poll_interval=0.05)
    demo = DemoSimulator(settings.data_dir, (0.05, 0.1))
    try:
        updates = run(GenerationService(settings, demo=demo).generate(photo, "Clouds."))
    finally:
        demo.stop()
    assert updates[-1].phase == "completed" and all(u.simulated for u in updates)
