"""3. Many users: 50 simultaneous generations through the app's API, each a 10 s job.

The simulator runs in its own process (``python -m kling_ui.simulator``, jobs queued 1 s
then generating 9 s), like a remote API; the app runs as ``python app.py --port P`` with
it as the API (live mode, poll interval at its default of 2 s). Each user is its own
``gradio_client.Client`` (made beforehand, untimed) that uploads a 1600x1200 photo and
calls ``/generate``, receiving every update and the finished MP4. We time one generation
alone, then 50 submitted at once (first submit to last result). The app's resident memory
is sampled from /proc/<pid>/status every 100 ms, and its VmHWM read at the end.

Every user here shares the app's one API key, and the app sends at most
``KLING_UI_MAX_ACTIVE_PER_KEY`` (default 3) of a key's jobs to the vendor at once, the rest
waiting their turn. To measure the app's own concurrency, the cap is set to the number of
users. The same run is repeated against ``app_gradio_defaults.py``: the same page with
Gradio's default ``queue()`` and ``launch()`` (``max_threads=40``), with the same cap.
Targets: 50 finish within 1.3x the time of one; peak resident memory under 400 MB.

Then the same 50 at once with the default cap, as a Space with one key would run them:
the time to the last video, set against the cap's own floor (its rounds of jobs back to
back: ``ceil(50 / cap)`` times one job alone), and the most jobs waiting here at once
(read from the app's ledger every 100 ms).
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from apprunner import Server, app_argv, clean_env, shared_ssl_contexts, submit, user_client

from bench._common import BENCH, PeakSampler, fmt_mb, fmt_s, make_photo, proc_status_kb, row
from kling_ui.config import Settings
from kling_ui.history import AT_VENDOR

TARGET_RATIO = 1.3
RSS_LIMIT = 400 * 1024 * 1024
VARIANTS = {
    "ours": "app.py (max_threads=200, queue(default_concurrency_limit=None))",
    "gradio_defaults": "Gradio defaults (queue(), launch(): max_threads=40)",
}
DEFAULT_CAP = Settings.__dataclass_fields__["max_active_per_key"].default


class QueueSampler:
    """The most jobs waiting in the app for a free slot of their key at once: ``queued_here``
    while the key's ``cap`` slots at the vendor are all taken (a new job is ``queued_here``
    for a moment even with a slot free), read from the app's ledger (``history.sqlite3``)
    every ``every`` seconds, as another process would read it."""

    def __init__(self, data_dir: Path, cap: int, every: float = 0.1) -> None:
        self.path, self.cap, self.peak, self._every = data_dir / "history.sqlite3", cap, 0, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _counts(self) -> tuple[int, int]:
        """Jobs waiting here, and jobs at the vendor."""
        at_vendor = ", ".join(f"'{state}'" for state in sorted(AT_VENDOR))
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            waiting, sent = db.execute(
                "SELECT COALESCE(SUM(state = 'queued_here'), 0),"
                f" COALESCE(SUM(state IN ({at_vendor})), 0) FROM jobs"
            ).fetchone()
            return int(waiting), int(sent)
        finally:
            db.close()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            with contextlib.suppress(sqlite3.Error):  # not made yet, or busy a moment
                waiting, sent = self._counts()
                if sent >= self.cap:
                    self.peak = max(self.peak, waiting)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def start_simulator(queued: float, generating: float, log_dir: Path) -> Server:
    """``python -m kling_ui.simulator`` on a free port, ready when it answers; its API's
    address is ``url`` without the trailing slash."""
    argv = [sys.executable, "-m", "kling_ui.simulator", "--port", "{port}"]
    argv += ["--queued", str(queued), "--generating", str(generating)]
    return Server(
        argv,
        clean_env(),
        log_dir=log_dir,
        name="simulator",
        ready_path="__sim__/requests",
        timeout=30,
    )


# gradio_client's many short-lived httpx clients each build an SSL context (about 8 CPU-s
# for 50 users, on the cores the app under test uses): shared, as the suite shares them.
cheap_http_clients = shared_ssl_contexts


def _run_jobs(clients: list[Any], photo: Path) -> tuple[float, list[float]]:
    """Submit one job per client at once; the wall time to the last result, and each."""
    t0 = time.perf_counter()
    finished: list[float] = []
    lock = threading.Lock()

    def done(_: Any) -> None:
        with lock:
            finished.append(time.perf_counter() - t0)

    jobs = [submit(c, photo, prompt="Leaves fall slowly.") for c in clients]
    for job in jobs:
        job.add_done_callback(done)
    outputs = [job.result(timeout=600) for job in jobs]
    wall = time.perf_counter() - t0
    bad = [status for _, status, _ in outputs if not status.startswith("Status: completed")]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(jobs)} generations did not complete: {bad[:3]}")
    return wall, sorted(finished)


def _data_dir(tmp: Path, variant: str, cap: int | None) -> Path:
    return tmp / f"data-{variant}-{cap or 'default'}"


def _start(variant: str, sim_url: str, tmp: Path, poll: str | None, cap: int | None) -> Server:
    """The app (or the Gradio-defaults page) on the simulator, with at most ``cap`` of its
    key's jobs at the vendor at once (None: the app's default)."""
    env = clean_env(
        AIMLAPI_BASE_URL=sim_url,
        AIMLAPI_KEY="x",
        KLING_UI_DATA_DIR=str(_data_dir(tmp, variant, cap)),
    )
    if poll:
        env["KLING_UI_POLL_INTERVAL"] = poll
    if cap is not None:
        env["KLING_UI_MAX_ACTIVE_PER_KEY"] = str(cap)
    argv = (
        app_argv()
        if variant == "ours"
        else [sys.executable, str(BENCH / "app_gradio_defaults.py"), "--port", "{port}"]
    )
    return Server(argv, env, log_dir=tmp / "logs")


def _measure(
    server: Server, users: int, photo: Path, downloads: Path, data_dir: Path, cap: int
) -> dict[str, Any]:
    def client(n: int) -> Any:  # each user from an address of their own (fair shares)
        return user_client(server.url, n, analytics_enabled=False, download_files=str(downloads))

    idle_kb = proc_status_kb(server.pid, "VmRSS") or 0
    sampler = PeakSampler(server.pid, "VmRSS")
    try:
        with ThreadPoolExecutor(max_workers=10) as pool, cheap_http_clients():
            clients = list(pool.map(client, range(users + 1)))
        with cheap_http_clients():
            one, _ = _run_jobs(clients[:1], photo)
            waiting = QueueSampler(data_dir, cap)
            try:
                many, each = _run_jobs(clients[1:], photo)
            finally:
                most_waiting = waiting.stop()
    finally:
        sampled_kb = sampler.stop()
    hwm_kb = proc_status_kb(server.pid, "VmHWM") or 0
    return {
        "one_s": one,
        "many_s": many,
        "ratio": many / one,
        "each_s": each,
        "most_waiting": most_waiting,
        "idle_rss_bytes": idle_kb * 1024,
        "peak_rss_sampled_bytes": sampled_kb * 1024,
        "peak_rss_bytes": max(hwm_kb, sampled_kb) * 1024,
    }


def run(quick: bool = False) -> dict[str, Any]:
    users = 4 if quick else 50
    queued, generating = (0.2, 0.6) if quick else (1.0, 9.0)
    poll = "0.3" if quick else None  # full runs use the app's default (2 s)
    photo = make_photo(1600, 1200)
    # (variant, cap): the app's own concurrency (a cap of one job a user), Gradio's defaults
    # the same way, then the app as it ships (the default cap).
    runs = [("ours", users), ("gradio_defaults", users), ("ours", None)]
    results: dict[tuple[str, int | None], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "logs").mkdir()
        sim = start_simulator(queued, generating, tmp / "logs")
        api = sim.url.rstrip("/")

        def measure(server: Server, variant: str, cap: int | None) -> dict[str, Any]:
            data_dir = _data_dir(tmp, variant, cap)
            return _measure(server, users, photo, tmp / "downloads", data_dir, cap or DEFAULT_CAP)

        try:
            if quick:  # start the apps at once to save time; it is only a smoke run
                with ThreadPoolExecutor(max_workers=len(runs)) as pool:
                    starts = {r: pool.submit(_start, r[0], api, tmp, poll, r[1]) for r in runs}
                try:
                    for (variant, cap), start in starts.items():
                        results[variant, cap] = measure(start.result(), variant, cap)
                finally:  # stop each that started, even when another did not
                    for start in starts.values():
                        if start.exception() is None:
                            start.result().stop()
            else:
                for variant, cap in runs:
                    with _start(variant, api, tmp, poll, cap) as server:
                        results[variant, cap] = measure(server, variant, cap)
        finally:
            sim.stop()
    ours, dflt, shipped = (
        results["ours", users],
        results["gradio_defaults", users],
        results["ours", None],
    )
    rounds = math.ceil(users / DEFAULT_CAP)
    floor = rounds * shipped["one_s"]  # the cap's rounds back to back, each as one alone
    job = f"{queued + generating:g} s"
    rows = [
        row(
            f"3. Many users: {users} simultaneous {job} jobs, wall time vs one alone",
            f"{fmt_s(ours['many_s'])} (one: {fmt_s(ours['one_s'])})",
            f"Gradio defaults: {fmt_s(dflt['many_s'])} (one: {fmt_s(dflt['one_s'])}), "
            f"{dflt['ratio']:.2f}x",
            ours["ratio"],
            "≤ 1.3x of one",
            ours["ratio"] <= TARGET_RATIO,
        ),
        row(
            f"3. Many users: app peak resident memory ({users} jobs)",
            f"{fmt_mb(ours['peak_rss_bytes'])} (idle {fmt_mb(ours['idle_rss_bytes'])})",
            f"Gradio defaults: {fmt_mb(dflt['peak_rss_bytes'])} "
            f"(idle {fmt_mb(dflt['idle_rss_bytes'])})",
            None,
            "< 400 MB",
            ours["peak_rss_bytes"] < RSS_LIMIT,
        ),
        row(
            f"3. Many users, the default cap ({DEFAULT_CAP} jobs a key at the vendor): "
            f"{users} jobs at once, time to the last video",
            f"{fmt_s(shipped['many_s'])}; up to {shipped['most_waiting']} waiting here",
            f"{rounds} rounds of {DEFAULT_CAP} back to back: {fmt_s(floor)} "
            f"(one: {fmt_s(shipped['one_s'])})",
            shipped["many_s"] / floor,
            "(reported)",
            None,
        ),
    ]
    return {
        "name": "many_users",
        "rows": rows,
        "metrics": {
            "users": users,
            "one_s": ours["one_s"],
            "many_s": ours["many_s"],
            "ratio": ours["ratio"],
            "peak_rss_bytes": ours["peak_rss_bytes"],
            "defaults_one_s": dflt["one_s"],
            "defaults_many_s": dflt["many_s"],
            "defaults_ratio": dflt["ratio"],
            "defaults_peak_rss_bytes": dflt["peak_rss_bytes"],
            "default_cap": DEFAULT_CAP,
            "capped_many_s": shipped["many_s"],
            "capped_one_s": shipped["one_s"],
            "capped_floor_s": floor,
            "capped_most_waiting": shipped["most_waiting"],
            "variants": {f"{v}, cap {c or DEFAULT_CAP}": r for (v, c), r in results.items()},
        },
        "notes": [
            f"Many users: simulator in its own process (jobs queued {queued:g} s + "
            f"generating {generating:g} s), app in another, {users} gradio_client.Client "
            "instances (one per user, made beforehand) each uploading a 1600x1200 JPEG and "
            "calling /generate to the end (every update streamed, the MP4 fetched); wall time "
            "from the first submit to the last result; memory = max(VmHWM at the end, VmRSS "
            "sampled every 100 ms) of the app process, start-up included. "
            f"Poll interval {'0.3 s (quick)' if quick else 'the default 2 s'}. The load "
            "generator shares one SSL context among gradio_client's many short-lived httpx "
            "clients (cheap_http_clients): unpatched, it burned ~11 CPU-s building SSL contexts "
            "for 50 users, twice the app's own CPU, on the same 2 cores. All users share the "
            f"app's one API key; for these two rows KLING_UI_MAX_ACTIVE_PER_KEY={users} (one "
            "job a user at the vendor), so the app's own concurrency is what is measured.",
            "Gradio defaults: the same page launched with queue() and launch() as they come: "
            "max_threads=40 caps the worker threads that run every step of our synchronous "
            "generator handler (each step holds its thread through the 2 s sleep between "
            "polls), so with more than 40 jobs some wait for a thread. Gradio's other default, "
            "default_concurrency_limit=1, does not apply: our events set concurrency_limit="
            "None explicitly. With it (the per-event default), 50 jobs would run one after "
            "another, about 50x the time of one.",
            f"Default cap: the same {users} jobs with KLING_UI_MAX_ACTIVE_PER_KEY unset "
            f"({DEFAULT_CAP}, the app's default): at most {DEFAULT_CAP} at the vendor, the "
            "rest waiting here in turn (queued_here). Time to the last video from the first "
            f"submit, against the cap's floor: ceil({users} / {DEFAULT_CAP}) = {rounds} "
            "rounds back to back, each as long as one job alone in the same app; waiting = "
            "the most queued_here rows in the app's ledger at once while the key's "
            f"{DEFAULT_CAP} slots at the vendor were all taken, read every 100 ms.",
        ],
    }
