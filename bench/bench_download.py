"""4. Download: a 200 MB video from the simulator, through ``client.download_video``.

Each download runs in a fresh subprocess (``_download_worker.py``) that creates the app's
connection pools first, resets its peak-RSS counter (VmHWM) and then downloads; the growth
is the new peak minus the resident size just before. The baseline is a plain streamed read
of the same URL (``requests.get(stream=True)``, ``iter_content`` of 1 MiB into a file in
the same folder). Runs alternate ours/plain; medians. The simulator (in this process)
serves an MP4 header and zeros. Targets: growth at most 30 MB, throughput at least 70% of
the plain read's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._common import BENCH, fmt_mb, fmt_s, median, row

MB = 1024 * 1024
GROWTH_LIMIT = 30 * MB
THROUGHPUT_TARGET = 0.7


def _video_url(sim: Any) -> str:
    from kling_ui.client import AIMLClient
    from kling_ui.config import Settings
    from kling_ui.request import Request

    client = AIMLClient("bench-key", Settings(base_url=sim.url))
    request = Request.make("Blinks.", images={"image": "https://example.com/cat.jpg"})
    gid = client.create_generation(request).payload["id"]
    sim.complete_now(gid)
    return client.get_generation(gid).payload["video"]["url"]


def _download(mode: str, url: str, folder: Path) -> dict[str, Any]:
    dest = folder / f"{mode}.mp4"
    try:
        out = subprocess.run(
            [sys.executable, str(BENCH / "_download_worker.py"), mode, url, str(dest)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    finally:
        dest.unlink(missing_ok=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    from kling_ui.simulator import Simulator

    size = 8 * MB if quick else 200 * MB
    runs = 1 if quick else 5
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "plain": []}
    with Simulator(video_bytes=size) as sim, tempfile.TemporaryDirectory() as tmp:
        url = _video_url(sim)
        folder = Path(tmp)
        _download("plain", url, folder)  # warm-up: page cache, the server's first bytes
        for i in range(runs):
            order = ("ours", "plain") if i % 2 == 0 else ("plain", "ours")
            for mode in order:
                r = _download(mode, url, folder)
                assert r["bytes"] == size, r
                results[mode].append(r)

    def summary(mode: str) -> dict[str, float]:
        rs = results[mode]
        return {
            "seconds": median([r["seconds"] for r in rs]),
            "throughput_mb_s": median([r["bytes"] / r["seconds"] / MB for r in rs]),
            "growth_bytes": max(r["growth_kb"] for r in rs) * 1024,
            "growth_median_bytes": median([r["growth_kb"] for r in rs]) * 1024,
        }

    ours, plain = summary("ours"), summary("plain")
    ratio = ours["throughput_mb_s"] / plain["throughput_mb_s"]
    label = f"{size // MB} MB"
    rows = [
        row(
            f"4. Download {label}: peak memory growth (worst of {runs})",
            fmt_mb(ours["growth_bytes"]),
            fmt_mb(plain["growth_bytes"]),
            None,
            "≤ 30 MB",
            ours["growth_bytes"] <= GROWTH_LIMIT,
        ),
        row(
            f"4. Download {label}: throughput (median of {runs})",
            f"{ours['throughput_mb_s']:.0f} MB/s ({fmt_s(ours['seconds'])})",
            f"{plain['throughput_mb_s']:.0f} MB/s ({fmt_s(plain['seconds'])})",
            ratio,
            "≥ 0.7x of plain",
            ratio >= THROUGHPUT_TARGET,
        ),
    ]
    return {
        "name": "download",
        "rows": rows,
        "metrics": {
            "video_bytes": size,
            "ours_seconds": ours["seconds"],
            "plain_seconds": plain["seconds"],
            "ours_throughput_mb_s": ours["throughput_mb_s"],
            "plain_throughput_mb_s": plain["throughput_mb_s"],
            "throughput_ratio": ratio,
            "ours_growth_bytes": ours["growth_bytes"],
            "plain_growth_bytes": plain["growth_bytes"],
            "runs": results,
        },
        "notes": [
            f"Download: {label} synthetic MP4 (ftyp header + zeros) from the simulator over "
            "loopback; each download in a fresh subprocess (the app's connection pools made "
            "first), peak RSS reset through /proc/self/clear_refs just before, growth = VmHWM "
            "after - VmRSS before (worst run shown); plain = requests.get(stream=True) with "
            f"iter_content(1 MiB) into a file; {runs} alternating runs each, medians.",
        ],
    }
