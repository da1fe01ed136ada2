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
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

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
