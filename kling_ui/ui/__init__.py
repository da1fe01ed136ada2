"""The page: Gradio Blocks. The only package that imports gradio.

The page is the list of its sections, each one module with its layout, its events (a class
of plain methods over ``GenerationService``'s public methods) and its ``listen`` (their
wiring): ``form`` (the image, prompt and settings), ``progress`` (the job's card and video,
watched by ``watching``; the card's template is ``card``), ``gallery`` (your past videos),
``batch``, ``chain`` (Continue, the chain's view), ``copy_code``, ``prices``, ``studio``
(the model picker), ``helper`` (the prompt's tools: Improve prompt); ``agents``
for the MCP tools. ``base`` holds what they share; ``handlers.Handlers`` gathers the events
(tests call them directly, as Gradio does); ``wiring.wire`` calls each section's
``listen`` and wires the API. ``build_ui`` below lays the sections out.

Two events form the API for programs, with exactly these parameters:

- ``/generate``: image, prompt, negative_prompt, duration, generate_audio, api_key
- ``/resume``: generation_id, api_key

With ``--mcp`` the API is instead the agents' tools of ``agents`` (generate, submit, resume,
status, estimate: the key from the X-AIMLAPI-Key header only, JSON answers), which Gradio's
MCP server offers too.

Their status text is plain text, one fact a line; the page shows the same stream as a card
rendered from our own template, every vendor or user string escaped.

The browser's history (``gr.BrowserState``) is written by private events only, each of which
folds in the generation id on show, so no two writers disagree about it. The id is also
noted in localStorage by JavaScript the instant it appears, so a reload loses nothing.
Gradio's run history (which would keep every input, the API key field included, in the
browser) is off.
"""

from __future__ import annotations

import inspect
import secrets
import warnings
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from ..config import Settings
from ..files import shared_secret
from ..images import MAX_INPUT_BYTES
from ..service import GenerationService
from ..share_page import share_routes
from ..web import BodyLimit, Guard, body_rules, is_loopback, media_route
from .batch import batch_section
from .callers import AgentCaller, hf_sign_in_ready
from .compare import BOARD_KEY, compare_section
from .form import banners, examples, form_section
from .gallery import gallery_section
from .handlers import Handlers
from .helper import PROMPTS_KEY
from .old_calls import OldCalls
from .parts import LocalMP4Video, MediaLink, UploadedImage
from .progress import job_section
from .sharing import share_section
from .wiring import PAGE_TITLE, Owner, Page, wire
from .words import render_status

__all__ = [
    "Handlers", "LocalMP4Video", "MediaLink", "UploadedImage", "browser_secret", "build_ui",
    "launch_options", "render_status",
]  # fmt: skip

HERE = Path(__file__).resolve().parent
CSS = (HERE / "page.css").read_text()
PAGE_JS = (HERE / "page.js").read_text()
HISTORY_KEY = "kling-ui-history-v1"
OWNER_KEY = "kling-ui-owner-v1"  # this browser's owner token (who made which job)
INTRO = (
    "# Image to video with Kling v2.6 Pro\n"
    "Drop in an image, describe the motion, and press **Generate**. Each job gets an id "
    "right away and is kept in your videos below, so a reload or a closed tab never loses it."
)


def build_ui(service: GenerationService, *, browser_secret: str | None = None) -> gr.Blocks:
    """Lay out the page, section by section, and wire its events to ``service``."""
    handlers = Handlers(service)
    # Videos are served in place at /media/<token>.mp4 (``launch_options``), never through
    # Gradio's file route, whose addresses carry the server's paths.
    days = service.settings.retention_days
    # With retention on, Gradio's own uploads go after the same time (checked hourly).
    delete_cache = (3600, int(days * 86400)) if days > 0 else None
    with gr.Blocks(title=PAGE_TITLE, analytics_enabled=False, delete_cache=delete_cache) as blocks:
        gr.Markdown(INTRO)
        banners(service)
        if hf_sign_in_ready(service.settings.on_space):  # your videos in any browser
            gr.LoginButton("Sign in with Hugging Face: your videos in any browser", size="sm")
        with gr.Row():
            with gr.Column(scale=1):
                form = form_section(handlers.count(""), key_first=service.settings.require_user_key)
            with gr.Column(scale=1):
                job = job_section()
        secret = browser_secret or secrets.token_hex(16)
        videos = gallery_section()
        board = compare_section()
        share = share_section()
        batch = batch_section(secret)
        examples(form)
        history = gr.BrowserState([], storage_key=HISTORY_KEY, secret=secret)
        form.helper.kept = gr.BrowserState([], storage_key=PROMPTS_KEY, secret=secret)
        board.state = gr.BrowserState({"ids": [], "kept": ""}, storage_key=BOARD_KEY, secret=secret)
        # The browser's owner token: kept in its storage, and for each event in the session
        # (server side), where the page's events read it.
        owner = Owner(gr.BrowserState("", storage_key=OWNER_KEY, secret=secret), gr.State(""))
        tz = gr.Textbox(visible=False)
        wire(handlers, Page(blocks, form, job, videos, batch, history, tz, owner, board, share))
    keep_signatures(blocks)
    return blocks


