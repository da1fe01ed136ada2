"""6. Runner: many jobs watched by one small pool, and fewer polls for long jobs.

The simulator (``kling_ui.simulator.Simulator``) runs in this process, on loopback, and
records every request it receives: each job's polls come from there. Every job is made with
the outcome "never" and ended by ``complete_now`` at its create + its length: the nominal
length ± up to one poll interval, the offsets an even grid (shuffled), so the ends fall
evenly between two polls. (With a fixed schedule of a whole number of poll intervals every
job would end just before one of its own polls, and done to disk would read near zero.)

**200 jobs watched at once.** A fresh process (this module run as a worker) makes a
``GenerationService`` (server key, ``max_active_per_key`` 1000, a fresh ledger, 2 s polls)
and adds 200 jobs of about 20 s at once (``runner.add``, an https image URL so no image
work). It waits until the ledger has no unfinished job, sampling ``threading.active_count()``
and VmRSS every 20 ms; the peak (also VmHWM, reset through /proc/self/clear_refs) minus the
resident size before the service was made is the growth. The baseline is the same 200 jobs
in another fresh process, one thread per job: ``AIMLClient.create_generation``, then
``time.sleep(2)`` and ``get_generation`` in a loop, then ``download_video`` (one shared
``Sessions``, as the app has). Done to disk = the row's ``done`` (written once the file is
on disk) or the baseline's download returning, minus the time the simulator ended the job.
Poll spacing = the intervals between a job's consecutive polls, all jobs pooled. Targets:
peak threads at most the idle count + the runner's 8 workers + 3, whatever the job count;
done to disk median at most 1.5 s, p95 at most 3 s.

**Polls per 2-minute job.** Two services in this process, each with a simulator of its
own, five jobs of about 120 s each, all at once: one whose ledger has already seen
finished jobs of 120 s (as many as it needs to trust them, ``sparse_after_runs``: rows moved
through ``Ledger.transition`` with ``submitted_at`` and ``finished_at`` 120 s apart), so it
polls every 10 s until 80% of that and every 2 s after; the baseline's ledger is fresh, so
it polls every 2 s throughout. Target: at most half the baseline's polls per job, with done
to disk still within 1.5 s median, 3 s p95.

``--quick`` scales time down (20 jobs of 2 s at 0.2 s polls; 6 s jobs at 0.2 s polls and
1 s sparse polls after seeded 6 s runs): a smoke run, not the figures. The targets stay
those of 2 s polls, so quick runs meet them easily.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import ROOT, fmt_mb, fmt_s, median, percentile, proc_status_kb, row
from kling_ui.config import POLL_PATH

KEY = "bench-runner-key"
IMAGE_URL = "https://example.com/cat.jpg"
DONE_MEDIAN_LIMIT = 1.5
DONE_P95_LIMIT = 3.0
THREAD_SLACK = 3  # the runner's scheduler thread, and room for two more
POLLS_RATIO_TARGET = 0.5

SEEDED_ID = "seeded-earlier-job"
# Each job's length (create to finish at the vendor) is "length" ± up to "poll" (Finisher);
# "queued" is how much of it the vendor reports the job queued.
FULL = {
    "many": {"jobs": 200, "length": 20.0, "queued": 2.0, "poll": 2.0},
    "long": {"jobs": 5, "length": 120.0, "queued": 10.0, "poll": 2.0, "sparse": 10.0},
}
QUICK = {
    "many": {"jobs": 20, "length": 2.0, "queued": 0.2, "poll": 0.2},
    "long": {"jobs": 3, "length": 6.0, "queued": 0.5, "poll": 0.2, "sparse": 1.0},
}


# --- the worker: one process, one way of watching jobs ------------------------------------


class Sampler:
    """Peak Python thread count and VmRSS of this process, sampled every ``every`` s."""

    def __init__(self, every: float = 0.02) -> None:
        self.peak_threads = 0
        self.peak_os_threads = 0
        self.peak_rss_kb = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_threads = max(self.peak_threads, threading.active_count())
            self.peak_os_threads = max(self.peak_os_threads, _own_status("Threads"))
            self.peak_rss_kb = max(self.peak_rss_kb, _own_status("VmRSS"))
            time.sleep(self._every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _own_status(field: str) -> int:
    return proc_status_kb(os.getpid(), field) or 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS (Linux 4.0+)
        return True
    except OSError:
        return False


def _start_measuring() -> tuple[Sampler, dict[str, Any]]:
    """A sampler of threads and memory, and the process's figures before the jobs."""
    gc.collect()
    sampler = Sampler()
    time.sleep(0.1)
    base = {
        "base_threads": threading.active_count(),
        "base_os_threads": _own_status("Threads"),
        "rss_before_kb": _own_status("VmRSS"),
        "reset": _reset_peak(),
    }
    return sampler, base


