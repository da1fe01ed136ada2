"""Resources anyone can use up, and what leaks past them (issue 23, items 7 to 11): image
decodes shared fairly between visitors, request bodies capped and read within a deadline,
uploads limited per address, downloads pinned to the address they checked and limited in
total time, chains kept as their parts and one stitched copy, and vendor text redacted and
stripped of terminal escapes."""

from __future__ import annotations

import http.server
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from apprunner import AppProcess, app_in_process
from PIL import Image

from kling_ui import errors, images
from kling_ui.client import AIMLClient, Sessions, download_video
from kling_ui.config import Settings
from kling_ui.images import prepare_image
from kling_ui.request import Request
from kling_ui.service import GenerationService
from kling_ui.simulator import Fault, Schedule, Simulator

ROOT = Path(__file__).resolve().parent.parent

# Mixed case and nothing shaped like a key: only the redaction of this very key can hide it.
MIXED_KEY = "Kx7QmVw2PzR9LtB4"
TINY_IMAGE = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcG"


def wait_for(predicate, seconds: float = 20.0, step: float = 0.02):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out waiting")


@pytest.fixture
def service(simulator, tmp_path):
    settings = Settings(
        base_url=simulator.url,
        api_key=MIXED_KEY,
        data_dir=tmp_path / "data",
        poll_interval=0.05,
        retry_backoff=0.0,
        retry_after_cap=0.01,
        lookup_window=1.0,
    )
    service = GenerationService(settings)
    yield service
    service.close()


# --- 11. the vendor's words, redacted and printable ------------------------------------------


def test_a_status_word_echoing_the_key_in_another_case_is_redacted(simulator, service, photo):
    simulator.script_poll(*[Fault.weird_status(MIXED_KEY.upper())] * 400)
    answer = service.submit(photo, Request.make("The sea ripples."))
    (item,) = answer["items"]
    job_id = item.get("job_id") or item.get("id")

    def noted():
        (job,) = [j for j in service.ledger.recent() if job_id in (j.job_id, j.generation_id)]
        return job.message if "status we don't know" in job.message else None

    message = wait_for(noted)
    assert MIXED_KEY.lower() not in message.lower()
    assert "[redacted]" in message


# What a hostile vendor might put in its words: clear the screen, retitle the window, hide a
# line behind a carriage return, a hyperlink, an 8-bit CSI, a right-to-left override.
ESCAPES = "\x1b[2J\x1b]0;owned\x07\rHidden\x1b]8;;http://x.example\x1b\\link\x9b31m\u202e"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kling_ui", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    "script",
    [
        lambda sim: sim.script_create(Fault.status(400, f"Bad field{ESCAPES} here")),
        lambda sim: sim.script_poll(Fault.status(403, f"No credits{ESCAPES} here")),
    ],
    ids=["refused create", "failed poll"],
)
def test_the_command_line_prints_no_escape_sequence_from_the_vendor(tmp_path, photo, script):
    with Simulator(api_key=MIXED_KEY, schedule=Schedule(queued_s=0.2, generating_s=0.3)) as sim:
        script(sim)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIMLAPI_", "KLING_UI_"))}
        env = {
            **base,
            "AIMLAPI_KEY": MIXED_KEY,
            "AIMLAPI_BASE_URL": sim.url,
            "KLING_UI_DATA_DIR": str(tmp_path / "data"),
            "KLING_UI_POLL_INTERVAL": "0.1",
        }
        result = cli(env, "generate", photo, "-p", "Move.", "-o", str(tmp_path))
        status = cli(env, "history")
    assert result.returncode != 0
    said = result.stderr + status.stdout + status.stderr
    assert " here" in result.stderr  # the vendor's words are shown...
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", said)  # ...as plain text
    assert "owned" not in said and "http://x.example" not in said


def test_on_a_space_only_its_own_host_and_huggingface_may_frame_the_page(tmp_path):
    with app_in_process(
        tmp_path, Schedule(), on_space=True, space_host="me-kling.hf.space", keep_days=0
    ) as app:
        policy = requests.get(app.url, timeout=30).headers["content-security-policy"]
    assert policy == "frame-ancestors 'self' https://huggingface.co https://me-kling.hf.space"


# --- 7. image decodes, shared fairly between visitors ------------------------------------------


@pytest.fixture(scope="module")
def big_picture(tmp_path_factory) -> str:
    """A 12 MP PNG of noise: no reduced decode, a fraction of a second each."""
    path = tmp_path_factory.mktemp("big") / "noise.png"
    Image.effect_noise((4000, 3000), 60).convert("RGB").save(path, compress_level=1)
    return str(path)


