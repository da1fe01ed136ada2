"""One click's whole path without the page: check, submit once, record, watch, deliver."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from kling_ui import errors
from kling_ui.config import MODEL, Settings
from kling_ui.request import Request
from kling_ui.runner import video_filename
from kling_ui.service import DEMO, LIVE, GenerationService
from kling_ui.simulator import DemoSimulator, Fault, Schedule

KEY = "sk-service-test-0c9d"


@pytest.fixture
def service(simulator, tmp_path) -> GenerationService:
    """The service and its runner on real time: the runner is a scheduler thread, and the
    simulator's jobs take half a second (conftest)."""
    settings = Settings(
        base_url=simulator.url,
        api_key=KEY,
        data_dir=tmp_path / "data",
        poll_interval=0.05,
        retry_backoff=0.0,
        retry_after_cap=0.01,
        lookup_window=1.0,
    )
    service = GenerationService(settings)
    yield service
    service.close()


def run(iterator):
    return list(iterator)


def test_the_job_is_written_before_its_create_and_shown_by_our_id_until_the_vendors(
    simulator, service, photo
):
    updates = run(service.generate(photo, Request.make("The sea ripples."), api_key=None))
    (job,) = service.ledger.recent()
    assert job.prompt == "The sea ripples." and job.backend == LIVE and job.state == "done"
    shown = [u.generation_id for u in updates]
    assert set(shown) <= {job.job_id, job.generation_id}
    assert shown == sorted(shown, key=lambda i: i == job.generation_id)  # ours, then theirs
    assert updates[-1].phase == "completed" and updates[-1].video_path.exists()
    create = simulator.requests_to("/v2/video/generations")[0]
    assert create.headers["x-client-request-id"] == job.job_id  # written before it was sent


def test_video_file_is_named_from_prompt_and_id(simulator, service, photo):
    final = run(service.generate(photo, Request.make("A Red Kite, rising!"), api_key=None))[-1]
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
    image, prompt = args.pop("image"), args.pop("prompt")
    with pytest.raises(errors.InputError, match=words):
        run(service.generate(image, Request.make(prompt, **args)))
    assert simulator.creates == 0
    assert service.ledger.recent() == []


@pytest.mark.parametrize(
    ("options", "prompt"),
    [
        ({"duration": 7, "generate_audio": True, "negative_prompt": ""}, "Waves."),
        ({"duration": 5, "generate_audio": "yes", "negative_prompt": ""}, "Waves."),
        ({"duration": "5", "generate_audio": True, "negative_prompt": ""}, "Waves."),
        ({"duration": 5, "generate_audio": True, "negative_prompt": ""}, "Wav\x00es."),
    ],
)
@pytest.mark.parametrize("call", ["generate", "submit", "estimate"])
def test_a_request_built_by_hand_is_checked_before_anything_is_written(
    simulator, service, photo, options, prompt, call
):
    """A ``Request(...)`` that ``Request.make`` would refuse is refused the same way before
    it is priced, written or sent: no row, no create."""
    bad = Request(MODEL, prompt, options=options)
    with pytest.raises(errors.InputError):
        if call == "generate":
            run(service.generate(photo, bad))
        elif call == "submit":
            service.submit(photo, bad, takes=1)
        else:
            service.estimate(bad)
    assert simulator.creates == 0
    assert service.ledger.recent() == []


def test_too_small_image_sends_nothing(simulator, service, tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (299, 400)).save(small)
    with pytest.raises(errors.InputError, match="299"):
        run(service.generate(str(small), Request.make("Waves.")))
    assert simulator.creates == 0


def test_wide_image_can_be_cropped_on_request(simulator, service, tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1500, 400), (200, 10, 10)).save(wide)
    with pytest.raises(errors.InputError):
        run(service.generate(str(wide), Request.make("Pan.")))
    updates = run(service.generate(str(wide), Request.make("Pan."), fit="crop"))
    assert updates[-1].phase == "completed"
    assert simulator.creates == 1


