"""What we do with videos' frames: posters, last frames, and chains of parts stitched.

- Poster frames: the first frame of a finished video, as a small JPEG beside it. A gallery
  of past videos shows a picture for each, and decoding an MP4 in every visitor's browser to
  find one costs far more than a JPEG made once here, when the MP4 lands (the runner) or,
  for videos from before posters, the first time one is asked for (the service).
- Last frames: "Continue" starts the next part of a video from its last frame.
- Stitching: a chain of parts as one MP4, the first frame of each later part dropped (it
  repeats the last frame of the part before). Packets are copied as they are when the parts'
  streams match (one model's parts do): well under a second, nothing held in memory; else
  everything is decoded and encoded again (H.264/AAC), the parts scaled to the first's size.
- The simulator's clips (``zoom_clip``): a slow zoom into the job's own image, so a clip's
  last frame is known and a test can check that a continuation really started from it.

PyAV is imported here and in ``provenance`` (how a video was made, copied into its tags).
The frame PyAV decodes is a Pillow image (``frame.to_image()``), scaled and saved through its
own methods: no other Pillow import.
A video that can't be decoded gives no poster (``None``) and a warning in the log; nothing
raises to the caller.

Imports PyAV and ``files`` (every file here is written whole or not at all).
"""

from __future__ import annotations

import io
import logging
import math
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from .files import atomic_path, write_with

log = logging.getLogger(__name__)

POSTER_LONG_SIDE = 480  # px: a gallery tile is at most about 240 CSS px wide, twice for HiDPI
POSTER_QUALITY = 80  # about 12 KB for a 480x270 frame; no visible blocks at tile size


def poster_path(video: Path) -> Path:
    """Where a video's poster is (or goes): ``<video stem>.jpg`` beside it."""
    return Path(video).with_suffix(".jpg")


def make_poster(video: Path) -> Path | None:
    """Decode the video's first frame and save it as its poster; the poster's path, or None
    (with a warning in the log) when the file can't be read or holds no picture."""
    video = Path(video)
    poster = poster_path(video)
    try:
        image = _first_frame(video, most=POSTER_LONG_SIDE)
        if image is None:
            log.warning("no poster for %s: it holds no video frame", video.name)
            return None
        _save_jpeg(image, poster)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.warning("no poster for %s: %s: %s", video.name, type(exc).__name__, exc)
        return None
    return poster


def poster_from(frame, video: Path) -> Path | None:
    """``video``'s poster from its first frame, already decoded (an ``av.VideoFrame``: the
    runner's one pass over a landing video, ``provenance.stamp``); None, with a warning, if
    it can't be saved."""
    try:
        _save_jpeg(_scaled(frame, POSTER_LONG_SIDE), poster_path(video))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.warning("no poster for %s: %s: %s", Path(video).name, type(exc).__name__, exc)
        return None
    return poster_path(video)


def _scaled(frame, most: int | None):  # -> PIL.Image.Image
    if most is None or max(frame.width, frame.height) <= most:
        return frame.to_image()
    scale = most / max(frame.width, frame.height)
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    return frame.reformat(width=size[0], height=size[1], format="rgb24",
                          interpolation="AREA").to_image()  # fmt: skip


