"""7. Flood: one client sends 250 unread ``/generate`` calls; another visitor resumes a job.

Issue 11's "fair shares" target. ``python app.py --port P`` runs in demo mode (no key) in a
subprocess with a fresh ``KLING_UI_DATA_DIR``. A second visitor (a ``gradio_client.Client``
whose requests carry ``X-Forwarded-For: 10.9.9.9``, which the server takes from a loopback
peer) first makes one job to completion; demo jobs then last a minute, so the app is
restarted on the same data directory with a long demo schedule (the ledger, the video and
the demo simulator's jobs survive a restart, as the app promises). Then, from 127.0.0.1:

- one client uploads a photo once and sends ``N`` raw ``POST /gradio_api/call/generate``
  calls as fast as it can (8 threads, keep-alive), never reading a result;
- right after, the second visitor's ``/resume`` of its finished job is timed 5 times in a
  row (``Client.submit(...).result()``: every update and the MP4 fetched);
- the app's OS threads (``Threads:`` in /proc/<pid>/status) are sampled every 100 ms from
  before the flood until it has settled (no new ledger row for 2 s after the resumes);
- only once all that is measured are the flood's results read (the first update of each)
  to count the refusals and their words; jobs made = the new rows in the ledger
  (``history.sqlite3``, table ``jobs``) after that.

The same run with ``KLING_UI_VISITOR_STREAMS=1000`` and ``KLING_UI_VISITOR_MAX_JOBS=1000``
is the behaviour before fair shares: every call makes a job and holds a server thread
while it is watched. Target: the resume answers in under 1 s (max of 5) with threads
bounded; the flood makes at most ``visitor_streams`` (4) jobs.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from apprunner import PROMPT, Server, app_argv, clean_env, generate, user_client

from bench._common import PeakSampler, fmt_s, make_photo, median, proc_status_kb, row

TARGET_S = 1.0
STREAMS = 4  # the app's default KLING_UI_VISITOR_STREAMS
VISITOR = 0x090909  # user_client's number for 10.9.9.9
RESUMES = 5
FLOOD_THREADS = 8
# Threads once the flood is over may exceed those before it by one per job watched plus
# this: the job runner's workers (8 at most), the demo simulator's threads for the runner's
# open connections, anyio's last worker.
THREAD_SLACK = 12
IDLE_WORKER_S = 10  # anyio's WorkerThread.MAX_IDLE_TIME
VARIANTS = {
    "on": {},  # the app's defaults: 4 jobs watched, 48 not yet ended per visitor
    "off": {"KLING_UI_VISITOR_STREAMS": "1000", "KLING_UI_VISITOR_MAX_JOBS": "1000"},
}


def threads(pid: int) -> int:
    return proc_status_kb(pid, "Threads") or 0


def ledger_rows(data_dir: Path) -> int:
    """Rows in the ledger's ``jobs`` table, read as another process would."""
    path = data_dir / "history.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    finally:
        db.close()


def _env(data_dir: Path, schedule: str, extra: dict[str, str]) -> dict[str, str]:
    return clean_env(KLING_UI_DATA_DIR=str(data_dir), KLING_UI_DEMO_SCHEDULE=schedule, **extra)


def _finished_job(data_dir: Path, extra: dict[str, str], photo: Path, logs: Path) -> str:
    """The second visitor's finished job, made on a short demo schedule; its id."""
    with Server(app_argv(), _env(data_dir, "0.2,0.5", extra), log_dir=logs, name="app") as app:
        client = user_client(app.url, VISITOR, analytics_enabled=False)
        gid, status, video = generate(client, photo, prompt="A finished job to resume.")[-1]
    if not (gid and status.startswith("Status: completed") and video):
        raise RuntimeError(f"the visitor's job did not complete: {status!r}")
    return gid


def _flood(url: str, photo: Path, calls: int) -> tuple[list[str], float, int]:
    """Upload once, then ``calls`` POSTs of /generate, never read; (event ids, seconds,
    calls the server did not take)."""
    import requests

    base = url.rstrip("/") + "/gradio_api"
    with open(photo, "rb") as f:
        (path,) = requests.post(f"{base}/upload", files={"files": f}, timeout=60).json()
    image = {"path": path, "meta": {"_type": "gradio.FileData"}}
    body = json.dumps({"data": [image, PROMPT, "", 5, True, ""]})
    headers = {"Content-Type": "application/json"}
    local = threading.local()

    def call(_: int) -> str | None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = local.session.post(
            f"{base}/call/generate", data=body, headers=headers, timeout=60
        )
        return response.json().get("event_id") if response.status_code == 200 else None

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=FLOOD_THREADS) as pool:
        results = list(pool.map(call, range(calls)))
    seconds = time.perf_counter() - t0
    events = [e for e in results if e]
    return events, seconds, len(results) - len(events)


