"""The page: Gradio Blocks layout and event handlers. The only module that imports gradio.

Handlers are thin: they call ``GenerationService`` and render its ``Progress`` values
as plain text (a vendor message with HTML in it shows as text, never as markup).
Two events form the API for programs, with exactly these parameters:

- ``/generate``: image, prompt, negative_prompt, duration, generate_audio, api_key
- ``/resume``: generation_id, api_key

The browser's history (``gr.BrowserState``) is written by a separate, private event
that fires when a generation id appears, so the API signatures stay clean and the id
is remembered the moment the create returns, even if the tab then closes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from . import errors
from .client import MAX_PROMPT_CHARS
from .images import prepare_image
from .jobs import Progress
from .service import DEMO, GenerationService

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
HISTORY_KEY = "kling-ui-history-v1"
HISTORY_LIMIT = 100
FIT_CHOICES = [
    ("Tell me", "reject"),
    ("Crop to fit", "crop"),
    ("Pad to fit", "pad"),
]
EXAMPLES = [
    ("example-lighthouse.jpg", "Waves crash against the lighthouse as its beam sweeps the dusk."),
    ("example-balloon.jpg", "The hot-air balloon drifts upward; the camera tilts to follow it."),
    ("example-cat.jpg", "The cat slowly turns its head toward the camera and blinks."),
]

PENDING_KEY = "kling-ui-generation-ids"
NOTE_ID_JS = f"""(gid, prompt, history) => {{
  if (gid) {{
    try {{
      const ids = JSON.parse(localStorage.getItem("{PENDING_KEY}") || "[]");
      if (!ids.includes(gid)) {{
        ids.unshift(gid);
        localStorage.setItem("{PENDING_KEY}", JSON.stringify(ids.slice(0, {HISTORY_LIMIT})));
      }}
    }} catch (e) {{}}
  }}
  return [gid, prompt, history];
}}"""
READ_IDS_JS = f"""(pending, history) => [localStorage.getItem("{PENDING_KEY}") || "[]", history]"""

CSS = """
#status textarea { font-family: ui-monospace, monospace; }
#demo-banner { border: 2px solid #f59e0b; border-radius: 8px; padding: 4px 12px;
               background: #fffbeb; }
"""


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


class LocalMP4Video(gr.Video):
    """``gr.Video`` that serves our downloaded MP4 as it is.

    Gradio's own postprocessing runs ``ffprobe`` on every video it outputs to decide
    whether to transcode it: 0.1 s alone, over a second each when many jobs finish at
    once. Ours is always the vendor's H.264 MP4, checked by the client on download.
    """

    def get_block_name(self) -> str:
        return "video"

    def postprocess(self, value: Any) -> Any:
        if isinstance(value, (str, Path)) and str(value).lower().endswith(".mp4"):
            return FileData(path=str(value), orig_name=Path(value).name)
        return super().postprocess(value)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def render_status(update: Progress) -> str:
    """The status panel's text: plain text, one fact a line."""
    lines = [f"Status: {update.phase}"]
    if update.vendor_status and update.vendor_status != update.phase:
        lines[0] += f" (API says {update.vendor_status})"
    timing = (
        f"Elapsed {_clock(update.elapsed)} · queued {_clock(update.queued_for)}"
        f" · generating {_clock(update.generating_for)}"
    )
    if update.credits is not None:
        timing += f" · credits used {update.credits:g}"
    lines.append(timing)
    lines.append(update.message)
    if update.phase == "stopped" or (update.phase == "failed" and update.resumable):
        lines.append("This job is kept in your history: use Resume to pick it up again.")
    return "\n".join(lines)


def render_error(exc: errors.KlingUIError) -> str:
    """A failure before there was a job: nothing sent, refused, or an unknown outcome."""
    if isinstance(exc, errors.InputError):
        state = "not sent"
    elif isinstance(exc, errors.OutcomeUnknown):
        state = "outcome unknown"
    elif isinstance(exc, errors.APIConnectionError):
        state = "not sent"  # the connection was never made
    else:
        state = "refused"
    return f"Status: {state}\n{exc.user_message}"


