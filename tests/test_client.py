"""The client, through real sockets against the simulator."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

import pytest

from kling_ui import errors
from kling_ui.client import (
    AIMLClient,
    Sessions,
    create_retry,
    download_video,
    poll_retry,
)
from kling_ui.client.parsers import parse_balance, parse_catalogue, parse_created, parse_logs_page
from kling_ui.config import MODEL, Settings
from kling_ui.request import Request
from kling_ui.simulator import DownloadFault, Fault, Simulator

KEY = "sk-test-4f9a1c2b7e"
IMAGE = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcG"


def fast_settings(base_url: str, **changes) -> Settings:
    return Settings(
        base_url=base_url,
        retry_after_cap=0.05,
        retry_backoff=0.01,
        poll_retries=4,
        connect_timeout=2,
        read_timeout=2,
        create_read_timeout=1.0,
        download_timeout=5,
    ).with_(**changes)


@pytest.fixture
def client(simulator: Simulator) -> AIMLClient:
    return AIMLClient(KEY, fast_settings(simulator.url))


def request(**changes) -> Request:
    """A request built by hand, unchecked (``Request.make`` would refuse a bad one), so what
    is tested is the client's own check before anything is sent."""
    fields = {"image_url": IMAGE, "prompt": "A cat turns its head and blinks.", "duration": 5}
    fields.update(changes)
    image, prompt = fields.pop("image_url"), fields.pop("prompt")
    options = {"negative_prompt": "", "generate_audio": True, **fields}
    return Request(MODEL, prompt, MappingProxyType({"image": image}), MappingProxyType(options))


def create_bodies(sim: Simulator) -> list[dict]:
    return [r.body for r in sim.requests if r.method == "POST" and "/generat" in r.path]


# --- validation: nothing is sent --------------------------------------------------------


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"prompt": ""}, "Write a prompt"),
        ({"prompt": "   \n\t"}, "Write a prompt"),
        ({"prompt": "x" * 2501}, "2501 characters"),
        ({"prompt": "a\x00b"}, "control characters"),
        ({"negative_prompt": "n" * 2501}, "negative prompt is 2501"),
        ({"negative_prompt": "bad\x07"}, "control characters"),
        ({"duration": 7}, "5 or 10"),
        ({"duration": "5"}, "wrong type"),  # as the page sends it: Request.make reads it
        ({"duration": True}, "5 or 10"),
        ({"duration": 5.0}, "wrong type"),
        ({"generate_audio": "yes"}, "on or off"),
        ({"image_url": ""}, "Add an image"),
        ({"image_url": "http://example.com/a.jpg"}, "Add an image"),
    ],
)
def test_invalid_request_is_refused_before_sending(simulator, client, changes, words):
    with pytest.raises(errors.InputError, match=words):
        client.create_generation(request(**changes))
    assert simulator.creates == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"prompt": "x" * 2500},
        {"prompt": "猫が振り向く 🐈‍⬛ and שלום עולם"},
        {"prompt": "line one\nline two\ttabbed"},
        {"negative_prompt": "n" * 2500},
        {"duration": 10},
        {"generate_audio": False},
        {"image_url": "https://example.com/cat.jpg"},
    ],
)
def test_valid_request_is_accepted(simulator, client, changes):
    response = client.create_generation(request(**changes))
    assert response.payload["id"]
    assert simulator.creates == 1


def test_create_sends_model_integer_duration_and_audio(simulator, client):
    client.create_generation(request(duration=10, generate_audio=False, negative_prompt="blur"))
    (body,) = create_bodies(simulator)
    assert body["model"] == MODEL
    assert body["duration"] == 10 and isinstance(body["duration"], int)
    assert body["generate_audio"] is False
    assert body["negative_prompt"] == "blur"


def test_blank_negative_prompt_is_left_out(simulator, client):
    client.create_generation(request(negative_prompt="  "))
    (body,) = create_bodies(simulator)
    assert "negative_prompt" not in body


def test_key_travels_as_bearer_header(simulator, client):
    client.create_generation(request())
    (post,) = [r for r in simulator.requests if r.method == "POST"]
    assert post.headers["authorization"] == f"Bearer {KEY}"


def test_missing_key_is_refused_before_sending(simulator):
    keyless = AIMLClient(None, fast_settings(simulator.url))
    with pytest.raises(errors.AuthenticationError, match="No API key"):
        keyless.create_generation(request())
    assert simulator.creates == 0


# --- create errors: mapped, and never repeated when the job may exist ---------------------


