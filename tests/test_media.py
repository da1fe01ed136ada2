"""What a past job leaves for the gallery and Remix: its video's poster frame (made when the
MP4 lands, served beside it), the image it was sent with, its settings for its owner, and
how long such videos usually take. Real jobs, through the simulator over loopback HTTP."""

from __future__ import annotations

import base64
import logging
import os
import stat
import time
from pathlib import Path

import av
import pytest
import requests
from apprunner import app_in_process
from PIL import Image, ImageChops, ImageStat

from kling_ui.config import MODEL, Settings
from kling_ui.images import prepare_image
from kling_ui.media import POSTER_LONG_SIDE, make_poster, poster_path
from kling_ui.request import Request
from kling_ui.service import DEMO, LIVE, GenerationService
from kling_ui.simulator import DemoSimulator, Schedule, Simulator

pytestmark = pytest.mark.timeout(120)

KEY = "sk-media-test-7a21"
FAST = Schedule(queued_s=0.05, generating_s=0.1)
RED, BLUE = (230, 30, 40), (20, 40, 220)


def run(iterator):
    return list(iterator)


def make_service(sim: Simulator, data_dir: Path, **settings) -> GenerationService:
    return GenerationService(
        Settings(base_url=sim.url, api_key=KEY, data_dir=data_dir, poll_interval=0.05,
                 retry_backoff=0.0, **settings)
    )  # fmt: skip


def first_frame(video: Path) -> Image.Image:
    with av.open(str(video)) as container:
        return next(container.decode(video=0)).to_image()


def mean(image: Image.Image) -> list[float]:
    return ImageStat.Stat(image.convert("RGB")).mean


@pytest.fixture(scope="module")
def red_then_blue(tmp_path_factory) -> Path:
    """A portrait H.264 clip (720x1280) whose first frame is red and every other blue: a
    poster of any frame but the first has the wrong colour."""
    path = tmp_path_factory.mktemp("clip") / "red-then-blue.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 720, 1280, "yuv420p"
        for colour in [RED] + [BLUE] * 9:
            frame = av.VideoFrame.from_image(Image.new("RGB", (720, 1280), colour))
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture
def clip_sim(red_then_blue):
    with Simulator(schedule=FAST, video_path=red_then_blue) as sim:
        yield sim


@pytest.fixture
def service(clip_sim, tmp_path):
    service = make_service(clip_sim, tmp_path / "data")
    yield service
    service.close()


@pytest.fixture(scope="module")
def other_photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("photo2") / "other.png"
    Image.new("RGB", (600, 900), (200, 120, 30)).save(path)
    return str(path)


# --- poster frames ---------------------------------------------------------------------------


def test_a_finished_video_has_a_poster_of_its_first_frame_at_most_480_px(service, photo):
    final = run(service.generate(photo, Request.make("Red, then blue.")))[-1]
    assert final.phase == "completed"
    poster = poster_path(final.video_path)
    assert poster == final.video_path.with_suffix(".jpg")
    assert poster.is_file()  # made when the MP4 landed, before anyone asked for it
    with Image.open(poster) as image:
        assert image.format == "JPEG"
        assert image.size == (270, 480)  # 720x1280 brought to 480 on the long side
        colour = mean(image)
    assert colour == pytest.approx(mean(first_frame(final.video_path)), abs=4)
    assert colour == pytest.approx(RED, abs=12)  # the first frame, not the blue ones after


def test_a_demo_jobs_poster_matches_its_clips_first_frame(tmp_path, photo):
    """The demo's clip zooms into the job's own image: its first frame is the photo (an
    800x600 green), the poster that frame."""
    settings = Settings(data_dir=tmp_path / "data", poll_interval=0.05)
    demo = DemoSimulator(settings.data_dir, (0.05, 0.1))
    service = GenerationService(settings, demo=demo)
    try:
        final = run(service.generate(photo, Request.make("Clouds.")))[-1]
        job = service.entry(final.job_id)
        assert job.backend == DEMO and final.phase == "completed"
        frame = first_frame(final.video_path)
        frame.thumbnail((POSTER_LONG_SIDE, POSTER_LONG_SIDE))
        with Image.open(poster_path(final.video_path)) as poster:
            assert poster.size == frame.size == (480, 360)
            assert ImageStat.Stat(poster.convert("RGB")).mean[1] > 120  # the green photo
            assert mean(poster) == pytest.approx(mean(frame), abs=3)
            difference = ImageStat.Stat(ImageChops.difference(poster.convert("RGB"), frame))
            assert max(difference.mean) < 6  # pixel by pixel, not only on average
        assert service.poster_url(job) == service.video_url(job).removesuffix(".mp4") + ".jpg"
    finally:
        service.close()
        demo.stop()


