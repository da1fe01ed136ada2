"""Longer videos: continuing a finished video from its last frame, and the chain stitched
into one MP4. Through the service, the runner and the real client against the simulator's
zoom clips (each clip's last frame is known), and ``media.stitch`` on its own for both of
its ways: packets copied, or everything encoded again."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from kling_ui import errors, media
from kling_ui.chains import LONG_CHAIN_S, Continuation
from kling_ui.config import Settings
from kling_ui.history import Job
from kling_ui.provenance import read as read_settings
from kling_ui.request import Request
from kling_ui.service import GenerationService
from kling_ui.simulator import Schedule, Simulator

KEY = "sk-chain-test-2b7e"
FRAME = 1 / 24


@pytest.fixture(scope="module")
def sim():
    with Simulator(schedule=Schedule(0.2, 0.4), clips="zoom") as simulator:
        yield simulator


def make_service(sim, data_dir: Path) -> GenerationService:
    settings = Settings(api_key=KEY, base_url=sim.url, data_dir=data_dir, poll_interval=0.1)
    return GenerationService(settings)


@pytest.fixture
def service(sim, tmp_path):
    svc = make_service(sim, tmp_path / "data")
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> str:
    """A picture whose middle differs from its whole: quarters of four colours, a ring."""
    image = Image.new("RGB", (960, 540), (20, 40, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 480, 270), fill=(230, 40, 40))
    draw.rectangle((480, 270, 960, 540), fill=(40, 200, 60))
    draw.ellipse((330, 120, 630, 420), outline=(255, 255, 255), width=40)
    path = tmp_path_factory.mktemp("chain") / "quarters.jpg"
    image.save(path, quality=95)
    return str(path)


def finish(updates) -> object:
    last = list(updates)[-1]
    assert last.phase == "completed", last
    return last


def difference(a: Image.Image, b: Image.Image) -> float:
    """The mean difference of two pictures per channel, 0-255 (b scaled to a's size)."""
    b = b.convert("RGB").resize(a.size)
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b)).mean) / 3


def sound_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        return float(audio.duration * audio.time_base)


def frames_in(path: Path) -> int:
    """The frames a player shows: a frame on screen for under half a frame's time (the
    repeated first frame of a later part, kept for decoding) is not counted."""
    with av.open(str(path)) as container:
        times = [f.time for f in container.decode(video=0)]
    ends = times[1:] + [media.video_seconds(path)]
    return sum(1 for start, end in zip(times, ends, strict=True) if end - start > FRAME / 2)


def test_a_continuation_is_sent_the_last_frame(service, sim, picture):
    first = finish(service.generate(picture, Request.make("Zoom in.", duration=5)))
    start = service.continue_from(first.generation_id)
    clip_end = media.last_frame(first.video_path)
    clip_start = media._first_frame(first.video_path)
    assert difference(clip_end, clip_start) > 12  # the last frame is not the first
    assert difference(clip_end, Image.open(start.frame)) < 4
    second = finish(
        service.generate(
            str(start.frame), Request.make("Zoom further."), parent_id=start.parent.job_id
        )
    )
    sent = Image.open(__import__("io").BytesIO(sim.image_of(second.generation_id)))
    assert difference(clip_end, sent) < 6  # the create carried the last frame (JPEG twice)
    assert difference(clip_start, sent) > 12


def test_the_chain_is_one_video_the_length_of_its_parts(service, picture):
    a = finish(service.generate(picture, Request.make("Part one.", duration=5)))
    b = finish(service.extend(a.generation_id, Request.make("Part two.", duration=10)))
    c = finish(service.extend(b.generation_id, Request.make("Part three.", duration=5)))
    assert c.video_path.name.endswith("-chain.mp4") and c.video_url.endswith(".chain.mp4")
    assert "3 parts" in c.message
    seconds = media.video_seconds(c.video_path)
    assert seconds == pytest.approx(20 - 2 * FRAME, abs=FRAME)
    assert frames_in(c.video_path) == 20 * 24 - 2
    assert abs(sound_seconds(c.video_path) - seconds) < 0.05
    job = service.entry(c.generation_id)
    prompts = [p.prompt for p in service.chains.parts(job)]
    assert prompts == ["Part one.", "Part two.", "Part three."]
    found = service.media_file(c.video_url.removeprefix("/media/"))
    assert found is not None and found[0] == c.video_path


