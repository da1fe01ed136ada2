"""What every section of the page needs: the options its events share, and the limits of
the browser's history.

Imports nothing of the app's.
"""

from __future__ import annotations

from typing import Any

# Events no program may call (the API's are named in ``wiring``).
PRIVATE: dict[str, Any] = {"api_visibility": "private"}
QUIET: dict[str, Any] = {**PRIVATE, "show_progress": "hidden"}
# A job's own events: the card shows the progress, so Gradio's overlay stays off.
JOB: dict[str, Any] = {**PRIVATE, "show_progress": "minimal", "concurrency_limit": None}

HISTORY_LIMIT = 100  # the most jobs a browser's history keeps

# After Remix or Continue, the prompt takes the focus (the next thing to change).
FOCUS_PROMPT_JS = """(note) => {
  if (!/^(Remixed|Continuing)/.test(note || "")) return;
  const box = document.querySelector("#prompt textarea");
  if (box) { box.scrollIntoView({block: "center"}); box.focus(); }
}"""