def keep_signatures(blocks: gr.Blocks) -> None:
    """Each block class's ``__init__`` signature, worked out once and kept on it.

    Gradio copies the page's config for every new session (``SessionState``), reading each
    block's ``__init__`` signature again (``inspect.signature``): half that copy's time,
    on the server's event loop, so 50 visitors arriving at once waited for each other
    (bench 3). ``inspect.signature`` returns a function's ``__signature__`` when it has
    one: the same signature, computed once."""
    for cls in {type(block) for block in blocks.blocks.values()}:
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if inspect.isfunction(init) and getattr(init, "__signature__", None) is None:
                init.__signature__ = inspect.signature(init)


UPLOAD_MB = MAX_INPUT_BYTES // 1024**2 + 1  # Gradio's max_file_size: the image check's 50 MB


def queue_for_launch(page: gr.Blocks, **options: Any) -> gr.Blocks:
    """``page.queue(**options)``, without the web app Gradio 6.31's ``queue`` builds and
    ``launch`` then builds again, throwing the first away (0.2 s of start-up, a twentieth
    of it, bench 5): the page keeps the app its ``with`` block made until ``launch``."""
    from gradio.routes import App

    made = page.app
    real = App.__dict__["create_app"]
    App.create_app = staticmethod(lambda *args, **kwargs: made)
    try:
        return page.queue(**options)
    finally:
        App.create_app = real


def launch_options(
    service: GenerationService, *, host: str | None = None, share: bool = False
) -> dict[str, Any]:
    """What ``page.launch`` needs besides host and port.

    The page's style and script; the videos' own route (``/media/<token>.mp4``) and the
    guard (framing headers everywhere, the Host check when only this machine can reach the
    app: loopback and no share link); Gradio's run history off, since it would keep every
    input, a typed API key included, in the browser; its session store capped; uploads
    refused past the image check's size and, with retention on, removed when old."""
    settings = service.settings
    if settings.mcp:  # our tools' State inputs are the page's own, read as their defaults
        warnings.filterwarnings(
            "ignore", message="This MCP server includes a tool that has a gr.State"
        )
    check_host = is_loopback(host or settings.server_name) and not share
    guard = Middleware(
        Guard,
        on_space=settings.on_space,
        check_host=check_host,
        extra_hosts=settings.allowed_hosts.split(","),
        space_host=settings.space_host,
    )
    options: dict[str, Any] = {
        "css": CSS,
        "js": PAGE_JS,
        "run_history": False,
        # Gradio refuses bigger uploads before storing them (the image check allows 50 MB).
        "max_file_size": f"{UPLOAD_MB}mb",
        "state_session_capacity": settings.session_capacity,
        # Said outright, on or off: left unset, Gradio would read GRADIO_MCP_SERVER.
        "mcp_server": settings.mcp,
        "app_kwargs": {
            "routes": [
                media_route(service.media_file),
                *share_routes(service.open_share, service.share_file, service.zip_files),
            ],
            # Bodies capped, read within deadlines, uploads limited per address (web.py).
            "middleware": [
                guard,
                Middleware(BodyLimit, rules=body_rules(settings, UPLOAD_MB << 20)),
                Middleware(OldCalls),  # /generate's six-value calls: the new three added
            ],
        },
    }
    if settings.mcp:  # who is behind each MCP call, for the tools (``callers``)
        options["app_kwargs"]["middleware"].append(
            Middleware(AgentCaller, sign=service.digest,
                       behind_proxy=settings.behind_proxy, hops=settings.trusted_hops)
        )  # fmt: skip
    return options


def browser_secret(settings: Settings) -> str:
    """The key that encrypts the history in the browser: stable across restarts.

    ``KLING_UI_BROWSER_SECRET`` if set; else one made once and kept in the data directory."""
    if settings.browser_secret:
        return settings.browser_secret
    # Made once; two processes starting at once read the same one.
    return shared_secret(settings.data_dir / "browser-secret", 24).hex()
