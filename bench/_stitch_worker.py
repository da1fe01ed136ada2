"""One stitch in a fresh process, for bench_stitch: ``_stitch_worker.py copy|encode OUT
PART...``. Prints JSON: seconds, the resident-memory growth (VmHWM after minus VmRSS just
before, the peak counter reset through /proc/self/clear_refs) and the output's length."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kling_ui import media  # noqa: E402


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    mode, out, *parts = sys.argv[1:]
    files = [Path(p) for p in parts]
    if mode == "copy":  # the stitcher's own choice (it copies when the parts match)
        stitcher = media.stitch
    else:  # the other way, forced, on the same parts

        def stitcher(parts, dest):
            media._encode_join(parts, dest)
            return media.Stitched(dest, "encode", media.video_seconds(dest))

    media.video_seconds(files[0])  # PyAV loaded and warm before the counter is reset
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    done = stitcher(files, Path(out))
    seconds = time.perf_counter() - start
    growth = _status_kb("VmHWM") - before
    print(
        json.dumps(
            {
                "seconds": seconds,
                "growth_kb": growth,
                "method": done.method,
                "length_s": done.seconds,
                "bytes": Path(out).stat().st_size,
            }
        )
    )


if __name__ == "__main__":
    main()
