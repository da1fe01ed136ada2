"""Longer videos: a chain of jobs, each continuing the one before from its last frame.

The ledger keeps each job's ``parent_id``; this module finds a chain's parts, makes the
last frame a continuation starts from, and stitches the parts into one MP4 (``media``),
kept beside the videos as ``<last part's video>-chain.mp4`` and made again from the ledger
whenever it is missing (after a restart, or a sweep). Disk grows with the chain, not with its
square: the parts are kept, and one stitched copy of a line of parts, the one last made (a
longer chain's removes its shorter ones'; a shorter one asked for by its address is made
again, and removes the longer one's until that is asked for). Kling makes 5 or 10 seconds at a time
and the AIML API has no extend endpoint: image to video on the last frame is the way.
A chain's view (``ChainView``: its parts and addresses) reads only; the stitch is made
when the whole video is asked for (``video``), never while a page looks at the chain.

Imports ``errors``, ``history``, ``media``; never gradio.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from . import errors
from .history import Job, Ledger
from .media import save_last_frame, stitch
from .provenance import stamp_job

log = logging.getLogger(__name__)

LONG_CHAIN_S = 180  # Kling's own app extends a video to 3 minutes: past it, a warning
NOT_ENDED = {"failed": "it failed", "not_created": "it was never made", "expired": "it expired",
             "cancelled": "it was cancelled"}  # fmt: skip


@dataclass(frozen=True)
class Continuation:
    """What "Continue" hands the form: the last frame, the job it continues, the chain."""

    parent: Job
    frame: Path  # the parent's last frame, a JPEG
    parts: list[Job]  # the chain so far, first part first (the parent last)

    @property
    def seconds(self) -> int:
        return sum(p.duration for p in self.parts)

    def words(self, next_duration: int = 5, *, page: bool = True) -> str:
        """What the person is told: what is continued, what to do next on the ``page``,
        and a warning past 3 minutes."""
        n = len(self.parts)
        what = f"“{_short(self.parent.prompt)}”" if self.parent.prompt.strip() else "this video"
        text = (
            f"Continuing from the last frame of {what} (the chain has "
            f"{n} part{'s' if n > 1 else ''}, {self.seconds} s)."
        )
        if page:
            text += (
                " Write what happens next and press Generate: the new part is stitched to the "
                "chain when it is done."
            )
        if self.seconds + next_duration > LONG_CHAIN_S:
            text += (
                f" Note: the chain will pass {LONG_CHAIN_S // 60} minutes; each part starts "
                "from the last frame, so pictures can drift over many parts."
            )
        return text


class Chains:
    """The chains of one ledger: their parts, last frames and stitched videos."""

    def __init__(self, ledger: Ledger, folder: Path) -> None:
        self.ledger = ledger
        self.frames = Path(folder) / "frames"
        self._lock = threading.Lock()  # one stitcher at a time (a chain asked for twice)

    def parts(self, job: Job) -> list[Job]:
        return self.ledger.chain(job.job_id)

    def continuation(self, job: Job) -> Continuation:
        """The last frame of a finished video, ready to be the next part's image; in words,
        why not, for a job that isn't finished or whose file is gone."""
        if job.state != "done":
            why = NOT_ENDED.get(job.state, "it hasn't finished yet")
            raise errors.InputError(
                f"Only a finished video can be continued, and this one isn't: {why}."
            )
        video = Path(job.video_path) if job.video_path else None
        if video is None or not video.is_file():
            raise errors.InputError(
                "This video's file is no longer kept here, so its last frame can't be read. "
                "Start a new video from an image instead."
            )
        frame = self.frames / f"{job.job_id}-last.jpg"
        if not frame.is_file():
            self.frames.mkdir(parents=True, exist_ok=True)
            if save_last_frame(video, frame) is None:
                raise errors.InputError("The last frame of this video could not be read.")
        return Continuation(job, frame, self.parts(job))

    def check_parent(self, parent: Job | None) -> None:
        """A job may continue only a finished video whose file is here."""
        if parent is None:
            raise errors.InputError("The video to continue is not in this app's history.")
        self.continuation(parent)

    def latest(self, job: Job) -> bool:
        """True when no finished video continues ``job``: its chain is the longest made yet."""
        return not any(c.state == "done" for c in self.ledger.continuations(job.job_id))

    def stitched(self, job: Job) -> Path | None:
        """The chain ending at ``job`` as one MP4 if it is stitched already; never makes it."""
        if not job.parent_id or job.state != "done" or not job.video_path:
            return None
        dest = chain_path(Path(job.video_path))
        return dest if dest.is_file() else None

    def can_stitch(self, job: Job) -> bool:
        """True when the chain ending at ``job`` is stitched, or could be (``video``): every
        part done, its file here. Reads only: a view asks this, a download stitches."""
        return self.stitched(job) is not None or self._files(job) is not None

    def _files(self, job: Job) -> tuple[list[Job], list[Path]] | None:
        """The parts of the chain ending at ``job`` and their videos; None when ``job``
        continues nothing or a part's video is gone (removed after its days)."""
        if not job.parent_id or job.state != "done" or not job.video_path:
            return None
        parts = self.parts(job)
        files = [Path(p.video_path) for p in parts if p.state == "done" and p.video_path]
        if not complete(parts) or len(files) != len(parts) or not all(f.is_file() for f in files):
            return None  # a part gone: no "whole" that is not
        return parts, files

    def video(self, job: Job) -> Path | None:
        """The chain ending at ``job`` as one MP4, stitched now if not yet; None when ``job``
        continues nothing, or a part's video is missing or can't be read. Making it removes
        the stitched copies of the other chains of its line (see the module's docstring)."""
        dest = self.stitched(job)
        if dest is not None:
            return dest
        found = self._files(job)
        if found is None:
            return None
        parts, files = found
        dest = chain_path(Path(str(job.video_path)))
        with self._lock:
            if not dest.is_file():
                try:
                    done = stitch(files, dest)
                except Exception as exc:  # the part itself is done and paid: it stays shown
                    log.warning("could not stitch the chain of %s: %s", job.job_id, exc)
                    return None
                log.info("stitched %d parts (%s, %.1f s)", len(files), done.method, done.seconds)
                # The last part's settings, and every part's id, in order.
                stamp_job(dest, job, parts=tuple(parts))
                self._remove_others(parts)
        return dest

    def _remove_others(self, parts: list[Job]) -> None:
        """Remove the stitched copies of the chains that share parts with this one: those
        ending at an earlier part, and those ending at a later part (of every branch)."""
        others = parts[:-1]
        later = self.ledger.continuations(parts[-1].job_id)
        while later and len(others) < 10_000:  # a loop, which the service never makes, ends
            job = later.pop()
            others.append(job)
            later.extend(self.ledger.continuations(job.job_id))
        for other in others:
            if other.parent_id and other.video_path:
                chain_path(Path(other.video_path)).unlink(missing_ok=True)


@dataclass(frozen=True)
class ChainView:
    """A chain as a page shows it, read without writing or stitching anything: its parts
    first to last, each part's video address (None when it has none to offer yet), and the
    whole chain's (None when it can't be made: a part's video gone)."""

    parts: list[Job]
    part_urls: list[str | None]
    whole_url: str | None

    @property
    def complete(self) -> bool:
        return complete(self.parts)


def complete(parts: list[Job]) -> bool:
    """True when the chain's first part continues nothing (no earlier part was removed)."""
    return bool(parts) and not parts[0].parent_id


def chain_path(video: Path) -> Path:
    """Where the chain ending at this part's video is kept."""
    return video.with_name(f"{video.stem}-chain.mp4")


def _short(text: str, most: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "…"