@pytest.mark.parametrize(
    "fault, error_type, words",
    [
        (Fault.status(400, "Body validation error! prompt"), errors.BadRequestError, "rejected"),
        (Fault.status(401), errors.AuthenticationError, "key"),
        (Fault.status(403), errors.OutOfCreditsError, "Top up"),
        (Fault.status(404), errors.NotFoundError, "AIMLAPI_BASE_URL"),
        (Fault.status(500), errors.OutcomeUnknown, "dashboard"),
        (Fault.status(502), errors.OutcomeUnknown, "dashboard"),
        (Fault.status(504), errors.OutcomeUnknown, "dashboard"),
        (Fault.non_json(), errors.OutcomeUnknown, "dashboard"),
        (Fault.no_id(), errors.OutcomeUnknown, "without a generation id"),
        (Fault.drop(), errors.OutcomeUnknown, "dashboard"),
        (Fault.slow(3.0), errors.OutcomeUnknown, "did not answer in time"),
    ],
)
def test_create_failure_is_mapped_and_sent_once(simulator, client, fault, error_type, words):
    simulator.script_create(fault)
    with pytest.raises(error_type, match=words) as caught:
        client.create_generation(request())
    assert type(caught.value) is error_type
    assert simulator.creates == 1


def test_vendor_message_and_request_id_reach_the_user(simulator, client):
    simulator.script_create(Fault.status(400, "Body validation error! duration: expected 5"))
    with pytest.raises(errors.BadRequestError) as caught:
        client.create_generation(request())
    message = caught.value.user_message
    assert "Body validation error! duration: expected 5" in message
    assert "request id" in message


@pytest.mark.parametrize("fault", [Fault.rate_limit(retry_after=1), Fault.status(503)])
def test_create_refused_with_429_or_503_is_retried(simulator, client, fault):
    simulator.script_create(fault)
    response = client.create_generation(request())
    assert response.payload["id"]
    assert simulator.creates == 2


def test_create_rate_limited_every_time_gives_up_with_plain_message(simulator, client):
    simulator.script_create(*[Fault.rate_limit(retry_after=None)] * 10)
    with pytest.raises(errors.RateLimitError, match="Nothing was submitted"):
        client.create_generation(request())
    assert simulator.creates == 4  # the first try and three retries, none accepted
    assert len(simulator.jobs) == 0


def test_refused_connection_is_a_connection_error_not_unknown():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AIMLClient(KEY, fast_settings(f"http://127.0.0.1:{port}"))
    with pytest.raises(errors.APIConnectionError) as caught:
        client.create_generation(request())
    assert type(caught.value) is errors.APIConnectionError
    assert "nothing was submitted" in caught.value.user_message


def test_key_never_appears_in_an_error_message(simulator, client):
    simulator.script_create(Fault.status(401, f"Invalid key Bearer {KEY} provided; key={KEY}"))
    with pytest.raises(errors.AuthenticationError) as caught:
        client.create_generation(request())
    assert KEY not in caught.value.user_message
    assert KEY not in str(caught.value)
    assert KEY not in repr(client)


# --- polling ------------------------------------------------------------------------------


def test_poll_encodes_the_id_as_a_query_value(simulator, client):
    gid = client.create_generation(request()).payload["id"]
    assert ":" in gid
    client.get_generation(gid)
    poll = [r for r in simulator.requests if r.method == "GET"][-1]
    assert poll.query["generation_id"] == gid


@pytest.mark.parametrize(
    "faults",
    [
        [Fault.rate_limit(retry_after=1)] * 3,
        [Fault.rate_limit(retry_after=None)],
        [Fault.status(500), Fault.status(502), Fault.status(503)],
        [Fault.status(504)],
        [Fault.drop()],
    ],
)
def test_poll_survives_transient_failures(simulator, client, faults):
    gid = client.create_generation(request()).payload["id"]
    simulator.script_poll(*faults)
    response = client.get_generation(gid)
    assert response.payload["id"] == gid
    assert simulator.polls == len(faults) + 1


def test_poll_with_non_json_body_is_a_transient_server_error(simulator, client):
    gid = client.create_generation(request()).payload["id"]
    simulator.script_poll(Fault.non_json())
    with pytest.raises(errors.ServerError, match="unreadable"):
        client.get_generation(gid)
    assert client.get_generation(gid).payload["id"] == gid


def test_poll_that_keeps_failing_gives_up_with_server_error(simulator, client):
    gid = client.create_generation(request()).payload["id"]
    simulator.script_poll(*[Fault.status(502)] * 10)
    with pytest.raises(errors.ServerError):
        client.get_generation(gid)
    assert simulator.polls == 5  # one try and four retries


def test_poll_of_unknown_id_is_not_found(client):
    with pytest.raises(errors.NotFoundError, match="generation id"):
        client.get_generation("00000000-0000-0000-0000-000000000000:" + MODEL)


