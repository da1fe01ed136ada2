"""The simulator speaks the vendor's protocol, over real HTTP with plain requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from kling_ui.simulator import (
    MODEL,
    DownloadFault,
    Fault,
    Schedule,
    Simulator,
    _Job,
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
    assert status["meta"]["usage"]["tokens_used"] > 0


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
    job = _Job("id", "t", created=100.0, duration=5, outcome="complete", schedule=Schedule(1, 2))
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

    def fake_sleep(seconds):
        calls.append(seconds)
        raise KeyboardInterrupt

    monkeypatch.setattr("kling_ui.simulator.time.sleep", fake_sleep)
    simulator_main(["--port", "0", "--queued", "0.1", "--generating", "0.1"])
    assert calls == [3600]
