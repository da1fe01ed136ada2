"""Videos made into other files: a compare board's side-by-side MP4, and any video as an
animated GIF or a WebM.

Every export streams frame by frame: one decoded frame per input is held at a time, scaled
by FFmpeg (``frame.reformat``), pasted into one canvas and encoded, so memory stays flat for
any length (bench 12). Files are written whole or not at all (``files.atomic_path``).

- **Board** (``board``): 2 to 4 videos side by side at one height, each under a label strip
  (its model, its take), on the timeline of the longest; a shorter video holds its last
  frame. H.264 in yuv420p (every browser plays it), without sound: four soundtracks at once
  are noise.
- **GIF** (``gif``): 480 px wide at 12 frames a second, each frame dithered into a
  256-colour palette (Pillow's quantizer), kept from frame to frame while it draws them well
  (no flicker) and made anew for a frame it draws badly (a new scene); at most
  ``GIF_SECONDS`` of the video (a GIF is a short loop: a minute of it would be tens of MB).
- **WebM** (``webm``): VP9 (real-time speed settings) with its sound as Opus.

The labels are drawn with Pillow (DejaVu Sans where installed, else Pillow's own font).
Imports PyAV, Pillow, numpy (Gradio's own dependency), ``files`` and ``errors``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageStat

from . import errors
from .files import atomic_path

log = logging.getLogger(__name__)

MOST_ON_BOARD = 4
BOARD_WIDTH = 1920  # px: the board's most (a 1080p screen), each video scaled to fit
BOARD_HEIGHT = 540  # px: a video's most on the board
BOARD_FPS = 24
LABEL_HEIGHT = 36  # px
GIF_WIDTH, GIF_FPS, GIF_SECONDS = 480, 12, 15
PALETTE_MISS = 6  # of 255: a frame's mean colour drawn off by more gets a palette of its own
FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)


@dataclass(frozen=True)
class Exported:
    path: Path
    seconds: float  # the export's length
    frames: int
    took: float  # seconds spent making it


def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


def _video_size(path: Path) -> tuple[int, int, float]:
    """Width, height and length in seconds of ``path``'s video, or ``InputError``."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
            if not seconds and container.duration:
                seconds = container.duration / av.time_base
            return stream.codec_context.width, stream.codec_context.height, seconds
    except (av.FFmpegError, OSError, IndexError):
        raise errors.InputError(f"{path.name} is not a video that can be read.") from None