def test_poll_of_blank_id_is_an_input_error(simulator, client):
    with pytest.raises(errors.InputError):
        client.get_generation("  ")
    assert simulator.polls == 0


# --- the retry rules, as a table ------------------------------------------------------------


@pytest.mark.parametrize(
    "method, status, retried",
    [
        ("GET", 429, True),
        ("GET", 500, True),
        ("GET", 502, True),
        ("GET", 503, True),
        ("GET", 504, True),
        ("GET", 400, False),
        ("GET", 401, False),
        ("GET", 403, False),
        ("GET", 404, False),
        ("POST", 429, False),
        ("POST", 500, False),
    ],
)
def test_poll_retry_rule(method, status, retried):
    assert poll_retry(Settings()).is_retry(method, status, has_retry_after=False) is retried


@pytest.mark.parametrize(
    "status, retried",
    [(429, True), (503, True), (500, False), (502, False), (504, False), (400, False)],
)
def test_create_retry_rule(status, retried):
    assert create_retry(Settings()).is_retry("POST", status, has_retry_after=False) is retried


def test_create_is_never_retried_after_a_read_error():
    retry = create_retry(Settings())
    assert retry.read is False
    assert retry.connect and retry.connect > 0


def test_retry_after_is_honoured_but_capped():
    class FakeResponse:
        headers = {"Retry-After": "3600"}

        def getheader(self, name, default=None):
            return self.headers.get(name, default)

    retry = poll_retry(Settings(retry_after_cap=7.0))
    assert retry.get_retry_after(FakeResponse()) == 7.0
    assert retry.new(total=1).get_retry_after(FakeResponse()) == 7.0


# --- download -------------------------------------------------------------------------------


def finished_video_url(simulator: Simulator, client: AIMLClient) -> str:
    gid = client.create_generation(request()).payload["id"]
    simulator.complete_now(gid)
    return client.get_generation(gid).payload["video"]["url"]


