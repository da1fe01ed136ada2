"""Who calls: the client's address behind our proxies, and the agent behind an MCP call.

Gradio's MCP server runs each queued tool through its own loopback client: the tool's
request comes from this machine (127.0.0.1) with the MCP request's headers copied, so every
agent would be one visitor, at one address. ``AgentCaller`` (ASGI middleware, with
``--mcp``) writes onto each request to the MCP server a header naming the agent behind it:
its address (as ``client_address`` reads any caller's) and its MCP session (SSE's session
id; Gradio 6.31 runs the streamable HTTP transport stateless, with no session to name, so
there an agent is its key's, or its address's). The session is read only where the SSE
transport checks it (its ``/messages/`` path: an id it did not hand out is refused there);
anywhere else a ``session_id`` is just text anyone can vary. The header is signed with a key
of its own (derived from the service's secret) and dated, so no client can write one, and
one seen somewhere is soon worthless; any header of that name from another machine is
dropped. The tools read it back with ``agent_of``; ``BodyLimit`` (``vouches``) lets the
loopback client's copy of an agent's call carry the MCP request's larger body.

On a Space with Hugging Face sign-in set up (``hf_sign_in_ready``), ``signed_in`` names
the user signed in on a request's session, so the handlers make that user the visitor, the
same in every browser.

Imports only ``addresses`` of the app's (the signer is handed in).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ..addresses import forwarded_address as client_address

AGENT_HEADER = "x-kling-agent"
MCP_PATH = "/gradio_api/mcp"
SSE_MESSAGES = MCP_PATH + "/messages"  # where an SSE session's calls come, by its id
# How long a signed header names its agent: the longest tool call reads it again as it
# waits for the video (``agents``), and the loopback client's copy of a call is made within
# ``FRESH_SECONDS`` of the call (``vouches``).
AGENT_HEADER_SECONDS = 4 * 3600
FRESH_SECONDS = 120


@dataclass(frozen=True)
class Agent:
    address: str
    session: str  # SSE's session id; "" for streamable HTTP (stateless: no session)


def _loopback(scope: dict) -> bool:
    host = str((scope.get("client") or ("",))[0] or "")
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AgentCaller:
    """ASGI middleware: each request to the MCP server gets the signed ``AGENT_HEADER``
    (any the client sent is dropped first); any other request keeps one only when it comes
    from this machine (Gradio's loopback client running a tool), and still must prove it
    (``agent_of``)."""

    def __init__(
        self,
        app: Any,
        *,
        sign: Callable[[str], str],
        behind_proxy: bool,
        hops: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app, self._sign, self._clock = app, sign, clock
        self._behind_proxy, self._hops = behind_proxy, hops

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            path = str(scope.get("path", ""))
            mcp = scope["type"] == "http" and path.startswith(MCP_PATH)
            if mcp or not _loopback(scope):
                raw = [(k, v) for k, v in scope.get("headers", []) if k != AGENT_HEADER.encode()]
                scope = {**scope, "headers": raw}
            if mcp:
                raw = scope["headers"]
                lines = [v.decode("latin-1") for k, v in raw if k == b"x-forwarded-for"]
                host = (scope.get("client") or ("",))[0]
                address = client_address(
                    lines, str(host or ""), behind_proxy=self._behind_proxy, hops=self._hops
                )
                session = ""
                if path.startswith(SSE_MESSAGES):  # the SSE transport refuses ids it didn't give
                    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                    session = (query.get("session_id") or [""])[0][:100]
                value = _signed(self._sign, address, session, int(self._clock()))
                scope = {**scope, "headers": [*raw, (AGENT_HEADER.encode(), value.encode())]}
        await self.app(scope, receive, send)

    def vouches(self, scope: dict) -> bool:
        """Whether a request is Gradio's loopback client running an agent's tool call, just
        made: from this machine, with a header this app signed within ``FRESH_SECONDS``
        (``web.BodyLimit`` gives it the MCP call's body limit: its image may be inline)."""
        if scope.get("type") != "http" or not _loopback(scope):
            return False
        values = [v for k, v in scope.get("headers", []) if k == AGENT_HEADER.encode()]
        if len(values) != 1:
            return False
        found = _verified(values[0].decode("latin-1"), self._sign, FRESH_SECONDS, self._clock())
        return found is not None


def agent_of(
    request: Any, sign: Callable[[str], str], *, clock: Callable[[], float] = time.time
) -> Agent | None:
    """The agent behind a tool's request, when it carries a header ``AgentCaller`` signed
    (through Gradio's loopback client too) in the last ``AGENT_HEADER_SECONDS``; None for
    any other request, a forged or odd header included (never an exception)."""
    headers = getattr(request, "headers", None) if request is not None else None
    try:
        value = headers.get(AGENT_HEADER, "") if hasattr(headers, "get") else ""
    except Exception:  # a mapping that refuses: no agent
        return None
    return _verified(value, sign, AGENT_HEADER_SECONDS, clock())


def _verified(value: Any, sign: Callable[[str], str], most_age: float, now: float) -> Agent | None:
    """The agent a header value names, if this app signed it at most ``most_age`` ago."""
    if not isinstance(value, str) or not value.isascii() or value.count("|") != 3:
        return None
    address, session, stamp, mac = value.split("|")
    if not stamp.isdigit() or not -5 <= now - int(stamp) <= most_age:
        return None
    expected = _mac(sign, address, session, stamp)
    if not hmac.compare_digest(mac.encode("ascii"), expected.encode("ascii")):
        return None
    return Agent(address, session)


def _mac(sign: Callable[[str], str], address: str, session: str, stamp: str) -> str:
    """The header's signature, under a key of its own: HMAC(secret, "agent-header") (the
    service's digest of that text), so it is no other digest the app makes or shows."""
    key = sign("agent-header").encode()
    return hmac.new(key, f"{address}|{session}|{stamp}".encode(), hashlib.sha256).hexdigest()


def _signed(sign: Callable[[str], str], address: str, session: str, stamp: int) -> str:
    address = "".join(c for c in address if c.isascii() and c.isprintable() and c != "|")
    session = "".join(c for c in session if c.isascii() and c.isprintable() and c != "|")
    return f"{address}|{session}|{stamp}|{_mac(sign, address, session, str(stamp))}"


def hf_sign_in_ready(on_space: bool) -> bool:
    """Whether "Sign in with Hugging Face" can work here: on a Space whose OAuth is set up
    (``hf_oauth: true`` in its README gives the app these variables, which Gradio reads)
    and Gradio's OAuth extra installed (``gradio[oauth]``). Elsewhere Gradio would sign
    everyone in as this machine's own Hugging Face account, and on a Space without them
    its launch would fail: no button then."""
    from gradio import oauth

    return (
        on_space
        and all([oauth.OAUTH_CLIENT_ID, oauth.OAUTH_CLIENT_SECRET, oauth.OPENID_PROVIDER_URL])
        and oauth_installed()
    )


def oauth_installed() -> bool:
    """Gradio's OAuth extra (``authlib``, ``itsdangerous``) is importable."""
    return all(importlib.util.find_spec(name) for name in ("authlib", "itsdangerous"))


def signed_in(request: Any) -> str:
    """The Hugging Face user signed in on this request's session (Gradio's OAuth keeps it in
    a cookie it signs), by the OIDC ``sub`` claim: the account's own id, which a rename
    keeps and no one else is ever given (a user name is changed, then taken by another).
    "" when none or expired, or when sign-in isn't set up."""
    raw = getattr(request, "request", None) if request is not None else None
    scope = getattr(raw, "scope", None)
    session = scope.get("session") if isinstance(scope, dict) else None
    info = session.get("oauth_info") if isinstance(session, dict) else None
    if not isinstance(info, dict):
        return ""
    expires = info.get("expires_at")
    if isinstance(expires, (int, float)) and expires < time.time():
        return ""
    user = info.get("userinfo")
    sub = user.get("sub") if isinstance(user, dict) else None
    return sub if isinstance(sub, str) else ""
