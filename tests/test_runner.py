"""Jobs belong to the server: ``python app.py`` finishes them with no page attached, after a
SIGKILL too, and runs batches within a per-key limit. The app runs as a user runs it, in a
subprocess; the simulator, in this process, is its API (so the test can count creates and
watch the vendor's side); the ledger is read from its file, as a person would look.

The runner's own clock is tested in this process: a ``Runner`` on a clock the test moves on
by hand (``ManualClock``), so a lookup window of minutes or a lease's heartbeat takes no
real waiting."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from apprunner import AppProcess, submit
from gradio_client import Client, handle_file

from kling_ui.config import Settings
from kling_ui.history import Ledger
from kling_ui.images import prepare_image
from kling_ui.request import Request
from kling_ui.runner import Backend, Runner
from kling_ui.simulator import DownloadFault, Fault, Schedule, Simulator
from kling_ui.states import Reason

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

KEY = "sk-runner-server-key-41"
POLL = 0.3


# Every test here runs twice: on the default SQLite ledger, and on PostgreSQL
# (KLING_UI_DATABASE_URL), where the ledger is a database server's and not a file's.
DATABASE: str | None = None


@pytest.fixture(autouse=True, params=["sqlite", "postgresql"])
def database(request):
    global DATABASE
    DATABASE = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    yield request.param
    DATABASE = None


def app(data: Path, sim: Simulator, **env: str) -> AppProcess:
    where = {"KLING_UI_DATABASE_URL": DATABASE} if DATABASE else {}
    return AppProcess(
        data,
        env={"AIMLAPI_KEY": KEY, "AIMLAPI_BASE_URL": sim.url,
             "KLING_UI_POLL_INTERVAL": str(POLL), **where, **env},
    )  # fmt: skip


def ledger(data: Path) -> dict[str, dict]:
    """Every job in the app's ledger, by our id (read as a person would look: the file, or
    the database)."""
    if DATABASE:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(DATABASE, row_factory=dict_row) as db:
            return {r["job_id"]: dict(r) for r in db.execute("SELECT * FROM jobs").fetchall()}
    db = sqlite3.connect(f"file:{data / 'history.sqlite3'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return {r["job_id"]: dict(r) for r in db.execute("SELECT * FROM jobs")}
    finally:
        db.close()


def wait_for(what, timeout: float = 60, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened: {what.__doc__ or what}"
        time.sleep(every)


def the_job(data: Path) -> dict:
    (job,) = ledger(data).values()
    return job


def first_vendor_id(job) -> str:
    """Read the stream until the vendor's id shows, then leave: the tab closes there."""
    while True:
        outputs = job.outputs()
        for gid, _, _ in outputs:
            if gid and ":" in gid:
                return gid
        time.sleep(0.02)


@pytest.fixture
def sim():
    with Simulator(schedule=Schedule(queued_s=0.5, generating_s=1.0)) as simulator:
        yield simulator


def test_a_tab_closed_at_the_id_still_gets_its_video_on_disk(sim, photo, tmp_path):
    data = tmp_path / "data"
    sim.script_outcome("never")  # the vendor finishes when the test says
    server = app(data, sim)
    try:
        job = submit(Client(server.url, verbose=False), photo)
        gid = first_vendor_id(job)
        job.cancel()  # the client goes away
        time.sleep(1.0)
        sim.complete_now(gid)
        finished = time.monotonic()

        def on_disk():
            row = the_job(data)
            return row if row["state"] == "done" and Path(row["video_path"]).exists() else None

        row = wait_for(on_disk, timeout=30)
        took = time.monotonic() - finished
        assert row["generation_id"] == gid and sim.creates == 1
        # Within a poll interval of the vendor finishing (plus the download and slack for a
        # busy machine: this is a correctness bound, not a benchmark).
        assert took < POLL + 5, took
    finally:
        server.stop()