def _history_rows(service: GenerationService, history: list[dict]) -> list[list[str]]:
    entries = {e.id: e for e in service.entries([h.get("id") for h in history])}
    rows = []
    for item in history:
        gid = item.get("id")
        if not isinstance(gid, str):
            continue
        entry = entries.get(gid)
        status = entry.status if entry else "unknown (resume to check)"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(item.get("created_at") or 0))
        prompt = (entry.prompt if entry else item.get("prompt")) or ""
        backend = " (demo)" if item.get("backend") == DEMO else ""
        rows.append([when, prompt[:80], status + backend, gid])
    return rows


def _valid_history(history: Any) -> list[dict]:
    if not isinstance(history, list):
        return []
    return [h for h in history if isinstance(h, dict) and isinstance(h.get("id"), str)]


def build_ui(service: GenerationService, *, browser_secret: str | None = None) -> gr.Blocks:
    """Lay out the page and wire its events to ``service``."""
    demo_mode = service.demo_mode
    # Videos are served in place, not copied into Gradio's cache: they can be large.
    # (The launch must also list the folder in allowed_paths.)
    gr.set_static_paths([str(service.settings.videos_dir.resolve())])

    def generate(
        image: str | None,
        prompt: str,
        negative_prompt: str,
        duration: int,
        generate_audio: bool,
        api_key: str,
        fit: str = "reject",
    ) -> Iterator[tuple[str, str, str | None]]:
        """Turn an image into a video. Streams (generation id, status text, video path)."""
        gid = ""
        try:
            for update in service.generate(
                image,
                prompt,
                negative_prompt,
                duration,
                generate_audio,
                api_key,
                fit=fit or "reject",
            ):
                gid = update.generation_id
                video = str(update.video_path) if update.video_path else None
                yield gid, render_status(update), video
        except errors.KlingUIError as exc:
            yield gid, render_error(exc), None
        except Exception:  # a bug of ours: the person still gets words, not a traceback
            log.exception("generate failed unexpectedly")
            yield gid, "Status: error\nSomething went wrong on our side. Please try again.", None

    def resume(generation_id: str, api_key: str) -> Iterator[tuple[str, str, str | None]]:
        """Pick up a generation by its id and stream it to the end."""
        gid = (generation_id or "").strip()
        try:
            for update in service.resume(gid, api_key):
                video = str(update.video_path) if update.video_path else None
                yield update.generation_id, render_status(update), video
        except errors.KlingUIError as exc:
            yield gid, f"Status: not resumed\n{exc.user_message}", None
        except Exception:
            log.exception("resume failed unexpectedly")
            yield gid, "Status: error\nSomething went wrong on our side. Please try again.", None

    def _add(history: list[dict], gid: str, prompt: str = "") -> None:
        if not gid or gid in {h["id"] for h in history}:
            return
        entry = service.ledger.get(gid)
        history.insert(
            0,
            {
                "id": gid,
                "created_at": entry.created_at if entry else time.time(),
                "prompt": (entry.prompt if entry else prompt or "")[:300],
                "backend": entry.backend if entry else None,
            },
        )
        history.sort(key=lambda h: h.get("created_at") or 0, reverse=True)
        del history[HISTORY_LIMIT:]

    def remember(gid: str, prompt: str, history: Any) -> tuple[list[dict], Any, Any]:
        history = _valid_history(history)
        _add(history, gid, prompt)
        return history, *_history_views(history)

    def restore(pending: str, history: Any) -> tuple[list[dict], Any, Any]:
        """On page load: fold in ids the browser noted before their history write landed."""
        history = _valid_history(history)
        try:
            ids = json.loads(pending or "[]")
        except ValueError:
            ids = []
        for gid in ids if isinstance(ids, list) else []:
            if isinstance(gid, str) and len(gid) <= 200:
                _add(history, gid)
        return history, *_history_views(history)

    def _history_views(history: list[dict]) -> tuple[Any, Any]:
        rows = _history_rows(service, history)
        choices = [(f"{r[0]} · {r[2]} · {r[1][:40]} · {r[3][:8]}", r[3]) for r in rows]
        return (
            gr.update(value=rows),
            gr.update(choices=choices, value=choices[0][1] if choices else None),
        )

    def refresh(history: Any) -> tuple[Any, Any]:
        return _history_views(_valid_history(history))

    def check_image(image: str | None, fit: str) -> str:
        if not image:
            return ""
        try:
            prepared = prepare_image(image, fit=fit or "reject")
        except errors.InputError as exc:
            return f"⚠ {exc.user_message}"
        note = f" ({prepared.adjusted})" if prepared.adjusted else ""
        return f"✓ Image OK: will be sent as {prepared.width}×{prepared.height}{note}."

    def count(prompt: str) -> str:
        n = len(prompt or "")
        over = " (over the limit)" if n > MAX_PROMPT_CHARS else ""
        return f"{n} / {MAX_PROMPT_CHARS} characters{over}"

    def stop(gid: str) -> str:
        if gid:
            service.mark_stopped(gid)
        return (
            "Status: stopped watching\nThe job goes on at the vendor and may be billed. "
            "It is kept in your history: use Resume to pick it up again."
        )

    def open_selected(gid: str | None, api_key: str) -> Iterator[tuple[str, str, str | None]]:
        if not gid:
            yield "", "Status: nothing selected\nPick a generation from the history first.", None
            return
        yield from resume(gid, api_key)

    with gr.Blocks(title="kling-ui · image to video") as page:
        gr.Markdown(
            "# Image to video with Kling v2.6 Pro\n"
            "Drop in an image, describe the motion, and press **Generate**. "
            "Each job gets an id right away and is kept in your history, so a reload or a "
            "closed tab never loses it."
        )
        gr.Markdown(
            "**Demo mode.** No API key is set, so videos are *simulated* by a local stand-in "
            "for the API and no credits are spent. Enter your AIML API key below to make real "
            "videos.",
            visible=demo_mode,
            elem_id="demo-banner",
        )
        gr.Markdown(
            "**Bring your own key.** This app generates real videos with your AIML API "
            "account: enter your key below. It is used for your requests only and never stored.",
            visible=service.settings.require_user_key,
            elem_id="key-banner",
        )
        with gr.Row():
            with gr.Column(scale=1):
                image = UploadedImage(
                    label="Image",
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard", "webcam"],
                    elem_id="image",
                )
                image_note = gr.Markdown(elem_id="image-note")
                fit = gr.Radio(
                    FIT_CHOICES,
                    value="reject",
                    label="If the image's shape is outside 1:2.5 to 2.5:1",
                    elem_id="fit",
                )
                prompt = gr.Textbox(
                    label="Prompt",
                    lines=4,
                    placeholder="Describe the motion: what moves, how the camera moves.",
                    elem_id="prompt",
                )
                prompt_count = gr.Markdown(count(""), elem_id="prompt-count")
                negative = gr.Textbox(
                    value="",
                    label="Negative prompt",
                    lines=2,
                    placeholder="What to avoid (optional)",
                    elem_id="negative",
                )
                with gr.Row():
                    duration = gr.Radio(
                        [("5 seconds", 5), ("10 seconds", 10)],
                        value=5,
                        label="Duration",
                        elem_id="duration",
                    )
                    audio = gr.Checkbox(value=True, label="Generate audio", elem_id="audio")
                api_key = gr.Textbox(
                    value="",
                    label="API key",
                    type="password",
                    placeholder="Your AIML API key (optional; never stored)",
                    elem_id="api-key",
                )
                with gr.Row():
                    generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop_btn = gr.Button("Stop watching", variant="stop", elem_id="stop")
            with gr.Column(scale=1):
                gen_id = gr.Textbox(
                    label="Generation id",
                    interactive=False,
                    buttons=["copy"],
                    elem_id="generation-id",
                )
                status = gr.Textbox(
                    label="Status",
                    lines=4,
                    interactive=False,
                    elem_id="status",
                )
                video = LocalMP4Video(
                    label="Video",
                    autoplay=True,
                    interactive=False,
                    buttons=["download"],
                    elem_id="video",
                )
        with gr.Accordion("History", open=True):
            history_table = gr.Dataframe(
                headers=["When", "Prompt", "Status", "Generation id"],
                interactive=False,
                wrap=True,
                elem_id="history-table",
            )
            with gr.Row():
                history_pick = gr.Dropdown(
                    label="Generation", choices=[], elem_id="history-pick", scale=3
                )
                open_btn = gr.Button("Play or resume", elem_id="open", scale=1)
            with gr.Row():
                resume_id = gr.Textbox(
                    label="Resume by id",
                    placeholder="Paste a generation id",
                    elem_id="resume-id",
                    scale=3,
                )
                resume_btn = gr.Button("Resume", elem_id="resume", scale=1)

        examples = [
            [str(ASSETS / name), text] for name, text in EXAMPLES if (ASSETS / name).exists()
        ]
        if examples:
            gr.Examples(
                examples=examples,
                inputs=[image, prompt],
                label="Examples (fill the inputs; nothing is generated until you press Generate)",
                cache_examples=False,
                run_on_click=False,
            )

        history = gr.BrowserState(
            [], storage_key=HISTORY_KEY, secret=browser_secret or secrets.token_hex(16)
        )
        fit_state = gr.State("reject")

        job_outputs = [gen_id, status, video]
        gen_event = generate_btn.click(
            generate,
            inputs=[image, prompt, negative, duration, audio, api_key, fit_state],
            outputs=job_outputs,
            api_name="generate",
            concurrency_limit=None,
        )
        resume_event = resume_btn.click(
            resume,
            inputs=[resume_id, api_key],
            outputs=job_outputs,
            api_name="resume",
            concurrency_limit=None,
        )
        open_event = open_btn.click(
            open_selected,
            inputs=[history_pick, api_key],
            outputs=job_outputs,
            api_visibility="private",
            concurrency_limit=None,
        )
        for event in (gen_event, resume_event, open_event):
            event.then(refresh, [history], [history_table, history_pick], api_visibility="private")
        stop_btn.click(
            stop,
            inputs=[gen_id],
            outputs=[status],
            cancels=[gen_event, resume_event, open_event],
            api_visibility="private",
        ).then(refresh, [history], [history_table, history_pick], api_visibility="private")

        # The id is noted in the browser's localStorage by JavaScript in the same instant
        # it appears, then written to the (encrypted) BrowserState by the server. A reload
        # between the two loses nothing: the page load folds the noted ids back in.
        gen_id.change(
            remember,
            inputs=[gen_id, prompt, history],
            outputs=[history, history_table, history_pick],
            api_visibility="private",
            show_progress="hidden",
            js=NOTE_ID_JS,
        )
        fit.change(lambda f: f, fit, fit_state, api_visibility="private", show_progress="hidden")
        fit.change(check_image, [image, fit], image_note, api_visibility="private")
        image.change(check_image, [image, fit], image_note, api_visibility="private")
        prompt.change(count, prompt, prompt_count, api_visibility="private", show_progress="hidden")
        pending_ids = gr.Textbox(visible=False)
        page.load(
            restore,
            [pending_ids, history],
            [history, history_table, history_pick],
            api_visibility="private",
            js=READ_IDS_JS,
        )
    return page


def launch_options(service: GenerationService) -> dict[str, Any]:
    """What ``page.launch`` needs besides host and port: the page's style, and the
    folder of downloaded videos, which Gradio serves only when told to."""
    return {"css": CSS, "allowed_paths": [str(service.settings.videos_dir.resolve())]}


def browser_secret(data_dir: Path) -> str:
    """The key that encrypts the history in the browser: stable across restarts."""
    from_env = os.environ.get("KLING_UI_BROWSER_SECRET", "").strip()
    if from_env:
        return from_env
    path = Path(data_dir) / "browser-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
        return value
