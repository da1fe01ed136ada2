"""One export in a fresh process, for bench_export: ``_export_worker.py MODE OUT VIDEO...``
(MODE: board, gif, webm, or decode: the videos decoded frame by frame and nothing made, the
least any export does). Prints JSON: seconds, the resident-memory growth (VmHWM after minus
VmRSS just before, the peak counter reset through /proc/self/clear_refs), frames."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402

from bench._common import proc_status_kb  # noqa: E402
from kling_ui import export  # noqa: E402


def _status_kb(field: str) -> int:
    return proc_status_kb(os.getpid(), field) or 0


def _decode(videos: list[Path]) -> int:
    frames = 0
    for video in videos:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames += sum(1 for _ in container.decode(stream))
    return frames


def main() -> None:
    mode, out, *names = sys.argv[1:]
    videos, dest = [Path(n) for n in names], Path(out)
    export._label("warm", 100)  # PyAV, Pillow and the font loaded before the counter is reset
    _decode(videos[:1])
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    if mode == "decode":
        frames = _decode(videos)
    elif mode == "board":
        frames = export.board(
            videos, [f"{n}. video" for n in range(1, len(videos) + 1)], dest
        ).frames
    elif mode == "gif":
        frames = export.gif(videos[0], dest).frames
    else:
        frames = export.webm(videos[0], dest).frames
    seconds = time.perf_counter() - start
    growth = _status_kb("VmHWM") - before
    print(json.dumps({"seconds": seconds, "growth_kb": growth, "frames": frames}))


if __name__ == "__main__":
    main()
