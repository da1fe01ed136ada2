"""Every saved MP4 carries how it was made (its metadata), and the app reads it back: real
jobs through the simulator over loopback HTTP, files checked with PyAV."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from kling_ui import __version__, provenance
from kling_ui.config import Settings
from kling_ui.provenance import Made, NotStamped, read, stamp
from kling_ui.request import Request
from kling_ui.service import GenerationService
from kling_ui.simulator import Schedule, Simulator

pytestmark = pytest.mark.timeout(120)

KEY = "sk-provenance-test-4c19"
FAST = Schedule(queued_s=0.05, generating_s=0.1)


@pytest.fixture
def service(tmp_path):
    with Simulator(schedule=FAST) as sim:
        service = GenerationService(
            Settings(base_url=sim.url, api_key=KEY, data_dir=tmp_path / "data",
                     poll_interval=0.05, retry_backoff=0.0)
        )  # fmt: skip
        yield service
        service.close()


def frames_and_streams(video: Path) -> tuple[int, list[str]]:
    with av.open(str(video)) as container:
        kinds = sorted(s.type for s in container.streams)
        return sum(1 for _ in container.decode(video=0)), kinds


def test_a_finished_video_carries_its_settings_and_still_plays_whole(service, photo):
    asked = Request.make("Leaves fall; the camera pans left.", negative_prompt="blur",
                         duration=10, generate_audio=False)  # fmt: skip
    final = list(service.generate(photo, asked))[-1]
    assert final.phase == "completed"
    made = read(final.video_path)
    assert made.model == asked.model
    assert made.prompt == asked.prompt
    assert made.negative_prompt == "blur"
    assert made.options == dict(asked.options)
    assert made.options["duration"] == 10 and made.options["generate_audio"] is False
    assert made.images == ("image",)
    job = service.entry(final.job_id)
    assert made.job_id == job.short_id and len(made.job_id) == 8  # never the whole id: a key
    assert final.job_id.encode() not in final.video_path.read_bytes()
    assert made.version == __version__
    assert made.made_at.endswith("Z") and made.made_at[:4].isdigit()
    with av.open(str(final.video_path)) as container:  # the usual tags, for players
        assert container.metadata["title"] == asked.prompt
        assert job.short_id in container.metadata["comment"]
    assert KEY.encode() not in final.video_path.read_bytes()  # the key is nowhere in it
    assert frames_and_streams(final.video_path)[0] > 0  # and it still decodes


def test_stamping_copies_the_streams_as_they_are(tmp_path):
    from bench._common import make_clip

    source = make_clip(1.0, 3)
    video = tmp_path / "clip.mp4"
    video.write_bytes(source.read_bytes())
    before = frames_and_streams(video)
    made = Made(model="kling-video/v2.6/pro/image-to-video", prompt="Rain.", job_id="j1",
                options={"duration": 5})  # fmt: skip
    assert stamp(video, made) is True
    assert frames_and_streams(video) == before  # every frame, and its sound, kept
    assert abs(video.stat().st_size - source.stat().st_size) < 4096  # copied, not encoded
    assert read(video).to_dict() == made.to_dict()
    assert not list(tmp_path.glob(".*part"))  # no part file left behind


def test_a_second_stamp_replaces_the_first(tmp_path):
    from bench._common import make_clip

    video = tmp_path / "clip.mp4"
    video.write_bytes(make_clip(1.0, 3).read_bytes())
    stamp(video, Made(model="m/one", prompt="First."))
    stamp(video, Made(model="m/two", prompt="Second.", parts=("a", "b")))
    made = read(video)
    assert (made.model, made.prompt, made.parts) == ("m/two", "Second.", ("a", "b"))


def test_a_file_that_cannot_be_stamped_is_left_as_it_was(tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    before = broken.read_bytes()
    assert stamp(broken, Made(model="m", prompt="p")) is False
    assert broken.read_bytes() == before
    assert not list(tmp_path.glob(".*part"))
    assert "could not write the settings" in caplog.text


def _tagged(tmp_path: Path, text: str) -> Path:
    """A real clip whose kling_ui tag holds ``text``."""
    from bench._common import make_clip

    video = tmp_path / "tagged.mp4"
    with av.open(str(make_clip(1.0, 3))) as inp, av.open(str(video), "w", format="mp4",
                 options={"movflags": "use_metadata_tags"}) as out:  # fmt: skip
        stream = out.add_stream_from_template(inp.streams.video[0])
        out.metadata[provenance.TAG] = text
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return video


@pytest.mark.parametrize(
    "content, words",
    [
        (b"not a video at all", "not a video the app can read"),
        (b"", "not a video the app can read"),
    ],
)
def test_a_file_that_is_not_a_video_is_answered_in_words(tmp_path, content, words):
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(NotStamped, match=words):
        read(path)


def test_a_video_from_elsewhere_is_answered_in_words(tmp_path):
    from bench._common import make_clip

    with pytest.raises(NotStamped, match="carries no kling-ui settings"):
        read(make_clip(1.0, 3))


@pytest.mark.parametrize(
    "tag, words",
    [
        ("{not json", "damaged"),
        (json.dumps({"app": "someone-else", "model": "m"}), "damaged"),
        (json.dumps({"app": "kling-ui", "format": 1}), "damaged"),  # no model
        (json.dumps({"app": "kling-ui", "format": 1, "model": "m", "options": [1]}), "damaged"),
        (json.dumps({"app": "kling-ui", "format": 99, "version": "9.0", "model": "m"}),
         "newer kling-ui \\(9.0\\)"),
    ],
)  # fmt: skip
def test_a_tag_that_is_damaged_or_newer_is_answered_in_words(tmp_path, tag, words):
    with pytest.raises(NotStamped, match=words):
        read(_tagged(tmp_path, tag))


# --- read back: the page's drop and /settings_from_video ------------------------------------

PAGE_OUT = ("shown", "image", "end_image", "end_note", "references", "references_note", "group",
            "note_model", "negative", "duration", "audio")  # fmt: skip


@pytest.fixture(scope="module")
def demo_handlers(tmp_path_factory):
    from kling_ui.request import SPECS
    from kling_ui.simulator import DemoSimulator
    from kling_ui.ui import Handlers

    saved = dict(SPECS)
    settings = Settings(data_dir=tmp_path_factory.mktemp("from-video"), poll_interval=0.05)
    demo = DemoSimulator(settings.data_dir, (0.05, 0.1))
    service = GenerationService(settings, demo=demo)
    service.offer()  # the bundled models, known by id from here
    yield Handlers(service)
    service.close()
    demo.stop()
    SPECS.clear()
    SPECS.update(saved)


def page_out(handlers, video, token: str) -> dict:
    from kling_ui.ui.studio import OUTPUTS

    values = handlers.settings_from_video_page(video, token)
    assert len(values) == len(OUTPUTS) + 4
    named = dict(zip(OUTPUTS, values, strict=False))
    named.update(zip(("picker", "prompt", "note", "slot"), values[len(OUTPUTS) :], strict=True))
    return named


@pytest.fixture(scope="module")
def runway_video(demo_handlers, tmp_path_factory):
    """A Runway job with a seed, a last frame and 10 s, made by browser "o"*32's visitor."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("runway")
    first, last = folder / "first.jpg", folder / "last.jpg"
    Image.new("RGB", (800, 600), (30, 160, 60)).save(first)
    Image.new("RGB", (800, 600), (200, 60, 30)).save(last)
    owner = demo_handlers.service.visitor("o" * 32, "")
    asked = Request.make("A door opens.", model="runway/gen4_turbo", seed=42, duration=10)
    *_, done = demo_handlers.service.generate(str(first), asked, owner=owner, end_image=str(last))
    assert done.phase == "completed", done
    return done