def test_duration_from_the_page_may_be_a_string(simulator, service, photo):
    run(service.generate(photo, Request.make("Waves.", duration="10")))
    post = [r for r in simulator.requests if r.method == "POST"][0]
    assert post.body["duration"] == 10


def test_a_refused_create_ends_the_job_as_not_created(simulator, service, photo):
    simulator.script_create(Fault.status(403))
    last = run(service.generate(photo, Request.make("Waves.")))[-1]
    assert last.phase == "refused" and "Top up" in last.message
    (job,) = service.ledger.recent()
    assert job.state == "not_created" and job.generation_id is None
    assert simulator.creates == 1


def test_typed_key_is_used_over_the_servers(simulator, service, photo):
    run(service.generate(photo, Request.make("Waves."), api_key="  sk-typed-by-user  "))
    post = [r for r in simulator.requests if r.method == "POST"][0]
    assert post.headers["authorization"] == "Bearer sk-typed-by-user"


def test_public_space_refuses_without_a_typed_key(simulator, service, photo):
    service.settings = service.settings.with_(require_user_key=True)
    with pytest.raises(errors.AuthenticationError, match="your own"):
        run(service.generate(photo, Request.make("Waves.")))
    assert simulator.creates == 0


def test_a_job_finishes_with_no_one_watching_and_resume_shows_it(simulator, service, photo):
    updates = service.generate(photo, Request.make("Waves."))
    gid = next(updates).generation_id
    updates.close()  # the tab closed: stop watching
    deadline = time.monotonic() + 15
    while service.entry(gid).state != "done":
        assert time.monotonic() < deadline, service.entry(gid)
        time.sleep(0.05)
    assert Path(service.entry(gid).video_path).exists()  # downloaded with no one watching
    resumed = run(service.resume(gid))
    assert resumed[-1].phase == "completed" and simulator.creates == 1


def test_resume_of_a_finished_job_plays_the_local_copy_without_polling(simulator, service, photo):
    gid = run(service.generate(photo, Request.make("Waves.")))[-1].generation_id
    polls = simulator.polls
    (update,) = run(service.resume(gid))
    assert update.phase == "completed" and update.video_path.exists()
    assert simulator.polls == polls


def test_resume_by_pasted_id_records_it(simulator, service):
    from kling_ui.client import AIMLClient

    client = AIMLClient(KEY, service.settings)
    asked = Request.make("x", images={"image": "https://example.com/a.jpg"})
    gid = client.create_generation(asked).payload["id"]
    final = run(service.resume(f"  {gid}\n"))[-1]
    assert final.phase == "completed" and final.generation_id == gid
    assert service.entry(gid).state == "done"


@pytest.mark.parametrize(
    "gid, words", [("", "Paste"), ("a\x00b", "doesn't look"), ("x" * 300, "doesn.t look")]
)
def test_resume_refuses_a_malformed_id(simulator, service, gid, words):
    with pytest.raises(errors.InputError, match=words):
        run(service.resume(gid))
    assert simulator.polls == 0


def test_a_status_snapshot_never_waits(simulator, service, photo):
    simulator.script_outcome("never")
    updates = service.generate(photo, Request.make("Waves."))
    gid = next(u for u in updates if u.phase == "submitted").generation_id
    updates.close()
    snapshot = service.status(gid)
    assert snapshot["generation_id"] == gid and not snapshot["final"]
    assert snapshot["state"] in ("submitted", "queued", "generating")
    with pytest.raises(errors.NotFoundError):
        service.status("27f25c85-e9db-44e9-909a-0c3ceb35cdd9")


def test_demo_mode_runs_against_its_own_simulator(tmp_path, photo):
    settings = Settings(data_dir=tmp_path / "data", poll_interval=0.05)
    demo = DemoSimulator(settings.data_dir, (0.1, 0.2))
    try:
        service = GenerationService(settings, demo=demo)
        assert service.demo_mode
        updates = run(service.generate(photo, Request.make("Waves.")))
        assert updates[-1].phase == "completed"
        assert service.entry(updates[-1].generation_id).backend == DEMO
        service.close()
    finally:
        demo.stop()


