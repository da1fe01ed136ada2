"""The simulator's HTTP plumbing: how a request is recorded and its key checked, and how an
answer is written in the vendor's shapes (JSON with ``x-request-id``, the client's
``X-Client-Request-Id`` echoed when valid, the vendor's error body), or replaced by a
scripted ``Fault`` (a status, a non-JSON page, a dropped connection, a slow answer).

``Wire`` is the base of the route classes (``cdn.py``, ``handler.py``); ``sim`` is set on
the class the server builds. Imports ``jobs``, ``faults`` and ``vendor``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from . import chat
from .faults import Fault
from .jobs import RecordedRequest
from .vendor import IMAGE_FIELDS, REFERENCE_FIELDS, valid_client_request_id

if TYPE_CHECKING:
    from .server import Simulator


class Wire(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.1"
    server_version = "kling-ui-simulator/1.0"
    # Small answers on a kept-alive connection: without this, Nagle's algorithm and delayed
    # ACKs add about 40 ms to every request on loopback.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the default logs to stderr; we record requests instead (headers never logged)

    def _record(self, body: dict | None) -> RecordedRequest:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if isinstance(body, dict):  # images are recorded by their length only
            body = {k: _by_length(k, v) for k, v in body.items()}
            body = chat.redacted(body) if parts.path in chat.CHAT_PATHS else body
        record = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            time=time.time(),
        )
        self.sim.record(record)
        return record

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        extra = {"x-request-id": uuid.uuid4().hex}
        client_id = valid_client_request_id(self.headers.get("X-Client-Request-Id"))
        if client_id:
            extra["x-client-request-id"] = client_id
        for name, value in {**extra, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        """A whole body that is not the API's JSON (a document, a page)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, headers: dict | None = None) -> None:
        self._send_json(
            status,
            {
                "message": message,
                "path": urlsplit(self.path).path,
                "requestId": uuid.uuid4().hex,
                "statusCode": status,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            },
            headers,
        )

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)

    def _apply_fault(self, fault: Fault | None) -> bool:
        """Answer with the fault if it replaces the response; return True when handled."""
        if fault is None:
            return False
        if fault.kind == "status":
            default = {
                400: "Body validation error!",
                401: "Unauthorized: invalid or missing API key",
                403: "Insufficient credits: top up your balance",
                404: "Not found",
                429: "Too many requests",
            }.get(fault.code, "Internal server error")
            self._send_error(fault.code, fault.message or default, fault.headers)
            return True
        if fault.kind == "non_json":
            data = b"<html>Bad gateway</html>"
            self.send_response(fault.code)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        if fault.kind == "drop":
            self._drop()
            return True
        if fault.kind == "slow":
            time.sleep(fault.seconds)
        return False

    def _caller_key(self) -> str | None:
        """The caller's API key if the simulator accepts it; else None, having sent the 401."""
        auth = self.headers.get("Authorization", "")
        key = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not self.sim.accepts_key(key):
            self._send_error(401, "Unauthorized: invalid or missing API key")
            return None
        return key


def _by_length(name: str, value: object) -> object:
    """A body field as recorded: an image (or a list of reference images) by its length."""
    if name in IMAGE_FIELDS and isinstance(value, str):
        return f"<image {len(value)} chars>"
    if name in REFERENCE_FIELDS and isinstance(value, list):
        return [f"<image {len(v)} chars>" if isinstance(v, str) else v for v in value]
    return value