def test_the_poster_is_served_beside_the_video_as_a_jpeg(tmp_path, photo):
    with app_in_process(tmp_path, FAST, api_key=KEY, poll_interval=0.05) as app:
        final = run(app.service.generate(photo, Request.make("Served.")))[-1]
        job = app.service.entry(final.job_id)
        poster_url, video_url = app.service.poster_url(job), app.service.video_url(job)
        base = app.url.rstrip("/")
        poster = requests.get(base + poster_url, timeout=10)
        assert poster.status_code == 200
        assert poster.headers["content-type"] == "image/jpeg"
        assert poster.headers["x-content-type-options"] == "nosniff"
        assert poster.content == poster_path(final.video_path).read_bytes()
        video = requests.get(base + video_url, timeout=10)
        assert video.headers["content-type"] == "video/mp4"
        assert video.content == final.video_path.read_bytes()
        # gradio_client's way in: Gradio's file route, with this server's own address.
        via_file = requests.get(f"{base}/gradio_api/file={base}{poster_url}", timeout=10)
        assert via_file.status_code == 200 and via_file.headers["content-type"] == "image/jpeg"
        assert via_file.content == poster.content
        unknown = requests.get(f"{base}/media/{'0' * 32}.jpg", timeout=10)
        assert unknown.status_code == 404


def test_a_video_from_before_posters_gets_one_when_first_asked_for(service, photo):
    final = run(service.generate(photo, Request.make("Old video.")))[-1]
    poster = poster_path(final.video_path)
    poster.unlink()
    job = service.entry(final.job_id)
    url = service.poster_url(job)
    assert url == f"/media/{job.video_token}.jpg" and poster.is_file()
    assert service.media_file(url.removeprefix("/media/")) == (poster, poster.name)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"<html>Access denied</html>",
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\xff" * 4096,
        "header only",  # the sample's ftyp and moov boxes, its frames cut off
        "tail only",  # its second half: frames without the boxes that describe them
    ],
    ids=["empty", "html", "ftyp-then-junk", "header-only", "tail-only"],
)
def test_a_video_that_cannot_be_decoded_gives_no_poster_and_no_error(tmp_path, content):
    sample = (Path(__file__).parent.parent / "assets" / "sample.mp4").read_bytes()
    if content == "header only":
        content = sample[:2000]
    elif content == "tail only":
        content = sample[len(sample) // 2 :]
    video = tmp_path / "broken.mp4"
    video.write_bytes(content)
    assert make_poster(video) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]  # no poster, no tmp


def test_a_missing_video_gives_no_poster(tmp_path):
    assert make_poster(tmp_path / "gone.mp4") is None


def test_a_done_job_whose_video_is_broken_has_no_poster_and_is_tried_once(service, photo, caplog):
    final = run(service.generate(photo, Request.make("Broken later.")))[-1]
    poster_path(final.video_path).unlink()
    final.video_path.write_bytes(b"not an mp4 at all")
    job = service.entry(final.job_id)
    with caplog.at_level(logging.WARNING, logger="kling_ui.media"):
        assert service.poster_url(job) is None
        assert service.poster_url(job) is None  # the next page update: not decoded again
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert caplog.records[0].exc_info is None  # a line in the log, not a traceback
    assert service.media_file(f"{job.video_token}.jpg") is None
    assert service.media_file(f"{job.video_token}.mp4") is not None


# --- the image a job was sent with -------------------------------------------------------------


def prepared_bytes(path: str) -> bytes:
    uri = prepare_image(path).data_uri
    assert uri.startswith("data:image/jpeg;base64,")
    return base64.b64decode(uri.split(",", 1)[1])


