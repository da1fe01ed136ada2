"""Who calls: the client's address behind our proxies, and the agent behind an MCP call.

Gradio's MCP server runs each queued tool through its own loopback client: the tool's
request comes from this machine (127.0.0.1) with the MCP request's headers copied, so every
agent would be one visitor, at one address. ``AgentCaller`` (ASGI middleware, with
``--mcp``) writes onto each request to the MCP server a header naming the agent behind it:
its address (as ``client_address`` reads any caller's) and its MCP session (SSE's session
id; Gradio 6.31 runs the streamable HTTP transport stateless, with no session to name, so
there an agent is its key's, or its address's). The header is signed with the service's
secret, so no client can write one of its own; the tools read it back with ``agent_of``.

Imports nothing of the app's (the signer is handed in).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

AGENT_HEADER = "x-kling-agent"
MCP_PATH = "/gradio_api/mcp"


def forwarded(lines: Iterable[str]) -> list[str]:
    """Every X-Forwarded-For entry, in order, from every line of the header (RFC 9110 lets
    a proxy add a line of its own)."""
    return [e.strip() for line in lines for e in str(line).split(",") if e.strip()]


def client_address(lines: Iterable[str], host: str, *, behind_proxy: bool, hops: int) -> str:
    """The caller's address: behind ``hops`` proxies of ours, the X-Forwarded-For entry the
    farthest of them wrote (``hops`` from the end; what a client wrote comes first), else
    the connection's ``host``."""
    entries = forwarded(lines) if behind_proxy else []
    return entries[-min(max(hops, 1), len(entries))] if entries else host


@dataclass(frozen=True)
class Agent:
    address: str
    session: str  # SSE's session id; "" for streamable HTTP (stateless: no session)


class AgentCaller:
    """ASGI middleware: each request to the MCP server gets the signed ``AGENT_HEADER``
    (any the client sent is dropped first)."""

    def __init__(
        self, app: Any, *, sign: Callable[[str], str], behind_proxy: bool, hops: int
    ) -> None:
        self.app, self._sign = app, sign
        self._behind_proxy, self._hops = behind_proxy, hops

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and str(scope.get("path", "")).startswith(MCP_PATH):
            raw = [(k, v) for k, v in scope.get("headers", []) if k != AGENT_HEADER.encode()]
            lines = [v.decode("latin-1") for k, v in raw if k == b"x-forwarded-for"]
            host = (scope.get("client") or ("",))[0]
            address = client_address(
                lines, str(host or ""), behind_proxy=self._behind_proxy, hops=self._hops
            )
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            session = (query.get("session_id") or [""])[0][:100]
            value = _signed(self._sign, address, session)
            scope = {**scope, "headers": [*raw, (AGENT_HEADER.encode(), value.encode())]}
        await self.app(scope, receive, send)


def agent_of(request: Any, sign: Callable[[str], str]) -> Agent | None:
    """The agent behind a tool's request, when it carries a header ``AgentCaller`` signed
    (through Gradio's loopback client too); None for any other request."""
    headers = getattr(request, "headers", None) if request is not None else None
    value = headers.get(AGENT_HEADER, "") if hasattr(headers, "get") else ""
    if not isinstance(value, str) or value.count("|") != 2:
        return None
    address, session, mac = value.split("|")
    if not hmac.compare_digest(mac, sign(_message(address, session))):
        return None
    return Agent(address, session)


def _message(address: str, session: str) -> str:
    return f"agent|{address}|{session}"


def _signed(sign: Callable[[str], str], address: str, session: str) -> str:
    address, session = address.replace("|", ""), session.replace("|", "")
    return f"{address}|{session}|{sign(_message(address, session))}"