def test_a_chain_survives_a_restart_and_is_stitched_again(sim, tmp_path, picture):
    data = tmp_path / "data"
    service = make_service(sim, data)
    try:
        a = finish(service.generate(picture, Request.make("One.", duration=5)))
        b = finish(service.extend(a.generation_id, Request.make("Two.", duration=5)))
        c = finish(service.extend(b.generation_id, Request.make("Three.", duration=5)))
    finally:
        service.close()
    c.video_path.unlink()  # the stitched file is gone: the ledger knows the chain
    again = make_service(sim, data)
    try:
        job = again.entry(c.generation_id)
        update = again.progress(job)
    finally:
        again.close()
    assert update.video_path is not None and update.video_path.is_file()
    assert media.video_seconds(update.video_path) == pytest.approx(15 - 2 * FRAME, abs=FRAME)


def test_what_cannot_be_continued_is_said_in_words(service, sim, picture):
    sim.script_outcome("error")
    failed = list(service.generate(picture, Request.make("Fails.", duration=5)))[-1]
    with pytest.raises(errors.InputError, match="failed"):
        service.continue_from(failed.generation_id)
    sim.script_outcome("never")
    running = service.generate(picture, Request.make("Never ends.", duration=5))
    gid = next(u.generation_id for u in running if u.generation_id.count("-") >= 4)
    with pytest.raises(errors.InputError, match="hasn't finished"):
        service.continue_from(gid)
    done = finish(service.generate(picture, Request.make("Gone.", duration=5)))
    Path(service.entry(done.generation_id).video_path).unlink()
    with pytest.raises(errors.InputError, match="no longer kept"):
        service.continue_from(done.generation_id)
    with pytest.raises(errors.NotFoundError):
        service.continue_from("27f25c85-e9db-44e9-909a-0c3ceb35cdd9")
    before = sim.creates
    with pytest.raises(errors.InputError):  # a parent that can't be continued: nothing sent
        list(service.generate(picture, Request.make("No."), parent_id=service.entry(gid).job_id))
    assert sim.creates == before


def test_past_three_minutes_is_a_warning_not_a_refusal():
    def part(n: int) -> Job:
        return Job(f"kui-{n}", None, None, 0, 0, "live", "", "p", "", 10, True, "done")

    parts = [part(n) for n in range(LONG_CHAIN_S // 10)]
    start = Continuation(parts[-1], Path("frame.jpg"), parts)
    assert "pass 3 minutes" in start.words(10)
    assert "pass" not in Continuation(parts[0], Path("f.jpg"), parts[:2]).words(10)


# --- media.stitch on its own ------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory, picture):
    """Zoom clips as the simulator makes them: two alike, one of another size, one silent."""
    folder = tmp_path_factory.mktemp("clips")
    data = Path(picture).read_bytes()
    wide = folder / "wide.jpg"
    Image.open(picture).resize((960, 400)).save(wide)
    return {
        "a": media.zoom_clip(data, 5, folder / "a.mp4"),
        "b": media.zoom_clip(data, 10, folder / "b.mp4", tone_hz=660),
        "wide": media.zoom_clip(wide.read_bytes(), 5, folder / "wide.mp4"),
        "silent": media.zoom_clip(data, 5, folder / "silent.mp4", audio=False),
    }


def test_stitching_alike_parts_copies_the_packets(clips, tmp_path):
    parts = [clips["a"], clips["b"], clips["a"]]
    done = media.stitch(parts, tmp_path / "copy.mp4")
    assert done.method == "copy"
    assert done.seconds == pytest.approx(20 - 2 * FRAME, abs=FRAME)
    assert frames_in(done.path) == 20 * 24 - 2
    assert abs(sound_seconds(done.path) - done.seconds) < 0.05
    # The join shows the second part's second frame right after the first part's last.
    with av.open(str(done.path)) as container:
        times = [f.time for f in container.decode(video=0)]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))


