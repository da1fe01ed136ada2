"""The page a share link opens (``/share/<link>``) and its files (``/share/<link>/<n>.mp4``,
``<n>.jpg``): read only, plain HTML with no Gradio, nothing of the app but the videos and
what their owner chose to show (``service.shares``).

Every answer is looked up again (a revoked link stops at once), is not kept by caches
(``no-store``), sends no referrer and asks search engines not to index it.
``/share/<link>/videos.zip`` is "Download all" (a link of that kind only): the videos as one
ZIP, streamed. The page's own Content-Security-Policy (a ``meta`` tag: the framing policy
is ``web.Guard``'s header) lets it load its own videos and its one inline script (the
board's synced playback) only.
Imports starlette, ``service.shares``, ``zipstream`` and ``pricing``.
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from .pricing import dollars
from .service.shares import Shared
from .zipstream import stream_zip

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
GONE = (
    "This share link does not work: it has expired, its owner revoked it, or it was not "
    "copied whole."
)
# Play, pause and seek together (the app's compare board does the same: ui/compare.py).
SYNC = """
const vs = [...document.querySelectorAll("video")];
const at = (v, t) => Math.min(t, Number.isFinite(v.duration) ? v.duration : t);
for (const src of vs) {
  src.addEventListener("play", () => vs.forEach((v) => {
    if (v !== src && v.paused && !(v.currentTime >= v.duration)) v.play().catch(() => {});
  }));
  src.addEventListener("pause", () => {
    if (!src.ended) vs.forEach((v) => v !== src && v.pause());
  });
  src.addEventListener("seeked", () => vs.forEach((v) => {
    if (v !== src && Math.abs(v.currentTime - at(v, src.currentTime)) > 0.25) {
      v.currentTime = at(v, src.currentTime);
    }
  }));
}
"""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #0b0f19; color: #e5e7eb; }
main { max-width: 1400px; margin: 0 auto; padding: 16px; }
.grid { display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
figure { margin: 0; }
video { width: 100%; max-height: 70vh; background: #000; border-radius: 6px; }
.kept video { outline: 3px solid #f97316; }
figcaption, p { line-height: 1.5; }
"""


def share_routes(
    open_share: Callable[[str], Shared | None],
    share_file: Callable[[str, str], Path | None],
    zip_files: Callable[[str], list[tuple[Path, str]] | None],
) -> list[Route]:
    """The share page, its files, and "Download all"'s ZIP."""

    async def page(request: Request) -> Response:
        shared = await run_in_threadpool(open_share, request.path_params["token"])
        if shared is None or not shared.items:
            return PlainTextResponse(GONE, status_code=404, headers=HEADERS)
        return HTMLResponse(render(request.path_params["token"], shared), headers=HEADERS)

    async def file(request: Request) -> Response:
        token, name = request.path_params["token"], request.path_params["name"]
        if name == "videos.zip":
            files = await run_in_threadpool(zip_files, token)
            if files is None:
                return PlainTextResponse(GONE, status_code=404, headers=HEADERS)
            disposition = {"Content-Disposition": 'attachment; filename="kling-ui-videos.zip"'}
            if request.method == "HEAD":  # the headers only: no video is read
                return Response(media_type="application/zip", headers={**HEADERS, **disposition})
            return StreamingResponse(stream_zip(files), media_type="application/zip",
                                     headers={**HEADERS, **disposition})  # fmt: skip
        path = await run_in_threadpool(share_file, token, name)
        if path is None:
            return PlainTextResponse(GONE, status_code=404, headers=HEADERS)
        kind = "video/mp4" if name.endswith(".mp4") else "image/jpeg"
        return FileResponse(path, media_type=kind, filename=f"shared-{name}",
                            content_disposition_type="inline", headers=HEADERS)  # fmt: skip

    return [
        Route("/share/{token}", page, methods=["GET", "HEAD"]),
        Route("/share/{token}/{name}", file, methods=["GET", "HEAD"]),
    ]


def render(token: str, shared: Shared) -> str:
    """The page: each video, with what its owner chose to show."""
    nonce = secrets.token_urlsafe(16)
    base = html.escape(token.rsplit("/", 1)[-1])
    cells = []
    for n, item in enumerate(shared.items, 1):
        kept = item.gid == shared.kept
        facts = []
        if "settings" in shared.shows:
            price = dollars(item.usd) if item.usd is not None else ""
            facts.append(" · ".join(f for f in (item.name, item.settings, price) if f))
        if "prompt" in shared.shows:
            facts.append(item.prompt)
        caption = "<br>".join(html.escape(f) for f in facts)
        mark = " ★ kept" if kept and len(shared.items) > 1 else ""
        title = f"<strong>{n}.</strong>{mark}" if len(shared.items) > 1 else ""
        muted = " muted" if n > 1 else ""
        cells.append(
            f'<figure class="{"kept" if kept else ""}"><video src="{base}/{n}.mp4" '
            f'poster="{base}/{n}.jpg" controls playsinline preload="metadata"{muted} '
            f'aria-label="Video {n}"></video><figcaption>{title}'
            f"{'<br>' if title and caption else ''}{caption}</figcaption></figure>"
        )
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(shared.expires_at))
    what = "A video" if len(shared.items) == 1 else f"{len(shared.items)} videos to compare"
    script = f'<script nonce="{nonce}">{SYNC}</script>' if len(shared.items) > 1 else ""
    policy = (
        f"default-src 'none'; media-src 'self'; img-src 'self'; style-src 'nonce-{nonce}'; "
        f"script-src 'nonce-{nonce}'; base-uri 'none'; form-action 'none'"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f'<title>{what} shared from kling-ui</title><style nonce="{nonce}">{STYLE}</style>'
        f"</head><body><main><h1>{what}, shared from kling-ui</h1>"
        f'<div class="grid">{"".join(cells)}</div>'
        f"<p>This link works until {until}, unless its owner revokes it first.</p>"
        f"</main>{script}</body></html>"
    )