def _first_frame(video: Path, most: int | None = None):  # -> PIL.Image.Image | None
    """The first frame, whole, or brought to at most ``most`` px on its long side (never
    enlarged) by FFmpeg's area scaler as it is converted: half the time of converting it
    whole and shrinking it after (a poster is made as each video lands, bench 6)."""
    with av.open(str(video)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            return _scaled(frame, most)
    return None


def _save_jpeg(image, poster: Path, *, quality: int = POSTER_QUALITY) -> None:
    """Written whole or not at all (``files.write_with``): a reader never sees half a
    poster, and two makers at once both leave a whole one."""
    write_with(
        poster,
        lambda out: image.convert("RGB").save(out, "JPEG", quality=quality, optimize=True),
    )


# --- last frames ------------------------------------------------------------------------

LAST_FRAME_QUALITY = 95  # the next part's input: as close to the frame as JPEG allows


def last_frame(video: Path):  # -> PIL.Image.Image | None
    """The video's last frame (decoding from the last keyframe before its final two seconds,
    not from the start); None when the file holds no picture or can't be decoded."""
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            end = (container.duration or 0) / av.time_base
            if end > 2 and stream.time_base:
                target = int((end - 2) / stream.time_base)
                container.seek(target, stream=stream, backward=True, any_frame=False)
            last = None
            for frame in container.decode(stream):
                last = frame
            return last.to_image() if last is not None else None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.warning("no last frame for %s: %s: %s", Path(video).name, type(exc).__name__, exc)
        return None


def save_last_frame(video: Path, dest: Path, *, min_side: int = 300) -> Path | None:
    """The video's last frame as a JPEG at ``dest`` (whole or not at all), enlarged if a
    side is under ``min_side`` (the API's least: a small video can still go on); None if
    the video gives no frame."""
    image = last_frame(video)
    if image is None:
        return None
    if min(image.size) < min_side:
        scale = min_side / min(image.size)
        image = image.resize((math.ceil(image.width * scale), math.ceil(image.height * scale)))
    _save_jpeg(image, dest, quality=LAST_FRAME_QUALITY)
    return dest


# --- stitching ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stitched:
    path: Path
    method: str  # "copy" (packets as they are) or "encode" (decoded and encoded again)
    seconds: float  # the video's length


class _NotCopyable(Exception):
    """These parts can't be joined packet for packet: encode them again."""


def stitch(parts: list[Path], dest: Path) -> Stitched:
    """One MP4 of ``parts`` in order, at ``dest`` (whole or not at all), the first frame of
    each later part dropped. Raises ``ValueError`` when a part can't be read."""
    if not parts:
        raise ValueError("nothing to stitch")
    try:
        with atomic_path(dest) as tmp:
            method = "encode"
            try:
                if _copyable(parts):
                    _copy_join(parts, tmp)
                    method = "copy"
            except (_NotCopyable, av.error.FFmpegError) as exc:
                log.info("stitching %s by encoding: %s", dest.name, exc)
            if method == "encode":
                _encode_join(parts, tmp)
            seconds = video_seconds(tmp)
    except av.error.FFmpegError as exc:
        raise ValueError(f"a part could not be read ({type(exc).__name__})") from None
    return Stitched(dest, method, seconds)


def video_seconds(video: Path) -> float:
    """The length of a video's picture, from its container (what a player shows)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        return (container.duration or 0) / av.time_base


def _signature(path: Path) -> tuple:
    """What must match for packets to go into one track as they are."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path.name} has no picture")
        v = container.streams.video[0]
        video = (v.codec_context.name, v.codec_context.width, v.codec_context.height,
                 v.codec_context.pix_fmt, v.time_base, v.average_rate,
                 bytes(v.codec_context.extradata or b""))  # fmt: skip
        audio = None
        if container.streams.audio:
            a = container.streams.audio[0]
            audio = (a.codec_context.name, a.codec_context.sample_rate, a.codec_context.layout.name,
                     a.time_base, bytes(a.codec_context.extradata or b""))  # fmt: skip
        return video, audio


def _copyable(parts: list[Path]) -> bool:
    """Packets may go as they are: the parts' streams match, each starts at 0, and each
    part's sound is as long as its picture (within a packet: a shorter sound would let the
    sound drift a little at every join)."""
    signatures = {_signature(p) for p in parts}
    return len(signatures) == 1 and all(_starts_and_ends_together(p) for p in parts)


def _starts_and_ends_together(path: Path) -> bool:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        if video.start_time not in (0, None) or not video.duration:
            return False
        if not container.streams.audio:
            return True
        audio = container.streams.audio[0]
        if not audio.duration:
            return False
        packet = (audio.codec_context.frame_size or 1024) / audio.codec_context.sample_rate
        picture = float(video.duration * video.time_base)
        sound = float(audio.duration * audio.time_base)
        return abs(picture - sound) <= 1.5 * packet


