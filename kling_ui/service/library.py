"""Files, chains and media: what a job leaves on this server, and its addresses.

Owns what the gallery, Remix and Continue show of a past job: the image each job was sent
with (the prepared JPEG, in ``inputs/`` beside the ledger, written whole by ``files``), its
video's address (``/media/<token>.mp4``: 128 random bits, no path of the server's), its
poster frame and its whole chain (``chains``, ``media``), how long such videos typically
take, and the retention sweep that removes a job's files, the demo's copies and the page's
(``scratch``) once older than ``retention_days``. Its clocks are injected: ``clock`` (the
wall clock a sweep measures days on), ``monotonic`` (how fresh a typical duration is).

Imports ``chains``, ``config``, ``files``, ``history``, ``media``, ``runner``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import secrets
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chains import Chains, ChainView, Continuation, chain_path
from ..config import Settings
from ..files import write_atomic
from ..history import Job, Ledger
from ..media import make_poster, poster_path
from ..request import REFERENCE, reference_roles
from ..runner import Runner

if TYPE_CHECKING:
    from .access import Access

log = logging.getLogger(__name__)

MEDIA_PREFIX = "/media/"
MEDIA_TOKEN = re.compile(r"[0-9a-f]{32}")
SWEEP_EVERY = 3600.0  # seconds between retention sweeps
JPEG_DATA_URI = "data:image/jpeg;base64,"  # what prepare_image makes of every upload
TYPICAL_FRESH = 30.0  # seconds a typical duration is reused (a page asks every second)
TYPICAL_OF = 50  # the most recent finished jobs a typical duration is the median of


class Library:
    """A job's kept files and addresses, its chain, and the sweep that ends them."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        runner: Runner,
        chains: Chains,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.runner = runner
        self.chains = chains
        self._clock = clock
        self._monotonic = monotonic
        self._typical: dict[tuple[str, int], tuple[float, float | None]] = {}  # -> (when, s)
        self._poster_lock = threading.Lock()
        self._posters_tried: set[str] = set()  # videos whose missing poster was made (or not)
        # Folders (and the names in them) of copies made for a page: the UI adds its own
        # (``Handlers``); the retention sweep removes those older than its days.
        self.scratch: list[tuple[Path, tuple[str, ...]]] = []

    # --- retention ------------------------------------------------------------------------

    def sweep(self, now: float | None = None) -> int:
        """Remove jobs that ended more than ``retention_days`` before ``now``, with their
        videos, posters and kept images, and the demo's and the page's copies (``scratch``)
        older than that. Returns how many jobs went. Unfinished jobs are never removed."""
        days = self.settings.retention_days
        if days <= 0:
            return 0
        gone = 0
        now = self._clock() if now is None else now
        for job in self.ledger.ended_before(now - days * 86400):
            if job.video_path:
                Path(job.video_path).unlink(missing_ok=True)
                poster_path(Path(job.video_path)).unlink(missing_ok=True)
                video = Path(job.video_path)  # the copy a share link serves, without settings
                video.with_name(video.stem + ".plain.mp4").unlink(missing_ok=True)
                chain_path(Path(job.video_path)).unlink(missing_ok=True)
            self._input_path(job.job_id).unlink(missing_ok=True)
            for kept in self._input_path(job.job_id).parent.glob(f"{job.job_id}.*.jpg"):
                kept.unlink(missing_ok=True)  # its last frame, its reference images
            (self.chains.frames / f"{job.job_id}-last.jpg").unlink(missing_ok=True)
            self.ledger.forget(job.job_id)
            gone += 1
        self.ledger.forget_helps_before(now - days * 86400)  # the prompt helper's calls
        self.ledger.forget_shares_before(now - days * 86400)  # links ended that long ago
        clips = self.settings.data_dir / "demo-clips"  # the demo's copies of visitors' images
        for old in clips.glob("*") if clips.is_dir() else ():
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < now - days * 86400:
                    old.unlink()
        for folder, names in list(self.scratch):
            for name in names:
                for old in folder.glob(name) if folder.is_dir() else ():
                    with contextlib.suppress(OSError):
                        if old.stat().st_mtime < now - days * 86400:
                            shutil.rmtree(old) if old.is_dir() else old.unlink()
        if gone:
            log.info("retention: removed %d jobs ended over %g days ago", gone, days)
        return gone

    def sweep_until(self, closed: threading.Event) -> None:
        """Sweep now, then every ``SWEEP_EVERY`` seconds until ``closed`` is set."""
        while not closed.is_set():
            try:
                self.sweep()
            except Exception:  # the disk: try again next time
                log.exception("retention sweep failed")
            closed.wait(SWEEP_EVERY)

    # --- videos, by address -------------------------------------------------------------

    def video_url(self, job: Job) -> str:
        """The video's address on this server: 128 random bits, no path of the server's."""
        return f"{MEDIA_PREFIX}{self._video_token(job)}.mp4"

    def chain_url(self, job: Job) -> str:
        """The address of the whole chain ending at this job (the video's, ``.chain.mp4``)."""
        return f"{MEDIA_PREFIX}{self._video_token(job)}.chain.mp4"

    def poster_url(self, job: Job) -> str | None:
        """The address of a finished video's poster frame (the video's, ending ``.jpg``);
        None when the job has no video on disk, or its video gives no picture.

        A video from before posters gets its poster here, the first time it is asked for;
        one that can't be decoded is tried once per process, not at every page update."""
        if job.state != "done" or not job.video_path:
            return None
        video = Path(job.video_path)
        if not video.is_file():
            return None
        poster = poster_path(video)
        if not poster.is_file():
            with self._poster_lock:  # one maker per video; the others find its poster
                if not poster.is_file() and str(video) not in self._posters_tried:
                    self._posters_tried.add(str(video))
                    make_poster(video)
            if not poster.is_file():
                return None
        return f"{MEDIA_PREFIX}{self._video_token(job)}.jpg"

    def _video_token(self, job: Job) -> str:
        token = job.video_token
        if not token:  # a video from before addresses had tokens
            self.ledger.set_video_token(job.job_id, secrets.token_hex(16))
            token = (self.ledger.get(job.job_id) or job).video_token
        assert token
        return token

    def media_file(self, name: str) -> tuple[Path, str] | None:
        """The file behind ``/media/<name>`` (``<token>.mp4``, the video, or ``<token>.jpg``,
        its poster) and the name to save it as; None if none."""
        token, dot, suffix = name.partition(".")
        kinds = ("mp4", "jpg", "chain.mp4")
        if not dot or suffix not in kinds or not MEDIA_TOKEN.fullmatch(token):
            return None
        job = self.ledger.by_video_token(token)
        if job is None or not job.video_path:
            return None
        if not Path(job.video_path).is_file():  # another machine's disk: fetched again here
            local = self.runner.refetch(job) if job.state == "done" else None
            if local is None:
                return None
            job = replace(job, video_path=str(local))
        if suffix == "chain.mp4":
            path = self.chains.video(job)
            return (path, path.name) if path is not None else None
        path = Path(job.video_path) if suffix == "mp4" else poster_path(Path(job.video_path))
        return (path, path.name) if path.is_file() else None

    # --- chains -----------------------------------------------------------------------------

    def continuation(self, job: Job) -> Continuation:
        """What continuing this job starts from (its last frame, its chain); ``InputError``
        in words for a job that isn't finished or whose file is gone."""
        return self.chains.continuation(job)

    def chain_video(self, job: Job) -> Path | None:
        """The whole chain's video ending at this job (stitched), or None."""
        return self.chains.video(job)

    def chain_view(self, job: Job) -> ChainView:
        """The chain ending at ``job`` as the page shows it, read only: nothing is written
        (a part links to its video by the token it got when it was done) and nothing is
        stitched (the whole video is, at its address, when someone asks for it:
        ``media_file``)."""
        parts = self.chains.parts(job) or [job]
        last = parts[-1]
        whole = None
        if last.video_token and self.chains.can_stitch(last):
            whole = f"{MEDIA_PREFIX}{last.video_token}.chain.mp4"
        return ChainView(parts, [_kept_url(p) for p in parts], whole)

    # --- what a past job leaves: its image, its usual time ---------------------------------

    def _input_path(self, job_id: str, role: str = "image") -> Path:
        name = f"{job_id}.jpg" if role == "image" else f"{job_id}.{role}.jpg"
        return self.settings.data_dir / "inputs" / name

    def keep_input(
        self, data_uri: str, job_ids: list[str], *, jpeg: bytes = b"", role: str = "image"
    ) -> None:
        """Keep the image these jobs were sent with (for Remix): the prepared JPEG, as sent
        (``jpeg``: its bytes, when the caller has them; else read from the data URI);
        ``role``: which of the request's images (the start frame, or "last_frame").
        An https URL is the vendor's to fetch and isn't kept. The jobs of one batch image
        share one file's bytes (hard links) where the disk allows. Never fails the jobs."""
        if not job_ids or not data_uri.startswith(JPEG_DATA_URI):
            return
        try:
            data = jpeg or base64.b64decode(data_uri[len(JPEG_DATA_URI) :], validate=True)
            first = self._input_path(job_ids[0], role)
            private_folder(first.parent)
            write_atomic(first, data)
            for job_id in job_ids[1:]:
                try:
                    os.link(first, self._input_path(job_id, role))
                except OSError:  # no hard links here (some shared volumes): a copy
                    write_atomic(self._input_path(job_id, role), data)
        except (OSError, binascii.Error) as exc:
            log.warning("could not keep the image of %s: %s", job_ids[0], type(exc).__name__)

    def input_image(self, job: Job, role: str = "image") -> Path | None:
        """The image a job was sent with as ``role`` (the prepared JPEG), when kept here."""
        path = self._input_path(job.job_id, role)
        return path if path.is_file() else None

    def input_references(self, job: Job) -> list[Path]:
        """The reference images a job was sent with, in their order, as kept here."""
        folder = self._input_path(job.job_id).parent
        kept = {p.name.split(".")[-2]: p for p in folder.glob(f"{job.job_id}.{REFERENCE}*.jpg")}
        return [kept[role] for role in reference_roles(kept)]

    def typical_seconds(self, backend_name: str, duration: int) -> float | None:
        """How long a video like this usually takes here, from its create to the vendor's
        finish: the median of the last ``TYPICAL_OF`` done jobs of this backend and video
        duration, else of any duration on this backend; None before the first. Read from
        the ledger at most once per ``TYPICAL_FRESH`` seconds."""
        key = (backend_name, int(duration))
        now = self._monotonic()
        seen = self._typical.get(key)
        if seen is not None and now - seen[0] < TYPICAL_FRESH:
            return seen[1]
        times = self.ledger.durations(backend_name, key[1], limit=TYPICAL_OF)
        times = times or self.ledger.durations(backend_name, None, limit=TYPICAL_OF)
        value = statistics.median(times) if times else None
        self._typical[key] = (now, value)
        return value