def test_a_jobs_input_image_is_kept_as_it_was_prepared_and_private(clip_sim, service, photo):
    final = run(service.generate(photo, Request.make("Kept.")))[-1]
    kept = service.input_image(service.entry(final.job_id))
    assert kept == service.settings.data_dir / "inputs" / f"{final.job_id}.jpg"
    assert kept.read_bytes() == prepared_bytes(photo)
    sent = clip_sim.requests_to("/v2/video/generations")[0].body["image_url"]
    assert sent == f"<image {len(prepare_image(photo).data_uri)} chars>"  # what was sent
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert [p.name for p in kept.parent.iterdir()] == [kept.name]  # no temporary file left


def test_each_batch_job_keeps_its_own_image(clip_sim, service, photo, other_photo):
    out = service.batch([photo, other_photo], "One.\nTwo.", takes=2)
    assert len(out["items"]) == 8
    want = {1: prepared_bytes(photo), 2: prepared_bytes(other_photo)}
    assert want[1] != want[2]
    for item in out["items"]:
        kept = service.input_image(service.entry(item["job_id"]))
        assert kept is not None and kept.read_bytes() == want[item["image"]]
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_an_image_given_by_https_link_is_not_kept(service):
    """The vendor fetches a link itself; the app never had the picture."""
    final = run(service.generate("https://example.com/cat.jpg", Request.make("From a link.")))[-1]
    assert final.phase == "completed"
    assert service.input_image(service.entry(final.job_id)) is None
    assert not (service.settings.data_dir / "inputs").exists()


# --- remix ------------------------------------------------------------------------------------


def test_remix_gives_the_owner_the_jobs_image_and_settings(service, photo):
    asked = Request.make(
        "Again, please.", negative_prompt="blur", duration=10, generate_audio=False
    )
    final = run(service.generate(photo, asked, owner="browser:a"))
    job = service.entry(final[-1].job_id)
    want = {
        "image": service.input_image(job),
        "prompt": "Again, please.",
        "negative_prompt": "blur",
        "duration": 10,
        "generate_audio": False,
        "last_frame": None,  # this model takes none
        "references": [],  # nor reference images
        "model": MODEL,
        "options": {"negative_prompt": "blur", "duration": 10, "generate_audio": False},
    }
    assert want["image"] is not None
    assert service.remix(job.job_id, "browser:a") == want
    assert service.remix(job.generation_id, "browser:a") == want  # by the id a person sees


@pytest.mark.parametrize("owner", ["browser:b", "address:a", ""])
def test_remix_shows_nothing_of_someone_elses_job(service, photo, owner):
    final = run(service.generate(photo, Request.make("Mine."), owner="browser:a"))[-1]
    assert service.remix(final.job_id, owner) is None
    assert service.remix(final.generation_id, owner) is None


def test_remix_of_an_unknown_id_is_none(service):
    assert service.remix("kui-" + "0" * 32, "browser:a") is None
    assert service.remix("", "browser:a") is None


def test_remix_of_a_job_whose_image_is_gone_has_no_image(service, photo):
    final = run(service.generate(photo, Request.make("Image swept."), owner="browser:a"))[-1]
    service.input_image(service.entry(final.job_id)).unlink()
    remix = service.remix(final.job_id, "browser:a")
    assert remix["image"] is None and remix["prompt"] == "Image swept."


# --- retention --------------------------------------------------------------------------------


def test_retention_removes_the_poster_and_the_kept_image_with_the_video(clip_sim, tmp_path, photo):
    service = make_service(clip_sim, tmp_path / "data", keep_days=2)
    try:
        final = run(service.generate(photo, Request.make("Old."), owner="browser:x"))[-1]
        job = service.entry(final.job_id)
        files = [final.video_path, poster_path(final.video_path), service.input_image(job)]
        assert all(f is not None and f.is_file() for f in files)
        service.ledger.add_help(
            "h", "browser:x", key_ref="server", usd=0.001, model="m", at=time.time()
        )  # a prompt suggestion's record, the same age
        assert service.sweep() == 0 and all(f.is_file() for f in files)
        assert service.ledger.helps_since(0, key_ref="server", owner="browser:x") == 1
        assert service.sweep(now=time.time() + 3 * 86400) == 1
        assert [f.exists() for f in files] == [False, False, False]
        assert service.ledger.helps_since(0, key_ref="server", owner="browser:x") == 0
    finally:
        service.close()


# --- how long a video usually takes -----------------------------------------------------------


