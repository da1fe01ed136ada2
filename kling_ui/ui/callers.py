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

"From this machine" is a loopback peer, or a peer at the very address the connection came
in on: Gradio's loopback client posts to its ``local_url``, the bound address itself when
the server binds to a LAN address or name (only 0.0.0.0 becomes localhost), and the kernel
sends from that address. A reverse proxy on this host makes every outside request look
local too, so the header is also single-use: each value carries a nonce, ``AgentCaller``
keeps the values it issued (at most ``ISSUED_MOST``, each ``FRESH_SECONDS``), and a request
not to the MCP server keeps its header (and ``vouches`` says yes) only for a value issued
here and not yet used: a header seen somewhere is worthless once the call it came with ran.

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
import secrets
import time
from collections import OrderedDict
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
ISSUED_MOST = 10_000  # header values kept for their one use; a flood drops the oldest
_TAKEN = "kling_ui.agent_header"  # scope key: the value ``vouches`` took for this request


@dataclass(frozen=True)
class Agent:
    address: str
    session: str  # SSE's session id; "" for streamable HTTP (stateless: no session)


def _address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        found = ipaddress.ip_address(str(value or "").strip("[]"))
    except ValueError:
        return None
    mapped = getattr(found, "ipv4_mapped", None)
    return mapped or found


def from_this_machine(scope: dict) -> bool:
    """Whether a request's peer is this machine: a loopback address, or the very address
    the connection came in on (Gradio's loopback client on a server bound to a LAN
    address or name posts from that address to it)."""
    client = _address((scope.get("client") or ("",))[0])
    if client is None:
        return False
    if client.is_loopback:
        return True
    return client == _address((scope.get("server") or ("",))[0])


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
        self._issued: OrderedDict[str, float] = OrderedDict()  # value: when it expires

    def _issue(self, value: str) -> None:
        self._issued[value] = self._clock() + FRESH_SECONDS
        while len(self._issued) > ISSUED_MOST:
            self._issued.popitem(last=False)

    def _take(self, value: str) -> bool:
        """Whether ``value`` is a header issued here, unused and fresh (it is used now)."""
        now = self._clock()
        while self._issued and next(iter(self._issued.values())) < now:
            self._issued.popitem(last=False)
        expires = self._issued.pop(value, None)
        return expires is not None and now <= expires

    def _kept(self, scope: dict) -> bool:
        """Whether a request not to the MCP server keeps its header: from this machine,
        with one value issued here and not used before (``vouches`` may have taken it)."""
        if not from_this_machine(scope):
            return False
        values = [v for k, v in scope.get("headers", []) if k == AGENT_HEADER.encode()]
        if len(values) != 1:
            return not values
        value = values[0].decode("latin-1")
        return scope.get(_TAKEN) == value or self._take(value)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            path = str(scope.get("path", ""))
            mcp = scope["type"] == "http" and path.startswith(MCP_PATH)
            if mcp or not self._kept(scope):
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
                self._issue(value)
                scope = {**scope, "headers": [*raw, (AGENT_HEADER.encode(), value.encode())]}
        await self.app(scope, receive, send)

    def vouches(self, scope: dict) -> bool:
        """Whether a request is Gradio's loopback client running an agent's tool call, just
        made: from this machine, with a header this app issued within ``FRESH_SECONDS`` and
        never used before (this is its use), so ``web.BodyLimit`` gives it the MCP call's
        body limit: its image may be inline."""
        if scope.get("type") != "http" or not from_this_machine(scope):
            return False
        values = [v for k, v in scope.get("headers", []) if k == AGENT_HEADER.encode()]
        if len(values) != 1:
            return False
        value = values[0].decode("latin-1")
        now = self._clock()
        if _verified(value, self._sign, FRESH_SECONDS, now) is None or not self._take(value):
            return False
        scope[_TAKEN] = value  # the same request keeps its header inside (``_kept``)
        return True


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
    if not isinstance(value, str) or not value.isascii() or value.count("|") != 4:
        return None
    address, session, stamp, nonce, mac = value.split("|")
    if not stamp.isdigit() or not -5 <= now - int(stamp) <= most_age:
        return None
    expected = _mac(sign, address, session, f"{stamp}|{nonce}")
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
    dated = f"{stamp}|{secrets.token_hex(8)}"  # the nonce: each value is used once
    return f"{address}|{session}|{dated}|{_mac(sign, address, session, dated)}"


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
