"""12. Exports: a compare board of four 10 s videos (720p30 H.264/AAC, 5 MB each, the
benchmark's ``make_clip``) made into one side-by-side MP4, and one of them as a GIF and as a
WebM (``kling_ui.export``). Each in a fresh process (``_export_worker.py``): the time, and
the growth of resident memory over the export (peak counter reset just before). Baseline:
the same four videos only decoded, frame by frame (the least any export does). The board is
made again of four 30 s videos: memory that stays flat grows no more for them.
Targets: the board's memory growth under 150 MB, and the 30 s board's within 1.25x of the
10 s board's (streamed, not held); times are reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._common import BENCH, fmt_mb, fmt_s, make_clip, median, row

MB = 1024 * 1024
GROWTH_LIMIT = 150 * MB
FLAT = 1.25


def _export(mode: str, videos: list[Path], out: Path) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / "_export_worker.py"), mode, str(out),
             *map(str, videos)],
            capture_output=True, text=True, timeout=1800, check=True,
        )  # fmt: skip
    finally:
        out.unlink(missing_ok=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    seconds, long_seconds, mb, repeats = (2, 4, 0.5, 1) if quick else (10, 30, 5.0, 3)
    clip = make_clip(target_mb=mb, seconds=seconds)
    long_clip = make_clip(target_mb=mb * long_seconds / seconds, seconds=long_seconds)
    four, four_long = [clip] * 4, [long_clip] * 4
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        boards = [_export("board", four, out / "board.mp4") for _ in range(repeats)]
        decodes = [_export("decode", four, out / "none") for _ in range(repeats)]
        long_board = _export("board", four_long, out / "long.mp4")
        gif = _export("gif", four[:1], out / "a.gif")
        webm = _export("webm", four[:1], out / "a.webm")
    board_s = median([b["seconds"] for b in boards])
    decode_s = median([d["seconds"] for d in decodes])
    board_growth = max(b["growth_kb"] for b in boards) * 1024
    decode_growth = max(d["growth_kb"] for d in decodes) * 1024
    long_growth = long_board["growth_kb"] * 1024
    flat = long_growth / board_growth if board_growth else 1.0
    what = f"four {seconds} s videos ({clip.stat().st_size / MB:.1f} MB each)"
    rows = [
        row(
            f"12. Export: compare board of {what}, one side-by-side MP4, median of {repeats}",
            f"{fmt_s(board_s)}, memory +{fmt_mb(board_growth)}",
            f"decoding them only: {fmt_s(decode_s)}, +{fmt_mb(decode_growth)}",
            board_s / decode_s,
            "memory < 150 MB (time reported)",
            board_growth < GROWTH_LIMIT,
        ),
        row(
            f"12. Export: the board of four {long_seconds} s videos, memory (flat)",
            f"+{fmt_mb(long_growth)} in {fmt_s(long_board['seconds'])}",
            f"four {seconds} s videos: +{fmt_mb(board_growth)}",
            flat,
            f"≤ {FLAT}x",
            flat <= FLAT,
        ),
        row(
            f"12. Export: one {seconds} s video as GIF, and as WebM",
            f"GIF {fmt_s(gif['seconds'])} (+{fmt_mb(gif['growth_kb'] * 1024)}), WebM "
            f"{fmt_s(webm['seconds'])} (+{fmt_mb(webm['growth_kb'] * 1024)})",
            "—",
            None,
            "(reported)",
            None,
        ),
    ]
    return {
        "name": "export",
        "rows": rows,
        "metrics": {
            "board_median_s": board_s,
            "board_growth_bytes": board_growth,
            "decode_median_s": decode_s,
            "decode_growth_bytes": decode_growth,
            "long_board_growth_bytes": long_growth,
            "gif_s": gif["seconds"],
            "webm_s": webm["seconds"],
        },
        "notes": [
            f"Export: bench/_common.make_clip({mb:g} MB, {seconds} s) four times (1280x720 at "
            "30 fps with AAC sound), in a fresh process each (bench/_export_worker.py), PyAV, "
            "Pillow and the label font loaded before the peak counter is reset. The board is "
            "1920 px wide (four 480x270 tiles under a 36 px label strip), 24 fps, x264 "
            "veryfast CRF 23, no sound; the long board is make_clip("
            f"{mb * long_seconds / seconds:g} MB, {long_seconds} s) four times. GIF: 480 px, "
            "12 fps; WebM: VP9 real-time (cpu-used 8) with Opus.",
        ],
    }
