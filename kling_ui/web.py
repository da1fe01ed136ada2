"""What the web server adds around Gradio's own routes: the videos' addresses, the headers
that keep the page out of other sites' frames, and the Host check against DNS rebinding.

Plain ASGI and Starlette (Gradio's own server stack), handed to Gradio's FastAPI app through
``launch(app_kwargs=...)``: nothing here imports gradio.

- ``/media/<token>.mp4``: a finished job's video, and ``/media/<token>.jpg`` its poster
  frame. The token is 128 random bits kept in the ledger with the job; the address carries
  no path of the server's, and an unknown token is a plain 404 (the same answer whether or
  not a file of that name exists). Programs using gradio_client reach them through Gradio's
  file route; the guard sends those here too.
- Framing: ``Content-Security-Policy: frame-ancestors`` (and ``X-Frame-Options`` where only
  this site may frame the page). A Hugging Face Space shows the app inside huggingface.co's
  page, so there that site is allowed too, and the Space's own host (``SPACE_HOST``), never
  every ``*.hf.space`` page (any other Space could frame the app and steer a visitor).
- Host: when the server listens on loopback only (a laptop), a request whose ``Host`` is not
  localhost, a loopback address or a configured name is refused (a web page on another site
  can't reach the app by pointing its own name at 127.0.0.1).
- Bodies (``BodyLimit``): capped before they are read, by their ``Content-Length`` and by
  the bytes counted as they stream (413), and read within a deadline (408, the connection
  closed); an upload request may carry a batch's images, each up to Gradio's
  ``max_file_size``; an MCP call may carry its image inline, and so may the copy of it
  Gradio's loopback client posts to the queue (an inner middleware ``vouches`` for it:
  ``callers.AgentCaller``); uploads are limited per client address an hour, in number and
  bytes (429). A
  refused or abandoned upload leaves no file behind (Gradio's parser removes its files on a
  ``MultiPartException``, which is what a refusal or a hang-up raises inside it).
- Headers (``HeaderDeadlineH11``): uvicorn's h11 protocol with a deadline for a request's
  headers, installed by ``install_header_deadline`` before the server starts (Gradio builds
  uvicorn's config itself, so the protocol is the one place to add it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from .addresses import address_key, forwarded_address
from .config import Settings
from .service import MAX_BATCH

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

# gradio_client fetches every output file through Gradio's own file route, the video's
# address included ("/gradio_api/file=http://host/media/<token>.mp4", its poster's ".jpg",
# a chain's whole ".chain.mp4"), where Gradio would fetch it again over the network (and
# refuse a loopback address): served here directly.
MEDIA_VIA_FILE_ROUTE = re.compile(
    r"/gradio_api/file=https?://[^/]+/(?:.*/)?media/"
    r"([0-9a-f]{32}\.(?:chain\.mp4|mp4|jpg))"
)
# What /media/ serves, by the file's suffix; anything else is a download, never rendered.
MEDIA_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg"}
SPACE_FRAMER = "https://huggingface.co"  # the Space's page, which shows the app in a frame
# A Space's host name as Hugging Face sets it (``SPACE_HOST``): "user-space.hf.space".
_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
# Gradio's share links arrive through its tunnel under these names, whatever turned sharing
# on (--share, GRADIO_SHARE, a notebook); no page can point such a name at this machine.
SHARE_SUFFIX = ".gradio.live"


def media_route(find: Callable[[str], tuple[Any, str] | None]) -> Route:
    """``GET /media/<name>``: the file ``find(name)`` names, served with ranges; else 404."""

    async def serve(request: Request) -> Response:
        # In a worker thread: finding may stitch a chain, or fetch a video again, and the
        # event loop serves every other visitor meanwhile.
        found = await run_in_threadpool(find, request.path_params["name"])
        if found is None:
            return PlainTextResponse("Not found", status_code=404)
        path, filename = found
        return FileResponse(
            path,
            media_type=MEDIA_TYPES.get(Path(path).suffix.lower(), "application/octet-stream"),
            filename=filename,
            content_disposition_type="inline",
            headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    return Route("/media/{name}", serve, methods=["GET", "HEAD"])


def frame_policy(on_space: bool, space_host: str = "") -> dict[bytes, bytes]:
    """The headers that say who may show the page in a frame: on a Space, the Space's page on
    huggingface.co and the Space's own host (``space_host``, when it is a plain host name)."""
    if on_space:
        name = space_host.strip().lower()
        own = f" https://{name}" if _HOST_NAME.fullmatch(name) else ""
        policy = f"frame-ancestors 'self' {SPACE_FRAMER}{own}"
        return {b"content-security-policy": policy.encode()}
    return {
        b"content-security-policy": b"frame-ancestors 'self'",
        b"x-frame-options": b"SAMEORIGIN",
    }