def _kept_url(job: Job) -> str | None:
    """A finished video's address, if it has one and its file is here (never made here)."""
    if job.state != "done" or not job.video_path or not job.video_token:
        return None
    return f"{MEDIA_PREFIX}{job.video_token}.mp4" if Path(job.video_path).is_file() else None


def private_folder(path: Path) -> None:
    """The data folder (ledger, videos, kept images, secrets) is for the app's user only."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:  # not ours to change (a shared volume): its own rights stand
        log.warning("could not make %s private to this user", path)


class LibraryMethods:
    """The service's public methods that are the library's (``GenerationService``'s own, so
    that callers never reach into ``library``)."""

    library: Library
    access: Access

    def remix(self, any_id: str, owner: str) -> dict[str, Any] | None:
        """What a new job like this one starts from: its images (paths, or None when not
        kept: the start frame, and the last frame for a model that takes one), its model
        and every field it was sent with (``options``; ours also one by one). None for an
        id not known here, or a job ``owner`` may not see (the history's rule, ``visible``)."""
        job = self.access.entry(any_id, owner) if isinstance(any_id, str) else None
        if job is None or not self.access.visible(job, owner):
            return None
        return {
            "image": self.library.input_image(job),
            "last_frame": self.library.input_image(job, "last_frame"),
            "references": self.library.input_references(job),
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt,
            "duration": job.duration,
            "generate_audio": job.generate_audio,
            "model": job.request.model,
            "options": dict(job.request.options),
        }

    @property
    def scratch(self) -> list[tuple[Path, tuple[str, ...]]]:
        return self.library.scratch

    def sweep(self, now: float | None = None) -> int:
        return self.library.sweep(now)

    def video_url(self, job: Job) -> str:
        return self.library.video_url(job)

    def chain_url(self, job: Job) -> str:
        return self.library.chain_url(job)

    def poster_url(self, job: Job) -> str | None:
        return self.library.poster_url(job)

    def media_file(self, name: str) -> tuple[Path, str] | None:
        return self.library.media_file(name)

    def input_image(self, job: Job, role: str = "image") -> Path | None:
        return self.library.input_image(job, role)

    def typical_seconds(self, backend_name: str, duration: int) -> float | None:
        return self.library.typical_seconds(backend_name, duration)

    def continuation(self, job: Job) -> Continuation:
        return self.library.continuation(job)

    def chain_view(self, job: Job) -> ChainView:
        return self.library.chain_view(job)
