"""The simulator's HTTP handler: the routes of the vendor's API (create and poll on both
paths, the usage log, the catalogue, billing) and of the ``/__sim__/`` control endpoints
(script, reset, the request log: for the caller with the control token, if one is set).

A route only turns the request into calls of the Simulator's public methods and writes the
answer; the files are served by ``cdn.py``, the plumbing is ``wire.py``. The body checks are
``vendor.validation_error``, looked up on its module at each create so a test can wrap it.
Imports ``cdn``, ``faults``, ``catalogue``, ``jobs``, ``money``, ``schemas`` and ``vendor``.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import chat, schemas, vendor
from .catalogue import etag, etag_matches
from .cdn import CdnRoutes
from .faults import DownloadFault, Fault
from .jobs import RecordedRequest
from .money import usd
from .vendor import BILLING_PATH, CATALOGUE_PATHS, CREATE_PATHS, LOGS_PATH


class Handler(CdnRoutes):
    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = urlsplit(self.path).path
        self._record(body if isinstance(body, dict) else None)
        if path.startswith("/__sim__/"):
            if not self._controller():
                return self._send_error(403, "Forbidden")
            return self._admin(path, body)
        if path in chat.CHAT_PATHS:
            return self._chat(body)
        if path not in CREATE_PATHS:
            return self._send_error(404, f"Cannot POST {path}")
        fault = self.sim.next_create_fault()
        if self._apply_fault(fault):
            return
        key = self._caller_key()
        if key is None:
            return
        problem = vendor.validation_error(body, self.sim.added, self.sim.any_model)
        if problem:
            return self._send_error(400, problem)
        self._create(body, key, fault.kind if fault else "")

    def _create(self, body: dict, key: str, fault_kind: str) -> None:
        request_id = uuid.uuid4().hex
        client_id = self.headers.get("X-Client-Request-Id")
        view = self.sim.create_job(
            body,
            key=key,
            client_request_id=client_id,
            request_id=request_id,
            image=vendor.data_uri_bytes(body.get("image_url")),
        )
        if view is None:
            message = "Too Many Requests: too many generations running for this key"
            return self._send_error(429, message, {"Retry-After": "1"})
        if fault_kind == "created_then_drop":
            return self._drop()
        credits = view["meta"]["usage"]["credits_used"]
        headers = {
            "x-request-id": request_id,
            "x-inference-id": view["id"],
            "x-aimlapi-credits-used": str(credits),
            "x-aimlapi-usd-spent": f"{usd(credits):.9f}",
        }
        if fault_kind == "no_id":
            view.pop("id")
        self._send_json(200, view, headers)

    def do_GET(self) -> None:  # noqa: N802
        record = self._record(None)
        try:
            self._get(record)
        finally:
            record.took = time.time() - record.time

    def _get(self, record: RecordedRequest) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith("/files/"):
            return self._serve_video(parts.path, record.query)
        if parts.path == "/__sim__/requests":
            if not self._controller():
                return self._send_error(403, "Forbidden")
            return self._send_json(200, self.sim.recorded_requests())
        if parts.path == LOGS_PATH:
            return self._logs(parts.query)
        if parts.path in CATALOGUE_PATHS:
            return self._catalogue(parts.query)
        if parts.path == schemas.DOCS_PATH:
            return self._docs(record.query.get("model", ""))
        if parts.path == BILLING_PATH:
            return self._billing()
        if parts.path not in CREATE_PATHS:
            return self._send_error(404, f"Cannot GET {parts.path}")
        fault = self.sim.next_poll_fault()
        if self._apply_fault(fault):
            return
        key = self._caller_key()
        if key is None:
            return
        gid = record.query.get("generation_id", "")
        if not gid:
            return self._send_error(400, "Body validation error! generation_id: expected string")
        weird = fault is not None and fault.kind == "weird_status"
        view = self.sim.job_view(gid, status=fault.vendor_status if weird else None, key=key)
        if view is None:
            return self._send_error(404, f"Generation {gid} not found")
        self._send_json(200, view, {"x-inference-id": gid})

    def _logs(self, query: str) -> None:
        key = self._caller_key()
        if key is None:
            return
        try:
            page = self.sim.log_page(key, parse_qs(query, keep_blank_values=True))
        except ValueError as exc:
            return self._send_error(400, str(exc))
        self._send_json(200, page)

    def _chat(self, body: Any) -> None:
        """A chat completion: the key, the body's checks, then the deterministic answer."""
        if self._apply_fault(self.sim.next_fault("chat")):
            return None
        if self._caller_key() is None:
            return None
        problem = chat.chat_error(body)
        if problem:
            return self._send_error(400, problem)
        answer = chat.answer(body)
        spent = answer["meta"]["usage"]
        headers = {"x-aimlapi-credits-used": str(spent["credits_used"]),
                   "x-aimlapi-usd-spent": f"{spent['usd_spent']:.9f}"}  # fmt: skip
        return self._send_json(200, answer, headers)

    def _catalogue(self, query: str) -> None:
        """The catalogue needs no key; it carries an ETag and honours If-None-Match."""
        if self._apply_fault(self.sim.next_fault("catalogue")):
            return None
        page = self.sim.catalogue(parse_qs(query, keep_blank_values=True))
        tag = etag(json.dumps(page).encode())
        if etag_matches(self.headers.get("If-None-Match"), tag):
            self.send_response(304)  # no body, and so no Content-Length
            self.send_header("ETag", tag)
            self.end_headers()
            return None
        return self._send_json(200, page, {"ETag": tag})

    def _docs(self, model: str) -> None:
        """A served model's OpenAPI document (its catalogue item's ``info.docsJson``)."""
        added = self.sim.added.get(model)
        data = json.dumps(added).encode() if added else schemas.document_bytes(model)
        if data is None:
            return self._send_error(404, f"No document for the model {model!r}")
        self._send_bytes(200, data, "application/json")
        return None

    def _billing(self) -> None:
        if self._apply_fault(self.sim.next_fault("billing")):
            return None
        key = self._caller_key()
        if key is None:
            return None
        return self._send_json(200, self.sim.billing(key))

    def _controller(self) -> bool:
        """The caller may script the simulator and read its log (always, without a token)."""
        token = self.sim.control_token
        return token is None or hmac.compare_digest(self.headers.get("X-Sim-Token", ""), token)

    def _admin(self, path: str, body: Any) -> None:
        sim = self.sim
        if path == "/__sim__/reset":
            sim.reset()
            return self._send_json(200, {"ok": True})
        if path == "/__sim__/script" and isinstance(body, dict):
            try:
                sim.script_create(*(Fault.from_spec(s) for s in body.get("create", [])))
                sim.script_poll(*(Fault.from_spec(s) for s in body.get("poll", [])))
                sim.script_download(*(DownloadFault.from_spec(s) for s in body.get("download", [])))
                sim.script_outcome(*body.get("outcome", []))
                if "poll_every" in body:
                    every = body["poll_every"]
                    sim.script_poll_every(int(every["every"]), Fault.from_spec(every["fault"]))
                if "log_lag" in body:
                    sim.script_log_lag(float(body["log_lag"]))
                if "max_active" in body:
                    n = body["max_active"]
                    sim.script_max_active(None if n is None else int(n))
                sim.script_catalogue(*(Fault.from_spec(s) for s in body.get("catalogue", [])))
                sim.script_billing(*(Fault.from_spec(s) for s in body.get("billing", [])))
                sim.script_chat(*(Fault.from_spec(s) for s in body.get("chat", [])))
                for endpoint, spec in body.get("outage", {}).items():
                    sim.script_outage(endpoint, None if spec is None else Fault.from_spec(spec))
                if "pricing" in body:
                    sim.script_pricing(body["pricing"])
                if "balance" in body:
                    balance = body["balance"]
                    if isinstance(balance, dict):
                        sim.set_balance(float(balance["usd"]), balance.get("key"))
                    else:
                        sim.set_balance(float(balance))
            except (ValueError, KeyError, TypeError) as exc:
                return self._send_error(400, f"bad script: {exc}")
            return self._send_json(200, {"ok": True})
        return self._send_error(404, f"Cannot POST {path}")
