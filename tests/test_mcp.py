"""The app as an MCP server for AI agents (``python app.py --mcp``), through the ``mcp``
package's own client over streamable HTTP (and SSE), against the simulator over real HTTP:
the tools an agent sees, a video made to the end, the key only ever in a header."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import os
import secrets
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
from apprunner import AppProcess, app_in_process

from kling_ui.request import KLING
from kling_ui.simulator import Schedule, Simulator

mcp = pytest.importorskip("mcp", reason="the mcp package (gradio[mcp]) is not installed")
from mcp import ClientSession  # noqa: E402
from mcp.client.sse import sse_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

KEY = "sk-agent-key-9c41e0"
TOOLS = {"generate", "submit", "extend", "resume", "status", "estimate", "models", "model_schema",
         "improve_prompt"}  # fmt: skip


@pytest.fixture(scope="module")
def sim():
    with Simulator(api_key=KEY, schedule=Schedule(queued_s=0.3, generating_s=0.8)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def app(sim, tmp_path_factory):
    """A public app where visitors bring their own keys, as on a Space, with --mcp."""
    data = tmp_path_factory.mktemp("mcp") / "data"
    env = {"AIMLAPI_BASE_URL": sim.url, "KLING_UI_POLL_INTERVAL": "0.2",
           "GRADIO_TEMP_DIR": str(data.parent / "uploads")}  # fmt: skip
    with AppProcess(data, "--mcp", "--require-user-key", env=env) as server:
        yield server


def call(
    app, tool: str, arguments: dict, *, key: str | None = None, progress=None,
    headers: dict | None = None, query: str = "",
):  # fmt: skip
    """Call one tool over streamable HTTP; the JSON it answers, and whether it was an error."""

    async def go():
        sent = {**(headers or {}), **({"X-AIMLAPI-Key": key} if key else {})}
        http = httpx.AsyncClient(headers=sent, timeout=httpx.Timeout(30, read=120))
        url = app.url.rstrip("/") + "/gradio_api/mcp/" + query
        async with (
            http,
            streamable_http_client(url, http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await session.call_tool(tool, arguments, progress_callback=progress)

    result = asyncio.run(go())
    texts = [c.text for c in result.content if c.type == "text"]
    assert texts, result
    return json.loads(texts[-1]), result.isError


def list_tools(url: str, transport: str = "http"):
    base = url.rstrip("/") + "/gradio_api/mcp/"

    async def go():
        if transport == "sse":
            async with (
                sse_client(base + "sse") as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return (await session.list_tools()).tools
        async with (
            streamable_http_client(base) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return (await session.list_tools()).tools

    return asyncio.run(go())


def data_uri(path: str) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def in_one_session(app, calls: list[tuple[str, dict]], headers: dict | None = None) -> list:
    """Several tool calls in one MCP session (SSE: Gradio's streamable HTTP transport is
    stateless, with no session), without a key: each one's JSON answer."""

    async def go():
        url = app.url.rstrip("/") + "/gradio_api/mcp/sse"
        answers = []
        async with (
            sse_client(url, headers=headers, timeout=30, sse_read_timeout=120) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            for tool, arguments in calls:
                result = await session.call_tool(tool, arguments)
                texts = [c.text for c in result.content if c.type == "text"]
                assert texts and not result.isError, result
                answers.append(json.loads(texts[-1]))
        return answers

    return asyncio.run(go())


@pytest.fixture(scope="module")
def shared_app(sim, tmp_path_factory):
    """An app on the server's own key, 1 video an hour a visitor, with --mcp."""
    data = tmp_path_factory.mktemp("mcp-shared") / "data"
    env = {"AIMLAPI_BASE_URL": sim.url, "AIMLAPI_KEY": KEY, "KLING_UI_POLL_INTERVAL": "0.2",
           "KLING_UI_VISITOR_JOBS_PER_HOUR": "1"}  # fmt: skip
    with AppProcess(data, "--mcp", env=env) as server:
        yield server


def test_the_tools_are_the_apis_events_described_for_an_agent(app):
    tools = {t.name: t for t in list_tools(app.url)}
    assert set(tools) == TOOLS  # the page's private events stay out; /batch is the page's
    for tool in tools.values():
        assert len(tool.description) > 80, tool.name
        assert "``" not in tool.description and "_page" not in tool.description
        properties = tool.inputSchema.get("properties", {})
        for name, schema in properties.items():
            assert "key" not in name.lower(), f"{tool.name} takes a key as an argument"
            assert schema.get("description"), f"{tool.name}.{name} is not described"
        assert "owner_token" not in properties
    generate = tools["generate"].inputSchema["properties"]
    for name in ("generate", "submit"):  # issue 23 item 16: the page's fit choice
        fit = tools[name].inputSchema["properties"]["fit"]
        assert fit["enum"] == ["reject", "crop", "pad"] and "crop" in fit["description"]
        assert tools[name].inputSchema["properties"]["image"]["type"] == "string"
    assert generate["duration"]["type"] == "integer" and generate["duration"]["enum"] == [5, 10]
    assert set(tools["generate"].inputSchema["required"]) == {"image", "prompt"}
    assert "estimate" in tools["generate"].description  # money: the price first
    assert {t.name for t in list_tools(app.url, "sse")} == TOOLS


def test_the_generate_tool_takes_the_models_fields_in_the_specs_order_with_its_defaults(app):
    """The generate tool's arguments are the model's spec's fields (``ui.fields``) between
    the prompt and the fit, each described for an agent; estimate's are the fields a price
    reads. Gradio leaves a falsy default ("" for the negative prompt) out of the schema."""
    tools = {t.name: t for t in list_tools(app.url)}
    generate = tools["generate"].inputSchema["properties"]
    fields = [f.name for f in KLING.fields]
    assert list(generate) == ["image", "prompt", *fields, "fit", "model", "end_image", "options"]
    assert [(n, generate[n].get("default")) for n in fields] == [
        (f.name, f.default or None) for f in KLING.fields
    ]
    assert all(generate[n]["description"] for n in fields)
    estimate = tools["estimate"].inputSchema["properties"]
    priced = [f for f in KLING.fields if f.priced]
    assert list(estimate) == [*(f.name for f in priced), "count"]
    assert [estimate[f.name].get("default") for f in priced] == [f.default or None for f in priced]


def test_estimate_answers_json(app):
    answer, failed = call(app, "estimate", {"duration": 10, "generate_audio": True, "count": 2})
    assert not failed
    assert answer["usd"] == pytest.approx(2.8) and answer["usd_each"] == pytest.approx(1.4)


def test_the_models_tools_answer_the_catalogues_models_and_a_schema(app, sim):
    """Issue 25: an agent lists the models (the vendor's catalogue, here the simulator's)
    and reads one model's settings, free and with no key."""
    answer, failed = call(app, "models", {})
    assert not failed and answer["source"] == "catalogue"
    assert answer["models"][0]["id"] == KLING.model
    runway = next(m for m in answer["models"] if m["id"] == "runway/gen4_turbo")
    assert runway["inputs"][0] == "first_frame" and runway["price"]["usd"] > 0
    schema, failed = call(app, "model_schema", {"model": "runway/gen4_turbo"})
    assert (
        not failed
        and schema["id"] == "runway/gen4_turbo"
        and "duration" in schema["schema"]["properties"]
    )
    unknown, _ = call(app, "model_schema", {"model": "nobody/nothing"})
    assert "no model" in unknown["error"]


def test_generate_takes_a_model_and_its_options(app, sim):
    """Issue 25: the generate tool with a model that makes video from text (the image left
    empty) and one of its fields; a value its schema refuses is answered in words, nothing sent."""
    before = sim.creates
    text_model = "klingai/video-v2-6-pro-text-to-video"

    def generate(options: str) -> tuple:
        arguments = {"image": "", "prompt": "Waves.", "model": text_model, "options": options}
        return call(app, "generate", arguments, key=KEY)

    refused, _ = generate('{"duration": 7}')
    assert refused["status"] == "not sent" and "duration" in refused["message"]
    assert sim.creates == before
    answer, failed = generate('{"duration": 10}')
    assert not failed and answer["status"] == "completed", answer
    body = [r.body for r in sim.requests if r.method == "POST" and "generations" in r.path][-1]
    assert body["model"] == text_model and body["duration"] == 10
    assert "image_url" not in body


def test_generate_makes_a_video_with_the_key_from_the_header(app, sim, photo):
    before = sim.creates
    updates = []

    async def progress(done, total, message):
        updates.append(message)

    answer, failed = call(
        app,
        "generate",
        {"image": data_uri(photo), "prompt": "The leaves sway.", "duration": 10},
        key=KEY,
        progress=progress,
    )
    assert not failed, answer
    assert answer["status"] == "completed" and answer["final"] is True
    assert answer["generation_id"] and answer["state"] == "done"
    with urllib.request.urlopen(answer["video"], timeout=10) as response:
        assert response.read(12)[4:8] == b"ftyp"
    assert sim.creates == before + 1
    create = [r for r in sim.requests_to("/v2/video/generations") if r.method == "POST"][-1]
    assert create.headers.get("authorization") == f"Bearer {KEY}"
    assert create.body["duration"] == 10
    assert updates  # progress came while it ran


def test_without_the_header_a_space_that_wants_keys_refuses_in_words(app, sim, photo):
    before = sim.creates
    answer, _ = call(app, "generate", {"image": data_uri(photo), "prompt": "No key."})
    assert answer["final"] is True and answer["generation_id"] is None
    assert "API key" in answer["message"] and "X-AIMLAPI-Key" in answer["hint"]
    answer, _ = call(app, "submit", {"image": data_uri(photo), "prompt": "No key."})
    assert answer["items"] == [] and "X-AIMLAPI-Key" in answer["hint"]
    assert sim.creates == before


def test_submit_answers_at_once_then_status_and_resume_follow(app, sim, photo):
    answer, failed = call(
        app,
        "submit",
        {"image": data_uri(photo), "prompt": "Two takes.", "takes": 2, "generate_audio": False},
        key=KEY,
    )
    assert not failed and len(answer["items"]) == 2, answer
    job_id = answer["items"][0]["job_id"]
    until = time.monotonic() + 60
    while True:
        state, _ = call(app, "status", {"generation_id": job_id}, key=KEY)
        if state.get("final") or time.monotonic() > until:
            break
        time.sleep(0.5)
    assert state["state"] == "done" and state["video"].startswith("http")
    other = answer["items"][1]["job_id"]
    resumed, _ = call(app, "resume", {"generation_id": other}, key=KEY)
    assert resumed["status"] == "completed" and resumed["video"].startswith("http")
    # Where visitors bring keys, a job is shown only with the key it was made with.
    hidden, _ = call(app, "status", {"generation_id": job_id})
    assert "error" in hidden and "video" not in hidden


def test_bad_input_sends_nothing_and_says_why(app, sim, photo):
    before = sim.creates
    answer, _ = call(app, "submit", {"image": data_uri(photo), "prompt": "   "}, key=KEY)
    assert answer["items"] == [] and "prompt" in answer["error"]
    answer, _ = call(app, "generate", {"image": data_uri(photo), "prompt": "x" * 2600}, key=KEY)
    assert answer["final"] and "2500" in answer["message"]
    assert sim.creates == before


def test_the_key_is_never_in_the_apps_log(app):
    assert app.log()  # the log is there to read
    assert KEY not in app.log()


def test_extend_continues_a_video_and_answers_the_whole_chain(app, sim, photo):
    first, _ = call(app, "generate", {"image": data_uri(photo), "prompt": "One."}, key=KEY)
    assert first["status"] == "completed", first
    more, failed = call(
        app, "extend", {"generation_id": first["generation_id"], "prompt": "Two."}, key=KEY
    )
    assert not failed and more["status"] == "completed", more
    assert more["video"].endswith(".chain.mp4")
    with urllib.request.urlopen(more["video"], timeout=10) as response:
        assert response.read(12)[4:8] == b"ftyp"
    # Issue 25: the next part with another model and its fields; one that makes video from
    # text is refused in words, nothing sent.
    after, failed = call(app, "extend", {
        "generation_id": more["generation_id"], "prompt": "Three.",
        "model": "runway/gen4_turbo", "options": '{"seed": 4}',
    }, key=KEY)  # fmt: skip
    assert not failed and after["status"] == "completed", after
    body = [r.body for r in sim.requests_to("/v2/video/generations") if r.method == "POST"][-1]
    assert body["model"] == "runway/gen4_turbo" and body["seed"] == 4 and "image_url" in body
    creates = sim.creates
    refused, _ = call(app, "extend", {
        "generation_id": after["generation_id"], "prompt": "Four.",
        "model": "klingai/video-v2-6-pro-text-to-video",
    }, key=KEY)  # fmt: skip
    assert "makes video from text only" in refused["message"] and sim.creates == creates


def test_improve_prompt_sees_the_image_with_the_agents_key(app, sim, photo):
    """Issue 26: the helper as a tool: the image as generate takes it, the key from the
    header to the chat call only; a suggestion, or the reason in words; no video."""
    creates = sim.creates
    answer, failed = call(app, "improve_prompt", {
        "image": data_uri(photo), "prompt": "A cat.", "variant": "motion",
    }, key=KEY)  # fmt: skip
    assert not failed and "turns slowly" in answer["prompt"], answer
    chat = sim.requests_to("/v1/chat/completions")[-1]
    assert chat.headers["authorization"] == f"Bearer {KEY}"
    assert any(p["type"] == "image_url" for p in chat.body["messages"][1]["content"])
    refused, _ = call(app, "improve_prompt", {"image": "", "prompt": ""}, key=KEY)
    assert "Write a prompt" in refused["error"] and sim.creates == creates


def test_submit_takes_a_model_and_its_options(app, sim, photo):
    """Issue 25: submit queues takes of another model with its fields (a model that makes
    video from text with no image), answering at once; an unknown field is refused in
    words, nothing queued."""
    creates = sim.creates
    refused, _ = call(app, "submit", {
        "image": data_uri(photo), "prompt": "A door.", "model": "runway/gen4_turbo",
        "options": '{"sharpness": 2}',
    }, key=KEY)  # fmt: skip
    assert "no setting named" in refused["error"] and refused.get("items", []) == [], refused
    text_model = "klingai/video-v2-6-pro-text-to-video"
    answer, failed = call(app, "submit", {
        "image": "", "prompt": "Rain.", "takes": 2, "model": text_model,
        "options": '{"duration": 10}',
    }, key=KEY)  # fmt: skip
    assert not failed and len(answer["items"]) == 2, answer
    deadline = time.monotonic() + 30
    while sim.creates < creates + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    bodies = [r.body for r in sim.requests_to("/v2/video/generations") if r.method == "POST"]
    assert [(b["model"], b["duration"]) for b in bodies[-2:]] == [(text_model, 10)] * 2
    assert not any("image_url" in b for b in bodies[-2:])


def test_each_mcp_session_is_a_visitor_of_its_own(shared_app, sim, photo):
    """Issue 23 item 6: agents without a key all reached the tools as one visitor (Gradio's
    loopback client calls them from this machine); each MCP session is its own visitor, so
    one agent's flood is not every agent's."""
    before = sim.creates
    first, second = in_one_session(shared_app, [
        ("generate", {"image": data_uri(photo), "prompt": "One."}),
        ("generate", {"image": data_uri(photo), "prompt": "Two."}),
    ])  # fmt: skip
    assert first["status"] == "completed", first
    assert second["final"] and "1 video an hour" in second["message"], second
    (other,) = in_one_session(shared_app, [("generate", {"image": data_uri(photo),
                                                         "prompt": "Another agent."})])  # fmt: skip
    assert other["status"] == "completed", other
    assert sim.creates == before + 2


def test_status_and_resume_take_a_short_id(app, sim, photo):
    """Issue 23 item 17: a job's short id works for the agent that made it."""
    answer, _ = call(app, "submit", {"image": data_uri(photo), "prompt": "Short."}, key=KEY)
    job_id = answer["items"][0]["job_id"]
    short = job_id.removeprefix("kui-")[:8]
    state, _ = call(app, "status", {"generation_id": short}, key=KEY)
    assert state["job_id"] == job_id, state
    resumed, _ = call(app, "resume", {"generation_id": short}, key=KEY)
    assert resumed["status"] == "completed", resumed
    hidden, _ = call(app, "status", {"generation_id": short})  # no key: not this agent's
    assert "error" in hidden


@pytest.mark.parametrize(
    "link, words",
    [
        ("https://nonexistent.invalid/cat.jpg", "could not be fetched from nonexistent.invalid"),
        ("https://127.0.0.1:1/cat.jpg", "could not be fetched from 127.0.0.1:1"),
        ("http://example.com/cat.jpg", "must be an https link"),
        ("cat.jpg", "must be an https link"),
        ("data:image/jpeg;base64,%%%", "not a base64 image"),
    ],
)
def test_a_bad_image_link_is_answered_in_words_with_nothing_sent(app, sim, link, words):
    """Issue 23 item 18: Gradio's own fetch answered a generic error."""
    before = sim.creates
    answer, failed = call(app, "generate", {"image": link, "prompt": "A cat."}, key=KEY)
    assert not failed and answer["final"] and words in answer["message"], answer
    answer, failed = call(app, "submit", {"image": link, "prompt": "A cat."}, key=KEY)
    assert not failed and answer["items"] == [] and words in answer["error"], answer
    assert sim.creates == before


def test_a_panorama_is_refused_or_cropped_as_the_agent_chooses(app, sim, tmp_path):
    """Issue 23 item 16: the page's fit choice, for agents."""
    from PIL import Image

    wide = tmp_path / "wide.jpg"
    Image.new("RGB", (1500, 500), (30, 90, 160)).save(wide)
    refused, _ = call(app, "generate", {"image": data_uri(wide), "prompt": "Pan."}, key=KEY)
    assert refused["final"] and "crop" in refused["message"], refused
    before = sim.creates
    made, _ = call(app, "submit", {"image": data_uri(wide), "prompt": "Pan.", "fit": "crop"},
                   key=KEY)  # fmt: skip
    assert len(made["items"]) == 1, made
    # A submit's create is the runner's, after the answer: waited for here, so it is this
    # test's (it landed in the next test's count once, on a busy machine).
    deadline = time.monotonic() + 60
    while sim.creates < before + 1:
        assert time.monotonic() < deadline, "the cropped panorama was never sent"
        time.sleep(0.05)
    assert sim.creates == before + 1


# --- review 1: images, identities and the signed header ----------------------------------


def left_in(folder: Path) -> list[Path]:
    """The agents' image files still kept under an upload folder."""
    return list(folder.rglob("image-from-*")) if folder.is_dir() else []


def test_a_2_mb_image_inline_makes_a_video_and_leaves_no_file(app, sim, tmp_path):
    """Review 1, item 1: Gradio's loopback client posts the tool's arguments to the queue,
    whose 1 MB cap refused any image over about 1 MB with a generic 413; the advertised
    limit is 12 MB. Review item 2: the decoded file is removed once the job is made."""
    from PIL import Image

    big = tmp_path / "noise.jpg"
    Image.frombytes("RGB", (1200, 1200), os.urandom(1200 * 1200 * 3)).save(big, quality=95)
    assert 1.5e6 < big.stat().st_size < 3e6
    before = sim.creates
    answer, failed = call(app, "generate", {"image": data_uri(big), "prompt": "Snow."}, key=KEY)
    assert not failed and answer["status"] == "completed", answer
    assert sim.creates == before + 1
    answer, _ = call(app, "submit", {"image": data_uri(big), "prompt": "Snow."}, key=KEY)
    assert len(answer["items"]) == 1, answer
    assert left_in(app.data_dir.parent / "uploads") == []


def test_a_header_no_one_signed_is_no_agent_and_no_error(app):
    """Review 1, item 3: a header with a non-ASCII signature made the check raise (any
    caller could send one, on any path but the MCP server's): the call failed."""
    api = app.url.rstrip("/") + "/gradio_api/call/status"
    for forged in (b"a|b|\xe9", b"a|b|1|\xe9", b"1.2.3.4|s|99999999999|00"):
        posted = httpx.post(api, json={"data": ["kui-nope"]}, timeout=30,
                            headers={"x-kling-agent": forged})  # fmt: skip
        assert posted.status_code == 200, posted.text
        events = httpx.get(f"{api}/{posted.json()['event_id']}", timeout=60).text
        assert "event: complete" in events and "error" in events, (forged, events)
        assert "event: error" not in events


def test_the_agent_header_is_signed_with_a_key_of_its_own_and_dated():
    """Review 1, item 12: the header was the app's general digest of its text (the one
    every other name is made with), valid for ever."""
    from types import SimpleNamespace

    from kling_ui.ui import callers

    def digest(text: str) -> str:  # as the runner's: HMAC of the app's secret
        import hashlib
        import hmac

        return hmac.new(b"secret", text.encode(), hashlib.sha256).hexdigest()[:32]

    now = time.time()
    signed = callers._signed(digest, "9.9.9.9", "s1", int(now))
    request = SimpleNamespace(headers={callers.AGENT_HEADER: signed})
    assert callers.agent_of(request, digest) == callers.Agent("9.9.9.9", "s1")
    assert digest("agent|9.9.9.9|s1") not in signed  # not a digest the app makes elsewhere
    old = SimpleNamespace(
        headers={callers.AGENT_HEADER: f"9.9.9.9|s1|{digest('agent|9.9.9.9|s1')}"}
    )
    assert callers.agent_of(old, digest) is None
    later = now + callers.AGENT_HEADER_SECONDS + 1
    assert callers.agent_of(request, digest, clock=lambda: later) is None


@pytest.fixture(scope="module")
def counted_app(sim, tmp_path_factory):
    """On the server's key, 1 video an hour a visitor, one new visitor an hour an address,
    behind a proxy (each test's agents come from an address of their own)."""
    data = tmp_path_factory.mktemp("mcp-counted") / "data"
    env = {"AIMLAPI_BASE_URL": sim.url, "AIMLAPI_KEY": KEY, "KLING_UI_POLL_INTERVAL": "0.2",
           "KLING_UI_VISITOR_JOBS_PER_HOUR": "1", "KLING_UI_ADDRESS_JOBS_PER_HOUR": "50",
           "KLING_UI_ADDRESS_NEW_BROWSERS_PER_HOUR": "1", "KLING_UI_TRUST_PROXY": "1"}  # fmt: skip
    with AppProcess(data, "--mcp", env=env) as server:
        yield server


def test_a_session_id_in_the_query_is_no_new_agent(counted_app, photo):
    """Review 1, item 4: streamable HTTP has no sessions, yet any session_id in its query
    was signed as the agent's: a new visitor for each request."""
    where = {"X-Forwarded-For": "10.4.0.1"}
    answers = [
        call(counted_app, "generate", {"image": data_uri(photo), "prompt": f"Take {n}."},
             headers=where, query=f"?session_id={secrets.token_hex(16)}")[0]
        for n in range(2)
    ]  # fmt: skip
    assert answers[0]["status"] == "completed", answers[0]
    assert answers[1]["final"] and "1 video an hour" in answers[1]["message"], answers[1]


def test_new_agent_sessions_count_as_an_addresses_new_visitors(counted_app, photo):
    """Review 1, item 4: every SSE session was a new visitor, however many an address
    opened; past its new visitors for the hour, a session is known by its address."""
    where = {"X-Forwarded-For": "10.4.0.2"}
    answers = [
        in_one_session(counted_app, [("generate", {"image": data_uri(photo),
                                                   "prompt": f"Agent {n}."})], where)[0]
        for n in range(2)
    ]  # fmt: skip
    assert answers[0]["status"] == "completed", answers[0]  # a session of its own
    assert answers[1]["final"] and "1 video an hour" in answers[1]["message"], answers[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own authority, and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


class ImageHost(http.server.BaseHTTPRequestHandler):
    """An https image host: /photo.jpg, /endless (bytes without end, no length), /drip
    (a byte every 0.05 s for 20 s)."""

    photo = b""
    gone = threading.Event()  # a client hung up mid-body

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        try:
            if self.path == "/photo.jpg":
                self.send_response(200)
                self.send_header("Content-Length", str(len(self.photo)))
                self.end_headers()
                self.wfile.write(self.photo)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            if self.path == "/endless":
                chunk = b"\xff" * (1024 * 1024)
                while True:
                    self.wfile.write(chunk)
            for _ in range(400):
                self.wfile.write(b"\xff")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            type(self).gone.set()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def image_host(tmp_path_factory, photo):
    import ssl

    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    handler = type("Host", (ImageHost,), {"photo": Path(photo).read_bytes(),
                                          "gone": threading.Event()})  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert, handler
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def linking_app(tmp_path_factory):
    """An app in this process, --mcp, with a 2 s limit on a whole download."""
    data = tmp_path_factory.mktemp("mcp-links") / "data"
    schedule = Schedule(queued_s=0.2, generating_s=0.3)
    with app_in_process(data, schedule, mcp=True, api_key=KEY, download_total_timeout=2.0,
                        poll_interval=0.1, allow_local_links=True) as live:  # fmt: skip
        yield live


def test_an_image_link_is_fetched_whole_within_its_limits(linking_app, image_host,
                                                          monkeypatch, tmp_path):  # fmt: skip
    """Review 1, item 2: an agent's link was fetched whole into memory with no limit on its
    size or its time (a multi-GB link, a host that drips), and its file was never removed."""
    base, cert, host = image_host
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # this test's own authority
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    sim = linking_app.sim
    before = sim.creates
    answer, _ = call(linking_app, "generate", {"image": f"{base}/endless", "prompt": "Big."})
    assert answer["final"] and "over 50 MB" in answer["message"], answer
    assert host.gone.wait(15)  # the host was cut off, not read to its end
    host.gone.clear()
    answer, _ = call(linking_app, "submit", {"image": f"{base}/drip", "prompt": "Slow."})
    assert "within 2 seconds" in answer["error"] and answer["items"] == [], answer
    assert host.gone.wait(15)  # cut mid-drip: the host's 20 s were not waited out
    assert sim.creates == before  # nothing was sent
    made, _ = call(linking_app, "generate", {"image": f"{base}/photo.jpg", "prompt": "Fine."})
    assert made["status"] == "completed", made
    assert sim.creates == before + 1
    assert left_in(tmp_path / "uploads") == []


def test_an_image_link_to_this_machine_is_refused_though_the_api_is_local(
    tmp_path_factory, image_host, monkeypatch
):
    """Review 2, B1: where the API is on this machine (a gateway, the simulator), the videos
    may come from there, but an agent's link may not: the server would fetch this machine's
    or a private network's files on a stranger's behalf and send them to the vendor."""
    base, cert, _ = image_host
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    data = tmp_path_factory.mktemp("mcp-strict") / "data"
    schedule = Schedule(queued_s=0.2, generating_s=0.3)
    with app_in_process(data, schedule, mcp=True, api_key=KEY) as strict:
        answer, _ = call(strict, "generate", {"image": f"{base}/photo.jpg", "prompt": "Hi."})
        assert answer.get("status") != "completed" and strict.sim.creates == 0, answer
        words = json.dumps(answer)
        assert "Traceback" not in words and ("private" in words or "public" in words), answer


def test_only_a_signed_agent_call_from_this_machine_gets_the_bigger_body(app):
    """Review 1, item 1: the queue takes an agent's inline image only in the copy of its
    call that Gradio's loopback client makes (a header this app signed, just now); any other
    body there keeps the 1 MB limit."""
    join = app.url.rstrip("/") + "/gradio_api/queue/join"
    body = b'{"data": ["' + b"A" * (2 * 1024 * 1024) + b'"], "fn_index": 0}'
    stamp = str(int(time.time()))
    for forged in (None, f"127.0.0.1||{stamp}|{'0' * 64}"):
        headers = {"content-type": "application/json"}
        if forged:
            headers["x-kling-agent"] = forged
        assert httpx.post(join, content=body, headers=headers, timeout=60).status_code == 413


def digest(text: str) -> str:  # as the runner's: HMAC of a secret
    import hashlib
    import hmac

    return hmac.new(b"secret", text.encode(), hashlib.sha256).hexdigest()[:32]


async def echo_app(scope, receive, send):
    """An ASGI app that reads the body and answers the agent header it was given."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    seen = [v for k, v in scope["headers"] if k == b"x-kling-agent"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"".join(seen)})


def agent_stack():
    """``BodyLimit`` around ``AgentCaller`` around ``echo_app``, as the launch nests them."""
    from kling_ui import web
    from kling_ui.ui.callers import AgentCaller

    caller = AgentCaller(echo_app, sign=digest, behind_proxy=False, hops=1)
    return web.BodyLimit(caller, rules=web.BodyRules(upload_bytes=1 << 20)), caller


def asgi_post(app, path: str, body: bytes, headers: list, client: str, server: str):
    """One POST through ``app`` with the given peer and local address: status, answer."""
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
             "headers": [(b"content-length", str(len(body)).encode()), *headers],
             "client": (client, 40000), "server": (server, 7860)}  # fmt: skip
    sent, got = [], []

    async def receive():
        if sent:
            return {"type": "http.disconnect"}
        sent.append(1)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        got.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in got if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in got if m["type"] == "http.response.body")


BIG = b'{"data": ["' + b"A" * (2 * 1024 * 1024) + b'"]}'


def test_a_server_bound_to_a_lan_address_still_knows_its_own_loopback_client():
    """Review 2, B2: bound to a LAN address, Gradio's loopback client posts from that address
    to it; judged by "is it 127.x" its copy of an agent's call lost its header (every agent
    one visitor) and its inline image got a 413. Another machine's request still gets
    neither."""
    app, _ = agent_stack()
    lan = "192.168.1.5"
    status, issued = asgi_post(app, "/gradio_api/mcp/", b"{}", [], "203.0.113.9", lan)
    assert status == 200 and issued.startswith(b"203.0.113.9|"), issued
    header = [(b"x-kling-agent", issued)]
    status, seen = asgi_post(app, "/gradio_api/queue/join", BIG, header, lan, lan)
    assert (status, seen) == (200, issued)
    status, issued = asgi_post(app, "/gradio_api/mcp/", b"{}", [], "203.0.113.9", lan)
    header = [(b"x-kling-agent", issued)]
    status, _ = asgi_post(app, "/gradio_api/queue/join", BIG, header, "192.168.1.9", lan)
    assert status == 413  # a neighbour with the header is no loopback client
    status, seen = asgi_post(app, "/gradio_api/queue/join", b"{}", header, "192.168.1.9", lan)
    assert (status, seen) == (200, b"")
    status, seen = asgi_post(app, "/gradio_api/queue/join", b"{}", header, "::ffff:" + lan, lan)
    assert (status, seen) == (200, issued)  # IPv4 in IPv6 is the same address


def test_an_agent_header_is_good_for_one_call_from_this_machine():
    """Review 2, B3: behind a reverse proxy on this host every request comes from 127.0.0.1,
    so a header seen once (a log, a shared trace) got the 16 MB body for 2 minutes and named
    that agent for 4 hours. Now each value is issued here and used once."""
    app, _ = agent_stack()
    status, issued = asgi_post(app, "/gradio_api/mcp/", b"{}", [], "127.0.0.1", "127.0.0.1")
    header = [(b"x-kling-agent", issued)]
    status, seen = asgi_post(app, "/gradio_api/queue/join", BIG, header, "127.0.0.1", "127.0.0.1")
    assert (status, seen) == (200, issued)  # the loopback client's one use
    status, _ = asgi_post(app, "/gradio_api/queue/join", BIG, header, "127.0.0.1", "127.0.0.1")
    assert status == 413
    status, seen = asgi_post(app, "/gradio_api/queue/join", b"{}", header, "127.0.0.1", "127.0.0.1")
    assert (status, seen) == (200, b"")  # and it names no agent any more
    # Signed by this app, fresh, but never issued by this process: no use either.
    from kling_ui.ui.callers import _signed

    made = _signed(digest, "127.0.0.1", "", int(time.time())).encode()
    header = [(b"x-kling-agent", made)]
    status, seen = asgi_post(app, "/gradio_api/queue/join", b"{}", header, "127.0.0.1", "127.0.0.1")
    assert (status, seen) == (200, b"")


def png_of_size(path: Path, size: int) -> str:
    """A real PNG photo of exactly ``size`` bytes (noise, then an ancillary chunk of
    padding, which any reader skips), as a data URI."""
    import struct
    import zlib

    from PIL import Image

    Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3)).save(path)
    raw = path.read_bytes()
    end = raw.rindex(b"IEND") - 4
    fill = size - len(raw) - 12
    chunk = b"pdNg" + b"\0" * fill
    raw = raw[:end] + struct.pack(">I", fill) + chunk + struct.pack(">I", zlib.crc32(chunk))
    raw += path.read_bytes()[end:]
    assert len(raw) == size
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def test_an_inline_image_fits_the_body_at_its_limit_and_one_over_it_is_refused_in_words(
    app, sim, tmp_path
):
    """Review 2, B9: the tool's own data-URI limit was 50 MB, never reached: the body caps
    (ours 16 MiB, the mcp library's own 4 MiB) answered a plain 413 first, or an image was
    sent past the 12 MB the tools stated. Now the limit is what fits the smaller cap with
    room for the rest of the call, the tools state it, and one byte more is refused in the
    tool's words."""
    from kling_ui.ui import agents

    assert agents._body_cap() > agents.DATA_URI_MOST + 128 * 1024
    tools = {tool.name: tool for tool in list_tools(app.url)}
    for name in ("generate", "submit"):
        assert agents.DATA_URI_WORDS in json.dumps(tools[name].inputSchema), name
    at_limit = png_of_size(tmp_path / "a.png", agents.DATA_URI_IMAGE_BYTES)
    answer, failed = call(app, "submit", {"image": at_limit, "prompt": "Snow."}, key=KEY)
    assert not failed and len(answer["items"]) == 1, answer
    over = png_of_size(tmp_path / "b.png", agents.DATA_URI_IMAGE_BYTES + 1)
    time.sleep(1)
    before = sim.creates
    answer, failed = call(app, "submit", {"image": over, "prompt": "Snow."}, key=KEY)
    words = f"over {agents.DATA_URI_WORDS[8:]} ({agents.DATA_URI_IMAGE_BYTES:,} bytes)"
    assert words in answer["error"] and not answer["items"], answer
    time.sleep(1)
    assert sim.creates == before


def test_an_image_this_server_cannot_store_is_answered_in_words(app, sim, photo):
    """Review 2, B7: a full disk's OSError (the image's folder or file not made) escaped
    the tools as a generic error, and a failed write left the folder behind."""
    uploads = app.data_dir.parent / "uploads"
    aside = uploads.with_name("uploads-aside")
    if uploads.exists():
        uploads.rename(aside)
    uploads.write_text("a file where the folder should be: nothing can be made in it")
    before = sim.creates
    try:
        image = data_uri(photo)
        answer, failed = call(app, "submit", {"image": image, "prompt": "Snow."}, key=KEY)
        assert not failed and "could not store the image" in answer["error"], answer
        answer, failed = call(app, "generate", {"image": image, "prompt": "Snow."}, key=KEY)
        assert not failed and "could not store the image" in answer["message"], answer
        assert answer["status"] == "not sent"
    finally:
        uploads.unlink()
        if aside.exists():
            aside.rename(uploads)
    assert sim.creates == before


def test_over_real_sockets_a_connection_to_the_bound_address_comes_from_it():
    """Review 2, B2, the fact the rule stands on: a client on this machine that connects to
    the address a server is bound to (Gradio's loopback client posts to ``local_url``) comes
    from that same address, which the server's scope names as its own. Only loopback
    addresses may be used here, so the server binds 127.0.0.3 and the rule is read by its
    comparison alone (a LAN address is the same case: tested at ASGI level above)."""
    import socket

    import uvicorn

    from kling_ui.ui import callers

    scopes: list[dict] = []

    async def record(scope, receive, send):
        if scope["type"] == "http":
            scopes.append(scope)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    listening = socket.socket()  # handed to uvicorn: the port is its own from the start
    listening.bind(("127.0.0.3", 0))
    port = listening.getsockname()[1]
    config = uvicorn.Config(record, host="127.0.0.3", port=port, log_level="warning",
                            lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, args=([listening],), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        transport = httpx.HTTPTransport(local_address="127.0.0.3")
        with httpx.Client(transport=transport, timeout=30) as client:
            assert client.get(f"http://127.0.0.3:{port}/").status_code == 200
    finally:
        server.should_exit = True
        thread.join(30)
        listening.close()
    scope = scopes[-1]
    assert scope["client"][0] == scope["server"][0] == "127.0.0.3"
    lan_like = {**scope, "client": ("192.168.1.5", scope["client"][1]),
                "server": ("192.168.1.5", scope["server"][1])}  # fmt: skip
    assert callers.from_this_machine(scope) and callers.from_this_machine(lan_like)