def _first_update(url: str, event_id: str) -> str:
    """The first data line of a /generate call's stream (read after the measurement)."""
    import requests

    stream_url = url.rstrip("/") + f"/gradio_api/call/generate/{event_id}"
    try:
        with requests.get(stream_url, stream=True, timeout=(10, 5)) as response:
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    return line[5:].strip()
    except requests.RequestException:  # no update yet (its handler still waits for a thread)
        pass
    return ""


def _resume(client: Any, gid: str, timeout: float) -> tuple[float, str]:
    t0 = time.perf_counter()
    job = client.submit(generation_id=gid, api_key="", api_name="/resume")
    _, status, video = job.result(timeout=timeout)
    seconds = time.perf_counter() - t0
    if not (status.startswith("Status: completed") and video):
        raise RuntimeError(f"the visitor's resume did not show the finished job: {status!r}")
    return seconds, status


def _settle(data_dir: Path, quiet: float = 2.0, most: float = 60.0) -> None:
    """Wait until no new ledger row has appeared for ``quiet`` s (at most ``most`` s)."""
    deadline = time.perf_counter() + most
    last, since = ledger_rows(data_dir), time.perf_counter()
    while time.perf_counter() < deadline and time.perf_counter() - since < quiet:
        time.sleep(0.1)
        now = ledger_rows(data_dir)
        if now != last:
            last, since = now, time.perf_counter()


def _measure(
    variant: str, calls: int, schedule: str, tmp: Path, photo: Path, idle_s: float
) -> dict[str, Any]:
    extra = VARIANTS[variant]
    data_dir, logs = tmp / f"data-{variant}", tmp / "logs"
    downloads = tmp / f"downloads-{variant}"
    gid = _finished_job(data_dir, extra, photo, logs)
    rows_before = ledger_rows(data_dir)
    with Server(app_argv(), _env(data_dir, schedule, extra), log_dir=logs, name="app") as app:
        client = user_client(
            app.url, VISITOR, analytics_enabled=False, download_files=str(downloads)
        )
        idle = [_resume(client, gid, 60)[0] for _ in range(3)]  # warm, then the idle figure
        time.sleep(1.0)
        before = threads(app.pid)
        sampler = PeakSampler(app.pid, "Threads")
        try:
            events, flood_s, not_taken = _flood(app.url, photo, calls)
            resumes = [_resume(client, gid, 600)[0] for _ in range(RESUMES)]
            _settle(data_dir)
            settled = threads(app.pid)
        finally:
            peak = sampler.stop()
        # anyio keeps an idle worker thread until it next hands out work 10 s or more later:
        # wait past that, start one more resume (not timed), then count the threads left.
        time.sleep(idle_s)
        late = client.submit(generation_id=gid, api_key="", api_name="/resume")
        late_done = _wait(late, 5.0)
        after = threads(app.pid)
        # Only now are the flood's results read: how many were refused, and in what words.
        with ThreadPoolExecutor(max_workers=8) as pool:
            firsts = list(pool.map(lambda e: _first_update(app.url, e), events))
        made = ledger_rows(data_dir) - rows_before
    refusals = [f for f in firsts if "already watching" in f or "one person may" in f]
    return {
        "calls": calls,
        "flood_s": flood_s,
        "not_taken": not_taken,
        "idle_resume_s": sorted(idle[1:]),
        "resume_s": resumes,
        "resume_median_s": median(resumes),
        "resume_max_s": max(resumes),
        "threads_before": before,
        "threads_peak": max(peak, before),
        "threads_settled": settled,
        "threads_after": after,
        "late_resume_answered_in_5s": late_done,
        "jobs_made": made,
        "refused": len(refusals),
        "not_yet_run": calls - made - len(refusals),
        "no_update_yet": sum(1 for f in firsts if not f),
        "refusal_text": json.loads(refusals[0])[1] if refusals else "",
        "app_started_s": app.started_s,
    }


def _wait(job: Any, timeout: float) -> bool:
    """Whether a gradio_client job ends within ``timeout`` s (errors count as ended)."""
    try:
        job.result(timeout=timeout)
    except FutureTimeout:
        return False
    except Exception:  # noqa: BLE001 - only its timing matters here
        pass
    return True


