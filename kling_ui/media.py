"""Poster frames: the first frame of a finished video, as a small JPEG beside it.

A gallery of past videos shows a picture for each, and decoding an MP4 in every visitor's
browser to find one costs far more than a JPEG made once here, when the MP4 lands (the
runner) or, for videos from before posters, the first time one is asked for (the service).

The only module that imports PyAV. The frame PyAV decodes is a Pillow image
(``frame.to_image()``), scaled and saved through its own methods: no other Pillow import.
A video that can't be decoded gives no poster (``None``) and a warning in the log; nothing
raises to the caller.

Imports: PyAV only; nothing of ours.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

import av

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
        image = _first_frame(video)
        if image is None:
            log.warning("no poster for %s: it holds no video frame", video.name)
            return None
        image.thumbnail((POSTER_LONG_SIDE, POSTER_LONG_SIDE))  # keeps the shape; never enlarges
        _save_jpeg(image, poster)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.warning("no poster for %s: %s: %s", video.name, type(exc).__name__, exc)
        return None
    return poster


def _first_frame(video: Path):  # -> PIL.Image.Image | None (no Pillow import here)
    with av.open(str(video)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            return frame.to_image()
    return None


def _save_jpeg(image, poster: Path) -> None:
    """Write the JPEG under a temporary name, then move it into place: a reader never sees
    half a poster, and two makers at once both leave a whole one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{poster.stem}.", suffix=".tmp", dir=poster.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            image.convert("RGB").save(out, "JPEG", quality=POSTER_QUALITY, optimize=True)
        os.replace(tmp, poster)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
