"""Issue 11, probed as an attacker would: the whole app in this process over real HTTP,
the simulator behind it. Fair shares, ownership, the videos' addresses, the headers and
the Host check, the session store, retention. (Surrogates, uploads, hostile download
addresses and the demo simulator's token are in test_rules, test_inputs, test_client and
test_simulator.)"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from apprunner import app_in_process, generate, submit, user_client
from gradio_client import Client

from kling_ui.config import Settings
from kling_ui.request import Request
from kling_ui.service import GenerationService
from kling_ui.simulator import Schedule
from kling_ui.ui import launch_options
from kling_ui.web import frame_policy, host_allowed

pytestmark = pytest.mark.timeout(180)

FAST = Schedule(queued_s=0.1, generating_s=0.2)
MEDIA = re.compile(r"http://127\.0\.0\.1:\d+/media/[0-9a-f]{32}\.mp4")


def wait_until(check, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.05)


# --- fair shares ---------------------------------------------------------------------------


def test_a_flood_from_one_client_makes_four_jobs_and_leaves_others_served(tmp_path, photo):
    """250 unread /generate calls took 601 threads and an 82 s /resume: now one client has at
    most 4 jobs watched; the rest are refused in words at once, and another visitor's resume
    of a finished job still answers."""
    with app_in_process(tmp_path, FAST, api_key="sk-flood-5", poll_interval=0.05) as app:
        other = user_client(app.url, 7)
        finished = generate(other, photo)[-1][0]
        app.sim.script_outcome(*["never"] * 20)
        flooder = Client(app.url, verbose=False)
        jobs = [submit(flooder, photo) for _ in range(12)]
        wait_until(lambda: sum(j.done() for j in jobs) == 8, 60, "eight refusals")
        refused = [j.result() for j in jobs if j.done()]
        assert all("already watching 4 jobs" in r[1] for r in refused), refused[0]
        # Four jobs (three at the vendor: the key's own limit; one waiting its turn here).
        wait_until(lambda: app.sim.creates == 1 + 3, what="the creates")
        assert len(app.service.ledger.recent()) == 1 + 4
        started = time.monotonic()
        final = other.predict(generation_id=finished, api_key="", api_name="/resume")
        assert final[1].startswith("Status: completed") and time.monotonic() - started < 10
        assert app.sim.creates == 4 and len(app.service.ledger.recent()) == 5


def test_one_visitor_may_have_only_so_many_unfinished_jobs(tmp_path, photo):
    with app_in_process(tmp_path, FAST, api_key="sk-share-6", visitor_max_jobs=2) as app:
        app.sim.script_outcome(*["never"] * 5)
        client = user_client(app.url, 1)
        first = [submit(client, photo) for _ in range(2)]
        wait_until(lambda: app.sim.creates == 2, what="two creates")
        _, status, _ = generate(client, photo)[-1]
        assert status.startswith("Status: refused") and "one person may have 2" in status
        batch = client.predict(
            images=[], prompts="x", negative_prompt="", duration=5, generate_audio=True,
            takes=1, api_key="", api_name="/batch",
        )  # fmt: skip
        assert batch["items"] == []
        assert app.sim.creates == 2 and not any(j.done() for j in first)
        submit(user_client(app.url, 2), photo)  # another visitor is not held back
        wait_until(lambda: app.sim.creates == 3, what="the other visitor's create")


def test_a_free_slot_goes_to_the_owner_with_fewest_jobs_at_the_vendor(simulator, tmp_path, photo):
    """One key, one slot: a batch of 4 from A, then one job from B. B's goes second, not
    fifth."""
    settings = Settings(
        base_url=simulator.url, api_key="sk-fair-1", data_dir=tmp_path, poll_interval=0.05,
        max_active_per_key=1,
    )  # fmt: skip
    service = GenerationService(settings)
    try:
        simulator.script_outcome(*["never"] * 6)
        a = service.batch([photo], "A.", takes=4, owner="browser:a")
        wait_until(lambda: simulator.creates == 1, what="A's first create")
        b = service.batch([photo], "B.", takes=1, owner="browser:b")
        for made in (2, 3):
            gid = next(j for j in simulator.jobs.values() if j.ended_at is None).id
            simulator.complete_now(gid)
            wait_until(lambda n=made: simulator.creates == n, what=f"create {made}")
        jobs = [service.ledger.get(i["job_id"]) for i in a["items"] + b["items"]]
        order = [j.prompt for j in sorted((j for j in jobs if j.sent_at), key=lambda j: j.sent_at)]
        assert order == ["A.", "B.", "A."], order
    finally:
        service.close()


# --- ownership where visitors bring their own keys --------------------------------------------


def test_a_job_opens_only_for_a_key_the_vendor_accepts_for_it(tmp_path, photo):
    key_a, key_b = "sk-owner-a-1111", "sk-stranger-b-2222"
    with app_in_process(tmp_path, FAST, require_user_key=True, poll_interval=0.05) as app:
        gid, status, video = generate(user_client(app.url, 1), photo, api_key=key_a)[-1]
        assert status.startswith("Status: completed") and video
        stranger = user_client(app.url, 2)
        for key in ("", key_b):
            gid_out, status, video = stranger.predict(
                generation_id=gid, api_key=key, api_name="/resume"
            )
            assert (gid_out, video) == ("", None) and status.startswith("Status: not resumed")
            assert "error" in stranger.predict(gid, key, api_name="/status")
        # The same account from another machine: the vendor shows the job to that key.
        again = user_client(app.url, 3).predict(generation_id=gid, api_key=key_a,
                                                api_name="/resume")  # fmt: skip
        assert again[1].startswith("Status: completed") and again[2]
        assert app.sim.creates == 1


# --- the videos' addresses ---------------------------------------------------------------------


def test_a_videos_address_is_random_and_shows_no_server_path(live_app, photo):
    client = user_client(live_app.url, 11)
    gid = generate(client, photo)[-1][0]
    # The raw answer of a resume, as any program gets it.
    event = requests.post(
        f"{live_app.url}gradio_api/call/resume", json={"data": [gid, ""]}, timeout=10
    ).json()["event_id"]
    raw = requests.get(f"{live_app.url}gradio_api/call/resume/{event}", timeout=30).text
    data_dir = str(live_app.data_dir.resolve())
    assert data_dir not in raw and "videos/" not in raw
    url = MEDIA.search(raw).group(0)
    whole = requests.get(url, timeout=10)
    assert whole.status_code == 200 and whole.content[4:8] == b"ftyp"
    assert whole.headers["content-type"] == "video/mp4"
    part = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206 and len(part.content) == 100
    # A guessed token, or the file's own path through Gradio's file route: nothing.
    guess = re.sub(r"[0-9a-f]{32}", "0" * 32, url)
    assert requests.get(guess, timeout=10).status_code == 404
    job = live_app.service.entry(gid)
    by_path = requests.get(f"{live_app.url}gradio_api/file={job.video_path}", timeout=10)
    assert by_path.status_code in (403, 404)
    assert live_app.service.status(gid)["video"].startswith("/media/")


# --- headers and the Host check ------------------------------------------------------------------


def test_the_page_may_not_be_framed_by_other_sites(live_app):
    for path in ("", "config", "gradio_api/info"):
        answer = requests.get(live_app.url + path, timeout=10)
        assert answer.headers["content-security-policy"] == "frame-ancestors 'self'", path
        assert answer.headers["x-frame-options"] == "SAMEORIGIN", path
    space = frame_policy(on_space=True)  # a Space is shown inside huggingface.co's page
    assert b"https://huggingface.co" in space[b"content-security-policy"]
    assert b"x-frame-options" not in space


def test_a_loopback_app_answers_only_to_its_own_names(live_app):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1."""
    port = live_app.url.rstrip("/").rsplit(":", 1)[1]
    for host, code in [("evil.example", 421), (f"evil.example:{port}", 421),
                       (f"localhost:{port}", 200), (f"127.0.0.1:{port}", 200),
                       (f"[::1]:{port}", 200)]:  # fmt: skip
        answer = requests.get(live_app.url, headers={"Host": host}, timeout=10)
        assert answer.status_code == code, host
    assert host_allowed("studio.lan:7860", {"studio.lan"})
    assert host_allowed("0123abcd.gradio.live", ())  # a share link, however it was turned on
    assert not host_allowed("studio.lan.evil.example", {"studio.lan"})