def run(quick: bool = False) -> dict[str, Any]:
    calls = 8 if quick else 250  # quick: still twice the 4 streams, so some are refused
    schedule = "2,28" if quick else "5,55"  # the flood's jobs outlast the measurement
    idle_s = 1 if quick else IDLE_WORKER_S + 1  # quick: 'after' is not past anyio's idle time
    photo = make_photo(1024, 768)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if quick:  # both variants at once to save time; it is only a smoke run
            with ThreadPoolExecutor(max_workers=len(VARIANTS)) as pool:
                runs = {
                    v: pool.submit(_measure, v, calls, schedule, tmp, photo, idle_s)
                    for v in VARIANTS
                }
                results = {v: r.result() for v, r in runs.items()}
        else:
            results = {v: _measure(v, calls, schedule, tmp, photo, idle_s) for v in VARIANTS}
    on, off = results["on"], results["off"]
    job_s = sum(float(s) for s in schedule.split(","))

    def resumes(r: dict[str, Any]) -> str:
        return f"{fmt_s(r['resume_median_s'])} / {fmt_s(r['resume_max_s'])}"

    def thread_counts(r: dict[str, Any]) -> str:
        return f"{r['threads_before']} / {r['threads_peak']} / {r['threads_after']}"

    def outcome(r: dict[str, Any]) -> str:
        text = f"{r['jobs_made']} / {r['refused']}"
        if r["not_yet_run"]:
            text += f" ({r['not_yet_run']} not yet run)"
        return text

    flood = f"7. Flood: {calls} unread /generate calls from one client"
    rows = [
        row(
            f"{flood}; another visitor's /resume of a finished job, median / max of {RESUMES}",
            f"{resumes(on)} (no flood: {fmt_s(median(on['idle_resume_s']))})",
            f"fair shares off: {resumes(off)} (no flood: {fmt_s(median(off['idle_resume_s']))})",
            on["resume_max_s"] / off["resume_max_s"],
            "< 1 s (max)",
            on["resume_max_s"] < TARGET_S,
        ),
        row(
            f"{flood}: app threads, before / peak / {idle_s:g} s after",
            thread_counts(on),
            f"fair shares off: {thread_counts(off)}",
            None,
            f"after ≤ before + {STREAMS} jobs + {THREAD_SLACK}",
            on["threads_after"] <= on["threads_before"] + STREAMS + THREAD_SLACK,
        ),
        row(
            f"{flood}: jobs made / refused in words",
            outcome(on),
            f"fair shares off: {outcome(off)}",
            None,
            f"≤ {STREAMS} made, the rest refused",
            on["jobs_made"] <= STREAMS and on["refused"] == calls - on["jobs_made"],
        ),
    ]
    words = on["refusal_text"].splitlines()[-1] if on["refusal_text"] else "none"
    return {
        "name": "flood",
        "rows": rows,
        "metrics": {
            "calls": calls,
            "flood_s": on["flood_s"],
            "resume_median_s": on["resume_median_s"],
            "resume_max_s": on["resume_max_s"],
            "idle_resume_median_s": median(on["idle_resume_s"]),
            "threads_before": on["threads_before"],
            "threads_peak": on["threads_peak"],
            "threads_after": on["threads_after"],
            "jobs_made": on["jobs_made"],
            "refused": on["refused"],
            "baseline_flood_s": off["flood_s"],
            "baseline_resume_median_s": off["resume_median_s"],
            "baseline_resume_max_s": off["resume_max_s"],
            "baseline_threads_peak": off["threads_peak"],
            "baseline_threads_after": off["threads_after"],
            "baseline_jobs_made": off["jobs_made"],
            "variants": results,
        },
        "notes": [
            "Flood: python app.py in demo mode in a subprocess, a fresh KLING_UI_DATA_DIR per "
            "variant. A second visitor (gradio_client with X-Forwarded-For 10.9.9.9, taken "
            "from the loopback peer) makes one job to completion on a 0.7 s demo schedule; the "
            f"app is restarted on the same data directory with demo jobs of {job_s:g} s "
            f"(KLING_UI_DEMO_SCHEDULE={schedule}), so the flood's jobs outlast the "
            "measurement. After 3 resumes with no flood (the first untimed; 'no flood' is the "
            "median of the other 2), one client at 127.0.0.1 uploads a 1024x768 JPEG once and "
            f"sends {calls} raw POST /gradio_api/call/generate calls ({FLOOD_THREADS} threads, "
            f"keep-alive: all sent in {fmt_s(on['flood_s'])} with fair shares, "
            f"{fmt_s(off['flood_s'])} without; the app's own CPU is what limits the rate), "
            f"never reading a result; right after, the visitor's /resume is timed {RESUMES} "
            "times in a row (every update and the MP4 fetched). Threads = Threads: in "
            "/proc/<pid>/status of the app: 'before' 1 s after the resumes with no flood, "
            "'peak' sampled every 100 ms from the flood until no new ledger row has come for "
            f"2 s after the resumes, 'after' {idle_s:g} s later still, once one more "
            "resume has been started (anyio keeps an idle worker thread until it next hands "
            f"out work {IDLE_WORKER_S} s or more later; the peak with fair shares is such "
            "passing workers, one per refused call being answered, at most Gradio's "
            "max_threads 200). Refused = the flood's results, read only after all that, "
            f"counted by their words ({words!r}); jobs made = new rows in history.sqlite3's "
            "jobs table once they were read; 'not yet run' = calls neither made a job nor "
            "were refused (still waiting for a thread when the app was stopped).",
            "Fair shares off: the same run with KLING_UI_VISITOR_STREAMS=1000 and "
            "KLING_UI_VISITOR_MAX_JOBS=1000, the behaviour before issue 11: every call makes a "
            "job and its handler holds one of Gradio's worker threads (max_threads 200) while "
            "it waits for its job's next change, so other visitors' events, the resume "
            "included, wait for a thread to come free.",
        ],
    }
