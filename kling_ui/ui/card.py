"""The progress card: one job as the page shows it, rendered from our own template.

Every string that comes from a person or the vendor (the id, the message, the vendor's own
words) goes through ``html.escape``; the rest is ours. The card carries:

- the phase steps (checked, sent, queued, generating, downloading, done), the current one
  marked (``aria-current="step"``), with the time spent queued and generating;
- "about M:SS left" when the ledger has finished jobs to base it on (their median);
- the price and, once known, the charge (in dollars; the vendor's credits in the closed
  details below them); the id, small, with a copy button;
- on failure, our words first and the vendor's own message after them, as text;
- ``data-announce``: one short sentence the page's live region reads out when it changes
  (``page.js``), and ``data-tick`` / ``data-countdown`` clocks the page keeps moving
  between updates.

The phases and the words shown for each (title, step, good, notice, running, no time yet)
are ``states``' (``SHOWN``, ``CARD_STEPS``); this module adds only the markup. Imports
``jobs`` (``Progress``), ``states`` and ``words``.
"""

from __future__ import annotations

from html import escape

from ..jobs import Progress
from ..states import (
    BEFORE_VENDOR,
    CARD_STEPS,
    GOOD_PHASES,
    NO_ETA,
    NOTICE_PHASES,
    RUNNING_PHASES,
    SHOWN,
    STOPPED,
)
from .words import RECOVERED, clock, cost_words

_STEP_INDEX = {name: n for n, (name, _) in enumerate(CARD_STEPS)}
VENDOR_SAID = " The API said: "

EMPTY = (
    '<section class="kui-card kui-idle" data-phase="" data-announce="">'
    '<p class="kui-title">No job yet</p>'
    "<p>Add an image and a prompt, then press <strong>Generate</strong>. Each job's steps "
    "show here as they happen.</p></section>"
)


def _steps(phase: str, update: Progress | None) -> str:
    at, _ = SHOWN.get(phase, ("checked", ""))
    current = _STEP_INDEX[at]
    failed = phase not in RUNNING_PHASES and phase not in GOOD_PHASES
    times = {}
    if update is not None and update.elapsed:
        times = {"queued": update.queued_for, "generating": update.generating_for}
    items = []
    for n, (name, label) in enumerate(CARD_STEPS):
        if phase in GOOD_PHASES or n < current:
            state, mark = "done", "✓"
        elif n == current:
            state, mark = ("stuck" if failed else "current"), ("✕" if failed else "●")
        else:
            state, mark = "todo", "○"
        attrs = ' aria-current="step"' if n == current and phase not in GOOD_PHASES else ""
        spent = ""
        if name in times and (state in ("done", "stuck") or state == "current"):
            ticking = state == "current" and phase in RUNNING_PHASES
            tick = f' data-tick="{times[name]:.1f}"' if ticking else ""
            spent = f' <span class="kui-time"{tick}>{clock(times[name])}</span>'
        items.append(
            f'<li class="kui-step kui-{state}"{attrs}><span class="kui-mark" aria-hidden="true">'
            f"{mark}</span> {label}{spent}</li>"
        )
    return f'<ol class="kui-steps" aria-label="Steps">{"".join(items)}</ol>'


def _eta(phase: str, update: Progress, typical: float | None) -> str:
    if typical is None or phase not in RUNNING_PHASES or phase in NO_ETA:
        return ""
    left = typical - update.elapsed
    usual = f"jobs here usually take about {clock(typical)}"
    if left <= 0:
        return f'<p class="kui-eta">Taking longer than usual ({usual}).</p>'
    return (
        f'<p class="kui-eta">About <span data-countdown="{left:.1f}">{clock(left)}</span> left '
        f"({usual}).</p>"
    )


def _message(message: str) -> str:
    """Our words, then the vendor's own (after "The API said:"), each escaped as text."""
    ours, said, vendor = (message or "").partition(VENDOR_SAID)
    html = f'<p class="kui-message">{escape(ours.strip())}</p>' if ours.strip() else ""
    if said:
        html += (
            '<p class="kui-vendor">The API said: '
            f'<span class="kui-quote">{escape(vendor.strip())}</span></p>'
        )
    return html


def _id_line(gid: str) -> str:
    if not gid:
        return ""
    safe = escape(gid, quote=True)
    return (
        f'<p class="kui-id">Generation id <code>{safe}</code> '
        f'<button type="button" class="kui-copy" data-copy="{safe}">Copy id</button></p>'
    )


def _announce(phase: str, title: str, message: str) -> str:
    if phase in GOOD_PHASES:
        return "Done: the video is ready and playing."
    if phase in RUNNING_PHASES:
        return f"{title}."
    return f"{title}: {(message or '').partition(VENDOR_SAID)[0].strip()}"


def render_card(update: Progress, shown_id: str = "", typical: float | None = None) -> str:
    """The card for one update about a job."""
    phase = update.phase
    _, title = SHOWN.get(phase, ("checked", phase.capitalize()))
    kind = "good" if phase in GOOD_PHASES else "busy" if phase in RUNNING_PHASES else (
        "notice" if phase in NOTICE_PHASES else "bad"
    )  # fmt: skip
    total = ""
    if update.elapsed and phase not in BEFORE_VENDOR:
        tick = f' data-tick="{update.elapsed:.1f}"' if phase in RUNNING_PHASES else ""
        total = f' <span class="kui-elapsed">· <span{tick}>{clock(update.elapsed)}</span></span>'
    parts = [
        f'<p class="kui-title">{escape(title)}{total}</p>',
        _steps(phase, update),
        _eta(phase, update, typical),
        _message(update.message),
    ]
    if update.recovered:
        parts.append(f'<p class="kui-note">{escape(RECOVERED)}</p>')
    if phase == STOPPED:
        parts.append(
            '<p class="kui-note">This job carries on here; open it from your videos or '
            "Resume by id to watch it again.</p>"
        )
    cost = cost_words(update)
    if cost:
        parts.append(f'<p class="kui-cost">{escape(cost)}</p>')
    if update.credits is not None:  # the vendor's own unit: a detail, after the dollars
        what = "Simulated credits" if update.simulated else "Credits used"
        parts.append(
            '<details class="kui-details"><summary>Details</summary>'
            f'<p class="kui-credits">{what}: {update.credits:,.0f}</p></details>'
        )
    parts.append(_id_line(shown_id))
    return _wrap(phase, kind, _announce(phase, title, update.message), "".join(parts))


def render_card_text(phase: str, message: str, shown_id: str = "") -> str:
    """The card for an answer that is only words: refused before sending, nothing to stop,
    stopped watching (``phase`` is the status's first word)."""
    _, title = SHOWN.get(phase, ("checked", phase.capitalize()))
    kind = "notice" if phase in NOTICE_PHASES or phase.startswith("nothing") else "bad"
    body = (
        f'<p class="kui-title">{escape(title)}</p>'
        + (_steps(phase, None) if phase in SHOWN else "")
        + _message(message)
        + _id_line(shown_id)
    )
    return _wrap(phase, kind, _announce(phase, title, message), body)


def card_from_status(status_text: str, shown_id: str = "") -> str:
    """The card for a plain status text ("Status: <phase>" then its words)."""
    first, _, rest = (status_text or "").partition("\n")
    phase = first.removeprefix("Status: ").strip()
    return render_card_text(phase, rest.strip(), shown_id)


def _wrap(phase: str, kind: str, announce: str, body: str) -> str:
    return (
        f'<section class="kui-card kui-{kind}" data-phase="{escape(phase, quote=True)}" '
        f'data-announce="{escape(announce, quote=True)}">{body}</section>'
    )