@pytest.mark.parametrize("moment", ["generating", "downloading"])
def test_sigkill_mid_job_then_a_restart_with_no_client_finishes_it(sim, photo, tmp_path, moment):
    data = tmp_path / "data"
    if moment == "downloading":
        sim.script_download(DownloadFault.slow(6))
    else:
        sim.script_outcome("never")
    server = app(data, sim)
    try:
        job = submit(Client(server.url, verbose=False), photo)
        gid = first_vendor_id(job)
        wait_for(lambda: the_job(data)["state"] == moment, timeout=30)
        server.kill()
    finally:
        server.stop()
    assert the_job(data)["state"] == moment
    if moment == "generating":
        sim.complete_now(gid)
    again = app(data, sim)  # no client ever connects to it
    try:
        row = wait_for(
            lambda: (r := the_job(data))["state"] == "done" and Path(r["video_path"]).exists()
            and r, timeout=60,
        )  # fmt: skip
        assert row["generation_id"] == gid
        assert sim.creates == 1  # one create, before and after the restart
    finally:
        again.stop()


def test_a_batch_runs_within_the_per_key_limit_and_delivers_every_video(sim, tmp_path):
    """3 images x 2 prompts x 2 takes with KLING_UI_MAX_ACTIVE_PER_KEY=3; the simulator also
    turns away (429, Retry-After) more than 2 active jobs, which must cost nothing twice."""
    from PIL import Image

    images = []
    for n, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
        path = tmp_path / f"img{n}.jpg"
        Image.new("RGB", (640, 480), colour).save(path)
        images.append(handle_file(str(path)))
    sim.set_schedule(Schedule(queued_s=0.3, generating_s=0.6))
    data = tmp_path / "data"
    server = app(data, sim, KLING_UI_MAX_ACTIVE_PER_KEY="3")
    try:
        client = Client(server.url, verbose=False)
        result = client.predict(
            images=images, prompts="Waves roll in.\nThe camera pans left.",
            negative_prompt="", duration=5, generate_audio=False, takes=2, api_key="",
            api_name="/batch",
        )  # fmt: skip
        assert "error" not in result, result
        assert len(result["items"]) == 12
        rows = wait_for(
            lambda: (r := ledger(data)) and all(j["state"] == "done" for j in r.values()) and r,
            timeout=120,
        )
        assert len(rows) == 12 and all(Path(j["video_path"]).exists() for j in rows.values())
        assert len({j["generation_id"] for j in rows.values()}) == 12
        assert sim.peak_active(KEY) <= 3
        assert len(sim.jobs) == 12  # twelve videos made, none twice
        status = client.predict(generation_id=result["items"][0]["job_id"], api_name="/status")
        assert status["state"] == "done" and status["video"]
    finally:
        server.stop()


def test_a_create_turned_away_over_the_vendors_limit_waits_and_is_never_made_twice(sim, tmp_path):
    from PIL import Image

    path = tmp_path / "img.jpg"
    Image.new("RGB", (640, 480), (90, 90, 90)).save(path)
    sim.set_schedule(Schedule(queued_s=0.3, generating_s=0.6))
    sim.script_max_active(2)  # the vendor allows 2; our limit is 3: the third is turned away
    data = tmp_path / "data"
    server = app(data, sim, KLING_UI_MAX_ACTIVE_PER_KEY="3")
    try:
        result = Client(server.url, verbose=False).predict(
            images=[handle_file(str(path))], prompts="One.\nTwo.\nThree.\nFour.",
            negative_prompt="", duration=5, generate_audio=False, takes=1, api_key="",
            api_name="/batch",
        )  # fmt: skip
        assert len(result["items"]) == 4
        wait_for(lambda: all(j["state"] == "done" for j in ledger(data).values()), timeout=120)
        turned_away = sim.creates - len(sim.jobs)
        assert len(sim.jobs) == 4 and turned_away >= 1  # the 429s happened, and cost nothing
        assert sim.peak_active(KEY) <= 2
    finally:
        server.stop()


def test_a_bad_item_refuses_the_whole_batch_by_name(sim, photo, tmp_path):
    tiny = tmp_path / "tiny.png"
    from PIL import Image

    Image.new("RGB", (200, 200)).save(tiny)
    data = tmp_path / "data"
    server = app(data, sim)
    try:
        result = Client(server.url, verbose=False).predict(
            images=[handle_file(photo), handle_file(str(tiny))], prompts="Fine.\n\nAlso fine.",
            negative_prompt="", duration=5, generate_audio=False, takes=2, api_key="",
            api_name="/batch",
        )  # fmt: skip
        assert result["items"] == [] and "Image 2" in result["error"] and "300" in result["error"]
        assert sim.creates == 0 and ledger(data) == {}
    finally:
        server.stop()


# --- the runner's clock, moved on by hand ---------------------------------------------------