def test_download_saves_an_mp4_without_the_key(simulator, client, tmp_path):
    url = finished_video_url(simulator, client)
    path = client.download_video(url, tmp_path / "out.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"
    assert path.stat().st_size == Path(simulator.video_path).stat().st_size
    files = [r for r in simulator.requests if r.path.startswith("/files/")]
    assert files and all("authorization" not in r.headers for r in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_download_follows_a_redirect_to_another_host_without_the_key(simulator, client, tmp_path):
    url = finished_video_url(simulator, client)
    other = url.replace("127.0.0.1", "localhost")
    simulator.script_download(DownloadFault.redirect(other))
    path = client.download_video(url, tmp_path / "out.mp4")
    assert path.exists()
    files = [r for r in simulator.requests if r.path.startswith("/files/")]
    assert len(files) == 2
    assert all("authorization" not in r.headers for r in files)


@pytest.mark.parametrize(
    "fault, words",
    [
        (DownloadFault.status(403), "expired"),
        (DownloadFault.status(404), "not found"),
        (DownloadFault.truncated(), "cut off|interrupted"),
        (DownloadFault.not_mp4(), "not an MP4"),
    ],
)
def test_download_failure_is_reported_and_leaves_no_file(simulator, client, tmp_path, fault, words):
    url = finished_video_url(simulator, client)
    simulator.script_download(fault)
    with pytest.raises(errors.DownloadError, match=words):
        client.download_video(url, tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


def test_download_over_the_cap_is_refused(simulator, tmp_path):
    settings = fast_settings(simulator.url, max_video_bytes=1_000_000)
    client = AIMLClient(KEY, settings)
    url = finished_video_url(simulator, client)
    simulator.script_download(DownloadFault.huge(5_000_000))
    with pytest.raises(errors.DownloadError, match="limit"):
        client.download_video(url, tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


def test_download_of_a_non_url_is_refused(tmp_path):
    with pytest.raises(errors.DownloadError):
        download_video("", tmp_path / "x.mp4", Settings(), Sessions.for_settings(Settings()))


# A real vendor's API is public; its videos must be too. (No address in this file is ever
# contacted: each is refused before a connection is made.)
PUBLIC_API = "https://api.aimlapi.com"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/files/x.mp4",  # this machine (the simulator is listening)
        "https://localhost:{port}/files/x.mp4",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "https://10.0.0.7/video.mp4",  # a private network
        "https://[::1]:{port}/files/x.mp4",
        "ftp://cdn.example/video.mp4",
        "file:///etc/passwd",
        "https://no-such-host.invalid/video.mp4",  # doesn't resolve: not known to be public
    ],
)
def test_a_video_address_off_the_public_internet_is_refused_unvisited(simulator, tmp_path, url):
    settings = fast_settings(simulator.url).with_(base_url=PUBLIC_API)
    with pytest.raises(errors.DownloadError) as caught:
        download_video(url.format(port=urlsplit(simulator.url).port), tmp_path / "v.mp4", settings)
    assert caught.value.user_message.startswith("The API gave a video address this app won't")
    assert simulator.requests_to("/files/") == []  # nothing was asked
    assert list(tmp_path.iterdir()) == []


def test_a_video_that_drips_is_stopped_at_the_total_time_limit(simulator, client, tmp_path):
    url = finished_video_url(simulator, client)
    simulator.script_download(DownloadFault.slow(5))
    slow = AIMLClient(KEY, client.settings.with_(download_total_timeout=1.0))
    started = time.monotonic()
    with pytest.raises(errors.DownloadError, match="took too long"):
        slow.download_video(url, tmp_path / "out.mp4")
    assert time.monotonic() - started < 4
    assert list(tmp_path.iterdir()) == []


def test_many_downloads_at_once_share_one_watchdog_thread():
    # Each download's whole-time limit is kept by one shared thread, not a timer thread per
    # download: the runner fetches up to its worker count at once, and its thread budget
    # (benchmark 6) has no room for one more thread each.
    from contextlib import ExitStack

    from kling_ui.client import _Deadline

    with _Deadline(60):  # the watchdog's own thread, started on first use
        pass
    before = threading.active_count()
    with ExitStack() as stack:
        deadlines = [stack.enter_context(_Deadline(60)) for _ in range(20)]
        assert threading.active_count() == before
    assert not any(d.expired for d in deadlines)


def test_the_shared_watchdog_still_cuts_each_download_at_its_own_time():
    from kling_ui.client import _Deadline

    with _Deadline(60) as late, _Deadline(0.2) as soon:
        for _ in range(100):
            if soon.expired:
                break
            time.sleep(0.05)
        assert soon.expired and not late.expired


# --- the parsers: one per vendor answer, never raising -------------------------------------


@pytest.mark.parametrize(
    "payload, found, has_more",
    [
        ({"data": [{"client_request_id": "a", "inference_id": "g1"}]}, {"a": "g1"}, False),
        (  # the first row of an id decides (newest first), even without an inference id
            {"data": [{"client_request_id": "a"}, {"client_request_id": "a", "inference_id": "g"}]},
            {"a": None},
            False,
        ),
        ({"data": [{"inference_id": "g"}, "row"], "pagination": {"has_more": True}}, {}, True),
        ({"data": "rows", "pagination": {"has_more": "yes"}}, {}, True),
        ({"pagination": []}, {}, False),
        (None, {}, False),
    ],
)
def test_a_usage_log_page_is_read_into_ids_and_more(payload, found, has_more):
    page = parse_logs_page(payload)
    assert (dict(page.found), page.has_more) == (found, has_more)


@pytest.mark.parametrize(
    "payload, usd",
    [
        ({"current_balance": 25.5, "currency": "USD"}, 25.5),
        ({"current_balance": "7.25"}, 7.25),
        ({"current_balance": 3, "currency": " usd "}, 3.0),
        ({"current_balance": 3, "currency": "EUR"}, None),
        ({"current_balance": True}, None),
        ({"current_balance": "NaN"}, None),
        ([], None),
        (None, None),
    ],
)
def test_a_billing_answer_is_read_as_dollars_or_nothing(payload, usd):
    assert parse_balance(payload) == usd


@pytest.mark.parametrize(
    "payload, block",
    [
        ({"data": [{"id": MODEL, "pricing": {"kind": "variable"}}]}, {"kind": "variable"}),
        ({"data": [{"id": MODEL.upper(), "pricing": 1}]}, 1),
        ({"data": [{"id": "other", "aliases": [MODEL], "pricing": 2}]}, 2),
        ({"data": [{"id": "other", "pricing": 3}, "item"]}, None),
        ({"data": {"id": MODEL}}, None),
        ("catalogue", None),
    ],
)
def test_a_catalogue_answer_gives_the_models_own_pricing_block(payload, block):
    assert parse_catalogue(payload, MODEL) == block


@pytest.mark.parametrize(
    "payload, gid",
    [({"id": "g:1"}, "g:1"), ({"id": ""}, None), ({"id": 5}, None), ({}, None), (None, None)],
)
def test_a_create_answer_gives_its_generation_id_or_none(payload, gid):
    assert parse_created(payload) == gid


def test_a_generation_lost_with_its_answer_is_found_in_the_usage_log(simulator, client):
    gid = client.create_generation(request(), client_request_id="ours-1").payload["id"]
    assert client.find_in_logs("ours-1") == gid
    assert client.find_in_logs("never-sent") is None