def test_stitching_unlike_parts_encodes_them_again(clips, tmp_path):
    done = media.stitch([clips["a"], clips["wide"], clips["silent"]], tmp_path / "enc.mp4")
    assert done.method == "encode"
    assert done.seconds == pytest.approx(15 - 2 * FRAME, abs=FRAME)
    with av.open(str(done.path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (640, 360)
    assert abs(sound_seconds(done.path) - done.seconds) < 0.05  # silence for the silent part


def test_a_part_that_is_not_a_video_is_refused(clips, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(1000))
    with pytest.raises(ValueError):
        media.stitch([clips["a"], junk], tmp_path / "no.mp4")
    assert not (tmp_path / "no.mp4").exists()
    assert media.last_frame(junk) is None


# --- the API for programs: /extend ------------------------------------------------------


def test_extend_through_a_default_gradio_client_downloads_the_chain(live_app, photo):
    """As the README's example does it: gradio_client fetches the stitched MP4 itself."""
    from apprunner import generate
    from gradio_client import Client

    client = Client(live_app.url, verbose=False)  # downloads every output file
    first = generate(client, photo)[-1]
    gid, status, video = client.predict(
        generation_id=first[0], prompt="Then the sun sets.", negative_prompt="", duration=5,
        generate_audio=True, api_key="", api_name="/extend",
    )  # fmt: skip
    assert status.startswith("Status: completed"), status
    path = Path(video["video"] if isinstance(video, dict) else video)
    assert path.is_file() and path.name.endswith(".mp4")
    assert media.video_seconds(path) == pytest.approx(10 - FRAME, abs=FRAME)


def test_extend_for_programs_streams_to_the_whole_chain(client, live_app, photo):
    """``/extend`` through gradio_client on the app launched as app.py launches it: the
    next part of a finished video, its last update's video the chain (the simulator's sample
    clip twice, less the repeated frame)."""
    from apprunner import generate

    first = generate(client, photo)[-1]
    assert first[1].startswith("Status: completed")
    job = client.submit(
        generation_id=first[0], prompt="And then it rains.", negative_prompt="", duration=5,
        generate_audio=True, api_key="", api_name="/extend",
    )  # fmt: skip
    job.result()
    gid, status, video = job.outputs()[-1]
    assert status.startswith("Status: completed"), status
    assert gid != first[0]
    url = video["url"] if isinstance(video, dict) else video
    assert str(url).endswith(".chain.mp4")
    path = live_app.service.entry(gid).video_path
    chained = Path(path).with_name(Path(path).stem + "-chain.mp4")
    assert media.video_seconds(chained) == pytest.approx(10 - FRAME, abs=FRAME)


def test_extend_refuses_what_cannot_be_continued_in_words(client, live_app, photo):
    sent = live_app.sim.creates
    job = client.submit(
        generation_id="27f25c85-e9db-44e9-909a-0c3ceb35cdd9", prompt="More.", negative_prompt="",
        duration=5, generate_audio=True, api_key="", api_name="/extend",
    )  # fmt: skip
    job.result()
    gid, status, video = job.outputs()[-1]
    assert "No video with that id" in status and video is None
    assert live_app.sim.creates == sent


# --- the page's handlers --------------------------------------------------------------------


def test_the_page_continues_only_its_own_finished_videos(service, picture):
    from kling_ui.ui.handlers import Handlers

    handlers = Handlers(service)
    mine, theirs = "a" * 32, "b" * 32
    owner = service.visitor(mine, None)
    done = finish(
        service.generate(picture, Request.make("Mine [a](javascript:x) *bold*"), owner=owner)
    )
    image, parent, note, again = handlers.continue_video(done.generation_id, 5, mine)
    assert Path(image).is_file() and parent == service.entry(done.generation_id).job_id
    assert note["value"].startswith("Continuing") and again["visible"] is True
    assert "](javascript" not in note["value"]  # the prompt's words, never a link
    # Another browser's video: words, and the form left as it was.
    other = handlers.continue_video(done.generation_id, 5, theirs)
    assert "Pick a finished video first" in other[2]["value"]
    assert not isinstance(other[0], str) and not isinstance(other[1], str)  # skipped

    more = finish(
        service.generate(
            image, Request.make("Next [x](http://evil)"), owner=owner, parent_id=parent
        )
    )
    view = handlers.chain_view(more.generation_id, mine)
    assert "Chain of 2 parts: 10 s, $1.40" in view
    assert "](javascript" not in view and "](http://evil" not in view  # words, never links
    assert view.count("download part") == 2 and "download the whole video" in view
    assert handlers.chain_view(more.generation_id, theirs) == ""
    cleared = handlers.continued(more.generation_id, service.entry(more.generation_id).parent_id)
    assert cleared[0] == "" and cleared[1]["visible"] is False


def _part(path: Path, seconds: float, fps: int, sound_s: float | None, colour) -> Path:
    """A small H.264/AAC clip: ``seconds`` of one colour at ``fps``, ``sound_s`` of tone."""
    import numpy as np

    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        sound = out.add_stream("aac", rate=44100, layout="mono") if sound_s else None
        picture = np.zeros((240, 320, 3), np.uint8) + np.array(colour, np.uint8)
        for n in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = n
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            samples = np.sin(np.arange(round(sound_s * 44100)) / 10).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = samples[start : start + 1024][None, :]
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 44100, start
                out.mux(sound.encode(frame))
            out.mux(sound.encode())
    return path


def test_parts_whose_sound_is_shorter_than_their_picture_are_encoded_in_step(tmp_path):
    """Copying packets would let the sound slip at each join by what it lacks: such parts
    are encoded again, each part's sound padded to its picture."""
    parts = [_part(tmp_path / f"p{n}.mp4", 2.0, 24, 1.6, (200, 40, 40)) for n in range(4)]
    done = media.stitch(parts, tmp_path / "out.mp4")
    assert done.method == "encode"
    assert done.seconds == pytest.approx(8 - 3 * FRAME, abs=FRAME)
    assert abs(sound_seconds(done.path) - done.seconds) < 0.05


def test_a_part_at_another_frame_rate_keeps_its_speed(tmp_path):
    """A 30 fps part in a 24 fps chain lasts as long as it did, not 25 % longer."""
    first = _part(tmp_path / "a.mp4", 2.0, 24, 2.0, (200, 40, 40))
    faster = _part(tmp_path / "b.mp4", 2.0, 30, 2.0, (40, 200, 40))
    done = media.stitch([first, faster], tmp_path / "out.mp4")
    assert done.method == "encode"
    assert done.seconds == pytest.approx(4 - 1 / 30, abs=FRAME)
    assert abs(sound_seconds(done.path) - done.seconds) < 0.05


def test_a_simulated_video_is_not_continued_for_real(tmp_path, picture):
    """A chain is simulated or real throughout: a demo video continued with a typed key is
    refused before anything is sent or paid."""
    from kling_ui.simulator import DemoSimulator

    settings = Settings(data_dir=tmp_path / "data", poll_interval=0.05, demo=True)
    demo = DemoSimulator(settings.data_dir, (0.05, 0.1))
    service = GenerationService(settings, demo=demo)
    try:
        made = finish(service.generate(picture, Request.make("Simulated.")))
        start = service.continue_from(made.generation_id)
        with pytest.raises(errors.InputError, match="simulated in demo mode"):
            list(
                service.generate(
                    str(start.frame),
                    Request.make("For real."),
                    api_key="sk-real-key-77",
                    parent_id=start.parent.job_id,
                )
            )
        assert len(service.ledger.recent()) == 1
    finally:
        service.close()
        demo.stop()


def test_a_chain_keeps_its_parts_and_one_stitched_copy(service, picture):
    """Each continuation used to keep a stitched file of the whole chain so far: disk grew
    with the square of the chain's length. Now: the parts, and the latest chain's copy."""
    parts = [finish(service.generate(picture, Request.make("Part one.", duration=5)))]
    for n in range(2, 5):
        parts.append(
            finish(service.extend(parts[-1].generation_id, Request.make(f"Part {n}.", duration=5)))
        )
    videos = service.settings.videos_dir

    def stitched() -> list[Path]:
        return sorted(videos.glob("*-chain.mp4"))

    assert stitched() == [parts[-1].video_path]  # the four-part chain's, and no other
    made = read_settings(parts[-1].video_path)  # the whole carries how it was made
    short = tuple(service.entry(p.generation_id).short_id for p in parts)
    assert made.parts == short and made.prompt == "Part 4."
    for part in parts:  # the page shows every part (the gallery): nothing is stitched again
        service.progress(service.entry(part.generation_id))
    assert stitched() == [parts[-1].video_path]
    # An older chain asked for by its address is made again from the ledger, and the line
    # still keeps one copy.
    second = service.entry(parts[1].generation_id)
    found = service.media_file(service.chain_url(second).removeprefix("/media/"))
    assert found is not None and media.video_seconds(found[0]) == pytest.approx(
        10 - FRAME, abs=FRAME
    )
    assert stitched() == [found[0]]
    again = service.progress(service.entry(parts[-1].generation_id))
    assert stitched() == [again.video_path] == [parts[-1].video_path]


def test_viewing_a_chain_never_writes_the_ledger_nor_stitches(service, picture):
    """The picked video's chain is read, not made: the view of an earlier chain (whose
    stitched copy a longer chain's removed) offers the whole video without stitching it, a
    part from before video addresses gets none from being looked at, and the ledger's rows
    are as they were. The whole video is stitched when its address is asked for."""
    import re
    from dataclasses import asdict

    from kling_ui.ui.handlers import Handlers

    handlers, token = Handlers(service), "c" * 32
    owner = service.visitor(token, None)
    parts = [finish(service.generate(picture, Request.make("Part one."), owner=owner))]
    for n in (2, 3):
        asked = Request.make(f"Part {n}.")
        parts.append(finish(service.extend(parts[-1].generation_id, asked, owner=owner)))
    first, second, last = (service.entry(p.generation_id) for p in parts)
    service.ledger._write("UPDATE jobs SET video_token = NULL WHERE job_id = ?", (first.job_id,))

    def stitched() -> list[Path]:
        return sorted(service.settings.videos_dir.glob("*-chain.mp4"))

    def rows() -> list[dict]:
        return [asdict(job) for job in service.ledger.chain(last.job_id)]

    files, before = stitched(), rows()
    assert files == [parts[-1].video_path]  # the three-part chain's copy only
    view = handlers.chain_view(second.generation_id, token)
    assert "Chain of 2 parts: 10 s" in view and "download the whole video" in view
    assert view.count("download part") == 1  # the part with no address yet offers none
    assert "Chain of 3 parts: 15 s" in handlers.chain_view(last.generation_id, token)
    assert stitched() == files and rows() == before  # nothing stitched, nothing written
    whole = re.search(r"whole video\]\(/media/([^)]+)\)", view)
    found = service.media_file(whole.group(1)) if whole else None
    assert found is not None and media.video_seconds(found[0]) == pytest.approx(
        10 - FRAME, abs=FRAME
    )
