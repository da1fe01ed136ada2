"""The service: what one click does, without any web framework, in rooms with one job each.

``GenerationService`` (``generation``) is its one public face: the page, the CLI and MCP
call its methods and never reach into its parts. Behind it, each room holds one thing:

- ``access``: which backend a request goes to (``choose_backend``), who asks
  (``Visitor``), how many new browsers an address may bring, who may read a job;
- ``limits``: the room for jobs, the server key's budgets (one step with the rows), prices
  and balances;
- ``batches``: many videos planned, checked whole, priced and queued as one step;
- ``library``: kept images, video addresses, posters, chains and the retention sweep;
- ``views``: a job as ``Progress`` (watched) and as a status;
- ``models``: the video models offered, from the vendor's catalogue or the bundled snapshot;
- ``prompts``: the prompt helper, a chat model that sees the image, as spending.

The runner owns a job from the moment its row is written; the service's generators only
watch it, so a closed tab or Stop watching ends the watching, never the job. ``Backend``
(the runner's: where a request goes, with which key) is re-exported for the page, which
resolves a click's key once and hands it down.
"""

from __future__ import annotations

from ..runner import Backend
from .access import DEMO, LIVE, SERVER, TYPED, BrowserTable, Visitor, choose_backend
from .batches import MAX_BATCH, MAX_TAKES, Planned, check_frames, plan_takes, quote_many
from .generation import STOPPED_BEFORE_SENT, GenerationService
from .limits import waiting_room
from .models import Offer
from .views import NOT_KNOWN

__all__ = [
    "DEMO",
    "LIVE",
    "MAX_BATCH",
    "MAX_TAKES",
    "NOT_KNOWN",
    "Offer",
    "SERVER",
    "STOPPED_BEFORE_SENT",
    "TYPED",
    "Backend",
    "BrowserTable",
    "GenerationService",
    "Planned",
    "Visitor",
    "choose_backend",
    "plan_takes",
    "check_frames",
    "quote_many",
    "waiting_room",
]
