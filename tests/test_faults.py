"""Every way the API is known to fail, scripted in the simulator and run through the whole app.

Each fault is one row of ``FAULTS``: where it is scripted (create, poll, download, the job's
outcome, or the network), the words a person must read in the status (what happened and
what to do next), and whether the job still completes. For every row the test checks, through
the app's API with gradio_client:

- the status text a person sees, with no traceback in any update;
- how many create requests reached the simulator and how many jobs it accepted (never more
  than one: a fault never makes us pay twice);
- the generation id, when one was issued, is in the ledger and can be resumed;
- the app serves the next request normally.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from apprunner import app_in_process, generate, launch_in_process
from gradio_client import Client

from kling_ui.config import Settings
from kling_ui.simulator import MODEL, DownloadFault, Fault, Schedule, Simulator

pytestmark = pytest.mark.timeout(120)

SERVER_KEY = "sk-faults-server-key-77aa"
CAP = 1_000_000  # the tight app's video size limit; the sample clip is about 340 KB
FAST = Schedule(queued_s=0.05, generating_s=0.15)  # as conftest's `client` sets its app


# --- apps ------------------------------------------------------------------------------------


@dataclass
class App:
    url: str
    sim: Simulator
    service: object
    data_dir: Path
    client: Client = field(repr=False)


@pytest.fixture(scope="module")
def _live(_app_module, client):
    """conftest's app, with its faster job schedule (``client``) so the table runs in seconds."""
    return App(_app_module.url, _app_module.sim, _app_module.service, _app_module.data_dir, client)


@pytest.fixture
def live(_live, live_app):  # live_app resets the simulator's script and records
    return _live


@pytest.fixture(scope="module")
def _tight(tmp_path_factory):
    """An app with short limits: a 1 s create timeout, a 12 s watch deadline, a 1 MB video cap."""
    with app_in_process(
        tmp_path_factory.mktemp("tight-app"),
        FAST,
        api_key=SERVER_KEY,
        poll_interval=0.1,
        create_read_timeout=1.0,
        watch_deadline=12.0,
        lookup_window=10.0,
        max_video_bytes=CAP,
    ) as app:
        client = Client(app.url, verbose=False, download_files=False)
        yield App(app.url, app.sim, app.service, app.data_dir, client)


@pytest.fixture
def tight(_tight):
    _tight.sim.reset()
    return _tight


@pytest.fixture
def down(tmp_path, refusing_port):
    """An app whose API address has nothing listening; ``down.sim`` starts it there later."""
    port = refusing_port
    settings = Settings(
        base_url=f"http://127.0.0.1:{port}",
        api_key=SERVER_KEY,
        data_dir=tmp_path / "down-app",
        poll_interval=0.1,
        retry_backoff=0.01,
        retry_after_cap=0.05,
    )
    page, service = launch_in_process(settings)
    sim = Simulator(port=port, schedule=FAST)  # not started: the port refuses connections
    try:
        yield App(
            page.local_url,
            sim,
            service,
            settings.data_dir,
            Client(page.local_url, verbose=False, download_files=False),
        )
    finally:
        sim.stop()
        page.close()


# --- through the API -------------------------------------------------------------------------


def resume(app: App, gid: str) -> list[tuple]:
    job = app.client.submit(generation_id=gid, api_key="", api_name="/resume")
    job.result()
    return [tuple(o) for o in job.outputs()]


def assert_delivered(outputs: list[tuple]) -> None:
    """The last update says completed and hands over an MP4 the app serves."""
    _, status, video = outputs[-1]
    assert status.startswith("Status: completed"), status
    assert isinstance(video, dict), video  # the clients here leave files on the server
    # The video's address: this app's /media/ route, 128 random bits, no server path.
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/media/[0-9a-f]{32}\.mp4", video["url"])
    served = requests.get(video["url"], timeout=10)
    assert served.status_code == 200 and served.content[4:8] == b"ftyp"


