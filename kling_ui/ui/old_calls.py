"""Calls of ``/generate`` written before it took ``model``, ``end_image`` and ``options``
(and of ``/extend`` and ``/batch``, before ``model`` and ``options``) keep working over
plain HTTP (``POST .../gradio_api/call/generate`` or ``.../call/extend`` with six values,
``.../call/batch`` with seven).

gradio_client fills a parameter left out with its default, but Gradio's own HTTP route
takes a call only with every parameter: ``OldCalls`` (an ASGI middleware, inside
``web.BodyLimit``, so the body is capped already) gives such an old call the new ones,
empty (our model, no last frame, no options). Anything else passes untouched.

Imports the standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Scope = dict[str, Any]
# Each route's number of values before, and the values added, as if left out:
# /generate: image, prompt, negative_prompt, duration, generate_audio, api_key; then model,
# end_image, options. /extend: generation_id in place of the image; then model, options.
# /batch: images, prompts, negative_prompt, duration, generate_audio, takes, api_key; then
# model, options. (The owner and the fit are the page's states, not the API's values.)
ROUTES: dict[str, tuple[int, tuple[Any, ...]]] = {
    "/gradio_api/call/generate": (6, ("", None, "")),
    "/gradio_api/call/extend": (6, ("", "")),
    "/gradio_api/call/batch": (7, ("", "")),
}


class OldCalls:
    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        path = str(scope.get("path", "")).rstrip("/")
        route = next((r for r in ROUTES if path.endswith(r)), None)
        if scope.get("type") != "http" or scope.get("method") != "POST" or route is None:
            await self.app(scope, receive, send)
            return
        chunks, message = [], {"more_body": True}
        while message.get("more_body"):
            message = await receive()
            if message.get("type") != "http.request":  # gone: nothing to call
                return
            chunks.append(message.get("body", b""))
        body = _completed(b"".join(chunks), *ROUTES[route])
        given = False

        async def replay() -> dict:
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, replay, send)


def _completed(body: bytes, before: int, added: tuple[Any, ...]) -> bytes:
    """``body`` with the ``added`` parameters when it is an old call (``before`` values)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or len(data) != before:
        return body
    return json.dumps({**payload, "data": [*data, *added]}).encode()
