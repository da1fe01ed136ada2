"""Several copies of the app on one PostgreSQL ledger and one shared data folder (issue 16):
three ``python app.py`` processes, 30 jobs sent to them at once, one process SIGKILLed in
the middle. Every video is delivered, each job created once, no job polled by two processes
(the simulator, in this process, is the vendor and keeps the record), the key's limit of jobs
at the vendor held across the processes; and a process on another disk fetches a video it
can't see from the vendor again."""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest
from apprunner import AppProcess, user_client
from gradio_client import handle_file
from psycopg.rows import dict_row

from kling_ui.simulator import Schedule, Simulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

KEY = "sk-replicas-key-0c2d"
POLL = 0.5
MOST_AT_VENDOR = 6


def rows(url: str) -> dict[str, dict]:
    with psycopg.connect(url, row_factory=dict_row) as db:
        return {r["job_id"]: r for r in db.execute("SELECT * FROM jobs").fetchall()}


def wait_for(what, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, f"never happened: {what.__doc__}"
        time.sleep(every)
    return value


def start(data: Path, sim: Simulator, url: str, **env: str) -> AppProcess:
    return AppProcess(
        data,
        env={
            "AIMLAPI_KEY": KEY,
            "AIMLAPI_BASE_URL": sim.url,
            "KLING_UI_DATABASE_URL": url,
            "KLING_UI_POLL_INTERVAL": str(POLL),
            "KLING_UI_LEASE_SECONDS": "3",
            "KLING_UI_MAX_ACTIVE_PER_KEY": str(MOST_AT_VENDOR),
            **env,
        },
    )


def polls_by_job(sim: Simulator) -> dict[str, list[tuple[float, float]]]:
    """Each job's polls as (start, end) times, from the simulator's record."""
    polls: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for request in sim.requests:
        gid = request.query.get("generation_id")
        if request.method == "GET" and gid:
            polls[gid].append((request.time, request.time + request.took))
    return polls


def test_three_processes_share_the_work_and_survive_one_killed(pg_url, tmp_path, photo):
    data = tmp_path / "shared"
    with Simulator(api_key=KEY, schedule=Schedule(queued_s=0.5, generating_s=2.0)) as sim:
        apps = [start(data, sim, pg_url) for _ in range(3)]
        try:
            for n, server in enumerate(apps):  # 10 videos queued on each, at once
                prompts = "\n".join(f"Job {n}-{i}." for i in range(10))
                answer = user_client(server.url, n).predict(
                    images=[handle_file(photo)], prompts=prompts, negative_prompt="", duration=5,
                    generate_audio=False, takes=1, api_key="", api_name="/batch",
                )  # fmt: skip
                assert len(answer["items"]) == 10, answer
            wait_for(lambda: sim.creates >= 8, timeout=60)
            apps[1].kill()  # mid-way: some of its jobs at the vendor, some not yet sent
            killed_at = time.time()

            def all_done():
                """all 30 jobs done, their videos in the shared folder"""
                jobs = rows(pg_url).values()
                return len(jobs) == 30 and all(
                    j["state"] == "done" and Path(j["video_path"]).is_file() for j in jobs
                )

            try:
                wait_for(all_done, timeout=120)
            except AssertionError:
                seen = [(j["state"], j["lease_owner"], j["message"][:80])
                        for j in rows(pg_url).values() if j["state"] != "done"]  # fmt: skip
                raise AssertionError(f"not done: {seen}") from None
        finally:
            for server in apps:
                server.stop()
        assert sim.creates == 30  # each job created once, the killed process's too
        assert sim.peak_active(KEY) <= MOST_AT_VENDOR  # the key's limit, across processes
        for gid, spans in polls_by_job(sim).items():
            spans.sort()
            for (start_a, end_a), (start_b, _) in zip(spans, spans[1:], strict=False):
                assert start_b >= end_a, f"{gid} polled by two at once"
                if not (start_a < killed_at + 4 < start_b or start_a < killed_at < start_b):
                    # One poller: never closer than most of a poll interval (two pollers of
                    # one job would be half an interval apart on average).
                    assert start_b - start_a > 0.6 * POLL, (gid, start_b - start_a)
        jobs = list(rows(pg_url).values())
        assert len({j["generation_id"] for j in jobs}) == 30
        assert {j["lease_owner"] for j in jobs} == {None}  # all ended: no one holds any


def test_a_process_on_another_disk_fetches_the_video_again(pg_url, tmp_path, photo):
    with Simulator(api_key=KEY, schedule=Schedule(queued_s=0.2, generating_s=0.5)) as sim:
        first = start(tmp_path / "machine-a", sim, pg_url)
        try:
            job = user_client(first.url, 1).submit(
                image=handle_file(photo), prompt="Seen on machine A.", negative_prompt="",
                duration=5, generate_audio=True, api_key="", api_name="/generate",
            )  # fmt: skip
            job.result()
            gid, status, video = job.outputs()[-1]
            assert status.startswith("Status: completed"), status
        finally:
            first.stop()
        (row,) = rows(pg_url).values()
        token = row["video_token"]
        Path(row["video_path"]).unlink()  # machine A's disk: not reachable from machine B
        other = start(tmp_path / "machine-b", sim, pg_url)
        try:
            gets = sim.polls
            url = other.url + f"media/{token}.mp4"
            with urllib.request.urlopen(url, timeout=30) as response:
                body = response.read()
            assert response.status == 200 and body[4:8] == b"ftyp"
            assert sim.polls == gets + 1  # one look for a fresh link, then the download
            again = urllib.request.urlopen(url, timeout=30).read()
            assert again == body and sim.polls == gets + 1  # kept: not fetched twice
        finally:
            other.stop()


def test_a_daily_budget_holds_across_processes(pg_url, tmp_path, photo):
    """$1.40 a day for the server's key is two 5 s videos, whichever process is asked: two
    batches of two sent at once to two processes make two videos, not four."""
    from concurrent.futures import ThreadPoolExecutor

    with Simulator(api_key=KEY, schedule=Schedule(queued_s=0.2, generating_s=0.5)) as sim:
        apps = [start(tmp_path / "shared", sim, pg_url, KLING_UI_DAILY_BUDGET_USD="1.40")
                for _ in range(2)]  # fmt: skip
        try:
            clients = [user_client(server.url, n) for n, server in enumerate(apps)]

            def batch(client):
                return client.predict(
                    images=[handle_file(photo)], prompts="One.\nTwo.", negative_prompt="",
                    duration=5, generate_audio=True, takes=1, api_key="", api_name="/batch",
                )  # fmt: skip

            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(batch, clients))
        finally:
            for server in apps:
                server.stop()
    made = [a for a in answers if a["items"]]
    refused = [a for a in answers if a.get("error")]
    assert len(made) == 1 and len(made[0]["items"]) == 2, answers
    assert len(refused) == 1 and "daily budget" in refused[0]["error"]
    assert len(rows(pg_url)) == 2