def test_the_host_check_is_off_where_others_must_reach_the_app(tmp_path):
    service = GenerationService(Settings(data_dir=tmp_path), start=False)
    guard = {
        (host, share): launch_options(service, host=host, share=share)["app_kwargs"][
            "middleware"][0].kwargs["check_host"]
        for host in ("127.0.0.1", "0.0.0.0") for share in (False, True)
    }  # fmt: skip
    assert guard == {("127.0.0.1", False): True, ("127.0.0.1", True): False,
                     ("0.0.0.0", False): False, ("0.0.0.0", True): False}  # fmt: skip


# --- memory and disk ------------------------------------------------------------------------------


def test_gradios_session_store_is_capped(tmp_path):
    """Each API session kept about 75 KB in a store of 10,000."""
    with app_in_process(tmp_path, FAST, api_key="sk-sessions", session_capacity=3) as app:
        for n in range(6):
            assert "error" in user_client(app.url, n).predict("", "", api_name="/status")
        assert len(app.page.state_holder.session_data) <= 3


def test_retention_removes_old_ended_jobs_and_their_videos(simulator, tmp_path, photo):
    settings = Settings(base_url=simulator.url, api_key="sk-keep", data_dir=tmp_path,
                        poll_interval=0.05, keep_days=2)  # fmt: skip
    service = GenerationService(settings)
    try:
        done = list(service.generate(photo, Request.make("Old."), owner="browser:x"))[-1]
        simulator.script_outcome("never")
        still = Request.make("Still going.")
        waiting = next(iter(service.generate(photo, still, owner="browser:x")))
        video = Path(service.entry(done.generation_id).video_path)
        assert video.exists() and service.sweep() == 0
        assert service.sweep(now=time.time() + 3 * 86400) == 1
        assert not video.exists() and service.entry(done.generation_id) is None
        assert service.ledger.get(waiting.job_id) is not None  # unfinished: never removed
    finally:
        service.close()