def _measured(
    mode: str, sampler: Sampler, hwm: int, base: dict[str, Any], added: float, jobs: list
) -> dict[str, Any]:
    """One way of watching's figures (``sampler`` stopped, ``hwm`` read when the jobs ended)."""
    reset = base.pop("reset")
    return {
        "mode": mode,
        **base,
        "peak_threads": sampler.peak_threads,
        "peak_os_threads": sampler.peak_os_threads,
        "peak_rss_kb": max(sampler.peak_rss_kb, hwm if reset else 0),
        "added_s": added,
        "jobs": jobs,
    }


def _watch_with_runner(url: str, n: int, poll: float, folder: Path, deadline: float) -> dict:
    from kling_ui.config import Settings
    from kling_ui.request import Request
    from kling_ui.service import GenerationService

    settings = Settings(
        api_key=KEY, base_url=url, data_dir=folder, poll_interval=poll, max_active_per_key=1000
    )
    sampler, base = _start_measuring()
    service = GenerationService(settings)
    try:
        backend = service.backend_for(None)
        for i in range(n):
            request = Request.make(f"Job {i}: the leaves fall slowly.", images={"image": IMAGE_URL})
            service.runner.add(request, backend)
        added = time.time()
        while service.ledger.unfinished() and time.time() < deadline:
            time.sleep(0.25)
        sampler.stop()
        hwm = _own_status("VmHWM")
        jobs = []
        for job in service.ledger.recent(n + 10):
            on_disk = bool(job.video_path) and Path(job.video_path).is_file()
            jobs.append({
                "request_id": job.job_id,
                "generation_id": job.generation_id,
                "state": job.state,
                "on_disk": on_disk,
                "seen_at": job.finished_at,  # first seen finished (set at "downloading")
                "done_at": job.updated_at if job.state == "done" else None,
            })  # fmt: skip
    finally:
        service.close()
    return _measured("ours", sampler, hwm, base, added, jobs)


def _watch_thread_per_job(url: str, n: int, poll: float, folder: Path, deadline: float) -> dict:
    from kling_ui.client import AIMLClient, Sessions
    from kling_ui.config import Settings
    from kling_ui.jobs import parse_generation
    from kling_ui.request import Request

    settings = Settings(api_key=KEY, base_url=url, data_dir=folder, poll_interval=poll)
    sampler, base = _start_measuring()
    sessions = Sessions.for_settings(settings)
    jobs: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        record: dict[str, Any] = {"request_id": f"base-{i}", "state": "failed", "on_disk": False}
        try:
            client = AIMLClient(KEY, settings, sessions)
            request = Request.make(f"Job {i}: the leaves fall slowly.", images={"image": IMAGE_URL})
            created = client.create_generation(request, client_request_id=record["request_id"])
            gid = record["generation_id"] = created.payload["id"]
            while time.time() < deadline:
                time.sleep(poll)
                status = parse_generation(client.get_generation(gid).payload, gid)
                if status.phase == "failed":
                    break
                if status.phase == "completed" and status.video_url:
                    record["seen_at"] = time.time()
                    path = client.download_video(status.video_url, folder / f"{i}.mp4")
                    record["done_at"] = time.time()
                    record["on_disk"] = path.is_file()
                    record["state"] = "done"
                    break
        except Exception as exc:  # reported, never raised: the parent counts the failures
            record["error"] = f"{type(exc).__name__}: {exc}"
        with lock:
            jobs.append(record)

    threads = [threading.Thread(target=one, args=(i,), name=f"job-{i}") for i in range(n)]
    for t in threads:
        t.start()
    added = time.time()
    for t in threads:
        t.join(max(0.0, deadline - time.time()) + 5)
    sampler.stop()
    hwm = _own_status("VmHWM")
    return _measured("threads", sampler, hwm, base, added, jobs)


