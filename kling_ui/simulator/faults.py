"""What the simulator is scripted to do wrong: ``Fault`` (one create, poll, catalogue,
billing or chat answer), ``DownloadFault`` (one download of a valid link), each also as a JSON spec
for ``POST /__sim__/script``; and ``FaultScript``, the queues of them waiting, the outage in
force per endpoint, and the periodic poll fault.

Imports nothing of ours.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

OUTAGE_ENDPOINTS = ("catalogue", "billing", "chat")


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour for one create or poll response.

    As a spec for ``POST /__sim__/script``: ``{"kind": "status", "code": 401}``,
    ``{"kind": "rate_limit", "retry_after": 1}``, ``{"kind": "non_json", "code": 502}``,
    ``{"kind": "drop"}``, ``{"kind": "created_then_drop"}``, ``{"kind": "slow", "seconds": 2}``,
    ``{"kind": "no_id"}``, ``{"kind": "weird_status", "status": "paused"}``.

    On a create, ``drop`` closes the connection before anything is created, while
    ``created_then_drop`` creates the job (it runs and is in the usage log) and then closes
    the connection without an answer.
    """

    kind: str
    code: int = 0
    message: str | None = None
    headers: dict[str, str] | None = None
    seconds: float = 0.0
    vendor_status: str = ""

    @classmethod
    def status(cls, code: int, message: str | None = None, headers: dict | None = None) -> Fault:
        return cls("status", code=code, message=message, headers=headers)

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1) -> Fault:
        headers = None if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return cls("status", code=429, message="Too many requests", headers=headers)

    @classmethod
    def non_json(cls, status: int = 200) -> Fault:
        return cls("non_json", code=status)

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def create_then_drop(cls) -> Fault:
        return cls("created_then_drop")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", seconds=seconds)

    @classmethod
    def no_id(cls) -> Fault:
        return cls("no_id")

    @classmethod
    def weird_status(cls, status: str = "paused") -> Fault:
        return cls("weird_status", vendor_status=status)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Fault:
        kind = spec.get("kind")
        if kind == "status":
            return cls.status(int(spec["code"]), spec.get("message"), spec.get("headers"))
        if kind == "rate_limit":
            return cls.rate_limit(spec.get("retry_after", 1))
        if kind == "non_json":
            return cls.non_json(int(spec.get("code", spec.get("status", 200))))
        if kind in ("drop", "created_then_drop", "no_id"):
            return cls(kind)
        if kind == "slow":
            return cls.slow(float(spec["seconds"]))
        if kind == "weird_status":
            return cls.weird_status(str(spec.get("status", "paused")))
        raise ValueError(f"unknown fault kind {kind!r}")


@dataclass(frozen=True)
class DownloadFault:
    """One scripted misbehaviour of the video host, for one download of a valid link.

    As a spec: ``{"kind": "status", "code": 403}``, ``{"kind": "redirect", "to": URL}``,
    ``{"kind": "truncated"}``, ``{"kind": "not_mp4"}``, ``{"kind": "huge", "size": N}``,
    ``{"kind": "slow", "seconds": S}`` (the whole clip, spread over S seconds).
    """

    kind: str
    code: int = 0
    location: str = ""
    size: int = 0

    @classmethod
    def status(cls, code: int) -> DownloadFault:
        return cls("status", code=code)

    @classmethod
    def redirect(cls, to_url: str) -> DownloadFault:
        return cls("redirect", location=to_url)

    @classmethod
    def truncated(cls) -> DownloadFault:
        return cls("truncated")

    @classmethod
    def not_mp4(cls) -> DownloadFault:
        return cls("not_mp4")

    @classmethod
    def slow(cls, seconds: float) -> DownloadFault:
        return cls("slow", size=int(seconds * 1000))  # milliseconds, in the size field

    @classmethod
    def huge(cls, n_bytes: int) -> DownloadFault:
        return cls("huge", size=n_bytes)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> DownloadFault:
        kind = spec.get("kind")
        if kind == "status":
            return cls("status", code=int(spec["code"]))
        if kind == "redirect":
            return cls.redirect(str(spec["to"] if "to" in spec else spec["to_url"]))
        if kind == "slow":
            return cls.slow(float(spec["seconds"]))
        if kind in ("truncated", "not_mp4"):
            return cls(kind)
        if kind == "huge":
            return cls.huge(int(spec["size"] if "size" in spec else spec["n_bytes"]))
        raise ValueError(f"unknown download fault kind {kind!r}")


class FaultScript:
    """The faults waiting to be used, taken one at a time, oldest first.
    Not locked itself: the Simulator's lock guards every call."""

    def __init__(self) -> None:
        self.create: deque[Fault] = deque()
        self.poll: deque[Fault] = deque()
        self.download: deque[DownloadFault] = deque()
        self.catalogue: deque[Fault] = deque()
        self.billing: deque[Fault] = deque()
        self.chat: deque[Fault] = deque()
        self.outages: dict[str, Fault] = {}
        self._periodic: tuple[int, Fault] | None = None
        self._poll_count = 0

    def poll_every(self, every: int, fault: Fault | None) -> None:
        """Answer every ``every``-th poll with ``fault``; None turns it off."""
        self._periodic = (every, fault) if fault is not None and every > 0 else None
        self._poll_count = 0

    def outage(self, endpoint: str, fault: Fault | None) -> None:
        """Answer every request to ``endpoint`` with ``fault``; None lifts it."""
        if endpoint not in OUTAGE_ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}: one of {OUTAGE_ENDPOINTS}")
        if fault is None:
            self.outages.pop(endpoint, None)
        else:
            self.outages[endpoint] = fault

    def next_create(self) -> Fault | None:
        return self.create.popleft() if self.create else None

    def next_poll(self) -> Fault | None:
        """The next scripted poll fault; failing that, count the poll for the periodic one."""
        if self.poll:
            return self.poll.popleft()
        if self._periodic is None:
            return None
        self._poll_count += 1
        every, fault = self._periodic
        return fault if self._poll_count % every == 0 else None

    def next_download(self) -> DownloadFault | None:
        return self.download.popleft() if self.download else None

    def next_for(self, endpoint: str) -> Fault | None:
        """The next scripted ``catalogue``, ``billing`` or ``chat`` fault, else the outage in
        force."""
        queue = {"catalogue": self.catalogue, "chat": self.chat}.get(endpoint, self.billing)
        return queue.popleft() if queue else self.outages.get(endpoint)

    def clear(self) -> None:
        queues = (self.create, self.poll, self.download, self.catalogue, self.billing, self.chat)
        for queue in queues:
            queue.clear()
        self.outages.clear()
        self._periodic = None
