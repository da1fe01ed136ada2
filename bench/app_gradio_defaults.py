"""kling-ui's page with Gradio's default concurrency settings, for ``bench_users``.

``python bench/app_gradio_defaults.py --port P`` builds the same page as ``app.py``
(``kling_ui.ui.build_ui``, live mode: set ``AIMLAPI_KEY`` and ``AIMLAPI_BASE_URL``) but
calls ``queue()`` without arguments and ``launch()`` without ``max_threads``, so Gradio's
defaults apply: ``max_threads=40`` (the thread pool every synchronous handler and every
step of a synchronous generator runs in) and ``default_concurrency_limit=1``. The
latter does not reach our job events, which set ``concurrency_limit=None`` themselves.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()

    from kling_ui.config import settings_from_env
    from kling_ui.service import GenerationService
    from kling_ui.ui import browser_secret, build_ui, launch_options

    settings = settings_from_env()
    service = GenerationService(settings)
    page = build_ui(service, browser_secret=browser_secret(settings))
    page.queue()
    page.launch(
        server_name="127.0.0.1",
        server_port=args.port,
        **launch_options(service),
        show_error=False,
    )


if __name__ == "__main__":
    main()