def finished(ledger, backend: str, duration: int, took: float, *, state: str = "done",
             sent: bool = True) -> None:  # fmt: skip
    """A job in the ledger that took ``took`` seconds from its create to the vendor's end."""
    t0 = 1_000_000.0
    asked = Request.make("p", duration=duration)
    job = ledger.add(asked, backend=backend, created_at=t0 - 7)
    if sent:
        ledger.transition(job.job_id, "submitting", at=t0, sent_at=t0)
    else:  # from before sent_at: counted from the row
        ledger.transition(job.job_id, "submitting", at=t0 - 7)
    ledger.transition(job.job_id, "submitted", at=t0 + 1)
    if state == "failed":
        ledger.transition(job.job_id, "failed", at=t0 + took)
        return
    ledger.transition(job.job_id, "downloading", at=t0 + took)
    ledger.transition(job.job_id, "done", at=t0 + took + 3)  # the download doesn't count


@pytest.fixture
def idle(tmp_path) -> GenerationService:
    """A service whose runner never starts: the ledger is written by hand."""
    service = GenerationService(Settings(data_dir=tmp_path / "idle"), start=False)
    yield service
    service.close()


def test_typical_seconds_is_the_median_of_done_jobs_of_that_backend_and_duration(idle):
    for took in (40, 100, 60, 500):
        finished(idle.ledger, LIVE, 5, took)
    finished(idle.ledger, LIVE, 5, 1, state="failed")  # ended without a video
    finished(idle.ledger, LIVE, 10, 900)  # a longer video
    finished(idle.ledger, DEMO, 5, 2)  # the simulator
    assert idle.typical_seconds(LIVE, 5) == 80.0
    assert idle.typical_seconds(LIVE, 10) == 900.0
    assert idle.typical_seconds(DEMO, 5) == 2.0


def test_typical_seconds_counts_from_the_row_for_jobs_from_before_sent_at(idle):
    finished(idle.ledger, LIVE, 5, 50, sent=False)
    assert idle.typical_seconds(LIVE, 5) == 57.0


def test_typical_seconds_falls_back_to_any_duration_then_to_none(idle):
    assert idle.typical_seconds(LIVE, 5) is None
    fresh = GenerationService(idle.settings, start=False)
    finished(fresh.ledger, LIVE, 10, 90)
    finished(fresh.ledger, LIVE, 10, 30)
    assert fresh.typical_seconds(LIVE, 5) == 60.0
    assert fresh.typical_seconds(DEMO, 5) is None
    fresh.close()


def test_typical_seconds_is_read_from_the_ledger_at_most_every_30_seconds(idle):
    finished(idle.ledger, LIVE, 5, 40)
    assert idle.typical_seconds(LIVE, 5) == 40.0
    finished(idle.ledger, LIVE, 5, 80)
    assert idle.typical_seconds(LIVE, 5) == 40.0  # the page's next second: the same answer
    again = GenerationService(idle.settings, start=False)  # a ledger read of its own
    assert again.typical_seconds(LIVE, 5) == 60.0
    again.close()


def test_the_ledger_keeps_the_50_most_recent_durations(idle):
    for took in range(1, 61):
        finished(idle.ledger, LIVE, 5, float(took))
    assert idle.ledger.durations(LIVE, 5) == [float(t) for t in range(60, 10, -1)]
    assert idle.ledger.durations(LIVE, 5, limit=3) == [60.0, 59.0, 58.0]


def test_a_real_jobs_time_counts_from_its_create_to_the_vendors_end(service, photo):
    final = run(service.generate(photo, Request.make("Timed.")))[-1]
    job = service.entry(final.job_id)
    assert service.typical_seconds(LIVE, 5) == pytest.approx(job.finished_at - job.sent_at)
    assert 0.1 < service.typical_seconds(LIVE, 5) < 10


def test_a_job_leaves_its_video_poster_and_image_and_no_temporary_file(service, photo):
    final = run(service.generate(photo, Request.make("Tidy.")))[-1]
    videos = sorted(p.name for p in service.settings.videos_dir.iterdir())
    assert videos == sorted([final.video_path.name, final.video_path.stem + ".jpg"])
    assert os.listdir(service.settings.data_dir / "inputs") == [f"{final.job_id}.jpg"]
    left = [p.name for p in Path(service.settings.data_dir).rglob("*")]
    assert not [name for name in left if name.endswith((".tmp", ".part"))]
