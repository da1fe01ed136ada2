"""5. Start-up: ``python app.py --port P`` (demo mode: no key) to the first HTTP 200 on ``/``,
against a minimal Gradio Blocks app (``minimal_app.py``: one Textbox, ``launch()``) started
the same way in the same run. Starts alternate between the two (the order flips each
round); each is a fresh process with a fresh data folder, polled every 20 ms. Medians of 7.
Target: at most 1.3x the minimal app.
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from apprunner import Server, app_argv, clean_env

from bench._common import BENCH, fmt_s, median, row

TARGET_RATIO = 1.3


def _start(kind: str, tmp: Path, i: int) -> float:
    data = tmp / f"{kind}-{i}"
    env = clean_env(KLING_UI_DATA_DIR=str(data))
    if kind == "app":
        argv = app_argv()
    else:
        argv = [sys.executable, str(BENCH / "minimal_app.py"), "--port", "{port}"]
    with Server(argv, env, log_dir=tmp / "logs") as server:
        return server.started_s


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 7
    times: dict[str, list[float]] = {"app": [], "minimal": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if quick:  # a smoke run: both at once, to save time (the ratio means little then)
            with ThreadPoolExecutor(max_workers=2) as pool:
                started = dict(
                    zip(times, pool.map(lambda k: _start(k, tmp, 0), times), strict=True)
                )
            for kind, seconds in started.items():
                times[kind].append(seconds)
            rounds = 0
        else:  # warm the OS file cache for both, untimed
            _start("minimal", tmp, -1)
            _start("app", tmp, -1)
        for i in range(rounds):
            order = ("app", "minimal") if i % 2 == 0 else ("minimal", "app")
            for kind in order:
                times[kind].append(_start(kind, tmp, i))
    app_med, min_med = median(times["app"]), median(times["minimal"])
    ratio = app_med / min_med
    return {
        "name": "startup",
        "rows": [
            row(
                f"5. Start-up to first page load (median of {len(times['app'])})",
                fmt_s(app_med),
                fmt_s(min_med),
                ratio,
                "≤ 1.3x",
                ratio <= TARGET_RATIO,
            )
        ],
        "metrics": {
            "app_median_s": app_med,
            "minimal_median_s": min_med,
            "ratio": ratio,
            "app_s": times["app"],
            "minimal_s": times["minimal"],
        },
        "notes": [
            "Start-up: from Popen to the first HTTP 200 on / (polled every 20 ms); ours is "
            "`python app.py --port P` in demo mode (no key, fresh KLING_UI_DATA_DIR), the "
            "baseline bench/minimal_app.py (gr.Blocks with one Textbox, launch()); "
            f"{len(times['app'])} alternating rounds after one untimed start of each, medians"
            + (" (quick: one concurrent start of each)." if quick else "."),
        ],
    }