def is_loopback(host: str | None) -> bool:
    name = (host or "127.0.0.1").strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(header: str, extra: Iterable[str]) -> bool:
    """Whether a Host header (name, optional port) is one a loopback-only server answers."""
    name = header.strip().lower()
    if name.startswith("["):  # [::1]:7860
        name = name[1 : name.find("]")] if "]" in name else name
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    return name in LOCAL_NAMES or is_loopback(name) or name in extra or name.endswith(SHARE_SUFFIX)


class Guard:
    """ASGI middleware: the framing headers on every HTTP answer; the Host check if asked."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        on_space: bool,
        check_host: bool,
        extra_hosts: Iterable[str] = (),
        space_host: str = "",
    ) -> None:
        self.app = app
        self.headers = frame_policy(on_space, space_host)
        self.check_host = check_host
        self.extra = frozenset(h.strip().lower() for h in extra_hosts if h.strip())

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.check_host and not host_allowed(_host(scope), self.extra):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            refusal = PlainTextResponse(
                "This address is not one this app answers to (see KLING_UI_ALLOWED_HOSTS).",
                status_code=421,
            )
            await refusal(scope, receive, send)
            return
        via_file = MEDIA_VIA_FILE_ROUTE.search(scope.get("path", ""))
        if via_file and scope["type"] == "http":
            path = f"/media/{via_file.group(1)}"
            scope = {**scope, "path": path, "raw_path": path.encode()}

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in self.headers
                ]
                headers.extend(self.headers.items())
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _host(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == b"host":
            return value.decode("latin-1")
    return ""


# --- bodies --------------------------------------------------------------------------------

# A body other than an upload is JSON that Starlette reads into memory whole, so it is kept
# small. The largest the API takes is a /batch call: 48 prompt lines of at most 2,500
# characters, a negative prompt and the browser's history of at most 100 short entries,
# about 250 KB; 1 MB leaves room and keeps a flood of bodies to a few MB (four 100 MB
# bodies took the process to 1.5 GB).
MAX_BODY_BYTES = 1024 * 1024
# An MCP tool call may carry its image inline, as a data URI (Base64: 4/3 of the file);
# a bigger one is given as an https link. Gradio runs the call through its loopback client,
# whose post to the queue carries the same image. The ``mcp`` library caps the call's own
# body lower (4 MiB in mcp 1.30): ``agents.DATA_URI_IMAGE_BYTES`` fits the smaller cap.
MAX_MCP_BODY_BYTES = 16 * 1024 * 1024
MCP_PREFIX = "/gradio_api/mcp"
# The multipart wrapping around the files of one upload request, besides the files.
UPLOAD_OVERHEAD = 64 * 1024
HOUR = 3600.0


@dataclass(frozen=True)
class BodyRules:
    """What ``BodyLimit`` allows (from the settings; ``upload_bytes``: Gradio's
    ``max_file_size``, one file)."""

    upload_bytes: int
    upload_files: int = MAX_BATCH  # the most files one upload request carries: a batch's
    body_seconds: float = 30.0
    upload_seconds: float = 300.0
    uploads_per_hour: int = 120
    upload_bytes_per_hour: int = 600 * 1024 * 1024
    behind_proxy: bool = False
    trusted_hops: int = 1
    ipv6_prefix: int = 64
    body_bytes: int = MAX_BODY_BYTES
    mcp_bytes: int = MAX_MCP_BODY_BYTES


def body_rules(settings: Settings, upload_bytes: int) -> BodyRules:
    """The settings' limits on bodies, with Gradio's ``max_file_size`` (``upload_bytes``)."""
    return BodyRules(
        upload_bytes=upload_bytes,
        body_seconds=settings.body_seconds,
        upload_seconds=settings.upload_seconds,
        uploads_per_hour=settings.uploads_per_hour,
        upload_bytes_per_hour=settings.upload_mb_per_hour * 1024 * 1024,
        behind_proxy=settings.behind_proxy,
        trusted_hops=settings.trusted_hops,
        ipv6_prefix=settings.ipv6_prefix,
    )


class _Refused(MultiPartException):
    """A body refused while it was read (or abandoned by its client). A
    ``MultiPartException``, so that Gradio's upload parser removes what it had written."""

    def __init__(self, status: int, words: str) -> None:
        super().__init__(words)
        self.status = status
        self.words = words


