"""The simulator speaks the vendor's protocol, over real HTTP with plain requests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from kling_ui.simulator import (
    MODEL,
    DownloadFault,
    Fault,
    Job,
    Schedule,
    Simulator,
)
from kling_ui.simulator import main as simulator_main

AUTH = {"Authorization": "Bearer any-key"}
PATHS = ["/v2/video/generations", "/v2/generate/video/kling/generation"]
ROOT = Path(__file__).resolve().parent.parent


def body(**changes):
    data = {"model": MODEL, "prompt": "A boat drifts.", "image_url": "https://example.com/a.jpg"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def create(sim, path=PATHS[0], headers=AUTH, **changes):
    return requests.post(sim.url + path, json=body(**changes), headers=headers, timeout=5)


def poll(sim, gid, path=PATHS[0], headers=AUTH):
    return requests.get(sim.url + path, params={"generation_id": gid}, headers=headers, timeout=5)


def logs(sim, headers=AUTH, **params):
    """``GET /v2/logs``; a list value repeats the parameter. ``period`` defaults to 24h."""
    params = {"period": "24h", **params}
    params = {k: v for k, v in params.items() if v is not ...}
    return requests.get(sim.url + "/v2/logs", params=params, headers=headers, timeout=5)


def rows(sim, headers=AUTH, **params):
    response = logs(sim, headers, **params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def key(name):
    return {"Authorization": f"Bearer {name}"}


@pytest.fixture
def timed(clock):
    """A simulator on the fake clock: a job is queued 1 s, then generates 3 s."""
    with Simulator(schedule=Schedule(queued_s=1, generating_s=3), clock=clock) as sim:
        yield sim


@pytest.mark.parametrize("path", PATHS)
def test_job_moves_queued_generating_completed_on_both_paths(simulator, path):
    created = create(simulator, path)
    assert created.status_code == 200
    job = created.json()
    assert job["status"] == "queued" and job["id"].endswith(":" + MODEL)
    assert job["meta"]["usage"]["credits_used"] > 0
    assert created.headers["x-aimlapi-credits-used"]
    seen = []
    for _ in range(100):
        status = poll(simulator, job["id"], path).json()
        if not seen or seen[-1] != status["status"]:
            seen.append(status["status"])
        if status["status"] == "completed":
            break
        time.sleep(0.02)
    assert seen == ["queued", "generating", "completed"]
    assert status["video"]["url"].startswith(simulator.url + "/files/")
    assert status["meta"]["usage"]["credits_used"] == job["meta"]["usage"]["credits_used"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"model": "other"}, "model"),
        ({"prompt": ...}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "p" * 2501}, "prompt"),
        ({"image_url": ...}, "image_url"),
        ({"image_url": "data:text/plain;base64,aGk="}, "image_url"),
        ({"image_url": "data:image/jpeg;base64,!!!not base64"}, "image_url"),
        ({"duration": 7}, "duration"),
        ({"duration": True}, "duration"),
        ({"duration": "7"}, "duration"),
        ({"image_url": "data:image/png;base64,"}, "image_url"),
        ({"image_url": 42}, "image_url"),
        ({"negative_prompt": 3}, "negative_prompt"),
        ({"negative_prompt": "n" * 2501}, "negative_prompt"),
        ({"generate_audio": "yes"}, "generate_audio"),
    ],
)
def test_invalid_body_gets_the_vendors_400(simulator, changes, field):
    response = create(simulator, **changes)
    assert response.status_code == 400
    error = response.json()
    assert error["message"].startswith("Body validation error!") and field in error["message"]
    assert {"path", "requestId", "statusCode", "timestamp"} <= set(error)
    assert simulator.jobs == {}


@pytest.mark.parametrize("duration", [5, 10, "5", "10", 5.0])
def test_duration_is_accepted_as_the_vendors_sample_sends_it(simulator, duration):
    response = create(simulator, duration=duration)
    assert response.status_code == 200
    assert simulator.job(response.json()["id"])["status"] == "queued"


def test_prompt_length_error_names_expected_and_received(simulator):
    message = create(simulator, prompt="p" * 2501).json()["message"]
    assert message == (
        "Body validation error! prompt: expected string of at most 2500 characters, received 2501"
    )


def test_base64_image_is_accepted_raw_or_as_data_uri(simulator):
    assert create(simulator, image_url="data:image/jpeg;base64,/9j/4AAQ").status_code == 200
    assert create(simulator, image_url="/9j/4AAQ").status_code == 200


def test_non_json_body_is_a_400(simulator):
    response = requests.post(simulator.url + PATHS[0], data=b"{nope", headers=AUTH, timeout=5)
    assert response.status_code == 400


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "x"}])
def test_missing_key_is_a_401(simulator, headers):
    assert create(simulator, headers=headers).status_code == 401
    assert poll(simulator, "x", headers=headers).status_code == 401


def test_a_specific_key_can_be_required():
    with Simulator(api_key="right") as sim:
        assert create(sim, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert create(sim, headers={"Authorization": "Bearer right"}).status_code == 200


def test_unknown_id_and_unknown_path_are_404(simulator):
    assert poll(simulator, "nope").status_code == 404
    assert requests.get(simulator.url + "/v1/else", timeout=5).status_code == 404
    assert requests.post(simulator.url + "/v1/else", json={}, timeout=5).status_code == 404


def test_unknown_admin_path_is_a_404(simulator):
    assert requests.post(simulator.url + "/__sim__/teleport", json={}, timeout=5).status_code == 404


def test_new_schedule_applies_to_jobs_created_after_it(simulator):
    before = create(simulator).json()["id"]
    simulator.set_schedule(Schedule(queued_s=0, generating_s=0))
    after = create(simulator).json()["id"]
    assert poll(simulator, after).json()["status"] == "completed"
    assert poll(simulator, before).json()["status"] == "queued"


def test_poll_without_id_is_a_400(simulator):
    assert requests.get(simulator.url + PATHS[0], headers=AUTH, timeout=5).status_code == 400


def test_requests_are_recorded_without_the_image(simulator):
    create(simulator, image_url="data:image/jpeg;base64," + "A" * 400)
    (record,) = simulator.requests
    assert record.body["image_url"] == "<image 423 chars>"
    assert record.headers["authorization"] == "Bearer any-key"
    assert simulator.creates == 1 and simulator.polls == 0


@pytest.mark.parametrize(
    "fault, status, check",
    [
        (Fault.status(403), 403, lambda r: "top up" in r.json()["message"]),
        (Fault.rate_limit(2), 429, lambda r: r.headers["Retry-After"] == "2"),
        (Fault.rate_limit(None), 429, lambda r: "Retry-After" not in r.headers),
        (Fault.status(502, "upstream"), 502, lambda r: r.json()["message"] == "upstream"),
        (Fault.non_json(), 200, lambda r: r.text == "<html>Bad gateway</html>"),
        (Fault.non_json(502), 502, lambda r: r.headers["Content-Type"] == "text/html"),
        (Fault.no_id(), 200, lambda r: "id" not in r.json()),
        (Fault.slow(0.3), 200, lambda r: r.elapsed.total_seconds() >= 0.3),
    ],
)
def test_create_faults(simulator, fault, status, check):
    simulator.script_create(fault)
    response = create(simulator)
    assert response.status_code == status
    assert check(response)
    assert create(simulator).status_code == 200  # one fault, one response


def test_dropped_connection_sends_no_response(simulator):
    simulator.script_create(Fault.drop())
    with pytest.raises(requests.ConnectionError):
        create(simulator)


def test_poll_faults_and_weird_status(simulator):
    gid = create(simulator).json()["id"]
    simulator.script_poll(Fault.status(500), Fault.weird_status("paused"))
    assert poll(simulator, gid).status_code == 500
    assert poll(simulator, gid).json()["status"] == "paused"
    assert poll(simulator, gid).json()["status"] in ("queued", "generating")


def test_every_third_poll_can_be_rate_limited(simulator):
    gid = create(simulator).json()["id"]
    simulator.script_poll_every(3, Fault.rate_limit(1))
    codes = [poll(simulator, gid).status_code for _ in range(6)]
    assert codes == [200, 200, 429, 200, 200, 429]
    simulator.script_poll_every(0, None)
    assert poll(simulator, gid).status_code == 200


def test_fail_job_ends_a_job_with_the_given_error(simulator):
    gid = create(simulator).json()["id"]
    simulator.fail_job(gid, "GenerationTimeout", "Took too long.")
    failed = poll(simulator, gid).json()
    assert failed["status"] == "error" and failed["video"] is None
    assert failed["error"] == {"name": "GenerationTimeout", "message": "Took too long."}


def test_outcomes_error_and_never(simulator):
    simulator.script_outcome("error", "never")
    failing = create(simulator).json()["id"]
    stuck = create(simulator).json()["id"]
    time.sleep(0.6)
    failed = poll(simulator, failing).json()
    assert failed["status"] == "error" and "moderation" in failed["error"]["message"]
    assert poll(simulator, stuck).json()["status"] == "generating"
    simulator.complete_now(stuck)
    assert simulator.job(stuck)["status"] == "completed"
    with pytest.raises(ValueError):
        simulator.script_outcome("maybe")


def video_url(sim) -> str:
    gid = create(sim).json()["id"]
    sim.complete_now(gid)
    return poll(sim, gid).json()["video"]["url"]


def test_video_is_served_with_ranges(simulator):
    url = video_url(simulator)
    full = requests.get(url, timeout=5)
    assert full.status_code == 200 and full.headers["Content-Type"] == "video/mp4"
    assert full.content == simulator.video_path.read_bytes()
    part = requests.get(url, headers={"Range": "bytes=4-11"}, timeout=5)
    assert part.status_code == 206 and part.content == full.content[4:12]
    assert part.headers["Content-Range"] == f"bytes 4-11/{len(full.content)}"
    tail = requests.get(url, headers={"Range": "bytes=-10"}, timeout=5)
    assert tail.content == full.content[-10:]
    beyond = requests.get(url, headers={"Range": "bytes=999999999-"}, timeout=5)
    assert beyond.status_code == 416


def test_video_with_a_bad_signature_is_refused(simulator):
    url = video_url(simulator)
    assert requests.get(url.replace("Signature=", "Signature=0"), timeout=5).status_code == 403


def test_expired_video_link_is_refused(simulator):
    gid = create(simulator).json()["id"]
    token = simulator.jobs[gid].token
    expired = int(time.time()) - 1
    url = (
        f"{simulator.url}/files/{token}/output.mp4"
        f"?Expires={expired}&Signature={simulator._signature(token, expired)}"
    )
    assert requests.get(url, timeout=5).status_code == 403
    assert requests.get(url.replace(f"={expired}&", "=soon&"), timeout=5).status_code == 403


def test_downloads_are_recorded_and_carry_no_key(simulator):
    url = video_url(simulator)
    requests.get(url, timeout=5)
    (download,) = simulator.requests_to("/files/")
    assert "authorization" not in download.headers
    assert set(download.query) == {"Expires", "Signature"}


def test_video_host_name_can_differ_from_the_api():
    with Simulator(cdn_host="localhost") as sim:
        url = video_url(sim)
        assert url.startswith(f"http://localhost:{sim.port}/files/")


def test_refused_link_does_not_use_up_a_download_fault(simulator):
    url = video_url(simulator)
    simulator.script_download(DownloadFault.status(404))
    assert requests.get(url + "0", timeout=5).status_code == 403
    assert requests.get(url, timeout=5).status_code == 404
    assert requests.get(url, timeout=5).status_code == 200


@pytest.mark.parametrize(
    "fault, check",
    [
        (DownloadFault.status(404), lambda r: r.status_code == 404),
        (DownloadFault.not_mp4(), lambda r: r.text.startswith("<html>")),
        (DownloadFault.redirect("http://localhost/x"), lambda r: r.status_code == 302),
    ],
)
def test_download_faults(simulator, fault, check):
    url = video_url(simulator)
    simulator.script_download(fault)
    assert check(requests.get(url, timeout=5, allow_redirects=False))


def test_truncated_download_breaks_off(simulator):
    url = video_url(simulator)
    simulator.script_download(DownloadFault.truncated())
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=5).content  # noqa: B018


def test_huge_and_synthetic_videos_stream_an_mp4_header():
    with Simulator(video_bytes=3_000_000) as sim:
        url = video_url(sim)
        data = requests.get(url, timeout=5).content
        assert len(data) == 3_000_000 and data[4:8] == b"ftyp"
        part = requests.get(url, headers={"Range": "bytes=2999990-"}, timeout=5)
        assert part.status_code == 206 and part.content == bytes(10)
        sim.script_download(DownloadFault.huge(1_000_000))
        huge = requests.get(url, timeout=5).content
        assert len(huge) == 1_000_000 and huge[4:8] == b"ftyp"


def test_truncated_synthetic_video_announces_its_full_size():
    with Simulator(video_bytes=2_000_000) as sim:
        url = video_url(sim)
        sim.script_download(DownloadFault.truncated())
        with requests.get(url, stream=True, timeout=5) as response:
            assert response.headers["Content-Length"] == "2000000"
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                response.content  # noqa: B018


def test_admin_endpoints_script_and_report(simulator):
    script = {
        "create": [{"kind": "status", "code": 401}, {"kind": "rate_limit", "retry_after": 1}],
        "poll": [{"kind": "non_json"}, {"kind": "slow", "seconds": 0.01}, {"kind": "drop"}],
        "download": [{"kind": "status", "code": 403}, {"kind": "truncated"}],
        "outcome": ["error"],
        "poll_every": {"every": 5, "fault": {"kind": "weird_status", "status": "odd"}},
    }
    assert requests.post(simulator.url + "/__sim__/script", json=script, timeout=5).ok
    assert create(simulator).status_code == 401
    assert create(simulator).status_code == 429
    recorded = requests.get(simulator.url + "/__sim__/requests", timeout=5).json()
    assert [(r["method"], r["path"]) for r in recorded][-3:] == [
        ("POST", "/v2/video/generations"),
        ("POST", "/v2/video/generations"),
        ("GET", "/__sim__/requests"),
    ]
    bad = {"create": [{"kind": "teleport"}]}
    assert requests.post(simulator.url + "/__sim__/script", json=bad, timeout=5).status_code == 400
    assert requests.post(simulator.url + "/__sim__/reset", timeout=5).ok
    assert simulator.requests == []


@pytest.mark.parametrize(
    "spec, fault",
    [
        ({"kind": "status", "code": 401}, Fault.status(401)),
        ({"kind": "status", "code": 500, "message": "m"}, Fault.status(500, "m")),
        ({"kind": "rate_limit", "retry_after": 3}, Fault.rate_limit(3)),
        ({"kind": "rate_limit", "retry_after": None}, Fault.rate_limit(None)),
        ({"kind": "non_json", "status": 502}, Fault.non_json(502)),
        ({"kind": "drop"}, Fault.drop()),
        ({"kind": "created_then_drop"}, Fault.create_then_drop()),
        ({"kind": "slow", "seconds": 2}, Fault.slow(2)),
        ({"kind": "no_id"}, Fault.no_id()),
        ({"kind": "weird_status", "status": "odd"}, Fault.weird_status("odd")),
    ],
)
def test_fault_specs_build_the_same_faults(spec, fault):
    assert Fault.from_spec(spec) == fault


@pytest.mark.parametrize(
    "spec, fault",
    [
        ({"kind": "status", "code": 403}, DownloadFault.status(403)),
        ({"kind": "redirect", "to": "http://x/"}, DownloadFault.redirect("http://x/")),
        ({"kind": "redirect", "to_url": "http://x/"}, DownloadFault.redirect("http://x/")),
        ({"kind": "truncated"}, DownloadFault.truncated()),
        ({"kind": "not_mp4"}, DownloadFault.not_mp4()),
        ({"kind": "huge", "size": 9}, DownloadFault.huge(9)),
        ({"kind": "huge", "n_bytes": 9}, DownloadFault.huge(9)),
    ],
)
def test_download_fault_specs_build_the_same_faults(spec, fault):
    assert DownloadFault.from_spec(spec) == fault


@pytest.mark.parametrize(
    "parse, spec, error",
    [
        (Fault.from_spec, {"kind": "teleport"}, ValueError),
        (Fault.from_spec, {"kind": "status"}, KeyError),
        (DownloadFault.from_spec, {"kind": "no_id"}, ValueError),
        (DownloadFault.from_spec, {"kind": "huge"}, KeyError),
        (DownloadFault.from_spec, {"kind": "redirect"}, KeyError),
    ],
)
def test_bad_fault_specs_are_refused(parse, spec, error):
    with pytest.raises(error):
        parse(spec)


def test_jobs_survive_a_restart_with_a_state_file(tmp_path):
    state = tmp_path / "jobs.json"
    with Simulator(schedule=Schedule(0, 0), state_path=state) as first:
        gid = create(first).json()["id"]
    with Simulator(state_path=state) as second:
        job = poll(second, gid).json()
        assert job["status"] == "completed"
        assert requests.get(job["video"]["url"], timeout=5).status_code == 200


def test_state_file_of_an_older_version_still_loads(tmp_path):
    state = tmp_path / "jobs.json"
    job = {"id": "g", "token": "t" * 32, "created": 0.0, "duration": 5, "outcome": "never"}
    job.update(schedule={"queued_s": 0, "generating_s": 0}, completed_at=1.0)
    state.write_text(json.dumps({"secret": "s", "jobs": [job]}))
    with Simulator(state_path=state) as sim:
        assert sim.job("g")["status"] == "completed"


def test_unreadable_state_file_is_ignored(tmp_path):
    state = tmp_path / "jobs.json"
    state.write_text("{not json")
    with Simulator(state_path=state) as sim:
        assert sim.jobs == {}


def test_job_status_follows_its_schedule():
    job = Job("id", "t", created=100.0, duration=5, outcome="complete", schedule=Schedule(1, 2))
    assert [job.status(t) for t in (100.5, 101.5, 103.5)] == ["queued", "generating", "completed"]


def test_vendor_sample_script_runs_to_completion(simulator):
    env = dict(
        os.environ,
        AIMLAPI_KEY="sample-key",
        SAMPLE_BASE_URL=simulator.url + "/v2",
        SAMPLE_INTERVAL="0.1",
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "vendor_sample.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Status: completed" in done.stdout
    assert simulator.creates == 1


def test_command_line_serves_until_interrupted(monkeypatch):
    calls = []
    real_sleep = time.sleep

    def fake_sleep(seconds):
        if threading.current_thread() is not threading.main_thread():
            return real_sleep(seconds)  # another test's thread, still winding down
        calls.append(seconds)
        raise KeyboardInterrupt

    monkeypatch.setattr("kling_ui.simulator.launch.time.sleep", fake_sleep)
    simulator_main(["--port", "0", "--queued", "0.1", "--generating", "0.1"])
    assert calls == [3600]


# --- correlation ids -------------------------------------------------------------------


@pytest.mark.parametrize("client_id", ["order-8f21c4", "A.b_c:d-9", "x" * 128])
def test_client_request_id_is_echoed_and_logged(simulator, client_id):
    response = create(simulator, headers={**AUTH, "X-Client-Request-Id": client_id})
    assert response.status_code == 200
    gid = response.json()["id"]
    assert response.headers["x-client-request-id"] == client_id
    assert response.headers["x-inference-id"] == gid
    (row,) = rows(simulator)
    assert row["client_request_id"] == client_id and row["inference_id"] == gid


@pytest.mark.parametrize("client_id", ["", "x" * 129, "has space", "semi;colon", "caf\u00e9"])
def test_invalid_client_request_id_is_silently_ignored(simulator, client_id):
    headers = {**AUTH, "X-Client-Request-Id": client_id.encode().decode("latin-1")}
    response = create(simulator, headers=headers)
    assert response.status_code == 200
    assert "x-client-request-id" not in response.headers
    assert response.headers["x-inference-id"] == response.json()["id"]
    (row,) = rows(simulator)
    assert row["client_request_id"] is None


def test_poll_answers_name_the_generation(simulator):
    gid = create(simulator).json()["id"]
    polled = poll(simulator, gid, headers={**AUTH, "X-Client-Request-Id": "mine"})
    assert polled.headers["x-inference-id"] == gid
    assert polled.headers["x-client-request-id"] == "mine"
    assert "x-inference-id" not in poll(simulator, "unknown").headers


def test_create_reports_its_cost_in_usd_too(simulator):
    response = create(simulator, duration=10)
    assert response.headers["x-aimlapi-credits-used"] == "2800000"
    assert response.headers["x-aimlapi-usd-spent"] == "1.400000000"


# --- the usage log ---------------------------------------------------------------------


def test_usage_log_rows_are_shaped_as_the_vendor_documents(simulator):
    first = create(simulator)
    second = create(simulator, duration=10, headers={**AUTH, "X-Client-Request-Id": "job-2"})
    create(simulator, headers=key("someone-else"))
    response = logs(simulator)
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"data", "pagination"}
    assert page["pagination"] == {"limit": 50, "offset": 0, "total": 2, "has_more": False}
    newest, oldest = page["data"]
    assert newest == {
        "created": newest["created"],
        "status": "succeeded",
        "origin": "api",
        "model": MODEL,
        "cost": {"usd": 1.4, "credits": 2_800_000},
        "tokens": {"input": 0, "output": 0, "total": 0},
        "request_id": second.headers["x-request-id"],
        "inference_id": second.json()["id"],
        "client_request_id": "job-2",
    }
    assert oldest["inference_id"] == first.json()["id"]
    assert oldest["client_request_id"] is None
    assert oldest["cost"] == {"usd": 0.7, "credits": 1_400_000}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", newest["created"])
    made = datetime.fromisoformat(newest["created"].replace("Z", "+00:00"))
    assert abs(made - datetime.now(timezone.utc)) < timedelta(seconds=30)
    assert oldest["created"] <= newest["created"]
    (other,) = rows(simulator, headers=key("someone-else"))
    assert other["inference_id"] not in (first.json()["id"], second.json()["id"])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, key("wrong")])
def test_usage_log_needs_the_key(headers):
    with Simulator(api_key="right") as sim:
        assert logs(sim, headers=headers).status_code == 401
        assert logs(sim, headers=key("right")).status_code == 200


def test_failed_job_is_a_failed_row_that_cost_nothing(timed, clock):
    simulator = timed
    simulator.script_outcome("error")
    by_schedule = create(simulator).json()["id"]
    forced = create(simulator).json()["id"]
    kept = create(simulator).json()["id"]
    simulator.fail_job(forced)
    assert [r["status"] for r in rows(simulator)] == ["succeeded", "failed", "succeeded"]
    clock.now += 10
    failed = rows(simulator, status="failed")
    assert [r["inference_id"] for r in failed] == [forced, by_schedule]
    assert all(r["cost"] == {"usd": 0, "credits": 0} for r in failed)
    (succeeded,) = rows(simulator, status="succeeded")
    assert succeeded["inference_id"] == kept and succeeded["cost"]["credits"] == 1_400_000
    assert len(rows(simulator, status=["succeeded", "failed"])) == 3


def test_usage_log_filters_by_model_exactly(simulator):
    create(simulator)
    assert len(rows(simulator, model=MODEL)) == 1
    assert len(rows(simulator, model=MODEL.split("/")[1])) == 1
    assert len(rows(simulator, model=["openai/gpt-5", MODEL])) == 1
    assert rows(simulator, model="openai/gpt-5") == []
    assert rows(simulator, model=f"{MODEL},openai/gpt-5") == []  # one odd name, not two


def test_usage_log_pages(simulator):
    ids = [create(simulator).json()["id"] for _ in range(5)]
    first = logs(simulator, limit=2).json()
    assert [r["inference_id"] for r in first["data"]] == ids[:-3:-1]
    assert first["pagination"] == {"limit": 2, "offset": 0, "total": 5, "has_more": True}
    last = logs(simulator, limit=2, offset=4).json()
    assert [r["inference_id"] for r in last["data"]] == ids[:1]
    assert last["pagination"] == {"limit": 2, "offset": 4, "total": 5, "has_more": False}
    assert logs(simulator, offset=9).json()["data"] == []
    assert len(rows(simulator, limit=100)) == 5


def test_usage_log_window_by_start_and_end(simulator):
    create(simulator)
    now = datetime.now(timezone.utc)
    minute = timedelta(minutes=1)
    around = {"period": ..., "start": (now - minute).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    assert len(rows(simulator, **around, end=(now + minute).strftime("%Y-%m-%dT%H:%MZ"))) == 1
    naive = (now + minute).replace(tzinfo=None).isoformat()  # read as UTC
    assert len(rows(simulator, **around, end=naive)) == 1
    two_hours_east = (now - minute).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert rows(simulator, **around, end=two_hours_east) == []  # the same instant, a minute ago
    assert rows(simulator, period=..., start="2020-01-01T00:00:00Z", end="2020-01-02") == []


@pytest.mark.parametrize(
    "params, field",
    [
        ({"period": ...}, "period"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}, "period"),
        ({"period": ..., "start": "2026-01-01T00:00:00Z"}, "period"),
        ({"period": ..., "end": "2026-01-01T00:00:00Z"}, "period"),
        ({"period": "3w"}, "period"),
        ({"period": "0h"}, "period"),
        ({"period": "-1d"}, "period"),
        ({"period": ""}, "period"),
        ({"period": "93d"}, "92 days"),
        ({"period": ..., "start": "2026-01-01", "end": "2026-06-01"}, "92 days"),
        ({"period": ..., "start": "2026-01-02", "end": "2026-01-01"}, "end"),
        ({"period": ..., "start": "yesterday", "end": "2026-01-01"}, "start"),
        ({"status": "succeeded,failed"}, "status"),
        ({"status": "pending"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"model": [f"m{i}" for i in range(51)]}, "model"),
    ],
)
def test_bad_usage_log_query_gets_the_vendors_400(simulator, params, field):
    response = logs(simulator, **params)
    assert response.status_code == 400
    error = response.json()
    assert field in error["message"]
    assert {"path", "requestId", "statusCode", "timestamp"} <= set(error)
    assert error["path"] == "/v2/logs" and error["statusCode"] == 400


def test_usage_log_lags_by_the_scripted_seconds(clock):
    with Simulator(clock=clock, log_lag=5) as sim:
        gid = create(sim).json()["id"]
        assert rows(sim) == []
        clock.now += 4.9
        assert rows(sim) == []
        clock.now += 0.1
        assert [r["inference_id"] for r in rows(sim)] == [gid]
        sim.script_log_lag(0)
        create(sim)
        assert len(rows(sim)) == 2
        script = {"log_lag": 2}
        assert requests.post(sim.url + "/__sim__/script", json=script, timeout=5).ok
        create(sim)
        assert len(rows(sim)) == 2
        clock.now += 2
        assert len(rows(sim)) == 3
        with pytest.raises(ValueError):
            sim.script_log_lag(-1)


def test_usage_log_times_come_from_the_simulators_clock(timed, clock):
    create(timed)
    (row,) = rows(timed)
    clock.now += 2 * 3600
    assert rows(timed, period="1h") == []
    assert rows(timed, period="3h") == [row]
    later = logs(timed, period=..., start=row["created"], end="2999-01-01T00:00:00Z")
    assert later.status_code == 400  # over 92 days
    two_hours_on = datetime.fromisoformat(row["created"].replace("Z", "+00:00"))
    two_hours_on += timedelta(hours=2)
    assert rows(timed, period=..., start=row["created"], end=two_hours_on.isoformat()) == [row]


# --- dropped creates -------------------------------------------------------------------


def test_dropped_create_creates_nothing(simulator):
    simulator.script_create(Fault.drop())
    with pytest.raises(requests.ConnectionError):
        create(simulator, headers={**AUTH, "X-Client-Request-Id": "lost"})
    assert simulator.jobs == {} and simulator.creates == 1
    assert rows(simulator) == []
    assert simulator.peak_active("any-key") == 0


def test_created_then_dropped_create_runs_and_is_logged(simulator):
    simulator.script_create(Fault.create_then_drop())
    with pytest.raises(requests.ConnectionError):
        create(simulator, headers={**AUTH, "X-Client-Request-Id": "order-1"})
    (gid,) = simulator.jobs
    (row,) = rows(simulator)
    assert row["client_request_id"] == "order-1" and row["inference_id"] == gid
    time.sleep(0.6)
    assert poll(simulator, gid).json()["status"] == "completed"
    assert create(simulator).status_code == 200  # one fault, one create


# --- the concurrency limit -------------------------------------------------------------


def test_create_over_the_keys_limit_is_a_429_that_creates_nothing(clock):
    schedule = Schedule(queued_s=1, generating_s=3)
    with Simulator(schedule=schedule, clock=clock, max_active_per_key=2) as sim:
        assert create(sim).status_code == 200
        clock.now += 1.5  # the first job is generating now
        assert create(sim).status_code == 200
        refused = create(sim, headers={**AUTH, "X-Client-Request-Id": "third"})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        error = refused.json()
        assert {"message", "path", "requestId", "statusCode", "timestamp"} <= set(error)
        assert error["statusCode"] == 429
        assert len(sim.jobs) == 2 and len(rows(sim)) == 2
        assert create(sim, headers=key("other")).status_code == 200  # per key
        clock.now += 2.5  # the first job has completed
        assert create(sim).status_code == 200
        assert create(sim).status_code == 429
        assert sim.peak_active("any-key") == 2 and sim.peak_active("other") == 1


def test_the_limit_counts_forced_endings(timed, clock):
    timed.script_max_active(1)
    gid = create(timed).json()["id"]
    assert create(timed).status_code == 429
    timed.fail_job(gid)
    assert create(timed).status_code == 200
    timed.script_max_active(None)
    assert create(timed).status_code == 200
    with pytest.raises(ValueError):
        timed.script_max_active(-1)


def test_the_limit_can_be_scripted_over_http(timed):
    url = timed.url + "/__sim__/script"
    assert requests.post(url, json={"max_active": 1}, timeout=5).ok
    assert create(timed).status_code == 200
    assert create(timed).status_code == 429
    assert requests.post(url, json={"max_active": None}, timeout=5).ok
    assert create(timed).status_code == 200
    for bad in ({"max_active": -1}, {"max_active": "many"}, {"log_lag": -2}):
        assert requests.post(url, json=bad, timeout=5).status_code == 400


def test_peak_active_is_the_most_overlapping_jobs(timed, clock):
    create(timed)  # runs [0, 4)
    clock.now += 1
    create(timed)  # [1, 5)
    clock.now += 1
    create(timed)  # [2, 6): three at once
    assert timed.peak_active("any-key") == 3
    clock.now += 10
    create(timed)
    create(timed)
    assert timed.peak_active("any-key") == 3
    assert timed.peak_active("nobody") == 0


def test_peak_active_ends_a_job_when_it_ended(timed, clock):
    first = create(timed).json()["id"]
    clock.now += 0.5
    timed.complete_now(first)  # [0, 0.5)
    clock.now += 0.5
    create(timed)
    assert timed.peak_active("any-key") == 1
    clock.now += 4  # the second job ends by its schedule at 5; the third starts there
    create(timed)
    assert timed.peak_active("any-key") == 1
    timed.script_outcome("never")
    stuck = create(timed).json()["id"]
    clock.now += 100
    assert timed.peak_active("any-key") == 2
    create(timed)
    assert timed.peak_active("any-key") == 2
    timed.complete_now(stuck)  # forcing a job that runs for ever ends it now, not back then
    assert timed.peak_active("any-key") == 2
    assert timed.job(stuck)["status"] == "completed"


@pytest.mark.parametrize("force, status", [("fail_job", "error"), ("complete_now", "completed")])
def test_forcing_an_ended_job_does_not_move_its_end(timed, clock, force, status):
    timed.script_outcome("error" if force == "complete_now" else "complete")
    gid = create(timed).json()["id"]  # it ends at 4
    clock.now += 6
    create(timed)
    clock.now += 1
    getattr(timed, force)(gid)  # forcing it at 7 leaves its end at 4
    assert timed.peak_active("any-key") == 1
    assert poll(timed, gid).json()["status"] == status


# --- reset and state ---------------------------------------------------------------------


def test_reset_forgets_the_log_peaks_lag_and_limit(clock):
    with Simulator(clock=clock, schedule=Schedule(1, 3), log_lag=1, max_active_per_key=3) as sim:
        sim.script_log_lag(30)
        sim.script_max_active(1)
        gid = create(sim).json()["id"]
        assert sim.peak_active("any-key") == 1
        assert requests.post(sim.url + "/__sim__/reset", timeout=5).ok
        assert sim.peak_active("any-key") == 0
        assert (sim.log_lag, sim.max_active_per_key) == (1, 3)  # the constructor's
        clock.now += 60
        assert rows(sim) == []
        assert poll(sim, gid).json()["status"] == "completed"  # jobs stay


def test_usage_log_survives_a_restart_without_the_key(tmp_path):
    state = tmp_path / "jobs.json"
    with Simulator(schedule=Schedule(0, 0), state_path=state) as first:
        headers = {"Authorization": "Bearer secret-key-123", "X-Client-Request-Id": "c-1"}
        gid = create(first, headers=headers).json()["id"]
    assert "secret-key-123" not in state.read_text()
    with Simulator(state_path=state) as second:
        (row,) = rows(second, headers=key("secret-key-123"))
        assert row["inference_id"] == gid and row["client_request_id"] == "c-1"
        assert rows(second, headers=key("another-key")) == []


def test_state_file_without_a_usage_log_still_loads(tmp_path):
    state = tmp_path / "jobs.json"
    job = {"id": "g", "token": "t" * 32, "created": 0.0, "duration": 5, "outcome": "complete"}
    job.update(schedule={"queued_s": 0, "generating_s": 0})
    state.write_text(json.dumps({"secret": "s", "jobs": [job]}))
    with Simulator(state_path=state) as sim:
        assert sim.job("g")["status"] == "completed"
        assert rows(sim) == [] and sim.peak_active("any-key") == 0


def test_demo_modes_simulator_answers_its_scripting_only_to_the_app(tmp_path):
    """Any local process can reach the demo simulator's port: its scripting and request log
    need the per-process token; its API works as before."""
    import requests

    from kling_ui.simulator import DemoSimulator

    demo = DemoSimulator(tmp_path, (0.1, 0.2))
    try:
        url = demo.base_url()
        token = demo._sim.control_token
        assert token and len(token) >= 32
        script = {"create": [{"kind": "status", "code": 500}]}
        assert requests.post(f"{url}/__sim__/script", json=script, timeout=5).status_code == 403
        assert requests.get(f"{url}/__sim__/requests", timeout=5).status_code == 403
        assert requests.post(f"{url}/__sim__/reset", timeout=5).status_code == 403
        wrong = {"X-Sim-Token": "0" * len(token)}
        assert requests.get(f"{url}/__sim__/requests", headers=wrong, timeout=5).status_code == 403
        right = {"X-Sim-Token": token}
        assert requests.get(f"{url}/__sim__/requests", headers=right, timeout=5).status_code == 200
        created = requests.post(
            f"{url}/v2/video/generations",
            json={"model": "klingai/video-v2-6-pro-image-to-video", "prompt": "x",
                  "image_url": "https://example.com/a.jpg"},
            headers={"Authorization": f"Bearer {demo.key}"},
            timeout=5,
        )  # fmt: skip
        assert created.status_code == 200  # the refused script never took effect
    finally:
        demo.stop()


# --- money: the catalogue, the cost of a job, the balance ---------------------------------


def catalogue(sim, headers=None, **params):
    """``GET /v1/models`` with no key; ``id`` and ``include=pricing`` unless given."""
    params = {"id": MODEL, "include": "pricing", **params}
    params = {k: v for k, v in params.items() if v is not ...}
    return requests.get(sim.url + "/v1/models", params=params, headers=headers, timeout=5)


def billing(sim, headers=AUTH):
    return requests.get(sim.url + "/v2/billing", headers=headers, timeout=5)


def test_catalogue_prices_the_model_as_variants_on_generate_audio(simulator):
    response = catalogue(simulator)
    assert response.status_code == 200
    page = response.json()
    assert page["object"] == "list"
    (model,) = page["data"]
    assert model["id"] == MODEL and model["aliases"] == [MODEL.split("/", 1)[1]]
    assert {"id", "aliases", "type", "info", "tags", "pricing"} <= set(model)
    assert model["pricing"] == {
        "kind": "variants",
        "currency": "USD",
        "dimensions": ["generate_audio"],
        "variants": [
            {"when": {"generate_audio": True}, "price": 0.14, "unit": "second", "per": 1},
            {"when": {"generate_audio": False}, "price": 0.07, "unit": "second", "per": 1},
        ],
    }
    assert "modalities" not in model and "capabilities" not in model


TEXT_MODEL = MODEL.replace("image-to-video", "text-to-video")
# The other video models the simulator serves, after ours (issue 25): with an image first.
I2V = ["alibaba/wan-2-6-i2v", "google/veo-3.1-i2v", "klingai/video-o1-image-to-video",
       "runway/gen4_turbo"]  # fmt: skip
SEEDANCE = "bytedance/seedance-1-5-pro"  # text to video, frames optional
REFERENCES = "bytedance/seedance-2-0"  # text to video, frames and reference images optional
OTHERS = [I2V[0], SEEDANCE, REFERENCES, *I2V[1:]]
# The chat models, after the video models (issue 26's prompt helper asks them).
CHATS = ["google/gemini-3-1-flash-lite", "bytedance/dola-seed-2-0-mini", "moonshot/kimi-k2-6"]


@pytest.mark.parametrize(
    "params, ids",
    [
        ({"id": ...}, [TEXT_MODEL, MODEL, *OTHERS, *CHATS]),
        ({"id": MODEL.upper()}, [MODEL]),
        ({"id": "video-v2-6-pro-image-to-video"}, [MODEL]),  # an alias
        ({"id": f"{MODEL},openai/gpt-4o"}, [MODEL]),
        ({"id": [TEXT_MODEL, MODEL]}, [TEXT_MODEL, MODEL]),
        ({"id": "openai/gpt-4o"}, []),
        ({"id": ..., "capabilities": "image_to_video"}, [MODEL, *I2V]),
        ({"id": ..., "capabilities": "image_to_video,text_to_video"}, [TEXT_MODEL, MODEL, *OTHERS]),
        ({"id": ..., "output_modalities": "video", "input_modalities": "image"}, [MODEL, *I2V]),
        ({"id": ..., "type": "internal/video-generations/submit"}, [TEXT_MODEL, MODEL, *OTHERS]),
        ({"id": "gen4_turbo"}, ["runway/gen4_turbo"]),  # another model's alias
        ({"id": ..., "tags": "playground:chat"}, CHATS),
        ({"id": ..., "capabilities": "vision"}, CHATS[:2]),  # the two that take images
    ],
)
def test_catalogue_filters_as_documented(simulator, params, ids):
    assert [m["id"] for m in catalogue(simulator, **params).json()["data"]] == ids


@pytest.mark.parametrize(
    "include, sections",
    [
        (..., set()),
        ("pricing", {"pricing"}),
        ("pricing,capabilities", {"pricing", "capabilities"}),
        ("all", {"pricing", "modalities", "capabilities"}),
        ("princing", set()),  # unknown values are ignored, not refused
    ],
)
def test_catalogue_attaches_the_sections_asked_for(simulator, include, sections):
    (model,) = catalogue(simulator, include=include).json()["data"]
    assert sections == {"pricing", "modalities", "capabilities"} & set(model)


def test_catalogue_details_means_every_section(simulator):
    (model,) = catalogue(simulator, include=..., details="true").json()["data"]
    assert {"pricing", "modalities", "capabilities"} <= set(model)


@pytest.mark.parametrize("path", ["/models", "/api/v1/models"])
def test_catalogue_is_served_on_its_other_paths_too(simulator, path):
    params = {"id": MODEL, "include": "pricing"}
    other = requests.get(simulator.url + path, params=params, timeout=5)
    assert other.json() == catalogue(simulator).json()


def test_catalogue_needs_no_key_and_ignores_one(simulator):
    assert catalogue(simulator).status_code == 200
    assert catalogue(simulator, headers=key("anything")).status_code == 200


def test_catalogue_answers_a_matching_etag_with_304_and_no_body(simulator):
    first = catalogue(simulator)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'W/"[0-9a-f]+-[A-Za-z0-9+/]{27}"', etag)
    again = catalogue(simulator, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    assert catalogue(simulator, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert catalogue(simulator, headers={"If-None-Match": '"other"'}).status_code == 200
    assert catalogue(simulator, include=..., headers={"If-None-Match": etag}).status_code == 200


def test_a_new_price_changes_the_etag(simulator):
    etag = catalogue(simulator).headers["ETag"]
    simulator.script_pricing("fixed")
    changed = catalogue(simulator, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


@pytest.mark.parametrize(
    "kind, pricing",
    [
        ("fixed", {"kind": "fixed", "currency": "USD",
                   "units": [{"name": "second", "price": 0.14, "per": 1}]}),
        ("variable", {"kind": "variable", "currency": "USD"}),
    ],
)  # fmt: skip
def test_pricing_can_be_scripted_by_kind(simulator, kind, pricing):
    simulator.script_pricing(kind)
    (model,) = catalogue(simulator).json()["data"]
    assert model["pricing"] == pricing


def test_pricing_can_be_scripted_whole_or_taken_away(simulator):
    block = {"kind": "variants", "currency": "USD", "dimensions": ["duration"], "variants": [
        {"when": {"duration": 10}, "price": 2.5, "unit": "video", "per": 1},
    ]}  # fmt: skip
    simulator.script_pricing(block)
    assert catalogue(simulator).json()["data"][0]["pricing"] == block
    simulator.script_pricing(None)
    (model,) = catalogue(simulator).json()["data"]
    assert "pricing" not in model
    with pytest.raises(ValueError):
        simulator.script_pricing("free")


def test_catalogue_faults_and_outages(simulator):
    simulator.script_catalogue(Fault.status(502), Fault.non_json(503))
    assert catalogue(simulator).status_code == 502
    assert catalogue(simulator).headers["Content-Type"] == "text/html"
    assert catalogue(simulator).status_code == 200
    simulator.script_outage("catalogue", Fault.drop())
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            catalogue(simulator)
    simulator.script_outage("catalogue", None)
    assert catalogue(simulator).status_code == 200
    with pytest.raises(ValueError):
        simulator.script_outage("video", Fault.drop())


@pytest.mark.parametrize(
    "changes, credits",
    [
        ({}, 5 * 280_000),  # the vendor's default: with audio
        ({"generate_audio": True, "duration": 10}, 10 * 280_000),
        ({"generate_audio": False}, 5 * 140_000),
        ({"generate_audio": False, "duration": "10"}, 10 * 140_000),
    ],
)
def test_a_jobs_price_depends_on_its_duration_and_audio(simulator, changes, credits):
    response = create(simulator, **changes)
    assert response.json()["meta"]["usage"]["credits_used"] == credits
    assert response.headers["x-aimlapi-credits-used"] == str(credits)
    assert float(response.headers["x-aimlapi-usd-spent"]) == pytest.approx(credits * 5e-7)
    assert simulator.charge(response.json()["id"]) == pytest.approx(credits * 5e-7)


def test_a_job_is_priced_by_the_catalogue_in_force_at_its_create(simulator):
    simulator.script_pricing({"kind": "fixed", "currency": "USD", "units": [
        {"name": "second", "price": 30, "per": 100},
    ]})  # fmt: skip
    assert create(simulator).json()["meta"]["usage"]["credits_used"] == 3_000_000  # $1.50
    simulator.script_pricing({"kind": "variants", "currency": "USD", "variants": [
        {"when": {"duration": 10}, "price": 2.5, "unit": "video", "per": 1},
    ]})  # fmt: skip
    assert create(simulator, duration=10).json()["meta"]["usage"]["credits_used"] == 5_000_000
    simulator.script_pricing("variable")  # no quote: the default rates
    assert create(simulator).json()["meta"]["usage"]["credits_used"] == 1_400_000


def test_the_charge_comes_with_completed_and_not_before(timed, clock):
    gid = create(timed, duration=10, generate_audio=False).json()["id"]
    assert poll(timed, gid).json()["meta"] is None
    clock.now += 2
    assert poll(timed, gid).json()["meta"] is None  # generating
    clock.now += 2
    done = poll(timed, gid).json()
    assert done["status"] == "completed"
    assert done["meta"] == {"usage": {"credits_used": 1_400_000, "usd_spent": 0.7}}


def test_a_failed_job_reports_no_charge(timed, clock):
    timed.script_outcome("error")
    gid = create(timed).json()["id"]
    clock.now += 10
    failed = poll(timed, gid).json()
    assert failed["status"] == "error" and "meta" not in failed


def test_billing_shows_the_balance_in_the_documented_shape(simulator):
    response = billing(simulator)
    assert response.status_code == 200
    assert response.json() == {"current_balance": 100.0, "currency": "USD"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, key("wrong")])
def test_billing_needs_the_key(headers):
    with Simulator(api_key="right") as sim:
        assert billing(sim, headers=headers).status_code == 401
        assert billing(sim, headers=key("right")).status_code == 200


def test_balance_goes_down_by_each_charge_when_its_job_completes(timed, clock):
    timed.set_balance(10)
    first = create(timed, duration=10).json()["id"]  # $1.40
    create(timed, generate_audio=False)  # $0.35
    assert billing(timed).json()["current_balance"] == 10  # nothing is charged at create
    clock.now += 10
    assert billing(timed).json()["current_balance"] == pytest.approx(8.25)
    timed.fail_job(first)  # it ended already: nothing moves back
    assert billing(timed).json()["current_balance"] == pytest.approx(8.25)


def test_failed_and_unfinished_jobs_are_not_charged(timed, clock):
    timed.set_balance(5)
    timed.script_outcome("error", "never")
    create(timed)
    create(timed)
    forced = create(timed).json()["id"]
    timed.fail_job(forced)
    clock.now += 100
    assert billing(timed).json()["current_balance"] == 5


def test_each_key_has_its_own_account(simulator):
    simulator.set_balance(3.5, key="mine")
    assert billing(simulator, key("mine")).json()["current_balance"] == 3.5
    assert billing(simulator, key("theirs")).json()["current_balance"] == 100
    gid = create(simulator, headers=key("mine")).json()["id"]
    simulator.complete_now(gid)
    assert simulator.balance("mine") == pytest.approx(2.8)
    assert simulator.balance("theirs") == 100


def test_a_new_balance_is_not_charged_for_jobs_that_ended_before(simulator):
    gid = create(simulator).json()["id"]
    simulator.complete_now(gid)
    simulator.set_balance(1)
    assert simulator.balance("any-key") == 1


def test_billing_faults_and_outages(simulator):
    simulator.script_billing(Fault.status(503))
    assert billing(simulator).status_code == 503
    assert billing(simulator).status_code == 200
    simulator.script_outage("billing", Fault.slow(0.3))
    assert billing(simulator).elapsed.total_seconds() >= 0.3
    simulator.script_outage("billing")
    assert billing(simulator).elapsed.total_seconds() < 0.3


def test_money_can_be_scripted_over_http(simulator):
    script = {
        "pricing": "variable",
        "balance": 12.5,
        "catalogue": [{"kind": "status", "code": 500}],
        "billing": [{"kind": "status", "code": 502}],
        "outage": {"catalogue": None},
    }
    assert requests.post(simulator.url + "/__sim__/script", json=script, timeout=5).ok
    assert catalogue(simulator).status_code == 500
    assert catalogue(simulator).json()["data"][0]["pricing"]["kind"] == "variable"
    assert billing(simulator).status_code == 502
    assert billing(simulator).json()["current_balance"] == 12.5
    one_key = {"balance": {"usd": 2, "key": "k"}, "outage": {"billing": {"kind": "drop"}}}
    assert requests.post(simulator.url + "/__sim__/script", json=one_key, timeout=5).ok
    assert simulator.balance("k") == 2 and simulator.balance("other") == 12.5
    with pytest.raises(requests.ConnectionError):
        billing(simulator)
    bad = {"pricing": "free"}
    assert requests.post(simulator.url + "/__sim__/script", json=bad, timeout=5).status_code == 400


def test_reset_restores_the_price_the_balance_and_the_endpoints(simulator):
    simulator.script_pricing("variable")
    simulator.set_balance(1)
    simulator.script_outage("billing", Fault.status(500))
    simulator.script_catalogue(Fault.status(500))
    simulator.reset()
    assert catalogue(simulator).json()["data"][0]["pricing"]["kind"] == "variants"
    assert billing(simulator).json()["current_balance"] == 100


def test_balances_survive_a_restart_with_a_state_file(tmp_path):
    state = tmp_path / "jobs.json"
    with Simulator(schedule=Schedule(0, 0), state_path=state) as first:
        first.set_balance(5, key="k")
        create(first, headers=key("k"))
        assert first.balance("k") == pytest.approx(4.3)
    with Simulator(state_path=state) as second:
        assert billing(second, key("k")).json()["current_balance"] == pytest.approx(4.3)


def test_a_job_still_running_at_a_restart_is_charged_after_it(tmp_path):
    state = tmp_path / "jobs.json"
    with Simulator(schedule=Schedule(0.2, 0.2), state_path=state) as first:
        first.set_balance(5)
        gid = create(first).json()["id"]
        assert first.balance("any-key") == 5
    with Simulator(state_path=state) as second:
        second.complete_now(gid)
        assert second.balance("any-key") == pytest.approx(4.3)


def test_jobs_of_a_state_file_without_billing_are_not_charged_again(tmp_path):
    state = tmp_path / "jobs.json"
    job = {"id": "g", "token": "t" * 32, "created": 0.0, "duration": 5, "outcome": "complete"}
    job.update(schedule={"queued_s": 0, "generating_s": 0})
    state.write_text(json.dumps({"secret": "s", "jobs": [job]}))
    with Simulator(state_path=state) as sim:
        assert sim.balance("any-key") == 100
        assert sim.job("g")["meta"]["usage"]["credits_used"] == 1_400_000  # its old price


# --- issue 25: the other video models, their documents and their schemas -------------------

PNG = (  # a 1x1 PNG as a data URI, as the app sends images
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8AAAwMBAgE"
    "AAMgLJz4AAAAASUVORK5CYII="
)


def served_entries(sim):
    """Each catalogue item's document, fetched from its ``info.docsJson`` and read as the
    app reads a schema (``kling_ui.catalogue.normalize``)."""
    from kling_ui.catalogue import normalize

    items = catalogue(sim, id=..., type="internal/video-generations/submit").json()["data"]
    entries = []
    for item in items:
        document = requests.get(item["info"]["docsJson"], timeout=5)
        assert document.status_code == 200, item["id"]
        entry = normalize(document.json())
        assert entry.id == item["id"]
        entries.append(entry)
    return entries


def test_the_catalogue_links_each_models_schema_from_six_families(simulator):
    entries = served_entries(simulator)
    assert len(entries) >= 6
    assert {e.id.split("/")[0] for e in entries} >= {"klingai", "google", "runway", "bytedance"}
    by_id = {e.id: e for e in entries}
    assert by_id["klingai/video-o1-image-to-video"].frames["last"] == "last_image_url"
    assert by_id["runway/gen4_turbo"].frames["last"] == "tail_image_url"
    assert "seed" in by_id[SEEDANCE].fields
    assert by_id[TEXT_MODEL].kind == "text-to-video"
    missing = requests.get(simulator.url + "/docs-json", params={"model": "nope"}, timeout=5)
    assert missing.status_code == 404
    link = catalogue(simulator).json()["data"][0]["info"]["docsJson"]
    assert link.startswith(simulator.url + "/docs-json?model=klingai%2Fvideo-v2-6-pro-image")
    assert link.endswith("&endpoint=internal%2Fvideo-generations%2Fsubmit")  # the vendor's form


def test_every_served_model_makes_a_video_from_its_defaults(simulator):
    simulator.set_schedule(Schedule(queued_s=0.02, generating_s=0.05))
    for entry in served_entries(simulator):
        sent = {"model": entry.id, "prompt": "Leaves drift past the window.", **entry.defaults()}
        sent.update({field: PNG for field in entry.frames.values()})
        created = requests.post(simulator.url + PATHS[0], json=sent, headers=AUTH, timeout=5)
        assert created.status_code == 200, (entry.id, created.text)
        gid = created.json()["id"]
        assert gid.endswith(":" + entry.id)
        for _ in range(200):
            status = poll(simulator, gid).json()
            if status["status"] == "completed":
                break
            time.sleep(0.01)
        assert status["status"] == "completed" and status["video"]["url"], entry.id
    models = [row["model"] for row in rows(simulator)]
    assert SEEDANCE in models and MODEL in models
    assert [r["model"] for r in rows(simulator, model=SEEDANCE)] == [SEEDANCE]


def test_another_models_job_takes_its_own_default_length_and_price(simulator):
    """Veo 3.1 left without a duration is 8 s (its schema's default), priced by the fixed
    block the catalogue shows for it, whatever the pricing scripted for ours."""
    simulator.script_pricing("variable")
    sent = {"model": "google/veo-3.1-i2v", "prompt": "Fog lifts.", "image_url": PNG}
    created = requests.post(simulator.url + PATHS[0], json=sent, headers=AUTH, timeout=5)
    assert created.status_code == 200, created.text
    (veo,) = [i for i in catalogue(simulator, id=...).json()["data"] if i["id"] == sent["model"]]
    per_second = veo["pricing"]["units"][0]["price"]
    usd = float(created.headers["x-aimlapi-usd-spent"])
    assert usd == pytest.approx(8 * per_second)
    assert simulator.jobs[created.json()["id"]].duration == 8


@pytest.mark.parametrize(
    "model, changes, words",
    [
        ("google/veo-3.1-i2v", {"duration": 7}, "duration"),  # not one of 4, 6, 8
        ("google/veo-3.1-i2v", {"duration": "8"}, "duration"),  # a string, not an integer
        ("google/veo-3.1-i2v", {"image_url": ...}, "'image_url' is a required property"),
        ("google/veo-3.1-i2v", {"seed": 7}, "seed: unrecognized key"),
        ("runway/gen4_turbo", {"tail_image_url": "data:image/png;base64,!!"}, "tail_image_url"),
        (SEEDANCE, {"seed": "seven"}, "seed"),
        (MODEL, {"tail_image_url": PNG}, "tail_image_url: unrecognized key"),  # gone from 2.6
        (REFERENCES, {"image_urls": [PNG, "data:image/png;base64,!!"]}, "image_urls.1"),
        (REFERENCES, {"image_urls": [PNG] * 10}, "image_urls"),  # at most 9
    ],
)
def test_a_body_outside_its_models_schema_is_refused_and_nothing_is_made(
    simulator, model, changes, words
):
    sent = {"model": model, "prompt": "Waves roll in.", "image_url": PNG, **changes}
    sent = {k: v for k, v in sent.items() if v is not ...}
    response = requests.post(simulator.url + PATHS[0], json=sent, headers=AUTH, timeout=5)
    assert response.status_code == 400, response.text
    assert "Body validation error!" in response.text and words in response.text
    assert not simulator.jobs  # the request is recorded; no job was made


def test_reference_images_are_taken_and_recorded_by_their_length(simulator):
    sent = {"model": REFERENCES, "prompt": "Two cats meet.", "image_urls": [PNG, PNG]}
    response = requests.post(simulator.url + PATHS[0], json=sent, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    (recorded,) = [r.body for r in simulator.requests_to(PATHS[0])]
    assert recorded["image_urls"] == [f"<image {len(PNG)} chars>"] * 2