def _frames(path: Path) -> Iterator[tuple[float, av.VideoFrame]]:
    """(time in seconds, frame) of ``path``'s video, decoded as they are asked for."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield (float(frame.time) if frame.time is not None else 0.0), frame


class _Held:
    """One input on a timeline: the frame showing at a time (its last once it has ended)."""

    def __init__(self, path: Path) -> None:
        self._frames = _frames(path)
        self._next: tuple[float, av.VideoFrame] | None = next(self._frames, None)
        self.frame: av.VideoFrame | None = None

    def at(self, t: float) -> av.VideoFrame | None:
        while self._next is not None and (self.frame is None or self._next[0] <= t):
            self.frame = self._next[1]
            self._next = next(self._frames, None)
        return self.frame

    def close(self) -> None:
        self._frames.close()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in FONTS:
        with contextlib.suppress(OSError):
            return ImageFont.truetype(name, size)
    return ImageFont.load_default(size=size)


def _label(text: str, width: int) -> Image.Image:
    """A dark strip with ``text`` in white, cut with an ellipsis to fit ``width``."""
    strip = Image.new("RGB", (width, LABEL_HEIGHT), (17, 24, 39))
    draw, font = ImageDraw.Draw(strip), _font(LABEL_HEIGHT // 2)
    shown = text
    while shown and draw.textlength(shown, font=font) > width - 16:
        shown = shown[:-2] + "…" if len(shown) > 2 else ""
    draw.text((8, LABEL_HEIGHT // 2), shown, fill=(255, 255, 255), font=font, anchor="lm")
    return strip


def board(videos: list[Path], labels: list[str], dest: Path) -> Exported:
    """``videos`` (2 to 4) side by side in one MP4 at ``dest``, each under its label."""
    if not 2 <= len(videos) <= MOST_ON_BOARD or len(labels) != len(videos):
        raise errors.InputError(f"A board shows 2 to {MOST_ON_BOARD} videos.")
    started = time.perf_counter()
    sizes = [_video_size(v) for v in videos]
    # One height for all: at most BOARD_HEIGHT and the smallest video's, and the row no
    # wider than BOARD_WIDTH.
    height = min(BOARD_HEIGHT, *(h for _, h, _ in sizes))
    height = min(height, BOARD_WIDTH / sum(w / h for w, h, _ in sizes))
    height = _even(height)
    widths = [_even(w * height / h) for w, h, _ in sizes]
    seconds = max(s for _, _, s in sizes)
    canvas = Image.new("RGB", (sum(widths), height + LABEL_HEIGHT), (0, 0, 0))
    x = 0
    for label, width in zip(labels, widths, strict=True):
        canvas.paste(_label(label, width), (x, 0))
        x += width
    total = max(1, round(seconds * BOARD_FPS))
    held: list[_Held] = []
    try:
        held.extend(_Held(v) for v in videos)
        with (
            atomic_path(dest) as part,
            av.open(str(part), "w", format="mp4", options={"movflags": "faststart"}) as out,
        ):
            stream = out.add_stream("libx264", rate=BOARD_FPS,
                                    options={"preset": "veryfast", "crf": "23"})  # fmt: skip
            stream.width, stream.height, stream.pix_fmt = canvas.width, canvas.height, "yuv420p"
            stream.codec_context.time_base = Fraction(1, BOARD_FPS)
            for n in range(total):
                x = 0
                for one, width in zip(held, widths, strict=True):
                    frame = one.at(n / BOARD_FPS)
                    if frame is not None:
                        tile = frame.reformat(width=width, height=height, format="rgb24")
                        canvas.paste(tile.to_image(), (x, LABEL_HEIGHT))
                    x += width
                picture = av.VideoFrame.from_image(canvas)
                picture.pts = n
                out.mux(stream.encode(picture))
            out.mux(stream.encode(None))
    finally:
        for one in held:
            one.close()
    return Exported(dest, total / BOARD_FPS, total, time.perf_counter() - started)


def gif(video: Path, dest: Path) -> Exported:
    """``video`` as an animated GIF at ``dest`` (its first ``GIF_SECONDS`` at most)."""
    started = time.perf_counter()
    width, height, seconds = _video_size(video)
    out_w = _even(min(GIF_WIDTH, width))
    out_h = _even(height * out_w / width)
    seconds = min(seconds or GIF_SECONDS, GIF_SECONDS)
    total = max(1, round(seconds * GIF_FPS))
    one = _Held(video)
    palette: Image.Image | None = None
    try:
        with atomic_path(dest) as part, av.open(str(part), "w", format="gif") as out:
            stream = out.add_stream("gif", rate=GIF_FPS)
            stream.width, stream.height, stream.pix_fmt = out_w, out_h, "pal8"
            stream.codec_context.time_base = Fraction(1, GIF_FPS)
            for n in range(total):
                frame = one.at(n / GIF_FPS)
                if frame is None:
                    break
                picture = frame.reformat(width=out_w, height=out_h, format="rgb24").to_image()
                # A scene's palette serves its frames (no flicker between them); a frame it
                # draws badly (a new scene, a colour come in) gets a palette of its own.
                indexed = _indexed(picture, palette)
                if indexed is None:
                    palette = picture.quantize(256, method=Image.Quantize.MEDIANCUT)
                    indexed = _indexed(picture, palette, strict=False)
                out.mux(stream.encode(_pal8(indexed, n)))
            out.mux(stream.encode(None))
    finally:
        one.close()
    return Exported(dest, total / GIF_FPS, total, time.perf_counter() - started)


def _indexed(
    picture: Image.Image, palette: Image.Image | None, *, strict: bool = True
) -> Image.Image | None:
    """``picture`` in ``palette``'s colours, dithered; None (when ``strict``) if those
    colours draw it badly: its mean off by more than ``PALETTE_MISS`` in a channel."""
    if palette is None:
        return None
    indexed = picture.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    if strict:
        drawn = ImageStat.Stat(indexed.convert("RGB")).mean
        wanted = ImageStat.Stat(picture).mean
        if max(abs(a - b) for a, b in zip(drawn, wanted, strict=True)) > PALETTE_MISS:
            return None
    return indexed


def _pal8(indexed: Image.Image, pts: int) -> av.VideoFrame:
    """A Pillow "P" image as a pal8 frame (its palette as ARGB, opaque)."""
    colours = np.array(indexed.getpalette() or [], dtype=np.uint8).reshape(-1, 3)[:256]
    argb = np.zeros((256, 4), dtype=np.uint8)
    argb[: len(colours), 0] = 255
    argb[: len(colours), 1:] = colours
    # PyAV takes the palette as ARGB and swaps the bytes to FFmpeg's native order itself.
    frame = av.VideoFrame.from_ndarray((np.asarray(indexed, dtype=np.uint8), argb), format="pal8")
    frame.pts = pts
    return frame


def webm(video: Path, dest: Path) -> Exported:
    """``video`` as a WebM at ``dest``: VP9, its sound as Opus."""
    started = time.perf_counter()
    frames = 0
    with (
        av.open(str(video)) as inp,
        atomic_path(dest) as part,
        av.open(str(part), "w", format="webm") as out,
    ):
        v_in = inp.streams.video[0]
        v_in.thread_type = "AUTO"
        v_out = out.add_stream("libvpx-vp9", rate=v_in.average_rate or 24, options={
            "deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "32", "b": "0",
        })  # fmt: skip
        v_out.width = _even(v_in.codec_context.width)
        v_out.height = _even(v_in.codec_context.height)
        v_out.pix_fmt = "yuv420p"
        a_in = inp.streams.audio[0] if inp.streams.audio else None
        a_out = out.add_stream("libopus", rate=48000) if a_in is not None else None
        resampler = av.AudioResampler(format="flt", layout="stereo", rate=48000) if a_out else None
        streams = [s for s in (v_in, a_in) if s is not None]
        for packet in inp.demux(*streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    out.mux(v_out.encode(frame.reformat(width=v_out.width, height=v_out.height,
                                                        format="yuv420p")))  # fmt: skip
                    frames += 1
                elif a_out is not None and resampler is not None:
                    for sound in resampler.resample(frame):
                        out.mux(a_out.encode(sound))
        out.mux(v_out.encode(None))
        if a_out is not None:
            out.mux(a_out.encode(None))
    seconds = _video_size(dest)[2]
    return Exported(dest, seconds, frames, time.perf_counter() - started)
