"""The video host: each completed job's clip and its signed link.

A clip is the sample (``DEFAULT_VIDEO``, or ``video_bytes`` of a synthetic MP4), or with
``clips="zoom"`` one made from the job's own image whose last frame is known
(``media.zoom_clip``), kept in ``clip_dir`` (beside the state file, else a temporary folder).
A link names a job's token, expires, and is signed with a secret that the state file keeps.

Imports ``media`` (the zoom clip), ``files`` (the image written whole) and ``jobs.py``.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .. import media
from ..files import write_atomic
from .jobs import Job

CHUNK = 256 * 1024


def ftyp_header() -> bytes:
    # A minimal ISO-BMFF ftyp box, so a synthetic file looks like an MP4 to a client.
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


class Clips:
    """The clips of ``jobs`` (the Simulator's own dict, read as it changes)."""

    def __init__(
        self,
        jobs: dict[str, Job],
        *,
        video_path: Path,
        video_bytes: int | None,
        clips: str,
        state_path: Path | None,
        secret: str,
    ) -> None:
        if clips not in ("sample", "zoom"):
            raise ValueError(f"unknown clips {clips!r}")
        self.jobs = jobs
        self.video_path = video_path
        self.video_bytes = video_bytes
        self.clips = clips
        self.secret = secret
        self._temp_clips = None
        if state_path:
            self.clip_dir = state_path.parent / "demo-clips"
        else:
            self._temp_clips = tempfile.TemporaryDirectory(prefix="kling-sim-clips-")
            self.clip_dir = Path(self._temp_clips.name)
        self._clip_lock = threading.Lock()

    def keep_image(self, token: str, image: bytes | None) -> None:
        """Keep the image a create sent, for its zoom clip (with ``clips`` "zoom" only)."""
        if image is not None and self.clips == "zoom":
            self.clip_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.clip_dir / f"{token}.img", image)

    def signature(self, token: str, expires: int) -> str:
        return hashlib.sha256(f"{self.secret}:{token}:{expires}".encode()).hexdigest()[:32]

    def link_is_valid(self, token: str, expires: int, signature: str | None) -> bool:
        """Whether a video link names a job's file, has not expired, and is signed by us."""
        return bool(
            token
            and any(j.token == token for j in list(self.jobs.values()))
            and expires > time.time()
            and signature == self.signature(token, expires)
        )

    def video_size(self, token: str = "") -> int:
        """The size in bytes of the clip a completed job (by its link's token) serves."""
        if self.video_bytes:
            return self.video_bytes
        return self.clip_path(token).stat().st_size

    def clip_path(self, token: str = "") -> Path:
        """The file of a job's clip: its own zoom clip (made on first ask) when ``clips`` is
        "zoom" and its create sent an image, else the sample."""
        image = self.clip_dir / f"{token}.img" if token else None
        if self.clips != "zoom" or image is None or not image.exists():
            return self.video_path
        clip = self.clip_dir / f"{token}.mp4"
        with self._clip_lock:
            if not clip.exists():
                job = next((j for j in self.jobs.values() if j.token == token), None)
                seconds = job.duration if job else 5
                audio = job.generate_audio if job else True
                tone = 220 + int(token[:2], 16) * 2  # each job's sound its own
                media.zoom_clip(image.read_bytes(), seconds, clip, audio=audio, tone_hz=tone)
        return clip

    def image_of(self, generation_id: str) -> bytes | None:
        """The image bytes the create of this job sent (a data URI's), kept with ``clips``
        "zoom" only; None otherwise."""
        job = self.jobs.get(generation_id)
        path = self.clip_dir / f"{job.token}.img" if job else None
        return path.read_bytes() if path is not None and path.is_file() else None

    def video_chunks(self, start: int, stop: int, token: str = "") -> Iterator[bytes]:
        """The clip's bytes ``start`` to ``stop`` (exclusive), in chunks of at most 256 KiB."""
        if self.video_bytes:
            header = ftyp_header()
            pos = start
            zeros = bytes(CHUNK)
            while pos < stop:
                if pos < len(header):
                    chunk = header[pos : min(stop, len(header))]
                else:
                    chunk = zeros[: min(CHUNK, stop - pos)]
                yield chunk
                pos += len(chunk)
            return
        with open(self.clip_path(token), "rb") as f:
            f.seek(start)
            remaining = stop - start
            while remaining > 0:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    break
                yield chunk
                remaining -= len(chunk)
