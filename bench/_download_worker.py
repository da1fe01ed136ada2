"""One download in a fresh process, for ``bench_download``: ``python bench/_download_worker.py
ours|plain URL DEST``. Prints one JSON line: seconds, bytes, and memory from /proc/self/status.

The peak (VmHWM) is reset just before the download by writing 5 to /proc/self/clear_refs
(Linux 4.0+), so ``hwm_after - rss_before`` is the growth the download itself caused; a
thread sampling VmRSS every 5 ms backs it up where the reset is not allowed.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main() -> None:
    mode, url, dest = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    import requests

    from kling_ui.client import Sessions, download_video
    from kling_ui.config import Settings

    settings = Settings(base_url="http://127.0.0.1:9")
    sessions = Sessions.for_settings(settings)  # the app makes its pools once, at start-up
    gc.collect()
    peak_sampled = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_sampled
        while not stop.is_set():
            peak_sampled = max(peak_sampled, status_kb("VmRSS"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(0.02)
    reset_ok = reset_peak()
    rss_before = status_kb("VmRSS")
    hwm_before = status_kb("VmHWM")
    t0 = time.perf_counter()
    if mode == "ours":
        download_video(url, dest, settings, sessions)
    elif mode == "plain":
        with requests.get(url, stream=True, timeout=120) as response, dest.open("wb") as out:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=1024 * 1024):
                out.write(chunk)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - t0
    hwm_after = status_kb("VmHWM")
    stop.set()
    sampler.join()
    size = dest.stat().st_size
    print(
        json.dumps(
            {
                "mode": mode,
                "seconds": seconds,
                "bytes": size,
                "rss_before_kb": rss_before,
                "hwm_before_kb": hwm_before,
                "hwm_after_kb": hwm_after,
                "hwm_reset": reset_ok,
                "sampled_peak_kb": peak_sampled,
                "growth_kb": (hwm_after if reset_ok else peak_sampled) - rss_before,
            }
        )
    )


if __name__ == "__main__":
    main()
