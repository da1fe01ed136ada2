"""The app as an MCP server for AI agents (``python app.py --mcp``), through the ``mcp``
package's own client over streamable HTTP (and SSE), against the simulator over real HTTP:
the tools an agent sees, a video made to the end, the key only ever in a header."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
from apprunner import AppProcess

from kling_ui.simulator import Schedule, Simulator

mcp = pytest.importorskip("mcp", reason="the mcp package (gradio[mcp]) is not installed")
from mcp import ClientSession  # noqa: E402
from mcp.client.sse import sse_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

KEY = "sk-agent-key-9c41e0"
TOOLS = {"generate", "submit", "extend", "resume", "status", "estimate"}


@pytest.fixture(scope="module")
def sim():
    with Simulator(api_key=KEY, schedule=Schedule(queued_s=0.3, generating_s=0.8)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def app(sim, tmp_path_factory):
    """A public app where visitors bring their own keys, as on a Space, with --mcp."""
    data = tmp_path_factory.mktemp("mcp") / "data"
    env = {"AIMLAPI_BASE_URL": sim.url, "KLING_UI_POLL_INTERVAL": "0.2"}
    with AppProcess(data, "--mcp", "--require-user-key", env=env) as server:
        yield server


def call(app, tool: str, arguments: dict, *, key: str | None = None, progress=None):
    """Call one tool over streamable HTTP; the JSON it answers, and whether it was an error."""

    async def go():
        headers = {"X-AIMLAPI-Key": key} if key else {}
        http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=120))
        url = app.url.rstrip("/") + "/gradio_api/mcp/"
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


def in_one_session(app, calls: list[tuple[str, dict]]) -> list:
    """Several tool calls in one MCP session (SSE: Gradio's streamable HTTP transport is
    stateless, with no session), without a key: each one's JSON answer."""

    async def go():
        url = app.url.rstrip("/") + "/gradio_api/mcp/sse"
        answers = []
        async with (
            sse_client(url, timeout=30, sse_read_timeout=120) as (read, write),
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


def test_estimate_answers_json(app):
    answer, failed = call(app, "estimate", {"duration": 10, "generate_audio": True, "count": 2})
    assert not failed
    assert answer["usd"] == pytest.approx(2.8) and answer["usd_each"] == pytest.approx(1.4)


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
    assert second["final"] and "1 videos an hour" in second["message"], second
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
    assert len(made["items"]) == 1 and sim.creates >= before, made