class ManualClock:
    """Wall and monotonic time that move only when the test says (``advance``), and the
    runner's waits on it: each returns after a real moment, and the runner, which loops on
    its clock, goes on waiting until the test has moved time past the wait's end."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        cond.wait(0.005)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run_on(clock: ManualClock, until, *, step: float, most: int = 2000):
    """Move the clock on by ``step`` until ``until()`` is true (a real moment between steps,
    for the runner's threads to take their turn)."""
    for _ in range(most):
        value = until()
        if value:
            return value
        clock.advance(step)
        time.sleep(0.01)
    raise AssertionError(f"never happened: {until.__doc__ or until}")


@pytest.fixture
def on_a_clock(tmp_path, photo):
    """A runner (and its ledger) on a ``ManualClock``, against a simulator; yields a maker
    of (runner, ledger, clock, sim, request) for the settings a test asks for."""
    made = []
    sim = Simulator(schedule=Schedule(queued_s=0.05, generating_s=0.1)).start()

    def make(**options):
        clock = ManualClock()
        settings = Settings(base_url=sim.url, api_key=KEY, data_dir=tmp_path / "data", **options)
        ledger = Ledger(DATABASE or tmp_path / "ledger.sqlite3")
        runner = Runner(settings, ledger, clock=clock, monotonic=clock, wait=clock.wait)
        made.append(runner.start())
        request = Request.make("The river bends.", images={"image": prepare_image(photo).data_uri})
        return runner, ledger, clock, sim, request, Backend("live", settings, KEY, "server")

    yield make
    for runner in made:
        runner.stop()
    sim.stop()


def test_a_lost_create_is_looked_up_for_the_window_on_the_runners_clock(on_a_clock):
    """A create whose answer never came is looked for in the usage log, backing off, for
    five minutes of the runner's clock: then not created, and never sent a second time."""
    runner, ledger, clock, sim, request, backend = on_a_clock(
        lookup_window=300.0, poll_interval=1.0, retry_backoff=0.0
    )
    sim.script_create(Fault.drop())  # the connection closes: what became of it is unknown
    job = runner.add(request, backend)
    sent = run_on(clock, lambda: ledger.get(job.job_id).sent_at, step=0.1)
    ended = run_on(clock, lambda: (j := ledger.get(job.job_id)).final and j, step=5.0)
    assert (ended.state, ended.reason) == ("not_created", "not created")
    assert clock.now - sent > 300.0  # the whole window, on the runner's clock
    looks = len(sim.requests_to("/v2/logs"))
    assert 5 <= looks <= 40, looks  # backing off: 2, 4, 8, 16, 30, 30... seconds apart
    assert sim.creates == 1


def test_leases_are_renewed_every_third_of_a_lease_on_the_runners_clock(on_a_clock):
    """The heartbeat renews this runner's leases when a third of a lease has passed on its
    clock, not before (a poll would renew it too: polls here are 1000 s apart)."""
    runner, ledger, clock, sim, request, backend = on_a_clock(
        lease_seconds=30.0, poll_interval=1000.0
    )
    started = clock.now
    sim.script_outcome("never")  # the job stays at the vendor, held by this runner
    job = runner.add(request, backend)
    wait_for(lambda: ledger.get(job.job_id).generation_id, timeout=30)
    first = ledger.get(job.job_id).lease_until
    assert first == started + 30.0  # ours from its first moment, on the runner's clock
    clock.advance(9.0)
    time.sleep(0.3)  # under a third of a lease on its clock: no beat, whatever the real time
    assert ledger.get(job.job_id).lease_until == first
    run_on(clock, lambda: ledger.get(job.job_id).lease_until > first, step=0.5)
    renewed = ledger.get(job.job_id)
    assert renewed.lease_owner == runner.holder and clock.now - started >= 10.0
    assert renewed.lease_until >= started + 40.0


@pytest.mark.parametrize(
    ("fault", "why"),
    [(Fault.status(401, "Invalid key"), Reason.KEY_OR_MONEY), (Fault.status(404, "Gone"), None)],
)
def test_a_paused_job_says_why_typed(on_a_clock, fault, why):
    """A poll refused for the key pauses the job with ``Reason.KEY_OR_MONEY`` (the CLI's exit
    code reads it, not the note's words); a pause for another cause has no such reason."""
    runner, ledger, clock, sim, request, backend = on_a_clock(poll_interval=1.0)
    sim.script_poll(fault)
    job = runner.add(request, backend)
    run_on(clock, lambda: runner.paused(job.job_id), step=0.5)
    assert runner.paused_for(job.job_id) is why
    assert not ledger.get(job.job_id).final  # kept for its owner


def test_every_write_of_the_runner_is_on_its_clock(on_a_clock):
    """A note (a poll refused: the job is kept for its owner) moves ``updated_at`` on the
    runner's clock, as its transitions do: the retention sweep reads it against that clock."""
    runner, ledger, clock, sim, request, backend = on_a_clock(poll_interval=1.0)
    sim.script_poll(Fault.status(404, "Gone"))
    job = runner.add(request, backend)
    run_on(clock, lambda: runner.paused(job.job_id), step=0.5)
    noted = ledger.get(job.job_id)
    assert "Resume it to check again" in noted.message
    assert noted.created_at <= noted.updated_at <= clock.now  # not the real time


def test_a_waiting_job_keeps_every_image_and_one_with_none_is_sent_too(
    tmp_path, photo, monkeypatch
):
    """A job not yet sent when its runner stopped goes out after a restart with every image
    it was asked with: a last frame, reference images (each a file of its own beside the
    first frame's), and a model that makes video from text, with none, is sent too (they
    were lost, or the job ended "not sent", when only the first frame was kept)."""
    from kling_ui.catalogue import snapshot
    from kling_ui.catalogue.specs import register_snapshot
    from kling_ui.request import SPECS
    from kling_ui.runner.steps import pending_file, save_request

    monkeypatch.setattr("kling_ui.request.SPECS", dict(SPECS))
    register_snapshot(snapshot())
    frame = prepare_image(photo).data_uri
    asked = [
        Request.make("Both frames.", model="runway/gen4_turbo",
                     images={"image": frame, "last_frame": frame}),
        Request.make("From words.", model="klingai/video-v2-6-pro-text-to-video"),
        Request.make("References.", model="bytedance/seedance-2-0",
                     images={"reference_1": frame, "reference_2": frame}),
    ]  # fmt: skip
    clock = ManualClock()
    with Simulator() as sim:
        settings = Settings(base_url=sim.url, api_key=KEY, data_dir=tmp_path / "data")
        backend = Backend("live", settings, KEY, "server")
        ledger = Ledger(DATABASE or tmp_path / "ledger.sqlite3")
        jobs = [ledger.add(r, backend="live", key_ref="server", created_at=clock.now)
                for r in asked]  # fmt: skip
        for job, request in zip(jobs, asked, strict=True):  # as a stopped runner left them
            save_request(settings.data_dir, job.job_id, request)
        runner = Runner(
            settings, ledger, backend_for_ref=lambda name, ref: backend,
            clock=clock, monotonic=clock, wait=clock.wait,
        )  # fmt: skip
        runner.start()
        try:
            run_on(clock, lambda: all(ledger.get(j.job_id).generation_id for j in jobs), step=0.1)
        finally:
            runner.stop()
        bodies = {r.body["prompt"]: r.body for r in sim.requests_to("/v2/video/generations")
                  if r.method == "POST"}  # fmt: skip
    assert bodies["Both frames."]["image_url"].startswith("<image")
    assert bodies["Both frames."]["tail_image_url"].startswith("<image")
    assert "image_url" not in bodies["From words."]
    assert [i.startswith("<image") for i in bodies["References."]["image_urls"]] == [True] * 2
    assert not list(pending_file(settings.data_dir, "x").parent.iterdir())  # sent: gone


@pytest.mark.parametrize("how", ["after a restart", "handed over"])
def test_an_item_whose_image_is_gone_ends_not_sent(tmp_path, how):
    """A waiting item whose image file is gone was never sent: it ends ``not_created`` with
    ``Reason.NOT_SENT`` (nothing made, nothing owed), picked up after a restart or handed to
    a runner that does not pick jobs up; a cancel says ``Reason.CANCELLED``. On its clock."""
    clock = ManualClock()
    with Simulator() as sim:
        settings = Settings(base_url=sim.url, api_key=KEY, data_dir=tmp_path / "data")
        backend = Backend("live", settings, KEY, "server")
        ledger = Ledger(DATABASE or tmp_path / "ledger.sqlite3")
        asked = Request.make("Lost.", images={"image": "https://example.com/a.jpg"})
        lost, kept = (
            ledger.add(asked, backend="live", key_ref="server", created_at=clock.now)
            for _ in range(2)
        )  # rows without their waiting files, as after a crash
        runner = Runner(
            settings, ledger, backend_for_ref=lambda name, ref: backend,
            clock=clock, monotonic=clock, wait=clock.wait,
        )  # fmt: skip
        if how == "handed over":
            runner.start(pick_up=False)
            assert runner.cancel(kept.job_id)
            runner.attach(ledger.get(lost.job_id), backend)
        else:
            runner.start()
        try:
            ended = run_on(clock, lambda: (j := ledger.get(lost.job_id)).final and j, step=0.1)
        finally:
            runner.stop()
        assert (ended.state, ended.reason) == ("not_created", Reason.NOT_SENT)
        assert ended.created_at <= ended.updated_at <= clock.now and sim.creates == 0
        if how == "handed over":
            cancelled = ledger.get(kept.job_id)
            assert (cancelled.state, cancelled.reason) == ("cancelled", Reason.CANCELLED)
            assert cancelled.updated_at <= clock.now


def test_runners_started_at_once_on_one_folder_name_a_key_alike(tmp_path):
    """The secret that names typed keys is made once: runners (replicas) starting together
    on one data folder all read the one that was written first, so a key typed on any of
    them is known as the same key on all."""

    def start_together(settings: Settings, ledger: Ledger, count: int) -> list[str]:
        start = threading.Barrier(count)
        names: list[str] = []

        def one_runner() -> None:
            start.wait()
            names.append(Runner(settings, ledger).key_ref("live", "sk-typed", typed=True))

        threads = [threading.Thread(target=one_runner) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return names

    for attempt in range(5):
        data = tmp_path / f"data-{attempt}"
        ledger = Ledger(tmp_path / f"ledger-{attempt}.sqlite3")
        names = start_together(Settings(api_key=KEY, data_dir=data), ledger, 8)
        assert len(names) == 8 and len(set(names)) == 1, names
        assert (data / "key-ref-secret").read_text().strip()
        assert [p.name for p in data.iterdir()] == ["key-ref-secret"]  # no part file left


def test_with_slots_to_spare_a_job_goes_at_once_though_another_is_ahead_of_it(on_a_clock):
    """Fair shares order the jobs for slots too few for all; with a slot for each, no job
    waits for its turn. Another runner's waiting job (older, from a newcomer: ahead of A's
    in the order) once kept each of A's jobs back a whole poll interval (here 1000 s of a
    clock that never moves: they would never go)."""
    runner, ledger, clock, sim, request, backend = on_a_clock(
        poll_interval=1000.0, max_active_per_key=3
    )
    sim.script_outcome("never", "never")
    elsewhere = ledger.add(
        request, backend=backend.name, key_ref=backend.key_ref, owner="browser:b",
        created_at=clock(), lease=("another-runner", clock() + 10_000),
    )  # fmt: skip
    mine = [runner.add(request, backend, owner="browser:a") for _ in range(2)]
    wait_for(lambda: all(ledger.get(j.job_id).generation_id for j in mine), timeout=30)
    assert sim.creates == 2
    assert ledger.get(elsewhere.job_id).state == "queued_here"  # its own runner sends it


def test_a_waiting_jobs_image_is_kept_as_sent_and_read_back_in_either_form(tmp_path, photo):
    """The image of a job not yet sent is kept beside the ledger until it is sent: read back
    whole, whether kept as it is now (the data URI itself) or as an earlier version kept it
    (JSON); anything else is no image (the job then ends unsent, in words)."""
    from kling_ui.runner.steps import load_request, pending_file, save_request

    ledger = Ledger(tmp_path / "ledger.sqlite3")
    request = Request.make("The river bends.", images={"image": prepare_image(photo).data_uri})
    job = ledger.add(request, backend="live", key_ref="k")
    save_request(tmp_path, job.job_id, request)
    assert load_request(tmp_path, job).image_url == request.image_url
    kept = pending_file(tmp_path, job.job_id)
    kept.write_text(json.dumps({"image_url": request.image_url}))  # an earlier version's
    assert load_request(tmp_path, job).image_url == request.image_url
    for damaged in ('{"image_url": 5}', "{not json", "file:///etc/passwd", ""):
        kept.write_text(damaged)
        assert load_request(tmp_path, job) is None, damaged
    ledger.close()
