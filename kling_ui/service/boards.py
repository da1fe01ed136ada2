"""Compare boards and exports: 2 to 4 finished videos seen side by side with what each is
(model, settings, time taken, price), and files made from them (``export``): the board as one
side-by-side MP4, any video as a GIF or a WebM.

Only a caller's own videos (the history's rule, ``Access.visible``), finished and on disk
here (fetched again when another replica made them, ``Library.media_file``). Exports are
CPU work: ``EXPORTS_AT_ONCE`` run at a time in this process, the rest wait their turn up
to ``EXPORT_WAIT`` seconds and are then told to try again, so a crowd of exports can't starve
the page's own events.

Imports ``export``, ``history``, the library and access rooms; never gradio.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import errors, export
from ..history import Job
from ..request import KLING
from .access import Access
from .library import Library

EXPORTS_AT_ONCE = 1  # a 2-core Space: one export's encoder already uses both
EXPORT_WAIT = 60.0  # seconds an export waits for its turn
KINDS = ("gif", "webm")


@dataclass(frozen=True)
class BoardItem:
    """One video on a board, as the page shows it."""

    job_id: str
    gid: str  # the id the page knows it by (the vendor's, else ours)
    video_url: str
    poster_url: str | None
    model: str
    name: str  # the model's name in the catalogue
    prompt: str
    settings: str  # the fields it was sent with, in a line
    seconds: float | None  # from the click that made it to its video
    usd: float | None  # what it cost (the charge once known, else its price when sent)
    path: Path  # its MP4 here


def settings_line(options: dict[str, Any]) -> str:
    """A job's fields in a line: "10 s · audio off · seed 42"."""
    words = []
    for name, value in options.items():
        if value is None or value == "" or name == "negative_prompt":
            continue
        if name == "duration":
            words.append(f"{value} s")
        elif isinstance(value, bool):
            words.append(f"{name.replace('_', ' ')} {'on' if value else 'off'}")
        else:
            words.append(f"{name.replace('_', ' ')} {value}")
    return " · ".join(words)


class Boards:
    """Boards of a caller's videos, and the files exported from them."""

    def __init__(self, access: Access, library: Library, name_of: Any) -> None:
        self.access, self.library, self._name_of = access, library, name_of
        self._turns = threading.BoundedSemaphore(EXPORTS_AT_ONCE)

    def items(self, ids: list[str], owner: str) -> list[BoardItem]:
        """``ids``' videos (at most ``export.MOST_ON_BOARD``, each once), or ``InputError``
        naming the first that can't be on a board."""
        ids = list(dict.fromkeys(i for i in ids if i))
        if len(ids) > export.MOST_ON_BOARD:
            raise errors.InputError(f"A board shows at most {export.MOST_ON_BOARD} videos.")
        return [self.item(any_id, owner) for any_id in ids]

    def item(self, any_id: str, owner: str) -> BoardItem:
        job = self.access.entry(any_id, owner)
        if job is None or not self.access.visible(job, owner):
            raise errors.InputError(f"No video of yours has the id {any_id[:8]}.")
        if job.state != "done" or not job.video_token:
            raise errors.InputError(f"{_short(job.prompt)} has no finished video to compare.")
        found = self.library.media_file(f"{job.video_token}.mp4")
        if found is None:
            raise errors.InputError(f"{_short(job.prompt)}: its video is no longer kept here.")
        # The wait its maker saw: from the click to the video.
        seconds = job.finished_at - job.created_at if job.finished_at else None
        model = job.request.model
        return BoardItem(
            job_id=job.job_id, gid=job.generation_id or job.job_id,
            video_url=self.library.video_url(job), poster_url=self.library.poster_url(job),
            model=model, name=self._name_of(model), prompt=job.prompt,
            settings=settings_line(dict(job.request.options)), seconds=seconds,
            usd=_cost(job), path=found[0],
        )  # fmt: skip

    def finished(self, ids: list[str], owner: str, most: int = 100) -> list[BoardItem]:
        """The caller's finished videos among ``ids`` (at most ``most``), in their order."""
        found = []
        for any_id in list(dict.fromkeys(i for i in ids if i))[:most]:
            try:
                found.append(self.item(any_id, owner))
            except errors.KlingUIError:
                continue  # unfinished, failed, gone or not theirs
        return found

    def export_board(self, ids: list[str], owner: str, dest: Path) -> export.Exported:
        """The board as one side-by-side MP4 at ``dest``, each video under its label."""
        items = self.items(ids, owner)
        if len(items) < 2:
            raise errors.InputError("Put 2 to 4 videos on the board to export it.")
        labels = [f"{n}. {item.name} · {item.prompt}" for n, item in enumerate(items, 1)]
        with self._turn():
            return export.board([item.path for item in items], labels, dest)

    def export_video(self, any_id: str, owner: str, kind: str, dest: Path) -> export.Exported:
        """One of the caller's videos as a GIF or a WebM (``kind``) at ``dest``."""
        if kind not in KINDS:
            raise errors.InputError(f"A video can be exported as {' or '.join(KINDS)}.")
        item = self.item(any_id, owner)
        with self._turn():
            return export.gif(item.path, dest) if kind == "gif" else export.webm(item.path, dest)

    def _turn(self) -> _Turn:
        return _Turn(self._turns)


class _Turn:
    """A turn at exporting, waited for up to ``EXPORT_WAIT`` seconds."""

    def __init__(self, turns: threading.BoundedSemaphore) -> None:
        self._turns = turns

    def __enter__(self) -> None:
        if not self._turns.acquire(timeout=EXPORT_WAIT):
            raise errors.InputError(
                "Other exports are being made right now: try again in a minute."
            )

    def __exit__(self, *exc: object) -> None:
        self._turns.release()


def _cost(job: Job) -> float | None:
    if job.charged_usd is not None:
        return job.charged_usd
    return job.estimate_usd


def _short(prompt: str, most: int = 40) -> str:
    prompt = " ".join((prompt or "").split())
    text = prompt if len(prompt) <= most else prompt[: most - 1].rstrip() + "…"
    return f"“{text}”" if text else "That video"


def model_name(offer: Any, model: str) -> str:
    """``model``'s name in the catalogue (ours: Kling v2.6 Pro), else its id."""
    if model == KLING.model:
        return "Kling v2.6 Pro"
    entry = offer().entry(model)
    return entry.name if entry is not None else model


class BoardMethods:
    """The service's public methods that are the boards' (``GenerationService``'s own)."""

    boards: Boards

    def compare(self, ids: list[str], owner: str) -> list[BoardItem]:
        """The caller's videos ``ids`` as a board shows them (``InputError`` in words for
        one that can't be on it)."""
        return self.boards.items(ids, owner)

    def export_board(self, ids: list[str], owner: str, dest: Path) -> export.Exported:
        return self.boards.export_board(ids, owner, dest)

    def finished(self, ids: list[str], owner: str) -> list[BoardItem]:
        """The caller's finished videos among ``ids``, in their order (the others left out)."""
        return self.boards.finished(ids, owner)

    def export_video(self, any_id: str, owner: str, kind: str, dest: Path) -> export.Exported:
        return self.boards.export_video(any_id, owner, kind, dest)