class _Uploads:
    """Each client address's uploads in the last hour: when each began, and its bytes."""

    def __init__(self, rules: BodyRules, clock: Callable[[], float]) -> None:
        self.rules = rules
        self.clock = clock
        self._by_address: dict[str, deque[list[float]]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[list[float]]:
        entries = self._by_address.setdefault(address, deque())
        while entries and entries[0][0] <= now - HOUR:
            entries.popleft()
        return entries

    def begin(self, address: str, declared: int | None) -> list[float] | str:
        """A new upload's entry, or why it is refused."""
        rules, now = self.rules, self.clock()
        with self._lock:
            if len(self._by_address) > 10_000:  # addresses with nothing in the last hour
                for gone in [a for a, e in self._by_address.items() if not self._recent(a, now)]:
                    del self._by_address[gone]
            entries = self._recent(address, now)
            if 0 < rules.uploads_per_hour <= len(entries):
                return (
                    f"{rules.uploads_per_hour} uploads an hour is the most one address may "
                    "make here; try again later."
                )
            used = sum(e[1] for e in entries)
            if 0 < rules.upload_bytes_per_hour < used + (declared or 0):
                return self._over_bytes()
            entry = [now, float(declared or 0)]
            entries.append(entry)
            return entry

    def add(self, entry: list[float], address: str, counted: int, declared: int | None) -> None:
        """Bytes read of an upload whose length was not declared (chunked): counted now."""
        if declared is not None:
            return
        with self._lock:
            entry[1] = float(counted)
            used = sum(e[1] for e in self._recent(address, self.clock()))
        if 0 < self.rules.upload_bytes_per_hour < used:
            raise _Refused(429, self._over_bytes())

    def _over_bytes(self) -> str:
        most = self.rules.upload_bytes_per_hour / 1024**2
        return (
            f"{most:.0f} MB of uploads an hour is the most one address may send here; "
            "try again later."
        )


class BodyLimit:
    """ASGI middleware: every request body capped and read within a deadline; uploads
    limited per client address an hour (see the module's docstring)."""

    def __init__(
        self, app: ASGIApp, *, rules: BodyRules, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.rules = rules
        self.uploads = _Uploads(rules, clock)
        self._vouches = _voucher(app)

    def _vouched(self, scope: Scope) -> bool:
        """An inner middleware says this request is an agent's MCP call as Gradio's
        loopback client makes it (``callers.AgentCaller.vouches``)."""
        return self._vouches is not None and bool(self._vouches(scope))

    def _limit(self, scope: Scope) -> tuple[bool, int, float]:
        """Whether the request is an upload, the most its body may be, and its deadline."""
        rules, path = self.rules, scope.get("path", "")
        upload = path.endswith("/upload") and scope.get("method") == "POST"
        if upload:  # the hour's budget is the uploads' own check (``_Uploads``)
            seconds = rules.upload_seconds
            limit = rules.upload_bytes * max(rules.upload_files, 1) + UPLOAD_OVERHEAD
        elif path.startswith(MCP_PREFIX) or self._vouched(scope):
            limit, seconds = rules.mcp_bytes, rules.body_seconds
        else:
            limit, seconds = rules.body_bytes, rules.body_seconds
        return upload, limit, seconds

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload, limit, seconds = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, 413, _too_large(limit, upload))
            return
        hour = None
        if upload:
            rules = self.rules
            address = client_address(
                scope, rules.behind_proxy, rules.trusted_hops, rules.ipv6_prefix
            )
            began = self.uploads.begin(address, declared)
            if isinstance(began, str):
                await _refuse(scope, receive, send, 429, began)
                return
            hour = (self.uploads, address, began)
        body = _GuardedBody(receive, send, limit, seconds, upload, declared)
        body.hour = hour
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if body.refused is None:
                raise
        finally:
            body.stop_timer()
        refused = body.refused
        if refused is not None and refused.status != 499 and not body.started:
            await _refuse(scope, receive, send, refused.status, refused.words)


class _GuardedBody:
    """One request's body as the app reads it: counted against its limit, read within its
    deadline, an upload's bytes added to its address's hour (``hour``). The first refusal
    is kept: the app's own answer is then dropped, and ``BodyLimit`` answers instead."""

    def __init__(
        self,
        receive: Callable,
        send: Callable,
        limit: int,
        seconds: float,
        upload: bool,
        declared: int | None,
    ) -> None:
        self._receive, self._send = receive, send
        self.limit, self.seconds, self.upload, self.declared = limit, seconds, upload, declared
        self.hour: tuple[_Uploads, str, list[float]] | None = None
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + seconds
        self.read = 0
        self.whole = declared == 0
        self.refused: _Refused | None = None
        self.started = False
        # One timer for the whole body, not one a chunk (``asyncio.wait_for`` made a timer
        # and a task for each: 50 uploads at once spent 7% of the event loop on them,
        # bench 3). At the deadline it cancels the task waiting for the body, if one is.
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Task | None = None
        self._expired = False

    async def receive(self) -> dict:
        if self.whole or self.refused:
            return await self._receive()
        if self.loop.time() >= self.deadline:
            raise self._late()
        if self._timer is None:
            self._timer = self.loop.call_at(self.deadline, self._expire)
        self._waiter = asyncio.current_task()
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self._expired:
                raise
            self._expired = False
            waiter = self._waiter
            if hasattr(waiter, "uncancel"):  # Python 3.11 on: ours is answered as a 408 here
                waiter.uncancel()
                if waiter.cancelling():  # someone else's came with it: theirs stands
                    raise
            raise self._late() from None
        finally:
            self._waiter = None
        if message["type"] == "http.disconnect":  # the client hung up mid-body
            self.stop_timer()
            self.refused = _Refused(499, "The client closed the connection.")
            raise self.refused
        if message["type"] == "http.request":
            self._count(message)
        if self.whole or self.refused:
            self.stop_timer()
        return message

    def _expire(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._expired = True
            waiter.cancel()

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _late(self) -> _Refused:
        self.stop_timer()
        self.refused = _Refused(
            408, f"The request's body did not arrive within {self.seconds:g} seconds."
        )
        return self.refused

    def _count(self, message: dict) -> None:
        self.read += len(message.get("body", b""))
        if self.read > self.limit:
            self.refused = _Refused(413, _too_large(self.limit, self.upload))
            raise self.refused
        if self.hour is not None:
            uploads, address, entry = self.hour
            try:
                uploads.add(entry, address, self.read, self.declared)
            except _Refused as refused:
                self.refused = refused
                raise
        if not message.get("more_body", False):
            self.whole = True

    async def send(self, message: dict) -> None:
        if self.refused is not None:
            return  # the app's own answer to a refused body: ours goes instead
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _voucher(app: Any) -> Callable[[Scope], bool] | None:
    """The ``vouches`` of the nearest middleware inside ``app`` that has one (the middleware
    are each other's ``app``, in the order the launch lists them), else None."""
    for _ in range(20):
        found = getattr(app, "vouches", None)
        if callable(found):
            return found
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _too_large(limit: int, upload: bool) -> str:
    what = "An upload" if upload else "A request's body"
    return f"{what} may be at most {limit / 1024**2:.0f} MB here."


async def _refuse(scope: Scope, receive: Callable, send: Callable, status: int, words: str) -> None:
    """Answer in words and close the connection (what is left of the body is not read)."""
    answer = PlainTextResponse(words, status_code=status, headers={"Connection": "close"})
    await answer(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def client_address(scope: Scope, behind_proxy: bool, hops: int = 1, ipv6_prefix: int = 64) -> str:
    """The caller's address, by the rule the page's handlers use (``handlers._address``):
    behind ``hops`` proxies of ours, the X-Forwarded-For entry the farthest of them wrote,
    every header line joined; else the connection's peer; as limits count it
    (``addresses.address_key``: no port, an IPv6 client by its network)."""
    client = scope.get("client")
    lines = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"]
    host = str(client[0]) if client else ""
    found = forwarded_address(lines, host, behind_proxy=behind_proxy, hops=hops)
    return address_key(found, ipv6_prefix)


# --- headers -------------------------------------------------------------------------------


def header_deadline_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol, with ``seconds`` for a request's headers to arrive whole,
    from the connection's start or the previous answer's end (uvicorn has none: a client
    that sends a byte now and then held its connection, and a file descriptor, for ever)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineH11(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._header_timer = self.loop.call_later(seconds, self._headers_late)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._stop_header_timer()  # a request's headers came whole: it is the app's

        def on_response_complete(self) -> None:
            self._stop_header_timer()
            if not self.transport.is_closing():
                self._header_timer = self.loop.call_later(seconds, self._headers_late)
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._stop_header_timer()  # the connection is the WebSocket protocol's now
            super().handle_websocket_upgrade(event)

        def _stop_header_timer(self) -> None:
            timer = getattr(self, "_header_timer", None)
            if timer is not None:
                timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineH11


def install_header_deadline(seconds: float) -> None:
    """Make the h11 protocol with a header deadline the one uvicorn starts with ("auto", as
    Gradio leaves it). Call before ``launch``."""
    import uvicorn.config

    protocol = header_deadline_protocol(seconds)
    name = f"{__name__}:_HEADER_DEADLINE_PROTOCOL"
    globals()["_HEADER_DEADLINE_PROTOCOL"] = protocol
    uvicorn.config.HTTP_PROTOCOLS["auto"] = name
    uvicorn.config.HTTP_PROTOCOLS["h11"] = name
