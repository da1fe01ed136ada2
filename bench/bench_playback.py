"""2. Done to playing: from the simulator marking a job completed to the ``<video>`` in a
real browser being able to play (readyState >= 3, HAVE_FUTURE_DATA).

The app runs as ``python app.py --port P`` (live mode, its default 2 s poll interval) with
the simulator in this process as its API, serving a 5 MB H.264/AAC clip (PyAV, faststart).
Headless Chromium (Playwright) opens the page in a fresh context, uploads a photo, types a
prompt and presses Generate. Jobs never finish on their own (``script_outcome("never")``);
at a random offset after the create we call ``sim.complete_now(gid)`` and note the wall
clock. A script in the page records ``performance.timeOrigin + performance.now()`` (the same
wall clock) when ``#video video`` fires ``canplay`` or is seen with readyState >= 3 (checked
every 10 ms as well). Offsets are uniform over 15 s, so they fall at every phase of both
our 2 s poll cycle and the vendor sample's 15 s one.

Polls: every GET the simulator recorded for the job, from its create to its last poll.

Baseline, computed, not run: the vendor sample polls at create + 15 k seconds, so from the
same completion offsets its wait is ``15 * ceil(offset / 15) - offset`` (uniform 0-15 s);
to that we add the download-to-playing time measured for ours in the same run (the part after
the poll that saw ``completed``), as if the sample then fetched and played the file as fast.
Running the real 15 s loop ten times would take minutes for the same number.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from apprunner import Server, app_argv, clean_env
from browsing import CHROMIUM_ARGS, chromium_path

from bench._common import (
    fmt_s,
    make_clip,
    make_photo,
    median,
    percentile,
    row,
)

VENDOR_INTERVAL = 15.0
TARGET_MEDIAN = 1.5
TARGET_P95 = 3.0
POLL_EVERY = 2.0
QUICK_POLL = 0.5

# Records when the (newest) #video <video> can play, in epoch milliseconds.
WATCH_VIDEO = """() => {
    window.__canplayAt = null;
    const mark = () => {
        if (window.__canplayAt === null) {
            window.__canplayAt = performance.timeOrigin + performance.now();
        }
    };
    const hook = (v) => {
        if (v.__benchHooked) return;
        v.__benchHooked = true;
        v.addEventListener('canplay', mark);
        v.addEventListener('canplaythrough', mark);
        if (v.readyState >= 3) mark();
    };
    const scan = () => document.querySelectorAll('#video video').forEach(hook);
    new MutationObserver(scan).observe(document.body, {childList: true, subtree: true});
    const tick = () => {
        const v = document.querySelector('#video video');
        if (v && v.readyState >= 3) mark();
        if (window.__canplayAt === null) setTimeout(tick, 10);
    };
    scan();
    tick();
}"""


def available() -> str | None:
    """None when the browser bench can run, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright not installed: pip install -r requirements-dev.txt"
    if not chromium_path():
        return "Chromium not found: apt-get install chromium"
    return None


def _one_run(
    page: Any, sim: Any, url: str, photo: Path, offset: float, clip_s: float
) -> dict[str, Any]:
    from kling_ui.simulator import CREATE_PATHS

    sim.script_outcome("never")
    page.goto(url)
    page.locator("#generate").wait_for(state="visible")
    page.locator("#image input[type=file]").set_input_files(photo)
    page.wait_for_function("() => document.querySelector('#image-note').innerText.trim()")
    page.locator("#prompt textarea").fill("The meadow sways in the wind.")
    page.evaluate(WATCH_VIDEO)
    page.locator("#generate").click()
    page.wait_for_function(
        "() => document.querySelector('#generation-id textarea').value.includes(':')",
        timeout=60_000,  # the vendor's id (the app's own id shows while the create is sent)
    )
    gid = page.locator("#generation-id textarea").input_value()
    # The simulator's clock is monotonic; map it to the wall clock once, here.
    to_wall = time.time() - time.monotonic()
    created = sim.jobs[gid].created + to_wall
    time.sleep(max(0.0, created + offset - time.time()))
    completed_at = time.time()
    sim.complete_now(gid)
    page.wait_for_function("() => window.__canplayAt !== null", timeout=60_000, polling=50)
    playable_at = page.evaluate("window.__canplayAt") / 1000
    state = page.locator("#video video").evaluate(
        "v => ({ready: v.readyState, duration: v.duration, error: v.error && v.error.code})"
    )
    if state["error"] is not None or not state["duration"] > clip_s - 1:
        raise RuntimeError(f"the video did not load properly: {state}")
    polls = sorted(
        r.time
        for r in sim.requests_to("/")
        if r.method == "GET" and r.path in CREATE_PATHS and r.query.get("generation_id") == gid
    )
    seen_done = min((t for t in polls if t >= completed_at), default=math.nan)
    latency = playable_at - completed_at
    offset_real = completed_at - created
    vendor_wait = VENDOR_INTERVAL * math.ceil(offset_real / VENDOR_INTERVAL) - offset_real
    delivery = playable_at - seen_done
    return {
        "generation_id": gid,
        "offset_s": offset_real,
        "latency_s": latency,
        "poll_wait_s": seen_done - completed_at,
        "delivery_s": delivery,
        "vendor_latency_s": vendor_wait + delivery,
        "polls": len(polls),
        "job_s": polls[-1] - created,
        "poll_span_s": polls[-1] - polls[0],
    }