def test_without_key_or_demo_asks_for_a_key(tmp_path, photo):
    service = GenerationService(Settings(data_dir=tmp_path / "data"))
    with pytest.raises(errors.AuthenticationError, match="API key"):
        run(service.generate(photo, Request.make("Waves.")))


def test_entries_are_newest_first(simulator, service, photo):
    a = run(service.generate(photo, Request.make("first")))[-1].generation_id
    b = run(service.generate(photo, Request.make("second")))[-1].generation_id
    found = service.entries([a, b, "unknown"])
    assert set(found) == {a, b} and found[a].prompt == "first" and found[b].prompt == "second"


def test_phase_times_survive_a_stop_and_a_resume(simulator, service, photo):
    """Item 9: each phase's first sighting is kept in the ledger, so times stay true."""
    updates = service.generate(photo, Request.make("The sea ripples."))
    gid = ""
    for update in updates:
        gid = update.generation_id
        if update.phase == "generating":
            break
    updates.close()  # the page stopped watching
    entry = service.entry(gid)
    assert entry.generating_at is not None
    last = run(service.resume(gid))[-1]
    assert last.phase == "completed"
    assert last.queued_for >= 0.15 and last.generating_for >= 0.2, last
    assert last.queued_for + last.generating_for == pytest.approx(last.elapsed, abs=0.01)
    polls = simulator.polls
    replay = run(service.resume(gid))[-1]  # the local copy: same times, not zeros
    assert simulator.polls == polls
    assert (replay.elapsed, replay.queued_for, replay.generating_for) == pytest.approx(
        (last.elapsed, last.queued_for, last.generating_for), abs=0.01
    )


def test_demo_progress_is_marked_simulated(tmp_path, photo):
    settings = Settings(data_dir=tmp_path / "demo", poll_interval=0.05)
    demo = DemoSimulator(settings.data_dir, (0.05, 0.1))
    try:
        updates = run(
            GenerationService(settings, demo=demo).generate(photo, Request.make("Clouds."))
        )
    finally:
        demo.stop()
    assert updates[-1].phase == "completed" and all(u.simulated for u in updates)


def test_a_young_job_is_polled_sparsely_then_every_interval(simulator, tmp_path, photo):
    """Once the ledger has seen enough runs (here one), polls before about 80% of the
    shortest come `sparse` apart."""
    simulator.set_schedule(Schedule(queued_s=0.5, generating_s=1.5))
    settings = Settings(
        base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "d", poll_interval=0.1,
        sparse_poll_interval=0.6, sparse_after_runs=1,
    )  # fmt: skip
    service = GenerationService(settings)
    try:
        # The first one teaches the ledger ~2 s runs.
        first = run(service.generate(photo, Request.make("One.")))[-1].generation_id
        polls_first = _polls_for(simulator, first)
        second = run(service.generate(photo, Request.make("Two.")))[-1].generation_id
        polls_second = _polls_for(simulator, second)
    finally:
        service.close()
    assert len(polls_first) >= 10  # no history yet: every 0.1 s over ~2 s (slack: busy CI)
    gaps = [b - a for a, b in zip(polls_second, polls_second[1:], strict=False)]
    assert max(gaps) >= 0.5, gaps  # sparse while young
    assert len(polls_second) < len(polls_first) * 0.75, (len(polls_second), len(polls_first))


