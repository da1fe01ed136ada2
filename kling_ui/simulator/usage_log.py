"""The usage log, ``GET /v2/logs``: one row per create that made a job, newest first, per
key; ``period`` or ``start`` + ``end``, ``status``, ``model``, ``limit``, ``offset``, each
checked with the vendor's message. A row shows up ``log_lag`` seconds after its create, as
the vendor's analytics lag; a job that ends in error is a ``failed`` row that cost nothing.
Times are shown as UTC wall-clock times: the simulator's clock shifted by ``wall_offset``.

Also answers from the log how many of a key's jobs run at once (the active limit, the peak).
Imports ``jobs.py`` (the entries and jobs), ``money.py`` and ``vendor.py``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from .jobs import Job, LogEntry
from .money import usd
from .vendor import MODEL

MAX_LOG_WINDOW = 92 * 86400  # seconds: the vendor refuses a longer window


class UsageLog:
    """The entries, oldest first. Not locked itself: the Simulator's lock guards every call."""

    def __init__(self, wall_offset: float) -> None:
        self.wall_offset = wall_offset
        self.entries: list[LogEntry] = []

    def page(
        self, key_id: str, query: dict[str, list[str]], now: float, jobs: dict[str, Job]
    ) -> dict[str, Any]:
        """One page of the key's rows for the parsed query string ``query``; ValueError,
        with the vendor's message, if bad."""
        start, end = _log_window(query, now + self.wall_offset)
        statuses, models, limit, offset = _log_filters(query)
        entries = [
            e
            for e in reversed(self.entries)
            if e.key_id == key_id
            and e.visible_at <= now
            and start <= e.created + self.wall_offset <= end
        ]
        entries.sort(key=lambda e: e.created, reverse=True)  # stable: later creates first
        rows = [self._row(e, jobs[e.job_id], now) for e in entries]
        rows = [r for r in rows if _model_matches(models, r["model"])]
        rows = [r for r in rows if not statuses or r["status"] in statuses]
        page = rows[offset : offset + limit]
        return {
            "data": page,
            "pagination": {
                "limit": limit,
                "offset": offset,
                "total": len(rows),
                "has_more": offset + len(page) < len(rows),
            },
        }

    def active(self, key_id: str, now: float, jobs: dict[str, Job]) -> int:
        """How many jobs made with this key are queued or generating at ``now``."""
        made = (jobs[e.job_id] for e in self.entries if e.key_id == key_id)
        return sum(1 for j in made if j.created <= now < j.finished_at())

    def peak(self, key_id: str, jobs: dict[str, Job]) -> int:
        """The most jobs made with this key that were queued or generating at one time.
        Statuses are worked out lazily, so this is the peak of the overlapping
        ``[created, finished)`` intervals, which is exact all the same."""
        made = [jobs[e.job_id] for e in self.entries if e.key_id == key_id]
        events = [(j.created, 1) for j in made] + [(j.finished_at(), -1) for j in made]
        peak = active = 0
        for _, step in sorted(events):  # at one instant, ends before starts: half-open intervals
            active += step
            peak = max(peak, active)
        return peak

    def _row(self, entry: LogEntry, job: Job, now: float) -> dict[str, Any]:
        failed = job.status(now) == "error"  # billed nothing
        credits = 0 if failed else job.charge_credits()
        created = datetime.fromtimestamp(entry.created + self.wall_offset, timezone.utc)
        return {
            "created": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "status": "failed" if failed else "succeeded",
            "origin": "api",
            "model": job.model or MODEL,
            "cost": {"usd": usd(credits), "credits": credits},
            "tokens": {"input": 0, "output": 0, "total": 0},
            "request_id": entry.request_id,
            "inference_id": job.id,
            "client_request_id": entry.client_request_id,
        }


def _query_error(field: str, expected: str, received: Any) -> ValueError:
    message = f"Query validation error! {field}: expected {expected}, received {received!r}"
    return ValueError(message)


def _log_window(query: dict[str, list[str]], now: float) -> tuple[float, float]:
    """The usage log's window, in wall-clock seconds: ``period`` back from ``now``, or
    ``start`` to ``end`` (ISO-8601, UTC when without an offset), never both."""
    period, start, end = (query.get(name, []) for name in ("period", "start", "end"))
    if bool(period) == bool(start or end) or bool(start) != bool(end):
        raise ValueError(
            "Query validation error! provide either period or both start and end, not both"
        )
    if period:
        match = re.fullmatch(r"([1-9][0-9]{0,6})([hd])", period[0])
        if not match:
            raise _query_error("period", "a positive integer followed by h or d", period[0])
        span = int(match.group(1)) * (3600 if match.group(2) == "h" else 86400)
        lo, hi = now - span, now
    else:
        lo, hi = _iso_time("start", start[0]), _iso_time("end", end[0])
        if hi < lo:
            raise _query_error("end", "a time not earlier than start", end[0])
        span = hi - lo
    if span > MAX_LOG_WINDOW:
        raise _query_error("window", "at most 92 days", f"{span / 86400:g} days")
    return lo, hi


def _iso_time(field: str, text: str) -> float:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _query_error(field, "an ISO-8601 date and time", text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _log_filters(query: dict[str, list[str]]) -> tuple[set[str], list[str], int, int]:
    """The usage log's ``status`` and ``model`` filters (repeated, never comma-split),
    ``limit`` and ``offset``."""
    statuses = query.get("status", [])
    for status in statuses:
        if status not in ("succeeded", "failed"):
            raise _query_error("status", "'succeeded' or 'failed'", status)
    models = query.get("model", [])
    if len(models) > 50:
        raise _query_error("model", "at most 50 values", len(models))
    limit = _int_param(query, "limit", 50, least=1, most=100)
    return set(statuses), models, limit, _int_param(query, "offset", 0, least=0)


def _int_param(
    query: dict[str, list[str]], name: str, default: int, *, least: int, most: int | None = None
) -> int:
    text = query.get(name, [str(default)])[0]
    n = int(text) if re.fullmatch(r"[0-9]{1,9}", text) else -1
    if n < least or (most is not None and n > most):
        expected = f"an integer of {least} or more"
        if most is not None:
            expected = f"an integer from {least} to {most}"
        raise _query_error(name, expected, text)
    return n


def _model_matches(models: list[str], model: str) -> bool:
    """Whether the ``model`` filter keeps a row of ``model``: ``source/alias`` or the bare
    alias, matched exactly; no filter keeps it."""
    return not models or model in models or model.split("/", 1)[-1] in models
