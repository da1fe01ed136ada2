"""8. Stitching a chain: 10 parts of 10 s (720p30 H.264/AAC, 5 MB each, the benchmark's
``make_clip``) into one MP4, by copying packets (what ``media.stitch`` does when the parts
match, as one model's parts do) and, for comparison, by decoding and encoding everything
again (what it does when they don't). Each in a fresh process (``_stitch_worker.py``): the
time, and the growth of resident memory over the stitch (peak counter reset just before).
Targets: the copy well under a second, and not holding the videos in memory (growth under a
tenth of the parts' size).
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


def _stitch(mode: str, parts: list[Path], out: Path) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / "_stitch_worker.py"), mode, str(out),
             *map(str, parts)],
            capture_output=True, text=True, timeout=1800, check=True,
        )  # fmt: skip
    finally:
        out.unlink(missing_ok=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    n, seconds, mb = (3, 2, 0.5) if quick else (10, 10, 5.0)
    clip = make_clip(target_mb=mb, seconds=seconds)
    parts = [clip] * n
    parts_mb = clip.stat().st_size * n / MB
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "chain.mp4"
        copies = [_stitch("copy", parts, out) for _ in range(1 if quick else 5)]
        encode = _stitch("encode", parts, out)
    assert all(c["method"] == "copy" for c in copies), copies
    copy_s = median([c["seconds"] for c in copies])
    copy_growth = max(c["growth_kb"] for c in copies) * 1024
    expected = n * seconds - (n - 1) / 30
    what = f"{n} parts of {seconds} s ({parts_mb:.0f} MB)"
    rows = [
        row(
            f"8. Stitch {what}: stream copy, median of {len(copies)}",
            f"{fmt_s(copy_s)}, memory +{fmt_mb(copy_growth)}",
            f"encode again: {fmt_s(encode['seconds'])}, +{fmt_mb(encode['growth_kb'] * 1024)}",
            copy_s / encode["seconds"],
            "< 1 s, memory < 1/10 of the parts",
            copy_s < 1.0 and copy_growth < parts_mb * MB / 10,
        ),
        row(
            f"8. Stitched length ({what}, one frame less a join)",
            f"{copies[0]['length_s']:.3f} s",
            f"{encode['length_s']:.3f} s",
            None,
            f"{expected:.3f} s ± 1 frame",
            abs(copies[0]["length_s"] - expected) <= 1 / 30 + 1e-3,
        ),
    ]
    return {
        "name": "stitch",
        "rows": rows,
        "metrics": {
            "copy_median_s": copy_s,
            "copy_growth_bytes": copy_growth,
            "encode_s": encode["seconds"],
            "encode_growth_bytes": encode["growth_kb"] * 1024,
            "parts_bytes": parts_mb * MB,
            "length_s": copies[0]["length_s"],
        },
        "notes": [
            f"Stitch: {n} copies of bench/_common.make_clip({mb:g} MB, {seconds} s): 1280x720 "
            "30 fps H.264 (x264 ultrafast) + 440 Hz AAC; each stitch in a fresh process "
            "(_stitch_worker.py), memory = VmHWM after - VmRSS before (peak reset through "
            "/proc/self/clear_refs after PyAV is loaded); stream copy is media.stitch's own "
            "choice for parts that match, the baseline forces its other way "
            "(media._encode_join: decode, scale, x264 veryfast CRF 18, AAC 128 kb/s) on the "
            "same parts.",
        ],
    }