def test_one_run_seen_is_not_enough_to_poll_a_young_job_sparsely(simulator, tmp_path, photo):
    """A job far shorter than the one run the ledger has seen is polled every interval, so
    it is noticed soon: one run says little about the next (the playback benchmark's job
    that finished 2.4 s in, after runs of 11 s and more, waited 7.5 s for its first poll)."""
    simulator.set_schedule(Schedule(queued_s=0.5, generating_s=3.0))
    settings = Settings(
        base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "d", poll_interval=0.1,
        sparse_poll_interval=3.0,
    )  # fmt: skip
    service = GenerationService(settings)
    try:
        # The ledger's only run: about 3.5 s.
        run(service.generate(photo, Request.make("A long one.")))
        simulator.set_schedule(Schedule(queued_s=0.1, generating_s=0.4))
        short = run(service.generate(photo, Request.make("A short one.")))[-1].generation_id
    finally:
        service.close()
    creates = simulator.requests_to("/v2/video/generations")
    created = max(r.time for r in creates if r.method == "POST")  # the short one's
    polls = _polls_for(simulator, short)
    # Sparse after the one run, its first poll would come at 80% of it, about 2.8 s in.
    assert polls[0] - created < 1.5, polls[0] - created
    assert len(polls) >= 3, polls  # polled through its short run, every interval


def _polls_for(simulator, gid: str) -> list[float]:
    return [r.time for r in simulator.requests if r.method == "GET"
            and r.query.get("generation_id") == gid]  # fmt: skip


def test_a_typed_key_job_resumes_only_with_its_own_key_after_a_restart(simulator, tmp_path, photo):
    settings = Settings(base_url=simulator.url, data_dir=tmp_path / "d", poll_interval=0.05)
    simulator.script_outcome("never")
    first = GenerationService(settings)
    updates = first.generate(photo, Request.make("Mine."), api_key="sk-typed-owner-key-1")
    gid = next(u for u in updates if ":" in u.generation_id).generation_id
    updates.close()
    first.close()  # a restart: the typed key is gone with the process
    again = GenerationService(settings)
    try:
        assert again.status(gid)["state"] in ("submitted", "queued", "generating")
        with pytest.raises(errors.AuthenticationError, match="enter it again"):
            run(again.resume(gid, api_key=""))
        with pytest.raises(errors.AuthenticationError, match="different API key"):
            run(again.resume(gid, api_key="sk-someone-else-9"))
        simulator.complete_now(gid)
        assert run(again.resume(gid, api_key="sk-typed-owner-key-1"))[-1].phase == "completed"
        assert simulator.creates == 1
    finally:
        again.close()


def test_jobs_paused_for_their_owner_hold_no_slot(simulator, tmp_path, photo):
    settings = Settings(
        base_url=simulator.url, api_key=KEY, data_dir=tmp_path / "d", poll_interval=0.05,
        max_active_per_key=2,
    )  # fmt: skip
    simulator.script_poll(Fault.status(401), Fault.status(401))
    simulator.script_outcome("never", "never")
    service = GenerationService(settings)
    try:
        paused = [run(service.generate(photo, Request.make(f"P{n}.")))[-1] for n in range(2)]
        assert [p.phase for p in paused] == ["paused", "paused"]
        last = run(service.generate(photo, Request.make("Goes through.")))[-1]
        assert last.phase == "completed"
    finally:
        service.close()


def test_one_short_id_per_job_found_by_its_maker_and_no_one_else(simulator, service, photo):
    """Issue 23 item 17: 8 characters of either id work wherever an id does, for whoever may
    see the job; for anyone else a short id is not a key to it (8 characters are guessable)."""
    me, stranger = "browser:" + "a" * 32, "browser:" + "b" * 32
    *_, done = run(service.generate(photo, Request.make("The sea ripples."), owner=me))
    job = service.entry(done.generation_id)
    assert job.short_id == job.job_id.removeprefix("kui-")[:8]
    for short in (job.short_id, "kui-" + job.short_id, job.generation_id[:8]):
        assert service.entry(short, me) == job
        assert service.status(short, owner=me)["job_id"] == job.job_id
        assert service.take_up(short, owner=me).job_id == job.job_id
        assert service.knows(short, me)
        assert run(service.resume(short, owner=me))[-1].phase == "completed"
        assert service.entry(short, stranger) is None and not service.knows(short, stranger)
        with pytest.raises(errors.KlingUIError):
            service.status(short, owner=stranger)
        with pytest.raises(errors.KlingUIError):
            service.take_up(short, owner=stranger)
    assert service.entry(job.short_id) is None  # nobody named: whole ids only
    assert service.entry(job.short_id[:7], me) is None  # too short to be one