def test_the_data_folder_is_for_the_apps_user_only(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    GenerationService(Settings(data_dir=folder), start=False)
    assert folder.stat().st_mode & 0o077 == 0
    assert (folder / "history.sqlite3").stat().st_mode & 0o077 == 0


def test_retention_is_off_on_a_laptop_and_on_on_a_space():
    assert Settings().retention_days == 0
    assert Settings(on_space=True).retention_days == 7
    assert Settings(on_space=True, keep_days=0).retention_days == 0
    assert Settings(keep_days=30).retention_days == 30


# --- who the caller is: the address behind our proxies ------------------------------------


def call_generate(url: str, photo: str, forwarded: list[str]) -> str:
    """One raw ``/generate`` call whose request carries each of ``forwarded`` as an
    X-Forwarded-For line of its own (as a client's header, then our proxy's, would arrive),
    read to its end: the last status text."""
    import http.client
    import json
    from urllib.parse import urlsplit

    with open(photo, "rb") as f:
        uploaded = requests.post(url + "gradio_api/upload", files={"files": f}, timeout=30)
    image = {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}}
    body = json.dumps({"data": [image, "Waves.", "", 5, True, ""]}).encode()
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", "/gradio_api/call/generate")
    for line in forwarded:
        conn.putheader("X-Forwarded-For", line)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    event = json.loads(conn.getresponse().read())["event_id"]
    conn.close()
    stream = requests.get(f"{url}gradio_api/call/generate/{event}", timeout=60).text
    datas = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
    return [d for d in datas if isinstance(d, list)][-1][1]


def test_every_x_forwarded_for_line_is_read_and_our_proxys_entry_is_the_caller(tmp_path, photo):
    """A proxy may add a line of its own (RFC 9110): the first line is the client's to
    write. With 1 video an hour, a second from the same real address is refused, whatever
    the client wrote."""
    with app_in_process(tmp_path, FAST, api_key="sk-hops-1", poll_interval=0.05,
                        trust_proxy=True, visitor_jobs_per_hour=1) as app:  # fmt: skip
        first = call_generate(app.url, photo, ["198.51.100.1", "203.0.113.7"])
        assert first.startswith("Status: completed"), first
        second = call_generate(app.url, photo, ["198.51.100.2", "203.0.113.7"])
        assert "1 video an hour" in second and app.sim.creates == 1, second
        # Another real address is another visitor.
        third = call_generate(app.url, photo, ["198.51.100.2", "203.0.113.8"])
        assert third.startswith("Status: completed") and app.sim.creates == 2, third


def test_with_two_proxies_of_ours_the_entry_before_the_last_is_the_caller(tmp_path, photo):
    limits = {"trust_proxy": True, "trusted_hops": 2, "visitor_jobs_per_hour": 1}
    with app_in_process(tmp_path, FAST, api_key="sk-hops-2", poll_interval=0.05, **limits) as app:
        first = call_generate(app.url, photo, ["198.51.100.1, 203.0.113.7", "10.0.0.2"])
        assert first.startswith("Status: completed"), first
        second = call_generate(app.url, photo, ["198.51.100.9", "203.0.113.7", "10.0.0.3"])
        assert "an hour on this app's key" in second and app.sim.creates == 1, second


def test_a_job_made_with_a_typed_key_is_not_read_by_its_address_alone(tmp_path, photo):
    """Another program at the same address, with no key, gets nothing: not the status, the
    price or the video. The key opens it, from anywhere."""
    key = "sk-owner-a-3333"
    with app_in_process(tmp_path, FAST, require_user_key=True, poll_interval=0.05) as app:
        gid, status, _ = generate(user_client(app.url, 1), photo, api_key=key)[-1]
        assert status.startswith("Status: completed")
        neighbour = user_client(app.url, 1)  # the same address
        answer = neighbour.predict(gid, "", api_name="/status")
        assert "error" in answer and "video" not in answer and "estimate_usd" not in answer
        out = neighbour.predict(generation_id=gid, api_key="", api_name="/resume")
        assert out[2] is None and out[1].startswith("Status: not resumed")
        assert neighbour.predict(gid, key, api_name="/status")["state"] == "done"
        # Opening it with the key once leaves the address no way in without it.
        assert "error" in neighbour.predict(gid, "", api_name="/status")