def assert_next_request_is_served(app: App, photo: str) -> None:
    app.sim.reset()
    jobs_before = len(app.sim.jobs)
    outputs = generate(app.client, photo, prompt="A calm pond; a leaf drifts across it.")
    assert_delivered(outputs)
    assert app.sim.creates == 1 and len(app.sim.jobs) == jobs_before + 1


# --- the table of faults ---------------------------------------------------------------------

# The vendor's answer to a body it rejects, as its 4xx page documents it.
VALIDATION = (
    "Body validation error! prompt: expected string of at most 2500 characters, received 2617"
)
OUTCOME_UNKNOWN = ("can't tell whether the generation was accepted", "dashboard", "pay twice")


def video_elsewhere(sim: Simulator) -> str:
    """A signed link to a finished job's video on another host name (localhost)."""
    response = requests.post(
        sim.url + "/v2/video/generations",
        json={"model": MODEL, "prompt": "redirect target", "image_url": "https://x.test/a.jpg"},
        headers={"Authorization": f"Bearer {SERVER_KEY}"},
        timeout=5,
    )
    gid = response.json()["id"]
    sim.complete_now(gid)
    url = sim.job(gid)["video"]["url"]
    assert "127.0.0.1" in url
    return url.replace("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Case:
    """One fault: how to script it and what a person must get."""

    id: str
    where: str  # create, poll, download, outcome, network
    script: Callable[[Simulator], None]
    words: tuple[str, ...]  # in the last status text (case-insensitive)
    final: str  # the last status's first line starts with "Status: <final>"
    creates: int = 1  # create POSTs that reached the simulator
    jobs: int = 0  # jobs the simulator accepted (never more than one)
    seen: tuple[str, ...] = ()  # words in some status update along the way
    resume: str | None = None  # the /resume result once the fault is gone
    app: str = "live"  # live, tight or down
    ledger: str | None = None  # the ledger's status afterwards, when not the obvious one
    before_resume: Callable[[Simulator, str], None] | None = None

    @property
    def completes(self) -> bool:
        return self.final == "completed"

    @property
    def issues_id(self) -> bool:
        """The vendor gave the job an id (else it is known by ours alone)."""
        return self.where not in ("create", "network") or self.completes

    @property
    def ledger_state(self) -> str:
        if self.ledger:
            return self.ledger
        return {
            "completed": "done",
            "refused": "not_created",
            "not sent": "not_created",
            "not created": "not_created",
        }.get(self.final, self.final)


FAULTS = [
    # --- at create: nothing is accepted, or we say we can't tell -----------------------------
    Case(
        "create-400-validation",
        "create",
        lambda s: s.script_create(Fault.status(400, VALIDATION)),
        ("rejected the request", "Check the fields", VALIDATION, "request id"),
        "refused",
    ),
    Case(
        "create-401",
        "create",
        lambda s: s.script_create(Fault.status(401)),
        ("API key was missing or not accepted", "Enter a valid AIML API key"),
        "refused",
    ),
    Case(
        "create-403-out-of-credits",
        "create",
        lambda s: s.script_create(Fault.status(403, "Insufficient balance")),
        ("out of credits", "Top up", "Insufficient balance"),
        "refused",
    ),
    Case(
        "create-404",
        "create",
        lambda s: s.script_create(Fault.status(404, "Cannot POST /v2/video/generations")),
        ("address was not found", "AIMLAPI_BASE_URL"),
        "refused",
    ),
    Case(
        "create-429-retry-after",
        "create",
        lambda s: s.script_create(Fault.rate_limit(retry_after=1)),
        (),
        "completed",
        creates=2,
        jobs=1,
    ),
    Case(
        "create-429-no-retry-after",
        "create",
        lambda s: s.script_create(Fault.rate_limit(retry_after=None)),
        (),
        "completed",
        creates=2,
        jobs=1,
    ),
    Case(
        "create-429-persisting",
        "create",
        lambda s: s.script_create(*[Fault.rate_limit(retry_after=1)] * 4),
        ("video is ready",),  # turned away 4 times: nothing made, so it waits its turn again
        "completed",
        creates=5,
        jobs=1,
    ),
    Case(
        "create-500",
        "create",
        lambda s: s.script_create(Fault.status(500)),
        ("not created", "usage log", "not charged", "Resume by id"),
        "not created",
        seen=("HTTP 500", *OUTCOME_UNKNOWN),  # while it was looked for in the usage log
    ),
    Case(
        "create-502",
        "create",
        lambda s: s.script_create(Fault.status(502, "Bad gateway")),
        ("not created", "usage log", "not charged", "Resume by id"),
        "not created",
        seen=("HTTP 502", *OUTCOME_UNKNOWN),  # while it was looked for in the usage log
    ),
    Case(
        "create-503-maintenance",
        "create",
        lambda s: s.script_create(Fault.status(503, "Service unavailable")),
        (),
        "completed",
        creates=2,
        jobs=1,
    ),
    Case(
        "create-503-persisting",
        "create",
        lambda s: s.script_create(*[Fault.status(503, "Service unavailable")] * 4),
        ("video is ready",),  # as 429: a 503 says nothing was taken
        "completed",
        creates=5,
        jobs=1,
    ),
    Case(
        "create-504-gateway-timeout",
        "create",
        lambda s: s.script_create(Fault.status(504, "Gateway timeout")),
        ("not created", "usage log", "not charged", "Resume by id"),
        "not created",
        seen=("gateway timed out", *OUTCOME_UNKNOWN),  # while it was looked for in the usage log
    ),
    Case(
        "create-connection-refused",
        "network",
        lambda s: None,  # the down app's simulator is not listening yet
        ("Could not reach the API", "nothing was submitted", "try again"),
        "not sent",
        creates=0,
        app="down",
    ),
    Case(
        "create-dropped-after-send",
        "create",
        lambda s: s.script_create(Fault.drop()),
        ("not created", "usage log", "not charged", "Resume by id"),
        "not created",
        seen=(
            "connection broke after the request was sent",
            *OUTCOME_UNKNOWN,
        ),  # while it was looked for in the usage log
    ),
    Case(
        "create-created-then-dropped",
        "create",
        lambda s: s.script_create(Fault.create_then_drop()),
        ("video is ready", "Recovered"),
        "completed",
        jobs=1,
        seen=("connection broke after the request was sent",),
    ),
    Case(
        "create-slower-than-timeout",
        "create",
        lambda s: s.script_create(Fault.slow(3)),
        ("video is ready", "Recovered"),
        "completed",
        jobs=1,  # the slow answer did create the job: exactly why we must not re-send
        seen=("did not answer in time", *OUTCOME_UNKNOWN),
        app="tight",
    ),
    Case(
        "create-200-non-json",
        "create",
        lambda s: s.script_create(Fault.non_json(200)),
        ("not created", "usage log", "not charged", "Resume by id"),
        "not created",
        seen=(
            "without a generation id",
            *OUTCOME_UNKNOWN,
        ),  # while it was looked for in the usage log
    ),
    Case(
        "create-200-without-id",
        "create",
        lambda s: s.script_create(Fault.no_id()),
        ("video is ready", "Recovered"),
        "completed",
        jobs=1,
        seen=("without a generation id", *OUTCOME_UNKNOWN),
    ),
    # --- while polling: the id is known, the job is never lost ---------------------------------
    Case(
        "poll-429-storm",
        "poll",
        lambda s: s.script_poll(*[Fault.rate_limit(retry_after=1)] * 10),
        ("video is ready",),
        "completed",
        jobs=1,
        seen=("limiting requests", "Still watching"),
    ),
    Case(
        "poll-5xx-burst",
        "poll",
        lambda s: s.script_poll(*[Fault.status(c) for c in (500, 502, 503, 500, 502, 503, 500)]),
        ("video is ready",),
        "completed",
        jobs=1,
        seen=("server problem", "Still watching"),
    ),
    Case(
        "poll-non-json",
        "poll",
        lambda s: s.script_poll(Fault.non_json(200), Fault.non_json(200)),
        ("video is ready",),
        "completed",
        jobs=1,
        seen=("unreadable answer", "Still watching"),
    ),
    Case(
        "poll-404-for-the-id",
        "poll",
        lambda s: s.script_poll(Fault.status(404, "Generation not found")),
        ("does not know this generation id", "copied whole"),
        "paused",
        jobs=1,
        resume="completed",  # the 404 was passing: the job is there after all
        ledger="submitted",
    ),
    Case(
        "poll-401-key-revoked",
        "poll",
        lambda s: s.script_poll(Fault.status(401)),
        ("API key was missing or not accepted", "Resume it"),
        "paused",
        ledger="submitted",
        jobs=1,
        resume="completed",
    ),
    Case(
        "poll-504-generation-timeout",
        "poll",
        lambda s: s.script_poll(*[Fault.status(504, "Gateway timeout")] * 7),
        ("generation timeout", "not charged"),
        "failed",
        jobs=1,
    ),
    Case(
        "poll-unknown-status",
        "poll",
        lambda s: s.script_poll(Fault.weird_status("paused")),
        ("video is ready",),
        "completed",
        jobs=1,
        seen=("status we don't know ('paused')", "still watching"),
    ),
    Case(
        "poll-connection-dropped",
        "poll",
        lambda s: s.script_poll(*[Fault.drop()] * 8),
        ("video is ready",),
        "completed",
        jobs=1,
        seen=("Lost contact with the API", "keep trying"),
    ),
    Case(
        "outcome-error-moderation",
        "outcome",
        lambda s: s.script_outcome("error"),
        ("failed at the vendor", "not charged", "content moderation", "adjust the prompt"),
        "failed",
        jobs=1,
        resume="failed",
    ),
    Case(
        "outcome-never-finishes",
        "outcome",
        lambda s: s.script_outcome("never"),
        ("Stopped watching", "may still finish", "use Resume"),
        "stopped",
        ledger="queued|generating",
        jobs=1,
        resume="completed",
        app="tight",
        before_resume=lambda s, gid: s.complete_now(gid),
    ),
    # --- at download: the job is done and paid for; resuming fetches it ------------------------
    Case(
        "download-403",
        "download",
        lambda s: s.script_download(DownloadFault.status(403)),
        ("video is ready",),
        "completed",
        jobs=1,
        # One refused download: fetched again with a fresh link, no one needed.
        seen=(),
    ),
    Case(
        "download-403-persisting",
        "download",
        lambda s: s.script_download(*[DownloadFault.status(403)] * 3),
        ("refused the download (HTTP 403)", "Resume the job"),
        "paused",
        ledger="downloading",
        jobs=1,
        resume="completed",
    ),
    Case(
        "download-404",
        "download",
        lambda s: s.script_download(DownloadFault.status(404)),
        ("video is ready",),
        "completed",
        jobs=1,
        # One refused download: fetched again with a fresh link, no one needed.
        seen=(),
    ),
    Case(
        "download-redirect-other-host",
        "download",
        lambda s: s.script_download(DownloadFault.redirect(video_elsewhere(s))),
        ("video is ready",),
        "completed",
        jobs=1,
    ),
    Case(
        "download-truncated",
        "download",
        lambda s: s.script_download(DownloadFault.truncated()),
        ("video is ready",),
        "completed",
        jobs=1,
        # One refused download: fetched again with a fresh link, no one needed.
        seen=(),
    ),
    Case(
        "download-not-mp4",
        "download",
        lambda s: s.script_download(DownloadFault.not_mp4()),
        ("video is ready",),
        "completed",
        jobs=1,
        # One refused download: fetched again with a fresh link, no one needed.
        seen=(),
    ),
    Case(
        "download-over-the-cap",
        "download",
        lambda s: s.script_download(DownloadFault.huge(5 * CAP)),
        ("video is ready",),
        "completed",
        jobs=1,
        app="tight",
        # One refused download: fetched again with a fresh link, no one needed.
        seen=(),
    ),
]


def test_the_table_has_at_least_20_distinct_faults_in_every_place():
    ids = [case.id for case in FAULTS]
    assert len(set(ids)) == len(ids) >= 20
    assert {case.where for case in FAULTS} == {"create", "poll", "download", "outcome", "network"}


@pytest.mark.parametrize("case", FAULTS, ids=[c.id for c in FAULTS])
def test_fault(case: Case, photo, request):
    app: App = request.getfixturevalue(case.app)
    sim = app.sim
    case.script(sim)  # (may itself make a job to redirect to: counted from here on)
    creates_before, jobs_before = sim.creates, len(sim.jobs)
    ledger_before = len(app.service.ledger.recent(10_000))

    outputs = generate(app.client, photo)
    statuses = [status for _, status, _ in outputs]
    gid, status, video = outputs[-1]

    # The message a person sees: category, the vendor's words, the next step; no traceback.
    assert status.splitlines()[0].startswith(f"Status: {case.final}"), status
    for words in case.words:
        assert words.lower() in status.lower(), (words, status)
    for words in case.seen:
        assert any(words.lower() in s.lower() for s in statuses), (words, statuses)
    for text in statuses:
        assert "Traceback" not in text and 'File "' not in text
        assert "Something went wrong on our side" not in text  # no bug of ours surfaced

    # Nothing paid twice: create requests that reached the API, and jobs it accepted.
    if case.id == "create-slower-than-timeout":  # the slow answer lands after we gave up
        deadline = time.monotonic() + 5
        while len(sim.jobs) == jobs_before and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sim.creates - creates_before == case.creates
    assert len(sim.jobs) - jobs_before == case.jobs <= 1

    if case.completes:
        assert_delivered(outputs)
    else:
        assert video is None

    # Every click is one job in the ledger, written before its create and shown by our id at
    # once; the vendor's id, where one was issued, from the create's answer on.
    (job,) = app.service.ledger.recent(1)  # this click's (the suite runs one at a time)
    ours = job.job_id
    assert ours.startswith("kui-") and outputs[0][0] in (ours, gid)
    job = app.service.entry(ours)
    assert job is not None and job.prompt == "The meadow sways in the wind."
    assert job.state in case.ledger_state.split("|"), job
    if case.issues_id:
        assert gid and gid in sim.jobs and job.generation_id == gid
        assert all(o[0] in (ours, gid) for o in outputs)
    else:
        assert gid == ours and job.generation_id is None
    assert len(app.service.ledger.recent(10_000)) - ledger_before == 1

    # Resuming by id once the fault is gone: delivers the video, or repeats the vendor's word.
    if case.resume:
        sim.reset()
        if case.before_resume:
            case.before_resume(sim, gid)
        again = resume(app, gid)
        if case.resume == "completed":
            assert_delivered(again)
            assert app.service.entry(gid).state == "done"
        else:
            assert again[-1][1].startswith(f"Status: {case.resume}")
        assert sim.creates == 0  # a resume never creates

    # The app serves the next request normally (for the down app: once the API is up).
    if case.app == "down":
        sim.start()
    assert_next_request_is_served(app, photo)


# --- beyond the table ------------------------------------------------------------------------


def test_redirected_download_never_carries_the_key(live, photo):
    target = video_elsewhere(live.sim)
    live.sim.reset()
    live.sim.script_download(DownloadFault.redirect(target))
    assert_delivered(generate(live.client, photo))
    files = live.sim.requests_to("/files/")
    assert len(files) == 2  # the CDN link, then the other host it sent us to
    assert files[1].headers.get("host", "").startswith("localhost:")
    for request in files:
        assert "authorization" not in request.headers
        assert SERVER_KEY not in repr(request)
    key = live.service.settings.api_key
    api = [r for r in live.sim.requests if r.path == "/v2/video/generations"]
    assert api and all(r.headers["authorization"] == f"Bearer {key}" for r in api)
    assert all(key not in repr(r) for r in files)