def test_a_visitors_pile_of_big_images_does_not_hold_up_anothers_check(big_picture, photo):
    finished: list[str] = []
    lock = threading.Lock()

    def check(path: str, owner: str, label: str) -> None:
        prepare_image(path, owner=owner)
        with lock:
            finished.append(label)

    pile = [
        threading.Thread(target=check, args=(big_picture, "address:flood", f"big{n}"))
        for n in range(8)
    ]
    for thread in pile:
        thread.start()
    wait_for(lambda: len(images._DECODE_TURNS.waiting) >= 6)  # the pile is queued
    small = threading.Thread(target=check, args=(photo, "address:other", "small"))
    small.start()
    wait_for(lambda: "small" in finished or "address:other" in dict(images._DECODE_TURNS.waiting))
    for thread in [*pile, small]:
        thread.join(120)
    behind = finished[finished.index("small") + 1 :]
    # First come, first served, the small check finished after the whole pile; fairly,
    # it takes the next free slot, ahead of the pile's rest.
    assert len(behind) >= 4, finished


# --- 9 and 11. the video download: pinned to what it checked, limited in total time ----------


def video_url_of(sim: Simulator, settings: Settings) -> str:
    client = AIMLClient(MIXED_KEY, settings)
    asked = Request.make("A cat blinks.", images={"image": TINY_IMAGE})
    gid = client.create_generation(asked).payload["id"]
    sim.complete_now(gid)
    return client.get_generation(gid).payload["video"]["url"]


def download_settings(base_url: str, **changes) -> Settings:
    return Settings(
        base_url=base_url, connect_timeout=2, read_timeout=2, download_timeout=5,
        retry_backoff=0.01, retry_after_cap=0.05, poll_retries=2,
    ).with_(**changes)  # fmt: skip


def test_the_download_connects_to_the_address_it_checked_not_a_second_lookup(tmp_path):
    """DNS rebinding: the name answers an allowed address when checked, another when asked
    again. The connection goes to the checked one, and the name is looked up once."""
    with Simulator() as checked:
        port = urlsplit(checked.url).port
        with Simulator(host="127.0.0.2", port=port) as elsewhere:
            settings = download_settings(checked.url)
            url = video_url_of(checked, settings).replace("127.0.0.1", "video.test")
            asked: list[str] = []

            def resolve(host: str, port: int) -> list[str]:
                asked.append(host)
                return ["127.0.0.1"] if len(asked) == 1 else ["127.0.0.2"]

            sessions = Sessions.for_settings(settings, resolve=resolve)
            path = download_video(url, tmp_path / "v.mp4", settings, sessions)
            assert path.read_bytes()[4:8] == b"ftyp"
            assert len(checked.requests_to("/files/")) == 1
            assert elsewhere.requests_to("/files/") == []
            assert checked.requests_to("/files/")[0].headers["host"] == f"video.test:{port}"
    assert asked == ["video.test"]


def test_the_download_refuses_a_name_whose_answer_is_not_public(tmp_path):
    """The API is public, so its videos must be: a name answering this machine is refused
    with nothing asked of it (the answer checked is the one connected to)."""
    with Simulator() as sim:
        url = video_url_of(sim, download_settings(sim.url)).replace("127.0.0.1", "video.test")
        settings = download_settings("https://api.test")
        answers = {"api.test": ["8.8.8.8"], "video.test": ["127.0.0.1"]}
        sessions = Sessions.for_settings(settings, resolve=lambda host, port: answers[host])
        with pytest.raises(errors.DownloadError, match="won't fetch"):
            download_video(url.replace("http://", "https://"), tmp_path / "v.mp4", settings,
                           sessions)  # fmt: skip
        assert sim.requests_to("/files/") == []


