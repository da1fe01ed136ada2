"""9. Several copies: the many-users load of part 3 (50 users, each a 10 s job through
``/generate``, every update streamed and the MP4 fetched) on one app process with its SQLite
ledger, and on three app processes sharing one PostgreSQL ledger and one data folder (the
users spread evenly over the three, as a load balancer would). The simulator runs in its own
process; PostgreSQL is a throwaway cluster (``tests/pg.py``). Reported: the wall time from the
first submit to the last result, and each process's peak resident memory (max of VmHWM at
the end and VmRSS sampled every 100 ms).
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from apprunner import Server, app_argv, clean_env, user_client

from bench._common import PeakSampler, fmt_mb, fmt_s, make_photo, proc_status_kb, row
from bench.bench_users import _run_jobs, cheap_http_clients, start_simulator


def _apps(n: int, api: str, tmp: Path, database: str | None, poll: str | None) -> list[Server]:
    env = clean_env(
        AIMLAPI_BASE_URL=api, AIMLAPI_KEY="x", KLING_UI_DATA_DIR=str(tmp / "data"),
        # The vendor's limit of jobs at once per key (3 by default) would make both ways wait
        # on the vendor alike: lifted, so what is measured is the app's own work.
        KLING_UI_MAX_ACTIVE_PER_KEY="100",
    )  # fmt: skip
    if database:
        env["KLING_UI_DATABASE_URL"] = database
    if poll:
        env["KLING_UI_POLL_INTERVAL"] = poll
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: Server(app_argv(), env, log_dir=tmp / "logs"), range(n)))


def _load(apps: list[Server], users: int, photo: Path, downloads: Path) -> dict[str, Any]:
    def client(n: int) -> Any:  # user n on app n mod len(apps), from an address of their own
        url = apps[n % len(apps)].url
        return user_client(url, n, analytics_enabled=False, download_files=str(downloads))

    samplers = [PeakSampler(app.pid, "VmRSS") for app in apps]
    try:
        with ThreadPoolExecutor(max_workers=10) as pool, cheap_http_clients():
            clients = list(pool.map(client, range(users)))
        with cheap_http_clients():
            wall, each = _run_jobs(clients, photo)
    finally:
        sampled = [s.stop() for s in samplers]
    peaks = [
        max(proc_status_kb(app.pid, "VmHWM") or 0, kb) * 1024
        for app, kb in zip(apps, sampled, strict=True)
    ]
    return {"wall_s": wall, "each_s": each, "peak_rss_bytes": peaks}


def run(quick: bool = False) -> dict[str, Any]:
    from pg import Cluster, missing

    reason = missing()
    if reason:
        raise RuntimeError(f"PostgreSQL is needed: {reason}")
    users = 3 if quick else 50  # quick: one user on each of the three processes
    queued, generating = (0.2, 0.6) if quick else (1.0, 9.0)
    poll = "0.3" if quick else None
    photo = make_photo(1600, 1200)
    cluster = Cluster()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            (tmp / "logs").mkdir()
            sim = start_simulator(queued, generating, tmp / "logs")
            ways = (("one", 1, None), ("three", 3, cluster.database()))

            def measure(way: tuple[str, int, str | None]) -> dict[str, Any]:
                name, n, database = way
                place = tmp / name
                (place / "logs").mkdir(parents=True)
                apps = _apps(n, sim.url.rstrip("/"), place, database, poll)
                try:
                    return _load(apps, users, photo, place / "downloads")
                finally:
                    for app in apps:
                        app.stop()

            try:
                if quick:  # both ways at once to save time; it is only a smoke run
                    with ThreadPoolExecutor(len(ways)) as pool:
                        runs = {way[0]: pool.submit(measure, way) for way in ways}
                        results = {name: run.result() for name, run in runs.items()}
                else:
                    results = {way[0]: measure(way) for way in ways}
            finally:
                sim.stop()
    finally:
        cluster.stop()
    one, three = results["one"], results["three"]
    job = f"{queued + generating:g} s"
    rows = [
        row(
            f"9. Several copies: {users} users' {job} jobs, wall time",
            f"3 processes, 1 PostgreSQL: {fmt_s(three['wall_s'])}",
            f"1 process, SQLite: {fmt_s(one['wall_s'])}",
            three["wall_s"] / one["wall_s"],
            "(reported)",
            None,
        ),
        row(
            f"9. Several copies: peak resident memory per process ({users} users)",
            "3 processes: " + ", ".join(fmt_mb(b) for b in three["peak_rss_bytes"]),
            "1 process: " + fmt_mb(one["peak_rss_bytes"][0]),
            None,
            "(reported)",
            None,
        ),
    ]
    return {
        "name": "replicas",
        "rows": rows,
        "metrics": {
            "users": users,
            "one_wall_s": one["wall_s"],
            "three_wall_s": three["wall_s"],
            "one_peak_rss_bytes": one["peak_rss_bytes"][0],
            "three_peak_rss_bytes_max": max(three["peak_rss_bytes"]),
        },
        "notes": [
            f"Several copies: the simulator in its own process (jobs queued {queued:g} s + "
            f"generating {generating:g} s); {users} gradio_client users (made beforehand, one "
            "address each) calling /generate to the end, user n on process n mod 3; one "
            "process with the default SQLite ledger, then three `python app.py` with "
            "KLING_UI_DATABASE_URL on one throwaway PostgreSQL 15 cluster (fsync off) and one "
            "shared data folder; poll interval the default 2 s; KLING_UI_MAX_ACTIVE_PER_KEY "
            "100 (the vendor-side limit of 3 at once would make both wait alike). All on the "
            "same 2 cores: the three processes share the CPU the one had, so this measures "
            "the cost of sharing "
            "the work (leases, the database), not the gain of more machines.",
        ],
    }