def worker_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="one way of watching jobs, in this process")
    parser.add_argument("mode", choices=("ours", "threads"))
    parser.add_argument("url")
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--poll", type=float, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    # Everything either way imports, imported before the memory is measured.
    import kling_ui.client
    import kling_ui.service  # noqa: F401

    deadline = time.time() + args.timeout
    watch = _watch_with_runner if args.mode == "ours" else _watch_thread_per_job
    with tempfile.TemporaryDirectory() as tmp:
        result = watch(args.url, args.jobs, args.poll, Path(tmp), deadline)
    print(json.dumps(result))


# --- the parent -----------------------------------------------------------------------------


class Finisher:
    """Ends each of the next ``n`` jobs the simulator makes at its create + ``nominal`` + an
    offset from an even grid over ``nominal`` ± ``spread`` (shuffled, seeded), in the order
    they are made. The jobs are made with the outcome "never" and ended by ``complete_now``,
    so a job's end is not locked to its polls (with a fixed schedule of a whole number of
    poll intervals, every job would end just before one of its own polls), and with a
    spread of one poll interval or more the ends fall evenly between two polls, even for a
    handful of jobs. ``ended`` maps each of its jobs to the simulator's time it ended."""

    def __init__(self, sim: Any, n: int, nominal: float, spread: float, seed: int) -> None:
        self.sim = sim
        self._offsets = [spread * (2 * (i + 0.5) / n - 1) for i in range(n)]
        random.Random(seed).shuffle(self._offsets)
        self._old = set(sim.jobs)
        self._nominal = nominal
        self._due: dict[str, float] = {}
        self._pending: set[str] = set()
        self._stop = threading.Event()
        sim.script_outcome(*["never"] * n)
        self._thread = threading.Thread(target=self._run, name="bench-finisher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            jobs = list(self.sim.jobs.values())
            new = [j for j in jobs if j.id not in self._old and j.id not in self._due]
            for job in sorted(new, key=lambda j: j.created):
                offset = self._offsets.pop() if self._offsets else 0.0
                self._due[job.id] = job.created + self._nominal + offset
                self._pending.add(job.id)
            now = self.sim.clock()
            for gid in [g for g in self._pending if self._due[g] <= now]:
                self.sim.complete_now(gid)
                self._pending.discard(gid)
            time.sleep(0.005)

    def ended(self) -> dict[str, float]:
        jobs = [self.sim.jobs[gid] for gid in list(self._due)]
        return {job.id: job.ended_at for job in jobs if job.ended_at is not None}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _poll_times(sim: Any) -> dict[str, list[float]]:
    """Each generation's poll times: the GETs of the poll path naming it."""
    polls: dict[str, list[float]] = {}
    for r in sim.requests_to(POLL_PATH):
        if r.method == "GET" and r.query.get("generation_id"):
            polls.setdefault(r.query["generation_id"], []).append(r.time)
    return polls


def _job_figures(jobs: list[dict], ended: dict, polls: dict) -> dict[str, Any]:
    """Done to disk, its parts, poll counts and spacing, for one way of watching."""
    done, wait, fetch, counts, gaps, failed = [], [], [], [], [], 0
    for job in jobs:
        gid = job.get("generation_id")
        if job["state"] != "done" or not job["on_disk"] or gid not in ended:
            failed += 1
            continue
        done.append(job["done_at"] - ended[gid])
        wait.append(job["seen_at"] - ended[gid])
        fetch.append(job["done_at"] - job["seen_at"])
        times = sorted(polls.get(gid, []))
        counts.append(len(times))
        gaps.extend(b - a for a, b in zip(times, times[1:], strict=False))
    return {
        "jobs": len(jobs),
        "failed": failed,
        "done_median_s": median(done),
        "done_p95_s": percentile(done, 95),
        "done_max_s": max(done, default=float("nan")),
        "seen_median_s": median(wait),
        "fetch_median_s": median(fetch),
        "fetch_p95_s": percentile(fetch, 95),
        "polls_median": median(counts),
        "polls_mean": sum(counts) / len(counts) if counts else float("nan"),
        "spacing_median_s": median(gaps),
        "spacing_p95_s": percentile(gaps, 95),
    }


def _many(cfg: dict[str, float]) -> dict[str, Any]:
    from kling_ui.simulator import Schedule, Simulator

    n, poll = int(cfg["jobs"]), cfg["poll"]
    timeout = cfg["length"] * 3 + 60
    out: dict[str, Any] = {}
    with Simulator(schedule=Schedule(cfg["queued"], cfg["length"]), clock=time.time) as sim:
        for seed, mode in enumerate(("ours", "threads"), start=60):
            sim.reset()
            finisher = Finisher(sim, n, cfg["length"], poll, seed)
            try:
                argv = [sys.executable, "-m", "bench.bench_runner", "worker", mode, sim.url]
                argv += ["--jobs", str(n), "--poll", str(poll), "--timeout", str(timeout)]
                proc = subprocess.run(
                    argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 60
                )
            finally:
                finisher.stop()
            if proc.returncode != 0:
                raise RuntimeError(f"{mode} worker failed:\n{proc.stderr[-3000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            figures = _job_figures(result["jobs"], finisher.ended(), _poll_times(sim))
            figures.update(
                {k: result[k] for k in ("base_threads", "peak_threads", "peak_os_threads")},
                rss_growth_bytes=max(0, result["peak_rss_kb"] - result["rss_before_kb"]) * 1024,
            )
            out[mode] = figures
    return out


def _seed_shortest_run(ledger: Any, seconds: float, runs: int) -> None:
    """``runs`` finished jobs in the ledger whose submit-to-finish time was ``seconds``."""
    from kling_ui.request import Request

    for n in range(runs):
        t0 = time.time() - seconds - 600 - n
        asked = Request.make("An earlier job.")
        job = ledger.add(asked, backend="live", key_ref="server", created_at=t0)
        ledger.transition(job.job_id, "submitting", at=t0)
        ledger.transition(job.job_id, "submitted", at=t0 + 1, generation_id=f"{SEEDED_ID}-{n}")
        ledger.transition(job.job_id, "generating", at=t0 + 10)
        ledger.transition(job.job_id, "downloading", at=t0 + 1 + seconds)
        ledger.transition(job.job_id, "done", at=t0 + 2 + seconds, video_path="/nonexistent.mp4")
    assert ledger.shortest_run("live") == seconds, ledger.shortest_run("live")


def _ledger_jobs(ledger: Any) -> list[dict[str, Any]]:
    return [
        {
            "generation_id": j.generation_id,
            "state": j.state,
            "on_disk": bool(j.video_path) and Path(j.video_path).is_file(),
            "seen_at": j.finished_at,  # first seen finished (set at "downloading")
            "done_at": j.updated_at,  # the "done" transition, the last write
        }
        for j in ledger.recent(1000)
        if not (j.generation_id or "").startswith(SEEDED_ID)
    ]


def _long(cfg: dict[str, float], tmp: Path) -> dict[str, Any]:
    from kling_ui.config import Settings
    from kling_ui.history import Ledger
    from kling_ui.request import Request
    from kling_ui.service import GenerationService
    from kling_ui.simulator import Schedule, Simulator

    n, length = int(cfg["jobs"]), cfg["length"]
    out: dict[str, Any] = {}
    services: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        sims, finishers = {}, {}
        for seed, mode in enumerate(("ours", "fresh"), start=70):
            sim = Simulator(schedule=Schedule(cfg["queued"], length), clock=time.time)
            sims[mode] = stack.enter_context(sim)
            finishers[mode] = Finisher(sim, n, length, cfg["poll"], seed)
            stack.callback(finishers[mode].stop)
            settings = Settings(
                api_key=KEY,
                base_url=sim.url,
                data_dir=tmp / mode,
                poll_interval=cfg["poll"],
                sparse_poll_interval=cfg["sparse"],
                max_active_per_key=1000,
            )
            ledger = Ledger(settings.ledger_path)
            if mode == "ours":
                _seed_shortest_run(ledger, length, settings.sparse_after_runs)
            services[mode] = GenerationService(settings, ledger=ledger)
            stack.callback(services[mode].close)
        for i in range(n):
            for mode, service in services.items():
                prompt = f"Job {i} ({mode}): a long one."
                request = Request.make(prompt, images={"image": IMAGE_URL})
                service.runner.add(request, service.backend_for(None))
        deadline = time.time() + length * 2 + 60
        while time.time() < deadline and any(s.ledger.unfinished() for s in services.values()):
            time.sleep(0.25)
        for mode, service in services.items():
            ended, polls = finishers[mode].ended(), _poll_times(sims[mode])
            out[mode] = _job_figures(_ledger_jobs(service.ledger), ended, polls)
    out["fixed_computed"] = length / cfg["poll"]
    return out


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    many_cfg, long_cfg = sizes["many"], sizes["long"]
    many = _many(many_cfg)
    with tempfile.TemporaryDirectory() as tmp:
        long = _long(long_cfg, Path(tmp))

    from kling_ui.config import Settings

    workers = Settings().runner_workers
    ours, threads = many["ours"], many["threads"]
    n, poll = int(many_cfg["jobs"]), many_cfg["poll"]
    run_s = many_cfg["length"]
    thread_limit = ours["base_threads"] + workers + THREAD_SLACK
    failures = ours["failed"] + threads["failed"] + long["ours"]["failed"] + long["fresh"]["failed"]
    label = f"6. Runner: {n} jobs of ~{run_s:g} s watched at once"
    rows = [
        row(
            f"{label}: peak threads",
            f"{ours['peak_threads']} (idle {ours['base_threads']})",
            f"{threads['peak_threads']} (idle {threads['base_threads']}), thread per job",
            ours["peak_threads"] / threads["peak_threads"],
            f"≤ idle + {workers} workers + {THREAD_SLACK}",
            ours["peak_threads"] <= thread_limit,
        ),
        row(
            f"{label}: peak memory growth",
            fmt_mb(ours["rss_growth_bytes"]),
            fmt_mb(threads["rss_growth_bytes"]),
            None,
            "(reported)",
            None,
        ),
        row(
            f"{label}: poll spacing, median / p95",
            f"{fmt_s(ours['spacing_median_s'])} / {fmt_s(ours['spacing_p95_s'])}",
            f"{fmt_s(threads['spacing_median_s'])} / {fmt_s(threads['spacing_p95_s'])}",
            None,
            f"(reported; poll interval {fmt_s(poll)})",
            None,
        ),
        row(
            f"{label}: done to disk, median",
            fmt_s(ours["done_median_s"]),
            fmt_s(threads["done_median_s"]),
            ours["done_median_s"] / threads["done_median_s"],
            f"≤ {DONE_MEDIAN_LIMIT:g} s",
            ours["done_median_s"] <= DONE_MEDIAN_LIMIT and ours["failed"] == 0,
        ),
        row(
            f"{label}: done to disk, p95",
            fmt_s(ours["done_p95_s"]),
            fmt_s(threads["done_p95_s"]),
            ours["done_p95_s"] / threads["done_p95_s"],
            f"≤ {DONE_P95_LIMIT:g} s",
            ours["done_p95_s"] <= DONE_P95_LIMIT and ours["failed"] == 0,
        ),
    ]
    lo, lf = long["ours"], long["fresh"]
    long_s = long_cfg["length"]
    long_n = int(long_cfg["jobs"])
    polls_ratio = lo["polls_mean"] / lf["polls_mean"]
    rows += [
        row(
            f"6. Runner: polls per ~{long_s:g} s job ({long_n} at once, mean)",
            f"{lo['polls_mean']:.1f} (seen {long_s:g} s runs before)",
            f"{lf['polls_mean']:.1f} (fresh ledger: every {fmt_s(long_cfg['poll'])}; "
            f"computed {long['fixed_computed']:.0f})",
            polls_ratio,
            f"≤ {POLLS_RATIO_TARGET:g}x of fixed polling",
            polls_ratio <= POLLS_RATIO_TARGET and lo["failed"] == 0,
        ),
        row(
            f"6. Runner: ~{long_s:g} s jobs, sparse polls: done to disk, median / p95",
            f"{fmt_s(lo['done_median_s'])} / {fmt_s(lo['done_p95_s'])}",
            f"{fmt_s(lf['done_median_s'])} / {fmt_s(lf['done_p95_s'])}",
            lo["done_median_s"] / lf["done_median_s"],
            f"≤ {DONE_MEDIAN_LIMIT:g} s / ≤ {DONE_P95_LIMIT:g} s",
            lo["done_median_s"] <= DONE_MEDIAN_LIMIT and lo["done_p95_s"] <= DONE_P95_LIMIT,
        ),
    ]
    notes = [
        f"Runner, {n} jobs at once: the simulator in the bench's own process, each way of "
        "watching in a fresh worker process (so neither the simulator's threads nor its memory "
        f"count). Each job's length at the vendor is {run_s:g} s ± up to {poll:g} s, the "
        "offsets an even grid, shuffled (made with the outcome 'never', ended by "
        "complete_now), so the ends fall evenly between two polls. Ours: GenerationService "
        "with the server key "
        f"(runner_workers {workers}, max_active_per_key 1000, poll_interval {poll:g} s, a "
        f"fresh ledger), {n} runner.add calls in a row with an https image URL. Baseline: "
        "one thread per job (AIMLClient.create_generation, then time.sleep(poll) and "
        "get_generation in a loop, then download_video; one shared Sessions). Threads = "
        "threading.active_count() sampled every 20 ms ('idle' = before the service or the "
        "threads were made: the main thread and the sampler); OS threads (/proc Threads) "
        f"peaked at {ours['peak_os_threads']} vs {threads['peak_os_threads']}. Memory growth = "
        "max(VmHWM, sampled VmRSS) minus VmRSS before, VmHWM reset through "
        "/proc/self/clear_refs. Done to disk = the row's 'done' (written once the file is on "
        "disk; checked) or, for the baseline, download_video returning, minus the time the "
        "simulator ended the job. Of ours, waiting for the poll that saw it: median "
        f"{fmt_s(ours['seen_median_s'])}; from that poll to on disk: median "
        f"{fmt_s(ours['fetch_median_s'])}, p95 {fmt_s(ours['fetch_p95_s'])} (baseline: "
        f"{fmt_s(threads['seen_median_s'])}; {fmt_s(threads['fetch_median_s'])}, "
        f"{fmt_s(threads['fetch_p95_s'])}). Poll spacing = the intervals between each job's "
        f"consecutive polls as the simulator received them, all jobs pooled. Jobs that did "
        f"not finish: {failures}.",
        f"Runner, polls per long job: two simulators and two services in one process, "
        f"{long_n} jobs each, added at once; lengths {long_s:g} s ± up to "
        f"{long_cfg['poll']:g} s, as above. Ours: its ledger holds finished jobs of "
        f"{long_s:g} s, as many as it needs to trust them (sparse_after_runs; rows moved "
        "through Ledger.transition with submitted_at and finished_at that far apart), so it "
        f"polls every {long_cfg['sparse']:g} s (sparse_poll_interval) until 80% of that, "
        f"then every {long_cfg['poll']:g} s; baseline: the same runner on a fresh ledger, "
        f"which polls every {long_cfg['poll']:g} s throughout (computed: "
        f"{long['fixed_computed']:.0f} polls for {long_s:g} s). Polls = the simulator's GETs "
        f"of the poll path naming the job; ours: median {lo['polls_median']:g}, baseline "
        f"{lf['polls_median']:g}. Done to disk as above.",
    ]
    metrics = {
        "jobs": n,
        "job_seconds": run_s,
        "threads_peak": ours["peak_threads"],
        "threads_idle": ours["base_threads"],
        "baseline_threads_peak": threads["peak_threads"],
        "rss_growth_bytes": ours["rss_growth_bytes"],
        "baseline_rss_growth_bytes": threads["rss_growth_bytes"],
        "poll_spacing_median_s": ours["spacing_median_s"],
        "poll_spacing_p95_s": ours["spacing_p95_s"],
        "done_median_s": ours["done_median_s"],
        "done_p95_s": ours["done_p95_s"],
        "baseline_done_median_s": threads["done_median_s"],
        "baseline_done_p95_s": threads["done_p95_s"],
        "long_polls_per_job": lo["polls_mean"],
        "long_fixed_polls_per_job": lf["polls_mean"],
        "long_polls_ratio": polls_ratio,
        "long_done_median_s": lo["done_median_s"],
        "long_done_p95_s": lo["done_p95_s"],
        "unfinished_jobs": failures,
        "many": many,
        "long": long,
    }
    return {"name": "runner", "rows": rows, "metrics": metrics, "notes": notes}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        with contextlib.suppress(BrokenPipeError):
            worker_main(sys.argv[2:])
    else:
        print(json.dumps(run(quick="--quick" in sys.argv)["rows"], indent=2, ensure_ascii=False))