def _copy_join(parts: list[Path], out_path: Path) -> None:
    """Packets copied, timestamps moved: each later part starts where the one before ends,
    its first frame kept for decoding (the frames after it refer to it) but shown for one
    tick; its audio packets chosen so the sound's length follows the picture's."""
    with av.open(str(out_path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        # The first part only lends its streams' settings: closed before the copying starts,
        # so its probe's buffers aren't held beside each part's (0.7 MB of a 10-part chain's
        # peak, bench 8).
        with av.open(str(parts[0])) as first:
            v_out = out.add_stream_from_template(first.streams.video[0])
            a_out = (
                out.add_stream_from_template(first.streams.audio[0])
                if first.streams.audio
                else None
            )
        clock = _Joins()
        for index, part in enumerate(parts):
            with av.open(str(part)) as container:
                _copy_part(container, index, out, v_out, a_out, clock)


@dataclass
class _Joins:
    """Where the stitched video stands: the picture's end and the last decode time written
    (video ticks), and where the next sound packet goes (audio ticks; None before the first)."""

    video_end: int = 0
    last_dts: int | None = None
    audio_next: int | None = None


def _copy_part(container, index: int, out, v_out, a_out, at: _Joins) -> None:
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio and a_out else None
    tick = int(round(1 / (video.average_rate * video.time_base)))  # one frame, in ticks
    if index and tick < 2:
        raise _NotCopyable("the video's time base is too coarse to hide a frame")
    if not video.duration:
        raise _NotCopyable("a part does not say its length")
    skip = tick - 1 if index else 0  # the repeated frame: shown for one tick
    shift = at.video_end - skip
    # The sound ends where this part's picture ends, and starts after the hidden frame.
    end_s = (shift + video.duration) * video.time_base
    frame_size = audio.codec_context.frame_size if audio is not None else 0
    cut = _Cut(skip * video.time_base, end_s, index, frame_size or 1024)
    first = True
    streams = [video] if audio is None else [video, audio]  # no other stream comes along
    for packet in container.demux(*streams):
        if packet.dts is None:
            continue
        if packet.stream.type == "video":
            start = video.start_time or 0
            if first and index and not (packet.is_keyframe and packet.pts == start):
                raise _NotCopyable("a part does not start with the frame it shows first")
            pts = skip if (first and index) else packet.pts
            first = False
            packet.pts, packet.dts = pts + shift, packet.dts + shift
            if at.last_dts is not None and packet.dts <= at.last_dts:
                raise _NotCopyable("the parts' decode times would overlap")
            at.last_dts = packet.dts
            packet.stream = v_out
            out.mux(packet)
        elif audio is not None and packet.stream.type == "audio" and cut.keeps(packet, at):
            packet.stream = a_out
            out.mux(packet)
    at.video_end = shift + video.duration


@dataclass(frozen=True)
class _Cut:
    """Which of a part's sound packets go in: none before the hidden frame's end, none past
    the picture's end, each written right after the sound so far (so the sound's length
    follows the picture's, within half a packet at every join, without drifting)."""

    skip_s: Fraction  # the hidden frame's time, in the part's own seconds
    end_s: Fraction  # where this part's picture ends in the stitched video, in seconds
    index: int
    frame_size: int  # samples a packet decodes to (1024 for AAC)

    def keeps(self, packet, at: _Joins) -> bool:
        tb = packet.time_base
        # Every packet decodes to a whole frame of samples, even one whose stated length is
        # shorter (a part's last: the rest is padding); its place in the stitched sound is
        # that whole frame.
        length = max(packet.duration or 0, self.frame_size)
        if self.index and (packet.pts < 0 or (packet.pts + length / 2) * tb < self.skip_s):
            return False  # a later part's encoder priming, or sound of the hidden frame
        position = packet.pts if at.audio_next is None else at.audio_next
        if (position + length / 2) * tb > self.end_s:
            return False  # past this part's picture
        packet.pts = packet.dts = position
        packet.duration = length
        at.audio_next = position + length
        return True


ENCODE_PRESET = "veryfast"  # x264: parts of a few seconds each, encoded again in seconds
ENCODE_CRF = "18"  # visually the same as the parts
AUDIO_BPS = 128_000


def _encode_join(parts: list[Path], out_path: Path) -> None:
    """Every part decoded and encoded again into the first part's size and frame rate
    (H.264 yuv420p, AAC): for parts whose streams differ. A part without sound gets silence
    when another part has sound; each part's sound is cut or padded to its picture."""
    with av.open(str(parts[0])) as first:
        v0 = first.streams.video[0]
        width, height = v0.codec_context.width // 2 * 2, v0.codec_context.height // 2 * 2
        fps = v0.average_rate or Fraction(24)
    rate, layout = _sound_of(parts)
    with av.open(str(out_path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        video = out.add_stream(
            "libx264", rate=fps, options={"preset": ENCODE_PRESET, "crf": ENCODE_CRF}
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = None
        if rate:
            audio = out.add_stream("aac", rate=rate, layout=layout)
            audio.bit_rate = AUDIO_BPS
        frames = 0
        for index, part in enumerate(parts):
            kept = _encode_part_video(part, index, video, out, frames, (width, height))
            if audio is not None:
                _encode_part_audio(part, index, audio, out, kept, fps)
            frames += kept
        out.mux(video.encode())
        if audio is not None:
            out.mux(audio.encode())


def _sound_of(parts: list[Path]) -> tuple[int, str]:
    """The stitched sound's rate and layout: the first part's that has sound; (0, "") if
    none has."""
    for part in parts:
        with av.open(str(part)) as container:
            if container.streams.audio:
                ctx = container.streams.audio[0].codec_context
                return ctx.sample_rate, ctx.layout.name
    return 0, ""


def _encode_part_video(part: Path, index: int, stream, out, start: int, size) -> int:
    """A part's frames (the first dropped for a later part) on the stitched video's clock
    from ``start``: each frame placed by its own time, repeated or dropped to the output's
    frame rate, so a part of another rate keeps its speed. The frames it fills."""
    fps = stream.average_rate or stream.codec_context.framerate
    kept, first = 0, None
    with av.open(str(part)) as container:
        for n, frame in enumerate(container.decode(container.streams.video[0])):
            if index and n == 0:
                continue
            first = frame.time if first is None else first
            slot = round(((frame.time or 0) - (first or 0)) * float(fps))
            if slot < kept:
                continue  # a faster part: this frame's slot is taken
            picture = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            while kept <= slot:  # a slower part: the frame fills the slots up to its own
                copy = picture if kept == slot else picture.reformat()
                copy.pts = start + kept
                copy.time_base = stream.codec_context.time_base or 1 / fps
                out.mux(stream.encode(copy))
                kept += 1
    return kept


def _encode_part_audio(part: Path, index: int, stream, out, frames: int, fps) -> None:
    """A part's sound, resampled, its first frame's worth dropped for a later part, then cut
    or padded with silence to the length of the frames it kept."""
    rate = stream.codec_context.sample_rate
    want = round(frames / fps * rate)
    skip = round(rate / _frame_rate(part)) if index else 0  # the part's own first frame
    fifo = av.AudioFifo()
    resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout.name, rate=rate)
    with av.open(str(part)) as container:
        if container.streams.audio:
            for frame in container.decode(container.streams.audio[0]):
                frame.pts = None
                for converted in resampler.resample(frame):
                    fifo.write(converted)
            for converted in resampler.resample(None):
                fifo.write(converted)
    if skip and fifo.samples:
        fifo.read(min(skip, fifo.samples))
    size = stream.codec_context.frame_size or 1024
    written = 0
    while written < want:
        n = min(size, want - written)
        if fifo.samples < n:  # a part without sound, or with a little less than its picture
            fifo.write(_silence(stream, n - fifo.samples))
        frame = fifo.read(n)
        frame.pts = None
        out.mux(stream.encode(frame))
        written += n


def _frame_rate(part: Path) -> float:
    with av.open(str(part)) as container:
        return float(container.streams.video[0].average_rate or 24)


def _silence(stream, samples: int):
    ctx = stream.codec_context
    frame = av.AudioFrame(format="fltp", layout=ctx.layout.name, samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = ctx.sample_rate
    frame.pts = None
    return frame


# --- the simulator's clips --------------------------------------------------------------

CLIP_FPS = 24
CLIP_SHORT_SIDE = 360  # a continuation's image must be 300 px or more a side
ZOOM_TO = 1.25  # the last frame shows the middle 80 % of the image, enlarged


def zoom_clip(
    image: bytes, seconds: int, dest: Path, *, audio: bool = True, tone_hz: float = 440.0
) -> Path:
    """A clip of ``seconds`` that zooms slowly into ``image`` (any picture FFmpeg reads),
    as the simulator's finished jobs serve: its first frame is the image, its last the middle
    ``1/ZOOM_TO`` of it, so the last frame is known. H.264 with B-frames like the vendor's,
    and a tone in AAC when ``audio``. Written whole or not at all."""
    picture = _decode_picture(image)
    width, height = _clip_size(picture.width, picture.height)
    # Once, to the most any frame needs (the first shows it all at the clip's size).
    picture = picture.resize((round(width * ZOOM_TO), round(height * ZOOM_TO)), resample=2)
    frames = seconds * CLIP_FPS
    with (
        atomic_path(dest) as name,
        av.open(str(name), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        video = out.add_stream("libx264", rate=CLIP_FPS, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=44100, layout="mono") if audio else None
        for n in range(frames):
            scale = 1 + (ZOOM_TO - 1) * n / max(frames - 1, 1)
            frame = av.VideoFrame.from_image(_zoomed(picture, scale, (width, height)))
            frame.pts = n
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            _tone(out, sound, seconds, tone_hz)
    return dest


def _decode_picture(data: bytes):  # -> PIL.Image.Image
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            return frame.to_image().convert("RGB")
    raise ValueError("no picture in the image")


def _clip_size(width: int, height: int) -> tuple[int, int]:
    """The clip's size: the short side ``CLIP_SHORT_SIDE`` (like 640x360), even numbers."""
    scale = CLIP_SHORT_SIDE / min(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _zoomed(picture, scale: float, size: tuple[int, int]):
    """The middle ``1/scale`` of the picture, at ``size``."""
    w, h = picture.width / scale, picture.height / scale
    left, top = (picture.width - w) / 2, (picture.height - h) / 2
    return picture.resize(size, resample=2, box=(left, top, left + w, top + h))  # bilinear


def _tone(out, stream, seconds: int, hz: float) -> None:
    rate = stream.codec_context.sample_rate
    size = stream.codec_context.frame_size or 1024
    total = seconds * rate
    for start in range(0, total, size):
        n = min(size, total - start)
        wave = [0.2 * math.sin(2 * math.pi * hz * (start + i) / rate) for i in range(n)]
        frame = av.AudioFrame(format="fltp", layout="mono", samples=n)
        frame.planes[0].update(struct.pack(f"{n}f", *wave))
        frame.sample_rate, frame.pts = rate, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode())
