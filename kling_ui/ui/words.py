"""A job in words: the status text programs read (``/generate``'s second output), costs,
and times in the browser's own zone. Plain text only; the page's card is ``card.py``.

The words for states, phases and failure reasons, and which phases have no times to show,
are ``states``' (one vocabulary); imports ``errors``, ``jobs`` (``Progress``), ``pricing``
(``dollars``) and ``states``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from .. import errors
from ..jobs import Progress
from ..pricing import dollars
from ..states import NO_TIMES, OUTCOME_UNKNOWN, STOPPED, UNPAID, VIDEO_PHASES, Reason


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def render_status(update: Progress) -> str:
    """The status text: plain text, one fact a line."""
    lines = [f"Status: {update.phase}"]
    if update.phase not in NO_TIMES:
        timing = (
            f"Elapsed {clock(update.elapsed)} · queued {clock(update.queued_for)}"
            f" · generating {clock(update.generating_for)}"
        )
        if update.credits is not None and update.simulated:
            timing += (
                f" · credits {update.credits:,.0f} (simulated: what a real job uses; not charged)"
            )
        elif update.credits is not None:
            timing += f" · credits used {update.credits:,.0f}"
        lines.append(timing)
    cost = cost_words(update)
    if cost:
        lines.append(cost)
    lines.append(update.message)
    if update.recovered:
        lines.append(RECOVERED)
    if update.phase == STOPPED:
        lines.append(STOPPED_TAIL)
    return "\n".join(lines)


RECOVERED = "(Recovered from the API's usage log: nothing was sent twice.)"
STOPPED_TAIL = "This job carries on here; use Resume or the history to watch it again."


def cost_words(update: Progress) -> str:
    """The job's money in words: its price when sent, then what the vendor charged."""
    simulated = " (simulated: what a real job would cost; nothing is charged)"
    if update.charged_usd is not None:
        if update.charged_usd == 0 and update.phase not in VIDEO_PHASES:
            return "Cost: $0.00 (no video was made, so nothing is charged)"
        return f"Cost: {dollars(update.charged_usd)}" + (simulated if update.simulated else "")
    if update.estimate_usd is not None:
        what = "would cost" if update.simulated else "price"
        tail = simulated if update.simulated else " (estimate; the charge shows when it is done)"
        return f"Cost: {what} {dollars(update.estimate_usd)}{tail}"
    return ""


def error_state(exc: errors.KlingUIError) -> str:
    """The first word of the status for a failure before there was a job."""
    if isinstance(exc, errors.OutcomeUnknown):
        return OUTCOME_UNKNOWN
    if isinstance(exc, (errors.InputError, errors.APIConnectionError)):
        return Reason.NOT_SENT.phase  # bad input, or a connection that was never made
    return Reason.REFUSED.phase


def browser_zone(tz: str | None) -> tuple[timezone | ZoneInfo, str]:
    """The zone the browser reported ("Area/City|offset"), and a label when it is a guess."""
    name, _, offset = (tz or "").partition("|")
    if name:
        try:
            return ZoneInfo(name), ""
        except (ValueError, OSError, KeyError):  # unknown name, or no zone data here
            pass
    try:
        return timezone(-timedelta(minutes=int(offset))), ""
    except ValueError:
        return timezone.utc, " UTC"


def local_time(ts: float | None, tz: str | None) -> str:
    zone, label = browser_zone(tz)
    return datetime.fromtimestamp(ts or 0, zone).strftime("%Y-%m-%d %H:%M") + label


def history_cost(job: Any) -> str:
    """A past job's cost: the charge once known, else the price sent ("est.")."""
    if job is None:
        return ""
    if job.charged_usd is not None:
        return dollars(job.charged_usd)
    if job.state in UNPAID:
        return dollars(0)
    return f"{dollars(job.estimate_usd)} est." if job.estimate_usd is not None else ""