def test_a_video_dropped_by_its_owner_fills_the_form_images_and_all(demo_handlers, runway_video):
    made = read(runway_video.video_path)
    assert made.images == ("image", "last_frame")  # uploads, named by role (never the pixels)
    assert made.options["seed"] == 42 and made.model == "runway/gen4_turbo"
    out = page_out(demo_handlers, str(runway_video.video_path), "o" * 32)
    assert out["shown"] == out["picker"] == "runway/gen4_turbo"
    assert out["prompt"] == "A door opens."
    assert out["image"]["value"] and out["end_image"]["value"]  # the kept frames, as Remix
    form = demo_handlers.plan_of("runway/gen4_turbo")
    assert out[form.slot_of("seed")]["value"] == 42 and out["duration"]["value"] == 10
    assert out["note"].startswith("Remixed") and "from the video" in out["note"]
    assert out["slot"] is None  # the slot is emptied for the next file


def test_someone_elses_video_fills_the_settings_and_keeps_the_forms_images(
    demo_handlers, runway_video, tmp_path
):
    copy = tmp_path / "sent-to-me.mp4"  # the file travelled: another browser drops it
    copy.write_bytes(runway_video.video_path.read_bytes())
    out = page_out(demo_handlers, {"path": str(copy)}, "x" * 32)
    assert out["shown"] == out["picker"] == "runway/gen4_turbo"
    assert out["prompt"] == "A door opens."
    assert "value" not in out["image"] and "value" not in out["end_image"]  # left as they are
    form = demo_handlers.plan_of("runway/gen4_turbo")
    assert out[form.slot_of("seed")]["value"] == 42 and out["duration"]["value"] == 10
    assert out["note"].startswith("Remixed from the video (runway/gen4\\_turbo, made ")
    assert "Its images are not in the file" in out["note"]


