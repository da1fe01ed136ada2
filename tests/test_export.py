"""Exports, checked with PyAV: a compare board's side-by-side MP4 (its size, its length, each
tile's picture under its label), and any video as a GIF or a WebM."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image, ImageStat

from kling_ui import errors, export

pytestmark = pytest.mark.timeout(120)

RED, BLUE, GREEN = (220, 30, 40), (30, 50, 220), (40, 200, 60)


def clip(path: Path, size: tuple[int, int], seconds: float, colours, *, sound=False) -> Path:
    """An H.264 clip of ``size`` at 10 fps: ``colours[i]`` for the i-th second."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        audio = out.add_stream("aac", rate=48000, layout="mono") if sound else None
        for n in range(round(seconds * 10)):
            colour = colours[min(n // 10, len(colours) - 1)]
            frame = av.VideoFrame.from_image(Image.new("RGB", size, colour))
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            import numpy as np

            samples = np.zeros((1, 1024), dtype=np.float32)
            for n in range(round(seconds * 48000 / 1024)):
                sound_frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                sound_frame.sample_rate, sound_frame.pts = 48000, n * 1024
                sound_frame.time_base = Fraction(1, 48000)
                out.mux(audio.encode(sound_frame))
            out.mux(audio.encode(None))
    return path


def frames(path: Path) -> list[Image.Image]:
    with av.open(str(path)) as container:
        return [f.to_image() for f in container.decode(video=0)]


def mean(image: Image.Image) -> list[float]:
    return ImageStat.Stat(image.convert("RGB")).mean


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "wide": clip(folder / "wide.mp4", (640, 360), 2.0, [RED, GREEN]),
        "tall": clip(folder / "tall.mp4", (360, 640), 3.0, [BLUE], sound=True),
    }


def test_a_board_is_its_videos_side_by_side_on_the_longest_timeline(clips, tmp_path):
    dest = tmp_path / "board.mp4"
    done = export.board([clips["wide"], clips["tall"]], ["Kling · take 1", "Veo · take 2"], dest)
    assert done.path == dest and done.frames == 3 * export.BOARD_FPS
    with av.open(str(dest)) as container:
        stream = container.streams.video[0]
        # One height for both (the smaller video's, 360), each scaled to it: 640 + 202.
        assert (stream.codec_context.width, stream.codec_context.height) == (
            640 + 202,
            360 + export.LABEL_HEIGHT,
        )
        assert float(stream.duration * stream.time_base) == pytest.approx(3.0, abs=0.05)
        assert not container.streams.audio  # a board is silent
    shown = frames(dest)
    assert len(shown) == 72

    def tile(image, left, right):  # the middle of a tile, under the label
        return mean(image.crop((left + 10, 100, right - 10, 300)))

    first, second, last = shown[0], shown[36], shown[-1]
    assert tile(first, 0, 640) == pytest.approx(RED, abs=20)
    assert tile(first, 640, 842) == pytest.approx(BLUE, abs=20)
    assert tile(second, 0, 640) == pytest.approx(GREEN, abs=20)  # the wide one's second second
    # The wide video ended at 2 s: it holds its last frame while the tall one plays on.
    assert tile(last, 0, 640) == pytest.approx(GREEN, abs=20)
    assert tile(last, 640, 842) == pytest.approx(BLUE, abs=20)
    label = mean(first.crop((0, 0, 640, export.LABEL_HEIGHT)))
    assert max(label) < 90 and max(mean(first.crop((4, 4, 200, 30)))) > max(label) - 40
    assert not list(tmp_path.glob(".*part"))


def test_a_board_takes_two_to_four_readable_videos(clips, tmp_path):
    dest = tmp_path / "board.mp4"
    with pytest.raises(errors.InputError, match="2 to 4"):
        export.board([clips["wide"]], ["one"], dest)
    with pytest.raises(errors.InputError, match="2 to 4"):
        export.board([clips["wide"]] * 5, ["x"] * 5, dest)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(errors.InputError, match="broken.mp4 is not a video"):
        export.board([clips["wide"], broken], ["a", "b"], dest)
    assert not dest.exists() and not list(tmp_path.glob(".*part"))


def test_a_gif_is_a_short_loop_480_px_wide_in_its_colours(clips, tmp_path):
    done = export.gif(clips["wide"], tmp_path / "a.gif")
    with Image.open(done.path) as image:
        assert image.format == "GIF" and image.size == (480, 270)
        assert image.n_frames == done.frames == 2 * export.GIF_FPS
        assert mean(image.convert("RGB")) == pytest.approx(RED, abs=25)
        image.seek(image.n_frames - 1)
        assert mean(image.convert("RGB")) == pytest.approx(GREEN, abs=25)


def test_a_long_video_makes_a_gif_of_its_first_seconds(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "GIF_SECONDS", 1)
    long = clip(tmp_path / "long.mp4", (320, 240), 3.0, [RED, GREEN, BLUE])
    done = export.gif(long, tmp_path / "a.gif")
    with Image.open(done.path) as image:
        assert image.n_frames == export.GIF_FPS and image.size == (320, 240)


def test_a_webm_keeps_the_picture_and_the_sound(clips, tmp_path):
    done = export.webm(clips["tall"], tmp_path / "a.webm")
    with av.open(str(done.path)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
        assert kinds == {"video": "vp9", "audio": "opus"}
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (360, 640)
    shown = frames(done.path)
    assert len(shown) == 30 and mean(shown[15]) == pytest.approx(BLUE, abs=20)
    assert done.seconds == pytest.approx(3.0, abs=0.1)
