"""How a video was made, kept inside its MP4: written when it lands, read back to fill a form.

Every MP4 the app saves carries its settings in the file's own metadata, the way image tools
put theirs into PNG text chunks, so a video that leaves the app still says how it was made:
the model, the prompt, the negative prompt, the model's other fields, which images were
given (their roles, never their pixels or links), the job's short id, when it was made and
the app's version. The short id (8 characters) opens the job only for someone who may see it
already (``Access.entry``): a whole id is a key to its job where the app runs on its own key,
and a file travels. They are one JSON object in the ``kling_ui`` tag (an MP4 ``mdta`` key, which
ffprobe and exiftool list), with ``title`` (the prompt) and ``comment`` (a line in words)
for players that show only the usual tags. The API key is never among them: a job's request
holds none.

Written by copying the streams into a new file (no decode, no encode: about 40 ms for a 5 MB
clip), moved into place whole (``files.atomic_path``). A video that can't be stamped is kept
as it was, with a warning in the log: a paid video is never lost to its label.

Read back with ``read``: a file this app did not make, or can't read, is answered in words
(``NotStamped``, an ``InputError``). Imports PyAV, ``files``, ``errors`` and ``request``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from . import __version__, errors
from .files import atomic_path
from .request import Request, image_roles, spec_of

log = logging.getLogger(__name__)

TAG = "kling_ui"
FORMAT = 1  # the tag's layout; a newer one is refused in words, never half read
APP = "kling-ui"


class NotStamped(errors.InputError):
    """A file that carries no settings this app can read (the words say why)."""


@dataclass(frozen=True)
class Made:
    """How one video was made: what its MP4 carries."""

    model: str
    prompt: str
    options: dict[str, Any] = field(default_factory=dict)
    images: tuple[str, ...] = ()  # the roles of the images it was made from
    job_id: str = ""  # the job's short id (never the whole one: a whole id opens the job)
    made_at: str = ""  # ISO 8601, UTC
    version: str = __version__
    parts: tuple[str, ...] = ()  # a stitched chain: its parts' short ids, in order

    @property
    def negative_prompt(self) -> str:
        return str(self.options.get("negative_prompt") or "")

    def to_dict(self) -> dict[str, Any]:
        """The tag's JSON object (and ``/settings_from_video``'s answer)."""
        data: dict[str, Any] = {
            "app": APP, "format": FORMAT, "version": self.version, "job_id": self.job_id,
            "made_at": self.made_at, "model": self.model, "prompt": self.prompt,
            "negative_prompt": self.negative_prompt, "options": dict(self.options),
            "images": list(self.images),
        }  # fmt: skip
        if self.parts:
            data["parts"] = list(self.parts)
        return data

    def line(self) -> str:
        """The ``comment`` tag: one line in words."""
        return f"Made with {APP} {self.version}: {self.model}, job {self.job_id or '?'}"


def made_of(job: Any, *, parts: tuple[str, ...] = ()) -> Made:
    """What ``job`` (a ledger ``Job``) was made from, as its MP4 carries it."""
    request: Request = job.request
    roles = Request.roles_in_json(job.request_json) if job.request_json else None
    if roles is None:  # kept before the roles were: the images it can't have gone without
        roles = image_roles([*spec_of(request.model).needs(), *request.images])
    when = job.finished_at or job.created_at
    return Made(
        model=request.model,
        prompt=request.prompt,
        options=dict(request.options),
        images=tuple(roles),
        job_id=job.short_id,
        made_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        parts=parts,
    )


def stamp_job(
    video: Path, job: Any, *, parts: tuple[str, ...] = (),
    first_frame: Callable[[Any], None] | None = None,
) -> bool:  # fmt: skip
    """``stamp`` with how ``job`` (a ledger ``Job``) was made; ``parts``: a stitched chain's
    parts' jobs. Never raises, the reading of the job's request included."""
    try:
        made = made_of(job, parts=tuple(p.short_id for p in parts))
    except Exception as exc:  # a stored request we can't read: the video stays as it is
        log.warning("could not read how %s was made: %s", video.name, type(exc).__name__)
        return False
    return stamp(video, made, first_frame=first_frame)


def stamp(video: Path, made: Made, *, first_frame: Callable[[Any], None] | None = None) -> bool:
    """Write ``made`` into ``video``'s metadata (its streams copied as they are). False,
    with the video left as it was, when it can't be: never raises. ``first_frame``, when
    given, is handed the video's first decoded frame (an ``av.VideoFrame``) on the way: the
    runner makes the poster from it, so a landing video is opened and probed once (bench 6)."""
    try:
        with atomic_path(video) as part:
            _copy_with_tags(video, part, made, first_frame)
        return True
    except Exception as exc:  # a video we could not label is still the person's video
        log.warning("could not write the settings into %s: %s", video.name, type(exc).__name__)
        return False


def _copy_with_tags(
    source: Path, dest: Path, made: Made | None, first_frame: Callable[[Any], None] | None
) -> None:
    """``source``'s streams into ``dest`` with ``made``'s tags (None: without ours)."""
    options = {"movflags": "use_metadata_tags+faststart"}
    with av.open(str(source)) as inp, av.open(str(dest), "w", format="mp4", options=options) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams
                   if s.type in ("video", "audio")}  # fmt: skip
        kept = {k: v for k, v in inp.metadata.items() if k not in _OURS}
        out.metadata.update(kept)
        if made is not None:
            out.metadata["title"] = made.prompt[:250]
            out.metadata["comment"] = made.line()
            out.metadata[TAG] = json.dumps(made.to_dict(), sort_keys=True)
        picture = inp.streams.video[0] if first_frame and inp.streams.video else None
        for packet in inp.demux(*(inp.streams[i] for i in streams)):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            if picture is not None and packet.stream is picture:
                # Decoded before it is muxed: the muxer takes the packet's data.
                for frame in picture.decode(packet):
                    first_frame(frame)  # type: ignore[misc]
                    picture = None
                    break
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
        if picture is not None:  # the decoder held its frames back to the end
            for frame in picture.decode(None):
                first_frame(frame)  # type: ignore[misc]
                break


def plain_copy(video: Path) -> Path | None:
    """A copy of ``video`` without our tags (made once, kept beside it as
    ``<name>.plain.mp4``): what a share link serves, whose page shows only what its owner
    chose. None when it can't be made."""
    plain = video.with_name(video.stem + ".plain.mp4")
    if plain.is_file() and plain.stat().st_mtime >= video.stat().st_mtime:
        return plain
    try:
        with atomic_path(plain) as part:
            _copy_with_tags(video, part, None, None)
        return plain
    except Exception as exc:
        log.warning("could not copy %s without its settings: %s", video.name, type(exc).__name__)
        return None