def test_a_file_the_app_did_not_make_changes_nothing_and_says_why(demo_handlers, tmp_path):
    import gradio as gr

    from bench._common import make_clip

    out = page_out(demo_handlers, str(make_clip(1.0, 3)), "o" * 32)
    assert all(out[name] == gr.skip() for name in (*PAGE_OUT[:1], "picker", "prompt"))
    assert "carries no kling-ui settings" in out["note"]
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    assert "not a video the app can read" in page_out(demo_handlers, str(text), "o" * 32)["note"]
    assert "Drop an MP4" in page_out(demo_handlers, None, "o" * 32)["note"]


def test_programs_read_a_videos_settings_over_http(tmp_path, photo):
    from apprunner import app_in_process
    from gradio_client import Client, handle_file

    from bench._common import make_clip

    with app_in_process(tmp_path / "data", FAST, api_key=KEY, poll_interval=0.05) as app:
        final = list(app.service.generate(photo, Request.make("Snow.", duration=10)))[-1]
        client = Client(app.url, verbose=False)
        answer = json.loads(
            client.predict(handle_file(str(final.video_path)), api_name="/settings_from_video")
        )
        job = app.service.entry(final.job_id)
        assert answer["app"] == "kling-ui" and answer["job_id"] == job.short_id
        assert answer["prompt"] == "Snow." and answer["options"]["duration"] == 10
        assert answer["images"] == ["image"] and KEY not in json.dumps(answer)
        other = json.loads(
            client.predict(handle_file(str(make_clip(1.0, 3))), api_name="/settings_from_video")
        )
        assert set(other) == {"error"} and "carries no kling-ui settings" in other["error"]


def test_a_job_whose_request_cannot_be_read_keeps_its_video_as_it_was(tmp_path, caplog):
    from types import SimpleNamespace

    from bench._common import make_clip
    from kling_ui.provenance import stamp_job

    video = tmp_path / "clip.mp4"
    video.write_bytes(make_clip(1.0, 3).read_bytes())
    before = video.read_bytes()

    class Broken(SimpleNamespace):  # a row whose stored request is not JSON
        @property
        def request(self):
            return Request.from_json(self.request_json)

    broken = Broken(request_json="{not json", job_id="kui-x", short_id="x", created_at=0.0,
                    finished_at=None)  # fmt: skip
    assert stamp_job(video, broken) is False
    assert video.read_bytes() == before
    assert "could not read how clip.mp4 was made" in caplog.text


def test_a_plain_copy_carries_none_of_the_settings(tmp_path):
    from bench._common import make_clip
    from kling_ui.provenance import plain_copy

    video = tmp_path / "clip.mp4"
    video.write_bytes(make_clip(1.0, 3).read_bytes())
    stamp(video, Made(model="m/x", prompt="A private prompt."))
    plain = plain_copy(video)
    assert plain is not None and plain.name == "clip.plain.mp4"
    with pytest.raises(NotStamped, match="carries no kling-ui settings"):
        read(plain)
    assert b"A private prompt." not in plain.read_bytes()
    assert frames_and_streams(plain) == frames_and_streams(video)
    assert plain_copy(video) == plain  # made once