def run(quick: bool = False) -> dict[str, Any]:
    reason = available()
    if reason:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    from kling_ui.simulator import DEFAULT_VIDEO, Schedule, Simulator

    runs = 3 if quick else 10
    low, high = (0.5, 1.5) if quick else (2.0, 2.0 + VENDOR_INTERVAL)
    rng = random.Random(5)
    offsets = [rng.uniform(low, high) for _ in range(runs)]
    # A smoke run uses the repository's small sample clip (5 s) instead of encoding one.
    clip = DEFAULT_VIDEO if quick else make_clip(5.0, 10)
    clip_s = 5 if quick else 10
    photo = make_photo(1200, 900)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sim = Simulator(
            schedule=Schedule(queued_s=1.0, generating_s=3600.0), video_path=clip
        ).start()
        try:
            env = clean_env(
                AIMLAPI_BASE_URL=sim.url, AIMLAPI_KEY="x", KLING_UI_DATA_DIR=str(tmp / "data")
            )
            if quick:  # a smoke run: faster polls, so shorter jobs
                env["KLING_UI_POLL_INTERVAL"] = str(QUICK_POLL)
            with (
                Server(app_argv(), env, log_dir=tmp / "logs") as app,
                sync_playwright() as pw,
            ):
                browser = pw.chromium.launch(
                    executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
                )
                try:
                    for offset in offsets:
                        context = browser.new_context(viewport={"width": 1280, "height": 1000})
                        context.set_default_timeout(30_000)
                        try:
                            results.append(
                                _one_run(context.new_page(), sim, app.url, photo, offset, clip_s)
                            )
                        finally:
                            context.close()
                finally:
                    browser.close()
        finally:
            sim.stop()

    latencies = [r["latency_s"] for r in results]
    vendor = [r["vendor_latency_s"] for r in results]
    polls = sum(r["polls"] for r in results)
    job_seconds = sum(r["job_s"] for r in results)
    intervals = sum(r["polls"] - 1 for r in results)
    mean_interval = sum(r["poll_span_s"] for r in results) / max(1, intervals)
    polls_per_job_s = polls / job_seconds
    ours_med, ours_p95 = median(latencies), percentile(latencies, 95)
    vendor_med, vendor_p95 = median(vendor), percentile(vendor, 95)
    metrics = {
        "runs": runs,
        "median_s": ours_med,
        "p95_s": ours_p95,
        "vendor_median_s": vendor_med,
        "vendor_p95_s": vendor_p95,
        "polls_per_job_second": polls_per_job_s,
        "mean_poll_interval_s": mean_interval,
        "median_poll_wait_s": median([r["poll_wait_s"] for r in results]),
        "median_delivery_s": median([r["delivery_s"] for r in results]),
        "clip_bytes": clip.stat().st_size,
        "results": results,
    }
    clip_label = f"{clip.stat().st_size / 1e6:.1f} MB clip"
    rows = [
        row(
            f"2. Done to playing, {clip_label}, median of {runs}",
            fmt_s(ours_med),
            f"{fmt_s(vendor_med)} (vendor 15 s loop, computed)",
            ours_med / vendor_med,
            "≤ 1.5 s",
            ours_med <= TARGET_MEDIAN,
        ),
        row(
            f"2. Done to playing, {clip_label}, p95 of {runs}",
            fmt_s(ours_p95),
            f"{fmt_s(vendor_p95)} (vendor 15 s loop, computed)",
            ours_p95 / vendor_p95,
            "≤ 3 s",
            ours_p95 <= TARGET_P95,
        ),
        row(
            "2. Polls per job (create to last poll)",
            f"{polls_per_job_s:.3f} polls/job-s; one every {mean_interval:.2f} s",
            f"{1 / VENDOR_INTERVAL:.3f} polls/s; one every 15 s",
            None,
            f"≤ one poll per {QUICK_POLL if quick else POLL_EVERY:g} s",
            mean_interval >= (QUICK_POLL if quick else POLL_EVERY) - 0.005,
        ),
    ]
    return {
        "name": "done_to_playing",
        "rows": rows,
        "metrics": metrics,
        "notes": [
            f"Done to playing: app.py subprocess ({QUICK_POLL if quick else POLL_EVERY:g} s "
            "polls) against the in-process "
            f"simulator serving a {clip.stat().st_size / 1e6:.1f} MB H.264/AAC clip; headless "
            f"Chromium, fresh context per run; completion forced {low:g}-{high:g} s after the "
            "create (uniform, seeded); latency = the page's canplay/readyState>=3 time minus "
            "the complete_now time, both wall clock. Of it, the wait for the next poll: median "
            f"{fmt_s(metrics['median_poll_wait_s'])}; from that poll to playable (download, "
            f"Gradio's update, the browser's load): median {fmt_s(metrics['median_delivery_s'])}.",
            "Baseline computed, not run: the vendor sample's fixed 15 s loop would see each "
            "completion at the next multiple of 15 s after its create (same offsets), plus the "
            "same download-to-playing time as ours.",
            "Polls: polls/job-s = all polls / (last poll - create); it includes the poll at "
            "the create and the one that sees 'completed', so for short jobs it reads above "
            "0.5 even at exactly one poll per 2 s. The target is checked on the mean interval "
            "between a job's consecutive polls (≥ 2 s, 5 ms timer tolerance).",
        ],
    }
