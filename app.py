"""Start kling-ui: ``python app.py [--host H] [--port P] [--share] [--demo]``.

With no API key (neither AIMLAPI_KEY nor --demo off) the app runs in demo mode against
a local simulator of the API. This file only parses flags, builds the page and launches;
everything else lives in ``kling_ui``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

SHARE_LIFETIME = "up to a week"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="kling-ui: image to video with Kling v2.6 Pro")
    parser.add_argument(
        "--host", help="address to listen on (default GRADIO_SERVER_NAME or 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, help="port (default GRADIO_SERVER_PORT or 7860)")
    parser.add_argument(
        "--share", action="store_true", help="ask Gradio for a temporary public link"
    )
    parser.add_argument(
        "--demo", action="store_true", help="use the local simulator, even with a key"
    )
    parser.add_argument(
        "--require-user-key",
        action="store_true",
        help="refuse to generate without a key typed in the page (for public Spaces)",
    )
    parser.add_argument(
        "--mcp",
        action="store_true",
        help="serve the API to AI agents too, as an MCP server at /gradio_api/mcp/ "
        "(or KLING_UI_MCP=1)",
    )
    parser.add_argument("--log-level", help="log level (default KLING_UI_LOG_LEVEL or INFO)")
    return parser.parse_args(argv)


MMAP_THRESHOLD = 4 * 1024 * 1024  # bytes: see _limit_malloc_arenas


def _limit_malloc_arenas() -> None:
    """With hundreds of worker threads glibc keeps freed memory in many per-thread arenas;
    two are plenty for an I/O-bound server (measured: peak RSS 530 MB -> 280 MB, 50 users).
    Same as MALLOC_ARENA_MAX=2; must run before the threads start.

    And blocks of 4 MiB or more (a decoded image's) always come from the system and go back
    to it when freed: glibc otherwise raises its threshold after the first big block is
    freed and serves the next ones from its heap, which it keeps, so one large upload's
    memory sat beside the next one's (four 44.6 MP PNGs at once: peak 401 MB -> 388 MB).
    Same as MALLOC_MMAP_THRESHOLD_=4194304."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(-8, 2)  # M_ARENA_MAX
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    _limit_malloc_arenas()
    args = parse_args(argv)
    from kling_ui.config import BadSetting, settings_from_env

    flags = {"demo": args.demo, "require_user_key": args.require_user_key, "mcp": args.mcp}
    overrides: dict[str, object] = {name: True for name, on in flags.items() if on}
    if args.log_level:
        overrides["log_level"] = args.log_level
    try:
        settings = settings_from_env(**overrides)
    except BadSetting as exc:
        print(f"kling-ui: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Keep third-party debug logs (which may print request headers) out of our logs.
    for noisy in ("urllib3", "httpx", "httpcore", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The MCP library logs whole request bodies at DEBUG (its SSE transport): never ours.
    logging.getLogger("mcp").setLevel(logging.WARNING)

    from kling_ui.service import GenerationService
    from kling_ui.simulator import DemoSimulator
    from kling_ui.ui import browser_secret, build_ui, launch_options, queue_for_launch

    demo = DemoSimulator(settings.data_dir, settings.demo_schedule) if settings.demo_mode else None
    try:
        service = GenerationService(settings, demo=demo)
    except Exception as exc:  # the database: say which and why, in words, not a traceback
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        print(f"kling-ui: could not open the ledger ({settings.ledger_name}): {reason}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2) from None
    from kling_ui.web import install_header_deadline

    # A request's headers must arrive within KLING_UI_HEADER_SECONDS (uvicorn has no limit:
    # slow clients held a file descriptor each, for good).
    install_header_deadline(settings.header_seconds)
    page = build_ui(service, browser_secret=browser_secret(settings))
    queue_for_launch(page, default_concurrency_limit=None, max_size=settings.queue_size)

    mode = "demo (simulated videos, no credits spent)" if service.demo_mode else "live"
    print(f"kling-ui: {mode} mode; data in {settings.data_dir.resolve()}", flush=True)
    if settings.mcp:
        print(
            "kling-ui: MCP server for AI agents at /gradio_api/mcp/ (streamable HTTP) and "
            "/gradio_api/mcp/sse; the API key goes in the X-AIMLAPI-Key header",
            flush=True,
        )
    launch_kwargs = dict(
        server_name=args.host,
        server_port=args.port,
        **launch_options(service, host=args.host, share=args.share),
        max_threads=settings.max_threads,
        show_error=False,
    )
    if not args.share:
        page.launch(**launch_kwargs)
        return
    _launch_shared(page, launch_kwargs)


def _launch_shared(page, launch_kwargs: dict) -> None:
    """Ask Gradio for a public link; without one (no internet), say so and serve locally."""
    print(
        f"kling-ui: asking Gradio for a temporary public link (it lasts {SHARE_LIFETIME})",
        flush=True,
    )
    try:
        page.launch(share=True, prevent_thread_lock=True, **launch_kwargs)
    except Exception as exc:  # a tunnel that fails loudly: go on locally
        print(f"kling-ui: could not make a public link ({type(exc).__name__})", flush=True)
        page.launch(prevent_thread_lock=True, **launch_kwargs)
    if page.share_url:
        print(f"kling-ui: public link {page.share_url} (lasts {SHARE_LIFETIME})", flush=True)
    else:
        print(
            f"kling-ui: could not make a public link; serving locally only at {page.local_url}",
            flush=True,
        )
    page.block_thread()


if __name__ == "__main__":
    main()