class Drip(http.server.BaseHTTPRequestHandler):
    """A hostile video host: a byte at a time, in its headers or its body, for up to 20 s."""

    where = "body"
    hung_up = threading.Event()  # the client closed the connection before the end
    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).asked.append(self.path)
        try:
            if self.where == "headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                drip = b"a"
            else:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                self.wfile.write(b"\x00\x00\x00\x18ftypmp42")
                drip = b"\x00"
            for _ in range(400):
                time.sleep(0.05)
                self.wfile.write(drip)
        except OSError:
            type(self).hung_up.set()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_host_that_drips_is_cut_at_the_whole_downloads_time_limit(tmp_path, where):
    handler = type("DripHere", (Drip,), {"where": where, "hung_up": threading.Event(), "asked": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        settings = download_settings(base, download_total_timeout=1.0)
        with pytest.raises(errors.DownloadError, match="took too long"):
            download_video(f"{base}/v.mp4", tmp_path / "v.mp4", settings)
        # The host was cut off mid-drip (each read came within the per-read timeout, so only
        # a limit on the whole download stops it before the host is done).
        assert handler.hung_up.wait(15)
        assert handler.asked == ["/v.mp4"]  # and not asked again once the time was up
    finally:
        server.shutdown()
        server.server_close()
    assert list(tmp_path.iterdir()) == []


# --- 8 and 9. request bodies: capped, read within a deadline; uploads limited ----------------


@pytest.fixture(scope="module")
def small_app(tmp_path_factory):
    """The page with short deadlines and three uploads an hour for each address."""
    data = tmp_path_factory.mktemp("bodies")
    with app_in_process(data, Schedule(), body_seconds=1.0, uploads_per_hour=3) as app:
        yield app


def http_exchange(
    url: str, head: str, parts: list[bytes], *, pause: float = 0.0
) -> tuple[int, bool]:
    """Send ``head`` (the request line and headers) and ``parts`` of a body over a raw socket,
    ``pause`` seconds apart, stopping early if the server answers; returns the answer's
    status (0 for none) and whether the server then closed the connection."""
    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        for part in parts:
            ready, _, _ = select.select([sock], [], [], pause)
            if ready:
                break
            try:
                sock.sendall(part)
            except OSError:  # the server closed the connection: its answer is waiting
                break
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            closed = False
            sock.settimeout(10)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        except TimeoutError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, closed


def post_head(path: str, length: int | None, kind: str = "application/json") -> str:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {kind}\r\n{framing}\r\n\r\n"


def test_a_body_over_the_limit_is_refused_before_it_is_read(small_app):
    head = post_head("/gradio_api/queue/join", 100 * 1024 * 1024)
    assert http_exchange(small_app.url, head, [b"{" + b" " * 1000] * 3) == (413, True)


def test_a_chunked_body_over_the_limit_is_refused_as_it_streams(small_app):
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
    head = post_head("/gradio_api/queue/join", None)
    assert http_exchange(small_app.url, head, [chunk] * 40) == (413, True)  # 2.5 MB


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closed(small_app):
    head = post_head("/gradio_api/queue/join", 1000)
    assert http_exchange(small_app.url, head, [b"{"] * 40, pause=0.25) == (408, True)


def test_uploads_are_limited_per_address_an_hour(small_app, photo):
    def upload() -> int:
        with open(photo, "rb") as image:
            answer = requests.post(
                small_app.url + "gradio_api/upload",
                files={"files": ("photo.jpg", image, "image/jpeg")},
                timeout=30,
            )
        return answer.status_code

    codes = [upload() for _ in range(4)]  # from one address, 127.0.0.1
    assert codes == [200, 200, 200, 429]


def test_an_upload_cut_off_mid_body_leaves_no_file(tmp_path, photo, monkeypatch):
    uploads = tmp_path / "gradio-uploads"  # this app's own: no other test's files in it
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))

    def upload_files() -> set[Path]:
        return {p for p in uploads.rglob("*") if p.is_file()} if uploads.is_dir() else set()

    with app_in_process(tmp_path / "data", Schedule()) as app:
        before = upload_files()  # the page's examples
        boundary = "b0undary"
        start = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode() + Path(photo).read_bytes()
        head = post_head(
            "/gradio_api/upload",
            len(start) + 5_000_000,
            f"multipart/form-data; boundary={boundary}",
        )
        where = urlsplit(app.url)
        with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
            sock.sendall(head.encode() + start + b"\x00" * 500_000)
            wait_for(lambda: upload_files() - before, seconds=20)  # the parser is writing
        # The client is gone with 4.5 MB unsent: what was written is removed.
        wait_for(lambda: upload_files() == before, seconds=20)


def test_headers_that_do_not_arrive_in_time_have_their_connection_closed(tmp_path):
    """``python app.py``: a client that sends its headers a byte at a time loses the
    connection at the header deadline (uvicorn alone kept it as long as the bytes came)."""
    env = {"KLING_UI_HEADER_SECONDS": "1", "KLING_UI_DEMO": "1"}
    with AppProcess(tmp_path / "data", env=env) as app:
        where = urlsplit(app.url)
        with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            closed = False
            for _ in range(100):  # a byte every 0.1 s, for 10 s at most
                ready, _, _ = select.select([sock], [], [], 0.1)
                if ready:
                    try:
                        closed = sock.recv(1024) == b""
                    except ConnectionResetError:
                        closed = True
                    break
                try:
                    sock.sendall(b"a")
                except OSError:
                    closed = True
                    break
        assert closed
        # A request whose headers come whole is served as before.
        assert requests.get(app.url, timeout=30).status_code == 200


def test_an_upload_request_may_carry_a_batch_whatever_the_hours_budget(tmp_path):
    """Review 1, item 11: one upload request was capped at the hour's budget (or, with no
    budget, at one file's 51 MB), so a batch of big images sent at once was refused."""
    with app_in_process(tmp_path / "data", Schedule(), upload_mb_per_hour=0) as app:
        files = [
            ("files", (f"big{n}.jpg", b"\xff\xd8" + os.urandom(30 * 1024 * 1024), "image/jpeg"))
            for n in range(2)
        ]
        answer = requests.post(app.url + "gradio_api/upload", files=files, timeout=120)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()) == 2