# --- the service's rooms take their clocks: time is moved, not waited for -------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (None, None),
        (Fault.status(401, "Invalid key"), "key or money"),
        (Fault.status(403), "key or money"),
        (Fault.status(400, "The prompt was refused"), "refused"),
    ],
)
def test_a_status_says_why_a_job_made_no_video_typed(simulator, service, photo, fault, reason):
    """``status`` answers the typed reason (``states.Reason``'s value, or null), so a program
    tells a key or a balance to fix from a request to change without reading the message."""
    if fault is not None:
        simulator.script_create(fault)
    last = run(service.generate(photo, Request.make("Waves.")))[-1]
    snapshot = service.status(last.generation_id)
    assert snapshot["final"] and snapshot["reason"] == reason


@pytest.mark.parametrize("balance", [100.0, 0.01])
def test_a_generate_click_resolves_its_key_once(simulator, service, photo, balance):
    """A click asks which backend its key goes to once: its low-balance question (the
    balance, and the words when it is low) and its job share the answer. It was asked three
    times a click (the balance, the question, the job)."""
    from kling_ui.ui.handlers import Handlers

    asked, resolve = [], service.access.backend_for

    def counted(*args, **kwargs):  # a spy: it answers as before, and counts
        asked.append(args)
        return resolve(*args, **kwargs)

    service.access.backend_for = counted  # type: ignore[method-assign]
    simulator.set_balance(balance, key=KEY)
    steps = list(Handlers(service).generate(photo, "Waves.", "", 5, False, ""))
    made = steps[-1][1].split("\n")[0]
    assert ("completed" if balance > 1 else "not sent") in made, steps[-1]
    assert len(asked) == 1, asked


class Ticks:
    """A clock a test moves by hand (monotonic seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def quiet_service(simulator, tmp_path, ticks: Ticks, **settings) -> GenerationService:
    options = {"base_url": simulator.url, "api_key": KEY, "data_dir": tmp_path / "d", **settings}
    return GenerationService(Settings(**options), monotonic=ticks, start=False)


def test_a_balance_is_read_again_only_once_it_is_stale(simulator, tmp_path):
    ticks = Ticks()
    service = quiet_service(simulator, tmp_path, ticks)
    try:
        simulator.set_balance(5.0, key=KEY)
        assert service.balance(None) == 5.0
        simulator.set_balance(1.0, key=KEY)
        ticks.now += service.balance_fresh - 0.5
        assert service.balance(None) == 5.0  # still fresh: not asked again
        ticks.now += 0.5
        assert service.balance(None) == 1.0
    finally:
        service.close()


def test_an_address_brings_new_browsers_again_an_hour_later(simulator, tmp_path):
    ticks = Ticks()
    service = quiet_service(simulator, tmp_path, ticks, address_new_browsers_per_hour=1)
    first, second, address = "a" * 32, "b" * 32, "192.0.2.7"
    try:
        assert service.admit_browser(first, address)
        assert not service.admit_browser(second, address)  # the hour's one is taken
        assert service.admit_browser(first, address)  # one seen before comes back
        ticks.now += 3599
        assert not service.admit_browser(second, address)
        ticks.now += 1
        assert service.admit_browser(second, address)
        assert service.admit_browser(second, "192.0.2.8")  # another address: its own hour
    finally:
        service.close()


def test_a_request_not_made_by_request_make_is_a_programs_mistake(service, photo):
    with pytest.raises(TypeError, match="Request"):
        next(iter(service.generate(photo, "Waves.")))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Request"):
        service.submit(photo, {"prompt": "Waves."})  # type: ignore[arg-type]
    assert service.recent() == []
