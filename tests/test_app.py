"""The whole app through its API, as a program would use it: gradio_client against the
app launched on a free port, the simulator behind it over real HTTP."""

from __future__ import annotations

import threading

import pytest
from apprunner import AppProcess, submit
from conftest import APP_KEY
from gradio_client import Client
from PIL import Image

from kling_ui.simulator import Fault

pytestmark = pytest.mark.timeout(120)


def video_file(value) -> str:
    """gradio_client hands a video back as a path (or, in older versions, a dict)."""
    return str(value["video"] if isinstance(value, dict) else value)


def test_api_exposes_exactly_generate_resume_extend_status_batch_estimate_and_models(live_app):
    info = Client(live_app.url, verbose=False).view_api(return_format="dict", print_info=False)
    named = info["named_endpoints"]
    assert set(named) == {"/generate", "/resume", "/extend", "/status", "/batch", "/estimate",
                          "/models", "/model_schema", "/improve_prompt",
                          "/settings_from_video"}  # fmt: skip
    assert [p["parameter_name"] for p in named["/settings_from_video"]["parameters"]] == ["video"]
    assert [p["parameter_name"] for p in named["/improve_prompt"]["parameters"]] == [
        "image", "prompt", "model", "variant", "api_key",
    ]  # fmt: skip
    # /generate's new parameters come last, each with a default: old calls work unchanged.
    generate = named["/generate"]["parameters"]
    assert [p["parameter_name"] for p in generate][-3:] == ["model", "end_image", "options"]
    assert all(p["parameter_has_default"] for p in generate[-3:])
    extend = named["/extend"]["parameters"]
    assert [p["parameter_name"] for p in extend] == [
        "generation_id", "prompt", "negative_prompt", "duration", "generate_audio", "api_key",
        "model", "options",
    ]  # fmt: skip
    assert all(p["parameter_has_default"] for p in extend[-2:])
    assert [p["parameter_name"] for p in named["/estimate"]["parameters"]] == [
        "duration", "generate_audio", "count",
    ]  # fmt: skip
    assert [p["parameter_name"] for p in named["/status"]["parameters"]] == [
        "generation_id", "api_key",
    ]  # fmt: skip
    batch = named["/batch"]["parameters"]
    assert [p["parameter_name"] for p in batch] == [
        "images", "prompts", "negative_prompt", "duration", "generate_audio", "takes", "api_key",
        "model", "options",
    ]  # fmt: skip
    assert all(p["parameter_has_default"] for p in batch[-2:])
    params = [p["parameter_name"] for p in named["/generate"]["parameters"]]
    assert params == [
        "image",
        "prompt",
        "negative_prompt",
        "duration",
        "generate_audio",
        "api_key",
        "model",
        "end_image",
        "options",
    ]
    assert [p["parameter_name"] for p in named["/resume"]["parameters"]] == [
        "generation_id",
        "api_key",
    ]


def test_improve_prompt_for_programs_answers_a_suggestion_or_why_not(live_app, photo):
    """Issue 26: /improve_prompt takes the image as /generate does; its answer is the
    suggestion and its price, or the reason in words; no video is made."""
    from gradio_client import handle_file

    client = Client(live_app.url, verbose=False)
    answer = client.predict(handle_file(photo), "A cat blinks.", "", "cinematic", "",
                            api_name="/improve_prompt")  # fmt: skip
    assert "A cat blinks" in answer["prompt"] and answer["negative_prompt"], answer
    assert answer["usd"] > 0 and answer["chat_model"]
    chat = live_app.sim.requests_to("/v1/chat/completions")[-1]
    assert chat.headers["authorization"] == f"Bearer {APP_KEY}"  # the server's own key
    refused = client.predict(None, "", "", "", "", api_name="/improve_prompt")
    assert "Write a prompt" in refused["error"]
    assert live_app.sim.creates == 0


def test_generate_streams_id_then_statuses_then_the_video(live_app, photo):
    client = Client(live_app.url, verbose=False)
    job = submit(client, photo)
    outputs = job.outputs() if job.result() else []
    gid = outputs[-1][0]
    statuses = [o[1].splitlines()[0] for o in outputs]
    assert gid and ":" in gid
    # Our id while the create is on its way, the vendor's from its answer on.
    ours = live_app.service.entry(gid).job_id
    assert ours.startswith("kui-") and {o[0] for o in outputs} <= {ours, gid}
    if outputs[0][0] == ours:  # unless the create had already answered at the first look
        assert statuses[0].startswith(("Status: waiting", "Status: submitting"))
    assert next(o for o in outputs if o[0] == gid)[1].startswith("Status: submitted")
    assert any(s.startswith("Status: generating") for s in statuses)
    assert statuses[-1].startswith("Status: completed")
    video = outputs[-1][2]
    assert video and video_file(video).endswith(".mp4")
    assert live_app.sim.creates == 1