# Tags the muxer writes itself, or ours written afresh.
_OURS = {"major_brand", "minor_version", "compatible_brands", "encoder", "title", "comment", TAG}


def read(video: Path | str) -> Made:
    """The settings ``video`` carries, or ``NotStamped`` saying in words why there are none."""
    try:
        with av.open(str(video)) as container:
            has_video = any(s.type == "video" for s in container.streams)
            text = container.metadata.get(TAG)
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        raise NotStamped(
            "That file is not a video the app can read: drop an MP4 it made."
        ) from None
    if not has_video:
        raise NotStamped("That file has no video in it: drop an MP4 this app made.")
    if not text:
        raise NotStamped(
            "That video carries no kling-ui settings: only MP4s this app saved have them "
            "(a video from elsewhere, or one re-encoded by another program, does not)."
        )
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("app") != APP:
            raise ValueError("not ours")
        if int(data.get("format", 0)) > FORMAT:
            raise NotStamped(
                f"That video was made by a newer kling-ui ({data.get('version', '?')}): "
                "update this app to read its settings."
            )
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise ValueError("options")
        return Made(
            model=str(data["model"]),
            prompt=str(data.get("prompt") or ""),
            options=options,
            images=tuple(str(r) for r in data.get("images") or ()),
            job_id=str(data.get("job_id") or ""),
            made_at=str(data.get("made_at") or ""),
            version=str(data.get("version") or ""),
            parts=tuple(str(p) for p in data.get("parts") or ()),
        )
    except NotStamped:
        raise
    except (ValueError, KeyError, TypeError):
        raise NotStamped("That video's kling-ui settings are damaged and can't be read.") from None
