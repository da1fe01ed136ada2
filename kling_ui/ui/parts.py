"""Our subclasses of Gradio's components, and the value a finished video is handed out as."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData


class UploadedImage(gr.Image):
    """``gr.Image`` that hands the handler the uploaded file untouched.

    Gradio's own preprocessing opens the file with Pillow (and re-encodes some modes),
    so a damaged or non-image upload would fail inside Gradio with a generic error. Here
    the path goes straight to ``images.prepare_image``, which decodes it once and explains
    any problem in words.
    """

    def get_block_name(self) -> str:
        return "image"  # the same front-end component

    def preprocess(self, payload: Any) -> str | None:
        if payload is not None and getattr(payload, "path", None):
            return str(payload.path)
        return super().preprocess(payload)


class ChoiceOfNumbers(gr.Radio):
    """``gr.Radio`` whose choices are whole numbers (the duration), said so to programs.

    Gradio's own radio tells the API (and its MCP tools' schemas) its value is a string
    whatever its choices, so an agent's ``10`` is refused as "not of type 'string'"."""

    def get_block_name(self) -> str:
        return "radio"

    def api_info(self) -> dict[str, Any]:
        info = super().api_info()
        values = info.get("enum") or []
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            info["type"] = "integer"
        return info


class LocalMP4Video(gr.Video):
    """``gr.Video`` that serves our downloaded MP4 as it is.

    Gradio's own postprocessing runs ``ffprobe`` on every video it outputs to decide
    whether to transcode it: 0.1 s alone, over a second each when many jobs finish at
    once. Ours is always the vendor's H.264 MP4, checked by the client on download.
    """

    def get_block_name(self) -> str:
        return "video"

    def postprocess(self, value: Any) -> Any:
        if isinstance(value, MediaLink):  # our /media/ address: no path of the server's
            return FileData(path=value.url, url=value.url, orig_name=value.name)
        if isinstance(value, (str, Path)) and str(value).lower().endswith(".mp4"):
            return FileData(path=str(value), orig_name=Path(value).name)
        return super().postprocess(value)


@dataclass(frozen=True)
class MediaLink:
    """A finished video as the page gets it: its /media/ address and the name to save it as."""

    url: str
    name: str