def test_resume_by_id_delivers_the_video(live_app, photo):
    client = Client(live_app.url, verbose=False)
    gid = submit(client, photo).result()[0]
    final = client.predict(generation_id=gid, api_key="", api_name="/resume")
    assert final[1].startswith("Status: completed")
    assert video_file(final[2]).endswith(".mp4")
    assert live_app.sim.creates == 1


def test_bad_input_gets_a_message_and_sends_nothing(live_app, tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (200, 200)).save(tiny)
    client = Client(live_app.url, verbose=False)
    gid, status, video = submit(client, str(tiny)).result()
    assert status.startswith("Status: not sent")
    assert "200" in status and "300" in status
    assert (gid, video) == ("", None)
    assert live_app.sim.creates == 0


def test_vendor_error_reaches_the_caller_in_plain_words(live_app, photo):
    live_app.sim.script_create(Fault.status(403, "Insufficient balance"))
    client = Client(live_app.url, verbose=False)
    gid, status, _ = submit(client, photo).result()
    assert "Top up" in status and "Insufficient balance" in status
    assert "Traceback" not in status
    # and the app serves the next request normally
    assert submit(client, photo).result()[1].startswith("Status: completed")


def test_two_users_with_different_keys_each_use_their_own(live_app, photo):
    keys = ["sk-user-one-111111", "sk-user-two-222222"]
    results: dict[str, tuple] = {}

    def run(key: str) -> None:
        results[key] = submit(Client(live_app.url, verbose=False), photo, api_key=key).result()

    threads = [threading.Thread(target=run, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key in keys:
        assert results[key][1].startswith("Status: completed")
        gid = results[key][0]
        seen = {
            r.headers.get("authorization")
            for r in live_app.sim.requests
            if r.method == "GET" and r.query.get("generation_id") == gid
        }
        assert seen == {f"Bearer {key}"}


@pytest.mark.slow
def test_a_public_space_is_not_spent_by_anonymous_callers(simulator, photo, tmp_path):
    """Item 15: SPACE_ID and a server key, as the README's Space setup: calls without a key
    of their own (that never read their result, as an attacker's would) create nothing;
    a visitor's typed key still works, and the page says which mode it is in."""
    import time

    import requests

    app = AppProcess(
        tmp_path / "data",
        env={
            "SPACE_ID": "someone/kling-ui",
            "AIMLAPI_KEY": "sk-space-owner-key-31",
            "AIMLAPI_BASE_URL": simulator.url,
            "KLING_UI_POLL_INTERVAL": "0.2",
        },
    )
    try:
        html = requests.get(app.url, timeout=10).text
        assert "Bring your own key" in html and "KLING_UI_ALLOW_SHARED_KEY" in html
        client = Client(app.url, verbose=False)
        jobs = [submit(client, photo) for _ in range(5)]  # never read
        time.sleep(3)
        assert simulator.creates == 0
        for job in jobs:
            job.cancel()
        _, status, video = submit(client, photo, api_key="sk-visitor-own-key-8").result(timeout=60)
        assert status.startswith("Status: completed") and video
        assert simulator.creates == 1
        assert simulator.requests_to("/v2/video/generations")[0].headers["authorization"] == (
            "Bearer sk-visitor-own-key-8"
        )
    finally:
        app.stop()


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_lone_surrogate_is_refused_in_words_and_nothing_is_sent(live_app, photo, field):
    """Raw JSON, as a script would send it ("\\ud800" can't even be encoded by most clients):
    refused before anything is written or sent."""
    import json

    import requests

    base = live_app.url.rstrip("/") + "/gradio_api"
    rows_before = len(live_app.service.ledger.recent(10_000))
    with open(photo, "rb") as f:
        (path,) = requests.post(f"{base}/upload", files={"files": f}, timeout=30).json()
    image = {"path": path, "meta": {"_type": "gradio.FileData"}}
    fields = {"prompt": "A cat naps.", "negative_prompt": ""}
    fields[field] += " \ud800"
    body = json.dumps(
        {"data": [image, fields["prompt"], fields["negative_prompt"], 5, True, ""]},
        ensure_ascii=True,  # the lone surrogate travels as the escape "\ud800"
    )
    event = requests.post(
        f"{base}/call/generate", data=body, headers={"Content-Type": "application/json"},
        timeout=30,
    ).json()["event_id"]  # fmt: skip
    stream = requests.get(f"{base}/call/generate/{event}", timeout=60).text
    assert "broken character" in stream and "Retype" in stream, stream
    assert "went wrong on our side" not in stream
    assert live_app.sim.creates == 0
    assert len(live_app.service.ledger.recent(10_000)) == rows_before


def test_an_upload_far_over_the_image_limit_is_refused_before_it_is_kept(live_app, tmp_path):
    import requests

    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff\xd8\xff" + bytes(60 * 1024 * 1024))
    with big.open("rb") as f:
        response = requests.post(
            live_app.url.rstrip("/") + "/gradio_api/upload", files={"files": f}, timeout=60
        )
    assert response.status_code == 413, (response.status_code, response.text[:200])
